package auth

import (
	"context"
	"errors"
	"time"

	"github.com/keygate/keygate/keystore"
	"github.com/prometheus/client_golang/prometheus"
)

// keyLookup is what auth needs from the keystore: a hash in, a key out.
type keyLookup interface {
	Lookup(ctx context.Context, h keystore.Hash) (*keystore.Entry, error)
}

// Mode is a route's auth mode.
type Mode uint8

// The route auth modes of SPEC §3.
const (
	ModeRequired Mode = iota
	ModeOptional
	ModeNone
)

// Options configures an Authenticator.
type Options struct {
	Format       keystore.Format
	Hasher       *keystore.Hasher
	Keys         keyLookup
	AcceptLegacy bool
	// Rehash is called, off the request path, when a key was found under a previous
	// secret; it stores the key's hash under the current one. Nil: no rehash.
	Rehash     func(keyID string, old, current keystore.Hash)
	Now        func() time.Time
	Registerer prometheus.Registerer
}

// Authenticator checks credentials against the keystore.
type Authenticator struct {
	o       Options
	counter [3][resultCount]prometheus.Counter // [method][result]
}

// NewAuthenticator returns an Authenticator.
func NewAuthenticator(o Options) *Authenticator {
	if o.Now == nil {
		o.Now = time.Now
	}
	a := &Authenticator{o: o}
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keygate_auth_total",
		Help: "Authentication attempts by method (key, basic, anonymous) and result.",
	}, []string{"method", "result"})
	if o.Registerer != nil {
		o.Registerer.MustRegister(vec)
	}
	for m := range a.counter {
		for r := range a.counter[m] {
			a.counter[m][r] = vec.WithLabelValues(Method(m).String(), Result(r).String())
		}
	}
	return a
}

// Verify authenticates the credentials of a request for a route in mode. It returns
// the Identity and ResultOK, or the Result that says why not; err is non-nil only when
// the store could not answer (ResultStoreError: a 503, not a 401). With ModeOptional and
// no credentials it returns an anonymous Identity. Verify counts every outcome in
// keygate_auth_total and never holds the plaintext beyond the call.
func (a *Authenticator) Verify(ctx context.Context, c *Credentials, mode Mode) (Identity, Result, error) {
	id, res, err := a.verify(ctx, c, mode)
	a.counter[id.Method][res].Inc()
	return id, res, err
}

func (a *Authenticator) verify(ctx context.Context, c *Credentials, mode Mode) (Identity, Result, error) {
	if c.Malformed {
		return Identity{Method: methodOf(c)}, ResultMalformed, nil
	}
	var key string
	switch c.Carrier {
	case CarrierNone:
		if mode == ModeOptional {
			return Identity{}, ResultOK, nil
		}
		return Identity{}, ResultMissing, nil
	case CarrierBasic:
		if !a.o.Format.HasPrefix(c.Username) && !a.o.AcceptLegacy {
			// A principal's id:password: the password path joins here in a later step.
			return Identity{Method: MethodBasic}, ResultUnknown, nil
		}
		key = c.Username
	default:
		key = c.Key
	}
	return a.verifyKey(ctx, key)
}

func methodOf(c *Credentials) Method {
	if c.Carrier == CarrierBasic && c.Password != "" {
		return MethodBasic
	}
	return MethodKey
}

// verifyKey checks one presented key: prefix, length, checksum, then the cache under the
// current secret and the previous ones.
func (a *Authenticator) verifyKey(ctx context.Context, key string) (Identity, Result, error) {
	id := Identity{Method: MethodKey}
	if a.o.Format.HasPrefix(key) {
		if a.o.Format.Check(key) != nil {
			return id, ResultMalformed, nil
		}
	} else if !a.o.AcceptLegacy || key == "" {
		return id, ResultUnknown, nil
	}
	var e *keystore.Entry
	var err error
	for i := 0; i < a.o.Hasher.Secrets(); i++ {
		h := a.o.Hasher.Sum(i, key)
		e, err = a.o.Keys.Lookup(ctx, h)
		if err == nil {
			if i > 0 && a.o.Rehash != nil {
				a.o.Rehash(e.Key.ID, h, a.o.Hasher.Hash(key))
			}
			break
		}
		if !errors.Is(err, keystore.ErrNotFound) {
			return id, ResultStoreError, err
		}
	}
	if err != nil {
		return id, ResultUnknown, nil
	}
	id.Entry = e
	now := a.o.Now()
	switch {
	case e.Key.RevokedAt != nil:
		return id, ResultRevoked, nil
	case e.Key.ExpiresAt != nil && !now.Before(*e.Key.ExpiresAt):
		return id, ResultExpired, nil
	case e.Principal.DisabledAt != nil:
		return id, ResultDisabled, nil
	}
	return id, ResultOK, nil
}
