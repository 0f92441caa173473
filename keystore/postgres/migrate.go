package postgres

import (
	"context"
	"embed"
	"github.com/keygate/keygate/keystore"
	"log/slog"

	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrationLock is the key of the session advisory lock held while migrating: any
// number of instances may run Migrate at once, one after the other.
const migrationLock int64 = 0x6b657967617465 // "keygate"

// migrations returns the embedded migrations ordered by version.
func migrations() ([]keystore.Migration, error) {
	return keystore.ReadMigrations(migrationFS, "migrations")
}

// Migrate applies the embedded migrations the schema lacks, each in its own transaction
// with its schema_migrations row. It holds a session advisory lock on one connection
// (with statement_timeout lifted there) from start to end, so that instances migrating at
// once wait for each other and apply nothing twice.
func (s *Store) Migrate(ctx context.Context) (err error) {
	ms, err := migrations()
	if err != nil {
		return wrap("migrate", err)
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return wrap("migrate", err)
	}
	clean := false
	defer func() {
		if !clean {
			// The session may still hold the lock or a transaction: never pool it again.
			conn.Hijack().Close(context.Background())
			return
		}
		conn.Release()
	}()
	c := conn.Conn()
	if _, err := c.Exec(ctx, "SET statement_timeout = 0"); err != nil {
		return wrap("migrate", err)
	}
	if _, err := c.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		return wrap("migrate: lock", err)
	}
	applyErr := s.apply(ctx, c, ms)
	if _, err := c.Exec(ctx, "SELECT pg_advisory_unlock($1)", migrationLock); err != nil {
		return wrap("migrate: unlock", err)
	}
	if _, err := c.Exec(ctx, "RESET statement_timeout"); err != nil {
		return wrap("migrate", err)
	}
	clean = applyErr == nil
	return applyErr
}

// apply runs the migrations not yet recorded, on c, which holds the migration lock.
func (s *Store) apply(ctx context.Context, c *pgx.Conn, ms []keystore.Migration) error {
	if _, err := c.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		applied_at timestamptz NOT NULL
	)`); err != nil {
		return wrap("migrate", err)
	}
	for _, m := range ms {
		applied := false
		err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			var n int
			if err := tx.QueryRow(ctx,
				"SELECT count(*) FROM schema_migrations WHERE version = $1", m.Version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
				m.Version, s.nowUTC())
			applied = err == nil
			return err
		})
		if err != nil {
			return wrap("migrate "+m.Name, err)
		}
		if applied {
			s.log.LogAttrs(ctx, slog.LevelInfo, "migration applied",
				slog.Int("version", m.Version), slog.String("name", m.Name))
		}
	}
	return nil
}

// SchemaVersion returns the highest applied migration version (0 before Migrate).
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var exists bool
	if err := s.pool.QueryRow(ctx,
		"SELECT to_regclass('schema_migrations') IS NOT NULL").Scan(&exists); err != nil {
		return 0, wrap("schema version", err)
	}
	if !exists {
		return 0, nil
	}
	var v *int32
	if err := s.pool.QueryRow(ctx, "SELECT max(version) FROM schema_migrations").Scan(&v); err != nil {
		return 0, wrap("schema version", err)
	}
	if v == nil {
		return 0, nil
	}
	return int(*v), nil
}
