package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keygate/keygate/keystore"
)

var _ keystore.Store = (*Store)(nil)

// Defaults of Options.
const (
	DefaultMaxConns         int32 = 10
	DefaultStatementTimeout       = 5 * time.Second
)

// Options tune a Store; the zero value works.
type Options struct {
	// MaxConns is the pool's size. Default: 10. Watch uses a connection of its own, outside
	// the pool.
	MaxConns int32
	// StatementTimeout bounds every statement, sent as the statement_timeout run-time
	// parameter of each connection. Default: 5s. Migrate lifts it on its own connection.
	StatementTimeout time.Duration
	// Now returns the current time; default time.Now. Tests set it.
	Now func() time.Time
	// Log receives the store's few log lines (a migration applied). Default: discarded.
	Log *slog.Logger
}

// Store is the PostgreSQL keystore.Store. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	now  func() time.Time
	log  *slog.Logger

	// closing ends running Watch calls when the store is closed.
	closing context.Context
	close   context.CancelFunc
	mu      sync.Mutex // guards closed and adding to watches
	closed  bool
	watches sync.WaitGroup
}

// Open connects to the database at url (a postgres:// URL or keyword/value string) and
// checks that it answers. It does not migrate: call Migrate. Options.MaxConns and
// Options.StatementTimeout (or their defaults) replace pool_max_conns and statement_timeout
// given in url. Its errors never quote url, which may hold a password.
func Open(ctx context.Context, url string, o Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgconn's ParseConfigError quotes the connection string (password redacted, on a
		// best-effort basis); say nothing of it.
		return nil, errors.New("open postgres: invalid connection string")
	}
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.StatementTimeout <= 0 {
		o.StatementTimeout = DefaultStatementTimeout
	}
	cfg.MaxConns = o.MaxConns
	if cfg.MinConns > cfg.MaxConns {
		cfg.MinConns = cfg.MaxConns
	}
	cfg.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(o.StatementTimeout.Milliseconds(), 10)
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "keygate"
	}
	cfg.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
		// Scan timestamptz in UTC, as every backend returns times.
		c.TypeMap().RegisterType(&pgtype.Type{Name: "timestamptz", OID: pgtype.TimestamptzOID,
			Codec: &pgtype.TimestamptzCodec{ScanLocation: time.UTC}})
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	s := &Store{pool: pool, now: o.Now, log: o.Log}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.closing, s.close = context.WithCancel(context.Background())
	return s, nil
}

// Ready returns an error when the database cannot answer.
func (s *Store) Ready(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}

// Close ends running Watch calls (they return nil), waits for them and closes the pool.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.close()
	s.watches.Wait()
	s.pool.Close()
	return nil
}

// nowUTC returns the store's current time in UTC, truncated to the microsecond that
// PostgreSQL keeps, so that what a method sets equals what a later read returns.
func (s *Store) nowUTC() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// maxTxAttempts bounds how often tx runs a transaction that PostgreSQL aborted as a
// deadlock victim or a serialization failure.
const maxTxAttempts = 3

// tx runs fn in one READ COMMITTED transaction and commits when fn returns nil. A
// transaction aborted by a deadlock or serialization failure is run again from the start.
func (s *Store) tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	var err error
	for range maxTxAttempts {
		err = pgx.BeginFunc(ctx, s.pool, fn)
		if !isRetryable(err) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// wrap names the operation in an error; keystore sentinels are returned as they are.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	for _, sentinel := range []error{keystore.ErrNotFound, keystore.ErrConflict,
		keystore.ErrTooManyKeys, keystore.ErrScopeNotHeld, keystore.ErrDisabled} {
		if err == sentinel {
			return err
		}
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// SQLSTATE codes the store tells apart.
const (
	codeUniqueViolation      = "23505"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
	codeInvalidText          = "22P02"
)

func pgCode(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func isUniqueViolation(err error) bool { return pgCode(err) == codeUniqueViolation }

func isRetryable(err error) bool {
	c := pgCode(err)
	return c == codeSerializationFailure || c == codeDeadlockDetected
}

// changeChannel is the NOTIFY channel of change events; the payload is
// "<principal id>|<key id>" (key id empty for a principal-wide change).
const changeChannel = "keygate_changes"

// notify sends a change event, delivered to listeners when tx commits.
func notify(ctx context.Context, tx pgx.Tx, principalID, keyID string) error {
	_, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", changeChannel, principalID+"|"+keyID)
	return err
}

// audit records one write in tx, by the actor of ctx.
func audit(ctx context.Context, tx pgx.Tx, at time.Time, action, principalID, keyID, detail string) error {
	_, err := tx.Exec(ctx, `INSERT INTO audit (at, actor, action, principal_id, key_id, detail)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		at, keystore.ActorFrom(ctx), action, principalID, keyID, detail)
	return err
}
