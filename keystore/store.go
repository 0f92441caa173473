package keystore

import (
	"context"
	"time"
)

// Store persists principals and keys. Both backends (keystore/sqlite and
// keystore/postgres) satisfy it and keystore/storetest checks that they agree.
// Every method is safe for concurrent use.
type Store interface {
	// Migrate brings the schema to the current version.
	Migrate(ctx context.Context) error
	// Ready returns an error when the store cannot answer.
	Ready(ctx context.Context) error
	// Close releases the store.
	Close() error

	// CreatePrincipal stores p; ErrConflict when the id is taken, also by a deleted principal.
	// It sets CreatedAt and UpdatedAt.
	CreatePrincipal(ctx context.Context, p *Principal) error
	// GetPrincipal returns a principal; ErrNotFound when unknown or deleted.
	GetPrincipal(ctx context.Context, id string) (Principal, error)
	// ListPrincipals returns up to opts.Limit principals ordered by id, after opts.Cursor,
	// and the cursor of the next page ("" at the end). Deleted principals are not listed.
	ListPrincipals(ctx context.Context, opts ListOptions) ([]Principal, string, error)
	// UpdatePrincipal stores the changed fields of p (all but ID and CreatedAt) and sets
	// UpdatedAt. Disabling (DisabledAt set) revokes all its active keys in the same
	// transaction. ErrNotFound when unknown or deleted.
	UpdatePrincipal(ctx context.Context, p *Principal) error
	// DeletePrincipal revokes all its keys and marks it deleted, in one transaction.
	// ErrNotFound when unknown or already deleted.
	DeletePrincipal(ctx context.Context, id string) error

	// CreateKey stores k, which has ID, PrincipalID, Name, Prefix and Hash set, and sets
	// CreatedAt. It commits before it returns. ErrNotFound when the principal is unknown or
	// deleted; ErrDisabled when disabled; ErrTooManyKeys when the principal already holds
	// maxActive active keys (maxActive <= 0: no limit); ErrConflict on a duplicate hash.
	CreateKey(ctx context.Context, k *Key, maxActive int) error
	// GetKey returns a key by id, revoked or not; ErrNotFound when unknown.
	GetKey(ctx context.Context, id string) (Key, error)
	// ListKeys returns keys ordered by creation then id, after opts.Cursor, and the next
	// cursor. Only active keys unless opts.IncludeRevoked. principalID "" lists every
	// principal's keys; an unknown or deleted principal is ErrNotFound.
	ListKeys(ctx context.Context, principalID string, opts ListOptions) ([]Key, string, error)
	// RevokeKey sets RevokedAt and returns the key; ErrNotFound when unknown or already
	// revoked.
	RevokeKey(ctx context.Context, id string) (Key, error)
	// UpdateKey stores k's Name, Scopes, RateLimit, Metadata and ExpiresAt, records a
	// change, and fills k with the stored record. ErrNotFound when unknown or revoked;
	// ErrScopeNotHeld as CreateKey. An expired key may be given a new expiry.
	UpdateKey(ctx context.Context, k *Key) error
	// ImportKeys stores legacy keys (all with ID, PrincipalID, Name, Prefix, Hash set) in
	// one transaction, skipping those whose hash is already stored, and returns how many it
	// stored. It is not bound by the per-principal maximum. A principal that is unknown or
	// deleted (ErrNotFound) or disabled (ErrDisabled), scopes it does not hold
	// (ErrScopeNotHeld) or a key id in use (ErrConflict) fail the whole import, with the
	// principal's id in the error; then nothing is stored.
	ImportKeys(ctx context.Context, keys []Key) (int, error)

	// RecordUsage adds counted uses to keys: usage_count grows by Count, last_used_at
	// becomes the later of the stored one and LastUsed. Unknown keys are skipped.
	RecordUsage(ctx context.Context, u []Usage) error

	// ListAudit returns audit events, newest first, after opts.Cursor; principalID ""
	// lists all. A deleted principal's events stay listed; an unknown one has none.
	ListAudit(ctx context.Context, principalID string, opts ListOptions) ([]AuditEvent, string, error)

	// LookupKey returns the key with this hash and its principal, whatever their state
	// (revoked, expired, disabled: the caller decides). ErrNotFound when no key has it.
	LookupKey(ctx context.Context, h Hash) (Entry, error)
	// Rehash replaces a key's hash (secret rotation).
	Rehash(ctx context.Context, keyID string, h Hash) error

	// Watch calls fn for every change committed from now on, by this process or another
	// one, that can deny access, until ctx ends. The delay is at most about a second. It
	// returns nil when ctx ends and an error when it can no longer watch. A backend whose
	// notifications can be lost (PostgreSQL) calls fn with an empty Change each time it
	// starts listening, meaning "anything may have changed": the cache revalidates.
	Watch(ctx context.Context, fn func(Change)) error
}

// ListOptions pages a listing.
type ListOptions struct {
	// Limit is the page size; 0 means 100.
	Limit int
	// Cursor is the next_cursor of the previous page.
	Cursor string
	// IncludeRevoked lists revoked and expired keys too.
	IncludeRevoked bool
}

// Change names what changed: one key (KeyID set), or a principal and so all its keys
// (KeyID empty).
type Change struct {
	PrincipalID string
	KeyID       string
	At          time.Time
}

// Usage is the use of one key counted in memory since the last flush.
type Usage struct {
	KeyID    string
	Count    int64
	LastUsed time.Time
}

// AuditEvent is one recorded write. It never holds a secret.
type AuditEvent struct {
	ID          int64
	At          time.Time
	Actor       string // "admin:<token name>", "self:<principal id>", "cli"
	Action      string // principal.create|update|disable|enable|delete, key.create|update|revoke|import
	PrincipalID string
	KeyID       string // "" for principal events
	Detail      string // e.g. "imported 10000 keys"; never a secret
}

type actorKey struct{}

// WithActor returns ctx naming who makes the writes done with it; every Store write
// records an audit event with this actor in the same transaction ("" is "unknown").
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorFrom returns the actor of ctx, or "unknown".
func ActorFrom(ctx context.Context) string {
	if a, _ := ctx.Value(actorKey{}).(string); a != "" {
		return a
	}
	return "unknown"
}
