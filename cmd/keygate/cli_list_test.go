package main

import (
	"errors"
	"slices"
	"strconv"
	"testing"

	"github.com/keygate/keygate/keystore"
)

// TestListAll: listAll reads pages of cliPageSize until the listing ends or limit items
// are gathered, asks for no more than limit needs, and returns the cursor after them.
func TestListAll(t *testing.T) {
	const total = 2*cliPageSize + 7
	items := make([]int, total)
	for i := range items {
		items[i] = i
	}
	// list pages items as a store does; a cursor is the index of the next item.
	var asked []int
	list := func(o keystore.ListOptions) ([]int, string, error) {
		asked = append(asked, o.Limit)
		from := 0
		if o.Cursor != "" {
			var err error
			if from, err = strconv.Atoi(o.Cursor); err != nil {
				return nil, "", err
			}
		}
		to := min(from+o.Limit, total)
		next := ""
		if to < total {
			next = strconv.Itoa(to)
		}
		return items[from:to], next, nil
	}
	for _, tc := range []struct {
		name      string
		cursor    string
		limit     int
		wantFirst int
		wantLen   int
		wantNext  string
		wantAsked []int
	}{
		{"all", "", 0, 0, total, "", []int{cliPageSize, cliPageSize, cliPageSize}},
		{"limit within a page", "", 3, 0, 3, "3", []int{3}},
		{"limit across pages", "", cliPageSize + 5, 0, cliPageSize + 5, strconv.Itoa(cliPageSize + 5), []int{cliPageSize, 5}},
		{"from a cursor", "10", 0, 10, total - 10, "", []int{cliPageSize, cliPageSize}},
		{"limit past the end", strconv.Itoa(total - 2), 5, total - 2, 2, "", []int{5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			asked = nil
			got, next, err := listAll(tc.cursor, tc.limit, list)
			if err != nil {
				t.Fatalf("listAll: %v", err)
			}
			if len(got) != tc.wantLen || len(got) > 0 && got[0] != tc.wantFirst {
				t.Errorf("listAll: got %d items from %v, want %d from %d", len(got), got[:min(1, len(got))], tc.wantLen, tc.wantFirst)
			}
			if next != tc.wantNext {
				t.Errorf("listAll: next = %q, want %q", next, tc.wantNext)
			}
			if !slices.Equal(asked, tc.wantAsked) {
				t.Errorf("listAll asked for pages of %v, want %v", asked, tc.wantAsked)
			}
		})
	}

	t.Run("error", func(t *testing.T) {
		want := errors.New("store down")
		_, _, err := listAll("", 0, func(keystore.ListOptions) ([]int, string, error) { return nil, "", want })
		if !errors.Is(err, want) {
			t.Errorf("listAll: err = %v, want %v", err, want)
		}
	})
}
