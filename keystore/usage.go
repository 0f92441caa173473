package keystore

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// UsageRecorder aggregates key uses in memory and writes them to the store in batches,
// so the request path never waits on a write. It is safe for concurrent use.
type UsageRecorder struct {
	store Store
	log   *slog.Logger
	now   func() time.Time

	mu      sync.Mutex
	pending map[string]*Usage
}

// NewUsageRecorder returns a recorder writing to s.
func NewUsageRecorder(s Store, log *slog.Logger) *UsageRecorder {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &UsageRecorder{store: s, log: log, now: time.Now, pending: map[string]*Usage{}}
}

// Record counts one use of a key now.
func (u *UsageRecorder) Record(keyID string) {
	now := u.now()
	u.mu.Lock()
	p := u.pending[keyID]
	if p == nil {
		p = &Usage{KeyID: keyID}
		u.pending[keyID] = p
	}
	p.Count++
	p.LastUsed = now
	u.mu.Unlock()
}

// Flush writes what was counted since the last flush. On a store error the counts are
// kept for the next flush.
func (u *UsageRecorder) Flush(ctx context.Context) error {
	u.mu.Lock()
	if len(u.pending) == 0 {
		u.mu.Unlock()
		return nil
	}
	batch := make([]Usage, 0, len(u.pending))
	for _, p := range u.pending {
		batch = append(batch, *p)
	}
	clear(u.pending)
	u.mu.Unlock()
	err := u.store.RecordUsage(ctx, batch)
	if err != nil {
		u.mu.Lock()
		for _, b := range batch { // merge back
			p := u.pending[b.KeyID]
			if p == nil {
				p = &Usage{KeyID: b.KeyID}
				u.pending[b.KeyID] = p
			}
			p.Count += b.Count
			if b.LastUsed.After(p.LastUsed) {
				p.LastUsed = b.LastUsed
			}
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
