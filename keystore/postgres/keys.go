package postgres

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate/keystore"
)

const keyCols = `k.id, k.principal_id, k.name, k.prefix, k.hash, k.scopes, k.rate_limit,
	k.metadata, k.created_at, k.expires_at, k.revoked_at, k.last_used_at, k.usage_count, k.legacy`

// keyColsBare is keyCols for statements without the "k" alias (RETURNING).
var keyColsBare = strings.ReplaceAll(keyCols, "k.", "")

// keyScan receives one row of keyCols; fill moves it into a Key.
type keyScan struct {
	k    keystore.Key
	hash []byte
}

func (ks *keyScan) dest() []any {
	k := &ks.k
	return []any{&k.ID, &k.PrincipalID, &k.Name, &k.Prefix, &ks.hash, &k.Scopes, &k.RateLimit,
		&k.Metadata, &k.CreatedAt, &k.ExpiresAt, &k.RevokedAt, &k.LastUsedAt, &k.UsageCount, &k.Legacy}
}

func (ks *keyScan) fill() (keystore.Key, error) {
	k := ks.k
	if len(ks.hash) != len(k.Hash) {
		return keystore.Key{}, errors.New("key " + k.ID + ": stored hash has the wrong length")
	}
	copy(k.Hash[:], ks.hash)
	k.Scopes = nilIfEmpty(k.Scopes)
	k.RateLimit = nilIfEmpty(k.RateLimit)
	k.Metadata = nilIfEmptyMap(k.Metadata)
	return k, nil
}

func scanKey(row pgx.Row) (keystore.Key, error) {
	var ks keyScan
	if err := row.Scan(ks.dest()...); err != nil {
		return keystore.Key{}, err
	}
	return ks.fill()
}

// heldScopes checks that every scope of a key is one the principal holds.
func heldScopes(keyScopes, held []string) error {
	for _, sc := range keyScopes {
		if !slices.Contains(held, sc) {
			return keystore.ErrScopeNotHeld
		}
	}
	return nil
}

// CreateKey stores k and sets k.CreatedAt; see keystore.Store. The principal's row is
// locked (SELECT ... FOR UPDATE) before its active keys are counted, so concurrent creates,
// from any instance, never pass maxActive.
func (s *Store) CreateKey(ctx context.Context, k *keystore.Key, maxActive int) error {
	if k.ID == "" || k.PrincipalID == "" || k.Hash == (keystore.Hash{}) {
		return wrap("create key", errors.New("key id, principal id and hash are required"))
	}
	if !validUUID(k.ID) {
		return wrap("create key", errors.New("key id is not a UUID"))
	}
	now := s.nowUTC()
	expires, revoked, lastUsed := usecPtr(k.ExpiresAt), usecPtr(k.RevokedAt), usecPtr(k.LastUsedAt)
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var (
			held              []string
			disabled, deleted bool
		)
		err := tx.QueryRow(ctx, `SELECT scopes, disabled_at IS NOT NULL, deleted_at IS NOT NULL
			FROM principals WHERE id = $1 FOR UPDATE`, k.PrincipalID).Scan(&held, &disabled, &deleted)
		if errors.Is(err, pgx.ErrNoRows) || err == nil && deleted {
			return keystore.ErrNotFound
		}
		if err != nil {
			return err
		}
		if disabled {
			return keystore.ErrDisabled
		}
		if err := heldScopes(k.Scopes, held); err != nil {
			return err
		}
		if maxActive > 0 {
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM keys WHERE principal_id = $1
				AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)`,
				k.PrincipalID, now).Scan(&n); err != nil {
				return err
			}
			if n >= maxActive {
				return keystore.ErrTooManyKeys
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO keys (id, principal_id, name, prefix, hash, scopes,
			rate_limit, metadata, created_at, expires_at, revoked_at, last_used_at, usage_count,
			legacy) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
			k.ID, k.PrincipalID, k.Name, k.Prefix, k.Hash[:], list(k.Scopes), list(k.RateLimit),
			dict(k.Metadata), now, expires, revoked, lastUsed, k.UsageCount, k.Legacy)
		if isUniqueViolation(err) {
			return keystore.ErrConflict
		}
		if err != nil {
			return err
		}
		return audit(ctx, tx, now, "key.create", k.PrincipalID, k.ID, "")
	})
	if err != nil {
		return wrap("create key", err)
	}
	k.CreatedAt, k.ExpiresAt, k.RevokedAt, k.LastUsedAt = now, expires, revoked, lastUsed
	return nil
}

// GetKey returns a key by id, revoked or not; ErrNotFound when unknown (or not a UUID).
func (s *Store) GetKey(ctx context.Context, id string) (keystore.Key, error) {
	if !validUUID(id) {
		return keystore.Key{}, keystore.ErrNotFound
	}
	k, err := scanKey(s.pool.QueryRow(ctx, "SELECT "+keyCols+" FROM keys k WHERE k.id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return keystore.Key{}, keystore.ErrNotFound
	}
	if err != nil {
		return keystore.Key{}, wrap("get key", err)
	}
	return k, nil
}

// ListKeys returns keys ordered by creation time then id, after opts.Cursor, and the next
// cursor ("" at the end). Only active keys (not revoked, not expired now) unless
// opts.IncludeRevoked. principalID "" lists every principal's keys; an unknown or deleted
// principal is ErrNotFound. A cursor no listing returned wraps keystore.ErrBadCursor.
func (s *Store) ListKeys(ctx context.Context, principalID string, opts keystore.ListOptions) ([]keystore.Key, string, error) {
	limit := pageLimit(opts.Limit)
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if opts.Cursor != "" {
		at, id, err := decKeyCursor(opts.Cursor)
		if err != nil {
			return nil, "", badCursor("list keys")
		}
		where = append(where, "(k.created_at, k.id) > ("+arg(at)+", "+arg(id)+"::uuid)")
	}
	if principalID != "" {
		if _, err := s.GetPrincipal(ctx, principalID); err != nil {
			return nil, "", err
		}
		where = append(where, "k.principal_id = "+arg(principalID))
	}
	if !opts.IncludeRevoked {
		where = append(where, "k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > "+arg(s.nowUTC())+")")
	}
	q := "SELECT " + keyCols + " FROM keys k"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY k.created_at, k.id LIMIT " + arg(limit+1)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", wrap("list keys", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (keystore.Key, error) {
		return scanKey(r)
	})
	if err != nil {
		return nil, "", wrap("list keys", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = keyCursor(out[limit-1])
	}
	return out, next, nil
}

// RevokeKey sets RevokedAt, sends a change and returns the key; ErrNotFound when unknown
// or already revoked.
func (s *Store) RevokeKey(ctx context.Context, id string) (keystore.Key, error) {
	if !validUUID(id) {
		return keystore.Key{}, keystore.ErrNotFound
	}
	now := s.nowUTC()
	var k keystore.Key
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		k, err = scanKey(tx.QueryRow(ctx, "UPDATE keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL RETURNING "+keyColsBare,
			id, now))
		if errors.Is(err, pgx.ErrNoRows) {
			return keystore.ErrNotFound
		}
		if err != nil {
			return err
		}
		if err := notify(ctx, tx, k.PrincipalID, k.ID); err != nil {
			return err
		}
		return audit(ctx, tx, now, "key.revoke", k.PrincipalID, k.ID, "")
	})
	if err != nil {
		return keystore.Key{}, wrap("revoke key", err)
	}
	return k, nil
}

// UpdateKey stores k's Name, Scopes, RateLimit, Metadata and ExpiresAt, sends a change and
// sets every field of k from the stored record. ErrNotFound when the key is unknown or
// revoked, or when k.PrincipalID is set and is not the key's principal; ErrScopeNotHeld
// when k.Scopes asks for a scope its principal does not hold. Expired keys may be updated
// (a new ExpiresAt brings one back).
func (s *Store) UpdateKey(ctx context.Context, k *keystore.Key) error {
	if !validUUID(k.ID) {
		return keystore.ErrNotFound
	}
	now := s.nowUTC()
	var got keystore.Key
	err := s.tx(ctx, func(tx pgx.Tx) error {
		// Lock the principal before the key, as every other writer does.
		var (
			principalID string
			held        []string
		)
		err := tx.QueryRow(ctx, `SELECT p.id, p.scopes FROM principals p
			WHERE p.id = (SELECT principal_id FROM keys WHERE id = $1) FOR SHARE`, k.ID).Scan(&principalID, &held)
		if errors.Is(err, pgx.ErrNoRows) {
			return keystore.ErrNotFound
		}
		if err != nil {
			return err
		}
		if k.PrincipalID != "" && k.PrincipalID != principalID {
			return keystore.ErrNotFound
		}
		if err := heldScopes(k.Scopes, held); err != nil {
			return err
		}
		got, err = scanKey(tx.QueryRow(ctx, `UPDATE keys SET name = $2, scopes = $3,
			rate_limit = $4, metadata = $5, expires_at = $6
			WHERE id = $1 AND revoked_at IS NULL RETURNING `+keyColsBare,
			k.ID, k.Name, list(k.Scopes), list(k.RateLimit), dict(k.Metadata), usecPtr(k.ExpiresAt)))
		if errors.Is(err, pgx.ErrNoRows) {
			return keystore.ErrNotFound
		}
		if err != nil {
			return err
		}
		if err := notify(ctx, tx, got.PrincipalID, got.ID); err != nil {
			return err
		}
		return audit(ctx, tx, now, "key.update", got.PrincipalID, got.ID, "")
	})
	if err != nil {
		return wrap("update key", err)
	}
	*k = got
	return nil
}

// LookupKey returns the key with hash h and its principal, whatever their state (a deleted
// principal's keys are all revoked), in one query. ErrNotFound when no key has it.
func (s *Store) LookupKey(ctx context.Context, h keystore.Hash) (keystore.Entry, error) {
	var (
		e  keystore.Entry
		ks keyScan
	)
	err := s.pool.QueryRow(ctx, "SELECT "+keyCols+", "+principalCols+
		" FROM keys k JOIN principals p ON p.id = k.principal_id WHERE k.hash = $1", h[:]).
		Scan(append(ks.dest(), principalDest(&e.Principal)...)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return keystore.Entry{}, keystore.ErrNotFound
	}
	if err == nil {
		e.Key, err = ks.fill()
	}
	if err != nil {
		return keystore.Entry{}, wrap("lookup key", err)
	}
	tidyPrincipal(&e.Principal)
	return e, nil
}

// Rehash replaces a key's hash (secret rotation). ErrNotFound when the key is unknown;
// ErrConflict when another key has h.
func (s *Store) Rehash(ctx context.Context, keyID string, h keystore.Hash) error {
	if h == (keystore.Hash{}) {
		return wrap("rehash", errors.New("hash is required"))
	}
	if !validUUID(keyID) {
		return keystore.ErrNotFound
	}
	tag, err := s.pool.Exec(ctx, "UPDATE keys SET hash = $2 WHERE id = $1", keyID, h[:])
	if isUniqueViolation(err) {
		return keystore.ErrConflict
	}
	if err != nil {
		return wrap("rehash", err)
	}
	if tag.RowsAffected() == 0 {
		return keystore.ErrNotFound
	}
	return nil
}
