package config

import (
	"log/slog"
	"net/url"
)

// Secret is a configuration value that must never be printed.
type Secret string

func (Secret) String() string               { return "[redacted]" }
func (Secret) GoString() string             { return "[redacted]" }
func (Secret) LogValue() slog.Value         { return slog.StringValue("[redacted]") }
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }

// Reveal returns the secret itself; grep-able in review.
func (s Secret) Reveal() string { return string(s) }

// URL is a parsed URL value (a route's upstream).
type URL struct{ *url.URL }
