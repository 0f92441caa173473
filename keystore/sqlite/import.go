package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/keygate/keygate/keystore"
)

// ImportKeys stores legacy keys in one BEGIN IMMEDIATE transaction and returns how many it
// stored. Each key needs ID, PrincipalID, Name, Prefix and Hash; it is stored with Legacy
// true and its CreatedAt (now when zero). A key whose hash is already stored is skipped, so
// a re-run stores nothing twice. Keys are not counted against any per-principal maximum.
// One key.import audit event per principal that gained keys says how many.
//
// Nothing is stored when any key fails: an unknown or deleted principal is an error
// wrapping ErrNotFound that names the principal id, a disabled one ErrDisabled likewise;
// a scope the principal does not hold is ErrScopeNotHeld; a key id already taken by
// another key is ErrConflict.
func (s *Store) ImportKeys(ctx context.Context, keys []keystore.Key) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	var principals []string // in the order they first appear, so errors name the first
	for i := range keys {
		k := &keys[i]
		if k.ID == "" || k.PrincipalID == "" || k.Hash == (keystore.Hash{}) {
			return 0, s.wrap("import keys", fmt.Errorf("key %d: key id, principal id and hash are required", i))
		}
		for name, t := range map[string]*time.Time{"created_at": &k.CreatedAt,
			"expires_at": k.ExpiresAt, "revoked_at": k.RevokedAt, "last_used_at": k.LastUsedAt} {
			if name == "created_at" && t.IsZero() {
				continue
			}
			if err := checkTime(name, t); err != nil {
				return 0, s.wrap("import keys", fmt.Errorf("key %d: %w", i, err))
			}
		}
		if !slices.Contains(principals, k.PrincipalID) {
			principals = append(principals, k.PrincipalID)
		}
	}
	now := s.nowUTC()
	total := 0
	err := s.tx(ctx, func(tx *sql.Tx) error {
		held := make(map[string][]string, len(principals))
		for _, id := range principals {
			var (
				scopes            string
				disabled, deleted sql.NullString
			)
			err := tx.QueryRowContext(ctx,
				"SELECT scopes, disabled_at, deleted_at FROM principals WHERE id = ?",
				id).Scan(&scopes, &disabled, &deleted)
			if errors.Is(err, sql.ErrNoRows) || err == nil && deleted.Valid {
				return fmt.Errorf("import keys: principal %q: %w", id, keystore.ErrNotFound)
			}
			if err != nil {
				return err
			}
			if disabled.Valid {
				return fmt.Errorf("import keys: principal %q: %w", id, keystore.ErrDisabled)
			}
			if held[id], err = decList(scopes); err != nil {
				return err
			}
		}
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO keys (id, principal_id, name, prefix,
			hash, scopes, rate_limit, metadata, created_at, expires_at, revoked_at, last_used_at,
			usage_count, legacy) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)
			ON CONFLICT (hash) DO NOTHING`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		added := make(map[string]int, len(principals))
		for i := range keys {
			k := &keys[i]
			for _, sc := range k.Scopes {
				if !slices.Contains(held[k.PrincipalID], sc) {
					return fmt.Errorf("import keys: key %d: scope %q: %w", i, sc, keystore.ErrScopeNotHeld)
				}
			}
			created := now
			if !k.CreatedAt.IsZero() {
				created = k.CreatedAt
			}
			res, err := stmt.ExecContext(ctx, k.ID, k.PrincipalID, k.Name, k.Prefix, k.Hash[:],
				encList(k.Scopes), encList(k.RateLimit), encMap(k.Metadata), fmtTime(created),
				fmtTimePtr(k.ExpiresAt), fmtTimePtr(k.RevokedAt), fmtTimePtr(k.LastUsedAt),
				k.UsageCount)
			if isUniqueViolation(err) {
				return fmt.Errorf("import keys: key %d: id %s is taken: %w", i, k.ID, keystore.ErrConflict)
			}
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			added[k.PrincipalID] += int(n)
			total += int(n)
		}
		for _, id := range principals {
			if added[id] == 0 {
				continue // nothing written: nothing to audit
			}
			if err := addAudit(ctx, tx, fmtTime(now), actKeyImport, id, "",
				"imported "+strconv.Itoa(added[id])+" keys"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, s.wrap("import keys", err)
	}
	return total, nil
}
