package keystore

import "errors"

// Sentinel errors of every Store; callers use errors.Is.
var (
	// ErrNotFound: no such principal or key (a deleted principal, a revoked key on revoke).
	ErrNotFound = errors.New("keystore: not found")
	// ErrConflict: the principal id (or key hash) is taken.
	ErrConflict = errors.New("keystore: already exists")
	// ErrTooManyKeys: the principal holds keys.max_per_principal active keys.
	ErrTooManyKeys = errors.New("keystore: too many keys")
	// ErrScopeNotHeld: a key asks for a scope its principal does not hold.
	ErrScopeNotHeld = errors.New("keystore: scope not held by the principal")
	// ErrDisabled: the principal is disabled.
	ErrDisabled = errors.New("keystore: principal disabled")
	// ErrBadCursor: a listing cursor that no listing returned.
	ErrBadCursor = errors.New("keystore: bad cursor")
)
