package keystore

import (
	"testing"
	"time"
)

// Peek agrees with Lookup's freshness rule: fresh entries only, not stale, negative or
// marked for revalidation.
func TestCachePeek(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewCache(nil, CacheOptions{TTL: time.Minute, Now: func() time.Time { return now }})
	var fresh, old, neg, unknown Hash
	fresh[0], old[0], neg[0], unknown[0] = 1, 2, 3, 4
	c.entries[fresh] = &cached{entry: &Entry{}, fetched: now.Add(-59 * time.Second)}
	c.entries[old] = &cached{entry: &Entry{}, fetched: now.Add(-time.Minute)}
	c.negative[neg] = now.Add(time.Minute)
	for _, tc := range []struct {
		name string
		h    Hash
		want bool
	}{
		{"fresh", fresh, true},
		{"older than TTL", old, false},
		{"negative", neg, false},
		{"unknown", unknown, false},
	} {
		if got := c.Peek(tc.h); got != tc.want {
			t.Errorf("Peek(%s) = %v, want %v", tc.name, got, tc.want)
		}
	}
	c.Revalidate()
	if c.Peek(fresh) {
		t.Errorf("Peek(fresh) after Revalidate = true, want false")
	}
}
