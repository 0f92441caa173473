package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/testenv"
)

// End-to-end tests of SPEC §4 (issue 3, "How it is checked") against the real binary: the
// memory store, then the machine's Redis, shared by two processes and cut in the middle of
// a run through a relay.

// Samples of /metrics read by these tests (labels in the exposition's sorted order).
const (
	rlStoreErrorSample = `keygate_ratelimit_total{result="store_error",route="api"}`
	rlRedisUpSample    = `keygate_dependency_up{dependency="redis"}`
)

// rlAnswer is what a test keeps of one response.
type rlAnswer struct {
	code    int
	body    string
	header  http.Header
	elapsed time.Duration
	err     error
}

// rlDo sends GET url with key in X-API-Key ("" for none) and set applied through client;
// it never calls t.Fatal, so that it may run in any goroutine.
func rlDo(client *http.Client, url, key string, set func(*http.Request)) rlAnswer {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return rlAnswer{err: err}
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	if set != nil {
		set(req)
	}
	start := time.Now()
	res, err := client.Do(req)
	if err != nil {
		return rlAnswer{err: err, elapsed: time.Since(start)}
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	return rlAnswer{code: res.StatusCode, body: string(b), header: res.Header, elapsed: time.Since(start), err: err}
}

// rlGet is rlDo that fails the test on a transport error.
func rlGet(t *testing.T, url, key string, set func(*http.Request)) rlAnswer {
	t.Helper()
	a := rlDo(http.DefaultClient, url, key, set)
	if a.err != nil {
		t.Fatalf("GET %s: %v", url, a.err)
	}
	return a
}

// rlBurst sends n requests with key at once and returns how many got each status; a
// transport error fails the test.
func rlBurst(t *testing.T, n int, url, key string) map[int]int {
	t.Helper()
	// Its own connections, closed at the end: a connection dialed but never used would
	// hold keygate's shutdown for 5 s (net/http waits that long for new connections).
	tr := &http.Transport{MaxIdleConnsPerHost: n}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		codes = map[int]int{}
		errs  []error
		start = make(chan struct{})
	)
	for range n {
		wg.Go(func() {
			<-start
			a := rlDo(client, url, key, nil)
			mu.Lock()
			defer mu.Unlock()
			if a.err != nil {
				errs = append(errs, a.err)
				return
			}
			codes[a.code]++
		})
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 { // Errorf, not Fatalf: rlBurst may run in its own goroutine
		t.Errorf("%d of %d requests failed, first: %v", len(errs), n, errs[0])
	}
	return codes
}

// rlErrorCode returns the code of a JSON error body ("" when it is not one).
func rlErrorCode(body string) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	json.Unmarshal([]byte(body), &e)
	return e.Error.Code
}

// rlMetric reads one sample of /metrics as a number (0 when absent).
func rlMetric(g *gateway, sample string) float64 {
	g.t.Helper()
	v := g.metric(sample)
	if v == "" {
		return 0
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		g.t.Fatalf("%s = %q: %v", sample, v, err)
	}
	return f
}

// rlCheck429 checks a rate_limited answer: JSON code rate_limited and Retry-After in
// seconds, at least 1 and at most the window plus one second (the limiter's reset is
// whole seconds, rounded up so that the window has surely ended, and Retry-After is
// rounded up again from the time of the decision).
func rlCheck429(t *testing.T, what string, a rlAnswer, window int) {
	t.Helper()
	if a.code != 429 || rlErrorCode(a.body) != "rate_limited" {
		t.Errorf("%s: %d %s, want 429 rate_limited", what, a.code, a.body)
		return
	}
	ra, err := strconv.Atoi(a.header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > window+1 {
		t.Errorf("%s: Retry-After = %q, want whole seconds in [1, %d]", what, a.header.Get("Retry-After"), window+1)
	}
}

// rlPrincipal is a principal id no other test or run uses, so that principal buckets in a
// shared Redis never meet.
func rlPrincipal(name string) string {
	return fmt.Sprintf("%s-%08x", name, rand.Uint32())
}

func TestE2ERateLimitKeyHeaders(t *testing.T) {
	t.Parallel()
	up := newRecordingUpstream(t, nil)
	g := startGateway(t, "", routeYAML("api", "/api/", up.url, ""))
	k := g.newKey("acme", `{"name":"five","rate_limit":"5-M"}`)

	for i := range 5 {
		a := rlGet(t, g.base+"/api/x", k.Key, nil)
		if a.code != 200 {
			t.Fatalf("request %d: %d %s, want 200", i+1, a.code, a.body)
		}
		now := time.Now().Unix()
		if got, want := a.header.Get("X-RateLimit-Limit"), "5"; got != want {
			t.Errorf("request %d: X-RateLimit-Limit = %q, want %q", i+1, got, want)
		}
		if got, want := a.header.Get("X-RateLimit-Remaining"), strconv.Itoa(4-i); got != want {
			t.Errorf("request %d: X-RateLimit-Remaining = %q, want %q", i+1, got, want)
		}
		reset, err := strconv.ParseInt(a.header.Get("X-RateLimit-Reset"), 10, 64)
		if err != nil || reset < now || reset > now+61 {
			t.Errorf("request %d: X-RateLimit-Reset = %q, want a Unix time in [%d, %d]",
				i+1, a.header.Get("X-RateLimit-Reset"), now, now+61)
		}
		if got := a.header.Get("Retry-After"); got != "" {
			t.Errorf("request %d: Retry-After = %q on a 200, want none", i+1, got)
		}
	}
	a := rlGet(t, g.base+"/api/x", k.Key, nil)
	rlCheck429(t, "request 6", a, 60)
	if got, want := a.header.Get("X-RateLimit-Remaining"), "0"; got != want {
		t.Errorf("request 6: X-RateLimit-Remaining = %q, want %q", got, want)
	}
	if got, want := up.count(), 5; got != want {
		t.Errorf("the upstream received %d requests, want %d", got, want)
	}
	if got, want := rlMetric(g, `keygate_ratelimit_total{result="limited",route="api"}`), 1.0; got != want {
		t.Errorf("limited decisions = %v, want %v", got, want)
	}
	if got, want := rlMetric(g, `keygate_ratelimit_total{result="allowed",route="api"}`), 5.0; got != want {
		t.Errorf("allowed decisions = %v, want %v", got, want)
	}
}

func TestE2ERateLimitBurst(t *testing.T) {
	t.Parallel()
	up := newRecordingUpstream(t, nil)
	g := startGateway(t, "", routeYAML("api", "/api/", up.url, ""))
	k := g.newKey("acme", `{"name":"fifty","rate_limit":"50-M"}`)

	codes := rlBurst(t, 200, g.base+"/api/x", k.Key)
	if codes[200] != 50 || codes[429] != 150 {
		t.Errorf("200 concurrent requests against 50-M: %v, want 50 × 200 and 150 × 429", codes)
	}
	if got, want := up.count(), 50; got != want {
		t.Errorf("the upstream received %d requests, want %d", got, want)
	}
}

func TestE2ERateLimitSeparateKeys(t *testing.T) {
	t.Parallel()
	up := newRecordingUpstream(t, nil)
	g := startGateway(t, "ratelimit: {authenticated: \"3-M\"}\n", routeYAML("api", "/api/", up.url, ""))
	// Two keys under ratelimit.authenticated (bucket per key), two with their own rate.
	for _, tc := range []struct {
		name, body string
		limit      int
	}{
		{"authenticated tier", `{"name":"a"}`, 3},
		{"key rate", `{"name":"b","rate_limit":"2-M"}`, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k1, k2 := g.newKey("acme", tc.body), g.newKey("acme", tc.body)
			for _, k := range []keyRecord{k1, k2} {
				for i := range tc.limit {
					if a := rlGet(t, g.base+"/api/x", k.Key, nil); a.code != 200 {
						t.Fatalf("key %s request %d: %d %s, want 200 (its own bucket)", k.Prefix, i+1, a.code, a.body)
					}
				}
				rlCheck429(t, "key "+k.Prefix+" after its limit", rlGet(t, g.base+"/api/x", k.Key, nil), 60)
			}
		})
	}
	if got, want := up.count(), 2*3+2*2; got != want {
		t.Errorf("the upstream received %d requests, want %d", got, want)
	}
}

func TestE2ERateLimitAnonymous(t *testing.T) {
	t.Parallel()
	up := newRecordingUpstream(t, nil)
	g := startGateway(t, "ratelimit: {anonymous: \"3-M\"}\n",
		routeYAML("api", "/api/", up.url, "    auth: optional\n"))
	k := g.newKey("acme", `{"name":"k"}`)

	xff := func(v string) func(*http.Request) {
		return func(r *http.Request) {
			if v != "" {
				r.Header.Set("X-Forwarded-For", v)
			}
		}
	}
	// Every X-Forwarded-For is ignored without trusted_proxies: one bucket, 127.0.0.1.
	for i, v := range []string{"203.0.113.1", "198.51.100.7, 203.0.113.2", ""} {
		a := rlGet(t, g.base+"/api/x", "", xff(v))
		if a.code != 200 {
			t.Fatalf("anonymous request %d: %d %s, want 200", i+1, a.code, a.body)
		}
		if got := a.header.Get("X-RateLimit-Limit"); got != "3" {
			t.Errorf("anonymous request %d: X-RateLimit-Limit = %q, want 3", i+1, got)
		}
	}
	for _, v := range []string{"", "203.0.113.99", "2001:db8::1", "10.0.0.1, 10.0.0.2"} {
		rlCheck429(t, fmt.Sprintf("anonymous with X-Forwarded-For %q", v), rlGet(t, g.base+"/api/x", "", xff(v)), 60)
	}
	if got, want := up.count(), 3; got != want {
		t.Errorf("the upstream received %d requests, want %d", got, want)
	}
	// A key on the same route has its own bucket.
	if a := rlGet(t, g.base+"/api/x", k.Key, nil); a.code != 200 || up.last(t).Header.Get("X-Auth-Principal") != "acme" {
		t.Errorf("keyed request after the anonymous limit: %d %s, want 200 as acme", a.code, a.body)
	}
}

func TestE2ERateLimitPrincipalPatch(t *testing.T) {
	t.Parallel()
	up := newRecordingUpstream(t, nil)
	g := startGateway(t, "", routeYAML("api", "/api/", up.url, ""))
	k := g.newKey("acme", `{"name":"k"}`)
	if a := rlGet(t, g.base+"/api/x", k.Key, nil); a.code != 200 || a.header.Get("X-RateLimit-Limit") != "1000" {
		t.Fatalf("before PATCH: %d, X-RateLimit-Limit %q, want 200 under the default 1000",
			a.code, a.header.Get("X-RateLimit-Limit"))
	}

	// patch sets the principal's rate_limit, then polls until a response shows limit
	// (within 1 s) and returns it.
	patch := func(rate, limit string) rlAnswer {
		t.Helper()
		if code := g.adminDo("PATCH", "/v1/principals/acme", `{"rate_limit":`+rate+`}`, nil); code != 200 {
			t.Fatalf("PATCH rate_limit %s: %d, want 200", rate, code)
		}
		start := time.Now()
		for {
			a := rlGet(t, g.base+"/api/x", k.Key, nil)
			if a.header.Get("X-RateLimit-Limit") == limit {
				return a
			}
			if time.Since(start) > time.Second {
				t.Fatalf("rate_limit %s: X-RateLimit-Limit still %q after %v, want %s", rate,
					a.header.Get("X-RateLimit-Limit"), time.Since(start), limit)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// The principal's bucket is new: the first request under 2-M leaves 1.
	if a := patch(`"2-M"`, "2"); a.code != 200 || a.header.Get("X-RateLimit-Remaining") != "1" {
		t.Fatalf("first request under 2-M: %d, X-RateLimit-Remaining %q, want 200 and 1",
			a.code, a.header.Get("X-RateLimit-Remaining"))
	}
	if a := rlGet(t, g.base+"/api/x", k.Key, nil); a.code != 200 {
		t.Fatalf("second request under 2-M: %d, want 200", a.code)
	}
	rlCheck429(t, "third request under 2-M", rlGet(t, g.base+"/api/x", k.Key, nil), 60)

	// Raising the rate lifts the limit at once; null goes back to ratelimit.authenticated.
	if a := patch(`["100-M"]`, "100"); a.code != 200 {
		t.Errorf("after raising to 100-M: %d %s, want 200", a.code, a.body)
	}
	if a := patch(`null`, "1000"); a.code != 200 {
		t.Errorf("after removing the principal's rate: %d %s, want 200", a.code, a.body)
	}
}

func TestE2ERateLimitFailedAttempts(t *testing.T) {
	t.Parallel()
	up := newRecordingUpstream(t, nil)
	// Two windows: Retry-After is the minute's that blocks, not the hour's (rlCheck429).
	g := startGateway(t, "auth: {failed_attempts: [\"5-M\", \"1000-H\"]}\n", routeYAML("api", "/api/", up.url, ""))
	good := g.newKey("acme", `{"name":"good"}`)
	unused := g.newKey("acme", `{"name":"unused"}`)

	// The good key is verified once, so that it is in the cache before the flood.
	if a := rlGet(t, g.base+"/api/x", good.Key, nil); a.code != 200 {
		t.Fatalf("good key before the flood: %d %s, want 200", a.code, a.body)
	}
	unknown := func(i int) string {
		body := strings.Repeat(string(rune('C'+i)), 32)
		return "kg_" + body + checksumOf("kg_"+body)
	}
	for i := range 5 {
		if a := rlGet(t, g.base+"/api/x", unknown(i), nil); a.code != 401 {
			t.Fatalf("unknown key %d: %d %s, want 401", i+1, a.code, a.body)
		}
	}
	rlCheck429(t, "unknown key 6", rlGet(t, g.base+"/api/x", unknown(5), nil), 60)
	rlCheck429(t, "unknown key 1 again", rlGet(t, g.base+"/api/x", unknown(0), nil), 60)
	// A valid key the cache cannot answer is held back too: its lookup is what is limited.
	rlCheck429(t, "valid but uncached key", rlGet(t, g.base+"/api/x", unused.Key, nil), 60)
	if a := rlGet(t, g.base+"/api/x", good.Key, nil); a.code != 200 {
		t.Errorf("cached good key from the blocked address: %d %s, want 200", a.code, a.body)
	}
	if got, want := up.count(), 2; got != want {
		t.Errorf("the upstream received %d requests, want %d", got, want)
	}
}

// rlRedisURL returns the test Redis URL (testenv.RedisURL) with its host:port replaced by
// hostport ("" keeps it), and the original host:port.
func rlRedisURL(t *testing.T, hostport string) (string, string) {
	t.Helper()
	u, err := url.Parse(testenv.RedisURL(t))
	if err != nil || u.Host == "" {
		t.Fatalf("%s: not a valid Redis URL", testenv.EnvRedisURL)
	}
	orig := u.Host
	if hostport != "" {
		u.Host = hostport
	}
	return u.String(), orig
}

// startRedisGateway starts keygate with the Redis store at redisURL, the given
// on_store_error and Redis timeout, and one route "api" at /api/ to upstream, and waits
// until it uses Redis. Bucket names hold random key and principal ids, and
// failed_attempts is too high to reach, so tests sharing the Redis never meet.
func startRedisGateway(t *testing.T, redisURL, onStoreError, timeout, upstream string) *gateway {
	t.Helper()
	extra := fmt.Sprintf(`auth: {failed_attempts: "100000-M"}
ratelimit:
  store: redis
  on_store_error: %s
  redis: {url: %q, timeout: %s}
`, onStoreError, redisURL, timeout)
	g := startGateway(t, extra, routeYAML("api", "/api/", upstream, ""))
	if u, err := url.Parse(redisURL); err == nil {
		if p, ok := u.User.Password(); ok && p != "" {
			g.secrets = append(g.secrets, p)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for rlMetric(g, rlRedisUpSample) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("keygate does not use Redis 10 s after start: %s = %q", rlRedisUpSample, g.metric(rlRedisUpSample))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return g
}

func TestE2ERedisBurst(t *testing.T) {
	t.Parallel()
	redisURL, _ := rlRedisURL(t, "")
	up := newRecordingUpstream(t, nil)
	// deny, so that a slow answer is a 503 and never a local admission; a timeout for
	// counting, not for time (a burst on a fresh pool dials for longer than 50 ms).
	g := startRedisGateway(t, redisURL, "deny", "2s", up.url)
	k := g.newKey(rlPrincipal("acme"), `{"name":"fifty","rate_limit":"50-M"}`)

	codes := rlBurst(t, 200, g.base+"/api/x", k.Key)
	if codes[200] > 50 || codes[200]+codes[429]+codes[503] != 200 {
		t.Errorf("200 concurrent requests against 50-M on Redis: %v, want at most 50 × 200, the rest 429 (or 503)", codes)
	}
	if codes[503] == 0 && codes[200] != 50 {
		t.Errorf("200 concurrent requests against 50-M on Redis: %v, want exactly 50 × 200 when Redis answered all", codes)
	}
	if got := up.count(); got != codes[200] {
		t.Errorf("the upstream received %d requests, want %d (the 200s)", got, codes[200])
	}
}

func TestE2ERedisTwoProcesses(t *testing.T) {
	t.Parallel()
	redisURL, _ := rlRedisURL(t, "")
	up := newRecordingUpstream(t, nil)
	principal := rlPrincipal("acme")
	// Each process has its own SQLite, so its own key; the principal's bucket is shared.
	gs := []*gateway{
		startRedisGateway(t, redisURL, "deny", "2s", up.url),
		startRedisGateway(t, redisURL, "deny", "2s", up.url),
	}
	var keys [2]keyRecord
	for i, g := range gs {
		keys[i] = g.newKey(principal, `{"name":"k"}`)
		if code := g.adminDo("PATCH", "/v1/principals/"+principal, `{"rate_limit":"10-M"}`, nil); code != 200 {
			t.Fatalf("PATCH rate_limit on process %d: %d, want 200", i+1, code)
		}
	}

	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		codes = map[int]int{}
	)
	for i, g := range gs {
		wg.Go(func() {
			c := rlBurst(t, 15, g.base+"/api/x", keys[i].Key)
			mu.Lock()
			defer mu.Unlock()
			for code, n := range c {
				codes[code] += n
			}
		})
	}
	wg.Wait()
	if codes[200] > 10 || codes[200]+codes[429]+codes[503] != 30 {
		t.Errorf("15 requests to each of two processes, principal at 10-M: %v, want at most 10 × 200 between them", codes)
	}
	if codes[503] == 0 && codes[200] != 10 {
		t.Errorf("15 requests to each of two processes, principal at 10-M: %v, want exactly 10 × 200 when Redis answered all", codes)
	}
	if got := up.count(); got != codes[200] {
		t.Errorf("the upstream received %d requests, want %d (the 200s)", got, codes[200])
	}
}

// TestE2ERedisOutage cuts (or silences) Redis in the middle of a run through a relay, for
// each on_store_error, then restores it. Per request the key's limit is 5-M, and 3 are
// used on Redis before the outage. During the outage:
//   - local: this instance's memory limiter, which starts empty, admits exactly 5 more,
//     then answers 429;
//   - allow: every request is admitted;
//   - deny: every request is 503 unavailable, and /readyz is 503 (200 with the others).
//
// Every request during the outage counts as store_error and none waits longer than the
// Redis timeout (50 ms) plus 300 ms. After Restore, with no restart, the shared bucket
// decides again: the first request it decides is its 4th (Remaining 1), the 5th is
// admitted and the 6th is 429.
func TestE2ERedisOutage(t *testing.T) {
	t.Parallel()
	const (
		timeout    = 50 * time.Millisecond
		bound      = timeout + 300*time.Millisecond
		duringCuts = 8
	)
	for _, tc := range []struct {
		name, mode string
		blackhole  bool
		want       []int // status codes of the requests during the outage
		ready      int   // /readyz during the outage
	}{
		{"local", "local", false, []int{200, 200, 200, 200, 200, 429, 429, 429}, 200},
		{"local blackhole", "local", true, []int{200, 200, 200, 200, 200, 429, 429, 429}, 200},
		{"allow", "allow", false, []int{200, 200, 200, 200, 200, 200, 200, 200}, 200},
		{"deny", "deny", false, []int{503, 503, 503, 503, 503, 503, 503, 503}, 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, target := rlRedisURL(t, "")
			relay := testenv.NewRelay(t, target)
			redisURL, _ := rlRedisURL(t, relay.Addr())
			up := newRecordingUpstream(t, nil)
			g := startRedisGateway(t, redisURL, tc.mode, timeout.String(), up.url)
			k := g.newKey(rlPrincipal("acme"), `{"name":"five","rate_limit":"5-M"}`)
			get := func() rlAnswer { return rlGet(t, g.base+"/api/x", k.Key, nil) }

			for i := range 3 {
				if a := get(); a.code != 200 || a.header.Get("X-RateLimit-Remaining") != strconv.Itoa(4-i) {
					t.Fatalf("request %d before the outage: %d, X-RateLimit-Remaining %q, want 200 and %d",
						i+1, a.code, a.header.Get("X-RateLimit-Remaining"), 4-i)
				}
			}
			if got := rlMetric(g, rlStoreErrorSample); got != 0 {
				t.Fatalf("store_error before the outage = %v, want 0", got)
			}

			if tc.blackhole {
				relay.Blackhole()
			} else {
				relay.Cut()
			}
			var got []int
			for range duringCuts {
				a := get()
				got = append(got, a.code)
				if a.elapsed > bound {
					t.Errorf("a request during the outage took %v, want at most %v", a.elapsed, bound)
				}
				if a.code == 503 && rlErrorCode(a.body) != "unavailable" {
					t.Errorf("503 during the outage: %s, want code unavailable", a.body)
				}
				if a.code == 429 {
					rlCheck429(t, "429 during the outage", a, 60)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("during the outage: %v, want %v", got, tc.want)
			}
			if got := rlMetric(g, rlStoreErrorSample); got != duringCuts {
				t.Errorf("store_error during the outage = %v, want %d", got, duringCuts)
			}
			if got := rlMetric(g, rlRedisUpSample); got != 0 {
				t.Errorf("%s during the outage = %v, want 0", rlRedisUpSample, got)
			}
			if a := rlGet(t, g.adm+"/readyz", "", nil); a.code != tc.ready {
				t.Errorf("/readyz during the outage: %d %s, want %d", a.code, a.body, tc.ready)
			}

			relay.Restore()
			// Poll until a request is decided by Redis again (it does not count as
			// store_error), then use up the shared bucket.
			before := rlMetric(g, rlStoreErrorSample)
			deadline := time.Now().Add(10 * time.Second)
			var first rlAnswer
			for {
				first = get()
				after := rlMetric(g, rlStoreErrorSample)
				if after == before {
					break
				}
				before = after
				if time.Now().After(deadline) {
					t.Fatalf("Redis still not used 10 s after Restore (last answer %d)", first.code)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if first.code != 200 || first.header.Get("X-RateLimit-Remaining") != "1" {
				t.Errorf("first request after Restore: %d, X-RateLimit-Remaining %q, want 200 and 1 (the shared bucket's 4th)",
					first.code, first.header.Get("X-RateLimit-Remaining"))
			}
			if a := get(); a.code != 200 || a.header.Get("X-RateLimit-Remaining") != "0" {
				t.Errorf("second request after Restore: %d, X-RateLimit-Remaining %q, want 200 and 0",
					a.code, a.header.Get("X-RateLimit-Remaining"))
			}
			rlCheck429(t, "third request after Restore", get(), 60)
			if got := rlMetric(g, rlStoreErrorSample); got != before {
				t.Errorf("store_error went from %v to %v after Redis came back", before, got)
			}
			if a := rlGet(t, g.adm+"/readyz", "", nil); a.code != 200 {
				t.Errorf("/readyz after Restore: %d %s, want 200", a.code, a.body)
			}
		})
	}
}
