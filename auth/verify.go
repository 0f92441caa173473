package auth

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/keystore"
	"github.com/prometheus/client_golang/prometheus"
)

// keyLookup is what auth needs from the keystore: a hash in, a key out, and whether a
// lookup would be answered from memory. Satisfied by *keystore.Cache.
type keyLookup interface {
	Lookup(ctx context.Context, h keystore.Hash) (*keystore.Entry, error)
	// Peek reports whether Lookup would answer h from a fresh cached entry, without
	// the store.
	Peek(h keystore.Hash) bool
	// Fresh returns the fresh cached entry of h, or nil (then Lookup decides).
	Fresh(h keystore.Hash) *keystore.Entry
}

// principalLookup is what auth needs to check id:password credentials. Satisfied by
// keystore.Store.
type principalLookup interface {
	// GetPrincipal returns a principal; keystore.ErrNotFound when unknown or deleted.
	GetPrincipal(ctx context.Context, id string) (keystore.Principal, error)
}

// attempts is the failed-attempt limiter of SPEC §4, as auth uses it.
type attempts interface {
	// Blocked reports whether ip, or principal when it is not "", has used up its failed
	// attempts, and how long until it may try again. An error of its own store should
	// answer false (never a 429 for a store error).
	Blocked(ctx context.Context, ip netip.Addr, principal string) (wait time.Duration, blocked bool)
	// Failed counts one failed authentication against ip, and against principal when it
	// is not "" (a wrong password for an existing principal).
	Failed(ctx context.Context, ip netip.Addr, principal string)
}

// ErrKDFBusy is returned by Verify, with ResultStoreError, when Options.MaxConcurrentKDF
// password checks are already running: the caller answers 503 with Retry-After: 1.
var ErrKDFBusy = errors.New("auth: too many concurrent password checks")

// Mode is a route's auth mode.
type Mode uint8

// The route auth modes of SPEC §3.
const (
	ModeRequired Mode = iota
	ModeOptional
	ModeNone
)

// Options configures an Authenticator. Only Format, Hasher and Keys are required.
type Options struct {
	Format       keystore.Format
	Hasher       *keystore.Hasher
	Keys         keyLookup
	AcceptLegacy bool
	// Rehash is called, off the request path, when a key was found under a previous
	// secret; it stores the key's hash under the current one. Nil: no rehash.
	Rehash func(keyID string, old, current keystore.Hash)

	// Principals looks up the principal of id:password credentials. Nil: every
	// principal is unknown (and each such check still costs a dummy KDF run).
	Principals principalLookup
	// Attempts is the failed-attempt limiter (auth.failed_attempts). Nil: none.
	Attempts attempts
	// BasicCacheTTL is how long a successful id:password check is cached
	// (auth.basic_cache_ttl). 0: 5m; negative: no cache.
	BasicCacheTTL time.Duration
	// BasicCacheMax bounds the number of cached id:password checks. 0: 10000.
	BasicCacheMax int
	// MaxConcurrentKDF bounds the password checks running at once
	// (auth.max_concurrent_kdf); beyond it Verify answers ErrKDFBusy. 0: twice the CPUs.
	MaxConcurrentKDF int
	// RehashPassword is called by RunRehash after a successful check against a bcrypt
	// hash or an argon2id hash with other parameters, with the principal, the hash that
	// matched and its replacement from HashPassword; it should store newPHC only if the
	// principal's hash is still oldHash (compare-and-set). Nil: no password rehash.
	RehashPassword func(principalID, oldHash, newPHC string)

	Now        func() time.Time
	Registerer prometheus.Registerer
}

// Authenticator checks credentials against the keystore. It is safe for concurrent use.
type Authenticator struct {
	o       Options
	counter [3][resultCount]prometheus.Counter // [method][result]
	basic   *basicCache
	kdf     chan struct{} // semaphore of running password checks
	kdfRuns atomic.Uint64
	rehashQ chan passwordRehash
}

// passwordRehash is one successful check of an outdated hash, waiting for RunRehash.
type passwordRehash struct {
	principalID, oldHash, password string
}

// NewAuthenticator returns an Authenticator. It registers keygate_auth_total and
// keygate_auth_kdf_total with o.Registerer when that is set.
func NewAuthenticator(o Options) *Authenticator {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.BasicCacheTTL == 0 {
		o.BasicCacheTTL = 5 * time.Minute
	}
	if o.BasicCacheMax <= 0 {
		o.BasicCacheMax = 10000
	}
	if o.MaxConcurrentKDF <= 0 {
		o.MaxConcurrentKDF = 2 * runtime.NumCPU()
	}
	a := &Authenticator{
		o:       o,
		basic:   newBasicCache(o.BasicCacheTTL, o.BasicCacheMax),
		kdf:     make(chan struct{}, o.MaxConcurrentKDF),
		rehashQ: make(chan passwordRehash, 64),
	}
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keygate_auth_total",
		Help: "Authentication attempts by method (key, basic, anonymous) and result.",
	}, []string{"method", "result"})
	kdf := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "keygate_auth_kdf_total",
		Help: "Password hash (KDF) runs on the request path, dummy runs included.",
	}, func() float64 { return float64(a.kdfRuns.Load()) })
	if o.Registerer != nil {
		o.Registerer.MustRegister(vec, kdf)
	}
	for m := range a.counter {
		for r := range a.counter[m] {
			a.counter[m][r] = vec.WithLabelValues(Method(m).String(), Result(r).String())
		}
	}
	return a
}

// Verify authenticates the credentials of a request from clientIP for a route in mode.
// It returns the Identity and ResultOK, or the Result that says why not; err is non-nil
// only when the credentials could not be checked (ResultStoreError: a 503, not a 401),
// and is ErrKDFBusy when too many password checks are running. With ModeOptional and no
// credentials it returns an anonymous Identity.
//
// Failed attempts (SPEC §4): before a password check that is not cached and before a key
// lookup that the key cache cannot answer, a caller that Options.Attempts finds blocked
// gets ResultBlocked (a 429) without the check; a cached key or password check is never
// held back. Every malformed, unknown, revoked, expired, disabled or bad-password result
// is reported to Options.Attempts, a bad password also against its principal.
//
// Verify counts every outcome in keygate_auth_total. It keeps no plaintext beyond the
// call, except a password whose hash is to be upgraded, queued for RunRehash.
func (a *Authenticator) Verify(ctx context.Context, c *Credentials, mode Mode, clientIP netip.Addr) (Identity, Result, error) {
	id, res, err := a.verify(ctx, c, mode, clientIP)
	a.counter[id.Method][res].Inc()
	if a.o.Attempts != nil {
		switch res {
		case ResultMalformed, ResultUnknown, ResultRevoked, ResultExpired, ResultDisabled:
			a.o.Attempts.Failed(ctx, clientIP, "")
		case ResultBadPassword:
			a.o.Attempts.Failed(ctx, clientIP, c.Username)
		}
	}
	return id, res, err
}

func (a *Authenticator) verify(ctx context.Context, c *Credentials, mode Mode, ip netip.Addr) (Identity, Result, error) {
	if c.Malformed {
		return Identity{Method: methodOf(c)}, ResultMalformed, nil
	}
	switch c.Carrier {
	case CarrierNone:
		if mode == ModeOptional {
			return Identity{}, ResultOK, nil
		}
		return Identity{}, ResultMissing, nil
	case CarrierBasic:
		if a.o.Format.HasPrefix(c.Username) {
			return a.verifyKey(ctx, c.Username, ip, true) // a key: the password is ignored
		}
		return a.verifyBasic(ctx, c.Username, c.Password, ip)
	}
	return a.verifyKey(ctx, c.Key, ip, true)
}

// blocked asks Options.Attempts (set) whether ip, or principal when it is not "", is
// blocked, and when it is, sets how long it has to wait on id.
func (a *Authenticator) blocked(ctx context.Context, ip netip.Addr, principal string, id *Identity) bool {
	wait, blocked := a.o.Attempts.Blocked(ctx, ip, principal)
	if blocked {
		id.RetryAfter = wait
	}
	return blocked
}

func methodOf(c *Credentials) Method {
	if c.Carrier == CarrierBasic && c.Password != "" {
		return MethodBasic
	}
	return MethodKey
}

// verifyKey checks one presented key: prefix, length, checksum, then the cache under the
// current secret and the previous ones. With checkBlocked, a blocked caller whose key the
// cache cannot answer gets ResultBlocked before the lookup.
func (a *Authenticator) verifyKey(ctx context.Context, key string, ip netip.Addr, checkBlocked bool) (Identity, Result, error) {
	id := Identity{Method: MethodKey}
	if a.o.Format.HasPrefix(key) {
		if a.o.Format.Check(key) != nil {
			return id, ResultMalformed, nil
		}
	} else if !a.o.AcceptLegacy || key == "" {
		return id, ResultUnknown, nil
	}
	h0 := a.o.Hasher.Sum(0, key)
	if e := a.o.Keys.Fresh(h0); e != nil { // the common case: a cached key, one map lookup
		return a.keyState(e, id)
	}
	if checkBlocked && a.o.Attempts != nil && !a.o.Keys.Peek(h0) && !a.peekPrevious(key) &&
		a.blocked(ctx, ip, "", &id) {
		return id, ResultBlocked, nil
	}
	var e *keystore.Entry
	var err error
	for i := 0; i < a.o.Hasher.Secrets(); i++ {
		h := h0
		if i > 0 {
			h = a.o.Hasher.Sum(i, key)
		}
		e, err = a.o.Keys.Lookup(ctx, h)
		if err == nil {
			if i > 0 && a.o.Rehash != nil {
				a.o.Rehash(e.Key.ID, h, h0)
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
	return a.keyState(e, id)
}

// keyState is the outcome of a found key: ok, or why it may not be used now.
func (a *Authenticator) keyState(e *keystore.Entry, id Identity) (Identity, Result, error) {
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

// peekPrevious reports whether key is cached under one of the previous secrets.
func (a *Authenticator) peekPrevious(key string) bool {
	for i := 1; i < a.o.Hasher.Secrets(); i++ {
		if a.o.Keys.Peek(a.o.Hasher.Sum(i, key)) {
			return true
		}
	}
	return false
}

// keyCached reports whether key is a fresh entry of the key cache under any secret.
func (a *Authenticator) keyCached(key string) bool {
	return a.o.Keys.Peek(a.o.Hasher.Sum(0, key)) || a.peekPrevious(key)
}

// verifyBasic checks Basic credentials whose username lacks the key prefix (SPEC §3):
// the basic cache; then, with legacy keys on and no principal of that id, the username
// as a legacy key; else the principal's password. A username that is neither costs one
// dummy KDF run, as a wrong password does.
func (a *Authenticator) verifyBasic(ctx context.Context, user, pw string, ip netip.Addr) (Identity, Result, error) {
	id := Identity{Method: MethodBasic}
	ch := a.basic.key(user, pw)
	if e := a.basic.get(ch, a.o.Now()); e != nil {
		id.Entry = e
		return id, ResultOK, nil
	}
	legacy := a.o.AcceptLegacy
	if legacy && a.keyCached(user) {
		// A legacy key the key cache holds: answered from memory, never held back, and
		// served while the store is down. (Read strictly, SPEC §3 would first ask the
		// store whether a principal has this id; only a principal id equal to a legacy
		// key's value differs, and then its password check would have to be cached.)
		return a.verifyKey(ctx, user, ip, false)
	}
	if a.o.Attempts != nil {
		// With legacy keys on, user may be a key: it must not reach the limiter as a
		// principal name until the store says it is one; nor may a value that cannot be
		// a principal id.
		who := user
		if legacy || !maybePrincipalID(user) {
			who = ""
		}
		if a.blocked(ctx, ip, who, &id) {
			return id, ResultBlocked, nil
		}
	}
	gen := a.basic.gen.Load()
	p, err := a.principal(ctx, user)
	if legacy && err != nil && !errors.Is(err, keystore.ErrNotFound) {
		// The store cannot say whether user is a principal: a key the cache still
		// serves (stale) is the best answer; otherwise 503.
		if kid, res, _ := a.verifyKey(ctx, user, ip, false); res != ResultUnknown && res != ResultStoreError {
			return kid, res, nil
		}
		return id, ResultStoreError, err
	}
	switch {
	case errors.Is(err, keystore.ErrNotFound):
		if legacy {
			kid, res, err := a.verifyKey(ctx, user, ip, false)
			if res != ResultUnknown {
				return kid, res, err
			}
			id.Method = MethodKey // neither: an unknown key, at the cost of a wrong password
		}
		if _, _, err := a.runKDF(dummyHash, pw); err != nil {
			return id, ResultStoreError, err
		}
		return id, ResultUnknown, nil
	case err != nil:
		return id, ResultStoreError, err
	}
	if legacy && a.o.Attempts != nil && a.blocked(ctx, ip, user, &id) {
		return id, ResultBlocked, nil
	}
	if p.Disabled() || p.PasswordHash == "" {
		if _, _, err := a.runKDF(dummyHash, pw); err != nil {
			return id, ResultStoreError, err
		}
		if p.Disabled() {
			return id, ResultDisabled, nil
		}
		return id, ResultBadPassword, nil
	}
	ok, rehash, err := a.runKDF(p.PasswordHash, pw)
	switch {
	case errors.Is(err, ErrMalformedHash):
		return id, ResultStoreError, fmt.Errorf("password of principal %s: %w", p.ID, err)
	case err != nil:
		return id, ResultStoreError, err
	case !ok:
		return id, ResultBadPassword, nil
	}
	if rehash && a.o.RehashPassword != nil {
		select {
		case a.rehashQ <- passwordRehash{principalID: p.ID, oldHash: p.PasswordHash, password: pw}:
		default: // full: upgraded on a later login
		}
	}
	id.Entry = basicEntryOf(p)
	a.basic.put(ch, id.Entry, a.o.Now(), gen)
	return id, ResultOK, nil
}

// principal returns the principal named user; keystore.ErrNotFound, without asking the
// store, when user cannot be a principal id.
func (a *Authenticator) principal(ctx context.Context, user string) (keystore.Principal, error) {
	if a.o.Principals == nil || !maybePrincipalID(user) {
		return keystore.Principal{}, keystore.ErrNotFound
	}
	return a.o.Principals.GetPrincipal(ctx, user)
}

// maybePrincipalID reports whether s has the syntax of a principal id: 1–64 of
// [a-zA-Z0-9._-].
func maybePrincipalID(s string) bool {
	if s == "" || len(s) > keystore.MaxPrincipalIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// basicEntryOf returns the Entry of an Identity authenticated by p's password: no key,
// p's scopes sorted, p's rates parsed, and no password hash.
func basicEntryOf(p keystore.Principal) *keystore.Entry {
	p.PasswordHash = ""
	held := slices.Clone(p.Scopes)
	slices.Sort(held)
	e := &keystore.Entry{Principal: p, Held: held, HeldHeader: strings.Join(held, ",")}
	// Stored rates were validated when written; one that no longer parses applies no limit.
	e.PrincipalRates, _ = config.ParseRates(p.RateLimit)
	return e
}

// runKDF is VerifyPassword in one of the MaxConcurrentKDF slots, or ErrKDFBusy at once
// when none is free.
func (a *Authenticator) runKDF(phc, pw string) (ok, needsRehash bool, err error) {
	select {
	case a.kdf <- struct{}{}:
	default:
		return false, false, ErrKDFBusy
	}
	defer func() { <-a.kdf }()
	a.kdfRuns.Add(1)
	return VerifyPassword(phc, pw)
}

// KDFRuns returns how many password hashes Verify has computed, dummy runs included
// (also exported as keygate_auth_kdf_total). Tests use it to show that a check did not
// run.
func (a *Authenticator) KDFRuns() uint64 { return a.kdfRuns.Load() }

// Evict forgets the cached password checks that ch can invalidate: all of its principal's
// for a principal change (KeyID empty); a key change touches no password. cmd chains it
// with the key cache's Evict on every keystore change.
func (a *Authenticator) Evict(ch keystore.Change) {
	if ch.KeyID == "" {
		a.basic.evict(ch.PrincipalID)
	}
}

// Flush forgets every cached password check (when changes may have been missed).
func (a *Authenticator) Flush() { a.basic.flush() }

// RunRehash upgrades queued password hashes until ctx ends: for each successful check of
// an outdated hash, HashPassword of the password, then Options.RehashPassword. Run it in
// one goroutine; without it, the queue fills and further upgrades are dropped.
func (a *Authenticator) RunRehash(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-a.rehashQ:
			phc, err := HashPassword(r.password)
			if err != nil {
				continue // the random source failed: upgraded on a later login
			}
			a.o.RehashPassword(r.principalID, r.oldHash, phc)
		}
	}
}
