package keystore

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// memStore answers every LookupKey with a fresh, realistic Entry built from the hash, the
// way the PostgreSQL store does (every string a new allocation, empty metadata nil): a
// UUID key id, a principal id, a name, a prefix and two scopes on the principal and on the
// key. It holds nothing itself, so that the heap growth measured is the cache's alone.
type memStore struct{ Store }

func (memStore) LookupKey(_ context.Context, h Hash) (Entry, error) {
	i := binary.BigEndian.Uint64(h[:8])
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	pid := fmt.Sprintf("customer-%07d", i/10)
	return Entry{
		Key: Key{
			ID:          fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", uint32(i), uint16(i>>32), i&0xfff, i&0xfff, i),
			PrincipalID: pid,
			Name:        fmt.Sprintf("key-%d", i),
			Prefix:      fmt.Sprintf("kg_%08d", i%100000000),
			Hash:        h,
			Scopes:      []string{fmt.Sprint("read"), fmt.Sprint("write")},
			CreatedAt:   at,
		},
		Principal: Principal{
			ID:        fmt.Sprint(pid),
			Scopes:    []string{fmt.Sprint("read"), fmt.Sprint("write")},
			CreatedAt: at,
			UpdatedAt: at,
		},
	}, nil
}

func heapInUse() uint64 {
	var m runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestCacheMemoryPerKey fills a Cache with 100,000 entries and logs the heap growth per
// cached key (target under 1 KiB, docs/scale.md). It fails only above 2 KiB, so that it is
// not flaky. Run: go test ./keystore -run TestCacheMemoryPerKey -v
func TestCacheMemoryPerKey(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a cache of 100,000 entries")
	}
	const n = 100000
	hashes := make([]Hash, n)
	for i := range hashes {
		binary.BigEndian.PutUint64(hashes[i][:8], uint64(i))
		hashes[i][31] = 1 // never the zero hash
	}
	ctx := context.Background()
	before := heapInUse()
	c := NewCache(memStore{}, CacheOptions{TTL: time.Hour, StaleTTL: time.Hour, MaxEntries: n})
	for _, h := range hashes {
		if _, err := c.Lookup(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	after := heapInUse()
	c.mu.RLock()
	got := len(c.entries)
	c.mu.RUnlock()
	runtime.KeepAlive(c)
	runtime.KeepAlive(hashes)
	if got != n {
		t.Fatalf("cache holds %d entries, want %d", got, n)
	}
	per := float64(after-before) / n
	t.Logf("%d cached keys: heap %+.1f MiB, %.0f bytes per cached key", n, float64(after-before)/(1<<20), per)
	if per > 2048 {
		t.Errorf("%.0f bytes per cached key, want under 2 KiB (target 1 KiB)", per)
	}
}
