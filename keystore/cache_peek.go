package keystore

// Peek reports whether Lookup would answer h from a fresh verified entry, without the
// store: an entry younger than TTL and not marked for revalidation, whatever the key's
// state. A negative or stale entry is not fresh. Peek does not count in
// keygate_keystore_cache_total and never blocks on the store.
func (c *Cache) Peek(h Hash) bool {
	now := c.o.Now()
	c.mu.RLock()
	ce := c.entries[h]
	c.mu.RUnlock()
	return ce != nil && !ce.recheck && now.Sub(ce.fetched) < c.o.TTL
}

// Fresh returns the entry Lookup would answer h with from the cache alone, when that entry
// is fresh (as Peek), counting a hit; nil otherwise, counting nothing. It lets the request
// path take a cached key in one map lookup.
func (c *Cache) Fresh(h Hash) *Entry {
	now := c.o.Now()
	c.mu.RLock()
	ce := c.entries[h]
	c.mu.RUnlock()
	if ce == nil || ce.recheck || now.Sub(ce.fetched) >= c.o.TTL {
		return nil
	}
	c.hit.Inc()
	return ce.entry
}
