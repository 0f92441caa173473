package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate/keystore"
)

// ImportKeys stores legacy keys in one transaction, skipping those whose hash is already
// stored (INSERT ... ON CONFLICT (hash) DO NOTHING), and returns how many it stored. Each
// key is stored as given (Legacy included); a zero CreatedAt is now. Every principal named must
// exist and not be deleted, or nothing is stored and the error wraps keystore.ErrNotFound
// with the first such id; the principals are locked FOR SHARE meanwhile, so none is
// deleted under the import. It records one key.import audit event per principal. It is not
// bound by the per-principal maximum. A key id twice in keys, or taken by another key, is
// keystore.ErrConflict.
func (s *Store) ImportKeys(ctx context.Context, keys []keystore.Key) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	now := s.nowUTC()
	n := len(keys)
	var (
		ids, pids, names, prefixes = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		hashes                     = make([][]byte, n)
		scopes, rates, metas       = make([]string, n), make([]string, n), make([]string, n)
		created                    = make([]time.Time, n)
		expires, revoked, lastUsed = make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n)
		usage                      = make([]int64, n)
		legacy                     = make([]bool, n)
		perPrincipal               = map[string]int{}
	)
	for i, k := range keys {
		if k.PrincipalID == "" || k.Hash == (keystore.Hash{}) || !validUUID(k.ID) {
			return 0, wrap("import keys", fmt.Errorf("key %d: a UUID id, a principal id and a hash are required", i+1))
		}
		ids[i], pids[i], names[i], prefixes[i] = k.ID, k.PrincipalID, k.Name, k.Prefix
		hashes[i] = k.Hash[:]
		scopes[i], rates[i], metas[i] = jsonText(list(k.Scopes)), jsonText(list(k.RateLimit)), jsonText(dict(k.Metadata))
		created[i] = now
		if !k.CreatedAt.IsZero() {
			created[i] = k.CreatedAt.UTC().Truncate(time.Microsecond)
		}
		expires[i], revoked[i], lastUsed[i] = usecPtr(k.ExpiresAt), usecPtr(k.RevokedAt), usecPtr(k.LastUsedAt)
		usage[i] = k.UsageCount
		legacy[i] = k.Legacy
		perPrincipal[k.PrincipalID]++
	}
	principals := make([]string, 0, len(perPrincipal))
	for id := range perPrincipal {
		principals = append(principals, id)
	}
	slices.Sort(principals)

	stored := 0
	err := s.tx(ctx, func(tx pgx.Tx) error {
		stored = 0
		rows, err := tx.Query(ctx, `SELECT id FROM principals WHERE id = ANY($1)
			AND deleted_at IS NULL ORDER BY id FOR SHARE`, principals)
		if err != nil {
			return err
		}
		found, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, id := range principals {
			if _, ok := slices.BinarySearch(found, id); !ok {
				return fmt.Errorf("principal %q: %w", id, keystore.ErrNotFound)
			}
		}
		rows, err = tx.Query(ctx, `WITH ins AS (
			INSERT INTO keys (id, principal_id, name, prefix, hash, scopes, rate_limit, metadata,
				created_at, expires_at, revoked_at, last_used_at, usage_count, legacy)
			SELECT t.id, t.pid, t.name, t.prefix, t.hash,
				ARRAY(SELECT jsonb_array_elements_text(t.scopes::jsonb)),
				ARRAY(SELECT jsonb_array_elements_text(t.rates::jsonb)),
				t.meta::jsonb, t.created, t.expires, t.revoked, t.last_used, t.usage, t.legacy
			FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::text[],
				$7::text[], $8::text[], $9::timestamptz[], $10::timestamptz[], $11::timestamptz[],
				$12::timestamptz[], $13::bigint[], $14::boolean[])
				AS t(id, pid, name, prefix, hash, scopes, rates, meta, created, expires, revoked,
					last_used, usage, legacy)
			ON CONFLICT (hash) DO NOTHING
			RETURNING principal_id)
			SELECT principal_id, count(*) FROM ins GROUP BY principal_id`,
			ids, pids, names, prefixes, hashes, scopes, rates, metas, created, expires, revoked,
			lastUsed, usage, legacy)
		if err != nil {
			return err
		}
		added := map[string]int{}
		var (
			pid   string
			count int
		)
		_, err = pgx.ForEachRow(rows, []any{&pid, &count}, func() error {
			added[pid] = count
			stored += count
			return nil
		})
		if isUniqueViolation(err) {
			return keystore.ErrConflict
		}
		if err != nil {
			return err
		}
		for _, id := range principals {
			detail := "imported " + strconv.Itoa(added[id]) + " keys"
			if skipped := perPrincipal[id] - added[id]; skipped > 0 {
				detail += ", skipped " + strconv.Itoa(skipped) + " already stored"
			}
			if err := audit(ctx, tx, now, "key.import", id, "", detail); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, wrap("import keys", err)
	}
	return stored, nil
}

func jsonText(v any) string {
	b, _ := json.Marshal(v) // lists and maps of strings always marshal
	return string(b)
}

// RecordUsage adds counted uses to keys in one statement: usage_count grows by Count and
// last_used_at becomes the later of the stored one and LastUsed (a zero LastUsed leaves it
// alone). Several entries for one key add up. Unknown keys are skipped. The rows are locked
// in id order, so that concurrent flushes from several instances do not deadlock.
func (s *Store) RecordUsage(ctx context.Context, u []keystore.Usage) error {
	var (
		ids    []string
		counts []int64
		last   []*time.Time
	)
	for _, x := range u {
		if !validUUID(x.KeyID) || x.Count == 0 && x.LastUsed.IsZero() {
			continue
		}
		ids = append(ids, x.KeyID)
		counts = append(counts, x.Count)
		var at *time.Time
		if !x.LastUsed.IsZero() {
			at = usecPtr(&x.LastUsed)
		}
		last = append(last, at)
	}
	if len(ids) == 0 {
		return nil
	}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `WITH u AS MATERIALIZED (
				SELECT id, sum(n)::bigint AS n, max(at) AS at
				FROM unnest($1::uuid[], $2::bigint[], $3::timestamptz[]) AS t(id, n, at)
				GROUP BY id),
			locked AS MATERIALIZED (
				SELECT k.id FROM keys k WHERE k.id IN (SELECT id FROM u) ORDER BY k.id FOR UPDATE)
			UPDATE keys k SET usage_count = k.usage_count + u.n,
				last_used_at = greatest(k.last_used_at, u.at)
			FROM u WHERE k.id = u.id AND k.id IN (SELECT id FROM locked)`,
			ids, counts, last)
		return err
	})
	return wrap("record usage", err)
}

// ListAudit returns audit events, newest first, after opts.Cursor, and the next cursor
// ("" at the end); principalID "" lists all. A cursor no listing returned wraps
// keystore.ErrBadCursor.
func (s *Store) ListAudit(ctx context.Context, principalID string, opts keystore.ListOptions) ([]keystore.AuditEvent, string, error) {
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
		before, err := decIDCursor(opts.Cursor)
		if err != nil {
			return nil, "", badCursor("list audit")
		}
		where = append(where, "id < "+arg(before))
	}
	if principalID != "" {
		where = append(where, "principal_id = "+arg(principalID))
	}
	q := "SELECT id, at, actor, action, principal_id, key_id, detail FROM audit"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT " + arg(limit+1)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", wrap("list audit", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (keystore.AuditEvent, error) {
		var e keystore.AuditEvent
		err := r.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.PrincipalID, &e.KeyID, &e.Detail)
		return e, err
	})
	if err != nil {
		return nil, "", wrap("list audit", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = encCursor(strconv.FormatInt(out[limit-1].ID, 10))
	}
	return out, next, nil
}
