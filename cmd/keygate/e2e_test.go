package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// The end-to-end tests build the real binary once and talk HTTP to it.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keygate-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "keygate")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	e2eSecret = "e2e-secret-0123456789abcdef0123456789abcdef"
	e2eToken  = "e2e-admin-token-0123456789abcdef0123456789"
)

// syncBuffer collects the process output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// gateway is a running keygate process.
type gateway struct {
	t          *testing.T
	base, adm  string
	configPath string
	cmd        *exec.Cmd
	out        *syncBuffer
	exited     chan struct{}
	secrets    []string // must never appear in the output
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// routeYAML is one route of the test configuration.
func routeYAML(name, prefix, upstream, extra string) string {
	return fmt.Sprintf("  - name: %s\n    match: {path_prefix: %q}\n    upstream: %q\n%s", name, prefix, upstream, extra)
}

// startGateway writes a configuration with an SQLite store, the given top-level extra
// YAML and routes, and starts keygate on it.
func startGateway(t *testing.T, extra string, routes ...string) *gateway {
	t.Helper()
	store := fmt.Sprintf("store:\n  sqlite: {path: %q}\n  usage_flush_interval: 200ms\n", filepath.Join(t.TempDir(), "kg.db"))
	return startGatewayConfig(t, store+extra+"\nroutes:\n"+strings.Join(routes, ""))
}

// startGatewayConfig starts keygate on body: everything but listen, admin and log, which
// it adds (the test's ports and admin token), and keys with the test's secret unless body
// has a top-level keys section (which must then set secret: e2eSecret itself).
func startGatewayConfig(t *testing.T, body string) *gateway {
	t.Helper()
	g := launchGateway(t, body)
	g.waitHealthy(time.Now().Add(10*time.Second), "keygate")
	return g
}

// launchGateway writes the configuration of startGatewayConfig and starts keygate on it,
// without waiting for it to answer. The process is stopped, and its output checked for
// secrets, when the test ends.
func launchGateway(t *testing.T, body string) *gateway {
	t.Helper()
	dir := t.TempDir()
	pub, adm := freePort(t), freePort(t)
	keys := fmt.Sprintf("keys:\n  secret: %q\n", e2eSecret)
	if strings.HasPrefix(body, "keys:") || strings.Contains(body, "\nkeys:") {
		keys = ""
	}
	cfg := fmt.Sprintf(`listen: %q
shutdown_timeout: 5s
admin:
  listen: %q
  tokens: [{name: ops, token: %q}]
log: {level: debug, format: json}
%s%s`, pub, adm, e2eToken, keys, body)
	path := filepath.Join(dir, "keygate.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	g := &gateway{t: t, base: "http://" + pub, adm: "http://" + adm, configPath: path, out: &syncBuffer{},
		exited: make(chan struct{}), secrets: []string{e2eSecret, e2eToken}}
	g.cmd = exec.Command(binary, "serve", "--config", path)
	g.cmd.Stdout, g.cmd.Stderr = g.out, g.out
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { g.cmd.Wait(); close(g.exited) }()
	t.Cleanup(func() {
		g.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.exited:
		case <-time.After(10 * time.Second):
			g.cmd.Process.Kill()
		}
		g.checkNoSecrets()
	})
	return g
}

// waitHealthy polls g's /healthz until it answers 200, and fails the test, naming the
// process as name, when it exits or deadline passes first.
func (g *gateway) waitHealthy(deadline time.Time, name string) {
	g.t.Helper()
	for {
		res, err := http.Get(g.adm + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		select {
		case <-g.exited:
			g.t.Fatalf("%s exited: %s", name, g.out.String())
		default:
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("%s did not answer /healthz: %s", name, g.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkNoSecrets fails when a key, the secret or an admin token appears in the output.
func (g *gateway) checkNoSecrets() {
	out := g.out.String()
	for _, s := range g.secrets {
		if strings.Contains(out, s) {
			g.t.Errorf("keygate's output contains a secret (%.6s...)", s)
		}
	}
}

// adminDo calls the admin API with the token and decodes the JSON answer into v.
func (g *gateway) adminDo(method, path, body string, v any) int {
	g.t.Helper()
	req, _ := http.NewRequest(method, g.adm+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e2eToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if v != nil && len(b) > 0 {
		if err := json.Unmarshal(b, v); err != nil {
			g.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return res.StatusCode
}

type keyRecord struct {
	ID        string  `json:"id"`
	Key       string  `json:"key"`
	Prefix    string  `json:"prefix"`
	RevokedAt *string `json:"revoked_at"`
}

// newKey creates a principal (if needed) and a key for it over the admin API.
func (g *gateway) newKey(principal, body string) keyRecord {
	g.t.Helper()
	g.adminDo("POST", "/v1/principals", fmt.Sprintf(`{"id":%q,"scopes":["read","write"]}`, principal), nil)
	var k keyRecord
	if code := g.adminDo("POST", "/v1/principals/"+principal+"/keys", body, &k); code != 201 || k.Key == "" {
		g.t.Fatalf("create key: status %d, key %q", code, k.Prefix)
	}
	// A logged Authorization header would show the key in Base64.
	g.secrets = append(g.secrets, k.Key, base64.StdEncoding.EncodeToString([]byte(k.Key+":")))
	return k
}

// metric returns the value of one sample line of /metrics ("" when absent).
func (g *gateway) metric(sample string) string {
	g.t.Helper()
	res, err := http.Get(g.adm + "/metrics")
	if err != nil {
		g.t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			return v
		}
	}
	return ""
}

// recordingUpstream remembers what it received.
type recordingUpstream struct {
	srv  *http.Server
	url  string
	mu   sync.Mutex
	reqs []*http.Request
}

func newRecordingUpstream(t *testing.T, h http.HandlerFunc) *recordingUpstream {
	t.Helper()
	u := &recordingUpstream{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.url = "http://" + ln.Addr().String()
	u.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.reqs = append(u.reqs, r.Clone(context.Background()))
		u.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		io.WriteString(w, `{"ok":true}`)
	})}
	go u.srv.Serve(ln)
	t.Cleanup(func() { u.srv.Close() })
	return u
}

func (u *recordingUpstream) last(t *testing.T) *http.Request {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		t.Fatal("the upstream received nothing")
	}
	return u.reqs[len(u.reqs)-1]
}

func (u *recordingUpstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

func call(t *testing.T, method, url string, set func(*http.Request)) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if set != nil {
		set(req)
	}
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestE2EKeyCarriers(t *testing.T) {
	up := newRecordingUpstream(t, nil)
	g := startGateway(t, "", routeYAML("api", "/api/", up.url, ""))
	k := g.newKey("acme", `{"name":"laptop"}`)

	for _, tc := range []struct {
		name string
		set  func(*http.Request)
	}{
		{"basic empty password", func(r *http.Request) { r.SetBasicAuth(k.Key, "") }},
		{"basic with password", func(r *http.Request) { r.SetBasicAuth(k.Key, "ignored") }},
		{"bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+k.Key) }},
		{"x-api-key", func(r *http.Request) { r.Header.Set("X-API-Key", k.Key) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := call(t, "GET", g.base+"/api/items", tc.set)
			if res.StatusCode != 200 {
				t.Fatalf("status = %d (%s), want 200", res.StatusCode, body)
			}
			r := up.last(t)
			for h, want := range map[string]string{"X-Auth-Principal": "acme", "X-Auth-Key-Id": k.ID, "X-Auth-Method": "key", "X-Auth-Key-Name": "laptop"} {
				if got := r.Header.Get(h); got != want {
					t.Errorf("upstream %s = %q, want %q", h, got, want)
				}
			}
			if got := r.Header.Get("Authorization"); got != "" {
				t.Errorf("upstream Authorization = %q, want none", got)
			}
			if got := r.Header.Get("X-API-Key"); got != "" {
				t.Errorf("upstream X-API-Key present")
			}
		})
	}

	t.Run("second credential never reaches the upstream", func(t *testing.T) {
		res, _ := call(t, "GET", g.base+"/api/items", func(r *http.Request) {
			r.SetBasicAuth(k.Key, "")
			r.Header.Set("X-API-Key", "kg_someoneelse")
		})
		if res.StatusCode != 200 {
			t.Fatalf("status = %d, want 200", res.StatusCode)
		}
		if got := up.last(t).Header.Get("X-API-Key"); got != "" {
			t.Errorf("upstream X-API-Key = %q, want none", got)
		}
	})

	t.Run("spoofed identity headers", func(t *testing.T) {
		res, _ := call(t, "GET", g.base+"/api/items", func(r *http.Request) {
			r.SetBasicAuth(k.Key, "")
			r.Header.Set("X-Auth-Principal", "root")
			r.Header.Set("X_Auth_Principal", "root")
			r.Header.Set("Connection", "X-Auth-Principal")
		})
		if res.StatusCode != 200 {
			t.Fatalf("status = %d, want 200", res.StatusCode)
		}
		r := up.last(t)
		if got := r.Header.Values("X-Auth-Principal"); len(got) != 1 || got[0] != "acme" {
			t.Errorf("upstream X-Auth-Principal = %q, want [acme]", got)
		}
		if got := r.Header.Get("X_Auth_Principal"); got != "" {
			t.Errorf("upstream X_Auth_Principal = %q, want none", got)
		}
	})

	t.Run("spoofed identity on anonymous request", func(t *testing.T) {
		res, _ := call(t, "GET", g.base+"/api/items", func(r *http.Request) {
			r.Header.Set("Connection", "X-Auth-Principal")
			r.Header.Set("X-Auth-Principal", "root")
		})
		if res.StatusCode != 401 {
			t.Errorf("status = %d, want 401", res.StatusCode)
		}
	})

	t.Run("path checks", func(t *testing.T) {
		before := up.count()
		for _, p := range []string{"/api/%2e%2e/admin", "/api/./x", "/api/..;/x", "/api/a%2fb"} {
			res, body := call(t, "GET", g.base+"/", func(r *http.Request) {
				r.URL.Opaque = p
				r.SetBasicAuth(k.Key, "")
			})
			if res.StatusCode != 400 || !strings.Contains(body, `"bad_request"`) {
				t.Errorf("GET %s = %d %s, want 400 bad_request", p, res.StatusCode, body)
			}
		}
		if up.count() != before {
			t.Errorf("the upstream received a refused path")
		}
	})
}

func TestE2EBadKeys(t *testing.T) {
	up := newRecordingUpstream(t, nil)
	g := startGateway(t, "", routeYAML("api", "/api/", up.url, ""))
	good := g.newKey("acme", `{"name":"good"}`)
	revoked := g.newKey("acme", `{"name":"revoked"}`)
	expiring := g.newKey("acme", `{"name":"expiring","ttl":"1s"}`)

	basic := func(key string) func(*http.Request) { return func(r *http.Request) { r.SetBasicAuth(key, "") } }
	if res, _ := call(t, "GET", g.base+"/api/x", basic(revoked.Key)); res.StatusCode != 200 {
		t.Fatalf("before revoke: %d, want 200", res.StatusCode)
	}
	if code := g.adminDo("DELETE", "/v1/keys/"+revoked.ID, "", nil); code != 200 {
		t.Fatalf("revoke: %d, want 200", code)
	}
	res, revokedBody := call(t, "GET", g.base+"/api/x", basic(revoked.Key))
	if res.StatusCode != 401 {
		t.Errorf("revoked key on the very next request: %d, want 401", res.StatusCode)
	}
	if code := g.adminDo("DELETE", "/v1/keys/"+revoked.ID, "", nil); code != 404 {
		t.Errorf("revoke twice: %d, want 404", code)
	}

	// Unknown key of the right format.
	unknown := strings.Repeat("B", 32)
	_, unknownBody2 := call(t, "GET", g.base+"/api/x", basic("kg_"+unknown+checksumOf("kg_"+unknown)))

	// Expired: poll until the 1s ttl has passed.
	var expiredBody string
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, body := call(t, "GET", g.base+"/api/x", basic(expiring.Key))
		if res.StatusCode == 401 {
			expiredBody = body
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("expiring key still %d after its ttl", res.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for name, body := range map[string]string{"unknown": unknownBody2, "expired": expiredBody, "revoked": revokedBody} {
		if body != unknownBody2 {
			t.Errorf("%s body = %q, want the same as unknown %q", name, body, unknownBody2)
		}
	}

	// A bad checksum is refused before any cache or store lookup.
	missBefore := g.metric(`keygate_keystore_cache_total{result="miss"}`)
	bad := []byte(good.Key)
	bad[len(bad)-1] ^= 1
	res, body := call(t, "GET", g.base+"/api/x", basic(string(bad)))
	if res.StatusCode != 401 || body != unknownBody2 {
		t.Errorf("bad checksum: %d %s, want 401 with the same body", res.StatusCode, body)
	}
	if got := g.metric(`keygate_keystore_cache_total{result="miss"}`); got != missBefore {
		t.Errorf("cache misses went from %s to %s on a bad checksum, want no lookup", missBefore, got)
	}
	if got := g.metric(`keygate_auth_total{method="key",result="malformed"}`); got != "1" {
		t.Errorf(`keygate_auth_total{method="key",result="malformed"} = %q, want 1`, got)
	}
	if got := g.metric(`keygate_auth_total{method="key",result="revoked"}`); got != "1" {
		t.Errorf(`keygate_auth_total{method="key",result="revoked"} = %q, want 1`, got)
	}
	if res.Header.Get("WWW-Authenticate") != `Basic realm="keygate"` {
		t.Errorf("WWW-Authenticate = %q", res.Header.Get("WWW-Authenticate"))
	}
}

// checksumOf computes the 6-character checksum of prefix+body, as keystore does.
func checksumOf(s string) string {
	const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	n := uint64(crc32IEEE([]byte(s)))
	out := make([]byte, 6)
	for i := 5; i >= 0; i-- {
		out[i] = base62[n%62]
		n /= 62
	}
	return string(out)
}

func TestE2EAdminNeedsToken(t *testing.T) {
	up := newRecordingUpstream(t, nil)
	g := startGateway(t, "", routeYAML("api", "/api/", up.url, ""))
	k := g.newKey("acme", `{"name":"laptop"}`)
	for _, tok := range []string{"", "Bearer wrong-token-0123456789abcdef0123456789", "Basic " + e2eToken} {
		res, _ := call(t, "GET", g.adm+"/v1/principals", func(r *http.Request) {
			if tok != "" {
				r.Header.Set("Authorization", tok)
			}
		})
		if res.StatusCode != 401 {
			t.Errorf("/v1/principals with %.12q: %d, want 401", tok, res.StatusCode)
		}
	}
	// No listing or show ever holds the plaintext or the hash.
	for _, path := range []string{"/v1/principals", "/v1/principals/acme", "/v1/principals/acme/keys",
		"/v1/principals/acme/keys?include_revoked=true", "/v1/keys/" + k.ID} {
		var raw json.RawMessage
		if code := g.adminDo("GET", path, "", &raw); code != 200 {
			t.Errorf("GET %s: %d", path, code)
		}
		if strings.Contains(string(raw), k.Key) || strings.Contains(string(raw), k.Key[3:]) {
			t.Errorf("GET %s contains the key", path)
		}
		if strings.Contains(strings.ToLower(string(raw)), "hash") {
			t.Errorf("GET %s mentions a hash: %s", path, raw)
		}
	}
	if code := g.adminDo("GET", "/v1/keys/not-a-uuid", "", nil); code != 400 {
		t.Errorf("GET /v1/keys/not-a-uuid: %d, want 400", code)
	}
}

func TestE2EUpstreamFailures(t *testing.T) {
	dead := freePort(t) // nothing listens here any more
	slow := newRecordingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	})
	sse := newRecordingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		http.NewResponseController(w).Flush()
		time.Sleep(2 * time.Second)
		io.WriteString(w, "data: second\n\n")
	})
	g := startGateway(t, "",
		routeYAML("dead", "/dead/", "http://"+dead, ""),
		routeYAML("slow", "/slow/", slow.url, "    timeout: 200ms\n"),
		routeYAML("sse", "/sse/", sse.url, ""))
	k := g.newKey("acme", `{"name":"laptop"}`)
	key := func(r *http.Request) { r.Header.Set("X-API-Key", k.Key) }

	if res, body := call(t, "GET", g.base+"/dead/x", key); res.StatusCode != 502 || !strings.Contains(body, `"bad_gateway"`) {
		t.Errorf("dead upstream: %d %s, want 502 bad_gateway JSON", res.StatusCode, body)
	}
	if res, body := call(t, "GET", g.base+"/slow/x", key); res.StatusCode != 504 || !strings.Contains(body, `"gateway_timeout"`) {
		t.Errorf("slow upstream: %d %s, want 504 gateway_timeout JSON", res.StatusCode, body)
	}
	if res, body := call(t, "GET", g.base+"/nothing", key); res.StatusCode != 404 || !strings.Contains(body, `"not_found"`) {
		t.Errorf("no route: %d %s, want 404 not_found JSON", res.StatusCode, body)
	}

	start := time.Now()
	req, _ := http.NewRequest("GET", g.base+"/sse/events", nil)
	key(req)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	line, err := bufio.NewReader(res.Body).ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first SSE line = %q, %v", line, err)
	}
	if time.Since(start) > 1500*time.Millisecond {
		t.Errorf("the first event arrived after %v, want before the stream ends (2s)", time.Since(start))
	}
}

func TestE2ESIGTERMDrains(t *testing.T) {
	slow := newRecordingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Second)
		io.WriteString(w, "finished")
	})
	g := startGateway(t, "", routeYAML("slow", "/slow/", slow.url, ""))
	k := g.newKey("acme", `{"name":"laptop"}`)
	type result struct {
		code int
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("GET", g.base+"/slow/x", nil)
		req.Header.Set("X-API-Key", k.Key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		done <- result{res.StatusCode, string(b), err}
	}()
	// Signal once the upstream has the request.
	deadline := time.Now().Add(5 * time.Second)
	for slow.count() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	g.cmd.Process.Signal(syscall.SIGTERM)
	r := <-done
	if r.err != nil || r.code != 200 || r.body != "finished" {
		t.Errorf("in-flight request during SIGTERM: %d %q %v, want 200 finished", r.code, r.body, r.err)
	}
	select {
	case <-g.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("keygate did not exit after SIGTERM")
	}
	if g.cmd.ProcessState.ExitCode() != 0 {
		t.Errorf("exit code = %d, want 0", g.cmd.ProcessState.ExitCode())
	}
}

func TestE2ECLIRevokeReachesServe(t *testing.T) {
	up := newRecordingUpstream(t, nil)
	g := startGateway(t, "", routeYAML("api", "/api/", up.url, ""))
	k := g.newKey("acme", `{"name":"laptop"}`)
	basic := func(r *http.Request) { r.SetBasicAuth(k.Key, "") }
	if res, _ := call(t, "GET", g.base+"/api/x", basic); res.StatusCode != 200 {
		t.Fatalf("before revoke: %d", res.StatusCode)
	}
	out, err := exec.Command(binary, "keys", "revoke", k.ID, "--config", g.configPath).CombinedOutput()
	if err != nil {
		t.Fatalf("keys revoke: %v: %s", err, out)
	}
	revokedAt := time.Now()
	for {
		res, _ := call(t, "GET", g.base+"/api/x", basic)
		if res.StatusCode == 401 {
			break
		}
		if time.Since(revokedAt) > 1500*time.Millisecond {
			t.Fatalf("a key revoked by the CLI still works after %v", time.Since(revokedAt))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestE2EUsageTracking(t *testing.T) {
	up := newRecordingUpstream(t, nil)
	g := startGateway(t, "", routeYAML("api", "/api/", up.url, ""))
	k := g.newKey("acme", `{"name":"laptop"}`)
	for range 3 {
		if res, _ := call(t, "GET", g.base+"/api/x", func(r *http.Request) { r.SetBasicAuth(k.Key, "") }); res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		var got struct {
			UsageCount int64   `json:"usage_count"`
			LastUsedAt *string `json:"last_used_at"`
		}
		g.adminDo("GET", "/v1/keys/"+k.ID, "", &got)
		if got.UsageCount == 3 && got.LastUsedAt != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage_count = %d, last_used_at = %v; want 3 and a time after the flush interval", got.UsageCount, got.LastUsedAt)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestE2EMetricsLint checks /metrics the way `promtool check metrics` does, after traffic
// has created the labelled series.
func TestE2EMetricsLint(t *testing.T) {
	up := newRecordingUpstream(t, nil)
	g := startGateway(t, "", routeYAML("api", "/api/", up.url, ""))
	k := g.newKey("acme", `{"name":"laptop"}`)
	call(t, "GET", g.base+"/api/x", func(r *http.Request) { r.SetBasicAuth(k.Key, "") })
	call(t, "GET", g.base+"/api/x", nil)
	res, err := http.Get(g.adm + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	problems, err := promlint.New(res.Body).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("/metrics: %s: %s", p.Metric, p.Text)
	}
	for _, name := range []string{"keygate_requests_total", "keygate_request_duration_seconds", "keygate_upstream_duration_seconds",
		"keygate_auth_total", "keygate_keystore_cache_total", "keygate_build_info", "keygate_ratelimit_total"} {
		if g.metric(name+"_count") == "" && !strings.Contains(metricsText(t, g), "# TYPE "+name+" ") {
			t.Errorf("/metrics has no %s", name)
		}
	}
}

func metricsText(t *testing.T, g *gateway) string {
	t.Helper()
	res, err := http.Get(g.adm + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}
