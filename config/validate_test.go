package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// valid returns a configuration that passes Validate, with one route.
func valid(t *testing.T) *Config {
	t.Helper()
	c := mustParse(t, `
keys: {secret: "`+testSecret+`"}
admin: {tokens: ["`+testToken+`"]}
routes:
  - name: legacy
    match: {path_prefix: /api/}
    upstream: http://127.0.0.1:9000
`, nil)
	if errs := c.Validate(); errs != nil {
		t.Fatalf("valid config: Validate() = %v", Errors(errs))
	}
	return c
}

// TestValidate has one case per rule: each change to a valid configuration must give
// exactly the wanted messages.
func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(c *Config)
		want   []string
	}{
		{"listen empty", func(c *Config) { c.Listen = "" },
			[]string{`listen: required (host:port, e.g. ":8080")`}},
		{"listen without port", func(c *Config) { c.Listen = "8080" },
			[]string{`listen: want host:port, got "8080"`}},
		{"listen bad port", func(c *Config) { c.Listen = ":http8" },
			[]string{`listen: port must be a number from 0 to 65535, got "http8"`}},
		{"admin listen bad", func(c *Config) { c.Admin.Listen = "localhost" },
			[]string{`admin.listen: want host:port, got "localhost"`}},
		{"admin listen same as listen", func(c *Config) { c.Admin.Listen = c.Listen },
			[]string{`admin.listen: must differ from listen (":8080")`}},
		{"shutdown timeout negative", func(c *Config) { c.ShutdownTimeout = -time.Second },
			[]string{"shutdown_timeout: must not be negative, got -1s"}},
		{"secret missing", func(c *Config) { c.Keys.Secret = "" },
			[]string{`keys.secret: required (the HMAC key for stored key hashes, at least 32 bytes; e.g. from the environment: "${KEYGATE_KEY_SECRET}")`}},
		{"secret short", func(c *Config) { c.Keys.Secret = Secret(strings.Repeat("x", 31)) },
			[]string{"keys.secret: too short: 31 bytes, need at least 32"}},
		{"previous secret short", func(c *Config) { c.Keys.PreviousSecrets = []Secret{testSecret, "abc"} },
			[]string{"keys.previous_secrets[1]: too short: 3 bytes, need at least 32"}},
		{"admin token short", func(c *Config) { c.Admin.Tokens[0].Token = "abc" },
			[]string{"admin.tokens[0].token: too short: 3 bytes, need at least 32"}},
		{"admin token empty", func(c *Config) { c.Admin.Tokens[0].Token = "" },
			[]string{"admin.tokens[0].token: required (at least 32 bytes)"}},
		{"admin token name empty", func(c *Config) { c.Admin.Tokens[0].Name = "" },
			[]string{"admin.tokens[0].name: required"}},
		{"admin token name control char", func(c *Config) { c.Admin.Tokens[0].Name = "a\nb" },
			[]string{"admin.tokens[0].name: must not contain control characters"}},
		{"admin token names duplicate", func(c *Config) {
			c.Admin.Tokens = append(c.Admin.Tokens, AdminToken{Name: "token-1", Token: testSecret})
		}, []string{`admin.tokens[1].name: duplicate name "token-1" (also admin.tokens[0])`}},
		{"admin tokens share a value", func(c *Config) {
			c.Admin.Tokens = append(c.Admin.Tokens, AdminToken{Name: "b", Token: testToken})
		}, []string{"admin.tokens[1].token: same token as admin.tokens[0] (each name needs its own token)"}},
		{"store driver", func(c *Config) { c.Store.Driver = "mysql" },
			[]string{`store.driver: must be sqlite or postgres, got "mysql"`}},
		{"postgres needs url", func(c *Config) { c.Store.Driver = "postgres" },
			[]string{"store.postgres.url: required when store.driver is postgres"}},
		{"postgres with url", func(c *Config) { c.Store.Driver = "postgres"; c.Store.Postgres.URL = "postgres://x/db" },
			nil},
		{"sqlite needs path", func(c *Config) { c.Store.SQLite.Path = "" },
			[]string{"store.sqlite.path: required when store.driver is sqlite"}},
		{"postgres max conns", func(c *Config) { c.Store.Postgres.MaxConns = 0 },
			[]string{"store.postgres.max_conns: must be at least 1, got 0"}},
		{"statement timeout negative", func(c *Config) { c.Store.Postgres.StatementTimeout = -1 },
			[]string{"store.postgres.statement_timeout: must not be negative, got -1ns"}},
		{"cache ttl negative", func(c *Config) { c.Store.Cache.TTL = -time.Second },
			[]string{"store.cache.ttl: must not be negative, got -1s"}},
		{"negative ttl negative", func(c *Config) { c.Store.Cache.NegativeTTL = -time.Second },
			[]string{"store.cache.negative_ttl: must not be negative, got -1s"}},
		{"stale ttl negative", func(c *Config) { c.Store.Cache.StaleTTL = -time.Second },
			[]string{"store.cache.stale_ttl: must not be negative, got -1s"}},
		{"cache max entries", func(c *Config) { c.Store.Cache.MaxEntries = 0 },
			[]string{"store.cache.max_entries: must be greater than 0, got 0"}},
		{"usage flush interval", func(c *Config) { c.Store.UsageFlushInterval = 0 },
			[]string{"store.usage_flush_interval: must be greater than 0, got 0s"}},
		{"prefix empty", func(c *Config) { c.Keys.Prefix = "" },
			[]string{"keys.prefix: required"}},
		{"prefix long", func(c *Config) { c.Keys.Prefix = "abcdefghijklmnopq" },
			[]string{"keys.prefix: at most 16 characters, got 17"}},
		{"prefix chars", func(c *Config) { c.Keys.Prefix = "kg:" },
			[]string{`keys.prefix: only letters, digits, _, . and - are allowed, got "kg:"`}},
		{"prefix allowed chars", func(c *Config) { c.Keys.Prefix = "sk_live.DC-" }, nil},
		{"max per principal", func(c *Config) { c.Keys.MaxPerPrincipal = 0 },
			[]string{"keys.max_per_principal: must be at least 1, got 0"}},
		{"default ttl negative", func(c *Config) { c.Keys.DefaultTTL = -time.Hour },
			[]string{"keys.default_ttl: must not be negative, got -1h0m0s"}},
		{"max ttl below default ttl", func(c *Config) { c.Keys.DefaultTTL = 2 * time.Hour; c.Keys.MaxTTL = time.Hour },
			[]string{"keys.max_ttl: must not be less than keys.default_ttl (2h0m0s), got 1h0m0s"}},
		{"max ttl without default ttl", func(c *Config) { c.Keys.MaxTTL = time.Hour }, nil},
		{"realm quote", func(c *Config) { c.Auth.Realm = `a"b` },
			[]string{`auth.realm: must not contain ", \ or control characters`}},
		{"realm control", func(c *Config) { c.Auth.Realm = "a\rb" },
			[]string{`auth.realm: must not contain ", \ or control characters`}},
		{"key header empty", func(c *Config) { c.Auth.KeyHeader = "" },
			[]string{"auth.key_header: required (a header name)"}},
		{"key header invalid", func(c *Config) { c.Auth.KeyHeader = "X API Key" },
			[]string{`auth.key_header: not a valid header name: "X API Key"`}},
		{"key query param invalid", func(c *Config) { c.Auth.KeyQueryParam = "api&key" },
			[]string{`auth.key_query_param: only letters, digits, _, . , - and ~ are allowed, got "api&key"`}},
		{"key query param", func(c *Config) { c.Auth.KeyQueryParam = "api_key" }, nil},
		{"basic cache ttl negative", func(c *Config) { c.Auth.BasicCacheTTL = -1 },
			[]string{"auth.basic_cache_ttl: must not be negative, got -1ns"}},
		{"max concurrent kdf negative", func(c *Config) { c.Auth.MaxConcurrentKDF = -1 },
			[]string{"auth.max_concurrent_kdf: must not be negative, got -1"}},
		{"ratelimit store", func(c *Config) { c.RateLimit.Store = "memcached" },
			[]string{`ratelimit.store: must be memory or redis, got "memcached"`}},
		{"on store error", func(c *Config) { c.RateLimit.OnStoreError = "ignore" },
			[]string{`ratelimit.on_store_error: must be local, allow or deny, got "ignore"`}},
		{"redis url scheme", func(c *Config) { c.RateLimit.Redis.URL = "http://h:1" },
			[]string{`ratelimit.redis.url: scheme must be redis, rediss or unix, got "http"`}},
		{"redis url required for redis", func(c *Config) { c.RateLimit.Store = "redis"; c.RateLimit.Redis.URL = "" },
			[]string{"ratelimit.redis.url: required when ratelimit.store is redis"}},
		{"redis timeout", func(c *Config) { c.RateLimit.Redis.Timeout = 0 },
			[]string{"ratelimit.redis.timeout: must be greater than 0, got 0s"}},
		{"redis dial timeout", func(c *Config) { c.RateLimit.Redis.DialTimeout = -1 },
			[]string{"ratelimit.redis.dial_timeout: must not be negative, got -1ns"}},
		{"redis pool size", func(c *Config) { c.RateLimit.Redis.PoolSize = -1 },
			[]string{"ratelimit.redis.pool_size: must not be negative, got -1"}},
		{"identity header invalid", func(c *Config) { c.IdentityHeaders.Scopes = "X-Auth Scopes" },
			[]string{`identity_headers.scopes: not a valid header name: "X-Auth Scopes"`}},
		{"identity header empty", func(c *Config) { c.IdentityHeaders.Method = "" },
			[]string{"identity_headers.method: required (a header name)"}},
		{"identity headers not distinct", func(c *Config) { c.IdentityHeaders.KeyName = "x-auth-key_id" },
			[]string{`identity_headers.key_name: same header as identity_headers.key_id ("x-auth-key_id"); names are compared ignoring case and _ for -`}},
		{"identity header reserved", func(c *Config) { c.IdentityHeaders.Principal = "authorization" },
			[]string{`identity_headers.principal: "authorization" is a header keygate sets or removes itself`}},
		{"identity header is key header", func(c *Config) { c.IdentityHeaders.KeyID = "X-Api-Key" },
			[]string{`identity_headers.key_id: must differ from auth.key_header ("X-API-Key")`}},
		{"self service path", func(c *Config) { c.SelfService.Path = "keygate/keys" },
			[]string{`self_service.path: must start with /, got "keygate/keys"`}},
		{"self service path dot segment", func(c *Config) { c.SelfService.Path = "/a/../b" },
			[]string{`self_service.path: must not contain . or .. segments, got "/a/../b"`}},
		{"self service path required", func(c *Config) { c.SelfService.Path = "" },
			[]string{"self_service.path: required when self_service.enabled is true"}},
		{"self service off without path", func(c *Config) { c.SelfService.Path = ""; c.SelfService.Enabled = false }, nil},
		{"trusted proxy invalid", func(c *Config) { c.TrustedProxies = Prefixes{{}} },
			[]string{"trusted_proxies[0]: invalid CIDR"}},
		{"no routes", func(c *Config) { c.Routes = nil }, nil},
		{"route name required", func(c *Config) { c.Routes[0].Name = "" },
			[]string{"routes[0].name: required"}},
		{"route name chars", func(c *Config) { c.Routes[0].Name = "my route" },
			[]string{`routes[0].name: 1 to 64 letters, digits, _, . or -, got "my route"`}},
		{"route name duplicate", func(c *Config) {
			r := c.Routes[0]
			r.Match.PathPrefix = "/other/"
			c.Routes = append(c.Routes, r)
		}, []string{`routes[1].name: duplicate route name "legacy" (also routes[0])`}},
		{"route match duplicate", func(c *Config) {
			r := c.Routes[0]
			r.Name = "other"
			c.Routes = append(c.Routes, r)
		}, []string{"routes[1].match: same match as routes[0]"}},
		{"same prefix other methods", func(c *Config) {
			r := c.Routes[0]
			r.Name = "other"
			r.Match.Methods = []string{"POST"}
			c.Routes = append(c.Routes, r)
		}, nil},
		{"path prefix required", func(c *Config) { c.Routes[0].Match.PathPrefix = "" },
			[]string{`routes[0].match.path_prefix: required (e.g. "/api/")`}},
		{"path prefix slash", func(c *Config) { c.Routes[0].Match.PathPrefix = "api/" },
			[]string{`routes[0].match.path_prefix: must start with /, got "api/"`}},
		{"path prefix query", func(c *Config) { c.Routes[0].Match.PathPrefix = "/api?x" },
			[]string{`routes[0].match.path_prefix: must not contain ?, #, \, spaces or control characters, got "/api?x"`}},
		{"host invalid", func(c *Config) { c.Routes[0].Match.Hosts = []string{"ok.example", "a b"} },
			[]string{`routes[0].match.hosts[1]: not a host name: "a b"`}},
		{"method lowercase", func(c *Config) { c.Routes[0].Match.Methods = []string{"GET", "post"} },
			[]string{`routes[0].match.methods[1]: must be an uppercase method name such as GET, got "post"`}},
		{"upstream required", func(c *Config) { c.Routes[0].Upstream = URL{} },
			[]string{"routes[0].upstream: required (an http or https URL)"}},
		{"upstream scheme", func(c *Config) { c.Routes[0].Upstream = mustURL(t, "ftp://h/") },
			[]string{`routes[0].upstream: scheme must be http or https, got "ftp"`}},
		{"upstream host", func(c *Config) { c.Routes[0].Upstream = mustURL(t, "http:///path") },
			[]string{`routes[0].upstream: must have a host, got "http:///path"`}},
		{"upstream relative", func(c *Config) { c.Routes[0].Upstream = mustURL(t, "/path") },
			[]string{`routes[0].upstream: scheme must be http or https, got ""`}},
		{"route auth", func(c *Config) { c.Routes[0].Auth = "maybe" },
			[]string{`routes[0].auth: must be required, optional or none, got "maybe"`}},
		{"route auth empty", func(c *Config) { c.Routes[0].Auth = "" },
			[]string{`routes[0].auth: must be required, optional or none, got ""`}},
		{"scope comma", func(c *Config) { c.Routes[0].Scopes = []string{"read", "a,b"} },
			[]string{`routes[0].scopes[1]: must be non-empty without commas, spaces or control characters, got "a,b"`}},
		{"scope space", func(c *Config) { c.Routes[0].Scopes = []string{"a b"} },
			[]string{`routes[0].scopes[0]: must be non-empty without commas, spaces or control characters, got "a b"`}},
		{"scope control", func(c *Config) { c.Routes[0].Scopes = []string{"a\x00"} },
			[]string{`routes[0].scopes[0]: must be non-empty without commas, spaces or control characters, got "a\x00"`}},
		{"route timeout", func(c *Config) { c.Routes[0].Timeout = 0 },
			[]string{"routes[0].timeout: must be greater than 0, got 0s"}},
		{"log level", func(c *Config) { c.Log.Level = "trace" },
			[]string{`log.level: must be debug, info, warn or error, got "trace"`}},
		{"log format", func(c *Config) { c.Log.Format = "xml" },
			[]string{`log.format: must be json or text, got "xml"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid(t)
			tc.change(c)
			got := messages(Errors(c.Validate()))
			if len(got) == 0 {
				got = nil
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Validate():\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestValidateOnlyReads(t *testing.T) {
	c := valid(t)
	c.Routes[0].Timeout = 0
	c.Routes[0].Auth = ""
	before := c.Routes[0]
	c.Validate()
	if c.Routes[0].Timeout != before.Timeout || c.Routes[0].Auth != before.Auth {
		t.Errorf("Validate changed the config: route = %+v, want %+v", c.Routes[0], before)
	}
}

func TestValidateReportsAll(t *testing.T) {
	c := valid(t)
	c.Listen = ""
	c.Keys.Secret = "x"
	c.Log.Format = "xml"
	if got := len(c.Validate()); got != 3 {
		t.Errorf("Validate() gave %d problems, want 3: %v", got, Errors(c.Validate()))
	}
}

func mustURL(t *testing.T, s string) URL {
	t.Helper()
	var u URL
	c := mustParse(t, "routes: [{upstream: '"+s+"'}]", nil)
	u = c.Routes[0].Upstream
	if u.URL == nil {
		t.Fatalf("mustURL(%q): nil", s)
	}
	return u
}
