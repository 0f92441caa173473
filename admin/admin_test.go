package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/keystore"
	"github.com/keygate/keygate/keystore/sqlite"
)

const (
	tokenOps = "ops-token-0123456789abcdef0123456789abcdef"
	tokenCI  = "ci-token-fedcba9876543210fedcba9876543210xx"
)

// env is one admin API on a fresh SQLite store, with what it logged and evicted.
type env struct {
	t       *testing.T
	api     *API
	store   keystore.Store
	hasher  *keystore.Hasher
	logBuf  *syncBuffer
	mu      sync.Mutex
	evicted []keystore.Change
	bodies  []string // every response body, in order
}

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

func newEnv(t *testing.T, edit func(*Options)) *env {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "kg.db"), sqlite.Options{})
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	e := &env{t: t, store: st, hasher: keystore.NewHasher("test-secret-0123456789abcdef0123456789"), logBuf: &syncBuffer{}}
	o := Options{
		Store: st,
		Tokens: []config.AdminToken{
			{Name: "ops", Token: tokenOps},
			{Name: "ci", Token: tokenCI},
		},
		Keys:   config.Keys{Prefix: "kg_", MaxPerPrincipal: 10},
		Hasher: e.hasher,
		Checks: map[string]Readiness{"store": st},
		Evicted: func(c keystore.Change) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.evicted = append(e.evicted, c)
		},
		Log: slog.New(slog.NewJSONHandler(e.logBuf, nil)),
	}
	if edit != nil {
		edit(&o)
	}
	e.api = New(o)
	return e
}

// resp is one answer of the API.
type resp struct {
	status int
	header http.Header
	body   string
}

// do sends a request with the ops token; body is JSON-encoded unless it is a string.
func (e *env) do(method, path string, body any) resp {
	e.t.Helper()
	return e.doToken(tokenOps, method, path, body)
}

func (e *env) doToken(token, method, path string, body any) resp {
	e.t.Helper()
	var rd *strings.Reader
	switch b := body.(type) {
	case nil:
		rd = strings.NewReader("")
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatalf("marshal: %v", err)
		}
		rd = strings.NewReader(string(j))
	}
	req := httptest.NewRequest(method, path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	e.api.ServeHTTP(rec, req)
	r := resp{status: rec.Code, header: rec.Header(), body: rec.Body.String()}
	e.bodies = append(e.bodies, r.body)
	return r
}

// must fails unless r has status want; it returns the decoded JSON object.
func (e *env) must(r resp, want int) map[string]any {
	e.t.Helper()
	if r.status != want {
		e.t.Fatalf("status = %d, want %d; body %s", r.status, want, r.body)
	}
	if r.body == "" {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		e.t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

// wantError fails unless r is a JSON error with this status and code whose message
// contains msg.
func (e *env) wantError(r resp, status int, code, msg string) {
	e.t.Helper()
	m := e.must(r, status)
	er, _ := m["error"].(map[string]any)
	if er == nil || er["code"] != code || !strings.Contains(fmt.Sprint(er["message"]), msg) {
		e.t.Errorf("body = %s, want code %q and a message containing %q", r.body, code, msg)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		e.t.Errorf("Content-Type = %q, want application/json", ct)
	}
}

func (e *env) createPrincipal(id string, scopes ...string) {
	e.t.Helper()
	e.must(e.do("POST", "/v1/principals", map[string]any{"id": id, "scopes": scopes}), http.StatusCreated)
}

func (e *env) createKey(principal string, body map[string]any) map[string]any {
	e.t.Helper()
	if body == nil {
		body = map[string]any{"name": "k"}
	}
	return e.must(e.do("POST", "/v1/principals/"+principal+"/keys", body), http.StatusCreated)
}

func (e *env) evictions() []keystore.Change {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.evicted)
}

func sortedKeys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func TestAuth(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct {
		name   string
		header []string // Authorization lines
		want   int
	}{
		{"missing", nil, http.StatusUnauthorized},
		{"wrong token", []string{"Bearer nope-0123456789abcdef0123456789abcdef"}, http.StatusUnauthorized},
		{"prefix of a token", []string{"Bearer " + tokenOps[:20]}, http.StatusUnauthorized},
		{"token plus a byte", []string{"Bearer " + tokenOps + "x"}, http.StatusUnauthorized},
		{"empty bearer", []string{"Bearer "}, http.StatusUnauthorized},
		{"basic scheme", []string{"Basic " + tokenOps}, http.StatusUnauthorized},
		{"no scheme", []string{tokenOps}, http.StatusUnauthorized},
		{"two lines", []string{"Bearer " + tokenOps, "Bearer " + tokenOps}, http.StatusUnauthorized},
		{"first token", []string{"Bearer " + tokenOps}, http.StatusOK},
		{"second token", []string{"Bearer " + tokenCI}, http.StatusOK},
		{"lower-case scheme", []string{"bearer " + tokenCI}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/v1/principals", nil)
			for _, h := range tc.header {
				req.Header.Add("Authorization", h)
			}
			rec := httptest.NewRecorder()
			e.api.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tc.want, rec.Body)
			}
			if tc.want == http.StatusUnauthorized {
				if got, want := rec.Header().Get("WWW-Authenticate"), `Bearer realm="keygate-admin"`; got != want {
					t.Errorf("WWW-Authenticate = %q, want %q", got, want)
				}
				if !strings.Contains(rec.Body.String(), `"code":"unauthorized"`) {
					t.Errorf("body = %s, want code unauthorized", rec.Body)
				}
			}
		})
	}

	t.Run("unknown path needs a token first", func(t *testing.T) {
		e.wantError(e.doToken("", "GET", "/v1/nothing", nil), http.StatusUnauthorized, "unauthorized", "")
		e.wantError(e.do("GET", "/v1/nothing", nil), http.StatusNotFound, "not_found", "")
		e.wantError(e.doToken("", "PUT", "/v1/principals", nil), http.StatusUnauthorized, "unauthorized", "")
	})

	t.Run("no tokens configured", func(t *testing.T) {
		e := newEnv(t, func(o *Options) { o.Tokens = []config.AdminToken{{Name: "empty", Token: ""}} })
		e.wantError(e.doToken("", "GET", "/v1/principals", nil), http.StatusUnauthorized, "unauthorized", "")
		req := httptest.NewRequest("GET", "/v1/principals", nil)
		req.Header.Set("Authorization", "Bearer")
		rec := httptest.NewRecorder()
		e.api.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("bare Bearer with an empty configured token: status %d, want 401", rec.Code)
		}
	})

	t.Run("actor is logged, token never", func(t *testing.T) {
		e.must(e.doToken(tokenCI, "POST", "/v1/principals", map[string]any{"id": "acme"}), http.StatusCreated)
		logs := e.logBuf.String()
		if !strings.Contains(logs, `"actor":"admin:ci"`) || !strings.Contains(logs, `"action":"principal.create"`) {
			t.Errorf("log = %s, want a principal.create line with actor admin:ci", logs)
		}
		for _, tok := range []string{tokenOps, tokenCI} {
			if strings.Contains(logs, tok) {
				t.Errorf("log holds an admin token: %s", logs)
			}
		}
	})
}

func TestPrincipals(t *testing.T) {
	e := newEnv(t, nil)
	r := e.do("POST", "/v1/principals", map[string]any{
		"id": "acme", "display_name": "ACME Corp", "scopes": []string{"read", "write"},
		"rate_limit": "100-M", "metadata": map[string]string{"team": "billing"},
	})
	p := e.must(r, http.StatusCreated)
	if got, want := sortedKeys(p), []string{"created_at", "disabled_at", "display_name", "has_password",
		"id", "metadata", "rate_limit", "scopes", "updated_at"}; !slices.Equal(got, want) {
		t.Errorf("principal fields = %v, want %v", got, want)
	}
	if p["id"] != "acme" || p["display_name"] != "ACME Corp" || p["rate_limit"] != "100-M" ||
		p["has_password"] != false || p["disabled_at"] != nil {
		t.Errorf("created principal = %s", r.body)
	}
	if loc := r.header.Get("Location"); loc != "/v1/principals/acme" {
		t.Errorf("Location = %q, want /v1/principals/acme", loc)
	}
	created, _ := p["created_at"].(string)
	if ts, err := time.Parse(time.RFC3339, created); err != nil || !strings.HasSuffix(created, "Z") ||
		time.Since(ts) > time.Minute {
		t.Errorf("created_at = %q, want RFC 3339 UTC of now", created)
	}

	e.wantError(e.do("POST", "/v1/principals", map[string]any{"id": "acme"}), http.StatusConflict, "conflict", "taken")

	got := e.must(e.do("GET", "/v1/principals/acme", nil), http.StatusOK)
	if got["display_name"] != "ACME Corp" || fmt.Sprint(got["scopes"]) != "[read write]" ||
		fmt.Sprint(got["metadata"]) != "map[team:billing]" {
		t.Errorf("GET principal = %v", got)
	}
	e.wantError(e.do("GET", "/v1/principals/nobody", nil), http.StatusNotFound, "not_found", "principal not found")

	// A bare principal shows [] and {} and null, not missing or null lists.
	r = e.do("POST", "/v1/principals", map[string]any{"id": "bare"})
	e.must(r, http.StatusCreated)
	if !strings.Contains(r.body, `"scopes":[]`) || !strings.Contains(r.body, `"metadata":{}`) ||
		!strings.Contains(r.body, `"rate_limit":null`) {
		t.Errorf("bare principal = %s, want scopes [], metadata {}, rate_limit null", r.body)
	}

	list := e.must(e.do("GET", "/v1/principals", nil), http.StatusOK)
	items, _ := list["items"].([]any)
	if len(items) != 2 || list["next_cursor"] != nil {
		t.Errorf("list = %v, want 2 items and next_cursor null", list)
	}

	// PATCH: changed fields only; a list of rates shows as a list.
	r = e.do("PATCH", "/v1/principals/acme", map[string]any{
		"display_name": "ACME", "rate_limit": []string{"10-S", "100-M"}, "scopes": []string{"read"},
	})
	p = e.must(r, http.StatusOK)
	if p["display_name"] != "ACME" || fmt.Sprint(p["rate_limit"]) != "[10-S 100-M]" ||
		fmt.Sprint(p["scopes"]) != "[read]" || fmt.Sprint(p["metadata"]) != "map[team:billing]" {
		t.Errorf("patched = %s", r.body)
	}
	p = e.must(e.do("PATCH", "/v1/principals/acme", `{"rate_limit": null}`), http.StatusOK)
	if p["rate_limit"] != nil || p["display_name"] != "ACME" {
		t.Errorf("rate_limit null: got %v", p)
	}
	if ev := e.evictions(); len(ev) != 2 || ev[0].PrincipalID != "acme" || ev[0].KeyID != "" {
		t.Errorf("evictions after two PATCHes = %+v, want two of principal acme", ev)
	}
	e.wantError(e.do("PATCH", "/v1/principals/nobody", map[string]any{"display_name": "x"}),
		http.StatusNotFound, "not_found", "principal not found")
	r = e.do("PATCH", "/v1/principals/acme", map[string]any{"password": "hunter2"})
	e.wantError(r, http.StatusBadRequest, "bad_request", "password: must be 8 to 1024 characters")
	if strings.Contains(r.body, "hunter2") {
		t.Errorf("error body quotes the password: %s", r.body)
	}
	e.must(e.do("PATCH", "/v1/principals/acme", `{"password": null}`), http.StatusOK)
}

func TestPrincipalValidation(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct {
		name string
		body string
		msg  string
	}{
		{"missing id", `{}`, "id: required"},
		{"bad id", `{"id":"a b"}`, "id: "},
		{"id with key prefix", `{"id":"kg_acme"}`, "id: must not start with the key prefix"},
		{"LF in display_name", `{"id":"a","display_name":"x\ny"}`, "display_name: must not contain control characters"},
		{"comma in scope", `{"id":"a","scopes":["a,b"]}`, "scopes[0]: "},
		{"space in scope", `{"id":"a","scopes":["ok","a b"]}`, "scopes[1]: "},
		{"NUL in metadata", `{"id":"a","metadata":{"k":"v\u0000"}}`, "metadata.k: "},
		{"bad rate", `{"id":"a","rate_limit":"0-M"}`, "rate_limit: invalid rate"},
		{"bad rate in list", `{"id":"a","rate_limit":["1-S","5-m"]}`, "rate_limit[1]: invalid rate"},
		{"rate of wrong type", `{"id":"a","rate_limit":5}`, "rate_limit: must be a rate string"},
		{"scopes of wrong type", `{"id":"a","scopes":"read"}`, "scopes: must be a list"},
		{"id of wrong type", `{"id":5}`, "id: must be a string"},
		{"unknown field", `{"id":"a","nmae":"x"}`, `unknown field "nmae"`},
		{"short password", `{"id":"a","password":"s3cret7"}`, "password: must be 8 to 1024 characters, got 7"},
		{"long password", `{"id":"a","password":"s3cret7` + strings.Repeat("x", 1018) + `"}`, "password: must be 8 to 1024 characters, got 1025"},
		{"NUL in password", `{"id":"a","password":"s3cret7\u0000xyz"}`, "password: must not contain NUL"},
		{"password of wrong type", `{"id":"a","password":12345678}`, "password: must be a string"},
		{"two problems", `{"id":"a b","display_name":"x\ny"}`, "; display_name"},
		{"not an object", `[1]`, "must be a JSON object"},
		{"empty body", ``, "must be a JSON object"},
		{"syntax", `{"id":`, "request body"},
		{"trailing data", `{"id":"a"} {"id":"b"}`, "unexpected data after the JSON object"},
		{"trailing garbage", `{"id":"a"}x`, "unexpected data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", "/v1/principals", tc.body)
			e.wantError(r, http.StatusBadRequest, "bad_request", tc.msg)
			if strings.Contains(r.body, "s3cret7") {
				t.Errorf("error quotes a password: %s", r.body)
			}
		})
	}
	if list := e.must(e.do("GET", "/v1/principals", nil), http.StatusOK); len(list["items"].([]any)) != 0 {
		t.Errorf("a rejected create stored something: %v", list)
	}
}

func TestBodyTooLarge(t *testing.T) {
	e := newEnv(t, nil)
	big := `{"id":"acme","display_name":"` + strings.Repeat("a", 1<<20) + `"}`
	e.wantError(e.do("POST", "/v1/principals", big), http.StatusRequestEntityTooLarge, "payload_too_large", "")
	// Just over the limit in trailing whitespace is still too large.
	e.wantError(e.do("POST", "/v1/principals", `{"id":"acme"}`+strings.Repeat(" ", 1<<20)),
		http.StatusRequestEntityTooLarge, "payload_too_large", "")
	e.createPrincipal("p")
	e.wantError(e.do("POST", "/v1/principals/p/keys", `{"name":"`+strings.Repeat("a", 2<<20)+`"}`),
		http.StatusRequestEntityTooLarge, "payload_too_large", "")
}

func TestCreateKeyShowsPlaintextOnce(t *testing.T) {
	e := newEnv(t, nil)
	e.createPrincipal("acme", "read", "write")
	r := e.do("POST", "/v1/principals/acme/keys", map[string]any{
		"name": "ci deploy", "scopes": []string{"read"}, "rate_limit": "10-S",
		"metadata": map[string]string{"ticket": "OPS-1"},
	})
	k := e.must(r, http.StatusCreated)
	plain, _ := k["key"].(string)
	if err := (keystore.Format{Prefix: "kg_"}).Check(plain); err != nil {
		t.Fatalf("key %q: %v", plain, err)
	}
	hash := e.hasher.Hash(plain).String()
	if got, want := sortedKeys(k), []string{"created_at", "expires_at", "id", "key", "last_used_at", "legacy",
		"metadata", "name", "prefix", "principal_id", "rate_limit", "revoked_at", "scopes", "usage_count"}; !slices.Equal(got, want) {
		t.Errorf("created key fields = %v, want %v", got, want)
	}
	if k["prefix"] != plain[:11] || k["principal_id"] != "acme" || k["name"] != "ci deploy" ||
		k["rate_limit"] != "10-S" || k["expires_at"] != nil || k["revoked_at"] != nil || k["legacy"] != false {
		t.Errorf("created key = %s", r.body)
	}
	if strings.Contains(r.body, hash) {
		t.Errorf("create response holds the hash")
	}
	id := k["id"].(string)
	if loc := r.header.Get("Location"); loc != "/v1/keys/"+id {
		t.Errorf("Location = %q, want /v1/keys/%s", loc, id)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}

	first := len(e.bodies)
	got := e.must(e.do("GET", "/v1/keys/"+id, nil), http.StatusOK)
	if got["name"] != "ci deploy" || got["key"] != nil || fmt.Sprint(got["scopes"]) != "[read]" {
		t.Errorf("GET key = %v", got)
	}
	list := e.must(e.do("GET", "/v1/principals/acme/keys", nil), http.StatusOK)
	if items := list["items"].([]any); len(items) != 1 {
		t.Errorf("list = %v, want 1 key", list)
	}
	e.must(e.do("GET", "/v1/principals/acme/keys?include_revoked=true", nil), http.StatusOK)
	e.must(e.do("GET", "/v1/principals/acme", nil), http.StatusOK)
	revoked := e.must(e.do("DELETE", "/v1/keys/"+id, nil), http.StatusOK)
	if revoked["revoked_at"] == nil || revoked["id"] != id {
		t.Errorf("DELETE key = %v, want the record with revoked_at", revoked)
	}
	e.must(e.do("GET", "/v1/keys/"+id, nil), http.StatusOK)
	for i, b := range e.bodies[first:] {
		if strings.Contains(b, plain) || strings.Contains(b, hash) || strings.Contains(b, `"hash"`) {
			t.Errorf("response %d after create holds the key or its hash: %s", i, b)
		}
	}
	if logs := e.logBuf.String(); strings.Contains(logs, plain) || strings.Contains(logs, hash) {
		t.Errorf("log holds the key or its hash: %s", logs)
	}
}

func TestKeyErrors(t *testing.T) {
	now := time.Now()
	e := newEnv(t, func(o *Options) {
		o.Keys.MaxPerPrincipal = 2
		o.Keys.MaxTTL = 30 * 24 * time.Hour
		o.Now = func() time.Time { return now }
	})
	e.createPrincipal("acme", "read")

	for _, tc := range []struct {
		name   string
		body   string
		status int
		code   string
		msg    string
	}{
		{"no name", `{}`, 400, "bad_request", "name: required"},
		{"CR in name", `{"name":"a\rb"}`, 400, "bad_request", "name: must not contain control characters"},
		{"name too long", `{"name":"` + strings.Repeat("n", 101) + `"}`, 400, "bad_request", "name: at most 100"},
		{"unknown field", `{"name":"k","nmae":"x"}`, 400, "bad_request", `unknown field "nmae"`},
		{"ttl and expires_at", `{"name":"k","ttl":"1h","expires_at":"2999-01-01T00:00:00Z"}`, 400, "bad_request", "not both"},
		{"bad ttl", `{"name":"k","ttl":"soon"}`, 400, "bad_request", "ttl: bad duration"},
		{"expires_at past", `{"name":"k","expires_at":"2001-01-01T00:00:00Z"}`, 400, "bad_request", "expires_at: must be in the future"},
		{"expires_at not a time", `{"name":"k","expires_at":"tomorrow"}`, 400, "bad_request", "expires_at"},
		{"ttl above max", `{"name":"k","ttl":"721h"}`, 422, "unprocessable", "ttl: "},
		{"expires_at above max", `{"name":"k","expires_at":"2999-01-01T00:00:00Z"}`, 422, "unprocessable", "expires_at: "},
		{"scope outside principal", `{"name":"k","scopes":["read","admin"]}`, 422, "unprocessable", `scopes[1]: scope "admin" is not held`},
		{"bad rate", `{"name":"k","rate_limit":"+5-M"}`, 400, "bad_request", "rate_limit: invalid rate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.wantError(e.do("POST", "/v1/principals/acme/keys", tc.body), tc.status, tc.code, tc.msg)
		})
	}
	e.wantError(e.do("POST", "/v1/principals/nobody/keys", `{"name":"k"}`), 404, "not_found", "principal not found")

	// ttl within max is stored and shown as RFC 3339 UTC.
	k := e.createKey("acme", map[string]any{"name": "short", "ttl": "720h"})
	if want := now.Add(720 * time.Hour).UTC().Format(time.RFC3339); k["expires_at"] != want {
		t.Errorf("expires_at = %v, want %s", k["expires_at"], want)
	}
	e.createKey("acme", nil)
	e.wantError(e.do("POST", "/v1/principals/acme/keys", `{"name":"third"}`), http.StatusConflict, "conflict", "maximum of 2")

	id := k["id"].(string)
	for _, method := range []string{"GET", "DELETE", "PATCH"} {
		e.wantError(e.do(method, "/v1/keys/not-a-uuid", `{}`), 400, "bad_request", "key_id: must be a UUID")
	}
	e.wantError(e.do("GET", "/v1/keys/0190d7a4-8c3e-7b9a-9f00-0123456789ab", nil), 404, "not_found", "key not found")

	e.must(e.do("DELETE", "/v1/keys/"+id, nil), http.StatusOK)
	e.wantError(e.do("DELETE", "/v1/keys/"+id, nil), 404, "not_found", "key not found")
	if ev := e.evictions(); len(ev) != 1 || ev[0] != (keystore.Change{PrincipalID: "acme", KeyID: id, At: ev[0].At}) || ev[0].At.IsZero() {
		t.Errorf("evictions = %+v, want one for key %s", ev, id)
	}
	// A revoked key frees a slot.
	e.createKey("acme", nil)

	e.wantError(e.do("GET", "/v1/principals/acme/keys?include_revoked=maybe", nil), 400, "bad_request", "include_revoked")
	e.wantError(e.do("GET", "/v1/principals/nobody/keys", nil), 404, "not_found", "principal not found")
}

func TestDefaultTTL(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	e := newEnv(t, func(o *Options) {
		o.Keys.DefaultTTL = 24 * time.Hour
		o.Now = func() time.Time { return now }
	})
	e.createPrincipal("acme")
	k := e.createKey("acme", nil)
	if k["expires_at"] != "2030-01-03T03:04:05Z" {
		t.Errorf("expires_at = %v, want 2030-01-03T03:04:05Z (default_ttl)", k["expires_at"])
	}
}

func TestDeletePrincipal(t *testing.T) {
	e := newEnv(t, nil)
	e.createPrincipal("acme")
	k1 := e.createKey("acme", nil)["id"].(string)
	k2 := e.createKey("acme", nil)["id"].(string)

	r := e.do("DELETE", "/v1/principals/acme", nil)
	if r.status != http.StatusNoContent || r.body != "" {
		t.Fatalf("DELETE principal = %d %q, want 204 and no body", r.status, r.body)
	}
	if ev := e.evictions(); len(ev) != 1 || ev[0].PrincipalID != "acme" || ev[0].KeyID != "" {
		t.Errorf("evictions = %+v, want one for principal acme", ev)
	}
	for _, id := range []string{k1, k2} {
		if k := e.must(e.do("GET", "/v1/keys/"+id, nil), http.StatusOK); k["revoked_at"] == nil {
			t.Errorf("key %s after principal delete = %v, want revoked_at set", id, k)
		}
	}
	e.wantError(e.do("GET", "/v1/principals/acme", nil), 404, "not_found", "")
	e.wantError(e.do("DELETE", "/v1/principals/acme", nil), 404, "not_found", "")
	e.wantError(e.do("GET", "/v1/principals/acme/keys", nil), 404, "not_found", "")
	e.wantError(e.do("POST", "/v1/principals/acme/keys", `{"name":"k"}`), 404, "not_found", "")
	e.wantError(e.do("POST", "/v1/principals", map[string]any{"id": "acme"}), http.StatusConflict, "conflict", "")
}

func TestDisablePrincipal(t *testing.T) {
	e := newEnv(t, nil)
	e.createPrincipal("acme")
	id := e.createKey("acme", nil)["id"].(string)

	p := e.must(e.do("PATCH", "/v1/principals/acme", map[string]any{"disabled": true}), http.StatusOK)
	if p["disabled_at"] == nil {
		t.Errorf("disabled_at = nil after disabled: true")
	}
	if ev := e.evictions(); len(ev) != 1 || ev[0].PrincipalID != "acme" {
		t.Errorf("evictions = %+v, want one for principal acme", ev)
	}
	if k := e.must(e.do("GET", "/v1/keys/"+id, nil), http.StatusOK); k["revoked_at"] == nil {
		t.Errorf("key after disable = %v, want revoked", k)
	}
	if l := e.must(e.do("GET", "/v1/principals/acme/keys", nil), http.StatusOK); len(l["items"].([]any)) != 0 {
		t.Errorf("active keys after disable = %v, want none", l)
	}
	if l := e.must(e.do("GET", "/v1/principals/acme/keys?include_revoked=true", nil), http.StatusOK); len(l["items"].([]any)) != 1 {
		t.Errorf("all keys after disable = %v, want 1", l)
	}
	e.wantError(e.do("POST", "/v1/principals/acme/keys", `{"name":"k"}`), http.StatusConflict, "conflict", "disabled")

	p = e.must(e.do("PATCH", "/v1/principals/acme", map[string]any{"disabled": false}), http.StatusOK)
	if p["disabled_at"] != nil {
		t.Errorf("disabled_at = %v after disabled: false, want null", p["disabled_at"])
	}
	e.createKey("acme", nil)
	e.wantError(e.do("PATCH", "/v1/principals/acme", `{"disabled":"yes"}`), 400, "bad_request", "disabled: must be true or false")
}

func TestPagination(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Keys.MaxPerPrincipal = 0 })
	var want []string
	for i := range 5 {
		id := fmt.Sprintf("p%d", i)
		e.createPrincipal(id)
		want = append(want, id)
	}
	var got []string
	path := "/v1/principals?limit=2"
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatalf("pagination does not end: %v", got)
		}
		l := e.must(e.do("GET", path, nil), http.StatusOK)
		items := l["items"].([]any)
		if len(items) > 2 {
			t.Fatalf("page of %d items, want at most 2", len(items))
		}
		for _, it := range items {
			got = append(got, it.(map[string]any)["id"].(string))
		}
		next, ok := l["next_cursor"].(string)
		if !ok {
			if l["next_cursor"] != nil {
				t.Fatalf("next_cursor = %v, want a string or null", l["next_cursor"])
			}
			break
		}
		path = "/v1/principals?limit=2&cursor=" + next
	}
	if !slices.Equal(got, want) {
		t.Errorf("paged ids = %v, want %v", got, want)
	}

	var keys []string
	for range 3 {
		keys = append(keys, e.createKey("p0", nil)["id"].(string))
	}
	l := e.must(e.do("GET", "/v1/principals/p0/keys?limit=2", nil), http.StatusOK)
	next, _ := l["next_cursor"].(string)
	if len(l["items"].([]any)) != 2 || next == "" {
		t.Fatalf("first key page = %v, want 2 items and a cursor", l)
	}
	l = e.must(e.do("GET", "/v1/principals/p0/keys?limit=2&cursor="+next, nil), http.StatusOK)
	if items := l["items"].([]any); len(items) != 1 || items[0].(map[string]any)["id"] != keys[2] || l["next_cursor"] != nil {
		t.Errorf("second key page = %v, want key %s and no cursor", l, keys[2])
	}

	for _, q := range []string{"0", "1001", "-1", "abc", "1.5"} {
		e.wantError(e.do("GET", "/v1/principals?limit="+q, nil), 400, "bad_request", "limit: ")
		e.wantError(e.do("GET", "/v1/principals/p0/keys?limit="+q, nil), 400, "bad_request", "limit: ")
	}
	e.must(e.do("GET", "/v1/principals?limit=1000", nil), http.StatusOK)
}

func TestMethodNotAllowed(t *testing.T) {
	e := newEnv(t, nil)
	r := e.do("PUT", "/v1/principals", nil)
	e.wantError(r, http.StatusMethodNotAllowed, "method_not_allowed", "")
	if allow := r.header.Get("Allow"); !strings.Contains(allow, "POST") || !strings.Contains(allow, "GET") {
		t.Errorf("Allow = %q, want GET and POST", allow)
	}
	e.wantError(e.do("POST", "/v1/keys/0190d7a4-8c3e-7b9a-9f00-0123456789ab", nil), http.StatusMethodNotAllowed, "method_not_allowed", "")
	e.wantError(e.doToken("", "GET", "/nothing", nil), http.StatusNotFound, "not_found", "")
}

type fakeCheck struct{ err error }

func (f fakeCheck) Ready(context.Context) error { return f.err }

func TestHealth(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "keygate_test_total", Help: "A test counter."})
	reg.MustRegister(c)
	c.Add(3)
	ready := fakeCheck{}
	e := newEnv(t, func(o *Options) {
		o.Gatherer = reg
		o.Checks["redis"] = &ready
	})

	r := e.doToken("", "GET", "/healthz", nil)
	if r.status != http.StatusOK || strings.TrimSpace(r.body) != `{"status":"ok"}` {
		t.Errorf("/healthz = %d %s, want 200 {\"status\":\"ok\"}", r.status, r.body)
	}

	r = e.doToken("", "GET", "/readyz", nil)
	if want := `{"status":"ready","dependencies":{"redis":"up","store":"up"}}`; r.status != 200 || strings.TrimSpace(r.body) != want {
		t.Errorf("/readyz = %d %s, want 200 %s", r.status, r.body, want)
	}
	ready.err = errors.New("dial tcp 127.0.0.1:6379: connection refused")
	r = e.doToken("", "GET", "/readyz", nil)
	if want := `{"status":"unavailable","dependencies":{"redis":"down","store":"up"}}`; r.status != 503 || strings.TrimSpace(r.body) != want {
		t.Errorf("/readyz with redis down = %d %s, want 503 %s", r.status, r.body, want)
	}
	if !strings.Contains(e.logBuf.String(), "connection refused") {
		t.Errorf("the failing check's error is not logged: %s", e.logBuf.String())
	}

	r = e.doToken("", "GET", "/metrics", nil)
	if r.status != 200 || !strings.Contains(r.body, "keygate_test_total 3") {
		t.Errorf("/metrics = %d %s, want 200 with keygate_test_total 3", r.status, r.body)
	}

	e = newEnv(t, nil)
	if r := e.doToken("", "GET", "/metrics", nil); r.status != http.StatusNotFound {
		t.Errorf("/metrics without a Gatherer = %d, want 404", r.status)
	}
}
