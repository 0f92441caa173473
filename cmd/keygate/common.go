package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/keystore"
	"github.com/keygate/keygate/keystore/postgres"
	"github.com/keygate/keygate/keystore/sqlite"
	"github.com/spf13/cobra"
)

// configPath returns --config, else $KEYGATE_CONFIG, else ./keygate.yaml.
func configPath(cmd *cobra.Command) string {
	if p, _ := cmd.Flags().GetString("config"); p != "" {
		return p
	}
	if p := os.Getenv("KEYGATE_CONFIG"); p != "" {
		return p
	}
	return "keygate.yaml"
}

// loadConfig loads and validates the configuration; every problem is in the error.
func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, config.Errors(errs)
	}
	return cfg, nil
}

// openStore opens the configured store and brings its schema up to date when migrate is set.
func openStore(ctx context.Context, cfg *config.Config, migrate bool) (keystore.Store, error) {
	var s keystore.Store
	switch cfg.Store.Driver {
	case "sqlite":
		st, err := sqlite.Open(cfg.Store.SQLite.Path, sqlite.Options{})
		if err != nil {
			return nil, err
		}
		s = st
	case "postgres":
		st, err := postgres.Open(ctx, cfg.Store.Postgres.URL.Reveal(), postgres.Options{
			MaxConns:         int32(cfg.Store.Postgres.MaxConns),
			StatementTimeout: cfg.Store.Postgres.StatementTimeout,
		})
		if err != nil {
			return nil, err
		}
		s = st
	default:
		return nil, fmt.Errorf("store.driver: unknown driver %q", cfg.Store.Driver)
	}
	if migrate {
		if err := s.Migrate(ctx); err != nil {
			s.Close()
			return nil, fmt.Errorf("migrate: %w", err)
		}
	}
	return s, nil
}

// newLogger returns the process logger writing to w in the configured level and format.
func newLogger(w io.Writer, c config.Log) *slog.Logger {
	var level slog.Level
	switch strings.ToLower(c.Level) {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// keyFormat and hasher build the key format and hasher of a configuration.
func keyFormat(cfg *config.Config) keystore.Format { return keystore.Format{Prefix: cfg.Keys.Prefix} }

func hasher(cfg *config.Config) *keystore.Hasher {
	prev := make([]string, len(cfg.Keys.PreviousSecrets))
	for i, s := range cfg.Keys.PreviousSecrets {
		prev[i] = s.Reveal()
	}
	return keystore.NewHasher(cfg.Keys.Secret.Reveal(), prev...)
}
