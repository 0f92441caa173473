package config

import (
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// MinSecretLen is the least number of bytes of keys.secret, each previous secret and
// each admin token.
const MinSecretLen = 32

// Validate checks the whole configuration and returns every problem found, each a
// *FieldError naming its field path; nil means valid. It only reads c, and no message
// holds the value of a Secret. Wrap the result in Errors to print it.
func (c *Config) Validate() []error {
	v := &validator{}
	v.addr("listen", c.Listen)
	v.nonNegative("shutdown_timeout", c.ShutdownTimeout)
	v.admin(c)
	v.store(&c.Store)
	v.keys(&c.Keys)
	v.auth(&c.Auth)
	v.rateLimit(&c.RateLimit)
	for i, p := range c.TrustedProxies {
		if !p.IsValid() {
			v.errorf(index("trusted_proxies", i), "invalid CIDR")
		}
	}
	v.identityHeaders(c)
	v.selfService(&c.SelfService)
	v.routes(c.Routes)
	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "json", "text")
	if len(v.errs) == 0 {
		return nil
	}
	return v.errs
}

type validator struct{ errs []error }

func (v *validator) errorf(path, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (v *validator) addr(path, s string) {
	if s == "" {
		v.errorf(path, "required (host:port, e.g. \":8080\")")
		return
	}
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		v.errorf(path, "want host:port, got %q", s)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.errorf(path, "port must be a number from 0 to 65535, got %q", port)
	}
}

func (v *validator) nonNegative(path string, d time.Duration) {
	if d < 0 {
		v.errorf(path, "must not be negative, got %s", d)
	}
}

func (v *validator) positive(path string, d time.Duration) {
	if d <= 0 {
		v.errorf(path, "must be greater than 0, got %s", d)
	}
}

func (v *validator) oneOf(path, s string, allowed ...string) {
	for _, a := range allowed {
		if s == a {
			return
		}
	}
	v.errorf(path, "must be %s, got %q", orList(allowed), s)
}

func orList(ss []string) string {
	if len(ss) == 1 {
		return ss[0]
	}
	return strings.Join(ss[:len(ss)-1], ", ") + " or " + ss[len(ss)-1]
}

func (v *validator) secret(path string, s Secret, what string) {
	switch n := len(s.Reveal()); {
	case n == 0:
		v.errorf(path, "required (%s, at least %d bytes; e.g. from the environment: \"${KEYGATE_KEY_SECRET}\")", what, MinSecretLen)
	case n < MinSecretLen:
		v.errorf(path, "too short: %d bytes, need at least %d", n, MinSecretLen)
	}
}

func (v *validator) admin(c *Config) {
	v.addr("admin.listen", c.Admin.Listen)
	if c.Admin.Listen != "" && c.Admin.Listen == c.Listen {
		v.errorf("admin.listen", "must differ from listen (%q)", c.Listen)
	}
	names := map[string]int{}
	for i, t := range c.Admin.Tokens {
		p := index("admin.tokens", i)
		switch {
		case t.Name == "":
			v.errorf(p+".name", "required")
		case hasControl(t.Name):
			v.errorf(p+".name", "must not contain control characters")
		default:
			if j, dup := names[t.Name]; dup {
				v.errorf(p+".name", "duplicate name %q (also admin.tokens[%d])", t.Name, j)
			} else {
				names[t.Name] = i
			}
		}
		if len(t.Token) == 0 {
			v.errorf(p+".token", "required (at least %d bytes)", MinSecretLen)
		} else if len(t.Token) < MinSecretLen {
			v.errorf(p+".token", "too short: %d bytes, need at least %d", len(t.Token), MinSecretLen)
		}
		for j := 0; j < i; j++ {
			if t.Token != "" && c.Admin.Tokens[j].Token == t.Token {
				v.errorf(p+".token", "same token as admin.tokens[%d] (each name needs its own token)", j)
				break
			}
		}
	}
}

func (v *validator) store(s *Store) {
	v.oneOf("store.driver", s.Driver, "sqlite", "postgres")
	switch s.Driver {
	case "sqlite":
		if s.SQLite.Path == "" {
			v.errorf("store.sqlite.path", "required when store.driver is sqlite")
		}
	case "postgres":
		if s.Postgres.URL == "" {
			v.errorf("store.postgres.url", "required when store.driver is postgres")
		}
	}
	if s.Postgres.MaxConns < 1 {
		v.errorf("store.postgres.max_conns", "must be at least 1, got %d", s.Postgres.MaxConns)
	}
	v.nonNegative("store.postgres.statement_timeout", s.Postgres.StatementTimeout)
	v.nonNegative("store.cache.ttl", s.Cache.TTL)
	v.nonNegative("store.cache.negative_ttl", s.Cache.NegativeTTL)
	v.nonNegative("store.cache.stale_ttl", s.Cache.StaleTTL)
	if s.Cache.MaxEntries <= 0 {
		v.errorf("store.cache.max_entries", "must be greater than 0, got %d", s.Cache.MaxEntries)
	}
	v.positive("store.usage_flush_interval", s.UsageFlushInterval)
}

func (v *validator) keys(k *Keys) {
	switch {
	case k.Prefix == "":
		v.errorf("keys.prefix", "required")
	case len(k.Prefix) > 16:
		v.errorf("keys.prefix", "at most 16 characters, got %d", len(k.Prefix))
	case !isName(k.Prefix):
		v.errorf("keys.prefix", "only letters, digits, _, . and - are allowed, got %q", k.Prefix)
	}
	v.secret("keys.secret", k.Secret, "the HMAC key for stored key hashes")
	for i, s := range k.PreviousSecrets {
		v.secret(index("keys.previous_secrets", i), s, "a former keys.secret")
	}
	if k.MaxPerPrincipal < 1 {
		v.errorf("keys.max_per_principal", "must be at least 1, got %d", k.MaxPerPrincipal)
	}
	v.nonNegative("keys.default_ttl", k.DefaultTTL)
	v.nonNegative("keys.max_ttl", k.MaxTTL)
	if k.DefaultTTL > 0 && k.MaxTTL > 0 && k.MaxTTL < k.DefaultTTL {
		v.errorf("keys.max_ttl", "must not be less than keys.default_ttl (%s), got %s", k.DefaultTTL, k.MaxTTL)
	}
}

func (v *validator) auth(a *Auth) {
	if strings.ContainsAny(a.Realm, `"\`) || hasControl(a.Realm) {
		v.errorf("auth.realm", `must not contain ", \ or control characters`)
	}
	v.header("auth.key_header", a.KeyHeader)
	if a.KeyQueryParam != "" && !isQueryName(a.KeyQueryParam) {
		v.errorf("auth.key_query_param", "only letters, digits, _, . , - and ~ are allowed, got %q", a.KeyQueryParam)
	}
	v.nonNegative("auth.basic_cache_ttl", a.BasicCacheTTL)
	if a.MaxConcurrentKDF < 0 {
		v.errorf("auth.max_concurrent_kdf", "must not be negative, got %d", a.MaxConcurrentKDF)
	}
}

func (v *validator) rateLimit(r *RateLimit) {
	v.oneOf("ratelimit.store", r.Store, "memory", "redis")
	v.oneOf("ratelimit.on_store_error", r.OnStoreError, "local", "allow", "deny")
	switch u := r.Redis.URL.Reveal(); {
	case u == "":
		if r.Store == "redis" {
			v.errorf("ratelimit.redis.url", "required when ratelimit.store is redis")
		}
	default:
		p, err := url.Parse(u)
		if err != nil {
			v.errorf("ratelimit.redis.url", "not a valid URL")
		} else if p.Scheme != "redis" && p.Scheme != "rediss" && p.Scheme != "unix" {
			v.errorf("ratelimit.redis.url", "scheme must be redis, rediss or unix, got %q", p.Scheme)
		}
	}
	v.positive("ratelimit.redis.timeout", r.Redis.Timeout)
	v.nonNegative("ratelimit.redis.dial_timeout", r.Redis.DialTimeout)
	if r.Redis.PoolSize < 0 {
		v.errorf("ratelimit.redis.pool_size", "must not be negative, got %d", r.Redis.PoolSize)
	}
}

// reservedHeaders are set or removed by keygate itself; an identity header may not
// take one of their names.
var reservedHeaders = []string{
	"Authorization", "Host", "Connection", "Upgrade", "Forwarded", "X-Forwarded-For",
	"X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-Ip", "X-Request-Id", "Cookie",
	"Content-Length", "Content-Type", "Transfer-Encoding", "Te", "Trailer",
}

func (v *validator) identityHeaders(c *Config) {
	h := c.IdentityHeaders
	fields := []struct{ path, name string }{
		{"identity_headers.principal", h.Principal},
		{"identity_headers.key_id", h.KeyID},
		{"identity_headers.key_name", h.KeyName},
		{"identity_headers.scopes", h.Scopes},
		{"identity_headers.method", h.Method},
	}
	seen := map[string]string{}
	for _, f := range fields {
		if !v.header(f.path, f.name) {
			continue
		}
		canon := canonicalHeader(f.name)
		for _, r := range reservedHeaders {
			if canon == canonicalHeader(r) {
				v.errorf(f.path, "%q is a header keygate sets or removes itself", f.name)
			}
		}
		if canon == canonicalHeader(c.Auth.KeyHeader) {
			v.errorf(f.path, "must differ from auth.key_header (%q)", c.Auth.KeyHeader)
		}
		if prev, dup := seen[canon]; dup {
			v.errorf(f.path, "same header as %s (%q); names are compared ignoring case and _ for -", prev, f.name)
			continue
		}
		seen[canon] = f.path
	}
}

// canonicalHeader folds case and "_" to "-", as upstreams that read headers CGI-style do.
func canonicalHeader(s string) string {
	return strings.ToLower(strings.ReplaceAll(s, "_", "-"))
}

// header checks that s is a non-empty HTTP header name (an RFC 9110 token).
func (v *validator) header(path, s string) bool {
	if s == "" {
		v.errorf(path, "required (a header name)")
		return false
	}
	if !isToken(s) {
		v.errorf(path, "not a valid header name: %q", s)
		return false
	}
	return true
}

func (v *validator) selfService(s *SelfService) {
	if s.Path == "" {
		if s.Enabled {
			v.errorf("self_service.path", "required when self_service.enabled is true")
		}
		return
	}
	v.urlPath("self_service.path", s.Path)
}

// urlPath checks a configured path (prefix): it starts with /, and holds no
// characters or segments that keygate's path check refuses in requests.
func (v *validator) urlPath(path, p string) {
	switch {
	case !strings.HasPrefix(p, "/"):
		v.errorf(path, "must start with /, got %q", p)
	case strings.ContainsAny(p, "?#\\ ") || hasControl(p):
		v.errorf(path, "must not contain ?, #, \\, spaces or control characters, got %q", p)
	case strings.Contains(p, "//"):
		v.errorf(path, "must not contain //, got %q", p)
	default:
		for _, seg := range strings.Split(p, "/") {
			if seg == "." || seg == ".." {
				v.errorf(path, "must not contain . or .. segments, got %q", p)
				return
			}
		}
		if strings.Contains(p, "%") {
			if _, err := url.PathUnescape(p); err != nil {
				v.errorf(path, "bad percent-encoding in %q", p)
			}
		}
	}
}

func (v *validator) routes(routes []Route) {
	names := map[string]int{}
	matches := map[string]int{}
	for i, r := range routes {
		p := index("routes", i)
		switch {
		case r.Name == "":
			v.errorf(p+".name", "required")
		case len(r.Name) > 64 || !isName(r.Name):
			v.errorf(p+".name", "1 to 64 letters, digits, _, . or -, got %q", r.Name)
		default:
			if j, dup := names[r.Name]; dup {
				v.errorf(p+".name", "duplicate route name %q (also routes[%d])", r.Name, j)
			} else {
				names[r.Name] = i
			}
		}
		if r.Match.PathPrefix == "" {
			v.errorf(p+".match.path_prefix", "required (e.g. \"/api/\")")
		} else {
			v.urlPath(p+".match.path_prefix", r.Match.PathPrefix)
		}
		for j, h := range r.Match.Hosts {
			if h == "" || strings.ContainsAny(h, "/?#@ ") || hasControl(h) {
				v.errorf(index(p+".match.hosts", j), "not a host name: %q", h)
			}
		}
		for j, m := range r.Match.Methods {
			if !isToken(m) || strings.ToUpper(m) != m {
				v.errorf(index(p+".match.methods", j), "must be an uppercase method name such as GET, got %q", m)
			}
		}
		key := matchKey(r.Match)
		if j, dup := matches[key]; dup && r.Match.PathPrefix != "" {
			v.errorf(p+".match", "same match as routes[%d]", j)
		} else {
			matches[key] = i
		}
		v.upstream(p+".upstream", r.Upstream)
		v.oneOf(p+".auth", r.Auth, "required", "optional", "none")
		for j, s := range r.Scopes {
			if s == "" || strings.ContainsAny(s, ", ") || hasControl(s) {
				v.errorf(index(p+".scopes", j), "must be non-empty without commas, spaces or control characters, got %q", s)
			}
		}
		v.positive(p+".timeout", r.Timeout)
	}
}

func matchKey(m Match) string {
	hosts := make([]string, len(m.Hosts))
	for i, h := range m.Hosts {
		hosts[i] = strings.ToLower(h)
	}
	methods := append([]string(nil), m.Methods...)
	sort.Strings(hosts)
	sort.Strings(methods)
	return m.PathPrefix + "\x00" + strings.Join(hosts, ",") + "\x00" + strings.Join(methods, ",")
}

func (v *validator) upstream(path string, u URL) {
	if u.URL == nil {
		v.errorf(path, "required (an http or https URL)")
		return
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		v.errorf(path, "scheme must be http or https, got %q", u.Scheme)
	case u.Host == "" || u.Hostname() == "":
		v.errorf(path, "must have a host, got %q", u.String())
	case u.Fragment != "" || u.RawFragment != "":
		v.errorf(path, "must not have a #fragment")
	}
}

// isName reports whether s is non-empty and only of [A-Za-z0-9_.-].
func isName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

func isQueryName(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '~' {
			continue
		}
		if !isName(s[i : i+1]) {
			return false
		}
	}
	return s != ""
}

// isToken reports whether s is an RFC 9110 token (a header name or method).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return true
		}
	}
	return false
}
