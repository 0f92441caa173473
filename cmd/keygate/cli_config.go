package main

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/keygate/keygate/config"
	"github.com/spf13/cobra"
)

func init() {
	extraCommands = append(extraCommands, newConfigCmd, newVersionCmd)
}

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check the configuration file",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "check [--config FILE]",
		Short: "Load and validate the configuration; print every problem",
		Long: `Load the configuration file (--config, else $KEYGATE_CONFIG, else ./keygate.yaml),
expand ${VAR} references and validate every value. Every problem is printed on stderr,
one per line, with its field path; the exit status is 1 when there is any.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := configPath(cmd)
			var problems []error
			cfg, err := config.Load(path)
			if err != nil {
				problems = flattenErrors(err)
			} else {
				problems = flattenErrors(cfg.Validate()...)
			}
			if len(problems) > 0 {
				w := cmd.ErrOrStderr()
				for _, p := range problems {
					fmt.Fprintln(w, p)
				}
				return exitError(1)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "config OK: %s\n", path)
			return nil
		},
	})
	return cmd
}

// flattenErrors returns the single problems inside errs: a config.Errors counts as each
// of the errors it holds.
func flattenErrors(errs ...error) []error {
	var out []error
	for _, err := range errs {
		var es config.Errors
		switch {
		case err == nil:
		case errors.As(err, &es) && len(es) > 0:
			out = append(out, flattenErrors(es...)...)
		default:
			out = append(out, err)
		}
	}
	return out
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the keygate version, the Go version and the platform",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "keygate %s %s %s/%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}
