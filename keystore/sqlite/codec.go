package sqlite

import (
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keygate/keygate/keystore"
)

// timeLayout is fixed-width UTC with nanoseconds: text order is time order, and a
// time.Time round-trips exactly.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func fmtTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func fmtTimePtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return fmtTime(*t)
}

// checkTime refuses times that the fixed-width layout cannot hold.
func checkTime(name string, t *time.Time) error {
	if t == nil {
		return nil
	}
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		return fmt.Errorf("%s: year %d out of range", name, y)
	}
	return nil
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad stored time %q: %w", s, err)
	}
	return t.UTC(), nil
}

func parseTimePtr(s sql.NullString) (*time.Time, error) {
	if !s.Valid {
		return nil, nil
	}
	t, err := parseTime(s.String)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// now returns the store's current time, UTC, without a monotonic reading, so that what a
// method sets equals what a later read returns.
func (s *Store) nowUTC() time.Time { return s.now().UTC().Round(0) }

func encList(v []string) string {
	if len(v) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func encMap(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// decList returns nil for an empty list: empty and absent are the same.
func decList(s string) ([]string, error) {
	var v []string
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("bad stored list: %w", err)
	}
	if len(v) == 0 {
		return nil, nil
	}
	return v, nil
}

// decMap returns nil for an empty map.
func decMap(s string) (map[string]string, error) {
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("bad stored map: %w", err)
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// decLists decodes the scopes, rate limit and metadata columns that keys and principals
// share.
func decLists(scopes, rate, meta string) ([]string, []string, map[string]string, error) {
	sc, err := decList(scopes)
	if err != nil {
		return nil, nil, nil, err
	}
	rl, err := decList(rate)
	if err != nil {
		return nil, nil, nil, err
	}
	md, err := decMap(meta)
	if err != nil {
		return nil, nil, nil, err
	}
	return sc, rl, md, nil
}

// Cursors are opaque: base64url of the last row's sort key, parts joined by NUL. A cursor
// that does not decode to n non-empty parts is keystore.ErrBadCursor.

func encCursor(parts ...string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strings.Join(parts, "\x00")))
}

func decCursor(c string, n int) ([]string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return nil, keystore.ErrBadCursor
	}
	parts := strings.Split(string(b), "\x00")
	if len(parts) != n || slices.Contains(parts, "") {
		return nil, keystore.ErrBadCursor
	}
	return parts, nil
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

// sameList compares stored lists, nil and empty alike.
func sameList(a, b []string) bool { return slices.Equal(a, b) }

// sameTimePtr compares optional times.
func sameTimePtr(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}
