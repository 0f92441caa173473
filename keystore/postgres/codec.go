package postgres

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate/keystore"
)

// list returns v, or an empty list for nil: the columns are NOT NULL and pgx sends a nil
// slice as NULL.
func list(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

// dict returns m, or an empty map for nil.
func dict(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// nilIfEmpty returns nil for an empty list: empty and absent are the same.
func nilIfEmpty(v []string) []string {
	if len(v) == 0 {
		return nil
	}
	return v
}

func nilIfEmptyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

// usecPtr returns a copy of *t in UTC truncated to the microsecond (what is stored), or nil.
func usecPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC().Truncate(time.Microsecond)
	return &u
}

// validUUID reports whether id can be a key id; others are unknown to every method.
func validUUID(id string) bool {
	_, err := uuid.Parse(id)
	return err == nil
}

// Cursors are opaque: base64url of the last row's sort key, parts joined with NUL.

func encCursor(parts ...string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strings.Join(parts, "\x00")))
}

func decCursor(c string, n int) ([]string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return nil, keystore.ErrBadCursor
	}
	parts := strings.Split(string(b), "\x00")
	if len(parts) != n {
		return nil, keystore.ErrBadCursor
	}
	return parts, nil
}

// keyCursor is the cursor after a key: its creation time (Unix microseconds) and id.
func keyCursor(k keystore.Key) string {
	return encCursor(strconv.FormatInt(k.CreatedAt.UnixMicro(), 10), k.ID)
}

func decKeyCursor(c string) (time.Time, string, error) {
	parts, err := decCursor(c, 2)
	if err != nil {
		return time.Time{}, "", err
	}
	us, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil || !validUUID(parts[1]) {
		return time.Time{}, "", keystore.ErrBadCursor
	}
	return time.UnixMicro(us).UTC(), parts[1], nil
}

func decIDCursor(c string) (int64, error) {
	parts, err := decCursor(c, 1)
	if err != nil {
		return 0, err
	}
	id, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil || id <= 0 {
		return 0, keystore.ErrBadCursor
	}
	return id, nil
}

// pageLimit applies ListOptions.Limit's default (100) and cap (1000).
func pageLimit(n int) int {
	switch {
	case n <= 0:
		return 100
	case n > 1000:
		return 1000
	}
	return n
}

// badCursor wraps keystore.ErrBadCursor with the operation.
func badCursor(op string) error {
	return fmt.Errorf("postgres: %s: %w", op, keystore.ErrBadCursor)
}
