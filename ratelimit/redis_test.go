package ratelimit

import (
	"context"
	"errors"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/internal/testenv"
)

const testTimeout = 50 * time.Millisecond

// slack is how much longer than the Redis timeout a decision may take (scheduling, -race).
const slack = 100 * time.Millisecond

func redisConfig(t *testing.T, redisURL, onStoreError string) config.RateLimit {
	t.Helper()
	c := memoryConfig(t, "", "")
	c.Store = "redis"
	c.Redis.URL = config.Secret(redisURL)
	c.Redis.Timeout = testTimeout
	c.OnStoreError = onStoreError
	return c
}

// relayed starts a relay to the test Redis and returns it with the Redis URL through it.
func relayed(t *testing.T) (*testenv.Relay, string) {
	t.Helper()
	base := testenv.RedisURL(t)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: not a valid URL", testenv.EnvRedisURL)
	}
	r := testenv.NewRelay(t, u.Host)
	u.Host = r.Addr()
	return r, u.String()
}

// waitShared polls until the limiter uses the shared store, for at most 10 s.
func waitShared(t *testing.T, l *Limiter) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for l.sharedStore() == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the Redis store is not in use 10 s after Redis answered")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRedisConcurrent(t *testing.T) {
	// A burst of 200 on a fresh pool under -race needs more than 50 ms for its dials: this
	// test is about counting, the outage tests are about time.
	c := redisConfig(t, testenv.RedisURL(t), "deny")
	c.Redis.Timeout = 5 * time.Second
	l := newLimiter(t, c, nil, Options{Prefix: testenv.RedisPrefix(t)})
	waitShared(t, l)
	got, errs := admitted(t, l, l.Route(config.Route{Name: "api"}), keyID("k1", "p1", rates(t, "50-M"), nil), 200)
	if got != 50 || errs != 0 {
		t.Errorf("200 concurrent against 50-M on Redis: admitted %d (%d errors), want 50", got, errs)
	}
}

// TestRedisSharedAcrossInstances: two limiters on one Redis admit the limit between them.
func TestRedisSharedAcrossInstances(t *testing.T) {
	redisURL := testenv.RedisURL(t)
	prefix := testenv.RedisPrefix(t)
	a := newLimiter(t, redisConfig(t, redisURL, "deny"), nil, Options{Prefix: prefix})
	b := newLimiter(t, redisConfig(t, redisURL, "deny"), nil, Options{Prefix: prefix})
	waitShared(t, a)
	waitShared(t, b)
	id := keyID("k1", "p1", rates(t, "5-M"), nil)
	var allowed int
	for i := range 10 {
		l := a
		if i%2 == 1 {
			l = b
		}
		d, err := l.Allow(t.Context(), nil, id, netip.Addr{})
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if !d.Limited {
			allowed++
		}
	}
	if allowed != 5 {
		t.Errorf("two instances against 5-M: admitted %d, want 5", allowed)
	}
}

func TestRedisFailedAttempts(t *testing.T) {
	redisURL := testenv.RedisURL(t)
	prefix := testenv.RedisPrefix(t)
	a := newLimiter(t, redisConfig(t, redisURL, "deny"), rates(t, "3-M"), Options{Prefix: prefix})
	b := newLimiter(t, redisConfig(t, redisURL, "deny"), rates(t, "3-M"), Options{Prefix: prefix})
	waitShared(t, a)
	waitShared(t, b)
	ip := netip.MustParseAddr("198.51.100.7")
	for range 3 {
		a.Failed(t.Context(), ip, "")
	}
	if _, blocked := b.Blocked(t.Context(), ip, ""); !blocked {
		t.Errorf("after 3 failures on another instance: not blocked, want blocked")
	}
	if _, blocked := b.Blocked(t.Context(), netip.MustParseAddr("198.51.100.8"), ""); blocked {
		t.Errorf("another IP: blocked, want not blocked")
	}
}

// TestRedisOutage cuts (or silences) Redis in the middle of a run: local still limits per
// instance, allow allows, deny fails; every decision counts as store_error and none waits
// past the timeout; after Restore, shared limiting resumes without a restart.
func TestRedisOutage(t *testing.T) {
	for _, outage := range []string{"cut", "blackhole"} {
		for _, mode := range []string{"local", "allow", "deny"} {
			t.Run(outage+"/"+mode, func(t *testing.T) {
				testRedisOutage(t, outage, mode)
			})
		}
	}
}

func testRedisOutage(t *testing.T, outage, mode string) {
	relay, relayURL := relayed(t)
	prefix := testenv.RedisPrefix(t)
	reg := prometheus.NewRegistry()
	l := newLimiter(t, redisConfig(t, relayURL, mode), nil, Options{Prefix: prefix, Registerer: reg})
	direct := newLimiter(t, redisConfig(t, testenv.RedisURL(t), "deny"), nil, Options{Prefix: prefix})
	waitShared(t, l)
	waitShared(t, direct)
	if got := value(l.metrics.redisUp); got != 1 {
		t.Errorf("keygate_dependency_up{dependency=redis} = %v while up, want 1", got)
	}
	rt := l.Route(config.Route{Name: "api"})
	id := keyID("k1", "p1", rates(t, "5-M"), nil)
	ctx := t.Context()

	for i := range 3 {
		if d, err := l.Allow(ctx, rt, id, netip.Addr{}); err != nil || d.Limited {
			t.Fatalf("request %d before the outage: %+v, %v; want allowed", i, d, err)
		}
	}

	switch outage {
	case "cut":
		relay.Cut()
	default:
		relay.Blackhole()
	}
	var allowed, limited, failed int
	for i := range 10 {
		start := time.Now()
		d, err := l.Allow(ctx, rt, id, netip.Addr{})
		took := time.Since(start)
		if took > testTimeout+slack {
			t.Errorf("request %d during the outage took %v, want at most %v", i, took, testTimeout+slack)
		}
		// After the first failure the limiter knows Redis is down and does not wait on it.
		if i > 0 && took > testTimeout/2 {
			t.Errorf("request %d during the outage took %v, want it not to wait on Redis again", i, took)
		}
		switch {
		case err != nil:
			failed++
			if !errors.Is(err, ErrStoreUnavailable) {
				t.Errorf("request %d: error %v, want ErrStoreUnavailable", i, err)
			}
		case d.Limited:
			limited++
		default:
			allowed++
		}
	}
	want := map[string][3]int{"local": {5, 5, 0}, "allow": {10, 0, 0}, "deny": {0, 0, 10}}[mode]
	if got := [3]int{allowed, limited, failed}; got != want {
		t.Errorf("during the outage: allowed, limited, failed = %v, want %v", got, want)
	}
	if got := count(l, "api", "store_error"); got != 10 {
		t.Errorf("store_error count = %v after 10 decisions in the outage, want 10", got)
	}
	if got, want := readiness(l.Ready(ctx)), map[string]string{"deny": "down"}[mode]; got != want && !(want == "" && got == "degraded") {
		t.Errorf("Ready during the outage: %s, want down with deny, degraded otherwise", got)
	}
	if got := value(l.metrics.redisUp); got != 0 {
		t.Errorf("keygate_dependency_up{dependency=redis} = %v during the outage, want 0", got)
	}

	relay.Restore()
	waitShared(t, l)
	// The shared bucket holds the 3 requests made before the outage: 2 more, then limited,
	// on either instance.
	for i := range 3 {
		d, err := l.Allow(ctx, rt, id, netip.Addr{})
		if err != nil || d.Limited != (i == 2) {
			t.Errorf("request %d after Restore: %+v, %v; want limited=%v", i, d, err, i == 2)
		}
	}
	if d, err := direct.Allow(ctx, nil, id, netip.Addr{}); err != nil || !d.Limited {
		t.Errorf("other instance after Restore: %+v, %v; want limited by the shared bucket", d, err)
	}
	if err := l.Ready(ctx); err != nil {
		t.Errorf("Ready after Restore = %v, want nil", err)
	}
	if got := value(l.metrics.redisUp); got != 1 {
		t.Errorf("keygate_dependency_up{dependency=redis} = %v after Restore, want 1", got)
	}
	if got := count(l, "api", "store_error"); got != 10 {
		t.Errorf("store_error count = %v after Restore, want still 10", got)
	}
}

// TestRedisDownAtStart: New succeeds with Redis unreachable; Ready reflects the mode; once
// Redis answers, the store is built and shared limiting works.
func TestRedisDownAtStart(t *testing.T) {
	for _, mode := range []string{"local", "deny"} {
		t.Run(mode, func(t *testing.T) {
			relay, relayURL := relayed(t)
			relay.Cut()
			prefix := testenv.RedisPrefix(t)
			start := time.Now()
			l := newLimiter(t, redisConfig(t, relayURL, mode), nil, Options{Prefix: prefix})
			if took := time.Since(start); took > time.Second {
				t.Errorf("New with Redis down took %v, want it not to wait for Redis", took)
			}
			ctx := t.Context()
			if got := readiness(l.Ready(ctx)); got != map[bool]string{true: "down", false: "degraded"}[mode == "deny"] {
				t.Errorf("Ready with Redis down: %s, want down with deny, degraded otherwise", got)
			}
			id := keyID("k1", "p1", rates(t, "4-M"), nil)
			d, err := l.Allow(ctx, nil, id, netip.Addr{})
			if mode == "deny" && !errors.Is(err, ErrStoreUnavailable) || mode == "local" && (err != nil || !d.Applied) {
				t.Errorf("Allow with Redis down = %+v, %v", d, err)
			}
			if got := count(l, "", "store_error"); got != 1 {
				t.Errorf("store_error count = %v, want 1", got)
			}

			relay.Restore()
			waitShared(t, l)
			if err := l.Ready(ctx); err != nil {
				t.Errorf("Ready after Restore = %v, want nil", err)
			}
			direct := newLimiter(t, redisConfig(t, testenv.RedisURL(t), "deny"), nil, Options{Prefix: prefix})
			waitShared(t, direct)
			for i, lim := range []*Limiter{l, direct, l, direct} {
				if d, err := lim.Allow(ctx, nil, id, netip.Addr{}); err != nil || d.Limited {
					t.Fatalf("shared request %d: %+v, %v; want allowed", i, d, err)
				}
			}
			if d, err := l.Allow(ctx, nil, id, netip.Addr{}); err != nil || !d.Limited {
				t.Errorf("5th shared request against 4-M: %+v, %v; want limited", d, err)
			}
		})
	}
}

// TestRedisReadyPing: Ready notices an outage without any traffic.
func TestRedisReadyPing(t *testing.T) {
	relay, relayURL := relayed(t)
	l := newLimiter(t, redisConfig(t, relayURL, "deny"), nil, Options{Prefix: testenv.RedisPrefix(t)})
	waitShared(t, l)
	if err := l.Ready(t.Context()); err != nil {
		t.Fatalf("Ready = %v, want nil", err)
	}
	relay.Cut()
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if err := l.Ready(ctx); !errors.Is(err, ErrStoreUnavailable) {
		t.Errorf("Ready after the cut = %v, want ErrStoreUnavailable", err)
	}
}

// BenchmarkAllowRedis is one decision with one rate against the test Redis.
func BenchmarkAllowRedis(b *testing.B) {
	c := memoryConfig(b, "", "")
	c.Store, c.Redis.URL, c.OnStoreError = "redis", config.Secret(testenv.RedisURL(b)), "deny"
	l := newLimiter(b, c, nil, Options{Prefix: testenv.RedisPrefix(b)})
	deadline := time.Now().Add(10 * time.Second)
	for l.sharedStore() == nil {
		if time.Now().After(deadline) {
			b.Fatal("the Redis store is not in use after 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	rt := l.Route(config.Route{Name: "api"})
	id := keyID("0b9e2b7c-8a4f-4d53-9d1e-3f6a2c1b7e10", "p1", rates(b, "1000000000-D"), nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Allow(ctx, rt, id, netip.Addr{}); err != nil {
			b.Fatal(err)
		}
	}
}

// readiness names what Ready's error means to /readyz: up, degraded or down.
func readiness(err error) string {
	var d interface{ Degraded() bool }
	switch {
	case err == nil:
		return "up"
	case errors.As(err, &d) && d.Degraded():
		return "degraded"
	}
	return "down"
}
