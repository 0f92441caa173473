package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"github.com/keygate/keygate/keystore"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrations returns the embedded migrations ordered by version.
func migrations() ([]keystore.Migration, error) {
	return keystore.ReadMigrations(migrationFS, "migrations")
}

// Migrate applies the embedded migrations the database lacks, each in its own
// transaction with its schema_migrations row. Running it again, or from two processes at
// once, applies nothing twice.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return s.wrap("migrate", err)
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			applied_at TEXT NOT NULL
		) STRICT`)
		return err
	})
	if err != nil {
		return s.wrap("migrate", err)
	}
	for _, m := range ms {
		err := s.tx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx,
				"SELECT count(*) FROM schema_migrations WHERE version = ?", m.Version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx,
				"INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
				m.Version, fmtTime(s.nowUTC()))
			return err
		})
		if err != nil {
			return s.wrap("migrate "+m.Name, err)
		}
	}
	return nil
}

// SchemaVersion returns the highest applied migration version (0 before Migrate).
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var exists int
	if err := s.db.QueryRowContext(ctx,
		"SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'").Scan(&exists); err != nil {
		return 0, s.wrap("schema version", err)
	}
	if exists == 0 {
		return 0, nil
	}
	var v sql.NullInt64
	if err := s.db.QueryRowContext(ctx, "SELECT max(version) FROM schema_migrations").Scan(&v); err != nil {
		return 0, s.wrap("schema version", err)
	}
	return int(v.Int64), nil
}
