package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportLevels keeps the package levels of STYLE.md: a package imports only from
// lower levels, backends are reached only from cmd/keygate, and keystore never uses
// net/http directly.
func TestImportLevels(t *testing.T) {
	const mod = "github.com/keygate/keygate/"
	allowed := map[string][]string{
		"config":             {},
		"keystore":           {"config"},
		"keystore/sqlite":    {"keystore", "config"},
		"keystore/postgres":  {"keystore", "config"},
		"keystore/storetest": {"keystore", "config"},
		"auth":               {"keystore", "config"},
		"ratelimit":          {"auth", "config"},
		"proxy":              {"auth", "ratelimit", "config"},
		"admin":              {"keystore", "auth", "config"},
		"internal/testenv":   {},
		"cmd/keygate":        nil, // everything
	}
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(f[0], mod)
		ok, known := allowed[pkg]
		if !known {
			t.Errorf("package %s is not in the layout of SPEC §1: add it to this test and STYLE.md's levels", pkg)
			continue
		}
		for _, imp := range f[1:] {
			if pkg == "keystore" && imp == "net/http" {
				t.Errorf("keystore imports net/http: it must know nothing of HTTP")
			}
			dep, ours := strings.CutPrefix(imp, mod)
			if !ours || ok == nil {
				continue
			}
			if !contains(ok, dep) {
				t.Errorf("%s imports %s: not allowed by the package levels", pkg, dep)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
