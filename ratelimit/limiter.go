package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/ulule/limiter/v3"
	"github.com/ulule/limiter/v3/drivers/store/memory"
	redisstore "github.com/ulule/limiter/v3/drivers/store/redis"

	"github.com/keygate/keygate/config"
)

// Defaults for the Redis settings left at zero in config.RateLimit.
const (
	DefaultTimeout     = 50 * time.Millisecond
	DefaultDialTimeout = 200 * time.Millisecond
	// DefaultPrefix starts every bucket key in the store.
	DefaultPrefix = "keygate"
)

const (
	// logEvery is the least time between two log lines about a repeating failure.
	logEvery = 5 * time.Second
	// minBackoff and maxBackoff bound the wait between two attempts to build the Redis
	// store or to reach Redis again after a failure.
	minBackoff = 100 * time.Millisecond
	maxBackoff = 2 * time.Second
	// cleanUpInterval is how often the memory stores drop expired counters.
	cleanUpInterval = 30 * time.Second
)

// ErrStoreUnavailable is returned by Allow when the shared store could not answer and
// ratelimit.on_store_error is deny (503), and by Ready when Redis is down in that mode.
var ErrStoreUnavailable = errors.New("ratelimit: store unavailable")

// Options are the optional inputs of New; the zero value works.
type Options struct {
	// Log receives the limiter's own events (store errors, at most one line per 5 s).
	// Default: slog.Default().
	Log *slog.Logger
	// Registerer receives keygate_ratelimit_total and, with the Redis store,
	// keygate_dependency_up{dependency="redis"}. Default: none (metrics are kept but not
	// exported).
	Registerer prometheus.Registerer
	// Now is the clock for Retry-After and the failed-attempt memory. Default: time.Now.
	Now func() time.Time
	// Prefix starts every key in the store, so that tests or deployments sharing one Redis
	// do not meet. Default: "keygate".
	Prefix string
}

// onStoreError is ratelimit.on_store_error.
type onStoreError uint8

const (
	modeLocal onStoreError = iota
	modeAllow
	modeDeny
)

// Limiter decides whether requests are within their rate limits. It is safe for
// concurrent use. Close releases it.
type Limiter struct {
	log     *slog.Logger
	now     func() time.Time
	mode    onStoreError
	draft   bool
	timeout time.Duration // bounds one decision against Redis

	authenticated []limit // ratelimit.authenticated
	anonymous     []limit // ratelimit.anonymous
	failed        []limit // auth.failed_attempts

	// local is the store when ratelimit.store is memory, and the per-instance fallback
	// with on_store_error: local when it is redis.
	local limiter.Store

	// Redis only: client is nil with the memory store. shared is nil until the limiter's
	// Redis store has been built (it loads its scripts at construction); down is set when
	// a call failed and cleared when Redis answers again.
	client *redis.Client
	shared atomic.Pointer[limiter.Store]
	down   atomic.Bool
	kick   chan struct{} // wakes the background loop after a failure
	done   chan struct{}
	wg     sync.WaitGroup
	close  sync.Once

	metrics    *metrics
	storeLog   throttle
	upLog      throttle
	noRoute    *Route // for Allow with a nil *Route
	blocked    blockedSet
	redisPrefx string
}

// New builds a Limiter from the ratelimit section and auth.failed_attempts. It fails only
// on a configuration that Validate would reject (an unparsable Redis URL); it never fails
// because Redis is down. The Redis store is built in a background goroutine that retries
// with backoff; until then every decision is a store error, handled per on_store_error.
// The Redis URL never appears in an error or a log line.
func New(cfg config.RateLimit, failed config.Rates, o Options) (*Limiter, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	l := &Limiter{
		log:           o.Log,
		now:           o.Now,
		draft:         cfg.DraftHeaders,
		timeout:       cfg.Redis.Timeout,
		authenticated: compile(cfg.Authenticated),
		anonymous:     compile(cfg.Anonymous),
		failed:        compile(failed),
		local:         memory.NewStoreWithOptions(limiter.StoreOptions{Prefix: o.Prefix, CleanUpInterval: cleanUpInterval}),
		kick:          make(chan struct{}, 1),
		done:          make(chan struct{}),
		redisPrefx:    o.Prefix,
	}
	if l.timeout <= 0 {
		l.timeout = DefaultTimeout
	}
	switch cfg.OnStoreError {
	case "", "local":
		l.mode = modeLocal
	case "allow":
		l.mode = modeAllow
	case "deny":
		l.mode = modeDeny
	default:
		return nil, fmt.Errorf("ratelimit.on_store_error: must be local, allow or deny, got %q", cfg.OnStoreError)
	}
	switch cfg.Store {
	case "", "memory":
	case "redis":
		opt, err := redis.ParseURL(cfg.Redis.URL.Reveal())
		if err != nil {
			return nil, errors.New("ratelimit.redis.url: not a valid Redis URL") // the error would quote it
		}
		dial := cfg.Redis.DialTimeout
		if dial <= 0 {
			dial = DefaultDialTimeout
		}
		opt.ContextTimeoutEnabled = true // else deadlines are ignored for socket I/O
		opt.MaxRetries = -1              // a retry would only run past the timeout
		opt.DialTimeout = dial
		opt.DialerRetries = 1
		opt.ReadTimeout = l.timeout
		opt.WriteTimeout = l.timeout
		opt.PoolTimeout = l.timeout
		if opt.Protocol == 0 {
			// RESP2: keygate needs no push notifications, and with RESP3 go-redis checks
			// for them on every reply (about 2% of a request's CPU, measured).
			opt.Protocol = 2
		}
		if cfg.Redis.PoolSize > 0 {
			opt.PoolSize = cfg.Redis.PoolSize
		}
		redis.SetLogger(&redisLogger{log: l.log})
		l.client = redis.NewClient(opt)
		l.down.Store(true)
	default:
		return nil, fmt.Errorf("ratelimit.store: must be memory or redis, got %q", cfg.Store)
	}
	l.metrics = newMetrics(o.Registerer, l.client != nil)
	l.noRoute = l.Route(config.Route{})
	if l.client != nil {
		l.wg.Add(1)
		go l.maintain()
	}
	return l, nil
}

// Close stops the background work and closes the Redis client. It is idempotent.
func (l *Limiter) Close() error {
	var err error
	l.close.Do(func() {
		close(l.done)
		l.wg.Wait()
		if l.client != nil {
			err = l.client.Close()
		}
	})
	return err
}

// Ready reports whether this instance can make decisions under its configured failure
// mode: it returns ErrStoreUnavailable when the store is Redis, Redis is down and
// on_store_error is deny; with local or allow it returns an error whose Degraded method
// reports true, since an outage keeps the instance serving. With
// the Redis store it asks Redis (within ctx) and sets keygate_dependency_up{dependency="redis"}.
func (l *Limiter) Ready(ctx context.Context) error {
	if l.client == nil {
		return nil
	}
	up := l.sharedStore() != nil
	if up {
		ctx, cancel := context.WithTimeout(ctx, l.timeout+time.Second)
		err := l.client.Ping(ctx).Err()
		cancel()
		if err != nil {
			l.markDown()
			up = false
		}
	}
	if up {
		return nil
	}
	if l.mode == modeDeny {
		return fmt.Errorf("%w: redis is down", ErrStoreUnavailable)
	}
	return degraded{errors.New("ratelimit: redis is down; on_store_error applies")}
}

// degraded is Redis down while on_store_error (local, allow) keeps the instance serving;
// /readyz shows it as "degraded" and stays ready.
type degraded struct{ error }

// Degraded reports that the instance still serves.
func (degraded) Degraded() bool { return true }

// sharedStore returns the Redis store while Redis is believed up, else nil.
func (l *Limiter) sharedStore() limiter.Store {
	if l.down.Load() {
		return nil
	}
	if p := l.shared.Load(); p != nil {
		return *p
	}
	return nil
}

// markDown records that Redis failed: decisions skip it (per on_store_error) until the
// background loop reaches it again.
func (l *Limiter) markDown() {
	if l.down.CompareAndSwap(false, true) {
		l.metrics.redisUp.Set(0)
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
}

// maintain builds the Redis store (its constructor loads the scripts and fails while Redis
// is down), then watches for failures and pings Redis until it answers again, each with
// backoff. It runs until Close.
func (l *Limiter) maintain() {
	defer l.wg.Done()
	backoff := minBackoff
	for {
		var err error
		switch {
		case l.shared.Load() == nil:
			var st limiter.Store
			st, err = redisstore.NewStoreWithOptions(l.client, limiter.StoreOptions{Prefix: l.redisPrefx})
			if err == nil {
				l.shared.Store(&st)
			}
		case l.down.Load():
			ctx, cancel := context.WithTimeout(context.Background(), l.timeout+time.Second)
			err = l.client.Ping(ctx).Err()
			cancel()
		default:
			select {
			case <-l.kick:
				continue
			case <-l.done:
				return
			}
		}
		if err == nil {
			l.down.Store(false)
			l.metrics.redisUp.Set(1)
			backoff = minBackoff
			if l.upLog.allow(l.now()) {
				l.log.LogAttrs(context.Background(), slog.LevelInfo, "ratelimit store up", slog.String("store", "redis"))
			}
			continue
		}
		l.logStoreError(err)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-l.done:
			t.Stop()
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// logStoreError logs a store failure, at most once per logEvery.
func (l *Limiter) logStoreError(err error) {
	if !l.storeLog.allow(l.now()) {
		return
	}
	var fallback string
	switch l.mode {
	case modeLocal:
		fallback = "local"
	case modeAllow:
		fallback = "allow"
	default:
		fallback = "deny"
	}
	l.log.LogAttrs(context.Background(), slog.LevelWarn, "ratelimit store error",
		slog.String("store", "redis"), slog.String("on_store_error", fallback),
		slog.String("error", err.Error()))
}

// throttle lets one event through per logEvery.
type throttle struct{ last atomic.Int64 }

func (t *throttle) allow(now time.Time) bool {
	n := now.UnixNano()
	last := t.last.Load()
	if last != 0 && n-last < int64(logEvery) {
		return false
	}
	return t.last.CompareAndSwap(last, n)
}

// redisLogger sends go-redis's internal log lines to slog, at most one per logEvery.
type redisLogger struct {
	log *slog.Logger
	th  throttle
}

func (r *redisLogger) Printf(ctx context.Context, format string, v ...any) {
	if !r.th.allow(time.Now()) {
		return
	}
	r.log.LogAttrs(ctx, slog.LevelWarn, "redis client", slog.String("message", fmt.Sprintf(format, v...)))
}
