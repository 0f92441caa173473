package ratelimit

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/ulule/limiter/v3"
)

// Failed-attempt bucket kinds: "f:ip:<ip>:<period>" and "f:p:<principal>:<period>".
const (
	failedIP        = "f:ip"
	failedPrincipal = "f:p"
)

// Blocked reports whether failed authentications from ip, or against principal ("" for
// none), have reached auth.failed_attempts, so that the request gets 429 before any
// password check or uncached key lookup, and how long the caller has to wait: until every
// window that blocks it has ended. A caller found blocked is remembered in this process
// until then, so a blocked flood costs no store round trip. A store error is never
// "blocked" (SPEC §4): with on_store_error local the local counts decide.
func (l *Limiter) Blocked(ctx context.Context, ip netip.Addr, principal string) (wait time.Duration, blocked bool) {
	if len(l.failed) == 0 {
		return 0, false
	}
	now := l.now()
	ipName := ipSubject(ip)
	until, blocked := l.blocked.get(failedIP+":"+ipName, now)
	if principal != "" {
		if u, ok := l.blocked.get(failedPrincipal+":"+principal, now); ok {
			until, blocked = later(until, u), true
		}
	}
	if !blocked {
		var buf [4]bucket
		bs := l.failedBuckets(buf[:0], ipName, principal)
		until, blocked = l.eachFailed(ctx, bs, func(st limiter.Store, ctx context.Context, b bucket) (limiter.Context, error) {
			return st.Peek(ctx, b.name, b.rate)
		}, now)
	}
	if !blocked {
		return 0, false
	}
	return max(until.Sub(now), time.Second), true
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Failed records one failed authentication from ip and, for a bad password, against
// principal ("" records only the IP).
func (l *Limiter) Failed(ctx context.Context, ip netip.Addr, principal string) {
	if len(l.failed) == 0 {
		return
	}
	var buf [4]bucket
	bs := l.failedBuckets(buf[:0], ipSubject(ip), principal)
	l.eachFailed(ctx, bs, func(st limiter.Store, ctx context.Context, b bucket) (limiter.Context, error) {
		return st.Increment(ctx, b.name, 1, b.rate)
	}, l.now())
}

func (l *Limiter) failedBuckets(bs []bucket, ipName, principal string) []bucket {
	bs = appendBuckets(bs, "", failedIP, ipName, l.failed)
	if principal != "" {
		bs = appendBuckets(bs, "", failedPrincipal, principal, l.failed)
	}
	return bs
}

// eachFailed runs op on every bucket, against the shared store when it is up (within
// l.timeout in all) and else per on_store_error, and remembers as blocked every subject
// with no attempt left (count >= limit: the limit-th failure blocks the next attempt). It
// reports whether any subject is blocked, and until when the latest of them is.
func (l *Limiter) eachFailed(ctx context.Context, bs []bucket,
	op func(limiter.Store, context.Context, bucket) (limiter.Context, error), now time.Time) (until time.Time, blocked bool) {
	st := l.local
	if l.client != nil {
		st = l.sharedStore()
		if st == nil {
			if l.mode != modeLocal {
				return time.Time{}, false
			}
			st = l.local
		} else {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, l.timeout)
			defer cancel()
		}
	}
	for _, b := range bs {
		c, err := op(st, ctx, b)
		if err != nil {
			if ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
				l.markDown()
			}
			l.logStoreError(err)
			return until, blocked
		}
		if c.Remaining == 0 {
			// The reset is in whole seconds, rounded down: one more makes sure the window
			// has ended. The subject is the name without the period suffix.
			u := time.Unix(c.Reset+1, 0)
			until, blocked = later(until, u), true
			l.blocked.add(subjectOf(b.name), u, now)
		}
	}
	return until, blocked
}

// subjectOf drops the period suffix (":60s") from a bucket name.
func subjectOf(name string) string {
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == ':' {
			return name[:i]
		}
	}
	return name
}

// blockedSet remembers blocked subjects until their window ends.
type blockedSet struct {
	mu    sync.Mutex
	until map[string]time.Time
}

// maxBlocked bounds the set; past it, expired entries are dropped on insert.
const maxBlocked = 1 << 16

// get returns when subject's block ends, if it is blocked at now.
func (s *blockedSet) get(subject string, now time.Time) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.until[subject]
	if !ok {
		return time.Time{}, false
	}
	if !now.Before(u) {
		delete(s.until, subject)
		return time.Time{}, false
	}
	return u, true
}

func (s *blockedSet) add(subject string, until, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.until == nil {
		s.until = make(map[string]time.Time)
	}
	if len(s.until) >= maxBlocked {
		for k, u := range s.until {
			if !now.Before(u) {
				delete(s.until, k)
			}
		}
		if len(s.until) >= maxBlocked {
			return // the store still counts; only the shortcut is lost
		}
	}
	if u, ok := s.until[subject]; !ok || until.After(u) {
		s.until[subject] = until
	}
}
