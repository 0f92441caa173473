package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"hash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/keystore"
)

// basicCache remembers successful id:password checks so that repeated requests do not pay
// the KDF. An entry is named by HMAC-SHA256(secret, id ":" password) under a random secret
// drawn at start, never by the plaintext, and holds the Entry given to the Identity.
// Entries live for ttl, at most max of them, and go at once when their principal changes.
type basicCache struct {
	ttl  time.Duration
	max  int
	pool sync.Pool // of *basicMAC

	mu sync.RWMutex
	m  map[keystore.Hash]basicEntry
	// gen grows with every eviction (written under mu). A check remembers gen before it
	// reads the principal and is cached only if no eviction happened since, so that a
	// password change racing a check of the old password cannot leave it cached.
	gen atomic.Uint64
}

type basicEntry struct {
	entry *keystore.Entry
	until time.Time
}

// basicMAC is one pooled HMAC with the buffer that keeps key from allocating.
type basicMAC struct {
	mac hash.Hash
	buf []byte
	sum keystore.Hash
}

func newBasicCache(ttl time.Duration, max int) *basicCache {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		panic("auth: no random source: " + err.Error()) // start-up only; crypto/rand does not fail on supported systems
	}
	c := &basicCache{ttl: ttl, max: max, m: map[keystore.Hash]basicEntry{}}
	c.pool.New = func() any { return &basicMAC{mac: hmac.New(sha256.New, secret)} }
	return c
}

// key returns the cache name of id:password. It does not allocate, and leaves no
// plaintext behind in the pool.
func (c *basicCache) key(id, password string) keystore.Hash {
	s := c.pool.Get().(*basicMAC)
	s.mac.Reset()
	s.buf = append(append(append(s.buf[:0], id...), ':'), password...)
	s.mac.Write(s.buf)
	clear(s.buf)
	s.mac.Sum(s.sum[:0])
	out := s.sum
	c.pool.Put(s)
	return out
}

// get returns the cached Entry of h, or nil when none is fresh at now.
func (c *basicCache) get(h keystore.Hash, now time.Time) *keystore.Entry {
	c.mu.RLock()
	be, ok := c.m[h]
	c.mu.RUnlock()
	if !ok || !now.Before(be.until) {
		return nil
	}
	return be.entry
}

// put caches e under h unless an eviction happened after gen was read.
func (c *basicCache) put(h keystore.Hash, e *keystore.Entry, now time.Time, gen uint64) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	if _, ok := c.m[h]; !ok && len(c.m) >= c.max {
		c.dropOne(now)
	}
	c.m[h] = basicEntry{entry: e, until: now.Add(c.ttl)}
}

// dropOne removes an expired entry, or any one when none has expired. Called under mu.
func (c *basicCache) dropOne(now time.Time) {
	var any keystore.Hash
	for h, be := range c.m {
		if !now.Before(be.until) {
			delete(c.m, h)
			return
		}
		any = h
	}
	delete(c.m, any)
}

// evict forgets every cached check of principal id.
func (c *basicCache) evict(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	for h, be := range c.m {
		if be.entry.Principal.ID == id {
			delete(c.m, h)
		}
	}
}

// flush forgets every cached check.
func (c *basicCache) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	clear(c.m)
}
