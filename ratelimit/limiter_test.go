package ratelimit

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/keystore"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func rates(t testing.TB, ss ...string) config.Rates {
	t.Helper()
	r, err := config.ParseRates(ss)
	if err != nil {
		t.Fatalf("ParseRates(%q): %v", ss, err)
	}
	return r
}

func keyID(key, principal string, keyRates, principalRates config.Rates) *auth.Identity {
	return &auth.Identity{Method: auth.MethodKey, Entry: &keystore.Entry{
		Key:       keystore.Key{ID: key, PrincipalID: principal},
		Principal: keystore.Principal{ID: principal},
		KeyRates:  keyRates, PrincipalRates: principalRates,
	}}
}

func basicID(principal string, principalRates config.Rates) *auth.Identity {
	return &auth.Identity{Method: auth.MethodBasic, Entry: &keystore.Entry{
		Principal: keystore.Principal{ID: principal}, PrincipalRates: principalRates,
	}}
}

// memoryConfig is a memory-store configuration with the given tiers.
func memoryConfig(t testing.TB, authenticated, anonymous string) config.RateLimit {
	t.Helper()
	c := config.Default().RateLimit
	c.Authenticated, c.Anonymous = nil, nil
	if authenticated != "" {
		c.Authenticated = rates(t, authenticated)
	}
	if anonymous != "" {
		c.Anonymous = rates(t, anonymous)
	}
	return c
}

func newLimiter(t testing.TB, cfg config.RateLimit, failed config.Rates, o Options) *Limiter {
	t.Helper()
	if o.Log == nil {
		o.Log = quiet
	}
	l, err := New(cfg, failed, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// count is keygate_ratelimit_total{route,result}. (prometheus/testutil would need
// kylelemons/godebug in go.mod.)
func count(l *Limiter, route, result string) float64 {
	return value(l.metrics.decisions.WithLabelValues(route, result))
}

func value(m prometheus.Metric) float64 {
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		panic(err)
	}
	if c := pb.GetCounter(); c != nil {
		return c.GetValue()
	}
	return pb.GetGauge().GetValue()
}

type want struct {
	name  string
	limit int64
}

func TestBuckets(t *testing.T) {
	ip4 := netip.MustParseAddr("203.0.113.7")
	ip6 := netip.MustParseAddr("2001:db8:1:2:aaaa::1")
	for _, tc := range []struct {
		name  string
		cfg   config.RateLimit
		route config.Route
		id    *auth.Identity
		ip    netip.Addr
		want  []want
	}{
		{"key: global default per key", memoryConfig(t, "1000-M", "60-M"), config.Route{Name: "api"},
			keyID("k1", "p1", nil, nil), ip4, []want{{"k:k1:60s", 1000}}},
		{"key: key rate replaces the default", memoryConfig(t, "1000-M", ""), config.Route{Name: "api"},
			keyID("k1", "p1", rates(t, "5-M"), nil), ip4, []want{{"k:k1:60s", 5}}},
		{"key: principal rate replaces the default, bucket per principal", memoryConfig(t, "1000-M", ""), config.Route{Name: "api"},
			keyID("k1", "p1", nil, rates(t, "50-M")), ip4, []want{{"p:p1:60s", 50}}},
		{"key: key and principal rates both apply", memoryConfig(t, "1000-M", ""), config.Route{Name: "api"},
			keyID("k1", "p1", rates(t, "5-M"), rates(t, "50-M")), ip4, []want{{"k:k1:60s", 5}, {"p:p1:60s", 50}}},
		{"key: a list of rates, one bucket per period", memoryConfig(t, "1000-M", ""), config.Route{Name: "api"},
			keyID("k1", "p1", rates(t, "10-S", "1000-H"), nil), ip4, []want{{"k:k1:1s", 10}, {"k:k1:3600s", 1000}}},
		{"key: default list", memoryConfig(t, "", ""), config.Route{Name: "api"},
			keyID("k1", "p1", nil, nil), ip4, nil},
		{"key: route limit per key on top of the caller limit", memoryConfig(t, "1000-M", ""),
			config.Route{Name: "api", RateLimit: rates(t, "10-S", "100-D")},
			keyID("k1", "p1", nil, nil), ip4, []want{{"k:k1:60s", 1000}, {"r:api:k:k1:1s", 10}, {"r:api:k:k1:86400s", 100}}},
		{"key: anonymous route limit does not apply", memoryConfig(t, "1000-M", ""),
			config.Route{Name: "api", AnonymousRateLimit: rates(t, "1-S")},
			keyID("k1", "p1", nil, nil), ip4, []want{{"k:k1:60s", 1000}}},
		{"basic: global default per principal", memoryConfig(t, "1000-M", ""), config.Route{Name: "api", RateLimit: rates(t, "3-S")},
			basicID("p1", nil), ip4, []want{{"p:p1:60s", 1000}, {"r:api:p:p1:1s", 3}}},
		{"basic: principal rate", memoryConfig(t, "1000-M", ""), config.Route{Name: "api"},
			basicID("p1", rates(t, "7-H")), ip4, []want{{"p:p1:3600s", 7}}},
		{"anonymous: tier per IPv4 address", memoryConfig(t, "1000-M", "60-M"), config.Route{Name: "api", RateLimit: rates(t, "3-S")},
			nil, ip4, []want{{"ip:203.0.113.7:60s", 60}}},
		{"anonymous: zero identity", memoryConfig(t, "1000-M", "60-M"), config.Route{Name: "api"},
			&auth.Identity{}, ip4, []want{{"ip:203.0.113.7:60s", 60}}},
		{"anonymous: IPv6 per /64", memoryConfig(t, "1000-M", "60-M"), config.Route{Name: "api"},
			nil, ip6, []want{{"ip:2001:db8:1:2::/64:60s", 60}}},
		{"anonymous: IPv4-mapped IPv6 per address", memoryConfig(t, "1000-M", "60-M"), config.Route{Name: "api"},
			nil, netip.MustParseAddr("::ffff:203.0.113.7"), []want{{"ip:203.0.113.7:60s", 60}}},
		{"anonymous: route's anonymous limit too", memoryConfig(t, "1000-M", "60-M"),
			config.Route{Name: "api", AnonymousRateLimit: rates(t, "2-S")},
			nil, ip4, []want{{"ip:203.0.113.7:60s", 60}, {"r:api:ip:203.0.113.7:1s", 2}}},
		{"anonymous: auth none, only the route's anonymous limit", memoryConfig(t, "1000-M", "60-M"),
			config.Route{Name: "api", Auth: "none", AnonymousRateLimit: rates(t, "2-S")},
			nil, ip4, []want{{"r:api:ip:203.0.113.7:1s", 2}}},
		{"anonymous: auth none without a limit", memoryConfig(t, "1000-M", "60-M"),
			config.Route{Name: "api", Auth: "none"}, nil, ip4, nil},
		{"route name with ':' is escaped", memoryConfig(t, "", ""),
			config.Route{Name: "a:k:b%", RateLimit: rates(t, "1-S")},
			keyID("k1", "p1", nil, nil), ip4, []want{{"r:a%3Ak%3Ab%25:k:k1:1s", 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLimiter(t, tc.cfg, nil, Options{})
			var got []want
			for _, b := range l.buckets(nil, l.Route(tc.route), tc.id, tc.ip) {
				got = append(got, want{b.name, b.rate.Limit})
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("buckets = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestBucketNamesDistinctPerPeriod: two rates of one list never share a counter, so a
// 1-S limit of 3 and a 1-M limit of 5 together admit 3 in the first second.
func TestBucketNamesDistinctPerPeriod(t *testing.T) {
	seen := map[string]time.Duration{}
	for _, p := range []time.Duration{time.Second, time.Minute, time.Hour, 24 * time.Hour, 90 * time.Second} {
		name := bucketName("r:api:", kindKey, "k1", periodSuffix(p))
		if prev, ok := seen[name]; ok {
			t.Errorf("bucketName for %v = %q, same as for %v", p, name, prev)
		}
		seen[name] = p
	}

	l := newLimiter(t, memoryConfig(t, "", ""), nil, Options{})
	id := keyID("k1", "p1", rates(t, "3-S", "5-M"), nil)
	var allowed int
	for range 5 {
		d, err := l.Allow(t.Context(), nil, id, netip.Addr{})
		if err != nil {
			t.Fatal(err)
		}
		if !d.Limited {
			allowed++
		}
	}
	if allowed != 3 {
		t.Errorf("allowed %d of 5 against [3-S 5-M], want 3", allowed)
	}
}

func TestAllowExactLimit(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	l := newLimiter(t, memoryConfig(t, "1000-M", ""), nil, Options{Registerer: reg})
	rt := l.Route(config.Route{Name: "api"})
	id := keyID("k1", "p1", rates(t, "5-M"), nil)
	for i := 1; i <= 7; i++ {
		d, err := l.Allow(t.Context(), rt, id, netip.Addr{})
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		wantLimited := i > 5
		wantRemaining := max(0, 5-int64(i))
		if d.Limited != wantLimited || d.Remaining != wantRemaining || d.Limit != 5 || !d.Applied || d.Period != time.Minute {
			t.Errorf("request %d: got %+v, want Limited=%v Limit=5 Remaining=%d Applied Period=1m", i, d, wantLimited, wantRemaining)
		}
		h := http.Header{}
		d.SetHeaders(h, false)
		ra := h.Get("Retry-After")
		if wantLimited {
			n, err := strconv.Atoi(ra)
			if err != nil || n < 1 || n > 61 {
				t.Errorf("request %d: Retry-After = %q, want 1..61 seconds", i, ra)
			}
		} else if ra != "" {
			t.Errorf("request %d: Retry-After = %q on an allowed request, want none", i, ra)
		}
	}
	if got := count(l, "api", "allowed"); got != 5 {
		t.Errorf("allowed count = %v, want 5", got)
	}
	if got := count(l, "api", "limited"); got != 2 {
		t.Errorf("limited count = %v, want 2", got)
	}
	// Another key of the same principal has its own bucket.
	d, _ := l.Allow(t.Context(), rt, keyID("k2", "p1", rates(t, "5-M"), nil), netip.Addr{})
	if d.Limited {
		t.Errorf("second key of the principal: limited, want its own bucket")
	}
	mfs, err := reg.Gather() // the pedantic registry checks the metrics' consistency
	if err != nil || len(mfs) != 1 || mfs[0].GetName() != "keygate_ratelimit_total" {
		t.Errorf("Gather = %v, %v; want keygate_ratelimit_total only", mfs, err)
	}
}

// TestDeniedCountsEverywhere: a request denied by one limit still counts against the others.
func TestDeniedCountsEverywhere(t *testing.T) {
	l := newLimiter(t, memoryConfig(t, "", ""), nil, Options{})
	rt := l.Route(config.Route{Name: "api", RateLimit: rates(t, "2-M")})
	id := keyID("k1", "p1", rates(t, "4-M"), nil)
	for range 4 {
		l.Allow(t.Context(), rt, id, netip.Addr{})
	}
	// The key's own bucket saw all 4 even though the route denied 2 of them.
	d, _ := l.Allow(t.Context(), l.Route(config.Route{Name: "other"}), id, netip.Addr{})
	if !d.Limited {
		t.Errorf("5th request on another route: %+v, want limited by the key's 4-M", d)
	}
}

func admitted(t *testing.T, l *Limiter, rt *Route, id *auth.Identity, n int) (int, int) {
	t.Helper()
	var ok, errs atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			d, err := l.Allow(context.Background(), rt, id, netip.Addr{})
			switch {
			case err != nil:
				errs.Add(1)
			case !d.Limited:
				ok.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	return int(ok.Load()), int(errs.Load())
}

func TestConcurrentMemory(t *testing.T) {
	l := newLimiter(t, memoryConfig(t, "", ""), nil, Options{})
	got, errs := admitted(t, l, l.Route(config.Route{Name: "api"}), keyID("k1", "p1", rates(t, "50-M"), nil), 200)
	if got != 50 || errs != 0 {
		t.Errorf("200 concurrent against 50-M: admitted %d (%d errors), want 50", got, errs)
	}
}

func TestFailedAttempts(t *testing.T) {
	ctx := t.Context()
	l := newLimiter(t, memoryConfig(t, "", ""), rates(t, "10-M"), Options{})
	a, b := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	for i := 1; i <= 10; i++ {
		if _, blocked := l.Blocked(ctx, a, ""); blocked {
			t.Fatalf("blocked before failure %d, want blocked only after 10", i)
		}
		l.Failed(ctx, a, "")
	}
	if _, blocked := l.Blocked(ctx, a, ""); !blocked {
		t.Errorf("after 10 failures: not blocked, want blocked")
	}
	if _, blocked := l.Blocked(ctx, b, ""); blocked {
		t.Errorf("another IP: blocked, want not blocked")
	}
	// The same /64 counts as one client.
	c6, d6 := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	for range 10 {
		l.Failed(ctx, c6, "")
	}
	if _, blocked := l.Blocked(ctx, d6, ""); !blocked {
		t.Errorf("another address of a blocked /64: not blocked, want blocked")
	}

	// Bad passwords for one principal from many addresses block that principal only.
	for i := range 10 {
		l.Failed(ctx, netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), "alice")
	}
	for _, tc := range []struct {
		name      string
		ip        netip.Addr
		principal string
		want      bool
	}{
		{"principal from a fresh IP", netip.MustParseAddr("192.0.2.200"), "alice", true},
		{"other principal from that IP", netip.MustParseAddr("192.0.2.200"), "bob", false},
		{"no principal from that IP", netip.MustParseAddr("192.0.2.200"), "", false},
		{"one of the failing IPs, no principal", netip.MustParseAddr("192.0.2.1"), "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, got := l.Blocked(ctx, tc.ip, tc.principal); got != tc.want {
				t.Errorf("Blocked(%v, %q) = %v, want %v", tc.ip, tc.principal, got, tc.want)
			}
		})
	}
}

// TestBlockedWait: a blocked caller is told when the windows that block it end, not the
// longest window of auth.failed_attempts; from the store and from the in-process set alike.
func TestBlockedWait(t *testing.T) {
	ctx := t.Context()
	l := newLimiter(t, memoryConfig(t, "", ""), rates(t, "2-M", "3-H"), Options{})
	ip := netip.MustParseAddr("198.51.100.7")
	if wait, blocked := l.Blocked(ctx, ip, ""); blocked || wait != 0 {
		t.Errorf("Blocked with no failures = %v, %v; want 0, false", wait, blocked)
	}
	l.Failed(ctx, ip, "")
	l.Failed(ctx, ip, "")
	for _, from := range []string{"store", "in-process set"} {
		if wait, blocked := l.Blocked(ctx, ip, ""); !blocked || wait <= 55*time.Second || wait > 61*time.Second {
			t.Errorf("Blocked (%s) after the minute window filled = %v, %v; want about a minute, true", from, wait, blocked)
		}
	}

	// Three bad passwords for alice from three addresses use up the hour window too: the
	// principal waits for the hour, the addresses (one failure each) are free.
	for i := range 3 {
		l.Failed(ctx, netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)}), "alice")
	}
	fresh := netip.MustParseAddr("192.0.2.99")
	for _, from := range []string{"store", "in-process set"} {
		if wait, blocked := l.Blocked(ctx, fresh, "alice"); !blocked || wait <= 59*time.Minute || wait > time.Hour+time.Second {
			t.Errorf("Blocked (%s) for alice = %v, %v; want about an hour, true", from, wait, blocked)
		}
	}
	if _, blocked := l.Blocked(ctx, fresh, ""); blocked {
		t.Errorf("the fresh address alone: blocked, want not blocked")
	}
	// A caller blocked by its address and for a principal waits for the later of the two.
	if wait, blocked := l.Blocked(ctx, ip, "alice"); !blocked || wait <= 59*time.Minute {
		t.Errorf("Blocked for a blocked address and alice = %v, %v; want about an hour, true", wait, blocked)
	}
}

// TestBlockedRemembered: a caller found blocked is not asked of the store again until its
// window ends; after it, it is free.
func TestBlockedRemembered(t *testing.T) {
	var now atomic.Pointer[time.Time]
	t0 := time.Now()
	now.Store(&t0)
	l := newLimiter(t, memoryConfig(t, "", ""), rates(t, "1-S"), Options{Now: func() time.Time { return *now.Load() }})
	ip := netip.MustParseAddr("198.51.100.9")
	l.Failed(t.Context(), ip, "")
	if _, ok := l.blocked.get("f:ip:198.51.100.9", t0); !ok {
		t.Fatalf("after the failure: not in the in-process set")
	}
	later := t0.Add(3 * time.Second)
	now.Store(&later)
	if _, ok := l.blocked.get("f:ip:198.51.100.9", later); ok {
		t.Errorf("3 s after a 1-S window: still remembered as blocked")
	}
}

func TestSetHeaders(t *testing.T) {
	at := time.Unix(1_700_000_000, 200_000_000)
	for _, tc := range []struct {
		name  string
		d     Decision
		draft bool
		want  http.Header
	}{
		{"not applied", Decision{}, true, http.Header{}},
		{"allowed", Decision{Applied: true, Limit: 100, Remaining: 42, Reset: at.Add(30 * time.Second).Truncate(time.Second), Period: time.Minute, at: at}, false,
			http.Header{"X-Ratelimit-Limit": {"100"}, "X-Ratelimit-Remaining": {"42"}, "X-Ratelimit-Reset": {"1700000030"}}},
		{"allowed, draft", Decision{Applied: true, Limit: 100, Remaining: 42, Reset: time.Unix(1_700_000_030, 0), Period: time.Minute, at: at}, true,
			http.Header{"X-Ratelimit-Limit": {"100"}, "X-Ratelimit-Remaining": {"42"}, "X-Ratelimit-Reset": {"1700000030"},
				"Ratelimit-Policy": {`"default";q=100;w=60`}, "Ratelimit": {`"default";r=42;t=30`}}},
		{"limited", Decision{Applied: true, Limited: true, Limit: 5, Remaining: 0, Reset: time.Unix(1_700_000_013, 0), Period: time.Minute, at: at}, false,
			http.Header{"X-Ratelimit-Limit": {"5"}, "X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"1700000013"}, "Retry-After": {"13"}}},
		{"limited, reset passed: Retry-After at least 1", Decision{Applied: true, Limited: true, Limit: 5, Reset: time.Unix(1_699_999_990, 0), Period: time.Second, at: at}, true,
			http.Header{"X-Ratelimit-Limit": {"5"}, "X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"1699999990"}, "Retry-After": {"1"},
				"Ratelimit-Policy": {`"default";q=5;w=1`}, "Ratelimit": {`"default";r=0;t=0`}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := http.Header{}
			tc.d.SetHeaders(got, tc.draft)
			if len(got) != len(tc.want) {
				t.Errorf("headers = %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if !slices.Equal(got[k], v) {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

// TestDecisionPicksFewestRemaining: the headers describe the tightest limit.
func TestDecisionPicksFewestRemaining(t *testing.T) {
	l := newLimiter(t, memoryConfig(t, "", ""), nil, Options{})
	id := keyID("k1", "p1", rates(t, "10-S", "3-H"), nil)
	d, _ := l.Allow(t.Context(), nil, id, netip.Addr{})
	if d.Limit != 3 || d.Remaining != 2 || d.Period != time.Hour {
		t.Errorf("decision = %+v, want the 3-H limit with 2 remaining", d)
	}
	if r := time.Until(d.Reset); r < 59*time.Minute || r > time.Hour+time.Second {
		t.Errorf("Reset in %v, want about 1h", r)
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*config.RateLimit)
	}{
		{"bad store", func(c *config.RateLimit) { c.Store = "memcached" }},
		{"bad on_store_error", func(c *config.RateLimit) { c.OnStoreError = "maybe" }},
		{"bad redis url", func(c *config.RateLimit) { c.Store = "redis"; c.Redis.URL = "http://user:s3cret@x:1/%zz" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Default().RateLimit
			tc.edit(&c)
			l, err := New(c, nil, Options{Log: quiet})
			if err == nil {
				l.Close()
				t.Fatalf("New = nil error, want one")
			}
			if s := err.Error(); contains(s, "s3cret") {
				t.Errorf("error %q quotes the Redis URL", s)
			}
		})
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// FuzzRates feeds config.ParseRate arbitrary strings: an accepted rate has a positive limit
// and one of the four periods, and Strings gives back the input.
func FuzzRates(f *testing.F) {
	for _, seed := range []string{
		"100-M", "10-S", "5000-H", "100000-D", // the four periods
		"0-M", "+5-M", "5-m", "-5-M", "05-M", // what the limiter accepts and keygate does not
		"", "-", "M", "5-", "5-MM", "5 -M", "99999999999999999999-S", // malformed, overflow
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := config.ParseRate(s)
		if err != nil {
			return
		}
		if r.Limit <= 0 {
			t.Errorf("ParseRate(%q).Limit = %d, want > 0", s, r.Limit)
		}
		switch r.Period {
		case time.Second, time.Minute, time.Hour, 24 * time.Hour:
		default:
			t.Errorf("ParseRate(%q).Period = %v, want S, M, H or D", s, r.Period)
		}
		if got := (config.Rates{r}).Strings(); len(got) != 1 || got[0] != s {
			t.Errorf("Strings() of ParseRate(%q) = %q, want [%q]", s, got, s)
		}
		r.Formatted = "" // from the fields alone
		if got := (config.Rates{r}).Strings(); len(got) != 1 || got[0] != s {
			t.Errorf("Strings() of the fields of ParseRate(%q) = %q, want [%q]", s, got, s)
		}
	})
}

func BenchmarkAllowMemory(b *testing.B) {
	l := newLimiter(b, memoryConfig(b, "", ""), nil, Options{})
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
