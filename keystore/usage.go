package keystore

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// UsageRecorder aggregates key uses in memory and writes them to the store in batches,
// so the request path never waits on a write. It is safe for concurrent use.
type UsageRecorder struct {
	store Store
	log   *slog.Logger
	now   func() time.Time

	mu      sync.RWMutex // Record holds it shared, a flush exclusively
	pending map[string]*usageCell
}

// usageCell counts one key's uses since the last flush.
type usageCell struct {
	count atomic.Int64
	last  atomic.Int64 // Unix nanoseconds of the latest use
}

// NewUsageRecorder returns a recorder writing to s.
func NewUsageRecorder(s Store, log *slog.Logger) *UsageRecorder {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &UsageRecorder{store: s, log: log, now: time.Now, pending: map[string]*usageCell{}}
}

// Record counts one use of a key now. Uses of keys already counted since the last flush
// take a shared lock and two atomic operations.
func (u *UsageRecorder) Record(keyID string) {
	now := u.now().UnixNano()
	u.mu.RLock()
	c := u.pending[keyID]
	if c != nil {
		c.add(now)
		u.mu.RUnlock()
		return
	}
	u.mu.RUnlock()
	u.mu.Lock()
	if c = u.pending[keyID]; c == nil {
		c = &usageCell{}
		u.pending[keyID] = c
	}
	c.add(now)
	u.mu.Unlock()
}

func (c *usageCell) add(now int64) {
	c.count.Add(1)
	c.latest(now)
}

// latest makes t the last use unless a later one is recorded.
func (c *usageCell) latest(t int64) {
	for {
		last := c.last.Load()
		if t <= last || c.last.CompareAndSwap(last, t) {
			return
		}
	}
}

// Flush writes what was counted since the last flush. On a store error the counts are
// kept for the next flush.
func (u *UsageRecorder) Flush(ctx context.Context) error {
	u.mu.Lock()
	if len(u.pending) == 0 {
		u.mu.Unlock()
		return nil
	}
	cells := u.pending
	u.pending = make(map[string]*usageCell, len(cells))
	u.mu.Unlock() // no Record holds a cell of the old map any more: they count under the lock
	batch := make([]Usage, 0, len(cells))
	for id, c := range cells {
		batch = append(batch, Usage{KeyID: id, Count: c.count.Load(), LastUsed: time.Unix(0, c.last.Load())})
	}
	err := u.store.RecordUsage(ctx, batch)
	if err != nil {
		u.mu.Lock()
		for _, b := range batch { // merge back
			c := u.pending[b.KeyID]
			if c == nil {
				c = &usageCell{}
				u.pending[b.KeyID] = c
			}
			c.count.Add(b.Count)
			c.latest(b.LastUsed.UnixNano())
		}
		u.mu.Unlock()
	}
	return err
}

// Run flushes every interval until ctx ends, then flushes once more.
func (u *UsageRecorder) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 10 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := u.Flush(ctx); err != nil {
				u.log.Warn("usage flush failed; counts kept for the next one", slog.String("error", err.Error()))
			}
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := u.Flush(fctx); err != nil {
				u.log.Warn("final usage flush failed", slog.String("error", err.Error()))
			}
			cancel()
			return
		}
	}
}
