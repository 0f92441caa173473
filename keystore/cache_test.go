package keystore

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// fakeStore answers LookupKey from a map; the rest of Store is not used here.
type fakeStore struct {
	Store
	mu      sync.Mutex
	keys    map[Hash]Entry
	calls   atomic.Int64
	fail    error
	block   chan struct{}
	usage   []Usage
	usageOK bool
}

func (f *fakeStore) LookupKey(_ context.Context, h Hash) (Entry, error) {
	f.calls.Add(1)
	if f.block != nil {
		<-f.block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return Entry{}, f.fail
	}
	e, ok := f.keys[h]
	if !ok {
		return Entry{}, ErrNotFound
	}
	return e, nil
}

func (f *fakeStore) RecordUsage(_ context.Context, u []Usage) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.usage = append(f.usage, u...)
	return nil
}

func newFake() (*fakeStore, Hash, Hash) {
	h1, h2 := Hash{1}, Hash{2}
	return &fakeStore{keys: map[Hash]Entry{
		h1: {Key: Key{ID: "k1", PrincipalID: "p1"}, Principal: Principal{ID: "p1", Scopes: []string{"b", "a"}}},
		h2: {Key: Key{ID: "k2", PrincipalID: "p2"}, Principal: Principal{ID: "p2"}},
	}}, h1, h2
}

func TestCacheTTLAndNegative(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, h1, _ := newFake()
		c := NewCache(f, CacheOptions{TTL: 30 * time.Second, NegativeTTL: 5 * time.Second})
		ctx := context.Background()
		for range 3 {
			e, err := c.Lookup(ctx, h1)
			if err != nil || e.Key.ID != "k1" {
				t.Fatalf("Lookup = %v, %v", e, err)
			}
		}
		if got := f.calls.Load(); got != 1 {
			t.Errorf("store calls within the ttl = %d, want 1", got)
		}
		if e, _ := c.Lookup(ctx, h1); e.HeldHeader != "a,b" {
			t.Errorf("HeldHeader = %q, want the sorted scopes a,b", e.HeldHeader)
		}
		time.Sleep(31 * time.Second)
		c.Lookup(ctx, h1)
		if got := f.calls.Load(); got != 2 {
			t.Errorf("store calls after the ttl = %d, want 2", got)
		}

		unknown := Hash{9}
		for range 3 {
			if _, err := c.Lookup(ctx, unknown); !errors.Is(err, ErrNotFound) {
				t.Fatalf("unknown: %v, want ErrNotFound", err)
			}
		}
		if got := f.calls.Load(); got != 3 {
			t.Errorf("store calls for a remembered unknown hash = %d, want 3", got)
		}
		time.Sleep(6 * time.Second)
		c.Lookup(ctx, unknown)
		if got := f.calls.Load(); got != 4 {
			t.Errorf("store calls after the negative ttl = %d, want 4", got)
		}
	})
}

func TestCacheStale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, h1, _ := newFake()
		c := NewCache(f, CacheOptions{TTL: 30 * time.Second, StaleTTL: 10 * time.Minute})
		ctx := context.Background()
		c.Lookup(ctx, h1)
		f.fail = errors.New("store down")
		time.Sleep(time.Minute)
		if e, err := c.Lookup(ctx, h1); err != nil || e.Key.ID != "k1" {
			t.Errorf("within stale_ttl: %v, %v; want the cached entry", e, err)
		}
		time.Sleep(10 * time.Minute)
		if _, err := c.Lookup(ctx, h1); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("beyond stale_ttl: %v, want the store error", err)
		}
	})
}

func TestCacheEvictAndRevalidate(t *testing.T) {
	f, h1, h2 := newFake()
	c := NewCache(f, CacheOptions{})
	ctx := context.Background()
	c.Lookup(ctx, h1)
	c.Lookup(ctx, h2)
	c.Evict(Change{KeyID: "k1"})
	c.Lookup(ctx, h1)
	c.Lookup(ctx, h2)
	if got := f.calls.Load(); got != 3 {
		t.Errorf("store calls after evicting k1 = %d, want 3", got)
	}
	c.Evict(Change{PrincipalID: "p2"})
	c.Lookup(ctx, h2)
	if got := f.calls.Load(); got != 4 {
		t.Errorf("store calls after evicting principal p2 = %d, want 4", got)
	}
	c.Revalidate()
	f.fail = errors.New("store down")
	if e, err := c.Lookup(ctx, h1); err != nil || e.Key.ID != "k1" {
		t.Errorf("revalidation with the store down: %v, %v; want the stale entry", e, err)
	}
	if got := f.calls.Load(); got != 5 {
		t.Errorf("store calls after Revalidate = %d, want 5", got)
	}
}

func TestCacheSingleflight(t *testing.T) {
	f, h1, _ := newFake()
	f.block = make(chan struct{})
	c := NewCache(f, CacheOptions{})
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Lookup(context.Background(), h1)
		}()
	}
	for f.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let the others queue behind the first
	close(f.block)
	wg.Wait()
	if got := f.calls.Load(); got != 1 {
		t.Errorf("store calls for 20 concurrent misses = %d, want 1", got)
	}
}

func TestCacheBounded(t *testing.T) {
	f := &fakeStore{keys: map[Hash]Entry{}}
	for i := range 10 {
		f.keys[Hash{byte(i)}] = Entry{Key: Key{ID: "k"}}
	}
	c := NewCache(f, CacheOptions{MaxEntries: 4})
	for i := range 10 {
		c.Lookup(context.Background(), Hash{byte(i)})
		c.Lookup(context.Background(), Hash{byte(100 + i)})
	}
	if len(c.entries) > 4 || len(c.negative) > 4 {
		t.Errorf("cache holds %d entries and %d negative, want at most 4 each", len(c.entries), len(c.negative))
	}
}

func TestUsageRecorder(t *testing.T) {
	f, _, _ := newFake()
	u := NewUsageRecorder(f, nil)
	u.Record("k1")
	u.Record("k1")
	u.Record("k2")
	f.fail = errors.New("down")
	if err := u.Flush(context.Background()); err == nil {
		t.Fatal("Flush with the store down: nil error")
	}
	f.fail = nil
	u.Record("k1")
	if err := u.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, x := range f.usage {
		got[x.KeyID] += x.Count
	}
	if got["k1"] != 3 || got["k2"] != 1 {
		t.Errorf("flushed counts = %v, want k1:3 k2:1 (kept across a failed flush)", got)
	}
}

func TestCacheEmptyChangeRevalidates(t *testing.T) {
	f, h1, _ := newFake()
	c := NewCache(f, CacheOptions{})
	resynced := false
	c.Notify(nil, func() { resynced = true })
	c.Lookup(context.Background(), h1)
	c.Evict(Change{}) // a Store's "listening again"
	c.Lookup(context.Background(), h1)
	if got := f.calls.Load(); got != 2 || !resynced {
		t.Errorf("after the empty change: %d store calls (want 2), resync called %v (want true)", got, resynced)
	}
}

// lookupAcross runs a first Lookup of h1 during which the cache gets ch (an eviction, or
// with the zero Change a revalidation), and returns once it has returned.
func lookupAcross(t *testing.T, ch Change) (*fakeStore, Hash, *Cache) {
	t.Helper()
	f, h1, _ := newFake()
	f.block = make(chan struct{})
	c := NewCache(f, CacheOptions{})
	done := make(chan struct{})
	go func() {
		c.Lookup(context.Background(), h1)
		close(done)
	}()
	for f.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	c.Evict(ch)
	close(f.block)
	<-done
	f.block = nil
	return f, h1, c
}

func TestCacheLookupDuringEvictionIsRechecked(t *testing.T) {
	f, h1, c := lookupAcross(t, Change{KeyID: "k1"}) // a revocation while the lookup was in flight
	c.Lookup(context.Background(), h1)
	if got := f.calls.Load(); got != 2 {
		t.Errorf("store calls = %d, want 2: an answer loaded across an eviction must be rechecked", got)
	}
}

func TestUsageRecorderConcurrentFlush(t *testing.T) {
	f, _, _ := newFake()
	u := NewUsageRecorder(f, nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				u.Record([]string{"k1", "k2", "k3"}[(g+i)%3])
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			default:
				u.Flush(context.Background())
			}
		}
	}()
	wg.Wait()
	close(done)
	u.Flush(context.Background())
	var total int64
	for _, x := range f.usage {
		total += x.Count
	}
	if total != 8000 {
		t.Errorf("flushed %d uses, want 8000: none lost or counted twice across flushes", total)
	}
}

// An answer loaded across an eviction is never kept: were the store to fail next, it
// must not come back as a stale entry (the eviction was for a revocation).
func TestCacheEvictedAnswerNotServedStale(t *testing.T) {
	f, h1, c := lookupAcross(t, Change{KeyID: "k1"})
	f.fail = errors.New("store down")
	if e, err := c.Lookup(context.Background(), h1); err == nil {
		t.Errorf("Lookup with the store down after an eviction = %v, nil; want the store error", e.Key.ID)
	}
}

// An answer loaded across a revalidation (no change named: the first Watch listening, or
// a lost connection) is kept to be rechecked: it is asked of the store on its next use,
// and serves as stale when the store has failed by then.
func TestCacheLookupDuringRevalidationServesStale(t *testing.T) {
	f, h1, c := lookupAcross(t, Change{}) // the store's Watch listens (again)
	if c.Fresh(h1) != nil {
		t.Errorf("Fresh after a lookup across a revalidation: an entry, want none (to be rechecked)")
	}
	f.fail = errors.New("store down")
	e, err := c.Lookup(context.Background(), h1)
	if err != nil || e.Key.ID != "k1" {
		t.Fatalf("Lookup with the store down after a revalidation = %v; want the entry as stale", err)
	}
	if got := f.calls.Load(); got != 2 {
		t.Errorf("store calls = %d, want 2: the answer is rechecked before it is served", got)
	}
}
