package admin

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/keygate/keygate/keystore"
)

func TestUpdateKey(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	e := newEnv(t, func(o *Options) {
		o.Keys.MaxTTL = 30 * 24 * time.Hour
		o.Now = func() time.Time { return now }
	})
	e.createPrincipal("acme", "read", "write")
	id := e.createKey("acme", map[string]any{"name": "old", "scopes": []string{"read"}, "ttl": "1h"})["id"].(string)

	k := e.must(e.do("PATCH", "/v1/keys/"+id, map[string]any{
		"name": "new", "scopes": []string{"write"}, "ttl": "24h",
		"rate_limit": []string{"10-S", "100-M"}, "metadata": map[string]string{"team": "ops"},
	}), http.StatusOK)
	want := map[string]string{
		"id": id, "name": "new", "scopes": "[write]", "rate_limit": "[10-S 100-M]",
		"metadata": "map[team:ops]", "expires_at": now.Add(24 * time.Hour).Format(time.RFC3339),
		"revoked_at": "<nil>", "principal_id": "acme",
	}
	for f, w := range want {
		if got := fmt.Sprint(k[f]); got != w {
			t.Errorf("PATCH response %s = %s, want %s", f, got, w)
		}
	}
	if k["key"] != nil {
		t.Errorf("PATCH response holds a key: %v", k)
	}
	got := e.must(e.do("GET", "/v1/keys/"+id, nil), http.StatusOK)
	for f, w := range want {
		if g := fmt.Sprint(got[f]); g != w {
			t.Errorf("GET after PATCH: %s = %s, want %s", f, g, w)
		}
	}
	if ev := e.evictions(); len(ev) != 1 || ev[0].PrincipalID != "acme" || ev[0].KeyID != id {
		t.Errorf("evictions after PATCH = %+v, want one for key %s of acme", ev, id)
	}

	// Fields left out stay; null rate_limit removes it; expires_at sets an absolute time.
	at := now.Add(48 * time.Hour).Format(time.RFC3339)
	k = e.must(e.do("PATCH", "/v1/keys/"+id, `{"rate_limit": null, "expires_at": "`+at+`"}`), http.StatusOK)
	if k["name"] != "new" || k["rate_limit"] != nil || k["expires_at"] != at || fmt.Sprint(k["scopes"]) != "[write]" {
		t.Errorf("second PATCH = %v, want name new, rate_limit null, expires_at %s", k, at)
	}

	for _, tc := range []struct {
		name, body string
		status     int
		code, msg  string
	}{
		{"ttl above max", `{"ttl":"721h"}`, 422, "unprocessable", "ttl: "},
		{"expires_at above max", `{"expires_at":"2999-01-01T00:00:00Z"}`, 422, "unprocessable", "expires_at: "},
		{"no expiry above max", `{"expires_at":null}`, 422, "unprocessable", "expires_at: a key without expiry"},
		{"scope outside principal", `{"scopes":["read","admin"]}`, 422, "unprocessable", `scopes[1]: scope "admin" is not held`},
		{"ttl and expires_at", `{"ttl":"1h","expires_at":null}`, 400, "bad_request", "not both"},
		{"expires_at past", `{"expires_at":"2001-01-01T00:00:00Z"}`, 400, "bad_request", "expires_at: must be in the future"},
		{"expires_at not a time", `{"expires_at":"tomorrow"}`, 400, "bad_request", "expires_at: must be an RFC 3339 time"},
		{"expires_at of wrong type", `{"expires_at":5}`, 400, "bad_request", "expires_at: must be a string"},
		{"empty name", `{"name":""}`, 400, "bad_request", "name: required"},
		{"LF in metadata", `{"metadata":{"k":"a\nb"}}`, 400, "bad_request", "metadata.k: "},
		{"bad rate", `{"rate_limit":"0-M"}`, 400, "bad_request", "rate_limit: invalid rate"},
		{"unknown field", `{"nmae":"x"}`, 400, "bad_request", `unknown field "nmae"`},
		{"principal_id is not changeable", `{"principal_id":"other"}`, 400, "bad_request", `unknown field "principal_id"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.wantError(e.do("PATCH", "/v1/keys/"+id, tc.body), tc.status, tc.code, tc.msg)
		})
	}
	if ev := e.evictions(); len(ev) != 2 {
		t.Errorf("evictions after refused PATCHes = %d, want 2 (refusals evict nothing)", len(ev))
	}
	if k := e.must(e.do("GET", "/v1/keys/"+id, nil), http.StatusOK); k["expires_at"] != at || k["name"] != "new" {
		t.Errorf("a refused PATCH changed the key: %v", k)
	}

	e.wantError(e.do("PATCH", "/v1/keys/0190d7a4-8c3e-7b9a-9f00-0123456789ab", `{"name":"x"}`), 404, "not_found", "key not found")
	e.must(e.do("DELETE", "/v1/keys/"+id, nil), http.StatusOK)
	e.wantError(e.do("PATCH", "/v1/keys/"+id, `{"name":"x"}`), 404, "not_found", "key not found")
	if k := e.must(e.do("GET", "/v1/keys/"+id, nil), http.StatusOK); k["name"] != "new" {
		t.Errorf("PATCH of a revoked key changed it: %v", k)
	}
}

func TestUpdateKeyRemovesExpiry(t *testing.T) {
	e := newEnv(t, nil) // no keys.max_ttl
	e.createPrincipal("acme")
	id := e.createKey("acme", map[string]any{"name": "k", "ttl": "1h"})["id"].(string)
	k := e.must(e.do("PATCH", "/v1/keys/"+id, `{"expires_at": null}`), http.StatusOK)
	if k["expires_at"] != nil {
		t.Errorf("expires_at after null = %v, want null", k["expires_at"])
	}
	k = e.must(e.do("PATCH", "/v1/keys/"+id, `{}`), http.StatusOK)
	if k["expires_at"] != nil || k["name"] != "k" {
		t.Errorf("empty PATCH changed the key: %v", k)
	}
	stored, err := e.store.GetKey(t.Context(), id)
	if err != nil || stored.ExpiresAt != nil {
		t.Errorf("stored key = %+v, %v; want no expiry", stored, err)
	}
	if ev := e.evictions(); len(ev) != 2 || ev[1] != (keystore.Change{PrincipalID: "acme", KeyID: id, At: ev[1].At}) {
		t.Errorf("evictions = %+v, want two for key %s", ev, id)
	}
}
