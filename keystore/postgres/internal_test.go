package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/testenv"
)

// TestMigrateRestoresStatementTimeout checks that the connection Migrate used (with
// statement_timeout 0 and the advisory lock) goes back to the pool as it came: with the
// configured statement_timeout and without the lock.
func TestMigrateRestoresStatementTimeout(t *testing.T) {
	url := testenv.NewPostgresSchema(t, testenv.PostgresURL(t))
	s, err := Open(t.Context(), url, Options{MaxConns: 1, StatementTimeout: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	// MaxConns 1: this runs on the connection Migrate used.
	var timeout string
	var locks int
	if err := s.pool.QueryRow(t.Context(), "SHOW statement_timeout").Scan(&timeout); err != nil {
		t.Fatal(err)
	}
	if timeout != "1500ms" {
		t.Errorf("statement_timeout after Migrate = %q, want 1500ms", timeout)
	}
	if err := s.pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_locks
		WHERE locktype = 'advisory' AND pid = pg_backend_pid()`).Scan(&locks); err != nil {
		t.Fatal(err)
	}
	if locks != 0 {
		t.Errorf("advisory locks held after Migrate = %d, want 0", locks)
	}
	// And the timeout applies.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := s.pool.Exec(ctx, "SELECT pg_sleep(3)"); pgCode(err) != "57014" {
		t.Errorf("pg_sleep(3) with a 1.5s statement_timeout: err = %v, want SQLSTATE 57014", err)
	}
}
