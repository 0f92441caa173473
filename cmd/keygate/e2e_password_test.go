package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// End-to-end tests of principal passwords, self-service keys, legacy import and secret
// rotation (SPEC §2, §3, §6, §7), against the real binary.

// e2eSecret2 is the secret a rotation moves to.
const e2eSecret2 = "e2e-secret-two-fedcba9876543210fedcba9876543210"

// selfServicePath is the default self_service.path.
const selfServicePath = "/keygate/v1/keys"

// e2ePassword returns a fresh random password and records it as a secret of g.
func (g *gateway) e2ePassword() string {
	g.t.Helper()
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		g.t.Fatal(err)
	}
	pw := fmt.Sprintf("pw-%x", b)
	g.secrets = append(g.secrets, pw)
	return pw
}

// newPrincipal creates a principal with a password over the admin API.
func (g *gateway) newPrincipal(id, password string) {
	g.t.Helper()
	body := fmt.Sprintf(`{"id":%q,"password":%q,"scopes":["read","write"]}`, id, password)
	if code := g.adminDo("POST", "/v1/principals", body, nil); code != 201 {
		g.t.Fatalf("POST /v1/principals %s: status %d, want 201", id, code)
	}
	g.secrets = append(g.secrets, basicSecrets(id, password)...)
}

// withBasic sets Basic credentials user:password, as curl -u user:password does.
func withBasic(user, password string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(user, password) }
}

// basicSecrets returns the Authorization values that carry user:password in Base64, which
// a logged header would show instead of the plaintext.
func basicSecrets(user, password string) []string {
	return []string{base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}
}

// withKeyHeader sets the key in X-API-Key.
func withKeyHeader(key string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("X-API-Key", key) }
}

// callBody is call with a JSON body.
func callBody(t *testing.T, method, url, body string, set func(*http.Request)) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
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

// selfCreate creates a key through self-service with Basic user:password and returns the
// status and the created record (its key recorded as a secret of g).
func (g *gateway) selfCreate(user, password, body string) (int, keyRecord, string) {
	g.t.Helper()
	res, raw := callBody(g.t, "POST", g.base+selfServicePath, body, withBasic(user, password))
	var k keyRecord
	if res.StatusCode == 201 {
		if err := json.Unmarshal([]byte(raw), &k); err != nil {
			g.t.Fatalf("self-service create: %v in %s", err, raw)
		}
		if k.Key == "" {
			g.t.Fatalf("self-service create: 201 without a key: %s", raw)
		}
		g.secrets = append(append(g.secrets, k.Key), basicSecrets(k.Key, "")...)
	}
	return res.StatusCode, k, raw
}

// selfList lists the caller's keys through self-service: the status, the ids and the raw
// body.
func (g *gateway) selfList(set func(*http.Request)) (int, []string, string) {
	g.t.Helper()
	res, raw := call(g.t, "GET", g.base+selfServicePath, set)
	var page struct {
		Items []map[string]any `json:"items"`
	}
	if res.StatusCode == 200 {
		if err := json.Unmarshal([]byte(raw), &page); err != nil {
			g.t.Fatalf("self-service list: %v in %s", err, raw)
		}
	}
	var ids []string
	for _, it := range page.Items {
		if _, ok := it["key"]; ok {
			g.t.Errorf("self-service list item has a key field: %v", it)
		}
		id, _ := it["id"].(string)
		ids = append(ids, id)
	}
	return res.StatusCode, ids, raw
}

// getStatus is the status of a GET of url with set.
func getStatus(t *testing.T, url string, set func(*http.Request)) int {
	t.Helper()
	res, _ := call(t, "GET", url, set)
	return res.StatusCode
}

// stop sends SIGTERM and waits for the process to exit (the cleanup then only checks
// the output).
func (g *gateway) stop() {
	g.t.Helper()
	g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.exited:
	case <-time.After(10 * time.Second):
		g.t.Fatal("keygate did not exit after SIGTERM")
	}
}

// TestE2EDataCitePath is the acceptance path of issue 4, as a client does it with curl.
func TestE2EDataCitePath(t *testing.T) {
	t.Parallel()
	up := newRecordingUpstream(t, nil)
	g := startGateway(t, "", routeYAML("api", "/api/", up.url, ""))
	pw := g.e2ePassword()
	g.newPrincipal("client", pw)

	// curl -u client:PASSWORD -X POST .../keygate/v1/keys -d '{"name":"laptop"}'
	code, k, raw := g.selfCreate("client", pw, `{"name":"laptop"}`)
	if code != 201 {
		t.Fatalf("self-service create: %d %s, want 201", code, raw)
	}
	if !strings.HasPrefix(k.Key, "kg_") || k.ID == "" || k.Prefix != k.Key[:11] {
		t.Errorf("created key: id %q, prefix %q, key of %d characters; want an id, prefix kg_ and 8 characters of the key",
			k.ID, k.Prefix, len(k.Key))
	}

	// The key is shown once: the list has it without its secret.
	code, ids, raw := g.selfList(withBasic("client", pw))
	if code != 200 || !slices.Contains(ids, k.ID) {
		t.Fatalf("self-service list: %d, ids %v, want 200 with %s", code, ids, k.ID)
	}
	if strings.Contains(raw, k.Key) || strings.Contains(raw, k.Key[3:]) {
		t.Errorf("self-service list holds the key")
	}

	checkKey := func(name string, set func(*http.Request)) {
		t.Helper()
		res, body := call(t, "GET", g.base+"/api/dois", set)
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d %s, want 200", name, res.StatusCode, body)
		}
		r := up.last(t)
		for h, want := range map[string]string{"X-Auth-Principal": "client", "X-Auth-Method": "key",
			"X-Auth-Key-Id": k.ID, "X-Auth-Key-Name": "laptop", "Authorization": ""} {
			if got := r.Header.Get(h); got != want {
				t.Errorf("%s: upstream %s = %q, want %q", name, h, got, want)
			}
		}
	}
	checkKey("-u KEY:", withBasic(k.Key, ""))
	checkKey("-u KEY:anything", withBasic(k.Key, "anything"))
	checkKey("Basic KEY without a colon", func(r *http.Request) {
		r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(k.Key)))
	})

	// curl -u client:PASSWORD -X DELETE .../keygate/v1/keys/ID
	if res, body := call(t, "DELETE", g.base+selfServicePath+"/"+k.ID, withBasic("client", pw)); res.StatusCode != 200 {
		t.Fatalf("self-service revoke: %d %s, want 200", res.StatusCode, body)
	}
	if res, body := call(t, "GET", g.base+"/api/dois", withBasic(k.Key, "")); res.StatusCode != 401 {
		t.Errorf("revoked key on the next request: %d %s, want 401", res.StatusCode, body)
	}
	if res, body := call(t, "DELETE", g.base+selfServicePath+"/"+k.ID, withBasic("client", pw)); res.StatusCode != 404 {
		t.Errorf("self-service revoke twice: %d %s, want 404", res.StatusCode, body)
	}
	if code, ids, _ := g.selfList(withBasic("client", pw)); code != 200 || slices.Contains(ids, k.ID) {
		t.Errorf("self-service list after revoke: %d, ids %v, want 200 without %s", code, ids, k.ID)
	}

	// The password still works on the proxy, as a password login.
	res, body := call(t, "GET", g.base+"/api/dois", withBasic("client", pw))
	if res.StatusCode != 200 {
		t.Fatalf("-u client:PASSWORD on the proxy: %d %s, want 200", res.StatusCode, body)
	}
	r := up.last(t)
	for h, want := range map[string]string{"X-Auth-Principal": "client", "X-Auth-Method": "basic",
		"X-Auth-Key-Id": "", "X-Auth-Key-Name": "", "Authorization": ""} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("password login: upstream %s = %q, want %q", h, got, want)
		}
	}
	if vs := r.Header.Values("X-Auth-Key-Id"); len(vs) != 0 {
		t.Errorf("password login: upstream X-Auth-Key-Id present (%q), want absent", vs)
	}
}

// TestE2ESelfServiceBoundaries: a key cannot manage keys, principals cannot reach each
// other's keys, and keys.max_per_principal holds.
func TestE2ESelfServiceBoundaries(t *testing.T) {
	t.Parallel()
	up := newRecordingUpstream(t, nil)
	g := startGateway(t, "", routeYAML("api", "/api/", up.url, ""))
	alicePW, bobPW := g.e2ePassword(), g.e2ePassword()
	g.newPrincipal("alice", alicePW)
	g.newPrincipal("bob", bobPW)
	code, k, raw := g.selfCreate("alice", alicePW, `{"name":"k1"}`)
	if code != 201 {
		t.Fatalf("self-service create: %d %s, want 201", code, raw)
	}

	t.Run("a key cannot mint keys", func(t *testing.T) {
		for name, set := range map[string]func(*http.Request){
			"-u KEY:":   withBasic(k.Key, ""),
			"bearer":    func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+k.Key) },
			"x-api-key": withKeyHeader(k.Key),
		} {
			res, body := callBody(t, "POST", g.base+selfServicePath, `{"name":"minted"}`, set)
			if res.StatusCode != 403 || !strings.Contains(body, `"forbidden"`) {
				// The body is not quoted: it may hold a minted key.
				t.Errorf("POST %s with %s: %d, want 403 forbidden", selfServicePath, name, res.StatusCode)
			}
			if res, _ := call(t, "GET", g.base+selfServicePath, set); res.StatusCode != 403 {
				t.Errorf("GET %s with %s: %d, want 403", selfServicePath, name, res.StatusCode)
			}
			if res, _ := call(t, "DELETE", g.base+selfServicePath+"/"+k.ID, set); res.StatusCode != 403 {
				t.Errorf("DELETE %s/ID with %s: %d, want 403", selfServicePath, name, res.StatusCode)
			}
		}
		if code, ids, _ := g.selfList(withBasic("alice", alicePW)); code != 200 || len(ids) != 1 {
			t.Errorf("alice's keys: %d %v, want only k1", code, ids)
		}
	})

	t.Run("another principal gets 404", func(t *testing.T) {
		code, ids, _ := g.selfList(withBasic("bob", bobPW))
		if code != 200 || slices.Contains(ids, k.ID) {
			t.Errorf("bob's list: %d %v, want 200 without alice's key %s", code, ids, k.ID)
		}
		res, body := call(t, "DELETE", g.base+selfServicePath+"/"+k.ID, withBasic("bob", bobPW))
		if res.StatusCode != 404 || !strings.Contains(body, `"not_found"`) {
			t.Errorf("bob revokes alice's key: %d %s, want 404 not_found", res.StatusCode, body)
		}
		if got := getStatus(t, g.base+"/api/x", withBasic(k.Key, "")); got != 200 {
			t.Errorf("alice's key after bob's attempt: %d, want 200", got)
		}
	})

	t.Run("bodies", func(t *testing.T) {
		for _, tc := range []struct {
			name, body string
			code       int
			errCode    string
			mention    string
		}{
			{"no name", `{}`, 400, "bad_request", "name"},
			{"scope not held", `{"name":"x","scopes":["admin"]}`, 422, "unprocessable", "admin"},
			{"rate_limit", `{"name":"x","rate_limit":"5-S"}`, 400, "bad_request", "rate_limit"},
			{"unknown field", `{"name":"x","owner":"bob"}`, 400, "bad_request", "owner"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, _, raw := g.selfCreate("alice", alicePW, tc.body)
				if code != tc.code || !strings.Contains(raw, `"`+tc.errCode+`"`) || !strings.Contains(raw, tc.mention) {
					t.Errorf("POST %s: %d %s, want %d %s naming %s", tc.body, code, raw, tc.code, tc.errCode, tc.mention)
				}
			})
		}
	})

	t.Run("the 11th key is 409", func(t *testing.T) {
		var last keyRecord
		for i := 2; i <= 10; i++ {
			code, kk, raw := g.selfCreate("alice", alicePW, fmt.Sprintf(`{"name":"k%d"}`, i))
			if code != 201 {
				t.Fatalf("key %d: %d %s, want 201", i, code, raw)
			}
			last = kk
		}
		code, _, raw := g.selfCreate("alice", alicePW, `{"name":"k11"}`)
		if code != 409 || !strings.Contains(raw, `"conflict"`) {
			t.Fatalf("key 11: %d %s, want 409 conflict", code, raw)
		}
		// bob has a quota of his own.
		if code, _, raw := g.selfCreate("bob", bobPW, `{"name":"b1"}`); code != 201 {
			t.Errorf("bob's first key: %d %s, want 201", code, raw)
		}
		// A revoked key frees its place.
		if res, body := call(t, "DELETE", g.base+selfServicePath+"/"+last.ID, withBasic("alice", alicePW)); res.StatusCode != 200 {
			t.Fatalf("revoke: %d %s", res.StatusCode, body)
		}
		if code, _, raw := g.selfCreate("alice", alicePW, `{"name":"k11"}`); code != 201 {
			t.Errorf("key 11 after a revoke: %d %s, want 201", code, raw)
		}
	})
}

// TestE2EPasswordFailedAttempts: a wrong password is 401, and beyond auth.failed_attempts
// the answer is 429 without running the KDF; cached credentials are not held back.
func TestE2EPasswordFailedAttempts(t *testing.T) {
	t.Parallel()
	up := newRecordingUpstream(t, nil)
	g := startGateway(t, "auth:\n  failed_attempts: \"10-M\"\n", routeYAML("api", "/api/", up.url, ""))
	pw := g.e2ePassword()
	g.newPrincipal("client", pw)
	k := g.newKey("client", `{"name":"laptop"}`)
	// Cache both the password check and the key.
	if got := getStatus(t, g.base+"/api/x", withBasic("client", pw)); got != 200 {
		t.Fatalf("right password: %d, want 200", got)
	}
	if got := getStatus(t, g.base+"/api/x", withBasic(k.Key, "")); got != 200 {
		t.Fatalf("key: %d, want 200", got)
	}

	wrong := g.e2ePassword()
	// An unknown principal costs a KDF run, as a wrong password does.
	kdf := g.metric("keygate_auth_kdf_total")
	if got := getStatus(t, g.base+"/api/x", withBasic("nobody", wrong)); got != 401 {
		t.Errorf("unknown principal: %d, want 401", got)
	}
	if got, want := g.metric("keygate_auth_kdf_total"), kdfPlus(t, kdf, 1); got != want {
		t.Errorf("keygate_auth_kdf_total = %s after an unknown principal, want %s (one dummy run)", got, want)
	}
	for i := 2; i <= 10; i++ {
		res, body := call(t, "GET", g.base+"/api/x", withBasic("client", wrong))
		if res.StatusCode != 401 || !strings.Contains(body, `"unauthorized"`) {
			t.Fatalf("wrong password %d: %d %s, want 401 unauthorized", i, res.StatusCode, body)
		}
	}
	if got := g.metric(`keygate_auth_total{method="basic",result="bad_password"}`); got != "9" {
		t.Errorf(`keygate_auth_total{method="basic",result="bad_password"} = %q, want 9`, got)
	}

	kdfBefore := g.metric("keygate_auth_kdf_total")
	if kdfBefore == "" || kdfBefore == "0" {
		t.Fatalf("keygate_auth_kdf_total = %q before the 11th attempt, want the checks so far", kdfBefore)
	}
	res, body := call(t, "GET", g.base+"/api/x", withBasic("client", wrong))
	if res.StatusCode != 429 || !strings.Contains(body, `"rate_limited"`) {
		t.Errorf("11th wrong password within a minute: %d %s, want 429 rate_limited", res.StatusCode, body)
	}
	if res.Header.Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After")
	}
	// The blocked caller's other uncached checks are refused before the KDF as well.
	if got := getStatus(t, g.base+"/api/x", withBasic("nobody", wrong)); got != 429 {
		t.Errorf("unknown principal from the blocked address: %d, want 429", got)
	}
	if got := g.metric("keygate_auth_kdf_total"); got != kdfBefore {
		t.Errorf("keygate_auth_kdf_total went from %s to %s for blocked attempts, want no KDF run", kdfBefore, got)
	}

	// A password check or key already in the cache is never held back.
	if got := getStatus(t, g.base+"/api/x", withBasic("client", pw)); got != 200 {
		t.Errorf("cached right password while blocked: %d, want 200", got)
	}
	if got := getStatus(t, g.base+"/api/x", withBasic(k.Key, "")); got != 200 {
		t.Errorf("cached key while blocked: %d, want 200", got)
	}
	if got := g.metric("keygate_auth_kdf_total"); got != kdfBefore {
		t.Errorf("keygate_auth_kdf_total went from %s to %s for cached checks, want no KDF run", kdfBefore, got)
	}
}

// kdfPlus returns the counter value v plus n, as /metrics prints it.
func kdfPlus(t *testing.T, v string, n int) string {
	t.Helper()
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		t.Fatalf("keygate_auth_kdf_total = %q: %v", v, err)
	}
	return strconv.FormatFloat(f+float64(n), 'g', -1, 64)
}

// TestE2EPasswordChangeEvicts: a password change, removal, disable or delete takes effect on
// the very next request, although the checks were cached.
func TestE2EPasswordChangeEvicts(t *testing.T) {
	t.Parallel()
	up := newRecordingUpstream(t, nil)
	// Enough failed attempts that the 401s below are never 429s.
	g := startGateway(t, "auth:\n  failed_attempts: \"1000-M\"\n  basic_cache_ttl: 5m\n", routeYAML("api", "/api/", up.url, ""))
	api := g.base + "/api/x"

	t.Run("password change", func(t *testing.T) {
		old, next := g.e2ePassword(), g.e2ePassword()
		g.newPrincipal("client", old)
		k := g.newKey("client", `{"name":"laptop"}`)
		if got := getStatus(t, api, withBasic("client", old)); got != 200 {
			t.Fatalf("login: %d, want 200", got)
		}
		kdf := g.metric("keygate_auth_kdf_total")
		if got := getStatus(t, api, withBasic("client", old)); got != 200 {
			t.Fatalf("second login: %d, want 200", got)
		}
		if got := g.metric("keygate_auth_kdf_total"); got != kdf {
			t.Fatalf("keygate_auth_kdf_total went from %s to %s on a repeated login, want it cached", kdf, got)
		}
		if code := g.adminDo("PATCH", "/v1/principals/client", fmt.Sprintf(`{"password":%q}`, next), nil); code != 200 {
			t.Fatalf("PATCH password: %d, want 200", code)
		}
		if got := getStatus(t, api, withBasic("client", old)); got != 401 {
			t.Errorf("old password on the next request: %d, want 401", got)
		}
		if got := getStatus(t, api, withBasic("client", next)); got != 200 {
			t.Errorf("new password: %d, want 200", got)
		}
		if got := getStatus(t, api, withBasic("client", next)); got != 200 { // cached
			t.Errorf("new password again: %d, want 200", got)
		}
		if got := getStatus(t, api, withBasic(k.Key, "")); got != 200 {
			t.Errorf("the principal's key after a password change: %d, want 200", got)
		}
		if code, _, raw := g.selfCreate("client", old, `{"name":"x"}`); code != 401 {
			t.Errorf("self-service with the old password: %d %s, want 401", code, raw)
		}
		if code := g.adminDo("PATCH", "/v1/principals/client", `{"password":null}`, nil); code != 200 {
			t.Fatalf("PATCH password null: %d, want 200", code)
		}
		if got := getStatus(t, api, withBasic("client", next)); got != 401 {
			t.Errorf("removed password on the next request: %d, want 401", got)
		}
	})

	// useAll caches a principal's password check and keys.
	useAll := func(t *testing.T, id, pw string, keys ...keyRecord) {
		t.Helper()
		for range 2 {
			if got := getStatus(t, api, withBasic(id, pw)); got != 200 {
				t.Fatalf("%s:password: %d, want 200", id, got)
			}
			for _, k := range keys {
				if got := getStatus(t, api, withBasic(k.Key, "")); got != 200 {
					t.Fatalf("key %s: %d, want 200", k.Prefix, got)
				}
			}
		}
	}
	allFail := func(t *testing.T, what, id, pw string, keys ...keyRecord) {
		t.Helper()
		if got := getStatus(t, api, withBasic(id, pw)); got != 401 {
			t.Errorf("%s: password on the next request: %d, want 401", what, got)
		}
		for _, k := range keys {
			if got := getStatus(t, api, withBasic(k.Key, "")); got != 401 {
				t.Errorf("%s: key %s on the next request: %d, want 401", what, k.Prefix, got)
			}
			if got := getStatus(t, api, withKeyHeader(k.Key)); got != 401 {
				t.Errorf("%s: key %s in X-API-Key: %d, want 401", what, k.Prefix, got)
			}
		}
	}

	t.Run("disable", func(t *testing.T) {
		pw := g.e2ePassword()
		g.newPrincipal("dis", pw)
		k1, k2 := g.newKey("dis", `{"name":"a"}`), g.newKey("dis", `{"name":"b"}`)
		useAll(t, "dis", pw, k1, k2)
		if code := g.adminDo("PATCH", "/v1/principals/dis", `{"disabled":true}`, nil); code != 200 {
			t.Fatalf("PATCH disabled: %d, want 200", code)
		}
		allFail(t, "disabled", "dis", pw, k1, k2)
		if code, _, raw := g.selfCreate("dis", pw, `{"name":"c"}`); code != 401 {
			t.Errorf("self-service of a disabled principal: %d %s, want 401", code, raw)
		}
		// Enabling restores the password, not the keys.
		if code := g.adminDo("PATCH", "/v1/principals/dis", `{"disabled":false}`, nil); code != 200 {
			t.Fatalf("PATCH enabled: %d, want 200", code)
		}
		if got := getStatus(t, api, withBasic("dis", pw)); got != 200 {
			t.Errorf("password after enable: %d, want 200", got)
		}
		if got := getStatus(t, api, withBasic(k1.Key, "")); got != 401 {
			t.Errorf("key after enable: %d, want 401 (revoked at disable)", got)
		}
	})

	t.Run("delete", func(t *testing.T) {
		pw := g.e2ePassword()
		g.newPrincipal("del", pw)
		k1, k2 := g.newKey("del", `{"name":"a"}`), g.newKey("del", `{"name":"b"}`)
		useAll(t, "del", pw, k1, k2)
		if code := g.adminDo("DELETE", "/v1/principals/del", "", nil); code != 204 {
			t.Fatalf("DELETE principal: %d, want 204", code)
		}
		allFail(t, "deleted", "del", pw, k1, k2)
		if code := g.adminDo("POST", "/v1/principals", fmt.Sprintf(`{"id":"del","password":%q}`, pw), nil); code != 409 {
			t.Errorf("re-create a deleted principal's id: %d, want 409", code)
		}
		if got := getStatus(t, api, withBasic("del", pw)); got != 401 {
			t.Errorf("password after the refused re-create: %d, want 401", got)
		}
	})
}

// e2eLegacyKey returns a random 40-character [A-Za-z0-9] key without the kg_ prefix.
func e2eLegacyKey(t *testing.T) string {
	t.Helper()
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 40)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	if b[0] == 'k' { // never kg_ by chance
		b[0] = 'K'
	}
	return string(b)
}

// runCLI runs the binary with args and the gateway's configuration file and returns
// stdout, stderr and the exit code. The output must hold none of secrets.
func (g *gateway) runCLI(secrets []string, args ...string) (string, string, int) {
	g.t.Helper()
	cmd := exec.Command(binary, append(args, "--config", g.configPath)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		g.t.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
	out := stdout.String() + stderr.String()
	for _, s := range append(secrets, g.secrets...) {
		if strings.Contains(out, s) {
			g.t.Errorf("keygate %s printed a secret (%.6s...)", strings.Join(args, " "), s)
		}
	}
	return stdout.String(), stderr.String(), code
}

// TestE2EImportLegacy imports 10,000 legacy keys with the CLI into the store of a running
// gateway that accepts legacy keys.
func TestE2EImportLegacy(t *testing.T) {
	t.Parallel()
	up := newRecordingUpstream(t, nil)
	db := filepath.Join(t.TempDir(), "kg.db")
	g := startGatewayConfig(t, fmt.Sprintf(`keys:
  secret: %q
  accept_legacy: true
store:
  sqlite: {path: %q}
  usage_flush_interval: 200ms
routes:
%s`, e2eSecret, db, routeYAML("api", "/api/", up.url, "")))
	pw := g.e2ePassword()
	g.newPrincipal("client", pw)

	const n = 10000
	keys := make([]string, n)
	var b strings.Builder
	for i := range keys {
		keys[i] = e2eLegacyKey(t)
		b.WriteString(keys[i] + "\n")
	}
	g.secrets = append(g.secrets, keys...)
	file := filepath.Join(t.TempDir(), "legacy.txt")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	stdout, stderr, code := g.runCLI(keys, "keys", "import", "--principal", "client", "--file", file)
	if code != 0 {
		t.Fatalf("keys import: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, fmt.Sprintf("imported %d keys", n)) {
		t.Errorf("keys import printed %q, want it to say %d keys were imported", stdout, n)
	}
	stdout, stderr, code = g.runCLI(keys, "keys", "import", "--principal", "client", "--file", file)
	if code != 0 || !strings.Contains(stdout, "imported 0 keys") || !strings.Contains(stdout, fmt.Sprintf("%d already present", n)) {
		t.Errorf("re-run: exit %d, stdout %q, stderr %q; want exit 0 and 0 imported, %d already present", code, stdout, stderr, n)
	}

	// A sample authenticates on the running gateway, as the Basic username and in X-API-Key.
	for _, i := range []int{0, n / 2, n - 1} {
		for name, set := range map[string]func(*http.Request){
			"-u KEY:": withBasic(keys[i], ""), "x-api-key": withKeyHeader(keys[i]),
		} {
			res, body := call(t, "GET", g.base+"/api/x", set)
			if res.StatusCode != 200 {
				t.Errorf("legacy key of line %d with %s: %d %s, want 200", i+1, name, res.StatusCode, body)
				continue
			}
			r := up.last(t)
			if r.Header.Get("X-Auth-Principal") != "client" || r.Header.Get("X-Auth-Method") != "key" || r.Header.Get("X-Auth-Key-Id") == "" {
				t.Errorf("legacy key of line %d with %s: upstream saw principal %q, method %q, key id %q; want client, key and an id",
					i+1, name, r.Header.Get("X-Auth-Principal"), r.Header.Get("X-Auth-Method"), r.Header.Get("X-Auth-Key-Id"))
			}
		}
	}
	// With legacy keys on, the principal's password still works, as a password.
	if res, body := call(t, "GET", g.base+"/api/x", withBasic("client", pw)); res.StatusCode != 200 {
		t.Errorf("-u client:PASSWORD with accept_legacy: %d %s, want 200", res.StatusCode, body)
	} else if m := up.last(t).Header.Get("X-Auth-Method"); m != "basic" {
		t.Errorf("-u client:PASSWORD with accept_legacy: upstream X-Auth-Method = %q, want basic", m)
	}
	stranger := e2eLegacyKey(t)
	g.secrets = append(g.secrets, stranger)
	if got := getStatus(t, g.base+"/api/x", withKeyHeader(stranger)); got != 401 {
		t.Errorf("a legacy key never imported: %d, want 401", got)
	}

	t.Run("a bad line imports nothing", func(t *testing.T) {
		good := []string{e2eLegacyKey(t), e2eLegacyKey(t)}
		g.secrets = append(g.secrets, good...)
		bad := filepath.Join(t.TempDir(), "bad.txt")
		content := good[0] + "\n" + good[1] + "\nhas a space\n"
		if err := os.WriteFile(bad, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		stdout, stderr, code := g.runCLI(good, "keys", "import", "--principal", "client", "--file", bad)
		if code == 0 || !strings.Contains(stderr, bad+":3:") || !strings.Contains(stderr, "nothing imported") {
			t.Errorf("bad line 3: exit %d, stdout %q, stderr %q; want an error naming %s:3 and nothing imported", code, stdout, stderr, bad)
		}

		csvGood := e2eLegacyKey(t)
		g.secrets = append(g.secrets, csvGood)
		csvFile := filepath.Join(t.TempDir(), "bad.csv")
		csv := "principal,name,key\nclient,ok," + csvGood + "\nclient,missing-key-column\n"
		if err := os.WriteFile(csvFile, []byte(csv), 0o600); err != nil {
			t.Fatal(err)
		}
		stdout, stderr, code = g.runCLI([]string{csvGood}, "keys", "import", "--csv", csvFile)
		if code == 0 || !strings.Contains(stderr, csvFile+":3:") || !strings.Contains(stderr, "nothing imported") {
			t.Errorf("bad CSV line 3: exit %d, stdout %q, stderr %q; want an error naming %s:3 and nothing imported", code, stdout, stderr, csvFile)
		}

		for _, k := range append(good, csvGood) {
			if got := getStatus(t, g.base+"/api/x", withKeyHeader(k)); got != 401 {
				t.Errorf("a good key of a refused file: %d, want 401 (not imported)", got)
			}
		}
	})
}

// startGatewayDB starts keygate on the SQLite file db with the keys section keys (which
// sets the secrets) and routes.
func startGatewayDB(t *testing.T, db, keys string, routes ...string) *gateway {
	t.Helper()
	g := startGatewayConfig(t, fmt.Sprintf("%sstore:\n  sqlite: {path: %q}\n  usage_flush_interval: 200ms\nroutes:\n%s",
		keys, db, strings.Join(routes, "")))
	g.secrets = append(g.secrets, e2eSecret, e2eSecret2)
	return g
}

// TestE2ERotateSecret rotates keys.secret: a key made under the old secret works while it
// is a previous secret, is re-hashed as it is used, and then works without it.
func TestE2ERotateSecret(t *testing.T) {
	t.Parallel()
	up := newRecordingUpstream(t, nil)
	route := routeYAML("api", "/api/", up.url, "")
	db := filepath.Join(t.TempDir(), "kg.db")
	onlyS1 := fmt.Sprintf("keys:\n  secret: %q\n", e2eSecret)
	onlyS2 := fmt.Sprintf("keys:\n  secret: %q\n", e2eSecret2)
	rotated := fmt.Sprintf("keys:\n  secret: %q\n  previous_secrets: [%q]\n", e2eSecret2, e2eSecret)

	a := startGatewayDB(t, db, onlyS1, route)
	k := a.newKey("acme", `{"name":"laptop"}`)
	if got := getStatus(t, a.base+"/api/x", withBasic(k.Key, "")); got != 200 {
		t.Fatalf("gateway A (secret S1): %d, want 200", got)
	}
	a.stop()

	// Without the old secret the key is unknown: the rotation needs previous_secrets.
	c0 := startGatewayDB(t, db, onlyS2, route)
	c0.secrets = append(c0.secrets, k.Key)
	if got := getStatus(t, c0.base+"/api/x", withBasic(k.Key, "")); got != 401 {
		t.Fatalf("S2 only, before any rehash: %d, want 401", got)
	}
	c0.stop()

	b := startGatewayDB(t, db, rotated, route)
	b.secrets = append(b.secrets, k.Key)
	misses := func() float64 {
		v, _ := strconv.ParseFloat(b.metric(`keygate_keystore_cache_total{result="miss"}`), 64)
		return v
	}
	before := misses()
	for i := range 2 {
		if got := getStatus(t, b.base+"/api/x", withBasic(k.Key, "")); got != 200 {
			t.Fatalf("gateway B (S2, previous S1), request %d: %d, want 200", i+1, got)
		}
	}
	// The first use misses the cache under S2 and S1 and queues the rehash; the rehash,
	// written in the background, evicts the key's cache entries, so that a later use
	// misses a third time. Wait for that (bounded: C below is the check), using the key.
	deadline := time.Now().Add(3 * time.Second)
	for misses()-before < 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		if got := getStatus(t, b.base+"/api/x", withBasic(k.Key, "")); got != 200 {
			t.Fatalf("gateway B while re-hashing: %d, want 200", got)
		}
	}
	b.stop()

	c := startGatewayDB(t, db, onlyS2, route)
	c.secrets = append(c.secrets, k.Key)
	for i := range 2 {
		if got := getStatus(t, c.base+"/api/x", withBasic(k.Key, "")); got != 200 {
			t.Fatalf("gateway C (S2 only) after B's rehash, request %d: %d, want 200", i+1, got)
		}
	}
	r := up.last(t)
	if r.Header.Get("X-Auth-Key-Id") != k.ID || r.Header.Get("X-Auth-Principal") != "acme" {
		t.Errorf("after rotation the upstream saw key %q of %q, want %s of acme",
			r.Header.Get("X-Auth-Key-Id"), r.Header.Get("X-Auth-Principal"), k.ID)
	}
}

// TestE2EBcryptImportRehashed: a principal imported with an existing system's bcrypt hash
// logs in with its password; after the first login the hash is replaced by argon2id in the
// background (the audit log shows the rehash), and the password keeps working.
func TestE2EBcryptImportRehashed(t *testing.T) {
	t.Parallel()
	up := newRecordingUpstream(t, nil)
	g := startGateway(t, "", routeYAML("api", "/api/", up.url, ""))
	pw := g.e2ePassword()
	bc, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	g.secrets = append(g.secrets, string(bc))
	body := fmt.Sprintf(`{"id":"old-client","password_hash":%q}`, bc)
	if code := g.adminDo("POST", "/v1/principals", body, nil); code != 201 {
		t.Fatalf("create with password_hash: %d, want 201", code)
	}
	if res, _ := call(t, "GET", g.base+"/api/x", withBasic("old-client", pw)); res.StatusCode != 200 {
		t.Fatalf("login with the imported bcrypt hash: %d, want 200", res.StatusCode)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var audit struct {
			Items []struct{ Actor, Action string } `json:"items"`
		}
		g.adminDo("GET", "/v1/audit?principal=old-client", "", &audit)
		rehashed := false
		for _, ev := range audit.Items {
			rehashed = rehashed || ev.Actor == "keygate:rehash" && ev.Action == "principal.update"
		}
		if rehashed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no rehash in the audit log after the first login: %+v", audit.Items)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if res, _ := call(t, "GET", g.base+"/api/x", withBasic("old-client", pw)); res.StatusCode != 200 {
		t.Errorf("login after the rehash: %d, want 200", res.StatusCode)
	}
	if res, _ := call(t, "GET", g.base+"/api/x", withBasic("old-client", pw+"x")); res.StatusCode != 401 {
		t.Errorf("wrong password after the rehash: %d, want 401", res.StatusCode)
	}
}
