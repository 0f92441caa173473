package keystore

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/keygate/keygate/config"
)

// Limits on the values the admin API and the CLI accept.
const (
	// MaxPrincipalIDLen is the longest principal id, in bytes (ids are ASCII).
	MaxPrincipalIDLen = 64
	// MaxNameLen is the longest key name, in characters.
	MaxNameLen = 100
	// MaxDisplayNameLen is the longest display name of a principal, in characters.
	MaxDisplayNameLen = 200
	// MaxScopes is the most scopes a principal or key may list.
	MaxScopes = 100
	// MaxScopeLen is the longest scope, in characters.
	MaxScopeLen = 100
	// MaxMetadataEntries is the most metadata entries a principal or key may hold.
	MaxMetadataEntries = 50
	// MaxMetadataKeyLen is the longest metadata key, in characters.
	MaxMetadataKeyLen = 100
	// MaxMetadataValueLen is the longest metadata value, in characters.
	MaxMetadataValueLen = 1000
	// MaxRates is the most rates one rate_limit may list.
	MaxRates = 4
)

// ErrAboveMaxTTL is wrapped by KeyExpiry's error when the asked lifetime exceeds
// keys.max_ttl (the admin API answers 422, not 400).
var ErrAboveMaxTTL = errors.New("keystore: lifetime above keys.max_ttl")

// FieldError is a validation error of one input field. Its message names the field
// ("scopes[1]: must not contain spaces") and never quotes a secret. Err, when set, is
// a sentinel (ErrScopeNotHeld, ErrAboveMaxTTL) that callers may test with errors.Is;
// without it the input is simply malformed.
type FieldError struct {
	Field string
	Msg   string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Unwrap returns the sentinel, if any.
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// ValidatePrincipalID checks a principal id (field "id"): 1–64 of [a-zA-Z0-9._-], not
// "." or "..", and not starting with the key prefix (such a value is always read as a
// key, so the principal could never log in with a password).
func ValidatePrincipalID(id, keyPrefix string) error {
	const field = "id"
	if id == "" {
		return fieldErr(field, "required")
	}
	if len(id) > MaxPrincipalIDLen {
		return fieldErr(field, "at most %d characters, got %d", MaxPrincipalIDLen, len(id))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !isBase62(c) && c != '.' && c != '_' && c != '-' {
			return fieldErr(field, "only letters, digits, '.', '_' and '-' are allowed, got %q at position %d", rune(c), i)
		}
	}
	if id == "." || id == ".." {
		return fieldErr(field, "must not be %q", id)
	}
	if keyPrefix != "" && strings.HasPrefix(id, keyPrefix) {
		return fieldErr(field, "must not start with the key prefix %q", keyPrefix)
	}
	return nil
}

// ValidateKeyID checks that id is a UUID in its canonical textual form.
func ValidateKeyID(field, id string) error {
	if id == "" {
		return fieldErr(field, "required")
	}
	if len(id) != 36 {
		return fieldErr(field, "must be a UUID")
	}
	if _, err := uuid.Parse(id); err != nil {
		return fieldErr(field, "must be a UUID")
	}
	return nil
}

// ValidateName checks a required name (a key's name): 1–100 characters of valid UTF-8,
// no control characters.
func ValidateName(field, s string) error {
	if s == "" {
		return fieldErr(field, "required")
	}
	return checkText(field, s, MaxNameLen)
}

// ValidateDisplayName checks an optional display name: at most 200 characters of valid
// UTF-8, no control characters. "" is allowed.
func ValidateDisplayName(field, s string) error {
	return checkText(field, s, MaxDisplayNameLen)
}

// checkText checks that s is valid UTF-8 of at most max characters without control
// characters (CR, LF, NUL, TAB, DEL, C1): they would end up in identity headers and logs.
func checkText(field, s string, max int) error {
	if !utf8.ValidString(s) {
		return fieldErr(field, "must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > max {
		return fieldErr(field, "at most %d characters, got %d", max, n)
	}
	for i, r := range s {
		if unicode.IsControl(r) {
			return fieldErr(field, "must not contain control characters, got %q at position %d", r, i)
		}
	}
	return nil
}

// ValidateScopes checks a scope list: at most 100 scopes, each 1–100 characters with no
// ',', whitespace or control characters, no duplicates. An empty list is allowed.
func ValidateScopes(field string, ss []string) error {
	if len(ss) > MaxScopes {
		return fieldErr(field, "at most %d scopes, got %d", MaxScopes, len(ss))
	}
	for i, s := range ss {
		f := field + "[" + strconv.Itoa(i) + "]"
		if s == "" {
			return fieldErr(f, "must not be empty")
		}
		if err := checkText(f, s, MaxScopeLen); err != nil {
			return err
		}
		for _, r := range s {
			if r == ',' || unicode.IsSpace(r) {
				return fieldErr(f, "must not contain ',' or spaces, got %q", s)
			}
		}
		if slices.Contains(ss[:i], s) {
			return fieldErr(f, "duplicate scope %q", s)
		}
	}
	return nil
}

// CheckKeyScopes reports, as a FieldError wrapping ErrScopeNotHeld, the first scope of
// a key that its principal does not hold. Empty key scopes mean all of the principal's.
func CheckKeyScopes(field string, keyScopes, principalScopes []string) error {
	for i, s := range keyScopes {
		if !slices.Contains(principalScopes, s) {
			return &FieldError{
				Field: field + "[" + strconv.Itoa(i) + "]",
				Msg:   fmt.Sprintf("scope %q is not held by the principal", s),
				Err:   ErrScopeNotHeld,
			}
		}
	}
	return nil
}

// ValidateMetadata checks a metadata map: at most 50 entries, keys 1–100 characters,
// values at most 1000 characters, valid UTF-8 without control characters.
func ValidateMetadata(field string, m map[string]string) error {
	if len(m) > MaxMetadataEntries {
		return fieldErr(field, "at most %d entries, got %d", MaxMetadataEntries, len(m))
	}
	// Sorted, so that the error names the same entry every time.
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if k == "" {
			return fieldErr(field, "keys must not be empty")
		}
		if err := checkText(field+" key", k, MaxMetadataKeyLen); err != nil {
			return err
		}
		if err := checkText(field+"."+k, m[k], MaxMetadataValueLen); err != nil {
			return err
		}
	}
	return nil
}

// ValidateRates checks a rate_limit list: at most 4 rates, each in the limiter's format
// with a positive count and an upper-case period ("100-M", "10-S", "5000-H", "100000-D"),
// no two with the same period. An empty list (no limit of its own) is allowed.
func ValidateRates(field string, rs []string) error {
	if len(rs) > MaxRates {
		return fieldErr(field, "at most %d rates, got %d", MaxRates, len(rs))
	}
	for i, r := range rs {
		f := field
		if len(rs) > 1 {
			f = field + "[" + strconv.Itoa(i) + "]"
		}
		if err := ValidateRate(f, r); err != nil {
			return err
		}
		for _, prev := range rs[:i] {
			if prev[len(prev)-1] == r[len(r)-1] {
				return fieldErr(f, "two rates per period %c", r[len(r)-1])
			}
		}
	}
	return nil
}

// ValidateRate checks one rate string with config.ParseRate: ^[1-9][0-9]*-[SMHD]$ with a
// count that fits the limiter. The limiter itself also accepts "0-M", "+5-M" and "5-m";
// keygate does not.
func ValidateRate(field, s string) error {
	if _, err := config.ParseRate(s); err != nil {
		return &FieldError{Field: field, Msg: err.Error()}
	}
	return nil
}

// KeyExpiry returns when a new key expires, from at most one of expiresAt and ttl (a Go
// duration string), else defaultTTL (0: never). Fields are named "expires_at" and "ttl".
// Errors: both given, an unparsable or non-positive ttl, or a time not in the future are
// plain FieldErrors; a lifetime above maxTTL (> 0) wraps ErrAboveMaxTTL. The result is
// truncated to whole seconds, as times are shown.
func KeyExpiry(now time.Time, expiresAt *time.Time, ttl *string, defaultTTL, maxTTL time.Duration) (*time.Time, error) {
	var (
		at    time.Time
		field string
	)
	switch {
	case expiresAt != nil && ttl != nil:
		return nil, fieldErr("ttl", "give expires_at or ttl, not both")
	case expiresAt != nil:
		field, at = "expires_at", *expiresAt
		if !at.After(now) {
			return nil, fieldErr(field, "must be in the future, got %s", at.UTC().Format(time.RFC3339))
		}
	case ttl != nil:
		field = "ttl"
		d, err := time.ParseDuration(*ttl)
		if err != nil {
			return nil, fieldErr(field, "bad duration %q: want a Go duration such as \"720h\"", *ttl)
		}
		if d <= 0 {
			return nil, fieldErr(field, "must be positive, got %q", *ttl)
		}
		if maxTTL > 0 && d > maxTTL {
			return nil, &FieldError{Field: field, Msg: fmt.Sprintf("%s is above keys.max_ttl (%s)", d, maxTTL), Err: ErrAboveMaxTTL}
		}
		at = now.Add(d)
	case defaultTTL > 0:
		field, at = "ttl", now.Add(defaultTTL)
	default:
		return nil, nil
	}
	if maxTTL > 0 && at.Sub(now) > maxTTL {
		return nil, &FieldError{Field: field, Msg: fmt.Sprintf("lifetime %s is above keys.max_ttl (%s)", at.Sub(now).Round(time.Second), maxTTL), Err: ErrAboveMaxTTL}
	}
	at = at.UTC().Truncate(time.Second)
	if !at.After(now) {
		return nil, fieldErr(field, "must be at least one second in the future")
	}
	return &at, nil
}

// Limits on a principal's password.
const (
	// MinPasswordLen is the shortest password, in characters.
	MinPasswordLen = 8
	// MaxPasswordLen is the longest password, in characters: it bounds the work of one
	// hash and of every later check.
	MaxPasswordLen = 1024
)

// ValidatePassword checks a principal's password: 8–1024 characters of valid UTF-8,
// without NUL (C-based tools and bcrypt stop at it). Its errors name the field and the
// length at most, never the password or a part of it.
func ValidatePassword(field, pw string) error {
	if !utf8.ValidString(pw) {
		return fieldErr(field, "must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(pw); n < MinPasswordLen || n > MaxPasswordLen {
		return fieldErr(field, "must be %d to %d characters, got %d", MinPasswordLen, MaxPasswordLen, n)
	}
	if strings.IndexByte(pw, 0) >= 0 {
		return fieldErr(field, "must not contain NUL")
	}
	return nil
}
