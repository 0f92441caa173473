package config

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const (
	testSecret = "k3y-s3cret-0123456789abcdefghijklmnopqrstuv" // 43 bytes
	testToken  = "adm1n-t0ken-0123456789abcdefghijklmnopqrstu" // 43 bytes
)

// env returns a lookup over m, so that tests do not depend on the process environment.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// minimal is a valid configuration; tests append to it.
const minimal = `
keys:
  secret: "` + testSecret + `"
`

// messages returns the messages of err, one per problem.
func messages(err error) []string {
	if err == nil {
		return nil
	}
	var es Errors
	if !errors.As(err, &es) {
		return []string{"not config.Errors: " + err.Error()}
	}
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Error()
	}
	return out
}

func mustParse(t *testing.T, src string, vars map[string]string) *Config {
	t.Helper()
	c, err := parse([]byte(src), env(vars))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return c
}

func TestDefault(t *testing.T) {
	d := Default()
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"listen", d.Listen, ":8080"},
		{"shutdown_timeout", d.ShutdownTimeout, 15 * time.Second},
		{"admin.listen", d.Admin.Listen, "127.0.0.1:9090"},
		{"store.driver", d.Store.Driver, "sqlite"},
		{"store.sqlite.path", d.Store.SQLite.Path, "./data/keygate.db"},
		{"store.cache.ttl", d.Store.Cache.TTL, 30 * time.Second},
		{"store.cache.negative_ttl", d.Store.Cache.NegativeTTL, 5 * time.Second},
		{"store.cache.stale_ttl", d.Store.Cache.StaleTTL, 10 * time.Minute},
		{"store.cache.max_entries", d.Store.Cache.MaxEntries, 100000},
		{"store.usage_flush_interval", d.Store.UsageFlushInterval, 10 * time.Second},
		{"keys.prefix", d.Keys.Prefix, "kg_"},
		{"keys.max_per_principal", d.Keys.MaxPerPrincipal, 10},
		{"auth.realm", d.Auth.Realm, "keygate"},
		{"auth.key_header", d.Auth.KeyHeader, "X-API-Key"},
		{"auth.basic_cache_ttl", d.Auth.BasicCacheTTL, 5 * time.Minute},
		{"auth.failed_attempts", d.Auth.FailedAttempts.Strings(), []string{"10-M"}},
		{"ratelimit.store", d.RateLimit.Store, "memory"},
		{"ratelimit.redis.url", d.RateLimit.Redis.URL.Reveal(), "redis://127.0.0.1:6379/0"},
		{"ratelimit.redis.timeout", d.RateLimit.Redis.Timeout, 50 * time.Millisecond},
		{"ratelimit.redis.dial_timeout", d.RateLimit.Redis.DialTimeout, 200 * time.Millisecond},
		{"ratelimit.on_store_error", d.RateLimit.OnStoreError, "local"},
		{"ratelimit.authenticated", d.RateLimit.Authenticated.Strings(), []string{"1000-M"}},
		{"ratelimit.anonymous", d.RateLimit.Anonymous.Strings(), []string{"60-M"}},
		{"identity_headers.principal", d.IdentityHeaders.Principal, "X-Auth-Principal"},
		{"identity_headers.key_id", d.IdentityHeaders.KeyID, "X-Auth-Key-Id"},
		{"identity_headers.key_name", d.IdentityHeaders.KeyName, "X-Auth-Key-Name"},
		{"identity_headers.scopes", d.IdentityHeaders.Scopes, "X-Auth-Scopes"},
		{"identity_headers.method", d.IdentityHeaders.Method, "X-Auth-Method"},
		{"self_service.enabled", d.SelfService.Enabled, true},
		{"self_service.path", d.SelfService.Path, "/keygate/v1/keys"},
		{"log.level", d.Log.Level, "info"},
		{"log.format", d.Log.Format, "json"},
		{"route auth", DefaultRoute().Auth, "required"},
		{"route timeout", DefaultRoute().Timeout, 30 * time.Second},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("Default() %s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}

	// Every call is a fresh value.
	d.RateLimit.Anonymous[0].Limit = 1
	if got := Default().RateLimit.Anonymous[0].Limit; got != 60 {
		t.Errorf("Default() shares its rate slices: got limit %d after a change, want 60", got)
	}
}

func TestDefaultNeedsOnlySecret(t *testing.T) {
	c := Default()
	if got := messages(Errors(c.Validate())); !slices.Equal(got, []string{
		`keys.secret: required (the HMAC key for stored key hashes, at least 32 bytes; e.g. from the environment: "${KEYGATE_KEY_SECRET}")`,
	}) {
		t.Errorf("Default().Validate() = %q, want only keys.secret required", got)
	}
	c.Keys.Secret = testSecret
	if errs := c.Validate(); errs != nil {
		t.Errorf("Default() with a secret: Validate() = %v, want nil", Errors(errs))
	}
}

func TestParseEmpty(t *testing.T) {
	for _, src := range []string{"", "# only a comment\n", "---\n"} {
		c, err := parse([]byte(src), env(nil))
		if err != nil {
			t.Fatalf("parse(%q): %v", src, err)
		}
		if !reflect.DeepEqual(*c, Default()) {
			t.Errorf("parse(%q) = %+v, want Default()", src, *c)
		}
	}
}

func TestEnvExpansion(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		vars map[string]string
		get  func(*Config) any
		want any
	}{
		{"set var", `listen: "${L}"`, map[string]string{"L": ":7000"},
			func(c *Config) any { return c.Listen }, ":7000"},
		{"var inside text", `listen: "0.0.0.0:${PORT}"`, map[string]string{"PORT": "81"},
			func(c *Config) any { return c.Listen }, "0.0.0.0:81"},
		{"default when unset", `listen: "${L:-:9000}"`, nil,
			func(c *Config) any { return c.Listen }, ":9000"},
		{"default when empty", `listen: "${L:-:9000}"`, map[string]string{"L": ""},
			func(c *Config) any { return c.Listen }, ":9000"},
		{"set var wins over default", `listen: "${L:-:9000}"`, map[string]string{"L": ":1"},
			func(c *Config) any { return c.Listen }, ":1"},
		{"explicit empty default", `store: {postgres: {url: "${DB:-}"}}`, nil,
			func(c *Config) any { return c.Store.Postgres.URL.Reveal() }, ""},
		{"set but empty var without default", `auth: {key_query_param: "${Q}"}`, map[string]string{"Q": ""},
			func(c *Config) any { return c.Auth.KeyQueryParam }, ""},
		{"unquoted int after expansion", "keys:\n  max_per_principal: ${N}\n", map[string]string{"N": "7"},
			func(c *Config) any { return c.Keys.MaxPerPrincipal }, 7},
		{"unquoted default int", "keys:\n  max_per_principal: ${N:-3}\n", nil,
			func(c *Config) any { return c.Keys.MaxPerPrincipal }, 3},
		{"unquoted bool", "keys:\n  accept_legacy: ${LEGACY}\n", map[string]string{"LEGACY": "true"},
			func(c *Config) any { return c.Keys.AcceptLegacy }, true},
		{"unquoted duration", "store:\n  cache:\n    ttl: ${TTL}\n", map[string]string{"TTL": "2m"},
			func(c *Config) any { return c.Store.Cache.TTL }, 2 * time.Minute},
		{"rate from env", `ratelimit: {anonymous: "${R}"}`, map[string]string{"R": "5-S"},
			func(c *Config) any { return c.RateLimit.Anonymous.Strings() }, []string{"5-S"}},
		{"rate list element from env", `ratelimit: {anonymous: ["${R}", 100-H]}`, map[string]string{"R": "5-S"},
			func(c *Config) any { return c.RateLimit.Anonymous.Strings() }, []string{"5-S", "100-H"}},
		{"secret from env", `keys: {secret: "${S}"}`, map[string]string{"S": testSecret},
			func(c *Config) any { return c.Keys.Secret.Reveal() }, testSecret},
		{"value from env is not expanded again", `auth: {realm: "${R}"}`, map[string]string{"R": "${X}"},
			func(c *Config) any { return c.Auth.Realm }, "${X}"},
		{"escaped", `auth: {realm: "$${NOT}"}`, nil,
			func(c *Config) any { return c.Auth.Realm }, "${NOT}"},
		{"lone dollar kept", `auth: {realm: "a$b $"}`, nil,
			func(c *Config) any { return c.Auth.Realm }, "a$b $"},
		{"keys are never expanded", "routes: [{name: r, match: {path_prefix: /a, hosts: ['${H}']}, upstream: 'http://x'}]",
			map[string]string{"H": "example.com"},
			func(c *Config) any { return c.Routes[0].Match.Hosts }, []string{"example.com"}},
		{"upstream from env", "routes: [{name: r, match: {path_prefix: /a}, upstream: '${UP}'}]",
			map[string]string{"UP": "https://up.example:8443/base"},
			func(c *Config) any { return c.Routes[0].Upstream.String() }, "https://up.example:8443/base"},
		{"anchor expanded once", "auth: {realm: &r '${R}'}\nlog: {level: *r}", map[string]string{"R": "info"},
			func(c *Config) any { return c.Auth.Realm + "/" + c.Log.Level }, "info/info"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, tc.src, tc.vars)
			if got := tc.get(c); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

// TestParseErrors has one case per kind of problem Parse reports.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		vars map[string]string
		want []string
	}{
		{"unknown top-level key", "listn: ':80'", nil,
			[]string{"listn: unknown field"}},
		{"unknown nested key", "store:\n  cache:\n    tll: 5s\n", nil,
			[]string{"store.cache.tll: unknown field"}},
		{"unknown key in a route", "routes:\n  - name: a\n    match: {path_prefix: /a}\n    upstream: http://x\n  - name: b\n    matc: {path_prefix: /b}\n    upstream: http://x\n", nil,
			[]string{"routes[1].matc: unknown field"}},
		{"unknown key in an admin token", "admin: {tokens: [{name: a, tokn: x}]}", nil,
			[]string{"admin.tokens[0].tokn: unknown field"}},
		{"duplicate key", "listen: ':1'\nlisten: ':2'\n", nil,
			[]string{"listen: duplicate key (first at line 1)"}},
		{"unset env var", "keys:\n  secret: ${KEYGATE_KEY_SECRET}\n", nil,
			[]string{"keys.secret: environment variable KEYGATE_KEY_SECRET is not set (use ${KEYGATE_KEY_SECRET:-} for an empty default)"}},
		{"unset env var in a list", "routes: [{name: a, match: {path_prefix: /a, hosts: [x, '${HOST}']}, upstream: 'http://x'}]", nil,
			[]string{"routes[0].match.hosts[1]: environment variable HOST is not set (use ${HOST:-} for an empty default)"}},
		{"unterminated reference", "listen: '${PORT'", nil,
			[]string{"listen: unterminated ${ (want ${NAME} or ${NAME:-default}; write $${ for a literal ${)"}},
		{"invalid variable name", "listen: '${1PORT}'", nil,
			[]string{"listen: invalid variable reference (want ${NAME} or ${NAME:-default}, NAME of letters, digits and _)"}},
		{"other shell operator", "listen: '${PORT:?required}'", nil,
			[]string{"listen: invalid variable reference (want ${NAME} or ${NAME:-default}, NAME of letters, digits and _)"}},
		{"bad env default", "keys:\n  max_per_principal: ${N:-ten}\n", nil,
			[]string{`keys.max_per_principal: want an integer, got "ten"`}},
		{"bad env value", "keys:\n  max_per_principal: ${N}\n", map[string]string{"N": "x"},
			[]string{`keys.max_per_principal: want an integer, got "x"`}},
		{"type error int", "store:\n  cache:\n    max_entries: lots\n", nil,
			[]string{`store.cache.max_entries: want an integer, got "lots"`}},
		{"type error duration", "shutdown_timeout: 15\n", nil,
			[]string{`shutdown_timeout: want a duration such as "30s", got "15"`}},
		{"type error in a flow mapping", "store: {cache: {ttl: 30s, negative_ttl: soon, max_entries: 5}}", nil,
			[]string{`store.cache.negative_ttl: want a duration such as "30s", got "soon"`}},
		{"type error bool", "self_service: {enabled: maybe}", nil,
			[]string{`self_service.enabled: want true or false, got "maybe"`}},
		{"list for a string", "listen: [a, b]", nil,
			[]string{"listen: want a string, got a list"}},
		{"scalar for a section", "store: sqlite", nil,
			[]string{`store: want a mapping, got "sqlite"`}},
		{"mapping for a list", "routes: {name: a}", nil,
			[]string{"routes: want a list, got a mapping"}},
		{"bad rate", "auth: {failed_attempts: 10/M}", nil,
			[]string{`auth.failed_attempts: invalid rate "10/M": want N-S, N-M, N-H or N-D with N a positive integer (e.g. "100-M")`}},
		{"bad rate in a list", "ratelimit: {authenticated: [10-S, 0-M]}", nil,
			[]string{`ratelimit.authenticated[1]: invalid rate "0-M": want N-S, N-M, N-H or N-D with N a positive integer (e.g. "100-M")`}},
		{"two rates with one period", "ratelimit: {authenticated: [10-M, 20-M]}", nil,
			[]string{`ratelimit.authenticated[1]: rates "10-M" and "20-M" have the same period: give one rate per period`}},
		{"mapping for a rate", "ratelimit: {anonymous: {n: 1}}", nil,
			[]string{"ratelimit.anonymous: want a rate string or a list of them, got a mapping"}},
		{"bad CIDR", "trusted_proxies: [10.0.0.0/8, 10.0.0.0/33, fe80::1%eth0]", nil,
			[]string{`trusted_proxies[1]: invalid CIDR "10.0.0.0/33"`, `trusted_proxies[2]: invalid CIDR "fe80::1%eth0"`}},
		{"bad URL", "routes: [{name: a, match: {path_prefix: /a}, upstream: 'http://[::1'}]", nil,
			[]string{`routes[0].upstream: not a valid URL: missing ']' in host`}},
		{"syntax error", "listen: [\n", nil,
			[]string{"yaml: line 1: did not find expected node content"}},
		{"tab indentation", "store:\n\tdriver: sqlite\n", nil,
			[]string{"yaml: line 2: found character that cannot start any token"}},
		{"two documents", "listen: ':1'\n---\nlisten: ':2'\n", nil,
			[]string{"the file holds more than one YAML document"}},
		{"non-string key", "? [a]\n: b\n", nil,
			[]string{"line 1: keys must be strings, got a list"}},
		{"whole file a list", "- a\n", nil,
			[]string{"line 1: want a mapping, got a list"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parse([]byte(tc.src), env(tc.vars))
			got := messages(err)
			if !slices.Equal(got, tc.want) {
				t.Errorf("errors:\n got %q\nwant %q", got, tc.want)
			}
			if c != nil {
				t.Errorf("got a config with errors")
			}
		})
	}
}

func TestAllErrorsAtOnce(t *testing.T) {
	src := `
listen: ":8080"
store:
  cache:
    ttl: forever
keys:
  secret: ${MISSING}
routes:
  - name: a
    match: {path_prefix: /a}
    upstream: http://x
    rate_limit: 5-m
`
	_, err := parse([]byte(src), env(nil))
	want := []string{
		`store.cache.ttl: want a duration such as "30s", got "forever"`,
		"keys.secret: environment variable MISSING is not set (use ${MISSING:-} for an empty default)",
		`routes[0].rate_limit: invalid rate "5-m": want N-S, N-M, N-H or N-D with N a positive integer (e.g. "100-M")`,
	}
	if got := messages(err); !slices.Equal(got, want) {
		t.Errorf("errors:\n got %q\nwant %q", got, want)
	}
	if got, want := err.Error(), strings.Join(want, "\n"); got != want {
		t.Errorf("Error() = %q, want one message per line %q", got, want)
	}
}

func TestAdminTokens(t *testing.T) {
	src := `
admin:
  tokens:
    - "${T1}"
    - {name: ops, token: "${T2}"}
    - plain-token-value-0123456789abcdefghijkl
`
	c := mustParse(t, src, map[string]string{"T1": testToken, "T2": testToken + "2"})
	got := make([]string, len(c.Admin.Tokens))
	for i, tk := range c.Admin.Tokens {
		got[i] = tk.Name + "=" + tk.Token.Reveal()
	}
	want := []string{
		"token-1=" + testToken,
		"ops=" + testToken + "2",
		"token-3=plain-token-value-0123456789abcdefghijkl",
	}
	if !slices.Equal(got, want) {
		t.Errorf("tokens = %q, want %q", got, want)
	}
}

func TestRouteDefaults(t *testing.T) {
	src := `
routes:
  - name: a
    match: {path_prefix: /a/}
    upstream: http://127.0.0.1:9000
  - name: b
    match: {path_prefix: /b/}
    upstream: https://example.com
    auth: none
    timeout: 5s
  - name: c
    match: {path_prefix: /c/}
    upstream: http://x
    timeout: 0s
  - &base
    name: d
    match: {path_prefix: /d/}
    upstream: http://x
    auth: optional
  - <<: *base
    name: e
    match: {path_prefix: /e/}
`
	c := mustParse(t, src, nil)
	var got []string
	for _, r := range c.Routes {
		got = append(got, r.Name+" "+r.Auth+" "+r.Timeout.String())
	}
	want := []string{
		"a required 30s",
		"b none 5s",
		"c required 0s", // explicit 0s stays 0s; Validate refuses it
		"d optional 30s",
		"e optional 30s",
	}
	if !slices.Equal(got, want) {
		t.Errorf("routes = %q, want %q", got, want)
	}
	if got := messages(Errors(c.Validate())); !slices.Contains(got, "routes[2].timeout: must be greater than 0, got 0s") {
		t.Errorf("Validate() = %q, want routes[2].timeout refused", got)
	}
}

func TestNoSecretInErrors(t *testing.T) {
	const (
		s1 = "SECRET-ONE-0123456789abcdefghijklmnopq"
		s2 = "SECRET-TWO-0123456789abcdefghijklmnopq"
		sh = "short-SECRET"
		pw = "PaSsWoRd-in-url"
	)
	vars := map[string]string{"S1": s1, "S2": s2, "SH": sh}
	for _, tc := range []struct{ name, src string }{
		{"secret too short", "keys: {secret: " + sh + "}"},
		{"secret from env too short", "keys: {secret: '${SH}'}"},
		{"previous secret too short", "keys: {secret: " + s1 + ", previous_secrets: [" + sh + "]}"},
		{"secret as a list", "keys: {secret: [" + s1 + "]}"},
		{"secret as a mapping", "keys: {secret: {" + s1 + ": x}}"},
		{"previous secrets as a string", "keys: {previous_secrets: " + s1 + "}"},
		{"tokens as a string", "admin: {tokens: " + s1 + "}"},
		{"token as a list", "admin: {tokens: [{name: a, token: [" + s1 + "]}]}"},
		{"token too short", "admin: {tokens: [" + sh + "]}"},
		{"tokens share one value", "admin: {tokens: [" + s1 + ", " + s1 + "]}"},
		{"token without name", "admin: {tokens: [{token: " + s1 + "}]}"},
		{"secret under an unknown key", "keys: {secrte: " + s1 + "}"},
		{"secret beside an env error", "keys: {secret: '" + s1 + "${NOPE}'}"},
		{"secret in a bad binary", "keys: {secret: !!binary '" + s1 + "'}"},
		{"postgres url as a list", "store: {driver: postgres, postgres: {url: [postgres://u:" + pw + "@h/db]}}"},
		{"redis url bad scheme", "ratelimit: {redis: {url: 'http://u:" + pw + "@h'}}"},
		{"redis url unparsable", "ratelimit: {redis: {url: 'redis://u:" + pw + "@h:port/'}}"},
		{"redis url control char", "ratelimit: {redis: {url: \"redis://u:" + pw + "@h/\\x01\"}}"},
		{"upstream with password", "routes: [{name: a, match: {path_prefix: /a}, upstream: 'ftp://u:" + pw + "@h'}]"},
		{"upstream without host", "routes: [{name: a, match: {path_prefix: /a}, upstream: 'http://u:" + pw + "@:80'}]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parse([]byte(tc.src), env(vars))
			var all []string
			if err != nil {
				all = messages(err)
			} else {
				all = messages(Errors(c.Validate()))
			}
			if len(all) == 0 {
				t.Fatalf("no error for %q", tc.src)
			}
			for _, m := range all {
				for _, s := range []string{s1, s2, sh, pw, "SECRET-"} {
					if strings.Contains(m, s) {
						t.Errorf("message %q holds a secret (%q)", m, s)
					}
				}
			}
		})
	}
}

func TestErrorsType(t *testing.T) {
	_, err := parse([]byte("listn: x\nlog: {levl: x}"), env(nil))
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("errors.As(%v, *FieldError) = false, want true", err)
	}
	if got, want := fe.Path, "listn"; got != want {
		t.Errorf("first FieldError path = %q, want %q", got, want)
	}
	if got, want := (&FieldError{Message: "m"}).Error(), "m"; got != want {
		t.Errorf("FieldError without path = %q, want %q", got, want)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	c := Default()
	c.Keys.Secret = testSecret
	c.Admin.Tokens = []AdminToken{{Name: "ops", Token: testToken}}
	c.TrustedProxies = mustParse(t, "trusted_proxies: [10.0.0.0/8, '::1']", nil).TrustedProxies
	c.Routes = mustParse(t, `
routes:
  - name: a
    match: {path_prefix: /a/, hosts: [example.com], methods: [GET]}
    upstream: http://127.0.0.1:9000/base
    rate_limit: [10-S, 100-M]
    anonymous_rate_limit: 5-S
    scopes: [read]
`, nil).Routes
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatalf("yaml.Marshal: %v", err)
	}
	got, err := parse(out, env(nil))
	if err != nil {
		t.Fatalf("parse(yaml.Marshal(c)): %v\n%s", err, out)
	}
	again, err := yaml.Marshal(got)
	if err != nil {
		t.Fatalf("yaml.Marshal: %v", err)
	}
	if string(again) != string(out) {
		t.Errorf("round trip:\n got %s\nwant %s", again, out)
	}
	if got.Keys.Secret != c.Keys.Secret || got.Routes[0].Upstream.String() != "http://127.0.0.1:9000/base" {
		t.Errorf("round trip lost values: secret equal %v, upstream %q", got.Keys.Secret == c.Keys.Secret, got.Routes[0].Upstream)
	}
	if errs := got.Validate(); errs != nil {
		t.Errorf("Validate() = %v", Errors(errs))
	}
}
