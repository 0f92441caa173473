package proxy

import (
	"net/http/httptest"
	"testing"
)

func TestRouteMatch(t *testing.T) {
	table := routeTable{
		{name: "api", prefix: "/api/"},
		{name: "v2", prefix: "/api/v2/"},
		{name: "v2-host", prefix: "/api/v2/", hosts: []string{"example.com"}},
		{name: "posts", prefix: "/posts/", methods: []string{"POST"}},
		{name: "root", prefix: "/"},
	}
	sortRoutes(table)
	for _, tc := range []struct {
		name, method, host, path, want string
	}{
		{"longest prefix", "GET", "x", "/api/v2/items", "v2"},
		{"shorter prefix", "GET", "x", "/api/v1/items", "api"},
		{"host wins at equal prefix", "GET", "EXAMPLE.com:8080", "/api/v2/items", "v2-host"},
		{"method matches", "POST", "x", "/posts/1", "posts"},
		{"method does not match", "GET", "x", "/posts/1", "root"},
		{"fallback", "GET", "x", "/other", "root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.path, nil)
			r.Host = tc.host
			got := table.match(r)
			if got == nil || got.name != tc.want {
				t.Errorf("match(%s %s %s) = %v, want %s", tc.method, tc.host, tc.path, got, tc.want)
			}
		})
	}
	if got := (routeTable{{name: "api", prefix: "/api/"}}).match(httptest.NewRequest("GET", "/x", nil)); got != nil {
		t.Errorf("match(/x) = %v, want nil", got.name)
	}
}

func TestRemoveQueryParam(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"api_key=1", ""},
		{"a=1&api_key=2&b=3", "a=1&b=3"},
		{"a=1;api_key=2;b=3", "a=1;b=3"},
		{"api_key=1&a=1", "a=1"},
		{"xapi_key=1&api_keyx=2", "xapi_key=1&api_keyx=2"},
	} {
		if got := removeQueryParam(tc.in, "api_key"); got != tc.want {
			t.Errorf("removeQueryParam(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
