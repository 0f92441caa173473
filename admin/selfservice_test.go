package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/keystore"
)

const ssPath = "/keygate/v1/keys"

// selfEnv is the self-service handler on the store of an admin env.
type selfEnv struct {
	*env
	h http.Handler
}

func newSelfEnv(t *testing.T, edit func(*SelfServiceOptions)) *selfEnv {
	t.Helper()
	e := newEnv(t, nil)
	o := SelfServiceOptions{
		Store:   e.store,
		Keys:    e.api.keys,
		Hasher:  e.hasher,
		Path:    ssPath,
		Evicted: e.api.evicted,
		Log:     e.api.log,
	}
	if edit != nil {
		edit(&o)
	}
	return &selfEnv{env: e, h: SelfService(o)}
}

// basic is the identity of a principal authenticated with id:password.
func (s *selfEnv) basic(id string) *auth.Identity {
	s.t.Helper()
	p, err := s.store.GetPrincipal(context.Background(), id)
	if err != nil {
		s.t.Fatalf("GetPrincipal(%s): %v", id, err)
	}
	return &auth.Identity{Method: auth.MethodBasic, Entry: &keystore.Entry{Principal: p}}
}

// self sends a request to the self-service handler as id (nil: no identity).
func (s *selfEnv) self(id *auth.Identity, method, path, body string) resp {
	s.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if id != nil {
		req = req.WithContext(auth.NewContext(req.Context(), id))
	}
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, req)
	r := resp{status: rec.Code, header: rec.Header(), body: rec.Body.String()}
	s.bodies = append(s.bodies, r.body)
	return r
}

func itemIDs(m map[string]any) []string {
	var ids []string
	for _, it := range m["items"].([]any) {
		ids = append(ids, it.(map[string]any)["id"].(string))
	}
	return ids
}

func TestSelfService(t *testing.T) {
	s := newSelfEnv(t, nil)
	s.createPrincipal("acme", "read", "write")
	s.createPrincipal("globex", "read")
	acme, globex := s.basic("acme"), s.basic("globex")
	theirs := s.createKey("globex", nil)["id"].(string)

	r := s.self(acme, "POST", ssPath, `{"name":"laptop","scopes":["read"],"ttl":"24h","metadata":{"host":"a"}}`)
	k := s.must(r, http.StatusCreated)
	plain, _ := k["key"].(string)
	if err := (keystore.Format{Prefix: "kg_"}).Check(plain); err != nil {
		t.Fatalf("created key %q: %v", plain, err)
	}
	if k["principal_id"] != "acme" || k["name"] != "laptop" || k["expires_at"] == nil || k["prefix"] != plain[:11] {
		t.Errorf("created = %s", r.body)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	mine := k["id"].(string)

	first := len(s.bodies)
	l := s.must(s.self(acme, "GET", ssPath, ""), http.StatusOK)
	if got := itemIDs(l); !slices.Equal(got, []string{mine}) || l["next_cursor"] != nil {
		t.Errorf("acme's list = %v, want only %s", l, mine)
	}
	item := l["items"].([]any)[0].(map[string]any)
	for _, f := range []string{"id", "name", "prefix", "scopes", "created_at", "expires_at", "last_used_at", "usage_count"} {
		if _, ok := item[f]; !ok {
			t.Errorf("listed key has no %s: %v", f, item)
		}
	}
	if _, ok := item["key"]; ok {
		t.Errorf("listed key holds the plaintext field: %v", item)
	}
	if got := itemIDs(s.must(s.self(globex, "GET", ssPath, ""), http.StatusOK)); !slices.Equal(got, []string{theirs}) {
		t.Errorf("globex's list = %v, want only %s", got, theirs)
	}

	// Another principal's key is 404 and stays active.
	s.wantError(s.self(acme, "DELETE", ssPath+"/"+theirs, ""), 404, "not_found", "key not found")
	if k := s.must(s.do("GET", "/v1/keys/"+theirs, nil), http.StatusOK); k["revoked_at"] != nil {
		t.Errorf("globex's key was revoked by acme: %v", k)
	}
	s.wantError(s.self(acme, "DELETE", ssPath+"/0190d7a4-8c3e-7b9a-9f00-0123456789ab", ""), 404, "not_found", "key not found")
	s.wantError(s.self(acme, "DELETE", ssPath+"/not-a-uuid", ""), 400, "bad_request", "key_id: must be a UUID")

	k = s.must(s.self(acme, "DELETE", ssPath+"/"+mine, ""), http.StatusOK)
	if k["revoked_at"] == nil || k["id"] != mine {
		t.Errorf("revoke = %v, want the record with revoked_at", k)
	}
	if ev := s.evictions(); len(ev) != 1 || ev[0].KeyID != mine || ev[0].PrincipalID != "acme" {
		t.Errorf("evictions after revoke = %+v, want one for key %s", ev, mine)
	}
	s.wantError(s.self(acme, "DELETE", ssPath+"/"+mine, ""), 404, "not_found", "key not found")
	if got := itemIDs(s.must(s.self(acme, "GET", ssPath, ""), http.StatusOK)); len(got) != 0 {
		t.Errorf("list after revoke = %v, want none", got)
	}
	for i, b := range s.bodies[first:] {
		if strings.Contains(b, plain) {
			t.Errorf("response %d after create holds the key: %s", i, b)
		}
	}

	// Self-service writes are audited as the principal.
	items, _ := s.auditItems("?principal=acme")
	var got []string
	for _, it := range items {
		got = append(got, it["actor"].(string)+" "+it["action"].(string))
	}
	if want := []string{"self:acme key.revoke", "self:acme key.create", "admin:ops principal.create"}; !slices.Equal(got, want) {
		t.Errorf("audit of acme = %v, want %v", got, want)
	}
	if logs := s.logBuf.String(); !strings.Contains(logs, `"actor":"self:acme"`) || strings.Contains(logs, plain) {
		t.Errorf("log = %s, want writes by self:acme and no key", logs)
	}
}

func TestSelfServiceOnlyPasswords(t *testing.T) {
	s := newSelfEnv(t, nil)
	s.createPrincipal("acme")
	kid := s.createKey("acme", nil)["id"].(string)
	p, _ := s.store.GetPrincipal(context.Background(), "acme")
	k, _ := s.store.GetKey(context.Background(), kid)
	byKey := &auth.Identity{Method: auth.MethodKey, Entry: &keystore.Entry{Principal: p, Key: k}}
	for _, tc := range []struct{ method, path, body string }{
		{"POST", ssPath, `{"name":"minted by a key"}`},
		{"GET", ssPath, ""},
		{"DELETE", ssPath + "/" + kid, ""},
	} {
		t.Run(tc.method, func(t *testing.T) {
			s.wantError(s.self(byKey, tc.method, tc.path, tc.body), http.StatusForbidden, "forbidden", "id:password")
			r := s.self(nil, tc.method, tc.path, tc.body)
			s.wantError(r, http.StatusUnauthorized, "unauthorized", "")
			if got := r.header.Get("WWW-Authenticate"); got != `Basic realm="keygate"` {
				t.Errorf("WWW-Authenticate = %q, want Basic realm=\"keygate\"", got)
			}
			s.wantError(s.self(&auth.Identity{}, tc.method, tc.path, tc.body), http.StatusUnauthorized, "unauthorized", "")
		})
	}
	if l := s.must(s.do("GET", "/v1/principals/acme/keys", nil), http.StatusOK); len(itemIDs(l)) != 1 {
		t.Errorf("keys after refused calls = %v, want the one key", l)
	}
}

func TestSelfServiceErrors(t *testing.T) {
	s := newSelfEnv(t, func(o *SelfServiceOptions) {
		o.Keys.MaxTTL = 720 * time.Hour
		o.Path = ssPath + "/" // a trailing slash is dropped
	})
	s.createPrincipal("acme", "read")
	acme := s.basic("acme")
	for _, tc := range []struct {
		name, body string
		status     int
		code, msg  string
	}{
		{"rate_limit", `{"name":"k","rate_limit":"1000-S"}`, 400, "bad_request", "rate_limit: cannot be set through self-service"},
		{"rate_limit null", `{"name":"k","rate_limit":null}`, 400, "bad_request", "rate_limit: "},
		{"no name", `{}`, 400, "bad_request", "name: required"},
		{"unknown field", `{"name":"k","principal_id":"globex"}`, 400, "bad_request", `unknown field "principal_id"`},
		{"scope outside principal", `{"name":"k","scopes":["admin"]}`, 422, "unprocessable", `scopes[0]: scope "admin" is not held`},
		{"ttl above max", `{"name":"k","ttl":"721h"}`, 422, "unprocessable", "ttl: "},
		{"bad ttl", `{"name":"k","ttl":"soon"}`, 400, "bad_request", "ttl: "},
		{"not JSON", `name=k`, 400, "bad_request", "request body"},
		{"too large", `{"name":"` + strings.Repeat("a", 1<<20) + `"}`, 413, "payload_too_large", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.wantError(s.self(acme, "POST", ssPath, tc.body), tc.status, tc.code, tc.msg)
		})
	}

	for i := range 10 {
		s.must(s.self(acme, "POST", ssPath, `{"name":"k`+string(rune('0'+i))+`"}`), http.StatusCreated)
	}
	s.wantError(s.self(acme, "POST", ssPath, `{"name":"eleventh"}`), http.StatusConflict, "conflict", "maximum of 10")

	// Pages of the caller's keys.
	l := s.must(s.self(acme, "GET", ssPath+"?limit=4", ""), http.StatusOK)
	next, _ := l["next_cursor"].(string)
	if len(itemIDs(l)) != 4 || next == "" {
		t.Errorf("first page = %v, want 4 keys and a cursor", l)
	}
	s.wantError(s.self(acme, "GET", ssPath+"?cursor=bm9wZQ", ""), 400, "bad_request", "cursor: ")
	s.wantError(s.self(acme, "GET", ssPath+"?limit=0", ""), 400, "bad_request", "limit: ")

	r := s.self(acme, "PUT", ssPath, `{}`)
	s.wantError(r, http.StatusMethodNotAllowed, "method_not_allowed", "")
	if allow := r.header.Get("Allow"); !strings.Contains(allow, "POST") {
		t.Errorf("Allow = %q, want POST in it", allow)
	}
	s.wantError(s.self(acme, "GET", ssPath+"/0190d7a4-8c3e-7b9a-9f00-0123456789ab", ""), http.StatusMethodNotAllowed, "method_not_allowed", "")
	s.wantError(s.self(acme, "GET", ssPath+"/a/b", ""), http.StatusNotFound, "not_found", "")
	s.wantError(s.self(acme, "GET", "/elsewhere", ""), http.StatusNotFound, "not_found", "")
}

// TestSelfServiceDefaultPath checks that an empty Path serves the default one.
func TestSelfServiceDefaultPath(t *testing.T) {
	s := newSelfEnv(t, func(o *SelfServiceOptions) { o.Path = "" })
	s.createPrincipal("acme")
	r := s.self(s.basic("acme"), "GET", DefaultSelfServicePath, "")
	var l map[string]any
	if r.status != http.StatusOK || json.Unmarshal([]byte(r.body), &l) != nil {
		t.Errorf("GET %s = %d %s, want 200 and a list", DefaultSelfServicePath, r.status, r.body)
	}
}
