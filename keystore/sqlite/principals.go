package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"maps"
	"time"

	"github.com/keygate/keygate/keystore"
)

const principalCols = `id, display_name, password_hash, scopes, rate_limit, metadata,
	created_at, updated_at, disabled_at`

type scanner interface{ Scan(dest ...any) error }

func scanPrincipal(r scanner) (keystore.Principal, error) {
	var (
		p                  keystore.Principal
		scopes, rate, meta string
		created, updated   string
		disabled           sql.NullString
	)
	if err := r.Scan(&p.ID, &p.DisplayName, &p.PasswordHash, &scopes, &rate, &meta,
		&created, &updated, &disabled); err != nil {
		return p, err
	}
	return fillPrincipal(p, scopes, rate, meta, created, updated, disabled)
}

// scanAll scans every row of rows with scan, then closes rows. It stops at the first
// error, of a row or of the iteration.
func scanAll[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// fillPrincipal decodes the stored text columns of a principal into p.
func fillPrincipal(p keystore.Principal, scopes, rate, meta, created, updated string, disabled sql.NullString) (keystore.Principal, error) {
	var err error
	if p.Scopes, p.RateLimit, p.Metadata, err = decLists(scopes, rate, meta); err != nil {
		return p, err
	}
	if p.CreatedAt, err = parseTime(created); err != nil {
		return p, err
	}
	if p.UpdatedAt, err = parseTime(updated); err != nil {
		return p, err
	}
	if p.DisabledAt, err = parseTimePtr(disabled); err != nil {
		return p, err
	}
	return p, nil
}

// CreatePrincipal stores p, sets its CreatedAt and UpdatedAt and records a
// principal.create audit event. ErrConflict when the id is taken, also by a deleted
// principal.
func (s *Store) CreatePrincipal(ctx context.Context, p *keystore.Principal) error {
	if err := checkTime("disabled_at", p.DisabledAt); err != nil {
		return s.wrap("create principal", err)
	}
	now := s.nowUTC()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO principals (id, display_name, password_hash,
			scopes, rate_limit, metadata, created_at, updated_at, disabled_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			p.ID, p.DisplayName, p.PasswordHash, encList(p.Scopes), encList(p.RateLimit),
			encMap(p.Metadata), fmtTime(now), fmtTime(now), fmtTimePtr(p.DisabledAt))
		if isUniqueViolation(err) {
			return keystore.ErrConflict
		}
		if err != nil {
			return err
		}
		return addAudit(ctx, tx, fmtTime(now), actPrincipalCreate, p.ID, "", "")
	})
	if err != nil {
		return s.wrap("create principal", err)
	}
	p.CreatedAt, p.UpdatedAt = now, now
	return nil
}

// GetPrincipal returns a principal; ErrNotFound when unknown or deleted.
func (s *Store) GetPrincipal(ctx context.Context, id string) (keystore.Principal, error) {
	p, err := scanPrincipal(s.db.QueryRowContext(ctx,
		"SELECT "+principalCols+" FROM principals WHERE id = ? AND deleted_at IS NULL", id))
	if errors.Is(err, sql.ErrNoRows) {
		return keystore.Principal{}, keystore.ErrNotFound
	}
	if err != nil {
		return keystore.Principal{}, s.wrap("get principal", err)
	}
	return p, nil
}

// ListPrincipals returns up to opts.Limit (default 100, at most 1000) principals ordered
// by id after opts.Cursor, and the next cursor ("" at the end). Deleted ones are left out.
func (s *Store) ListPrincipals(ctx context.Context, opts keystore.ListOptions) ([]keystore.Principal, string, error) {
	limit := pageLimit(opts.Limit)
	after := ""
	if opts.Cursor != "" {
		parts, err := decCursor(opts.Cursor, 1)
		if err != nil {
			return nil, "", s.wrap("list principals", err)
		}
		after = parts[0]
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+principalCols+` FROM principals
		WHERE deleted_at IS NULL AND id > ? ORDER BY id LIMIT ?`, after, limit+1)
	if err != nil {
		return nil, "", s.wrap("list principals", err)
	}
	out, err := scanAll(rows, scanPrincipal)
	if err != nil {
		return nil, "", s.wrap("list principals", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = encCursor(out[limit-1].ID)
	}
	return out, next, nil
}

// UpdatePrincipal stores every field of p but ID and CreatedAt, sets p.UpdatedAt (and
// p.CreatedAt from the store) and records a change and an audit event: principal.disable
// or principal.enable when DisabledAt flips, else principal.update, naming the changed
// fields. When p.DisabledAt is set, every key of the principal that is not yet revoked is
// revoked in the same transaction. ErrNotFound when unknown or deleted.
func (s *Store) UpdatePrincipal(ctx context.Context, p *keystore.Principal) error {
	if err := checkTime("disabled_at", p.DisabledAt); err != nil {
		return s.wrap("update principal", err)
	}
	now := s.nowUTC()
	var old keystore.Principal
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		old, err = scanPrincipal(tx.QueryRowContext(ctx,
			"SELECT "+principalCols+" FROM principals WHERE id = ? AND deleted_at IS NULL", p.ID))
		if errors.Is(err, sql.ErrNoRows) {
			return keystore.ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE principals SET display_name = ?, password_hash = ?,
			scopes = ?, rate_limit = ?, metadata = ?, updated_at = ?, disabled_at = ?
			WHERE id = ?`,
			p.DisplayName, p.PasswordHash, encList(p.Scopes), encList(p.RateLimit),
			encMap(p.Metadata), fmtTime(now), fmtTimePtr(p.DisabledAt), p.ID); err != nil {
			return err
		}
		if p.DisabledAt != nil {
			if err := revokeAll(ctx, tx, p.ID, now); err != nil {
				return err
			}
		}
		if err := addChange(ctx, tx, p.ID, "", now); err != nil {
			return err
		}
		action := actPrincipalUpdate
		switch {
		case !old.Disabled() && p.Disabled():
			action = actPrincipalDisable
		case old.Disabled() && !p.Disabled():
			action = actPrincipalEnable
		}
		return addAudit(ctx, tx, fmtTime(now), action, p.ID, "", changedDetail(principalChanges(old, *p)))
	})
	if err != nil {
		return s.wrap("update principal", err)
	}
	p.CreatedAt, p.UpdatedAt = old.CreatedAt, now
	return nil
}

// principalChanges names the stored fields that differ between a and b; "password" for a
// changed hash, never the hash.
func principalChanges(a, b keystore.Principal) []string {
	var f []string
	if a.DisplayName != b.DisplayName {
		f = append(f, "display_name")
	}
	if a.PasswordHash != b.PasswordHash {
		f = append(f, "password")
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
	if !sameTimePtr(a.DisabledAt, b.DisabledAt) {
		f = append(f, "disabled_at")
	}
	return f
}

// DeletePrincipal revokes all its keys, clears its password, marks it deleted and records
// a principal.delete audit event, in one transaction. ErrNotFound when unknown or already deleted.
func (s *Store) DeletePrincipal(ctx context.Context, id string) error {
	now := s.nowUTC()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE principals SET deleted_at = ?, updated_at = ?,
			password_hash = '' WHERE id = ? AND deleted_at IS NULL`, fmtTime(now), fmtTime(now), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return keystore.ErrNotFound
		}
		if err := revokeAll(ctx, tx, id, now); err != nil {
			return err
		}
		if err := addChange(ctx, tx, id, "", now); err != nil {
			return err
		}
		return addAudit(ctx, tx, fmtTime(now), actPrincipalDelete, id, "", "")
	})
	return s.wrap("delete principal", err)
}

// revokeAll revokes every key of a principal that is not revoked yet, expired ones too (so
// that a later change of expiry cannot bring one back).
func revokeAll(ctx context.Context, tx *sql.Tx, principalID string, now time.Time) error {
	_, err := tx.ExecContext(ctx,
		"UPDATE keys SET revoked_at = ? WHERE principal_id = ? AND revoked_at IS NULL",
		fmtTime(now), principalID)
	return err
}
