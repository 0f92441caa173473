package config

import "time"

// Config is the whole keygate configuration file. Default returns the values used
// for every key the file leaves out.
type Config struct {
	// Listen is the public listener's address. Default: ":8080".
	Listen string `yaml:"listen"`
	// ShutdownTimeout bounds how long in-flight requests may drain on SIGINT/SIGTERM.
	// Default: 15s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// Admin is the admin listener.
	Admin Admin `yaml:"admin"`
	// Store is where principals and keys live.
	Store Store `yaml:"store"`
	// Keys is the key format, hashing secret and key limits.
	Keys Keys `yaml:"keys"`
	// Auth is how credentials are read and checked.
	Auth Auth `yaml:"auth"`
	// RateLimit is the rate limiter.
	RateLimit RateLimit `yaml:"ratelimit"`
	// TrustedProxies are the CIDRs whose X-Forwarded-* headers are believed; a bare
	// address is a single-address CIDR. Default: none.
	TrustedProxies Prefixes `yaml:"trusted_proxies"`
	// IdentityHeaders are the names of the headers sent upstream.
	IdentityHeaders IdentityHeaders `yaml:"identity_headers"`
	// SelfService is the principals' own key management on the public listener.
	SelfService SelfService `yaml:"self_service"`
	// Routes are matched by path prefix, longest first.
	Routes []Route `yaml:"routes"`
	// Log is the process log.
	Log Log `yaml:"log"`
}

// Admin is the admin listener.
type Admin struct {
	// Listen is the admin listener's address. Default: "127.0.0.1:9090".
	Listen string `yaml:"listen"`
	// Tokens are the bearer tokens accepted under /v1/, each at least 32 bytes. A bare
	// string is named token-1, token-2, ... by position. Default: none (the /v1/ API
	// answers 401 to everyone).
	Tokens []AdminToken `yaml:"tokens"`
}

// AdminToken is one named admin token.
type AdminToken struct {
	// Name goes to the audit log.
	Name string `yaml:"name"`
	// Token is the secret itself.
	Token Secret `yaml:"token"`
}

// Store is where principals and keys live.
type Store struct {
	// Driver is sqlite or postgres. Default: sqlite.
	Driver string `yaml:"driver"`
	// SQLite is the embedded store.
	SQLite SQLite `yaml:"sqlite"`
	// Postgres is the shared store.
	Postgres Postgres `yaml:"postgres"`
	// Cache is the in-process cache of verified keys.
	Cache Cache `yaml:"cache"`
	// UsageFlushInterval is how often last_used_at and usage_count are written. Default: 10s.
	UsageFlushInterval time.Duration `yaml:"usage_flush_interval"`
}

// SQLite is the embedded store.
type SQLite struct {
	// Path is the database file. Default: "./data/keygate.db".
	Path string `yaml:"path"`
}

// Postgres is the PostgreSQL store.
type Postgres struct {
	// URL is the connection string. Default: "".
	URL Secret `yaml:"url"`
	// MaxConns is the pool size. Default: 10.
	MaxConns int `yaml:"max_conns"`
	// StatementTimeout bounds every statement. Default: 5s.
	StatementTimeout time.Duration `yaml:"statement_timeout"`
}

// Cache is the in-process cache of verified keys.
type Cache struct {
	// TTL is how long a verified key is trusted without asking the store. Default: 30s.
	TTL time.Duration `yaml:"ttl"`
	// NegativeTTL is how long an unknown key is remembered as unknown. Default: 5s.
	NegativeTTL time.Duration `yaml:"negative_ttl"`
	// StaleTTL is how long a cached key keeps working while the store is unreachable.
	// Default: 10m.
	StaleTTL time.Duration `yaml:"stale_ttl"`
	// MaxEntries bounds the cache, and separately the negative cache. Default: 100000.
	MaxEntries int `yaml:"max_entries"`
}

// Keys is the key format, hashing secret and key limits.
type Keys struct {
	// Prefix starts every generated key. Default: "kg_".
	Prefix string `yaml:"prefix"`
	// Secret is the HMAC-SHA256 key for stored key hashes, at least 32 bytes. Required.
	Secret Secret `yaml:"secret"`
	// PreviousSecrets are tried after Secret; a hit is re-hashed under Secret. Default: none.
	PreviousSecrets []Secret `yaml:"previous_secrets"`
	// MaxPerPrincipal is the most active keys a principal may hold. Default: 10.
	MaxPerPrincipal int `yaml:"max_per_principal"`
	// DefaultTTL is the lifetime of a key created without one; 0 means no expiry. Default: 0s.
	DefaultTTL time.Duration `yaml:"default_ttl"`
	// MaxTTL is the longest lifetime a key may be given; 0 means no maximum. Default: 0s.
	MaxTTL time.Duration `yaml:"max_ttl"`
	// AcceptLegacy makes values without the prefix be looked up as imported keys.
	// Default: false.
	AcceptLegacy bool `yaml:"accept_legacy"`
}

// Auth is how credentials are read and checked.
type Auth struct {
	// Realm is sent in WWW-Authenticate on a 401. Default: "keygate".
	Realm string `yaml:"realm"`
	// KeyHeader is the header that carries a key. Default: "X-API-Key".
	KeyHeader string `yaml:"key_header"`
	// KeyQueryParam is the query parameter that carries a key; empty turns it off.
	// Default: "".
	KeyQueryParam string `yaml:"key_query_param"`
	// BasicCacheTTL is how long a successful id:password check is cached. Default: 5m.
	BasicCacheTTL time.Duration `yaml:"basic_cache_ttl"`
	// FailedAttempts limits failed authentications per client IP. Default: "10-M".
	FailedAttempts Rates `yaml:"failed_attempts"`
	// MaxConcurrentKDF bounds concurrent password checks; 0 means twice the CPUs. Default: 0.
	MaxConcurrentKDF int `yaml:"max_concurrent_kdf"`
}

// RateLimit is the rate limiter.
type RateLimit struct {
	// Store is memory or redis. Default: memory.
	Store string `yaml:"store"`
	// Redis is the shared store.
	Redis Redis `yaml:"redis"`
	// OnStoreError is local, allow or deny. Default: local.
	OnStoreError string `yaml:"on_store_error"`
	// DraftHeaders adds the IETF draft RateLimit-Policy and RateLimit fields. Default: false.
	DraftHeaders bool `yaml:"draft_headers"`
	// Authenticated applies to callers whose key and principal set no rate. Default: "1000-M".
	Authenticated Rates `yaml:"authenticated"`
	// Anonymous applies per client IP to anonymous callers on optional routes. Default: "60-M".
	Anonymous Rates `yaml:"anonymous"`
}

// Redis is the rate limiter's shared store.
type Redis struct {
	// URL is the Redis URL. Default: "redis://127.0.0.1:6379/0".
	URL Secret `yaml:"url"`
	// Timeout bounds one request's whole rate-limit decision. Default: 50ms.
	Timeout time.Duration `yaml:"timeout"`
	// PoolSize is the connection pool size. Default: 0 (go-redis: 10 per CPU).
	PoolSize int `yaml:"pool_size"`
	// DialTimeout bounds a new connection. Default: 200ms.
	DialTimeout time.Duration `yaml:"dial_timeout"`
}

// IdentityHeaders are the names of the headers sent upstream.
type IdentityHeaders struct {
	// Principal carries the principal id. Default: "X-Auth-Principal".
	Principal string `yaml:"principal"`
	// KeyID carries the key id. Default: "X-Auth-Key-Id".
	KeyID string `yaml:"key_id"`
	// KeyName carries the key name. Default: "X-Auth-Key-Name".
	KeyName string `yaml:"key_name"`
	// Scopes carries the scopes, comma-separated and sorted. Default: "X-Auth-Scopes".
	Scopes string `yaml:"scopes"`
	// Method carries key, basic or anonymous. Default: "X-Auth-Method".
	Method string `yaml:"method"`
}

// SelfService is the principals' own key management on the public listener.
type SelfService struct {
	// Enabled turns it on. Default: true.
	Enabled bool `yaml:"enabled"`
	// Path is where it is served. Default: "/keygate/v1/keys".
	Path string `yaml:"path"`
}

// Route is one upstream and how requests to it are authenticated.
type Route struct {
	// Name labels metrics and logs; required and unique.
	Name string `yaml:"name"`
	// Match selects requests.
	Match Match `yaml:"match"`
	// Upstream is the http or https URL requests are forwarded to. Required.
	Upstream URL `yaml:"upstream"`
	// StripPrefix removes Match.PathPrefix before forwarding. Default: false.
	StripPrefix bool `yaml:"strip_prefix"`
	// Auth is required, optional or none. Default: required.
	Auth string `yaml:"auth"`
	// Scopes must all be held by the caller, else 403. Default: none.
	Scopes []string `yaml:"scopes"`
	// RateLimit applies per caller on this route. Default: none.
	RateLimit Rates `yaml:"rate_limit"`
	// AnonymousRateLimit applies per client IP on this route. Default: none.
	AnonymousRateLimit Rates `yaml:"anonymous_rate_limit"`
	// ForwardCredentials keeps the credential headers when forwarding. Default: false.
	ForwardCredentials bool `yaml:"forward_credentials"`
	// PreserveHost sends the client's Host upstream instead of the upstream's. Default: false.
	PreserveHost bool `yaml:"preserve_host"`
	// Timeout bounds the wait for the upstream's response headers. Default: 30s.
	Timeout time.Duration `yaml:"timeout"`
}

// Match selects the requests of a route.
type Match struct {
	// PathPrefix is the path prefix; the longest matching prefix wins. Required.
	PathPrefix string `yaml:"path_prefix"`
	// Hosts, when set, limit the route to these hosts (case-insensitive, port ignored).
	Hosts []string `yaml:"hosts"`
	// Methods, when set, limit the route to these methods.
	Methods []string `yaml:"methods"`
}

// Log is the process log.
type Log struct {
	// Level is debug, info, warn or error. Default: info.
	Level string `yaml:"level"`
	// Format is json or text. Default: json.
	Format string `yaml:"format"`
}
