package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/keygate/keygate/keystore"
)

const keyCols = `k.id, k.principal_id, k.name, k.prefix, k.hash, k.scopes, k.rate_limit,
	k.metadata, k.created_at, k.expires_at, k.revoked_at, k.last_used_at, k.usage_count, k.legacy`

// keyColsBare is keyCols for statements without the "k" alias (RETURNING).
var keyColsBare = strings.ReplaceAll(keyCols, "k.", "")

func scanKey(r scanner, extra ...any) (keystore.Key, error) {
	var (
		k                          keystore.Key
		hash                       []byte
		scopes, rate, meta         string
		created                    string
		expires, revoked, lastUsed sql.NullString
	)
	dest := append([]any{&k.ID, &k.PrincipalID, &k.Name, &k.Prefix, &hash, &scopes, &rate,
		&meta, &created, &expires, &revoked, &lastUsed, &k.UsageCount, &k.Legacy}, extra...)
	if err := r.Scan(dest...); err != nil {
		return k, err
	}
	if len(hash) != len(k.Hash) {
		return k, fmt.Errorf("key %s: stored hash has %d bytes", k.ID, len(hash))
	}
	copy(k.Hash[:], hash)
	var err error
	if k.Scopes, k.RateLimit, k.Metadata, err = decLists(scopes, rate, meta); err != nil {
		return k, err
	}
	if k.CreatedAt, err = parseTime(created); err != nil {
		return k, err
	}
	if k.ExpiresAt, err = parseTimePtr(expires); err != nil {
		return k, err
	}
	if k.RevokedAt, err = parseTimePtr(revoked); err != nil {
		return k, err
	}
	if k.LastUsedAt, err = parseTimePtr(lastUsed); err != nil {
		return k, err
	}
	return k, nil
}

// CreateKey stores k, sets k.CreatedAt and records a key.create audit event; see
// keystore.Store. The principal's state, the scope check, the count of active keys and the
// insert share one BEGIN IMMEDIATE transaction, so concurrent creates never pass maxActive.
func (s *Store) CreateKey(ctx context.Context, k *keystore.Key, maxActive int) error {
	if k.ID == "" || k.PrincipalID == "" || k.Hash == (keystore.Hash{}) {
		return s.wrap("create key", errors.New("key id, principal id and hash are required"))
	}
	for name, t := range map[string]*time.Time{"expires_at": k.ExpiresAt,
		"revoked_at": k.RevokedAt, "last_used_at": k.LastUsedAt} {
		if err := checkTime(name, t); err != nil {
			return s.wrap("create key", err)
		}
	}
	now := s.nowUTC()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var (
			scopes            string
			disabled, deleted sql.NullString
		)
		err := tx.QueryRowContext(ctx,
			"SELECT scopes, disabled_at, deleted_at FROM principals WHERE id = ?",
			k.PrincipalID).Scan(&scopes, &disabled, &deleted)
		if errors.Is(err, sql.ErrNoRows) || err == nil && deleted.Valid {
			return keystore.ErrNotFound
		}
		if err != nil {
			return err
		}
		if disabled.Valid {
			return keystore.ErrDisabled
		}
		if err := checkHeld(scopes, k.Scopes); err != nil {
			return err
		}
		if maxActive > 0 {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM keys WHERE principal_id = ?
				AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)`,
				k.PrincipalID, fmtTime(now)).Scan(&n); err != nil {
				return err
			}
			if n >= maxActive {
				return keystore.ErrTooManyKeys
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO keys (id, principal_id, name, prefix, hash,
			scopes, rate_limit, metadata, created_at, expires_at, revoked_at, last_used_at,
			usage_count, legacy) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			k.ID, k.PrincipalID, k.Name, k.Prefix, k.Hash[:], encList(k.Scopes),
			encList(k.RateLimit), encMap(k.Metadata), fmtTime(now), fmtTimePtr(k.ExpiresAt),
			fmtTimePtr(k.RevokedAt), fmtTimePtr(k.LastUsedAt), k.UsageCount, k.Legacy)
		if isUniqueViolation(err) {
			return keystore.ErrConflict
		}
		if err != nil {
			return err
		}
		return addAudit(ctx, tx, fmtTime(now), actKeyCreate, k.PrincipalID, k.ID, "")
	})
	if err != nil {
		return s.wrap("create key", err)
	}
	k.CreatedAt = now
	return nil
}

// GetKey returns a key by id, revoked or not; ErrNotFound when unknown.
func (s *Store) GetKey(ctx context.Context, id string) (keystore.Key, error) {
	k, err := scanKey(s.db.QueryRowContext(ctx, "SELECT "+keyCols+" FROM keys k WHERE k.id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return keystore.Key{}, keystore.ErrNotFound
	}
	if err != nil {
		return keystore.Key{}, s.wrap("get key", err)
	}
	return k, nil
}

// ListKeys returns keys ordered by creation time then id, after opts.Cursor, and the next
// cursor ("" at the end). Only active keys (not revoked, not expired now) unless
// opts.IncludeRevoked. principalID "" lists every principal's keys; an unknown or deleted
// principal is ErrNotFound.
func (s *Store) ListKeys(ctx context.Context, principalID string, opts keystore.ListOptions) ([]keystore.Key, string, error) {
	limit := pageLimit(opts.Limit)
	var (
		where []string
		args  []any
	)
	if principalID != "" {
		if _, err := s.GetPrincipal(ctx, principalID); err != nil {
			return nil, "", err
		}
		where = append(where, "k.principal_id = ?")
		args = append(args, principalID)
	}
	if !opts.IncludeRevoked {
		where = append(where, "k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > ?)")
		args = append(args, fmtTime(s.nowUTC()))
	}
	if opts.Cursor != "" {
		parts, err := decCursor(opts.Cursor, 2)
		if err == nil {
			_, err = parseTime(parts[0])
		}
		if err != nil {
			return nil, "", s.wrap("list keys", keystore.ErrBadCursor)
		}
		where = append(where, "(k.created_at, k.id) > (?, ?)")
		args = append(args, parts[0], parts[1])
	}
	q := "SELECT " + keyCols + " FROM keys k"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY k.created_at, k.id LIMIT ?"
	args = append(args, limit+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", s.wrap("list keys", err)
	}
	out, err := scanAll(rows, func(r scanner) (keystore.Key, error) { return scanKey(r) })
	if err != nil {
		return nil, "", s.wrap("list keys", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = encCursor(fmtTime(last.CreatedAt), last.ID)
	}
	return out, next, nil
}

// RevokeKey sets RevokedAt, records a change and a key.revoke audit event and returns the
// key; ErrNotFound when unknown or already revoked.
func (s *Store) RevokeKey(ctx context.Context, id string) (keystore.Key, error) {
	now := s.nowUTC()
	var k keystore.Key
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		k, err = scanKey(tx.QueryRowContext(ctx, "UPDATE keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING "+keyColsBare,
			fmtTime(now), id))
		if errors.Is(err, sql.ErrNoRows) {
			return keystore.ErrNotFound
		}
		if err != nil {
			return err
		}
		if err := addChange(ctx, tx, k.PrincipalID, k.ID, now); err != nil {
			return err
		}
		return addAudit(ctx, tx, fmtTime(now), actKeyRevoke, k.PrincipalID, k.ID, "")
	})
	if err != nil {
		return keystore.Key{}, s.wrap("revoke key", err)
	}
	return k, nil
}

// UpdateKey stores k's Name, Scopes, RateLimit, Metadata and ExpiresAt (nil: never
// expires), records a change (so caches drop the key) and a key.update audit event naming
// the changed fields, in one transaction, and then sets *k to the stored key.
// ErrNotFound when the key is unknown or revoked; ErrScopeNotHeld when k.Scopes is not a
// subset of its principal's. Expired keys can be updated (a new ExpiresAt revives one).
func (s *Store) UpdateKey(ctx context.Context, k *keystore.Key) error {
	if err := checkTime("expires_at", k.ExpiresAt); err != nil {
		return s.wrap("update key", err)
	}
	now := s.nowUTC()
	var stored keystore.Key
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var pScopes string
		old, err := scanKey(tx.QueryRowContext(ctx, "SELECT "+keyCols+`, p.scopes
			FROM keys k JOIN principals p ON p.id = k.principal_id
			WHERE k.id = ? AND k.revoked_at IS NULL AND p.deleted_at IS NULL`, k.ID), &pScopes)
		if errors.Is(err, sql.ErrNoRows) {
			return keystore.ErrNotFound
		}
		if err != nil {
			return err
		}
		if err := checkHeld(pScopes, k.Scopes); err != nil {
			return err
		}
		stored, err = scanKey(tx.QueryRowContext(ctx, `UPDATE keys SET name = ?, scopes = ?,
			rate_limit = ?, metadata = ?, expires_at = ? WHERE id = ? RETURNING `+keyColsBare,
			k.Name, encList(k.Scopes), encList(k.RateLimit), encMap(k.Metadata),
			fmtTimePtr(k.ExpiresAt), k.ID))
		if err != nil {
			return err
		}
		if err := addChange(ctx, tx, stored.PrincipalID, stored.ID, now); err != nil {
			return err
		}
		return addAudit(ctx, tx, fmtTime(now), actKeyUpdate, stored.PrincipalID, stored.ID,
			changedDetail(keyChanges(old, stored)))
	})
	if err != nil {
		return s.wrap("update key", err)
	}
	*k = stored
	return nil
}

// checkHeld returns ErrScopeNotHeld unless every scope of want is in held, a principal's
// stored scopes column.
func checkHeld(held string, want []string) error {
	scopes, err := decList(held)
	if err != nil {
		return err
	}
	for _, sc := range want {
		if !slices.Contains(scopes, sc) {
			return keystore.ErrScopeNotHeld
		}
	}
	return nil
}

// keyChanges names the fields UpdateKey may change that differ between a and b.
func keyChanges(a, b keystore.Key) []string {
	var f []string
	if a.Name != b.Name {
		f = append(f, "name")
	}
	if !sameList(a.Scopes, b.Scopes) {
		f = append(f, "scopes")
	}
	if !sameList(a.RateLimit, b.RateLimit) {
		f = append(f, "rate_limit")
	}
	if !maps.Equal(a.Metadata, b.Metadata) {
		f = append(f, "metadata")
	}
	if !sameTimePtr(a.ExpiresAt, b.ExpiresAt) {
		f = append(f, "expires_at")
	}
	return f
}

// LookupKey returns the key with hash h and its principal, whatever their state (a deleted
// principal's keys are all revoked). ErrNotFound when no key has it.
func (s *Store) LookupKey(ctx context.Context, h keystore.Hash) (keystore.Entry, error) {
	var (
		e                     keystore.Entry
		pScopes, pRate, pMeta string
		pCreated, pUpdated    string
		pDisabled             sql.NullString
	)
	k, err := scanKey(s.db.QueryRowContext(ctx, "SELECT "+keyCols+`,
		p.id, p.display_name, p.password_hash, p.scopes, p.rate_limit, p.metadata,
		p.created_at, p.updated_at, p.disabled_at
		FROM keys k JOIN principals p ON p.id = k.principal_id WHERE k.hash = ?`, h[:]),
		&e.Principal.ID, &e.Principal.DisplayName, &e.Principal.PasswordHash, &pScopes, &pRate,
		&pMeta, &pCreated, &pUpdated, &pDisabled)
	if errors.Is(err, sql.ErrNoRows) {
		return keystore.Entry{}, keystore.ErrNotFound
	}
	if err == nil {
		e.Principal, err = fillPrincipal(e.Principal, pScopes, pRate, pMeta, pCreated, pUpdated, pDisabled)
	}
	if err != nil {
		return keystore.Entry{}, s.wrap("lookup key", err)
	}
	e.Key = k
	return e, nil
}

// Rehash replaces a key's hash (secret rotation). ErrNotFound when the key is unknown;
// ErrConflict when another key has h.
func (s *Store) Rehash(ctx context.Context, keyID string, h keystore.Hash) error {
	if h == (keystore.Hash{}) {
		return s.wrap("rehash", errors.New("hash is required"))
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE keys SET hash = ? WHERE id = ?", h[:], keyID)
		if isUniqueViolation(err) {
			return keystore.ErrConflict
		}
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return keystore.ErrNotFound
		}
		return nil
	})
	return s.wrap("rehash", err)
}
