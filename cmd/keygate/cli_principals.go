package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keygate/keygate/admin"
	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/keystore"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func init() {
	extraCommands = append(extraCommands, newPrincipalsCmd)
}

func newPrincipalsCmd() *cobra.Command {
	return newGroupCmd("principals", "principal", "Create, list, show, update and delete principals (the accounts keys act for)",
		newPrincipalsCreateCmd(), newPrincipalsListCmd(), newPrincipalsShowCmd(),
		newPrincipalsUpdateCmd(), newPrincipalsDeleteCmd())
}

// newGroupCmd is a command that only holds subcommands: use, one alias, short help.
func newGroupCmd(use, alias, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:     use,
		Aliases: []string{alias},
		Short:   short,
		Args:    cobra.NoArgs,
	}
	cmd.AddCommand(subs...)
	return cmd
}

func newPrincipalsCreateCmd() *cobra.Command {
	var (
		displayName   string
		scopes        []string
		rates         []string
		passwordStdin bool
	)
	cmd := &cobra.Command{
		Use:   "create ID [--display-name S] [--password-stdin] [--scopes a,b] [--rate-limit R]",
		Short: "Create a principal",
		Long: `Create a principal. ID is 1–64 of [a-zA-Z0-9._-] and may not start with the key
prefix; the id of a deleted principal cannot be taken again. --rate-limit may be given
more than once or as a comma-separated list, one rate per period ("10-S,1000-H").

--password-stdin reads the principal's password (for Basic id:password credentials) from
the first line of stdin, without its line ending: at most 1024 bytes, no NUL. On a
terminal it is asked for without echo. Only its argon2id hash is stored.`,
		Example: `  keygate principals create acme --display-name "ACME Corp" --scopes read,write --rate-limit 100-M
  printf '%s\n' "$ACME_PASSWORD" | keygate principals create acme --password-stdin`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			cfg, err := loadConfig(configPath(cmd))
			if err != nil {
				return err
			}
			if err := errors.Join(
				checkPrincipalID(cfg, "ID", id),
				keystore.ValidateDisplayName("--display-name", displayName),
				keystore.ValidateScopes("--scopes", scopes),
				keystore.ValidateRates("--rate-limit", rates),
			); err != nil {
				return err
			}
			p := keystore.Principal{ID: id, DisplayName: displayName, Scopes: scopes, RateLimit: rates}
			if passwordStdin {
				if p.PasswordHash, err = passwordFromStdin(cmd); err != nil {
					return err
				}
			}
			ctx := cliContext(cmd)
			s, err := openCLIStore(ctx, cfg)
			if err != nil {
				return err
			}
			defer s.Close()
			if err := s.CreatePrincipal(ctx, &p); err != nil {
				return principalErr(id, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "principal %q created\n", p.ID)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&displayName, "display-name", "", "human-readable name of the principal")
	f.BoolVar(&passwordStdin, "password-stdin", false, "read the principal's password from the first line of stdin")
	f.StringSliceVar(&scopes, "scopes", nil, "scopes the principal holds, comma-separated")
	f.StringSliceVar(&rates, "rate-limit", nil, `the principal's own rate limit, e.g. "100-M"; repeat or comma-separate for several periods`)
	return cmd
}

func newPrincipalsUpdateCmd() *cobra.Command {
	var (
		displayName               string
		scopes, rates             []string
		passwordStdin, noPassword bool
		disable, enable           bool
	)
	cmd := &cobra.Command{
		Use:   "update ID [--display-name S] [--password-stdin | --no-password] [--scopes a,b] [--rate-limit R] [--disable | --enable]",
		Short: "Change a principal: only the fields given change",
		Long: `Change a principal. Only the flags given change anything; --scopes "" and
--rate-limit "" clear the list. --password-stdin sets the password as "create" reads it,
--no-password removes it. --disable revokes all the principal's keys at once and refuses
its password; --enable restores the password, not the keys. A running serve on the same
store sees the change within a second.`,
		Example: `  keygate principals update acme --scopes read --rate-limit 50-M
  keygate principals update acme --disable`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			fl := cmd.Flags()
			if err := errors.Join(
				exclusiveFlags(cmd, "password-stdin", "no-password"),
				exclusiveFlags(cmd, "disable", "enable"),
			); err != nil {
				return err
			}
			if err := requireChange(cmd, "display-name", "password-stdin", "no-password", "scopes", "rate-limit", "disable", "enable"); err != nil {
				return err
			}
			cfg, err := loadConfig(configPath(cmd))
			if err != nil {
				return err
			}
			var problems []error
			problems = append(problems, checkPrincipalID(cfg, "ID", id))
			if fl.Changed("display-name") {
				problems = append(problems, keystore.ValidateDisplayName("--display-name", displayName))
			}
			problems = append(problems, listFlagProblems(cmd, scopes, rates)...)
			if err := errors.Join(problems...); err != nil {
				return err
			}
			var pwHash string
			if passwordStdin {
				if pwHash, err = passwordFromStdin(cmd); err != nil {
					return err
				}
			}

			ctx := cliContext(cmd)
			s, err := openCLIStore(ctx, cfg)
			if err != nil {
				return err
			}
			defer s.Close()
			p, err := s.GetPrincipal(ctx, id)
			if err != nil {
				return principalErr(id, err)
			}
			wasDisabled := p.Disabled()
			if fl.Changed("display-name") {
				p.DisplayName = displayName
			}
			switch {
			case passwordStdin:
				p.PasswordHash = pwHash
			case noPassword:
				p.PasswordHash = ""
			}
			if fl.Changed("scopes") {
				p.Scopes = scopes
			}
			if fl.Changed("rate-limit") {
				p.RateLimit = rates
			}
			switch {
			case disable && !wasDisabled:
				now := time.Now().UTC().Truncate(time.Second)
				p.DisabledAt = &now
			case enable:
				p.DisabledAt = nil
			}
			if err := s.UpdatePrincipal(ctx, &p); err != nil {
				return principalErr(id, err)
			}
			out := cmd.OutOrStdout()
			switch {
			case disable && !wasDisabled:
				fmt.Fprintf(out, "principal %q disabled; its keys are revoked\n", id)
			case disable:
				fmt.Fprintf(out, "principal %q updated (it was already disabled)\n", id)
			case enable && wasDisabled:
				fmt.Fprintf(out, "principal %q enabled; its password works again, its revoked keys stay revoked\n", id)
			default:
				fmt.Fprintf(out, "principal %q updated\n", id)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&displayName, "display-name", "", "new display name")
	f.BoolVar(&passwordStdin, "password-stdin", false, "set the password, read from the first line of stdin")
	f.BoolVar(&noPassword, "no-password", false, "remove the password")
	f.StringSliceVar(&scopes, "scopes", nil, `new scopes, comma-separated ("" for none)`)
	f.StringSliceVar(&rates, "rate-limit", nil, `new rate limit, e.g. "100-M" ("" for none of its own)`)
	f.BoolVar(&disable, "disable", false, "disable the principal and revoke all its keys")
	f.BoolVar(&enable, "enable", false, "enable the principal again (its revoked keys stay revoked)")
	return cmd
}

// exclusiveFlags returns an error naming both flags when a and b are both given.
func exclusiveFlags(cmd *cobra.Command, a, b string) error {
	if cmd.Flags().Changed(a) && cmd.Flags().Changed(b) {
		return fmt.Errorf("--%s and --%s: give one, not both", a, b)
	}
	return nil
}

// requireChange returns an error naming the flags when none of them is given: an update
// with nothing to change.
func requireChange(cmd *cobra.Command, flags ...string) error {
	if !slices.ContainsFunc(flags, cmd.Flags().Changed) {
		return errors.New("nothing to change: give at least one of --" + strings.Join(flags, ", --"))
	}
	return nil
}

// listFlagProblems validates --scopes and --rate-limit, those given, for the update
// commands. Nil entries are dropped by errors.Join.
func listFlagProblems(cmd *cobra.Command, scopes, rates []string) []error {
	var problems []error
	if cmd.Flags().Changed("scopes") {
		problems = append(problems, keystore.ValidateScopes("--scopes", scopes))
	}
	if cmd.Flags().Changed("rate-limit") {
		problems = append(problems, keystore.ValidateRates("--rate-limit", rates))
	}
	return problems
}

// maxPasswordLen is the longest password --password-stdin accepts, in bytes.
const maxPasswordLen = 1024

// passwordFromStdin reads a password as --password-stdin does and returns its argon2id
// hash. The password is read from the first line of the command's stdin, without its line
// ending; on a terminal it is asked for without echo. It is never printed: errors name
// the flag and the rule, not the value.
func passwordFromStdin(cmd *cobra.Command) (string, error) {
	const field = "--password-stdin"
	in := cmd.InOrStdin()
	var (
		line []byte
		err  error
	)
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(cmd.ErrOrStderr(), "password: ")
		line, err = term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
	} else {
		// Read no more than a too-long first line needs to be told apart.
		line, err = io.ReadAll(io.LimitReader(in, maxPasswordLen+3))
		line, _, _ = bytes.Cut(line, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
	}
	defer clear(line)
	switch {
	case err != nil:
		return "", fmt.Errorf("%s: read: %w", field, err)
	case len(line) == 0:
		return "", fmt.Errorf("%s: empty password", field)
	case len(line) > maxPasswordLen:
		return "", fmt.Errorf("%s: password longer than %d bytes", field, maxPasswordLen)
	case bytes.IndexByte(line, 0) >= 0:
		return "", fmt.Errorf("%s: password contains a NUL byte", field)
	}
	h, err := auth.HashPassword(string(line))
	if err != nil {
		return "", fmt.Errorf("%s: hash password: %w", field, err)
	}
	return h, nil
}

func newPrincipalsListCmd() *cobra.Command {
	var (
		limit  int
		cursor string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list [--limit N] [--json]",
		Short: "List principals, ordered by id",
		Long: `List principals ordered by id (deleted ones are not listed). Without --limit every
principal is listed; with it, at most N, and --json gives the cursor of the next page
as next_cursor, to pass to --cursor.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 0 {
				return fmt.Errorf("--limit: must not be negative, got %d", limit)
			}
			ctx := cliContext(cmd)
			s, _, err := loadCLIStore(ctx, cmd)
			if err != nil {
				return err
			}
			defer s.Close()
			all, next, err := listAll(cursor, limit, func(o keystore.ListOptions) ([]keystore.Principal, string, error) {
				return s.ListPrincipals(ctx, o)
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, admin.ListOf(all, admin.PrincipalOut, next))
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tDISPLAY NAME\tSCOPES\tRATE LIMIT\tCREATED\tDISABLED")
			for _, p := range all {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, orDash(p.DisplayName),
					orDash(strings.Join(p.Scopes, ",")), orDash(strings.Join(p.RateLimit, ",")),
					showTime(&p.CreatedAt, "-"), showTime(p.DisabledAt, "-"))
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.IntVar(&limit, "limit", 0, "list at most N principals (0: all)")
	f.StringVar(&cursor, "cursor", "", "start after this cursor (next_cursor of a previous --json listing)")
	f.BoolVar(&asJSON, "json", false, "print JSON, as the admin API does")
	return cmd
}

func newPrincipalsShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID [--json]",
		Short: "Show one principal",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			ctx := cliContext(cmd)
			s, err := loadPrincipalStore(ctx, cmd, id)
			if err != nil {
				return err
			}
			defer s.Close()
			p, err := s.GetPrincipal(ctx, id)
			if err != nil {
				return principalErr(id, err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, admin.PrincipalOut(&p))
			}
			return writeRecord(out,
				field{"id", p.ID},
				field{"display name", orDash(p.DisplayName)},
				field{"scopes", orDash(strings.Join(p.Scopes, ","))},
				field{"rate limit", orDash(strings.Join(p.RateLimit, ","))},
				field{"metadata", showMetadata(p.Metadata)},
				field{"password", yesNo(p.PasswordHash != "")},
				field{"created", showTime(&p.CreatedAt, "-")},
				field{"updated", showTime(&p.UpdatedAt, "-")},
				field{"disabled", showTime(p.DisabledAt, "no")},
			)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON, as the admin API does")
	return cmd
}

func newPrincipalsDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a principal and revoke all its keys",
		Long: `Delete a principal: all its keys are revoked and it is marked deleted, in one
transaction. Its id cannot be taken again. A running serve on the same store stops
accepting its keys within a second.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			ctx := cliContext(cmd)
			s, err := loadPrincipalStore(ctx, cmd, id)
			if err != nil {
				return err
			}
			defer s.Close()
			if err := s.DeletePrincipal(ctx, id); err != nil {
				return principalErr(id, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "principal %q deleted; its keys are revoked\n", id)
			return nil
		},
	}
}

// cliPageSize is the page size of the store listings behind the list commands.
const cliPageSize = 100

// loadCLIStore loads the configuration and opens its store for a CLI command.
func loadCLIStore(ctx context.Context, cmd *cobra.Command) (keystore.Store, *config.Config, error) {
	cfg, err := loadConfig(configPath(cmd))
	if err != nil {
		return nil, nil, err
	}
	s, err := openCLIStore(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return s, cfg, nil
}

// loadPrincipalStore checks the principal id argument ID against the configuration, and
// only then opens the store: a bad id is reported without touching the store.
func loadPrincipalStore(ctx context.Context, cmd *cobra.Command, id string) (keystore.Store, error) {
	cfg, err := loadConfig(configPath(cmd))
	if err != nil {
		return nil, err
	}
	if err := checkPrincipalID(cfg, "ID", id); err != nil {
		return nil, err
	}
	return openCLIStore(ctx, cfg)
}

// loadKeyStore checks the key id argument KEY_ID, and only then loads the configuration
// and opens its store.
func loadKeyStore(ctx context.Context, cmd *cobra.Command, id string) (keystore.Store, error) {
	if err := keystore.ValidateKeyID("KEY_ID", id); err != nil {
		return nil, err
	}
	s, _, err := loadCLIStore(ctx, cmd)
	return s, err
}

// listAll gathers the pages of a store listing from cursor on: every item, or at most
// limit when limit > 0, and the cursor after the last page read ("" at the end).
func listAll[T any](cursor string, limit int, list func(keystore.ListOptions) ([]T, string, error)) ([]T, string, error) {
	var all []T
	next := cursor
	for {
		n := cliPageSize
		if limit > 0 {
			n = min(cliPageSize, limit-len(all))
		}
		page, nc, err := list(keystore.ListOptions{Limit: n, Cursor: next})
		if err != nil {
			return nil, "", err
		}
		all, next = append(all, page...), nc
		if next == "" || (limit > 0 && len(all) >= limit) {
			return all, next, nil
		}
	}
}

// field is one line of a record shown by writeRecord: a name and its value.
type field struct{ name, value string }

// writeRecord writes a record as "name:" and its value, one field a line, values aligned.
func writeRecord(w io.Writer, fields ...field) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, f := range fields {
		fmt.Fprintf(tw, "%s:\t%s\n", f.name, f.value)
	}
	return tw.Flush()
}

// openCLIStore opens the store as serve does: the embedded sqlite store migrates itself,
// a shared database is migrated only by "keygate migrate".
func openCLIStore(ctx context.Context, cfg *config.Config) (keystore.Store, error) {
	return openStore(ctx, cfg, cfg.Store.Driver == "sqlite")
}

// cliContext returns the command's context naming the CLI as the actor of the writes
// made with it, for the audit log.
func cliContext(cmd *cobra.Command) context.Context {
	return keystore.WithActor(cmd.Context(), "cli")
}

// checkPrincipalID checks a principal id given as the argument or flag named field. An
// id that starts with the key prefix is refused before it can be quoted in a "not found"
// message: it may be a key pasted in the wrong place.
func checkPrincipalID(cfg *config.Config, field, id string) error {
	return renameField(keystore.ValidatePrincipalID(id, cfg.Keys.Prefix), "id", field)
}

// principalErr words a store error about principal id for the terminal.
func principalErr(id string, err error) error {
	switch {
	case errors.Is(err, keystore.ErrNotFound):
		return fmt.Errorf("principal %q not found", id)
	case errors.Is(err, keystore.ErrConflict):
		return fmt.Errorf("principal %q already exists (ids of deleted principals cannot be reused)", id)
	case errors.Is(err, keystore.ErrDisabled):
		return fmt.Errorf("principal %q is disabled", id)
	}
	return err
}

// renameField returns err with the field of a keystore.FieldError renamed from "from"
// (or "from[i]") to "to", so that the message names the argument or flag the user typed.
func renameField(err error, from, to string) error {
	var fe *keystore.FieldError
	if err == nil || !errors.As(err, &fe) {
		return err
	}
	if fe.Field != from && !strings.HasPrefix(fe.Field, from+"[") {
		return err
	}
	return &keystore.FieldError{Field: to + strings.TrimPrefix(fe.Field, from), Msg: fe.Msg, Err: fe.Err}
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// timeOut formats t as RFC 3339 UTC; nil or zero: null.
func timeOut(t *time.Time) *string {
	if t == nil || t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

// showTime formats t for a table: RFC 3339 UTC, or none when t is nil or zero.
func showTime(t *time.Time, none string) string {
	if s := timeOut(t); s != nil {
		return *s
	}
	return none
}

func showMetadata(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%q", k, m[k])
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
