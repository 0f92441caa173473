package keystore

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/keygate/keygate/config"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"
)

// CacheOptions configures a Cache. Zero values take the defaults of config.Default.
type CacheOptions struct {
	TTL         time.Duration // how long an entry is trusted without the store; 30s
	NegativeTTL time.Duration // how long an unknown hash is remembered; 5s
	StaleTTL    time.Duration // how long an entry serves while the store fails; 10m
	MaxEntries  int           // bound of each of the two maps; 100000
	Now         func() time.Time
	Log         *slog.Logger
	Registerer  prometheus.Registerer
}

// Cache is the in-process cache of key lookups in front of a Store: verified entries for
// TTL, unknown hashes for NegativeTTL, stale entries while the store fails, one store
// lookup for concurrent misses of one hash, and eviction on changes. It is safe for
// concurrent use.
type Cache struct {
	store Store
	o     CacheOptions
	group singleflight.Group

	mu       sync.RWMutex
	entries  map[Hash]*cached
	negative map[Hash]time.Time // hash → until
	evicted  uint64             // counts evictions (see load)
	resynced uint64             // counts revalidations (see load)

	rehashQ chan rehash

	onChange func(Change) // set by Notify before Watch starts
	onResync func()

	hit, miss, negativeHit, staleHit prometheus.Counter
	lookupDur                        prometheus.Observer
}

// cached is one entry of the cache; never modified once stored (replaced instead).
type cached struct {
	entry   *Entry
	fetched time.Time
	recheck bool // ask the store before trusting it again (notifications may be lost)
}

// NewCache returns a Cache in front of s.
func NewCache(s Store, o CacheOptions) *Cache {
	if o.TTL <= 0 {
		o.TTL = 30 * time.Second
	}
	if o.NegativeTTL <= 0 {
		o.NegativeTTL = 5 * time.Second
	}
	if o.StaleTTL < o.TTL {
		o.StaleTTL = o.TTL
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = 100000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	c := &Cache{store: s, o: o, entries: map[Hash]*cached{}, negative: map[Hash]time.Time{},
		rehashQ: make(chan rehash, 1024)}
	m := newMetrics(o.Registerer)
	c.hit = m.cache.WithLabelValues("hit")
	c.miss = m.cache.WithLabelValues("miss")
	c.negativeHit = m.cache.WithLabelValues("negative_hit")
	c.staleHit = m.cache.WithLabelValues("stale_hit")
	c.lookupDur = m.duration.WithLabelValues("lookup")
	return c
}

// Lookup returns the entry of a hash: from the cache while fresh, else from the store.
// It returns ErrNotFound for an unknown hash (remembered for NegativeTTL), and a store
// error only when the store fails and no entry younger than StaleTTL is cached. The
// returned Entry is shared: never modify it.
func (c *Cache) Lookup(ctx context.Context, h Hash) (*Entry, error) {
	now := c.o.Now()
	c.mu.RLock()
	ce := c.entries[h]
	until, neg := c.negative[h]
	c.mu.RUnlock()
	if ce != nil && !ce.recheck && now.Sub(ce.fetched) < c.o.TTL {
		c.hit.Inc()
		return ce.entry, nil
	}
	if neg && now.Before(until) {
		c.negativeHit.Inc()
		return nil, ErrNotFound
	}
	c.miss.Inc()
	v, err, _ := c.group.Do(string(h[:]), func() (any, error) { return c.load(h) })
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if ce != nil && now.Sub(ce.fetched) < c.o.StaleTTL {
			c.staleHit.Inc()
			return ce.entry, nil
		}
		return nil, err
	}
	return v.(*Entry), nil
}

// load reads one hash from the store and caches the answer. It runs without the
// caller's context so that one caller going away does not fail the others waiting.
func (c *Cache) load(h Hash) (*Entry, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.mu.RLock()
	evicted, resynced := c.evicted, c.resynced
	c.mu.RUnlock()
	start := c.o.Now()
	e, err := c.store.LookupKey(ctx, h)
	c.lookupDur.Observe(time.Since(start).Seconds())
	now := c.o.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if errors.Is(err, ErrNotFound) {
		delete(c.entries, h)
		if len(c.negative) >= c.o.MaxEntries {
			evictOne(c.negative, now)
		}
		c.negative[h] = now.Add(c.o.NegativeTTL)
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	e.Principal.PasswordHash = "" // never kept beside keys: nothing on the key path needs it
	e.Held = e.EffectiveScopes()
	e.HeldHeader = strings.Join(e.Held, ",")
	// Stored rates were validated when written; one that no longer parses applies no limit.
	e.KeyRates, _ = config.ParseRates(e.Key.RateLimit)
	e.PrincipalRates, _ = config.ParseRates(e.Principal.RateLimit)
	if _, ok := c.entries[h]; !ok && len(c.entries) >= c.o.MaxEntries {
		for k := range c.entries { // map order is random: drop any one
			delete(c.entries, k)
			break
		}
	}
	delete(c.negative, h)
	// An eviction during the lookup may be about a change the store's answer predates
	// (a revocation): serve the answer this once, but keep it out of the cache, where it
	// could later be served as stale. A revalidation names no change: the answer is kept
	// as every other entry then is, to be rechecked on its next use and to serve as stale
	// should the store fail (as at start-up, when the first Watch listens).
	if c.evicted != evicted {
		return &e, nil
	}
	c.entries[h] = &cached{entry: &e, fetched: now, recheck: c.resynced != resynced}
	return &e, nil
}

// evictOne drops an expired negative entry, or any one when none has expired.
func evictOne(m map[Hash]time.Time, now time.Time) {
	var any Hash
	for k, until := range m {
		if !now.Before(until) {
			delete(m, k)
			return
		}
		any = k
	}
	delete(m, any)
}

// Notify makes the cache pass every change it evicts, and every resynchronisation after
// lost notifications, on to other caches of this process (the password cache). Call it
// before Watch.
func (c *Cache) Notify(onChange func(Change), onResync func()) {
	c.onChange, c.onResync = onChange, onResync
}

// Evict forgets what a change touches: one key (KeyID set), or every key of a principal.
// The zero Change (no principal, no key) means that anything may have changed unseen, as
// a Store's Watch reports once it listens again after a lost connection: every entry is
// then revalidated (see Revalidate).
func (c *Cache) Evict(ch Change) {
	if ch.PrincipalID == "" && ch.KeyID == "" {
		c.Revalidate()
		return
	}
	c.mu.Lock()
	c.evicted++
	for h, ce := range c.entries {
		if ch.KeyID != "" && ce.entry.Key.ID == ch.KeyID ||
			ch.KeyID == "" && ce.entry.Principal.ID == ch.PrincipalID {
			delete(c.entries, h)
		}
	}
	c.mu.Unlock()
	if c.onChange != nil {
		c.onChange(ch)
	}
}

// Revalidate makes every entry be checked against the store on its next use, while
// keeping it to serve as stale should the store fail (used when change notifications may
// have been missed), and forgets the negative entries.
func (c *Cache) Revalidate() {
	c.mu.Lock()
	c.resynced++
	for h, ce := range c.entries {
		c.entries[h] = &cached{entry: ce.entry, fetched: ce.fetched, recheck: true}
	}
	clear(c.negative)
	c.mu.Unlock()
	if c.onResync != nil {
		c.onResync()
	}
}

// Forget drops one hash from both maps (after a rehash under a new secret).
func (c *Cache) Forget(h Hash) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, h)
	delete(c.negative, h)
}

// Watch evicts every change the store reports until ctx ends, rewatching after an error.
// Entries are revalidated when the watch fails (so that, while the store is down, they
// serve as stale) and again when the store's Watch reports, with the zero Change, that it
// listens again: a change committed between the failure and the new LISTEN is seen by
// no notification, and an entry loaded from the store in that gap would otherwise be
// trusted for a whole TTL.
func (c *Cache) Watch(ctx context.Context) {
	for ctx.Err() == nil {
		err := c.store.Watch(ctx, c.Evict)
		if ctx.Err() != nil {
			return
		}
		c.o.Log.Warn("keystore watch failed; cached keys will be revalidated", slog.String("error", err.Error()))
		c.Revalidate()
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// rehash is one key found under a previous secret.
type rehash struct {
	keyID        string
	old, current Hash
}

// QueueRehash asks for a key found under a previous secret to be stored under the current
// one. It never blocks: when the queue is full the key is re-hashed on a later use.
func (c *Cache) QueueRehash(keyID string, old, current Hash) {
	select {
	case c.rehashQ <- rehash{keyID, old, current}:
	default:
	}
}

// RunRehash writes queued rehashes until ctx ends.
func (c *Cache) RunRehash(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-c.rehashQ:
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := c.store.Rehash(wctx, r.keyID, r.current)
			cancel()
			if err != nil {
				c.o.Log.Warn("rehash failed", slog.String("key_id", r.keyID), slog.String("error", err.Error()))
				continue
			}
			c.Forget(r.old)
			c.Forget(r.current)
		}
	}
}
