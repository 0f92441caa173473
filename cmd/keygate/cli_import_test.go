package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/keystore"
)

// legacyKey returns a random 40-character key without the kg_ prefix.
func legacyKey(t *testing.T) string {
	t.Helper()
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 40)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	if b[0] == 'k' { // never the kg_ prefix by chance
		b[0] = 'K'
	}
	return string(b)
}

// writeFile writes content to name in a fresh temporary directory and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// importFail runs keys import, wants exit status 1 and returns stderr.
func importFail(t *testing.T, path string, args ...string) string {
	t.Helper()
	stdout, stderr, err := cliRun(t, path, append([]string{"keys", "import"}, args...)...)
	var ee exitError
	if !errors.As(err, &ee) || ee != 1 {
		t.Fatalf("keys import %s: err = %v, want exit status 1\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout, stderr)
	}
	if !strings.Contains(stderr, "nothing imported") {
		t.Errorf("keys import %s: stderr does not say nothing was imported:\n%s", strings.Join(args, " "), stderr)
	}
	return stderr
}

// storedKeys returns how many keys (revoked or not) the store holds.
func storedKeys(t *testing.T, s keystore.Store) int {
	t.Helper()
	n := 0
	for cursor := ""; ; {
		page, next, err := s.ListKeys(t.Context(), "", keystore.ListOptions{Limit: 1000, Cursor: cursor, IncludeRevoked: true})
		if err != nil {
			t.Fatal(err)
		}
		n += len(page)
		if next == "" {
			return n
		}
		cursor = next
	}
}

// noKeyIn fails when out holds any of keys.
func noKeyIn(t *testing.T, what, out string, keys []string) {
	t.Helper()
	for _, k := range keys {
		if strings.Contains(out, k) {
			t.Fatalf("%s holds a plaintext key:\n%s", what, out)
		}
	}
}

func TestImportLegacy10000(t *testing.T) {
	path := cliConfig(t, "")
	cliMust(t, path, "principals", "create", "acme")
	const n = 10000
	keys := make([]string, n)
	var b strings.Builder
	b.WriteString("# legacy keys of acme\n\n") // lines 1 and 2 are skipped
	for i := range keys {
		keys[i] = legacyKey(t)
		fmt.Fprintf(&b, "  %s \n", keys[i]) // surrounding whitespace is ignored
	}
	file := writeFile(t, "acme.txt", b.String())

	start := time.Now()
	stdout, stderr := cliMust(t, path, "keys", "import", "--principal", "acme", "--file", file)
	elapsed := time.Since(start)
	t.Logf("imported %d legacy keys in %s", n, elapsed)
	noKeyIn(t, "first import output", stdout+stderr, keys)
	if want := fmt.Sprintf("imported %d keys for 1 principal (0 already present) from %s\n", n, file); stdout != want {
		t.Errorf("first import printed %q, want %q", stdout, want)
	}
	if !strings.Contains(stderr, "note: keys.accept_legacy is false: keys without the kg_ prefix will not be accepted until you turn it on") {
		t.Errorf("stderr does not remind of keys.accept_legacy:\n%s", stderr)
	}

	start = time.Now()
	stdout, stderr = cliMust(t, path, "keys", "import", "--file", file, "--principal", "acme")
	t.Logf("re-ran the import of %d keys in %s", n, time.Since(start))
	noKeyIn(t, "second import output", stdout+stderr, keys)
	if want := fmt.Sprintf("imported 0 keys, %d already present, from %s\n", n, file); stdout != want {
		t.Errorf("re-run printed %q, want %q", stdout, want)
	}

	s, cfg := cliStore(t, path)
	if got := storedKeys(t, s); got != n {
		t.Errorf("store holds %d keys after two imports, want %d", got, n)
	}
	h := hasher(cfg)
	for _, i := range []int{0, n / 2, n - 1} {
		e, err := s.LookupKey(t.Context(), h.Hash(keys[i]))
		if err != nil {
			t.Fatalf("LookupKey(key of line %d): %v", i+3, err)
		}
		k := e.Key
		if k.PrincipalID != "acme" || !k.Legacy || k.Name != fmt.Sprintf("legacy-%d", i+3) ||
			k.Prefix != keys[i][:4] || k.RevokedAt != nil || k.ExpiresAt != nil {
			t.Errorf("key of line %d stored as %+v, want principal acme, legacy, name legacy-%d, prefix %q",
				i+3, k, i+3, keys[i][:4])
		}
	}

	events, _, err := s.ListAudit(t.Context(), "acme", keystore.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	imports := 0
	for _, e := range events {
		if e.Action == "key.import" {
			imports++
			if e.Actor != "cli" || !strings.Contains(e.Detail, "10000") {
				t.Errorf("import audit event = %+v, want actor cli and 10000 keys", e)
			}
		}
	}
	if imports != 1 {
		t.Errorf("%d key.import audit events, want 1 (the re-run stored nothing)", imports)
	}

	out, _ := cliMust(t, path, "keys", "list", "--principal", "acme", "--json")
	noKeyIn(t, "keys list --json", out, keys[:100])
}

func TestImportCSV(t *testing.T) {
	path := cliConfig(t, "  accept_legacy: true")
	cliMust(t, path, "principals", "create", "acme", "--scopes", "read")
	cliMust(t, path, "principals", "create", "bob")
	f := keystore.Format{Prefix: "kg_"}
	prefixed, err := f.Generate()
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{legacyKey(t), legacyKey(t), prefixed}
	csv := "\ufeffprincipal,name,key\n" + // line 1: header, with a byte-order mark
		"acme,ci," + keys[0] + "\n" + // line 2
		"# a comment\n" + // line 3
		"bob,, " + keys[1] + "\n" + // line 4: no name
		`acme,"deploy, prod",` + keys[2] + "\n" // line 5
	file := writeFile(t, "keys.csv", csv)
	stdout, stderr := cliMust(t, path, "keys", "import", "--csv", file, "--name-prefix", "old-")
	noKeyIn(t, "import output", stdout+stderr, keys)
	if want := "imported 3 keys for 2 principals (0 already present) from " + file + "\n"; stdout != want {
		t.Errorf("import printed %q, want %q", stdout, want)
	}
	if strings.Contains(stderr, "accept_legacy") {
		t.Errorf("stderr reminds of keys.accept_legacy, which is on:\n%s", stderr)
	}
	s, cfg := cliStore(t, path)
	for i, want := range []struct{ principal, name, prefix string }{
		{"acme", "ci", keys[0][:4]},
		{"bob", "old-4", keys[1][:4]},
		{"acme", "deploy, prod", keys[2][:11]},
	} {
		e, err := s.LookupKey(t.Context(), hasher(cfg).Hash(keys[i]))
		if err != nil {
			t.Fatalf("LookupKey(key %d): %v", i, err)
		}
		if e.Key.PrincipalID != want.principal || e.Key.Name != want.name || e.Key.Prefix != want.prefix || !e.Key.Legacy {
			t.Errorf("key %d stored as %s/%q/%q legacy=%v, want %s/%q/%q legacy", i, e.Key.PrincipalID,
				e.Key.Name, e.Key.Prefix, e.Key.Legacy, want.principal, want.name, want.prefix)
		}
	}
}

func TestImportCSVBadLines(t *testing.T) {
	path := cliConfig(t, "")
	cliMust(t, path, "principals", "create", "acme")
	var keys []string
	var b strings.Builder
	b.WriteString("principal,name,key\n")
	for line := 2; line <= 12; line++ {
		k := legacyKey(t)
		keys = append(keys, k)
		switch line {
		case 4:
			fmt.Fprintf(&b, "acme,dup,%s\n", keys[0]) // duplicate of line 2
		case 7:
			fmt.Fprintf(&b, "acme,,%s %s\n", k[:20], k[20:]) // a space inside
		case 9:
			fmt.Fprintf(&b, "acme,%s,%s\n", strings.Repeat("n", 101), k)
		case 10:
			fmt.Fprintf(&b, "acme,%s\n", k)
		case 11:
			fmt.Fprintf(&b, "acme,empty,\n")
		case 12:
			fmt.Fprintf(&b, "acme,long,%s\n", strings.Repeat(k, 7))
		default:
			fmt.Fprintf(&b, "acme,,%s\n", k)
		}
	}
	file := writeFile(t, "keys.csv", b.String())
	stderr := importFail(t, path, "--csv", file)
	noKeyIn(t, "import errors", stderr, keys)
	for _, want := range []string{
		file + ":4: key", "duplicate of line 2",
		file + ":7: key: whitespace",
		file + ":9: name: at most 100 characters",
		file + ":10: want 3 columns",
		file + ":11: key: empty",
		file + ":12: key: longer than 256 bytes",
		"nothing imported: 6 problems in " + file,
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not hold %q:\n%s", want, stderr)
		}
	}
	for _, bad := range []string{":2:", ":3:", ":5:", ":6:", ":8:"} {
		if strings.Contains(stderr, file+bad) {
			t.Errorf("stderr names good line %s:\n%s", bad, stderr)
		}
	}
	s, _ := cliStore(t, path)
	if n := storedKeys(t, s); n != 0 {
		t.Errorf("store holds %d keys after a refused import, want 0", n)
	}

	t.Run("only line 7", func(t *testing.T) {
		csv := "principal,name,key\n"
		var keys []string
		for line := 2; line <= 10; line++ {
			k := legacyKey(t)
			keys = append(keys, k)
			if line == 7 {
				k = k[:10] + "\x01" + k[11:]
			}
			csv += "acme,," + k + "\n"
		}
		file := writeFile(t, "keys.csv", csv)
		stderr := importFail(t, path, "--csv", file)
		noKeyIn(t, "import errors", stderr, keys)
		if want := file + ":7: key: whitespace or a control character at byte 10\nnothing imported: 1 problem in " + file + "\n"; stderr != want {
			t.Errorf("stderr = %q, want %q", stderr, want)
		}
		if n := storedKeys(t, s); n != 0 {
			t.Errorf("store holds %d keys after a refused import, want 0", n)
		}
	})
}

func TestImportUnknownPrincipal(t *testing.T) {
	path := cliConfig(t, "")
	cliMust(t, path, "principals", "create", "acme")
	cliMust(t, path, "principals", "create", "off")
	cliMust(t, path, "principals", "update", "off", "--disable")
	keys := []string{legacyKey(t), legacyKey(t), legacyKey(t), legacyKey(t), legacyKey(t), legacyKey(t)}
	csv := "acme,," + keys[0] + "\n" +
		"ghost,," + keys[1] + "\n" +
		"phantom,," + keys[2] + "\n" +
		"ghost,," + keys[3] + "\n" +
		"off,," + keys[4] + "\n" +
		keys[5][:30] + ",," + "swapped-columns\n" // a key in the principal column
	file := writeFile(t, "keys.csv", csv)
	stderr := importFail(t, path, "--csv", file)
	noKeyIn(t, "import errors", stderr, keys)
	for _, want := range []string{
		file + `:2: principal "ghost" not found (and on 1 more lines)`,
		file + `:3: principal "phantom" not found`,
		file + `:5: principal "off" is disabled`,
		file + `:6: principal "` + keys[5][:4] + `…" (30 characters) not found`,
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not hold %q:\n%s", want, stderr)
		}
	}
	s, _ := cliStore(t, path)
	if n := storedKeys(t, s); n != 0 {
		t.Errorf("store holds %d keys after a refused import, want 0", n)
	}

	file = writeFile(t, "keys.txt", keys[0]+"\n")
	stderr = importFail(t, path, "--principal", "ghost", "--file", file)
	if !strings.Contains(stderr, file+`: principal "ghost" not found`) {
		t.Errorf("stderr does not name the unknown --principal:\n%s", stderr)
	}
	if n := storedKeys(t, s); n != 0 {
		t.Errorf("store holds %d keys after a refused import, want 0", n)
	}
}

func TestImportPrefixedKeys(t *testing.T) {
	path := cliConfig(t, "")
	cliMust(t, path, "principals", "create", "acme")
	f := keystore.Format{Prefix: "kg_"}
	var keys []string
	for range 4 {
		k, err := f.Generate()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	// Line 3: a checksum character changed; line 4: one character short.
	bad := keys[2][:len(keys[2])-1] + "0"
	if bad == keys[2] {
		bad = keys[2][:len(keys[2])-1] + "1"
	}
	file := writeFile(t, "keys.txt", keys[0]+"\n"+keys[1]+"\n"+bad+"\n"+keys[3][:len(keys[3])-1]+"\n")
	stderr := importFail(t, path, "--principal", "acme", "--file", file)
	noKeyIn(t, "import errors", stderr, append(keys, bad))
	for _, want := range []string{
		file + ":3: key " + keys[2][:11] + "…: starts with the key prefix \"kg_\" but is not a well-formed keygate key",
		file + ":4: key " + keys[3][:11] + "…: starts with the key prefix",
		"nothing imported: 2 problems",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not hold %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, file+":1:") || strings.Contains(stderr, file+":2:") {
		t.Errorf("stderr names a good line:\n%s", stderr)
	}

	// The good ones import, without the accept_legacy reminder: they all have the prefix.
	file = writeFile(t, "keys.txt", keys[0]+"\n"+keys[1]+"\n")
	stdout, stderr := cliMust(t, path, "keys", "import", "--principal", "acme", "--file", file)
	noKeyIn(t, "import output", stdout+stderr, keys)
	if !strings.HasPrefix(stdout, "imported 2 keys for 1 principal") || strings.Contains(stderr, "accept_legacy") {
		t.Errorf("import of 2 prefixed keys: stdout %q, stderr %q", stdout, stderr)
	}

	// A key already stored for another principal is refused, not silently skipped.
	cliMust(t, path, "principals", "create", "bob")
	stderr = importFail(t, path, "--principal", "bob", "--file", file)
	if !strings.Contains(stderr, file+":1: key "+keys[0][:11]+": already stored for principal \"acme\"") {
		t.Errorf("stderr does not name the key held by another principal:\n%s", stderr)
	}
	noKeyIn(t, "import errors", stderr, keys)
}

func TestImportFlagsAndFiles(t *testing.T) {
	path := cliConfig(t, "")
	cliMust(t, path, "principals", "create", "acme")
	file := writeFile(t, "keys.txt", legacyKey(t)+"\n")
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"nothing", nil, []string{"--principal ID --file FILE", "--csv FILE"}},
		{"file without principal", []string{"--file", file}, []string{"--file", "--principal"}},
		{"csv and principal", []string{"--csv", file, "--principal", "acme"}, []string{"--csv", "--principal"}},
		{"csv and file", []string{"--csv", file, "--file", file}, []string{"--csv", "--file"}},
		{"bad principal", []string{"--principal", "bad id", "--file", file}, []string{"--principal: "}},
		{"long name prefix", []string{"--principal", "acme", "--file", file, "--name-prefix", strings.Repeat("p", 91)}, []string{"--name-prefix: "}},
		{"missing file", []string{"--principal", "acme", "--file", file + ".nope"}, []string{file + ".nope"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cliFail(t, path, append([]string{"keys", "import"}, tc.args...), tc.want...)
		})
	}
	empty := writeFile(t, "empty.txt", "# nothing\n\n")
	cliFail(t, path, []string{"keys", "import", "--principal", "acme", "--file", empty}, empty, "no keys")

	// "--file -" reads stdin.
	k := legacyKey(t)
	stdout, stderr, err := cliRunIn(t, path, k+"\n", "keys", "import", "--principal", "acme", "--file", "-")
	if err != nil || stdout != "imported 1 key for 1 principal (0 already present) from stdin\n" {
		t.Errorf("import from stdin: err %v, stdout %q, stderr %q", err, stdout, stderr)
	}
	noKeyIn(t, "import from stdin", stdout+stderr, []string{k})
}

func TestImportProgressBar(t *testing.T) {
	defer func(f func(io.Writer) bool) { isTerminal = f }(isTerminal)
	isTerminal = func(io.Writer) bool { return true }
	path := cliConfig(t, "")
	cliMust(t, path, "principals", "create", "acme")
	var keys []string
	var b strings.Builder
	for range 500 {
		k := legacyKey(t)
		keys = append(keys, k)
		b.WriteString(k + "\n")
	}
	file := writeFile(t, "keys.txt", b.String())
	stdout, stderr := cliMust(t, path, "keys", "import", "--principal", "acme", "--file", file)
	noKeyIn(t, "import output on a terminal", stdout+stderr, keys)
	if !strings.Contains(stderr, "checking and hashing") || !strings.Contains(stderr, "100%") {
		t.Errorf("no progress bar on a terminal; stderr:\n%q", stderr)
	}
	if !strings.HasPrefix(stdout, "imported 500 keys") {
		t.Errorf("stdout = %q", stdout)
	}
}
