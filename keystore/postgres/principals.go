package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate/keystore"
)

const principalCols = `p.id, p.display_name, p.password_hash, p.scopes, p.rate_limit, p.metadata,
	p.created_at, p.updated_at, p.disabled_at`

// principalDest returns the scan destinations of principalCols into p.
func principalDest(p *keystore.Principal) []any {
	return []any{&p.ID, &p.DisplayName, &p.PasswordHash, &p.Scopes, &p.RateLimit, &p.Metadata,
		&p.CreatedAt, &p.UpdatedAt, &p.DisabledAt}
}

// tidyPrincipal turns the empty lists and map scanned from the row into nil.
func tidyPrincipal(p *keystore.Principal) {
	p.Scopes = nilIfEmpty(p.Scopes)
	p.RateLimit = nilIfEmpty(p.RateLimit)
	p.Metadata = nilIfEmptyMap(p.Metadata)
}

func scanPrincipal(row pgx.Row) (keystore.Principal, error) {
	var p keystore.Principal
	if err := row.Scan(principalDest(&p)...); err != nil {
		return keystore.Principal{}, err
	}
	tidyPrincipal(&p)
	return p, nil
}

// CreatePrincipal stores p and sets its CreatedAt and UpdatedAt. ErrConflict when the id
// is taken, also by a deleted principal.
func (s *Store) CreatePrincipal(ctx context.Context, p *keystore.Principal) error {
	now := s.nowUTC()
	disabled := usecPtr(p.DisabledAt)
	err := s.tx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO principals (id, display_name, password_hash, scopes,
			rate_limit, metadata, created_at, updated_at, disabled_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)`,
			p.ID, p.DisplayName, p.PasswordHash, list(p.Scopes), list(p.RateLimit),
			dict(p.Metadata), now, disabled)
		if isUniqueViolation(err) {
			return keystore.ErrConflict
		}
		if err != nil {
			return err
		}
		return audit(ctx, tx, now, "principal.create", p.ID, "", "")
	})
	if err != nil {
		return wrap("create principal", err)
	}
	p.CreatedAt, p.UpdatedAt, p.DisabledAt = now, now, disabled
	return nil
}

// GetPrincipal returns a principal; ErrNotFound when unknown or deleted.
func (s *Store) GetPrincipal(ctx context.Context, id string) (keystore.Principal, error) {
	p, err := scanPrincipal(s.pool.QueryRow(ctx,
		"SELECT "+principalCols+" FROM principals p WHERE p.id = $1 AND p.deleted_at IS NULL", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return keystore.Principal{}, keystore.ErrNotFound
	}
	if err != nil {
		return keystore.Principal{}, wrap("get principal", err)
	}
	return p, nil
}

// ListPrincipals returns up to opts.Limit (default 100, at most 1000) principals ordered
// by id after opts.Cursor, and the next cursor ("" at the end). Deleted ones are left out.
// A cursor no listing returned is an error wrapping keystore.ErrBadCursor.
func (s *Store) ListPrincipals(ctx context.Context, opts keystore.ListOptions) ([]keystore.Principal, string, error) {
	limit := pageLimit(opts.Limit)
	after := ""
	if opts.Cursor != "" {
		parts, err := decCursor(opts.Cursor, 1)
		if err != nil || parts[0] == "" {
			return nil, "", badCursor("list principals")
		}
		after = parts[0]
	}
	rows, err := s.pool.Query(ctx, "SELECT "+principalCols+` FROM principals p
		WHERE p.deleted_at IS NULL AND p.id > $1 ORDER BY p.id LIMIT $2`,
		after, limit+1)
	if err != nil {
		return nil, "", wrap("list principals", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (keystore.Principal, error) {
		return scanPrincipal(r)
	})
	if err != nil {
		return nil, "", wrap("list principals", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = encCursor(out[limit-1].ID)
	}
	return out, next, nil
}

// UpdatePrincipal stores every field of p but ID and CreatedAt, sets p.UpdatedAt (and
// p.CreatedAt from the store) and sends a change. When p.DisabledAt is set, every key of
// the principal that is not yet revoked is revoked in the same transaction. The audit
// action is principal.disable or principal.enable when that state changes, else
// principal.update. ErrNotFound when unknown or deleted.
func (s *Store) UpdatePrincipal(ctx context.Context, p *keystore.Principal) error {
	now := s.nowUTC()
	disabled := usecPtr(p.DisabledAt)
	var created time.Time
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var wasDisabled bool
		err := tx.QueryRow(ctx, `SELECT disabled_at IS NOT NULL FROM principals
			WHERE id = $1 AND deleted_at IS NULL FOR UPDATE`, p.ID).Scan(&wasDisabled)
		if errors.Is(err, pgx.ErrNoRows) {
			return keystore.ErrNotFound
		}
		if err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `UPDATE principals SET display_name = $2, password_hash = $3,
			scopes = $4, rate_limit = $5, metadata = $6, updated_at = $7, disabled_at = $8
			WHERE id = $1 RETURNING created_at`,
			p.ID, p.DisplayName, p.PasswordHash, list(p.Scopes), list(p.RateLimit),
			dict(p.Metadata), now, disabled).Scan(&created)
		if err != nil {
			return err
		}
		action := "principal.update"
		switch {
		case disabled != nil && !wasDisabled:
			action = "principal.disable"
		case disabled == nil && wasDisabled:
			action = "principal.enable"
		}
		if disabled != nil {
			if err := revokeAll(ctx, tx, p.ID, now); err != nil {
				return err
			}
		}
		if err := notify(ctx, tx, p.ID, ""); err != nil {
			return err
		}
		return audit(ctx, tx, now, action, p.ID, "", "")
	})
	if err != nil {
		return wrap("update principal", err)
	}
	p.CreatedAt, p.UpdatedAt, p.DisabledAt = created, now, disabled
	return nil
}

// DeletePrincipal revokes all its keys, clears its password and marks it deleted, in one
// transaction, and sends a change. ErrNotFound when unknown or already deleted.
func (s *Store) DeletePrincipal(ctx context.Context, id string) error {
	now := s.nowUTC()
	err := s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE principals SET deleted_at = $2, updated_at = $2,
			password_hash = '' WHERE id = $1 AND deleted_at IS NULL`, id, now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return keystore.ErrNotFound
		}
		if err := revokeAll(ctx, tx, id, now); err != nil {
			return err
		}
		if err := notify(ctx, tx, id, ""); err != nil {
			return err
		}
		return audit(ctx, tx, now, "principal.delete", id, "", "")
	})
	return wrap("delete principal", err)
}

// revokeAll revokes every key of a principal that is not revoked yet, expired ones too (so
// that a later change of expiry cannot bring one back). The caller holds the principal's
// row lock; the keys are locked in id order, as RecordUsage locks them, to keep clear of
// deadlocks.
func revokeAll(ctx context.Context, tx pgx.Tx, principalID string, now time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE keys SET revoked_at = $2 WHERE id IN (
		SELECT id FROM keys WHERE principal_id = $1 AND revoked_at IS NULL ORDER BY id FOR UPDATE)`,
		principalID, now)
	return err
}
