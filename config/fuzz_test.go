package config

import (
	"errors"
	"os"
	"testing"
)

// FuzzParse feeds Parse arbitrary bytes: it must never panic, and every failure must
// be an Errors of non-empty messages.
func FuzzParse(f *testing.F) {
	if example, err := os.ReadFile(examplePath); err == nil {
		f.Add(example) // every key, ${VAR} and ${VAR:-} references, a route
	}
	for _, seed := range []string{
		minimal, // the smallest valid file
		"",      // empty: all defaults
		"admin: {tokens: [tok-a, {name: b, token: tok-b}, ~, [x]]}",                     // bare and mapped tokens, junk elements
		"routes: [{name: a, match: {path_prefix: /a}, upstream: http://x}, ~, 5, [1]]",  // routes of every kind
		"routes:\n  - &r {name: a, auth: none}\n  - <<: *r\n    name: b\n  - *r\n",      // anchors, merge keys, aliases
		"a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\nlisten: *c\n",                    // alias fan-out
		"listen: ${A}\nkeys: {secret: '${B:-x}', prefix: '$${C}'}\nlog: {level: '${',}", // env syntax, good and bad
		"ratelimit: {authenticated: [10-S, 0-M, +5-M, 5-m, 10-S], anonymous: {a: b}}",   // rate errors
		"trusted_proxies: [10.0.0.0/8, ::1, 'fe80::1%eth0', 1.2.3.4/40, [x]]",           // CIDR errors
		"store: {cache: {ttl: 5x, max_entries: 1e99}}\nshutdown_timeout: 15",            // type errors on one line
		"listen: [\n",                    // syntax error
		"a: 1\n---\nb: 2\n",              // two documents
		"? [a]\n: b\n? {c: d}\n: e\n",    // non-string keys
		"- just\n- a list\n",             // wrong root kind
		"listen: !!binary 'AAA'\n",       // explicit tags
		"listen: ':1'\nlisten: ':2'\n",   // duplicate keys
		"keys: {secret: !!int '${X}'}\n", // tagged value after expansion
	} {
		f.Add([]byte(seed))
	}
	vars := env(map[string]string{"A": ":1", "X": "42", "KEYGATE_KEY_SECRET": testSecret, "KEYGATE_ADMIN_TOKEN": testToken})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parse(data, vars)
		if err != nil {
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("parse error %T %v, want non-empty Errors", err, err)
			}
			for _, e := range es {
				if e == nil || e.Error() == "" {
					t.Fatalf("empty message in %q", es)
				}
			}
			return
		}
		if c == nil {
			t.Fatal("parse returned neither a config nor an error")
		}
		_ = c.Validate()
	})
}
