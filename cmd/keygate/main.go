// Command keygate is the API-key gateway: serve, config, migrate, principals, keys,
// version. See README.md and SPEC §7.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := newRootCmd().Execute(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(int(ee))
		}
		fmt.Fprintln(os.Stderr, "keygate:", err)
		os.Exit(1)
	}
}

// exitError ends the process with a status and no further message (the command has
// already said what was wrong).
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "keygate",
		Short:         "keygate is an API-key gateway in front of HTTP APIs",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("config", "", "configuration file (default $KEYGATE_CONFIG, then ./keygate.yaml)")
	root.AddCommand(newServeCmd())
	for _, add := range extraCommands {
		root.AddCommand(add())
	}
	return root
}

// extraCommands are the subcommands registered by other files of this package.
var extraCommands []func() *cobra.Command
