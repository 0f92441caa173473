package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keygate/keygate/admin"
	"github.com/keygate/keygate/keystore"
	"github.com/spf13/cobra"
)

func init() {
	extraCommands = append(extraCommands, newKeysCmd)
}

func newKeysCmd() *cobra.Command {
	return newGroupCmd("keys", "key", "Create, list, show, update, revoke and import API keys",
		newKeysCreateCmd(), newKeysListCmd(), newKeysShowCmd(), newKeysUpdateCmd(),
		newKeysRevokeCmd(), newKeysImportCmd())
}

func newKeysCreateCmd() *cobra.Command {
	var (
		principalID, name, ttl string
		scopes, rates          []string
	)
	cmd := &cobra.Command{
		Use:   "create --principal ID --name NAME [--scopes a,b] [--ttl 720h] [--rate-limit R]",
		Short: "Create a key; print it once on stdout and its record on stderr",
		Long: `Create an API key for a principal. The key is stored (only its HMAC) before it is
printed, alone on one line of stdout, so that "KEY=$(keygate keys create ...)" captures
exactly the key; the record (id, name, prefix, principal, expiry) goes to stderr. The key
is never shown again.

--scopes narrows the principal's scopes (empty: all of them). Without --ttl the key lives
for keys.default_ttl (0: no expiry); a ttl above keys.max_ttl is refused.`,
		Example: `  keygate keys create --principal acme --name ci --scopes read --ttl 720h`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(configPath(cmd))
			if err != nil {
				return err
			}
			var ttlFlag *string
			expiryField := "keys.default_ttl"
			if cmd.Flags().Changed("ttl") {
				ttlFlag, expiryField = &ttl, "--ttl"
			}
			now := time.Now()
			expires, expErr := keystore.KeyExpiry(now, nil, ttlFlag, cfg.Keys.DefaultTTL, cfg.Keys.MaxTTL)
			if err := errors.Join(
				checkPrincipalID(cfg, "--principal", principalID),
				keystore.ValidateName("--name", name),
				keystore.ValidateScopes("--scopes", scopes),
				keystore.ValidateRates("--rate-limit", rates),
				renameField(expErr, "ttl", expiryField),
			); err != nil {
				return err
			}

			ctx := cliContext(cmd)
			s, err := openCLIStore(ctx, cfg)
			if err != nil {
				return err
			}
			defer s.Close()
			p, err := s.GetPrincipal(ctx, principalID)
			if err != nil {
				return principalErr(principalID, err)
			}
			if p.Disabled() {
				return principalErr(principalID, keystore.ErrDisabled)
			}
			if err := keystore.CheckKeyScopes("--scopes", scopes, p.Scopes); err != nil {
				return err
			}
			k, plain, err := keystore.NewKey(keyFormat(cfg), hasher(cfg), p.ID, name)
			if err != nil {
				return err
			}
			k.Scopes, k.RateLimit, k.ExpiresAt = scopes, rates, expires
			if err := s.CreateKey(ctx, &k, cfg.Keys.MaxPerPrincipal); err != nil {
				if errors.Is(err, keystore.ErrTooManyKeys) {
					return fmt.Errorf("principal %q already holds the maximum of %d active keys (keys.max_per_principal)",
						principalID, cfg.Keys.MaxPerPrincipal)
				}
				return principalErr(principalID, err)
			}

			// Stored: only now may the plaintext be shown.
			fmt.Fprintln(cmd.OutOrStdout(), plain)
			tw := tabwriter.NewWriter(cmd.ErrOrStderr(), 0, 4, 1, ' ', 0)
			fmt.Fprintln(tw, "key created; it is printed once, on stdout, and cannot be shown again:")
			fmt.Fprintf(tw, "  id:\t%s\n", k.ID)
			fmt.Fprintf(tw, "  name:\t%s\n", k.Name)
			fmt.Fprintf(tw, "  prefix:\t%s\n", k.Prefix)
			fmt.Fprintf(tw, "  principal:\t%s\n", k.PrincipalID)
			fmt.Fprintf(tw, "  scopes:\t%s\n", showKeyScopes(k.Scopes))
			fmt.Fprintf(tw, "  expires:\t%s\n", showTime(k.ExpiresAt, "never"))
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&principalID, "principal", "", "id of the principal the key acts for (required)")
	f.StringVar(&name, "name", "", "name of the key, 1–100 characters (required)")
	f.StringSliceVar(&scopes, "scopes", nil, "scopes of the key, a subset of the principal's, comma-separated (default: all of the principal's)")
	f.StringVar(&ttl, "ttl", "", `lifetime of the key as a Go duration, e.g. "720h" (default keys.default_ttl)`)
	f.StringSliceVar(&rates, "rate-limit", nil, `the key's own rate limit, e.g. "100-M"; repeat or comma-separate for several periods`)
	cmd.MarkFlagRequired("principal")
	cmd.MarkFlagRequired("name")
	return cmd
}

func newKeysListCmd() *cobra.Command {
	var (
		principalID    string
		includeRevoked bool
		asJSON         bool
	)
	cmd := &cobra.Command{
		Use:   "list [--principal ID] [--include-revoked] [--json]",
		Short: "List keys (never the key itself or its hash)",
		Long: `List keys, oldest first: every principal's, or one principal's with --principal.
Only active keys unless --include-revoked (which adds revoked and expired ones).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(configPath(cmd))
			if err != nil {
				return err
			}
			if principalID != "" {
				if err := checkPrincipalID(cfg, "--principal", principalID); err != nil {
					return err
				}
			}
			ctx := cliContext(cmd)
			s, err := openCLIStore(ctx, cfg)
			if err != nil {
				return err
			}
			defer s.Close()
			all, _, err := listAll("", 0, func(o keystore.ListOptions) ([]keystore.Key, string, error) {
				o.IncludeRevoked = includeRevoked
				return s.ListKeys(ctx, principalID, o)
			})
			if err != nil {
				if principalID != "" {
					return principalErr(principalID, err)
				}
				return err
			}
			if len(all) == 0 && principalID != "" {
				// Tell "no keys" apart from a mistyped principal.
				if _, err := s.GetPrincipal(ctx, principalID); err != nil {
					return principalErr(principalID, err)
				}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, admin.ListOf(all, admin.KeyOut, ""))
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tPRINCIPAL\tNAME\tPREFIX\tCREATED\tEXPIRES\tREVOKED\tLAST USED\tUSAGE")
			for _, k := range all {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", k.ID, k.PrincipalID, k.Name,
					orDash(k.Prefix), showTime(&k.CreatedAt, "-"), showTime(k.ExpiresAt, "never"),
					showTime(k.RevokedAt, "-"), showTime(k.LastUsedAt, "never"), k.UsageCount)
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&principalID, "principal", "", "list only this principal's keys")
	f.BoolVar(&includeRevoked, "include-revoked", false, "list revoked and expired keys too")
	f.BoolVar(&asJSON, "json", false, "print JSON, as the admin API does")
	return cmd
}

func newKeysShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show KEY_ID [--json]",
		Short: "Show one key's record, revoked or not (never the key itself or its hash)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			ctx := cliContext(cmd)
			s, err := loadKeyStore(ctx, cmd, id)
			if err != nil {
				return err
			}
			defer s.Close()
			k, err := s.GetKey(ctx, id)
			if errors.Is(err, keystore.ErrNotFound) {
				return fmt.Errorf("key %s not found", id)
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, admin.KeyOut(&k))
			}
			return writeRecord(out,
				field{"id", k.ID},
				field{"principal", k.PrincipalID},
				field{"name", k.Name},
				field{"prefix", orDash(k.Prefix)},
				field{"scopes", showKeyScopes(k.Scopes)},
				field{"rate limit", orDash(strings.Join(k.RateLimit, ","))},
				field{"metadata", showMetadata(k.Metadata)},
				field{"legacy", yesNo(k.Legacy)},
				field{"created", showTime(&k.CreatedAt, "-")},
				field{"expires", showTime(k.ExpiresAt, "never")},
				field{"revoked", showTime(k.RevokedAt, "no")},
				field{"last used", showTime(k.LastUsedAt, "never")},
				field{"usage", strconv.FormatInt(k.UsageCount, 10)},
			)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON, as the admin API does")
	return cmd
}

func newKeysUpdateCmd() *cobra.Command {
	var (
		name, ttl     string
		scopes, rates []string
		noExpiry      bool
	)
	cmd := &cobra.Command{
		Use:   "update KEY_ID [--name S] [--scopes a,b] [--ttl D | --no-expiry] [--rate-limit R]",
		Short: "Change a key's name, scopes, expiry or rate limit: only the fields given change",
		Long: `Change an active (not revoked) key. Only the flags given change anything.
--scopes narrows the principal's scopes ("" for all of them); --rate-limit "" removes the
key's own limit. --ttl sets the expiry to that long from now (at most keys.max_ttl);
--no-expiry removes it, which keys.max_ttl, when set, forbids. A running serve on the
same store sees the change within a second.`,
		Example: `  keygate keys update 0190a6c4-1f2e-7c3d-8e4f-5a6b7c8d9e0f --name deploy --ttl 720h`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			fl := cmd.Flags()
			if err := exclusiveFlags(cmd, "ttl", "no-expiry"); err != nil {
				return err
			}
			if err := requireChange(cmd, "name", "scopes", "ttl", "no-expiry", "rate-limit"); err != nil {
				return err
			}
			cfg, err := loadConfig(configPath(cmd))
			if err != nil {
				return err
			}
			problems := []error{keystore.ValidateKeyID("KEY_ID", id)}
			if fl.Changed("name") {
				problems = append(problems, keystore.ValidateName("--name", name))
			}
			problems = append(problems, listFlagProblems(cmd, scopes, rates)...)
			var expires *time.Time
			if fl.Changed("ttl") {
				var err error
				expires, err = keystore.KeyExpiry(time.Now(), nil, &ttl, 0, cfg.Keys.MaxTTL)
				problems = append(problems, renameField(err, "ttl", "--ttl"))
			}
			if noExpiry && cfg.Keys.MaxTTL > 0 {
				problems = append(problems, fmt.Errorf("--no-expiry: keys.max_ttl is %s, so every key must expire; give --ttl", cfg.Keys.MaxTTL))
			}
			if err := errors.Join(problems...); err != nil {
				return err
			}

			ctx := cliContext(cmd)
			s, err := openCLIStore(ctx, cfg)
			if err != nil {
				return err
			}
			defer s.Close()
			k, err := s.GetKey(ctx, id)
			if errors.Is(err, keystore.ErrNotFound) || err == nil && k.RevokedAt != nil {
				return fmt.Errorf("key %s not found or revoked", id)
			}
			if err != nil {
				return err
			}
			if fl.Changed("name") {
				k.Name = name
			}
			if fl.Changed("scopes") {
				p, err := s.GetPrincipal(ctx, k.PrincipalID)
				if err != nil {
					return principalErr(k.PrincipalID, err)
				}
				if err := keystore.CheckKeyScopes("--scopes", scopes, p.Scopes); err != nil {
					return err
				}
				k.Scopes = scopes
			}
			if fl.Changed("rate-limit") {
				k.RateLimit = rates
			}
			switch {
			case fl.Changed("ttl"):
				k.ExpiresAt = expires
			case noExpiry:
				k.ExpiresAt = nil
			}
			if err := s.UpdateKey(ctx, &k); err != nil {
				switch {
				case errors.Is(err, keystore.ErrNotFound):
					return fmt.Errorf("key %s not found or revoked", id)
				case errors.Is(err, keystore.ErrScopeNotHeld):
					return fmt.Errorf("--scopes: a scope is not held by principal %q", k.PrincipalID)
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "key %s (%s, principal %q) updated; expires: %s\n",
				k.ID, orDash(k.Prefix), k.PrincipalID, showTime(k.ExpiresAt, "never"))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "new name, 1–100 characters")
	f.StringSliceVar(&scopes, "scopes", nil, `new scopes, a subset of the principal's ("" for all of the principal's)`)
	f.StringVar(&ttl, "ttl", "", `expire this long from now, a Go duration such as "720h"`)
	f.BoolVar(&noExpiry, "no-expiry", false, "never expire (refused when keys.max_ttl is set)")
	f.StringSliceVar(&rates, "rate-limit", nil, `new rate limit, e.g. "100-M" ("" for none of its own)`)
	return cmd
}

func newKeysRevokeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke KEY_ID",
		Short: "Revoke a key",
		Long: `Revoke a key. A running serve on the same store refuses it within a second.
Revoking a key that is unknown or already revoked fails.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			ctx := cliContext(cmd)
			s, err := loadKeyStore(ctx, cmd, id)
			if err != nil {
				return err
			}
			defer s.Close()
			k, err := s.RevokeKey(ctx, id)
			if errors.Is(err, keystore.ErrNotFound) {
				return fmt.Errorf("key %s not found or already revoked", id)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "key %s (%s, principal %q) revoked at %s\n",
				k.ID, orDash(k.Prefix), k.PrincipalID, showTime(k.RevokedAt, "-"))
			return nil
		},
	}
}

// showKeyScopes formats a key's scopes; none means all of its principal's.
func showKeyScopes(ss []string) string {
	if len(ss) == 0 {
		return "(all of the principal's)"
	}
	return strings.Join(ss, ",")
}
