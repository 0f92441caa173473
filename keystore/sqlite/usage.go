package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/keygate/keygate/keystore"
)

// RecordUsage adds counted uses to keys in one transaction: usage_count grows by Count and
// last_used_at becomes the later of the stored time and LastUsed (a zero LastUsed leaves it
// as it is). Unknown key ids are skipped. It records no change and no audit event.
func (s *Store) RecordUsage(ctx context.Context, us []keystore.Usage) error {
	if len(us) == 0 {
		return nil
	}
	for _, u := range us {
		if u.LastUsed.IsZero() {
			continue
		}
		if err := checkTime("last_used_at", &u.LastUsed); err != nil {
			return s.wrap("record usage", fmt.Errorf("key %s: %w", u.KeyID, err))
		}
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		// Times are fixed-width text, so text order is time order. SQLite's two-argument
		// max() is NULL when either side is NULL: coalesce then takes the stored time
		// (no new one) or the new one (none stored yet).
		stmt, err := tx.PrepareContext(ctx, `UPDATE keys SET usage_count = usage_count + ?1,
			last_used_at = coalesce(max(last_used_at, ?2), last_used_at, ?2) WHERE id = ?3`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, u := range us {
			var last any
			if !u.LastUsed.IsZero() {
				last = fmtTime(u.LastUsed)
			}
			if _, err := stmt.ExecContext(ctx, u.Count, last, u.KeyID); err != nil {
				return err
			}
		}
		return nil
	})
	return s.wrap("record usage", err)
}
