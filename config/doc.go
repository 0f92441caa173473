// Package config owns keygate's configuration file: the schema (one struct per YAML
// section, each field documented with its default), Default, the syntax of every
// value in it (rates, CIDRs, URLs, redacting secrets), loading (${VAR} expansion in
// scalar values, unknown keys rejected, every error named by its field path and
// reported at once) and Validate. It imports no other keygate package and leaves
// to each user what a value means at run time.
//
// Use:
//
//	cfg, err := config.Load(path) // syntax, types, unknown keys, ${VAR}
//	if err != nil {
//		return err // a config.Errors: one problem per line
//	}
//	if errs := cfg.Validate(); errs != nil {
//		return config.Errors(errs)
//	}
//
// No error message of this package holds the value of a Secret field.
package config
