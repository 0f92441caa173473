package config

import (
	"time"
)

// Default returns the configuration used for every key a file leaves out: a single
// machine with no external service (SQLite store, memory rate limits), no routes, no
// admin tokens and no key secret (which Validate requires). Each call returns a
// fresh value that the caller may change.
func Default() Config {
	return Config{
		Listen:          ":8080",
		ShutdownTimeout: 15 * time.Second,
		Admin: Admin{
			Listen: "127.0.0.1:9090",
		},
		Store: Store{
			Driver: "sqlite",
			SQLite: SQLite{Path: "./data/keygate.db"},
			Postgres: Postgres{
				MaxConns:         10,
				StatementTimeout: 5 * time.Second,
			},
			Cache: Cache{
				TTL:         30 * time.Second,
				NegativeTTL: 5 * time.Second,
				StaleTTL:    10 * time.Minute,
				MaxEntries:  100000,
			},
			UsageFlushInterval: 10 * time.Second,
		},
		Keys: Keys{
			Prefix:          "kg_",
			MaxPerPrincipal: 10,
		},
		Auth: Auth{
			Realm:          "keygate",
			KeyHeader:      "X-API-Key",
			BasicCacheTTL:  5 * time.Minute,
			FailedAttempts: mustRates("10-M"),
		},
		RateLimit: RateLimit{
			Store: "memory",
			Redis: Redis{
				URL:         "redis://127.0.0.1:6379/0",
				Timeout:     50 * time.Millisecond,
				DialTimeout: 200 * time.Millisecond,
			},
			OnStoreError:  "local",
			Authenticated: mustRates("1000-M"),
			Anonymous:     mustRates("60-M"),
		},
		IdentityHeaders: IdentityHeaders{
			Principal: "X-Auth-Principal",
			KeyID:     "X-Auth-Key-Id",
			KeyName:   "X-Auth-Key-Name",
			Scopes:    "X-Auth-Scopes",
			Method:    "X-Auth-Method",
		},
		SelfService: SelfService{
			Enabled: true,
			Path:    "/keygate/v1/keys",
		},
		Log: Log{
			Level:  "info",
			Format: "json",
		},
	}
}

// DefaultRoute returns the values a route takes for the keys it leaves out: auth
// required, timeout 30s. Load applies them to every route of the file.
func DefaultRoute() Route {
	return Route{
		Auth:    "required",
		Timeout: 30 * time.Second,
	}
}

// mustRates parses built-in rates; a bad one is a programmer error.
func mustRates(ss ...string) Rates {
	r, err := ParseRates(ss)
	if err != nil {
		panic("config: bad built-in rate: " + err.Error())
	}
	return r
}
