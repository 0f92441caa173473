package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keygate/keygate/keystore"
	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"
)

var _ keystore.Store = (*Store)(nil)

// DefaultPollInterval is how often Watch reads PRAGMA data_version when Options leave it 0.
const DefaultPollInterval = 250 * time.Millisecond

// Options tune a Store; the zero value works.
type Options struct {
	// Now returns the current time; default time.Now. Tests set it.
	Now func() time.Time
	// PollInterval is how often Watch looks for commits. Default: 250ms.
	PollInterval time.Duration
}

// Store is the SQLite keystore.Store. It is safe for concurrent use.
type Store struct {
	db   *sql.DB
	path string
	now  func() time.Time
	poll time.Duration
}

// Open opens (creating when missing) the database file at path and its parent directory.
// It does not migrate: call Migrate. Errors name the path, never a key or hash.
func Open(path string, opts Options) (*Store, error) {
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") ||
		strings.HasPrefix(path, ":memory:") {
		return nil, fmt.Errorf("open sqlite %q: want a plain file path", path)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	// Every transaction is a writer's here: BEGIN IMMEDIATE takes the write lock at once,
	// so a count checked inside it still holds at the insert, and no transaction fails
	// with SQLITE_BUSY on lock upgrade. Reads run outside transactions.
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	db.SetMaxIdleConns(8) // each new connection runs the pragmas again
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	s := &Store{db: db, path: path, now: opts.Now, poll: opts.PollInterval}
	if s.now == nil {
		s.now = time.Now
	}
	if s.poll <= 0 {
		s.poll = DefaultPollInterval
	}
	return s, nil
}

// Ready returns an error when the database cannot answer a query.
func (s *Store) Ready(ctx context.Context) error {
	var one int
	if err := s.db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("sqlite %s: %w", s.path, err)
	}
	return nil
}

// Close closes every connection; the last one checkpoints the WAL.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close sqlite %s: %w", s.path, err)
	}
	return nil
}

// tx runs fn in one BEGIN IMMEDIATE transaction and commits when fn returns nil.
func (s *Store) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// wrap names the operation and the database in an error, keeping keystore sentinels
// recognisable with errors.Is.
func (s *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	for _, sentinel := range []error{keystore.ErrNotFound, keystore.ErrConflict,
		keystore.ErrTooManyKeys, keystore.ErrScopeNotHeld, keystore.ErrDisabled, keystore.ErrBadCursor} {
		if errors.Is(err, sentinel) {
			return err
		}
	}
	return fmt.Errorf("sqlite %s: %s: %w", s.path, op, err)
}

// isUniqueViolation reports whether err is a PRIMARY KEY or UNIQUE constraint failure.
func isUniqueViolation(err error) bool {
	var e *sqlite3.Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Code() == sqlite3lib.SQLITE_CONSTRAINT_UNIQUE ||
		e.Code() == sqlite3lib.SQLITE_CONSTRAINT_PRIMARYKEY
}

// addChange appends to the change log inside tx; Watch reads it.
func addChange(ctx context.Context, tx *sql.Tx, principalID, keyID string, at time.Time) error {
	_, err := tx.ExecContext(ctx,
		"INSERT INTO changes (principal_id, key_id, at) VALUES (?, ?, ?)",
		principalID, keyID, fmtTime(at))
	return err
}
