package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/keystore"
	"github.com/spf13/cobra"
)

const cliSecret = "cli-test-secret-0123456789abcdef01234567" // 40 bytes

// cliConfig writes a configuration into a fresh temporary directory: a sqlite store
// there, a 40-byte keys.secret, one route. extra is appended under keys:.
func cliConfig(t *testing.T, keysExtra string) string {
	t.Helper()
	dir := t.TempDir()
	yaml := fmt.Sprintf(`listen: "127.0.0.1:0"
admin:
  listen: "127.0.0.1:1"
  tokens: [{name: ops, token: "cli-test-admin-token-0123456789abcdef0123"}]
store:
  driver: sqlite
  sqlite: {path: %q}
keys:
  secret: %q
%s
routes:
  - name: api
    match: {path_prefix: /api/}
    upstream: "http://127.0.0.1:9"
`, filepath.Join(dir, "data", "keygate.db"), cliSecret, keysExtra)
	path := filepath.Join(dir, "keygate.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// cliRun runs keygate in-process with args and --config path (given last, after the
// positional arguments, as users may), and an empty stdin.
func cliRun(t *testing.T, path string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return cliRunIn(t, path, "", args...)
}

// cliRunIn is cliRun with stdin.
func cliRunIn(t *testing.T, path, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCmd()
	if path != "" {
		args = append(args, "--config", path)
	}
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errb)
	err = root.ExecuteContext(t.Context())
	return out.String(), errb.String(), err
}

// cliStore opens the store of the configuration at path, as the CLI does, for a test to
// look at what the CLI wrote. It is closed at the end of the test.
func cliStore(t *testing.T, path string) (keystore.Store, *config.Config) {
	t.Helper()
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := openCLIStore(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, cfg
}

// cliMust runs keygate and fails the test on an error.
func cliMust(t *testing.T, path string, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, err := cliRun(t, path, args...)
	if err != nil {
		t.Fatalf("keygate %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout, stderr
}

// cliFail runs keygate, wants an error containing every one of want, and returns it.
func cliFail(t *testing.T, path string, args []string, want ...string) error {
	t.Helper()
	stdout, stderr, err := cliRun(t, path, args...)
	if err == nil {
		t.Fatalf("keygate %s: no error, want one containing %q\nstdout: %s\nstderr: %s",
			strings.Join(args, " "), want, stdout, stderr)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("keygate %s: error %q, want it to contain %q", strings.Join(args, " "), err, w)
		}
	}
	return err
}

func TestCLIConfigCheck(t *testing.T) {
	t.Run("ok", func(t *testing.T) {
		path := cliConfig(t, "")
		stdout, _ := cliMust(t, path, "config", "check")
		if want := "config OK: " + path + "\n"; stdout != want {
			t.Errorf("stdout = %q, want %q", stdout, want)
		}
	})
	t.Run("three problems", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "keygate.yaml")
		yaml := `store: {driver: sqlite, sqlite: {path: ` + filepath.Join(dir, "kg.db") + `}}
admin: {tokens: [{name: ops, token: "cli-test-admin-token-0123456789abcdef0123"}]}
keys:
  secret: "short-secret-value"
  max_per_principal: 0
routes:
  - name: api
    match: {path_prefix: /api/}
    upstream: "ftp://127.0.0.1:9"
`
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		stdout, stderr, err := cliRun(t, path, "config", "check")
		var ee exitError
		if !errors.As(err, &ee) || ee != 1 {
			t.Fatalf("err = %v, want exitError(1)", err)
		}
		if stdout != "" {
			t.Errorf("stdout = %q, want nothing", stdout)
		}
		lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
		if len(lines) != 3 {
			t.Errorf("stderr has %d lines, want 3 (one per problem):\n%s", len(lines), stderr)
		}
		for _, want := range []string{"keys.secret: ", "keys.max_per_principal: ", "routes[0].upstream: "} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr does not name %q:\n%s", want, stderr)
			}
		}
		if strings.Contains(stderr, "short-secret-value") {
			t.Errorf("stderr quotes keys.secret:\n%s", stderr)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nope.yaml")
		_, stderr, err := cliRun(t, path, "config", "check")
		if err == nil || !strings.Contains(stderr, "nope.yaml") {
			t.Errorf("err = %v, stderr = %q; want an error and stderr naming the file", err, stderr)
		}
	})
}

func TestCLIVersion(t *testing.T) {
	stdout, _ := cliMust(t, "", "version")
	if !regexp.MustCompile(`^keygate \S+ go\S+ \w+/\w+\n$`).MatchString(stdout) {
		t.Errorf("version printed %q, want \"keygate <version> <go version> <os/arch>\"", stdout)
	}
}

func TestCLIMigrate(t *testing.T) {
	path := cliConfig(t, "")
	stdout, _ := cliMust(t, path, "migrate")
	if !strings.Contains(stdout, "migrated from version 0 to") {
		t.Errorf("first migrate printed %q, want it to say it migrated from version 0", stdout)
	}
	stdout, _ = cliMust(t, path, "migrate")
	if !strings.Contains(stdout, "nothing to do") {
		t.Errorf("second migrate printed %q, want it to say there is nothing to do", stdout)
	}
}

func TestCLIPrincipals(t *testing.T) {
	path := cliConfig(t, "")

	cliMust(t, path, "principals", "create", "acme", "--display-name", "ACME Corp",
		"--scopes", "read,write", "--rate-limit", "10-S", "--rate-limit", "1000-H")
	// Flags before the argument, rates comma-separated.
	cliMust(t, path, "principals", "create", "--scopes", "read", "--rate-limit", "5-S,100-M", "bob")

	stdout, _ := cliMust(t, path, "principals", "list")
	if !strings.Contains(stdout, "acme") || !strings.Contains(stdout, "bob") || !strings.Contains(stdout, "ACME Corp") {
		t.Errorf("principals list:\n%s\nwant acme, bob and ACME Corp", stdout)
	}

	stdout, _ = cliMust(t, path, "principals", "list", "--json", "--limit", "1")
	var list struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
		NextCursor *string `json:"next_cursor"`
	}
	if err := json.Unmarshal([]byte(stdout), &list); err != nil {
		t.Fatalf("principals list --json: %v\n%s", err, stdout)
	}
	if len(list.Items) != 1 || list.Items[0].ID != "acme" || list.NextCursor == nil {
		t.Errorf("principals list --json --limit 1 = %s, want acme and a next_cursor", stdout)
	}
	stdout, _ = cliMust(t, path, "principals", "list", "--json", "--cursor", *list.NextCursor)
	if err := json.Unmarshal([]byte(stdout), &list); err != nil {
		t.Fatalf("principals list --json --cursor: %v\n%s", err, stdout)
	}
	if len(list.Items) != 1 || list.Items[0].ID != "bob" || list.NextCursor != nil {
		t.Errorf("second page = %s, want only bob and no next_cursor", stdout)
	}

	stdout, _ = cliMust(t, path, "principals", "show", "acme", "--json")
	var p map[string]any
	if err := json.Unmarshal([]byte(stdout), &p); err != nil {
		t.Fatalf("principals show --json: %v\n%s", err, stdout)
	}
	if p["id"] != "acme" || p["display_name"] != "ACME Corp" ||
		fmt.Sprint(p["scopes"]) != "[read write]" || fmt.Sprint(p["rate_limit"]) != "[10-S 1000-H]" {
		t.Errorf("principals show --json = %s", stdout)
	}
	for _, f := range []string{"metadata", "created_at", "updated_at", "disabled_at"} {
		if _, ok := p[f]; !ok {
			t.Errorf("principals show --json has no %q field: %s", f, stdout)
		}
	}
	stdout, _ = cliMust(t, path, "principals", "show", "acme")
	if !strings.Contains(stdout, "ACME Corp") || !strings.Contains(stdout, "10-S,1000-H") {
		t.Errorf("principals show:\n%s", stdout)
	}

	cliFail(t, path, []string{"principals", "create", "acme"}, `principal "acme" already exists`)
	cliFail(t, path, []string{"principals", "create", "carol", "--scopes", "a b"}, "--scopes[0]: ")
	cliFail(t, path, []string{"principals", "create", "carol", "--rate-limit", "0-M"}, "--rate-limit: ")
	cliFail(t, path, []string{"principals", "create", "carol", "--rate-limit", "1-M,2-M"}, "--rate-limit[1]: ")
	cliFail(t, path, []string{"principals", "create", "bad id"}, "ID: ")
	cliFail(t, path, []string{"principals", "create", "kg_abc"}, "ID: ", "key prefix")
	cliFail(t, path, []string{"principals", "show", "nobody"}, `principal "nobody" not found`)

	stdout, _ = cliMust(t, path, "principals", "delete", "acme")
	if !strings.Contains(stdout, "acme") {
		t.Errorf("principals delete printed %q", stdout)
	}
	cliFail(t, path, []string{"principals", "show", "acme"}, `principal "acme" not found`)
	cliFail(t, path, []string{"principals", "delete", "acme"}, `principal "acme" not found`)
	cliFail(t, path, []string{"principals", "create", "acme"}, `principal "acme" already exists (ids of deleted principals cannot be reused)`)
	stdout, _ = cliMust(t, path, "principals", "list")
	if strings.Contains(stdout, "acme") {
		t.Errorf("principals list shows the deleted principal:\n%s", stdout)
	}
}

func TestCLIKeys(t *testing.T) {
	path := cliConfig(t, "  default_ttl: 720h\n  max_ttl: 8760h\n  max_per_principal: 3")
	cliMust(t, path, "principals", "create", "acme", "--scopes", "read,write")

	stdout, stderr := cliMust(t, path, "keys", "create", "--principal", "acme", "--name", "ci", "--scopes", "read", "--ttl", "48h")
	if strings.Count(stdout, "\n") != 1 || !strings.HasSuffix(stdout, "\n") {
		t.Fatalf("keys create stdout = %q, want one line", stdout)
	}
	plain := strings.TrimSuffix(stdout, "\n")
	if err := (keystore.Format{Prefix: "kg_"}).Check(plain); err != nil {
		t.Fatalf("keys create printed %q, not a key: %v", plain, err)
	}
	if strings.Contains(stderr, plain) {
		t.Errorf("keys create stderr holds the key:\n%s", stderr)
	}
	m := regexp.MustCompile(`id:\s+([0-9a-f-]{36})`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("keys create stderr has no key id:\n%s", stderr)
	}
	keyID := m[1]
	for _, want := range []string{"ci", plain[:11], "acme", "expires:"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("keys create stderr does not hold %q:\n%s", want, stderr)
		}
	}
	hash := keystore.NewHasher(cliSecret).Hash(plain).String()
	secretFree := func(what, s string) {
		t.Helper()
		for _, bad := range []string{plain, hash, cliSecret} {
			if strings.Contains(s, bad) {
				t.Errorf("%s holds the key, its hash or the secret:\n%s", what, s)
			}
		}
	}

	// The default ttl applies without --ttl.
	_, stderr2 := cliMust(t, path, "keys", "create", "--name", "default-ttl", "--principal", "acme")
	id2 := regexp.MustCompile(`id:\s+([0-9a-f-]{36})`).FindStringSubmatch(stderr2)[1]
	stdout, _ = cliMust(t, path, "keys", "show", id2, "--json")
	var k2 struct {
		ExpiresAt *time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal([]byte(stdout), &k2); err != nil {
		t.Fatal(err)
	}
	if k2.ExpiresAt == nil || time.Until(*k2.ExpiresAt) < 719*time.Hour || time.Until(*k2.ExpiresAt) > 721*time.Hour {
		t.Errorf("key created without --ttl expires at %v, want in 720h (keys.default_ttl)", k2.ExpiresAt)
	}

	for _, args := range [][]string{
		{"keys", "list"},
		{"keys", "list", "--principal", "acme", "--json"},
		{"keys", "list", "--include-revoked"},
		{"keys", "show", keyID},
		{"keys", "show", keyID, "--json"},
	} {
		stdout, stderr := cliMust(t, path, args...)
		secretFree(strings.Join(args, " "), stdout+stderr)
		if !strings.Contains(stdout, keyID) || !strings.Contains(stdout, plain[:11]) {
			t.Errorf("%s does not show the key id and prefix:\n%s", strings.Join(args, " "), stdout)
		}
	}

	stdout, _ = cliMust(t, path, "keys", "show", keyID, "--json")
	var k map[string]any
	if err := json.Unmarshal([]byte(stdout), &k); err != nil {
		t.Fatalf("keys show --json: %v\n%s", err, stdout)
	}
	for _, f := range []string{"id", "principal_id", "name", "prefix", "scopes", "rate_limit", "metadata",
		"legacy", "created_at", "expires_at", "revoked_at", "last_used_at", "usage_count"} {
		if _, ok := k[f]; !ok {
			t.Errorf("keys show --json has no %q field: %s", f, stdout)
		}
	}
	if k["principal_id"] != "acme" || k["name"] != "ci" || k["prefix"] != plain[:11] || k["revoked_at"] != nil {
		t.Errorf("keys show --json = %s", stdout)
	}

	stdout, _ = cliMust(t, path, "keys", "revoke", keyID)
	if !strings.Contains(stdout, "revoked") {
		t.Errorf("keys revoke printed %q", stdout)
	}
	cliFail(t, path, []string{"keys", "revoke", keyID}, "key "+keyID+" not found or already revoked")
	stdout, _ = cliMust(t, path, "keys", "list")
	if strings.Contains(stdout, keyID) {
		t.Errorf("keys list shows the revoked key:\n%s", stdout)
	}
	stdout, _ = cliMust(t, path, "keys", "list", "--include-revoked")
	if !strings.Contains(stdout, keyID) {
		t.Errorf("keys list --include-revoked does not show the revoked key:\n%s", stdout)
	}

	cliFail(t, path, []string{"keys", "create", "--principal", "acme", "--name", "x", "--ttl", "soon"}, "--ttl: ")
	cliFail(t, path, []string{"keys", "create", "--principal", "acme", "--name", "x", "--ttl", "-1h"}, "--ttl: ")
	cliFail(t, path, []string{"keys", "create", "--principal", "acme", "--name", "x", "--ttl", "9000h"}, "--ttl: ", "max_ttl")
	cliFail(t, path, []string{"keys", "create", "--principal", "acme", "--name", "x", "--scopes", "admin"}, "--scopes[0]: ", "not held")
	cliFail(t, path, []string{"keys", "create", "--principal", "nobody", "--name", "x"}, `principal "nobody" not found`)
	cliFail(t, path, []string{"keys", "create", "--principal", "acme"}, "name")
	cliFail(t, path, []string{"keys", "create", "--principal", "acme", "--name", "bad\nname"}, "--name: ")
	cliFail(t, path, []string{"keys", "list", "--principal", "nobody"}, `principal "nobody" not found`)
	cliFail(t, path, []string{"keys", "show", "not-a-uuid"}, "KEY_ID: ")
	cliFail(t, path, []string{"keys", "revoke", "not-a-uuid"}, "KEY_ID: ")
	err := cliFail(t, path, []string{"keys", "revoke", plain}, "KEY_ID: ")
	secretFree("keys revoke KEY", err.Error())
	cliFail(t, path, []string{"keys", "show", "0190a6c4-1f2e-7c3d-8e4f-5a6b7c8d9e0f"}, "not found")

	// max_per_principal: 3 active keys; "ci" is revoked, "default-ttl" is active.
	cliMust(t, path, "keys", "create", "--principal", "acme", "--name", "k3")
	cliMust(t, path, "keys", "create", "--principal", "acme", "--name", "k4")
	stdout, _, err = cliRun(t, path, "keys", "create", "--principal", "acme", "--name", "k5")
	if err == nil || !strings.Contains(err.Error(), "maximum of 3 active keys") {
		t.Errorf("fourth active key: err = %v, want the maximum of 3", err)
	}
	if stdout != "" {
		t.Errorf("refused keys create printed %q on stdout, want nothing", stdout)
	}

	// Deleting the principal revokes its keys.
	cliMust(t, path, "principals", "delete", "acme")
	cliFail(t, path, []string{"keys", "revoke", id2}, "not found or already revoked")
}

// principalShown is what "principals show --json" prints.
type principalShown struct {
	ID          string   `json:"id"`
	DisplayName string   `json:"display_name"`
	Scopes      []string `json:"scopes"`
	RateLimit   any      `json:"rate_limit"`
	DisabledAt  *string  `json:"disabled_at"`
	HasPassword bool     `json:"has_password"`
}

func showPrincipal(t *testing.T, path, id string) principalShown {
	t.Helper()
	stdout, _ := cliMust(t, path, "principals", "show", id, "--json")
	var p principalShown
	if err := json.Unmarshal([]byte(stdout), &p); err != nil {
		t.Fatalf("principals show --json: %v\n%s", err, stdout)
	}
	return p
}

func TestCLIPrincipalsUpdate(t *testing.T) {
	path := cliConfig(t, "")
	cliMust(t, path, "principals", "create", "acme", "--display-name", "ACME Corp",
		"--scopes", "read,write", "--rate-limit", "10-S")

	for _, tc := range []struct {
		name        string
		args        []string
		wantDisplay string
		wantScopes  string
		wantRate    string
	}{
		{"display name only", []string{"--display-name", "ACME Inc"}, "ACME Inc", "[read write]", "10-S"},
		{"scopes only", []string{"--scopes", "read"}, "ACME Inc", "[read]", "10-S"},
		{"rate limit only", []string{"--rate-limit", "5-S,100-M"}, "ACME Inc", "[read]", "[5-S 100-M]"},
		{"clear rate limit", []string{"--rate-limit", ""}, "ACME Inc", "[read]", "<nil>"},
		{"clear scopes", []string{"--scopes", ""}, "ACME Inc", "[]", "<nil>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, _ := cliMust(t, path, append([]string{"principals", "update", "acme"}, tc.args...)...)
			if !strings.Contains(stdout, `principal "acme" updated`) {
				t.Errorf("principals update printed %q", stdout)
			}
			p := showPrincipal(t, path, "acme")
			if p.DisplayName != tc.wantDisplay || fmt.Sprint(p.Scopes) != tc.wantScopes || fmt.Sprint(p.RateLimit) != tc.wantRate {
				t.Errorf("after update %q: display_name %q, scopes %v, rate_limit %v; want %q, %s, %s",
					tc.args, p.DisplayName, p.Scopes, p.RateLimit, tc.wantDisplay, tc.wantScopes, tc.wantRate)
			}
			if p.DisabledAt != nil || p.HasPassword {
				t.Errorf("after update %q: disabled_at %v, has_password %v; want neither changed", tc.args, p.DisabledAt, p.HasPassword)
			}
		})
	}

	cliFail(t, path, []string{"principals", "update", "acme", "--disable", "--enable"}, "--disable", "--enable")
	cliFail(t, path, []string{"principals", "update", "acme", "--password-stdin", "--no-password"}, "--password-stdin", "--no-password")
	cliFail(t, path, []string{"principals", "update", "acme"}, "nothing to change")
	cliFail(t, path, []string{"principals", "update", "acme", "--scopes", "a b"}, "--scopes[0]: ")
	cliFail(t, path, []string{"principals", "update", "acme", "--rate-limit", "0-M"}, "--rate-limit: ")
	cliFail(t, path, []string{"principals", "update", "nobody", "--display-name", "x"}, `principal "nobody" not found`)
	cliFail(t, path, []string{"principals", "update", "bad id", "--display-name", "x"}, "ID: ")

	// Every write is recorded with the CLI as its actor.
	s, _ := cliStore(t, path)
	events, _, err := s.ListAudit(t.Context(), "acme", keystore.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	updates := 0
	for _, e := range events {
		if e.Actor != "cli" {
			t.Errorf("audit event %s by %q, want \"cli\"", e.Action, e.Actor)
		}
		if e.Action == "principal.update" {
			updates++
		}
	}
	if updates != 5 {
		t.Errorf("audit log holds %d principal.update events, want 5: %+v", updates, events)
	}
}

func TestCLIPrincipalsDisable(t *testing.T) {
	path := cliConfig(t, "")
	cliMust(t, path, "principals", "create", "acme", "--scopes", "read")
	var ids []string
	for _, name := range []string{"one", "two"} {
		_, stderr := cliMust(t, path, "keys", "create", "--principal", "acme", "--name", name)
		ids = append(ids, regexp.MustCompile(`id:\s+([0-9a-f-]{36})`).FindStringSubmatch(stderr)[1])
	}

	stdout, _ := cliMust(t, path, "principals", "update", "acme", "--disable")
	if !strings.Contains(stdout, "disabled") || !strings.Contains(stdout, "revoked") {
		t.Errorf("principals update --disable printed %q, want it to say the keys are revoked", stdout)
	}
	if p := showPrincipal(t, path, "acme"); p.DisabledAt == nil {
		t.Errorf("after --disable: disabled_at is null")
	}
	active, _ := cliMust(t, path, "keys", "list", "--principal", "acme")
	all, _ := cliMust(t, path, "keys", "list", "--principal", "acme", "--include-revoked")
	for _, id := range ids {
		if strings.Contains(active, id) {
			t.Errorf("after --disable, keys list shows key %s as active:\n%s", id, active)
		}
		if !strings.Contains(all, id) {
			t.Errorf("after --disable, keys list --include-revoked does not show key %s:\n%s", id, all)
		}
	}
	cliFail(t, path, []string{"keys", "create", "--principal", "acme", "--name", "three"}, `principal "acme" is disabled`)

	stdout, _ = cliMust(t, path, "principals", "update", "acme", "--enable")
	if !strings.Contains(stdout, "enabled") {
		t.Errorf("principals update --enable printed %q", stdout)
	}
	if p := showPrincipal(t, path, "acme"); p.DisabledAt != nil {
		t.Errorf("after --enable: disabled_at = %s, want null", *p.DisabledAt)
	}
	active, _ = cliMust(t, path, "keys", "list", "--principal", "acme")
	for _, id := range ids {
		if strings.Contains(active, id) {
			t.Errorf("after --enable, revoked key %s is active again:\n%s", id, active)
		}
	}
}

func TestCLIPrincipalsPassword(t *testing.T) {
	path := cliConfig(t, "")
	s, _ := cliStore(t, path)
	checkPassword := func(t *testing.T, id, pw string) {
		t.Helper()
		p, err := s.GetPrincipal(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(p.PasswordHash, "$argon2id$") {
			t.Fatalf("stored password hash of %s is not an argon2id PHC string", id)
		}
		if ok, _, err := auth.VerifyPassword(p.PasswordHash, pw); !ok || err != nil {
			t.Errorf("stored hash of %s does not verify the password given on stdin: ok=%v err=%v", id, ok, err)
		}
	}
	noSecret := func(t *testing.T, what, out, pw string) {
		t.Helper()
		if strings.Contains(out, pw) {
			t.Errorf("%s prints the password:\n%s", what, out)
		}
		if strings.Contains(out, "$argon2id$") {
			t.Errorf("%s prints the password hash:\n%s", what, out)
		}
	}

	const pw = "correct horse battery staple"
	stdout, stderr, err := cliRunIn(t, path, pw+"\n", "principals", "create", "bob", "--password-stdin", "--scopes", "read")
	if err != nil {
		t.Fatalf("principals create --password-stdin: %v\n%s", err, stderr)
	}
	noSecret(t, "principals create --password-stdin", stdout+stderr, pw)
	if p := showPrincipal(t, path, "bob"); !p.HasPassword {
		t.Errorf("after create --password-stdin: has_password false")
	}
	checkPassword(t, "bob", pw)
	for _, args := range [][]string{{"principals", "show", "bob"}, {"principals", "show", "bob", "--json"}, {"principals", "list", "--json"}} {
		stdout, stderr := cliMust(t, path, args...)
		noSecret(t, strings.Join(args, " "), stdout+stderr, pw)
	}
	stdout, _ = cliMust(t, path, "principals", "show", "bob")
	if !regexp.MustCompile(`password:\s+yes`).MatchString(stdout) {
		t.Errorf("principals show does not say the principal has a password:\n%s", stdout)
	}

	// Without a line ending, with CRLF, and at the maximum length.
	for _, tc := range []struct{ name, stdin, want string }{
		{"no newline", "s3cret", "s3cret"},
		{"crlf", "pass word\r\nsecond line ignored\n", "pass word"},
		{"1024 bytes", strings.Repeat("p", 1024) + "\n", strings.Repeat("p", 1024)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, err := cliRunIn(t, path, tc.stdin, "principals", "update", "bob", "--password-stdin")
			if err != nil {
				t.Fatalf("principals update --password-stdin: %v\n%s", err, stderr)
			}
			noSecret(t, "principals update --password-stdin", stdout+stderr, tc.want)
			checkPassword(t, "bob", tc.want)
		})
	}

	cliMust(t, path, "principals", "update", "bob", "--no-password")
	if p := showPrincipal(t, path, "bob"); p.HasPassword {
		t.Errorf("after --no-password: has_password true")
	}

	for _, tc := range []struct{ name, stdin, want string }{
		{"empty", "", "empty password"},
		{"empty line", "\nsecond\n", "empty password"},
		{"too long", strings.Repeat("x", 1025) + "\n", "1024 bytes"},
		{"NUL", "ab\x00cd-secret\n", "NUL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, args := range [][]string{
				{"principals", "create", "carol", "--password-stdin"},
				{"principals", "update", "bob", "--password-stdin"},
			} {
				_, _, err := cliRunIn(t, path, tc.stdin, args...)
				if err == nil || !strings.Contains(err.Error(), "--password-stdin") || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s with stdin %s: err = %v, want one naming --password-stdin and %q", strings.Join(args, " "), tc.name, err, tc.want)
				}
				if err != nil && (strings.Contains(err.Error(), "cd-secret") || strings.Contains(err.Error(), "xxxx")) {
					t.Errorf("error quotes the password: %v", err)
				}
			}
		})
	}
	cliFail(t, path, []string{"principals", "show", "carol"}, `principal "carol" not found`)
	if p := showPrincipal(t, path, "bob"); p.HasPassword {
		t.Errorf("a refused --password-stdin set a password")
	}
}

// keyShown is what "keys show --json" prints.
type keyShown struct {
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	RateLimit any        `json:"rate_limit"`
	ExpiresAt *time.Time `json:"expires_at"`
	Legacy    bool       `json:"legacy"`
}

func showKey(t *testing.T, path, id string) keyShown {
	t.Helper()
	stdout, _ := cliMust(t, path, "keys", "show", id, "--json")
	var k keyShown
	if err := json.Unmarshal([]byte(stdout), &k); err != nil {
		t.Fatalf("keys show --json: %v\n%s", err, stdout)
	}
	return k
}

func TestCLIKeysUpdate(t *testing.T) {
	path := cliConfig(t, "  max_ttl: 8760h")
	cliMust(t, path, "principals", "create", "acme", "--scopes", "read,write")
	_, stderr := cliMust(t, path, "keys", "create", "--principal", "acme", "--name", "ci",
		"--scopes", "read", "--ttl", "48h", "--rate-limit", "5-S")
	id := regexp.MustCompile(`id:\s+([0-9a-f-]{36})`).FindStringSubmatch(stderr)[1]
	orig := showKey(t, path, id)

	cliMust(t, path, "keys", "update", id, "--name", "deploy")
	k := showKey(t, path, id)
	if k.Name != "deploy" || fmt.Sprint(k.Scopes) != "[read]" || fmt.Sprint(k.RateLimit) != "5-S" ||
		k.ExpiresAt == nil || !k.ExpiresAt.Equal(*orig.ExpiresAt) {
		t.Errorf("after --name: %+v, want only the name changed from %+v", k, orig)
	}

	cliMust(t, path, "keys", "update", "--ttl", "100h", id)
	k = showKey(t, path, id)
	if k.ExpiresAt == nil || time.Until(*k.ExpiresAt) < 99*time.Hour || time.Until(*k.ExpiresAt) > 101*time.Hour {
		t.Errorf("after --ttl 100h: expires_at %v, want 100h from now", k.ExpiresAt)
	}
	if k.Name != "deploy" || fmt.Sprint(k.Scopes) != "[read]" {
		t.Errorf("after --ttl: %+v, want name and scopes unchanged", k)
	}

	cliMust(t, path, "keys", "update", id, "--scopes", "read,write", "--rate-limit", "")
	k = showKey(t, path, id)
	if fmt.Sprint(k.Scopes) != "[read write]" || k.RateLimit != nil || k.Name != "deploy" {
		t.Errorf("after --scopes read,write --rate-limit \"\": %+v", k)
	}

	cliFail(t, path, []string{"keys", "update", id, "--ttl", "9000h"}, "--ttl: ", "max_ttl")
	cliFail(t, path, []string{"keys", "update", id, "--ttl", "1h", "--no-expiry"}, "--ttl", "--no-expiry")
	cliFail(t, path, []string{"keys", "update", id, "--no-expiry"}, "--no-expiry: ", "max_ttl")
	cliFail(t, path, []string{"keys", "update", id, "--scopes", "admin"}, "--scopes[0]: ", "not held")
	cliFail(t, path, []string{"keys", "update", id, "--name", ""}, "--name: ")
	cliFail(t, path, []string{"keys", "update", id}, "nothing to change")
	cliFail(t, path, []string{"keys", "update", "not-a-uuid", "--name", "x"}, "KEY_ID: ")
	cliFail(t, path, []string{"keys", "update", "0190a6c4-1f2e-7c3d-8e4f-5a6b7c8d9e0f", "--name", "x"}, "not found")
	if k := showKey(t, path, id); k.Name != "deploy" || time.Until(*k.ExpiresAt) > 101*time.Hour {
		t.Errorf("a refused update changed the key: %+v", k)
	}
	cliMust(t, path, "keys", "revoke", id)
	cliFail(t, path, []string{"keys", "update", id, "--name", "x"}, "not found or revoked")

	t.Run("no expiry without max_ttl", func(t *testing.T) {
		path := cliConfig(t, "")
		cliMust(t, path, "principals", "create", "acme")
		_, stderr := cliMust(t, path, "keys", "create", "--principal", "acme", "--name", "ci", "--ttl", "1h")
		id := regexp.MustCompile(`id:\s+([0-9a-f-]{36})`).FindStringSubmatch(stderr)[1]
		stdout, _ := cliMust(t, path, "keys", "update", id, "--no-expiry")
		if !strings.Contains(stdout, "expires: never") {
			t.Errorf("keys update --no-expiry printed %q", stdout)
		}
		if k := showKey(t, path, id); k.ExpiresAt != nil || k.Name != "ci" {
			t.Errorf("after --no-expiry: %+v, want no expiry and the name unchanged", k)
		}
	})
}

func TestCLIHelp(t *testing.T) {
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		paths = append(paths, path)
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			walk(sub, append(append([]string(nil), path...), sub.Name()))
		}
	}
	walk(newRootCmd(), nil)
	want := []string{"config check", "migrate", "principals create", "principals list", "principals show",
		"principals update", "principals delete", "keys create", "keys list", "keys show", "keys update",
		"keys revoke", "keys import", "version"}
	have := map[string]bool{}
	for _, p := range paths {
		have[strings.Join(p, " ")] = true
	}
	for _, w := range want {
		if !have[w] {
			t.Errorf("no command %q", w)
		}
	}
	for _, p := range paths {
		name := "keygate " + strings.Join(p, " ")
		t.Run(strings.Join(append([]string{"keygate"}, p...), "_"), func(t *testing.T) {
			stdout, _ := cliMust(t, "", append(p, "--help")...)
			if !strings.Contains(stdout, "Usage:") || !strings.Contains(stdout, name) {
				t.Errorf("%s --help:\n%s", name, stdout)
			}
		})
	}
	root := newRootCmd()
	for _, p := range paths {
		c, _, err := root.Find(p)
		if err != nil {
			t.Fatal(err)
		}
		if c.Short == "" {
			t.Errorf("keygate %s has no Short", strings.Join(p, " "))
		}
	}
}
