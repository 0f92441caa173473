package admin

import (
	"net/http"
	"slices"
	"testing"
)

// auditItems returns the items of one audit page and its next cursor ("" at the end).
func (e *env) auditItems(query string) ([]map[string]any, string) {
	e.t.Helper()
	l := e.must(e.do("GET", "/v1/audit"+query, nil), http.StatusOK)
	var out []map[string]any
	for _, it := range l["items"].([]any) {
		out = append(out, it.(map[string]any))
	}
	next, _ := l["next_cursor"].(string)
	return out, next
}

func TestAudit(t *testing.T) {
	e := newEnv(t, nil)
	e.must(e.doToken(tokenCI, "POST", "/v1/principals", map[string]any{"id": "acme"}), http.StatusCreated)
	id := e.createKey("acme", nil)["id"].(string)
	e.must(e.doToken(tokenCI, "DELETE", "/v1/keys/"+id, nil), http.StatusOK)
	e.createPrincipal("globex")

	type ev struct{ actor, action, principal, keyID string }
	events := func(items []map[string]any) []ev {
		var out []ev
		for _, it := range items {
			k, _ := it["key_id"].(string)
			out = append(out, ev{it["actor"].(string), it["action"].(string), it["principal_id"].(string), k})
		}
		return out
	}
	all, next := e.auditItems("")
	want := []ev{
		{"admin:ops", "principal.create", "globex", ""},
		{"admin:ci", "key.revoke", "acme", id},
		{"admin:ops", "key.create", "acme", id},
		{"admin:ci", "principal.create", "acme", ""},
	}
	if got := events(all); !slices.Equal(got, want) || next != "" {
		t.Errorf("audit = %+v (next %q), want %+v and no next cursor", got, next, want)
	}
	for _, it := range all {
		if at, _ := it["at"].(string); len(at) != len("2006-01-02T15:04:05Z") || at[len(at)-1] != 'Z' {
			t.Errorf("at = %v, want RFC 3339 UTC", it["at"])
		}
		if _, ok := it["id"].(float64); !ok {
			t.Errorf("id = %v, want a number", it["id"])
		}
		if _, ok := it["detail"]; !ok {
			t.Errorf("event %v has no detail", it)
		}
		if k, ok := it["key_id"]; !ok || (it["action"] == "principal.create" && k != nil) {
			t.Errorf("key_id of %v: want present, null for principal events", it)
		}
	}

	acme, _ := e.auditItems("?principal=acme")
	if got := events(acme); !slices.Equal(got, want[1:]) {
		t.Errorf("audit of acme = %+v, want %+v", got, want[1:])
	}
	if none, next := e.auditItems("?principal=nobody"); len(none) != 0 || next != "" {
		t.Errorf("audit of an unknown principal = %v, want none", none)
	}

	// Pages of 1 give the same events in the same order.
	var paged []map[string]any
	cursor := ""
	for range 10 {
		q := "?limit=1"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		items, next := e.auditItems(q)
		if len(items) > 1 {
			t.Fatalf("page of %d events, want at most 1", len(items))
		}
		paged = append(paged, items...)
		if cursor = next; cursor == "" {
			break
		}
	}
	if got := events(paged); !slices.Equal(got, want) {
		t.Errorf("paged audit = %+v, want %+v", got, want)
	}
	items, next := e.auditItems("?principal=acme&limit=2")
	if len(items) != 2 || next == "" {
		t.Fatalf("acme page 1 = %v (next %q), want 2 events and a cursor", items, next)
	}
	items, next = e.auditItems("?principal=acme&limit=2&cursor=" + next)
	if got := events(items); !slices.Equal(got, want[3:]) || next != "" {
		t.Errorf("acme page 2 = %+v (next %q), want %+v and no cursor", got, next, want[3:])
	}

	e.wantError(e.do("GET", "/v1/audit?limit=0", nil), 400, "bad_request", "limit: ")
	e.wantError(e.doToken("", "GET", "/v1/audit", nil), 401, "unauthorized", "")
	e.wantError(e.do("DELETE", "/v1/audit", nil), 405, "method_not_allowed", "")
}

func TestBadCursor(t *testing.T) {
	e := newEnv(t, nil)
	e.createPrincipal("acme")
	for _, path := range []string{
		"/v1/audit?cursor=not-a-cursor",
		"/v1/audit?cursor=%21%21",
		"/v1/principals?cursor=not-a-cursor!",
		"/v1/principals/acme/keys?cursor=bm9wZQ",
	} {
		t.Run(path, func(t *testing.T) {
			e.wantError(e.do("GET", path, nil), http.StatusBadRequest, "bad_request", "cursor: ")
		})
	}
}
