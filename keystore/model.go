package keystore

import (
	"slices"
	"time"

	"github.com/keygate/keygate/config"
)

// Principal is the client account that API keys act for.
type Principal struct {
	// ID is caller-chosen: 1–64 of [a-zA-Z0-9._-].
	ID          string
	DisplayName string
	// PasswordHash is an argon2id or bcrypt hash; empty when the principal has no password.
	PasswordHash string
	Scopes       []string
	// RateLimit holds rate strings ("100-M"); empty means none of its own.
	RateLimit  []string
	Metadata   map[string]string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	DisabledAt *time.Time
}

// Disabled reports whether the principal is disabled.
func (p *Principal) Disabled() bool { return p.DisabledAt != nil }

// Key is one API key of a principal. The plaintext is never part of it.
type Key struct {
	ID          string // UUID
	PrincipalID string
	Name        string
	// Prefix is the configured key prefix plus the first 8 characters after it.
	Prefix string
	// Hash is HMAC-SHA256(keys.secret, key); never shown.
	Hash       Hash
	Scopes     []string
	RateLimit  []string
	Metadata   map[string]string
	CreatedAt  time.Time
	ExpiresAt  *time.Time
	RevokedAt  *time.Time
	LastUsedAt *time.Time
	UsageCount int64
	Legacy     bool
}

// Active reports whether the key is neither revoked nor expired at now.
func (k *Key) Active(now time.Time) bool {
	return k.RevokedAt == nil && (k.ExpiresAt == nil || now.Before(*k.ExpiresAt))
}

// Entry is what a lookup by hash returns: the key and its principal.
type Entry struct {
	Key       Key
	Principal Principal
	// Held and HeldHeader are the scopes the key holds (EffectiveScopes), sorted, and
	// joined with ","; set by the Cache when it loads an entry.
	Held       []string
	HeldHeader string
	// KeyRates and PrincipalRates are Key.RateLimit and Principal.RateLimit parsed; set by
	// the Cache when it loads an entry.
	KeyRates, PrincipalRates config.Rates
}

// EffectiveScopes returns the scopes a request authenticated with this key holds: the
// principal's, narrowed by the key's own when it has any. The result is sorted.
func (e *Entry) EffectiveScopes() []string {
	if len(e.Key.Scopes) == 0 {
		s := slices.Clone(e.Principal.Scopes)
		slices.Sort(s)
		return s
	}
	var s []string
	for _, sc := range e.Key.Scopes {
		if slices.Contains(e.Principal.Scopes, sc) {
			s = append(s, sc)
		}
	}
	slices.Sort(s)
	return s
}
