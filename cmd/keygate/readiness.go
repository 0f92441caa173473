package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/keygate/keygate/keystore"
	"github.com/keygate/keygate/ratelimit"
	"github.com/prometheus/client_golang/prometheus"
)

// storeReadiness is the store's entry in /readyz: an instance stays ready while the store
// is down for less than stale_ttl, since cached keys keep working that long (SPEC §5).
type storeReadiness struct {
	store    keystore.Store
	staleTTL time.Duration

	mu        sync.Mutex
	downSince time.Time // zero while up
}

func newStoreReadiness(s keystore.Store, staleTTL time.Duration, reg prometheus.Registerer) *storeReadiness {
	r := &storeReadiness{store: s, staleTTL: staleTTL}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "keygate_dependency_up",
		Help:        ratelimit.DependencyUpHelp,
		ConstLabels: prometheus.Labels{"dependency": "store"},
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := r.check(ctx); err != nil {
			return 0
		}
		return 1
	}))
	return r
}

// check pings the store and returns since when it fails (zero while it answers).
func (r *storeReadiness) check(ctx context.Context) (time.Time, error) {
	err := r.store.Ready(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err == nil:
		r.downSince = time.Time{}
	case r.downSince.IsZero():
		r.downSince = time.Now()
	}
	return r.downSince, err
}

// Ready fails once the store has been unreachable for longer than stale_ttl.
func (r *storeReadiness) Ready(ctx context.Context) error {
	since, err := r.check(ctx)
	if err == nil {
		return nil
	}
	if time.Since(since) < r.staleTTL {
		return degraded{err} // cached keys still serve
	}
	return fmt.Errorf("store unreachable since %s: %w", since.UTC().Format(time.RFC3339), err)
}

// degraded is a dependency that is down while the instance still serves.
type degraded struct{ error }

func (degraded) Degraded() bool { return true }

// passwordRehasher returns the function that replaces an outdated password hash (bcrypt,
// or argon2id with other parameters) after a successful login, only if the principal's
// hash is still the one that matched.
func passwordRehasher(ctx context.Context, s keystore.Store, log *slog.Logger) func(principalID, oldHash, newPHC string) {
	return func(principalID, oldHash, newPHC string) {
		ctx, cancel := context.WithTimeout(keystore.WithActor(ctx, "keygate:rehash"), 5*time.Second)
		defer cancel()
		p, err := s.GetPrincipal(ctx, principalID)
		if err != nil || p.PasswordHash != oldHash {
			return
		}
		p.PasswordHash = newPHC
		if err := s.UpdatePrincipal(ctx, &p); err != nil {
			log.Warn("password rehash failed", slog.String("principal", principalID), slog.String("error", err.Error()))
		}
	}
}
