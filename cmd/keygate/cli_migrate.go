package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

func init() {
	extraCommands = append(extraCommands, newMigrateCmd)
}

// schemaVersioner is what migrate asks a store that can tell its schema version.
type schemaVersioner interface {
	SchemaVersion(ctx context.Context) (int, error)
}

func newMigrateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate [--config FILE]",
		Short: "Bring the store's schema up to date",
		Long: `Apply the schema migrations the configured store lacks. Running it again, or from
several processes at once, applies nothing twice. serve does this itself for the
embedded sqlite store.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, err := loadConfig(configPath(cmd))
			if err != nil {
				return err
			}
			s, err := openStore(ctx, cfg, false)
			if err != nil {
				return err
			}
			defer s.Close()
			sv, hasVersion := s.(schemaVersioner)
			before := -1
			if hasVersion {
				if before, err = sv.SchemaVersion(ctx); err != nil {
					return err
				}
			}
			if err := s.Migrate(ctx); err != nil {
				return fmt.Errorf("migrate: %w", err)
			}
			out := cmd.OutOrStdout()
			if !hasVersion {
				fmt.Fprintf(out, "%s store: schema is up to date\n", cfg.Store.Driver)
				return nil
			}
			after, err := sv.SchemaVersion(ctx)
			if err != nil {
				return err
			}
			if after == before {
				fmt.Fprintf(out, "%s store: schema already at version %d, nothing to do\n", cfg.Store.Driver, after)
			} else {
				fmt.Fprintf(out, "%s store: schema migrated from version %d to %d\n", cfg.Store.Driver, before, after)
			}
			return nil
		},
	}
}
