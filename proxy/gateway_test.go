package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/keystore"
	"github.com/keygate/keygate/ratelimit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const goodKey = "good-key"

// fakeVerifier accepts goodKey in any carrier; "store-down" is a store error; "blocked-D"
// is a caller blocked by failed attempts for the duration D.
type fakeVerifier struct{}

func (fakeVerifier) Verify(_ context.Context, c *auth.Credentials, mode auth.Mode, _ netip.Addr) (auth.Identity, auth.Result, error) {
	key := c.Key
	if c.Carrier == auth.CarrierBasic {
		key = c.Username
	}
	switch {
	case c.Malformed:
		return auth.Identity{}, auth.ResultMalformed, nil
	case c.Carrier == auth.CarrierNone && mode == auth.ModeOptional:
		return auth.Identity{}, auth.ResultOK, nil
	case c.Carrier == auth.CarrierNone:
		return auth.Identity{}, auth.ResultMissing, nil
	case key == "store-down":
		return auth.Identity{}, auth.ResultStoreError, context.DeadlineExceeded
	case strings.HasPrefix(key, "blocked-"):
		wait, _ := time.ParseDuration(strings.TrimPrefix(key, "blocked-"))
		return auth.Identity{Method: auth.MethodKey, RetryAfter: wait}, auth.ResultBlocked, nil
	case key != goodKey:
		return auth.Identity{}, auth.ResultUnknown, nil
	}
	e := &keystore.Entry{
		Key:       keystore.Key{ID: "key-1", Name: "laptop"},
		Principal: keystore.Principal{ID: "acme"},
		Held:      []string{"read"}, HeldHeader: "read",
	}
	return auth.Identity{Method: auth.MethodKey, Entry: e}, auth.ResultOK, nil
}

// recorder upstream: remembers the last request it received.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	last *http.Request
	hits int
}

func newUpstream(t *testing.T, h http.HandlerFunc) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.last = r.Clone(context.Background())
		u.hits++
		u.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		io.WriteString(w, "upstream ok")
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) seen(t *testing.T) *http.Request {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.last == nil {
		t.Fatal("the upstream received no request")
	}
	return u.last
}

func newGateway(t *testing.T, mutate func(*config.Config), upstreams ...string) *httptest.Server {
	t.Helper()
	cfg := config.Default()
	for i, up := range upstreams {
		u, err := url.Parse(up)
		if err != nil {
			t.Fatal(err)
		}
		rc := config.DefaultRoute()
		rc.Name = "r" + string(rune('0'+i))
		rc.Match.PathPrefix = "/api/"
		rc.Upstream = config.URL{URL: u}
		cfg.Routes = append(cfg.Routes, rc)
	}
	if mutate != nil {
		mutate(&cfg)
	}
	g := New(Options{Config: &cfg, Verifier: fakeVerifier{}})
	s := httptest.NewServer(g)
	t.Cleanup(s.Close)
	return s
}

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func get(t *testing.T, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	return do(t, req)
}

func TestIdentityHeadersReplaceClientOnes(t *testing.T) {
	up := newUpstream(t, nil)
	gw := newGateway(t, nil, up.URL)
	res, _ := get(t, gw.URL+"/api/x",
		"X-API-Key", goodKey,
		"X-Auth-Principal", "evil",
		"x-auth-key-id", "evil",
		"X_Auth_Principal", "evil",
		"X-AUTH-SCOPES", "admin",
		"Connection", "X-Auth-Principal")
	if res.StatusCode != 200 {
		t.Fatalf("status = %d, want 200", res.StatusCode)
	}
	r := up.seen(t)
	for name, want := range map[string]string{
		"X-Auth-Principal": "acme", "X-Auth-Key-Id": "key-1", "X-Auth-Key-Name": "laptop",
		"X-Auth-Scopes": "read", "X-Auth-Method": "key",
	} {
		if got := r.Header.Values(name); len(got) != 1 || got[0] != want {
			t.Errorf("upstream %s = %q, want [%q]", name, got, want)
		}
	}
	for k := range r.Header {
		if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), "X-Auth-Principal") && k != "X-Auth-Principal" {
			t.Errorf("upstream received look-alike header %q", k)
		}
	}
	if got := r.Header.Get("X-Api-Key"); got != "" {
		t.Errorf("upstream X-API-Key = %q, want none", got)
	}
}

func TestEveryCredentialCarrierIsRemoved(t *testing.T) {
	up := newUpstream(t, nil)
	gw := newGateway(t, func(c *config.Config) { c.Auth.KeyQueryParam = "api_key" }, up.URL)
	req, _ := http.NewRequest("GET", gw.URL+"/api/x?a=1;api_key=other&b=2&api_key=x", nil)
	req.SetBasicAuth(goodKey, "pw")
	req.Header.Set("X-API-Key", "second-key")
	res, _ := do(t, req)
	if res.StatusCode != 200 {
		t.Fatalf("status = %d, want 200", res.StatusCode)
	}
	r := up.seen(t)
	if got := r.Header.Get("Authorization"); got != "" {
		t.Errorf("upstream Authorization = %q, want none", got)
	}
	if got := r.Header.Get("X-API-Key"); got != "" {
		t.Errorf("upstream X-API-Key = %q, want none", got)
	}
	if got, want := r.URL.RawQuery, "a=1&b=2"; got != want {
		t.Errorf("upstream query = %q, want %q", got, want)
	}
}

func TestForwardCredentialsKeepsThem(t *testing.T) {
	up := newUpstream(t, nil)
	gw := newGateway(t, func(c *config.Config) { c.Routes[0].ForwardCredentials = true }, up.URL)
	get(t, gw.URL+"/api/x", "X-API-Key", goodKey)
	if got := up.seen(t).Header.Get("X-API-Key"); got != goodKey {
		t.Errorf("upstream X-API-Key = %q, want the key", got)
	}
}

func TestQueryReachesUpstreamByteForByte(t *testing.T) {
	up := newUpstream(t, nil)
	gw := newGateway(t, nil, up.URL)
	q := "a=1;b=2&c=%20x&d"
	get(t, gw.URL+"/api/x?"+q, "X-API-Key", goodKey)
	if got := up.seen(t).URL.RawQuery; got != q {
		t.Errorf("upstream query = %q, want %q", got, q)
	}
}

func TestErrors(t *testing.T) {
	up := newUpstream(t, nil)
	gw := newGateway(t, nil, up.URL)
	for _, tc := range []struct {
		name, path string
		hdr        []string
		status     int
		code       string
	}{
		{"no route", "/other", []string{"X-API-Key", goodKey}, 404, "not_found"},
		{"dot dot", "/api/%2e%2e/admin", []string{"X-API-Key", goodKey}, 400, "bad_request"},
		{"dot", "/api/./x", []string{"X-API-Key", goodKey}, 400, "bad_request"},
		{"missing", "/api/x", nil, 401, "unauthorized"},
		{"unknown", "/api/x", []string{"X-API-Key", "nope"}, 401, "unauthorized"},
		{"store down", "/api/x", []string{"X-API-Key", "store-down"}, 503, "unavailable"},
		{"bad upgrade", "/api/x", []string{"X-API-Key", goodKey, "Connection", "Upgrade", "Upgrade", "h2c"}, 400, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", gw.URL+"/", nil)
			req.URL.Opaque = tc.path // keep the path as written
			for i := 0; i+1 < len(tc.hdr); i += 2 {
				req.Header.Add(tc.hdr[i], tc.hdr[i+1])
			}
			res, body := do(t, req)
			if res.StatusCode != tc.status {
				t.Errorf("status = %d, want %d", res.StatusCode, tc.status)
			}
			var e struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code != tc.code {
				t.Errorf("body = %s, want error code %q", body, tc.code)
			}
			if tc.status == 401 && res.Header.Get("WWW-Authenticate") != `Basic realm="keygate"` {
				t.Errorf("WWW-Authenticate = %q", res.Header.Get("WWW-Authenticate"))
			}
		})
	}
	if up.hits != 0 {
		t.Errorf("the upstream received %d requests, want 0", up.hits)
	}
}

func TestUpstreamDownAndSlow(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	slow := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	})
	gwDead := newGateway(t, nil, dead.URL)
	gwSlow := newGateway(t, func(c *config.Config) { c.Routes[0].Timeout = 100 * time.Millisecond }, slow.URL)
	if res, body := get(t, gwDead.URL+"/api/x", "X-API-Key", goodKey); res.StatusCode != 502 || !strings.Contains(body, `"bad_gateway"`) {
		t.Errorf("dead upstream: %d %s, want 502 bad_gateway", res.StatusCode, body)
	}
	if res, body := get(t, gwSlow.URL+"/api/x", "X-API-Key", goodKey); res.StatusCode != 504 || !strings.Contains(body, `"gateway_timeout"`) {
		t.Errorf("slow upstream: %d %s, want 504 gateway_timeout", res.StatusCode, body)
	}
}

func TestServerSentEventsStream(t *testing.T) {
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "data: second\n\n")
	})
	gw := newGateway(t, nil, up.URL)
	defer close(release)
	req, _ := http.NewRequest("GET", gw.URL+"/api/events", nil)
	req.Header.Set("X-API-Key", goodKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	line, err := bufio.NewReader(res.Body).ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Errorf("first line = %q, %v; want the first event before the stream ends", line, err)
	}
}

func TestStripPrefixAndHost(t *testing.T) {
	up := newUpstream(t, nil)
	gw := newGateway(t, func(c *config.Config) { c.Routes[0].StripPrefix = true }, up.URL)
	get(t, gw.URL+"/api/v1/items", "X-API-Key", goodKey)
	r := up.seen(t)
	if r.URL.Path != "/v1/items" {
		t.Errorf("upstream path = %q, want /v1/items", r.URL.Path)
	}
	if want := strings.TrimPrefix(up.URL, "http://"); r.Host != want {
		t.Errorf("upstream Host = %q, want %q", r.Host, want)
	}
}

func TestForwardedFromUntrustedPeer(t *testing.T) {
	up := newUpstream(t, nil)
	gw := newGateway(t, nil, up.URL)
	get(t, gw.URL+"/api/x", "X-API-Key", goodKey, "X-Forwarded-For", "6.6.6.6", "X-Real-IP", "6.6.6.6",
		"Forwarded", "for=6.6.6.6", "X-Request-Id", "mine")
	r := up.seen(t)
	if got := r.Header.Get("X-Forwarded-For"); got != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want the peer alone", got)
	}
	if r.Header.Get("X-Real-Ip") != "" || r.Header.Get("Forwarded") != "" {
		t.Errorf("untrusted X-Real-IP/Forwarded reached the upstream")
	}
	if got := r.Header.Get("X-Request-Id"); got == "" || got == "mine" {
		t.Errorf("X-Request-Id = %q, want a fresh one", got)
	}
}

func TestAnonymousOnOptionalRoute(t *testing.T) {
	up := newUpstream(t, nil)
	gw := newGateway(t, func(c *config.Config) { c.Routes[0].Auth = "optional" }, up.URL)
	res, _ := get(t, gw.URL+"/api/x", "X-Auth-Principal", "evil")
	if res.StatusCode != 200 {
		t.Fatalf("status = %d, want 200", res.StatusCode)
	}
	r := up.seen(t)
	if r.Header.Get("X-Auth-Principal") != "" || r.Header.Get("X-Auth-Method") != "anonymous" {
		t.Errorf("anonymous upstream headers: principal %q method %q", r.Header.Get("X-Auth-Principal"), r.Header.Get("X-Auth-Method"))
	}
	if res, _ := get(t, gw.URL+"/api/x", "X-API-Key", "bad"); res.StatusCode != 401 {
		t.Errorf("bad credentials on an optional route: %d, want 401", res.StatusCode)
	}
}

func TestScopes(t *testing.T) {
	up := newUpstream(t, nil)
	gw := newGateway(t, func(c *config.Config) { c.Routes[0].Scopes = []string{"write"} }, up.URL)
	if res, _ := get(t, gw.URL+"/api/x", "X-API-Key", goodKey); res.StatusCode != 403 {
		t.Errorf("status = %d, want 403", res.StatusCode)
	}
}

func TestAuthorizationWithTabNeverForwarded(t *testing.T) {
	up := newUpstream(t, nil)
	gw := newGateway(t, nil, up.URL)
	res, _ := get(t, gw.URL+"/api/x", "Authorization", "Bearer\t"+goodKey)
	if res.StatusCode != 200 {
		t.Fatalf("status = %d, want 200", res.StatusCode)
	}
	if got := up.seen(t).Header.Get("Authorization"); got != "" {
		t.Errorf("upstream Authorization = %q, want none", got)
	}
}

func TestInterimResponseIsNotTheStatus(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Set("X-Request-Id", "upstream-id")
		io.WriteString(w, "ok")
	})
	cfg := config.Default()
	u, _ := url.Parse(up.URL)
	rc := config.DefaultRoute()
	rc.Name, rc.Match.PathPrefix, rc.Upstream = "api", "/api/", config.URL{URL: u}
	cfg.Routes = []config.Route{rc}
	reg := prometheus.NewRegistry()
	gw := httptest.NewServer(New(Options{Config: &cfg, Verifier: fakeVerifier{}, Registerer: reg}))
	defer gw.Close()
	res, _ := get(t, gw.URL+"/api/x", "X-API-Key", goodKey)
	if got := res.Header.Values("X-Request-Id"); len(got) != 1 || got[0] == "upstream-id" {
		t.Errorf("X-Request-Id = %q, want keygate's only", got)
	}
	if got := testutil.ToFloat64(newMetricsProbe(t, reg, "api", "GET", "200")); got != 1 {
		t.Errorf(`keygate_requests_total{code="200"} = %v, want 1 (a 103 is interim)`, got)
	}
}

func TestForwardedFromTrustedProxyKept(t *testing.T) {
	up := newUpstream(t, nil)
	gw := newGateway(t, func(c *config.Config) {
		c.TrustedProxies = config.Prefixes{netip.MustParsePrefix("127.0.0.0/8")}
	}, up.URL)
	get(t, gw.URL+"/api/x", "X-API-Key", goodKey, "Forwarded", "for=1.2.3.4", "X-Forwarded-For", "1.2.3.4")
	r := up.seen(t)
	if got := r.Header.Get("Forwarded"); got != "for=1.2.3.4" {
		t.Errorf("Forwarded = %q, want the trusted proxy's", got)
	}
	if got := r.Header.Get("X-Forwarded-For"); got != "1.2.3.4, 127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want the chain plus the peer", got)
	}
}

// newMetricsProbe returns the keygate_requests_total series of reg with these labels.
func newMetricsProbe(t *testing.T, reg *prometheus.Registry, route, method, code string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "probe"})
	for _, mf := range mfs {
		if mf.GetName() != "keygate_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["route"] == route && l["method"] == method && l["code"] == code {
				c.Add(m.GetCounter().GetValue())
			}
		}
	}
	return c
}

func TestWebSocketUpgradePassesThrough(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "no upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		buf := make([]byte, 4)
		if _, err := io.ReadFull(brw, buf); err == nil {
			conn.Write(buf) // echo one frame's worth of bytes
		}
	})
	gw := newGateway(t, nil, up.URL)
	conn, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET /api/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-API-Key: "+goodKey+"\r\n\r\n")
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status = %d, want 101", res.StatusCode)
	}
	io.WriteString(conn, "ping")
	got := make([]byte, 4)
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "ping" {
		t.Errorf("echo through the upgraded connection = %q, %v; want ping", got, err)
	}
	if k := up.seen(t).Header.Get("X-API-Key"); k != "" {
		t.Errorf("upstream X-API-Key = %q, want none", k)
	}
}

func TestRateLimitHeadersSurviveInterimResponse(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusEarlyHints)
		io.WriteString(w, "ok")
	})
	cfg := config.Default()
	u, _ := url.Parse(up.URL)
	rc := config.DefaultRoute()
	rc.Name, rc.Match.PathPrefix, rc.Upstream = "api", "/api/", config.URL{URL: u}
	cfg.Routes = []config.Route{rc}
	cfg.RateLimit.Authenticated = config.Rates{{Formatted: "100-M", Period: time.Minute, Limit: 100}}
	lim, err := ratelimit.New(cfg.RateLimit, nil, ratelimit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer lim.Close()
	gw := httptest.NewServer(New(Options{Config: &cfg, Verifier: fakeVerifier{}, Limiter: lim}))
	defer gw.Close()
	res, _ := get(t, gw.URL+"/api/x", "X-API-Key", goodKey)
	if res.StatusCode != 200 {
		t.Fatalf("status = %d", res.StatusCode)
	}
	if got := res.Header.Get("X-RateLimit-Limit"); got != "100" {
		t.Errorf("X-RateLimit-Limit after a 103 = %q, want 100", got)
	}
	if got := res.Header.Values("X-Request-Id"); len(got) != 1 {
		t.Errorf("X-Request-Id = %q, want one", got)
	}
}

// A caller blocked by failed attempts is told the whole seconds, rounded up, until its
// windows end; the longest window of auth.failed_attempts when that is not known.
func TestRetryAfterOfBlockedCaller(t *testing.T) {
	up := newUpstream(t, nil)
	s := newGateway(t, func(c *config.Config) {
		c.Auth.FailedAttempts = config.Rates{{Limit: 10, Period: time.Minute}, {Limit: 100, Period: time.Hour}}
	}, up.URL)
	for _, tc := range []struct{ wait, want string }{
		{"59.001s", "60"}, {"60s", "60"}, {"200ms", "1"}, {"1h0m0.5s", "3601"}, {"0s", "3600"},
	} {
		req, _ := http.NewRequest("GET", s.URL+"/api/x", nil)
		req.Header.Set("X-API-Key", "blocked-"+tc.wait)
		res, body := do(t, req)
		if res.StatusCode != 429 || !strings.Contains(body, `"rate_limited"`) {
			t.Errorf("blocked for %s: %d %s, want 429 rate_limited", tc.wait, res.StatusCode, body)
		}
		if got := res.Header.Get("Retry-After"); got != tc.want {
			t.Errorf("blocked for %s: Retry-After = %q, want %q", tc.wait, got, tc.want)
		}
	}
}
