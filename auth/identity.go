package auth

import (
	"context"
	"slices"
	"time"

	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/keystore"
)

// Method is how a caller authenticated.
type Method uint8

// The methods of X-Auth-Method.
const (
	MethodAnonymous Method = iota
	MethodKey
	MethodBasic
)

// String returns the X-Auth-Method value: anonymous, key or basic.
func (m Method) String() string {
	switch m {
	case MethodKey:
		return "key"
	case MethodBasic:
		return "basic"
	}
	return "anonymous"
}

// Identity is who a request acts for. The zero value is an anonymous caller.
type Identity struct {
	Method Method
	// Entry is the key and its principal for MethodKey; nil otherwise. Shared: read only.
	Entry *keystore.Entry
	// RetryAfter, with ResultBlocked, is how long until the caller's failed-attempt
	// windows end (0: not known).
	RetryAfter time.Duration
}

// PrincipalID returns the principal's id, or "" for an anonymous caller.
func (id *Identity) PrincipalID() string {
	if id.Entry == nil {
		return ""
	}
	return id.Entry.Principal.ID
}

// KeyID returns the key's id, or "" when no key was used.
func (id *Identity) KeyID() string {
	if id.Method != MethodKey {
		return ""
	}
	return id.Entry.Key.ID
}

// KeyName returns the key's name, or "" when no key was used.
func (id *Identity) KeyName() string {
	if id.Method != MethodKey {
		return ""
	}
	return id.Entry.Key.Name
}

// Scopes returns the held scopes, sorted.
func (id *Identity) Scopes() []string {
	if id.Entry == nil {
		return nil
	}
	return id.Entry.Held
}

// ScopesHeader returns the held scopes joined with ",".
func (id *Identity) ScopesHeader() string {
	if id.Entry == nil {
		return ""
	}
	return id.Entry.HeldHeader
}

// HasScopes reports whether every scope in want is held.
func (id *Identity) HasScopes(want []string) bool {
	for _, s := range want {
		if !slices.Contains(id.Scopes(), s) {
			return false
		}
	}
	return true
}

type ctxKey struct{}

// NewContext returns ctx carrying id.
func NewContext(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the Identity of a request, or nil when it has none.
func FromContext(ctx context.Context) *Identity {
	id, _ := ctx.Value(ctxKey{}).(*Identity)
	return id
}

// KeyRates returns the key's own rate limits (MethodKey only).
func (id *Identity) KeyRates() config.Rates {
	if id.Method != MethodKey {
		return nil
	}
	return id.Entry.KeyRates
}

// PrincipalRates returns the principal's own rate limits.
func (id *Identity) PrincipalRates() config.Rates {
	if id.Entry == nil {
		return nil
	}
	return id.Entry.PrincipalRates
}
