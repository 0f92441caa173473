package proxy

import "testing"

func TestPathAllowed(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		want       bool
	}{
		{"plain", "/api/items", true},
		{"root", "/", true},
		{"dots inside a name", "/api/v1.2/a..b/.well-known", true},
		{"trailing slash", "/api/items/", true},
		{"encoded letter", "/api/%41bc", true},
		{"dot segment", "/api/./x", false},
		{"dot dot segment", "/api/../admin", false},
		{"trailing dot dot", "/api/..", false},
		{"encoded dot dot", "/api/%2e%2e/admin", false},
		{"upper encoded dot dot", "/api/%2E%2E/admin", false},
		{"mixed encoded dot dot", "/api/.%2e/admin", false},
		{"encoded single dot", "/api/%2e/x", false},
		{"tomcat dot dot params", "/api/..;jsessionid=1/admin", false},
		{"tomcat bare", "/api/..;/admin", false},
		{"encoded slash", "/api/a%2fb", false},
		{"upper encoded slash", "/api/a%2Fb", false},
		{"backslash", `/api/a\b`, false},
		{"encoded backslash", "/api/a%5cb", false},
		{"nul", "/api/a\x00b", false},
		{"encoded nul", "/api/a%00b", false},
		{"three dots", "/api/.../x", true},
		{"bad escape", "/api/%zz", true},
		{"truncated escape", "/api/%2", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := pathAllowed(tc.path); got != tc.want {
				t.Errorf("pathAllowed(%q) = %v, want %v", tc.path, got, tc.want)
			}
		})
	}
}

func FuzzPathAllowed(f *testing.F) {
	for _, s := range []string{"/api/items", "/api/%2e%2e/x", "/a/..;/b", "/a%2fb", "/%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		ok := pathAllowed(p)
		// Whatever is allowed never holds a raw dot-dot segment or a backslash.
		if ok && (p == ".." || contains(p, "/../") || contains(p, `\`)) {
			t.Errorf("pathAllowed(%q) = true", p)
		}
	})
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
