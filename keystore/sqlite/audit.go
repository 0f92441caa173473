package sqlite

import (
	"context"
	"database/sql"
	"strconv"
	"strings"

	"github.com/keygate/keygate/keystore"
)

// Audit actions, as keystore.AuditEvent.Action names them.
const (
	actPrincipalCreate  = "principal.create"
	actPrincipalUpdate  = "principal.update"
	actPrincipalDisable = "principal.disable"
	actPrincipalEnable  = "principal.enable"
	actPrincipalDelete  = "principal.delete"
	actKeyCreate        = "key.create"
	actKeyUpdate        = "key.update"
	actKeyRevoke        = "key.revoke"
	actKeyImport        = "key.import"
)

// addAudit appends one event to the audit log inside tx, with the actor of ctx. detail
// must never hold a secret: callers pass field names and counts only.
func addAudit(ctx context.Context, tx *sql.Tx, at string, action, principalID, keyID, detail string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO audit (at, actor, action, principal_id, key_id,
		detail) VALUES (?, ?, ?, ?, ?, ?)`,
		at, keystore.ActorFrom(ctx), action, principalID, keyID, detail)
	return err
}

// changedDetail describes which fields a write changed ("changed name, scopes"), by name
// only: never a value, which could be a secret (a password hash).
func changedDetail(fields []string) string {
	if len(fields) == 0 {
		return "no change"
	}
	return "changed " + strings.Join(fields, ", ")
}

// ListAudit returns up to opts.Limit (default 100, at most 1000) audit events, newest
// first, after opts.Cursor, and the next cursor ("" at the end). principalID "" lists
// every principal's events; the events of a deleted or unknown principal are listed too
// (an unknown one has none).
func (s *Store) ListAudit(ctx context.Context, principalID string, opts keystore.ListOptions) ([]keystore.AuditEvent, string, error) {
	limit := pageLimit(opts.Limit)
	var (
		where []string
		args  []any
	)
	if principalID != "" {
		where = append(where, "principal_id = ?")
		args = append(args, principalID)
	}
	if opts.Cursor != "" {
		parts, err := decCursor(opts.Cursor, 1)
		if err != nil {
			return nil, "", s.wrap("list audit", err)
		}
		before, err := strconv.ParseInt(parts[0], 10, 64)
		if err != nil || before <= 0 {
			return nil, "", s.wrap("list audit", keystore.ErrBadCursor)
		}
		where = append(where, "id < ?")
		args = append(args, before)
	}
	q := "SELECT id, at, actor, action, principal_id, key_id, detail FROM audit"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, limit+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", s.wrap("list audit", err)
	}
	out, err := scanAll(rows, scanAudit)
	if err != nil {
		return nil, "", s.wrap("list audit", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = encCursor(strconv.FormatInt(out[limit-1].ID, 10))
	}
	return out, next, nil
}

// scanAudit scans one row of the audit columns ListAudit selects.
func scanAudit(r scanner) (keystore.AuditEvent, error) {
	var (
		e  keystore.AuditEvent
		at string
	)
	if err := r.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.PrincipalID, &e.KeyID, &e.Detail); err != nil {
		return e, err
	}
	var err error
	e.At, err = parseTime(at)
	return e, err
}
