package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/testenv"
)

// The end-to-end tests of SPEC §9 on the machine's PostgreSQL: several keygate processes
// on one schema, and PostgreSQL made unreachable through a testenv.Relay.

// pgStore is the store section of a test configuration on PostgreSQL at dbURL, with the
// given cache ttl and stale_ttl, and a usage flush every 200ms. Rate limits are lifted so
// that only what a test checks can refuse a request.
func pgStore(dbURL, ttl, staleTTL string) string {
	return fmt.Sprintf(`store:
  driver: postgres
  postgres: {url: %q, max_conns: 5, statement_timeout: 2s}
  cache: {ttl: %s, negative_ttl: 5s, stale_ttl: %s}
  usage_flush_interval: 200ms
auth: {failed_attempts: "100000-M"}
ratelimit: {authenticated: "100000-M", anonymous: "100000-M"}
`, dbURL, ttl, staleTTL)
}

// pgConfig is a whole test configuration body: pgStore and one route /api/ to upstream.
func pgConfig(dbURL, ttl, staleTTL, upstream string) string {
	return pgStore(dbURL, ttl, staleTTL) + "routes:\n" + routeYAML("api", "/api/", upstream, "")
}

// viaRelay returns dbURL with its host and port replaced by a new relay to them.
func viaRelay(t *testing.T, dbURL string) (*testenv.Relay, string) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil || u.Host == "" {
		t.Fatalf("%s: a postgres:// URL with a host is needed for the relay tests", testenv.EnvPostgresURL)
	}
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), "5432")
	}
	relay := testenv.NewRelay(t, target)
	u.Host = relay.Addr()
	return relay, u.String()
}

// startGatewaysTogether starts one keygate per configuration body at the same time (as
// startGatewayConfig does one), then waits until every one answers /healthz: their
// startup migrations run concurrently.
func startGatewaysTogether(t *testing.T, bodies ...string) []*gateway {
	t.Helper()
	gs := make([]*gateway, len(bodies))
	for i, body := range bodies {
		gs[i] = launchGateway(t, body)
	}
	deadline := time.Now().Add(15 * time.Second)
	for i, g := range gs {
		g.waitHealthy(deadline, fmt.Sprintf("keygate %d", i))
	}
	return gs
}

// readyBody is the JSON of /readyz.
type readyBody struct {
	Status       string            `json:"status"`
	Dependencies map[string]string `json:"dependencies"`
}

// apiErrorBody is keygate's JSON error.
type apiErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// withKey authenticates a request with key (Basic, empty password).
func withKey(key string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(key, "") }
}

// status is the status code of GET path on g's public listener with key.
func (g *gateway) status(t *testing.T, path, key string) int {
	t.Helper()
	res, _ := call(t, "GET", g.base+path, withKey(key))
	return res.StatusCode
}

// unknownKey returns a well-formed key (valid checksum) that no store holds.
func unknownKey() string {
	const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 32)
	for i := range b {
		b[i] = base62[rand.IntN(len(base62))]
	}
	s := "kg_" + string(b)
	return s + checksumOf(s)
}

// waitStatus polls GET path with key on g until it answers want, and fails once deadline
// has passed. It returns how long after since the answer came.
func (g *gateway) waitStatus(t *testing.T, path, key string, want int, since, deadline time.Time, what string) time.Duration {
	t.Helper()
	for {
		got := g.status(t, path, key)
		if got == want {
			return time.Since(since)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: status %d after %v, want %d", what, got, time.Since(since).Round(time.Millisecond), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestE2EPostgresTwoInstances: two processes started together on one schema share keys,
// and a revocation, a disable or a delete on one reaches the other's cache within 1s.
func TestE2EPostgresTwoInstances(t *testing.T) {
	t.Parallel()
	dbURL := testenv.NewPostgresSchema(t, testenv.PostgresURL(t))
	up := newRecordingUpstream(t, nil)
	gs := startGatewaysTogether(t, pgConfig(dbURL, "30s", "10m", up.url), pgConfig(dbURL, "30s", "10m", up.url))
	a, b := gs[0], gs[1]

	t.Run("a key created on A works on B at once", func(t *testing.T) {
		k := a.newKey("acme", `{"name":"at-once"}`)
		if got := b.status(t, "/api/x", k.Key); got != 200 {
			t.Fatalf("B: status %d, want 200", got)
		}
		if got := up.last(t).Header.Get("X-Auth-Key-Id"); got != k.ID {
			t.Errorf("upstream X-Auth-Key-Id = %q, want %q", got, k.ID)
		}
	})

	t.Run("revoked on A fails on B within 1s", func(t *testing.T) {
		const trials = 50
		var took []time.Duration
		for i := range trials {
			k := a.newKey("revoker", fmt.Sprintf(`{"name":"trial-%d"}`, i))
			if got := b.status(t, "/api/x", k.Key); got != 200 { // B caches it
				t.Fatalf("trial %d: B before the revoke: status %d, want 200", i, got)
			}
			if code := a.adminDo("DELETE", "/v1/keys/"+k.ID, "", nil); code != 200 {
				t.Fatalf("trial %d: revoke on A: status %d, want 200", i, code)
			}
			revoked := time.Now()
			took = append(took, b.waitStatus(t, "/api/x", k.Key, 401, revoked, revoked.Add(time.Second),
				fmt.Sprintf("trial %d: B after the revoke on A", i)))
		}
		slices.Sort(took)
		t.Logf("revoke on A to 401 on B over %d trials: min %v p50 %v p90 %v p99 %v max %v", trials,
			took[0], took[trials/2], took[trials*9/10], took[trials*99/100], took[trials-1])
	})

	t.Run("principal disabled on A fails on B within 1s", func(t *testing.T) {
		k := a.newKey("disabled", `{"name":"laptop"}`)
		if got := b.status(t, "/api/x", k.Key); got != 200 {
			t.Fatalf("B before the disable: status %d, want 200", got)
		}
		if code := a.adminDo("PATCH", "/v1/principals/disabled", `{"disabled":true}`, nil); code != 200 {
			t.Fatalf("disable on A: status %d, want 200", code)
		}
		at := time.Now()
		took := b.waitStatus(t, "/api/x", k.Key, 401, at, at.Add(time.Second), "B after the disable on A")
		t.Logf("disable on A to 401 on B: %v", took)
	})

	t.Run("principal deleted on B stops all its keys on A within 1s", func(t *testing.T) {
		k1 := b.newKey("deleted", `{"name":"one"}`)
		k2 := b.newKey("deleted", `{"name":"two"}`)
		for _, k := range []keyRecord{k1, k2} {
			if got := a.status(t, "/api/x", k.Key); got != 200 {
				t.Fatalf("A before the delete: status %d, want 200", got)
			}
		}
		if code := b.adminDo("DELETE", "/v1/principals/deleted", "", nil); code != 204 {
			t.Fatalf("delete on B: status %d, want 204", code)
		}
		at := time.Now()
		for i, k := range []keyRecord{k1, k2} {
			took := a.waitStatus(t, "/api/x", k.Key, 401, at, at.Add(time.Second), fmt.Sprintf("key %d on A after the delete on B", i+1))
			t.Logf("delete on B to 401 of key %d on A: %v", i+1, took)
		}
	})
}

// TestE2EPostgresOutage: with PostgreSQL unreachable, cached keys keep working (as stale
// hits once their ttl has passed), unknown keys and admin writes get 503 at once, /readyz
// stays ready within stale_ttl; after the outage everything recovers without a restart.
func TestE2EPostgresOutage(t *testing.T) {
	t.Parallel()
	dbURL := testenv.NewPostgresSchema(t, testenv.PostgresURL(t))
	relay, relayed := viaRelay(t, dbURL)
	up := newRecordingUpstream(t, nil)
	g := startGatewayConfig(t, pgConfig(relayed, "1s", "1m", up.url))
	k := g.newKey("acme", `{"name":"laptop"}`)
	if got := g.status(t, "/api/x", k.Key); got != 200 {
		t.Fatalf("before the outage: status %d, want 200", got)
	}
	const staleHit = `keygate_keystore_cache_total{result="stale_hit"}`
	before, _ := strconv.Atoi(g.metric(staleHit))

	relay.Cut()
	cut := time.Now()

	// The cached key serves, from the cache and then as a stale hit past its 1s ttl.
	for {
		if got := g.status(t, "/api/x", k.Key); got != 200 {
			t.Fatalf("cached key %v into the outage: status %d, want 200", time.Since(cut).Round(time.Millisecond), got)
		}
		n, _ := strconv.Atoi(g.metric(staleHit))
		if n > before && time.Since(cut) > 1100*time.Millisecond {
			break // a stale hit counted, and the entry's ttl has certainly passed
		}
		if time.Since(cut) > 5*time.Second {
			t.Fatalf("%s = %d after %v of outage, want more than %d", staleHit, n, time.Since(cut), before)
		}
		time.Sleep(50 * time.Millisecond)
	}

	t.Run("unknown key gets 503 unavailable", func(t *testing.T) {
		start := time.Now()
		res, body := call(t, "GET", g.base+"/api/x", withKey(unknownKey()))
		if res.StatusCode != 503 || !strings.Contains(body, `"code":"unavailable"`) ||
			res.Header.Get("Content-Type") != "application/json" {
			t.Errorf("unknown key during the outage: %d %s %s, want 503 unavailable JSON",
				res.StatusCode, res.Header.Get("Content-Type"), body)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("unknown key during the outage answered after %v, want within the statement timeout", d)
		}
	})

	t.Run("admin write gets 503", func(t *testing.T) {
		start := time.Now()
		var e apiErrorBody
		if code := g.adminDo("POST", "/v1/principals", `{"id":"during"}`, &e); code != 503 || e.Error.Code != "unavailable" {
			t.Errorf("POST /v1/principals during the outage: %d %+v, want 503 unavailable", code, e)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("admin write during the outage answered after %v", d)
		}
	})

	t.Run("readyz stays ready within stale_ttl", func(t *testing.T) {
		var r readyBody
		if code := g.adminDo("GET", "/readyz", "", &r); code != 200 {
			t.Errorf("/readyz during the outage: %d %+v, want 200", code, r)
		}
		if got := g.metric(`keygate_dependency_up{dependency="store"}`); got != "0" {
			t.Errorf(`keygate_dependency_up{dependency="store"} during the outage = %q, want 0`, got)
		}
	})

	relay.Restore()
	restored := time.Now()
	deadline := restored.Add(10 * time.Second)

	t.Run("admin writes work again", func(t *testing.T) {
		for {
			code := g.adminDo("POST", "/v1/principals", `{"id":"after"}`, nil)
			if code == 201 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("POST /v1/principals %v after the outage: %d, want 201", time.Since(restored), code)
			}
			time.Sleep(50 * time.Millisecond)
		}
		k2 := g.newKey("after", `{"name":"new"}`)
		if got := g.status(t, "/api/x", k2.Key); got != 200 {
			t.Errorf("a key created after the outage: status %d, want 200", got)
		}
	})

	t.Run("unknown keys get 401 again", func(t *testing.T) {
		g.waitStatus(t, "/api/x", unknownKey(), 401, restored, deadline, "unknown key after the outage")
		if got := g.status(t, "/api/x", k.Key); got != 200 {
			t.Errorf("the key cached before the outage: status %d, want 200", got)
		}
	})

	t.Run("readyz and dependency_up", func(t *testing.T) {
		var r readyBody
		if code := g.adminDo("GET", "/readyz", "", &r); code != 200 || r.Dependencies["store"] != "up" {
			t.Errorf("/readyz after the outage: %d %+v, want 200 with the store up", code, r)
		}
		if got := g.metric(`keygate_dependency_up{dependency="store"}`); got != "1" {
			t.Errorf(`keygate_dependency_up{dependency="store"} after the outage = %q, want 1`, got)
		}
	})

	t.Run("revocations reach the cache again", func(t *testing.T) {
		// A revocation made by another process must be noticed: proof that the watch is
		// back, since this instance's ttl alone would take 1s. Another instance, direct.
		other := startGatewayConfig(t, pgConfig(dbURL, "1s", "1m", up.url))
		k3 := other.newKey("after", `{"name":"revoked-after"}`)
		if got := g.status(t, "/api/x", k3.Key); got != 200 {
			t.Fatalf("before the revoke: status %d, want 200", got)
		}
		if code := other.adminDo("DELETE", "/v1/keys/"+k3.ID, "", nil); code != 200 {
			t.Fatalf("revoke: status %d, want 200", code)
		}
		at := time.Now()
		g.waitStatus(t, "/api/x", k3.Key, 401, at, at.Add(1500*time.Millisecond), "revoked by the other instance after the outage")
	})
}

// TestE2EPostgresOutageBeyondStale: once the store has been unreachable for longer than
// stale_ttl, cached keys get 503 and /readyz answers 503.
func TestE2EPostgresOutageBeyondStale(t *testing.T) {
	t.Parallel()
	dbURL := testenv.NewPostgresSchema(t, testenv.PostgresURL(t))
	relay, relayed := viaRelay(t, dbURL)
	up := newRecordingUpstream(t, nil)
	g := startGatewayConfig(t, pgConfig(relayed, "1s", "2s", up.url))
	k := g.newKey("acme", `{"name":"laptop"}`)
	if got := g.status(t, "/api/x", k.Key); got != 200 {
		t.Fatalf("before the outage: status %d, want 200", got)
	}
	relay.Cut()
	cut := time.Now()
	if code := g.adminDo("GET", "/readyz", "", nil); code != 200 {
		t.Errorf("/readyz at the start of the outage: %d, want 200", code)
	}
	deadline := cut.Add(6 * time.Second)
	for {
		res, body := call(t, "GET", g.base+"/api/x", withKey(k.Key))
		if res.StatusCode == 503 {
			if !strings.Contains(body, `"code":"unavailable"`) {
				t.Errorf("cached key beyond stale_ttl: body %s, want unavailable", body)
			}
			break
		}
		if res.StatusCode != 200 {
			t.Fatalf("cached key %v into the outage: status %d, want 200 then 503", time.Since(cut), res.StatusCode)
		}
		if time.Now().After(deadline) {
			t.Fatalf("cached key still 200 %v into the outage with stale_ttl 2s", time.Since(cut))
		}
		time.Sleep(50 * time.Millisecond)
	}
	for {
		var r readyBody
		code := g.adminDo("GET", "/readyz", "", &r)
		if code == 503 {
			if r.Dependencies["store"] != "down" {
				t.Errorf("/readyz beyond stale_ttl: %+v, want the store down", r)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz %v into the outage: %d, want 503 past stale_ttl 2s", time.Since(cut), code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	relay.Restore()
	restored := time.Now()
	g.waitStatus(t, "/api/x", k.Key, 200, restored, restored.Add(10*time.Second), "cached key after the outage")
	for {
		code := g.adminDo("GET", "/readyz", "", nil)
		if code == 200 {
			break
		}
		if time.Since(restored) > 10*time.Second {
			t.Fatalf("/readyz %v after the outage: %d, want 200", time.Since(restored), code)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestE2EPostgresUsageAddsUp: two instances each serving requests with one key flush
// their counts into one usage_count.
func TestE2EPostgresUsageAddsUp(t *testing.T) {
	t.Parallel()
	dbURL := testenv.NewPostgresSchema(t, testenv.PostgresURL(t))
	up := newRecordingUpstream(t, nil)
	gs := startGatewaysTogether(t, pgConfig(dbURL, "30s", "10m", up.url), pgConfig(dbURL, "30s", "10m", up.url))
	k := gs[0].newKey("acme", `{"name":"busy"}`)

	const perInstance, workers = 1000, 8
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed = map[int]int{}
	)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	for _, g := range gs {
		for range workers {
			wg.Go(func() {
				for range perInstance / workers {
					req, _ := http.NewRequest("GET", g.base+"/api/x", nil)
					withKey(k.Key)(req)
					code := 0
					if res, err := client.Do(req); err == nil {
						code = res.StatusCode
						res.Body.Close()
					}
					if code != 200 {
						mu.Lock()
						failed[code]++
						mu.Unlock()
					}
				}
			})
		}
	}
	wg.Wait()
	if len(failed) > 0 {
		t.Fatalf("requests not answered 200, by status: %v", failed)
	}

	const total = 2 * perInstance
	deadline := time.Now().Add(5 * time.Second)
	var got struct {
		UsageCount int64   `json:"usage_count"`
		LastUsedAt *string `json:"last_used_at"`
	}
	for {
		gs[1].adminDo("GET", "/v1/keys/"+k.ID, "", &got)
		if got.UsageCount >= total && got.LastUsedAt != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage_count = %d, last_used_at = %v; want %d and set", got.UsageCount, got.LastUsedAt, total)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A few more flush intervals: nothing is counted twice.
	time.Sleep(500 * time.Millisecond)
	gs[0].adminDo("GET", "/v1/keys/"+k.ID, "", &got)
	if got.UsageCount != total {
		t.Errorf("usage_count = %d, want %d", got.UsageCount, total)
	}
}

// TestE2EPostgresRevalidateAfterReconnect: B reaches PostgreSQL through a relay, A
// directly. A key revoked on A while B's connections are cut fails on B once they are
// back, though B cached it and missed the notification; and a key revoked on A just
// after B's connections are back fails on B too, though B's watch may not listen yet.
func TestE2EPostgresRevalidateAfterReconnect(t *testing.T) {
	t.Parallel()
	dbURL := testenv.NewPostgresSchema(t, testenv.PostgresURL(t))
	relay, relayed := viaRelay(t, dbURL)
	up := newRecordingUpstream(t, nil)
	gs := startGatewaysTogether(t, pgConfig(dbURL, "30s", "10m", up.url), pgConfig(relayed, "30s", "10m", up.url))
	a, b := gs[0], gs[1]
	during := a.newKey("acme", `{"name":"revoked-during"}`)
	after := a.newKey("acme", `{"name":"revoked-after"}`)
	for _, k := range []keyRecord{during, after} {
		if got := b.status(t, "/api/x", k.Key); got != 200 {
			t.Fatalf("B before the cut: status %d, want 200", got)
		}
	}

	relay.Cut()
	if code := a.adminDo("DELETE", "/v1/keys/"+during.ID, "", nil); code != 200 {
		t.Fatalf("revoke on A: status %d, want 200", code)
	}
	if got := b.status(t, "/api/x", during.Key); got != 200 {
		t.Errorf("B during the cut: status %d, want 200 (stale)", got)
	}
	relay.Restore()
	restored := time.Now()

	// B uses the other key at once (a fresh lookup now that the store answers), then A
	// revokes it: whether or not B's watch listens again yet, B must not keep it for its
	// 30s ttl.
	if got := b.status(t, "/api/x", after.Key); got != 200 {
		t.Fatalf("B just after the restore: status %d, want 200", got)
	}
	if code := a.adminDo("DELETE", "/v1/keys/"+after.ID, "", nil); code != 200 {
		t.Fatalf("revoke on A: status %d, want 200", code)
	}
	revoked := time.Now()

	took := b.waitStatus(t, "/api/x", during.Key, 401, restored, restored.Add(20*time.Second), "key revoked during the cut, on B after the restore")
	t.Logf("key revoked during the cut: 401 on B %v after the restore", took)
	took = b.waitStatus(t, "/api/x", after.Key, 401, revoked, revoked.Add(5*time.Second), "key revoked just after the restore, on B")
	t.Logf("key revoked just after the restore: 401 on B %v after the revoke", took)
}
