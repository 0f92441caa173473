package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/keygate/keygate/keystore"
)

const (
	// changeRetention is how long change-log rows are kept; Watch only needs seconds.
	changeRetention = time.Hour
	// pruneEvery is how often a running Watch prunes the change log.
	pruneEvery = 10 * time.Minute
)

// Watch calls fn, in commit order, for every change that can deny access committed after
// Watch started, by this process or another one (the CLI), until ctx ends; it then returns
// nil. It returns an error when it can no longer watch (the caller calls it again and
// revalidates what it cached). fn runs on Watch's goroutine.
//
// Watch holds one connection of its own, which never writes, and polls PRAGMA
// data_version on it every Options.PollInterval: the value changes whenever another
// connection, in this process's pool or in another process, commits. Then it reads the
// change log after the last row it has seen.
func (s *Store) Watch(ctx context.Context, fn func(keystore.Change)) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return s.watchErr(ctx, err)
	}
	defer conn.Close()

	// data_version first, then the last seq: a commit in between is then either in the
	// seq already or noticed by the next poll.
	var version, last int64
	if err := conn.QueryRowContext(ctx, "PRAGMA data_version").Scan(&version); err != nil {
		return s.watchErr(ctx, err)
	}
	if err := conn.QueryRowContext(ctx, "SELECT coalesce(max(seq), 0) FROM changes").Scan(&last); err != nil {
		return s.watchErr(ctx, err)
	}
	s.prune(ctx)
	lastPrune := time.Now()

	tick := time.NewTicker(s.poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		var v int64
		if err := conn.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
			return s.watchErr(ctx, err)
		}
		if v != version {
			version = v
			changes, err := readChanges(ctx, conn, last)
			if err != nil {
				return s.watchErr(ctx, err)
			}
			for _, c := range changes {
				last = c.seq
				fn(c.Change)
			}
		}
		if time.Since(lastPrune) > pruneEvery {
			s.prune(ctx)
			lastPrune = time.Now()
		}
	}
}

type seqChange struct {
	seq int64
	keystore.Change
}

// readChanges returns the change-log rows after seq, all read before any is handed on, so
// that no read snapshot stays open while fn runs.
func readChanges(ctx context.Context, conn *sql.Conn, after int64) ([]seqChange, error) {
	rows, err := conn.QueryContext(ctx,
		"SELECT seq, principal_id, key_id, at FROM changes WHERE seq > ? ORDER BY seq", after)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []seqChange
	for rows.Next() {
		var (
			c  seqChange
			at string
		)
		if err := rows.Scan(&c.seq, &c.PrincipalID, &c.KeyID, &at); err != nil {
			return nil, err
		}
		if c.At, err = parseTime(at); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// prune deletes change-log rows older than changeRetention. It is best effort: a failure
// leaves rows for the next run.
func (s *Store) prune(ctx context.Context) {
	cutoff := fmtTime(s.nowUTC().Add(-changeRetention))
	s.db.ExecContext(ctx, "DELETE FROM changes WHERE at < ?", cutoff) //nolint:errcheck // best effort
}

func (s *Store) watchErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return s.wrap("watch", err)
}
