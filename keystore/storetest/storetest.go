// Package storetest is the conformance suite of keystore.Store: every backend runs it, so
// that they agree on what each method returns and which error it gives.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/keystore"
)

// Secret is the HMAC secret of the suite's keys.
const Secret = "0123456789abcdef0123456789abcdef"

var (
	format = keystore.Format{Prefix: "kg_"}
	hasher = keystore.NewHasher(Secret)
)

// watchWithin is how long a committed change may take to reach Watch (SPEC §9: 1 second;
// the suite allows 2).
const watchWithin = 2 * time.Second

// Run runs the suite. open returns a new, migrated, empty store for one test and closes it
// in t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) keystore.Store) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s keystore.Store)
	}{
		{"principal/create and get", testCreateGetPrincipal},
		{"principal/duplicate id", testDuplicatePrincipal},
		{"principal/deleted id is not reused", testDeletedIDNotReused},
		{"principal/list pages", testListPrincipals},
		{"principal/list default limit", testListPrincipalsDefaultLimit},
		{"list/bad cursor", testListBadCursor},
		{"principal/update round-trip", testUpdatePrincipal},
		{"principal/disable revokes keys and emits a change", testDisable},
		{"principal/delete revokes all keys", testDeletePrincipal},
		{"key/create and lookup", testCreateLookupKey},
		{"key/get without plaintext", testGetKey},
		{"key/lookup unknown hash", testLookupUnknown},
		{"key/list active and include revoked", testListKeys},
		{"key/list pages", testListKeysPages},
		{"key/revoke", testRevoke},
		{"key/max active concurrent", testMaxActiveConcurrent},
		{"key/expired keys", testExpired},
		{"key/scope not held", testScopeNotHeld},
		{"key/duplicate hash", testDuplicateHash},
		{"key/create for unknown, deleted, disabled principal", testCreateKeyPrincipalState},
		{"key/rehash", testRehash},
		{"key/update round-trip, change, revoked, scope not held", testUpdateKey},
		{"key/import idempotent", testImportKeys},
		{"key/import unknown or deleted principal stores nothing", testImportUnknownPrincipal},
		{"key/import 10000 keys", testImportMany},
		{"usage/record adds up and keeps the latest", testRecordUsage},
		{"audit/every write with its actor", testAuditEveryWrite},
		{"audit/pages and principal filter", testAuditPages},
		{"watch/revoke by the same store", testWatchSameStore},
		{"watch/stops when ctx ends", testWatchStops},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// RunShared runs the tests that need two stores on one database, as a serve and the CLI
// are. open returns two new stores on one new, migrated, empty database and closes both in
// t.Cleanup.
func RunShared(t *testing.T, open func(t *testing.T) (a, b keystore.Store)) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, a, b keystore.Store)
	}{
		{"second store sees writes", testSharedSeesWrites},
		{"watch sees a revoke by the other store", testWatchOtherStore},
		{"watch sees a disable and a delete by the other store", testWatchOtherStorePrincipal},
		{"max active across stores", testMaxActiveShared},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := open(t)
			tc.fn(t, a, b)
		})
	}
}

// ---- helpers ----

func ctxOf(t *testing.T) context.Context { return t.Context() }

// usec returns t rounded to the microsecond, in UTC: what every backend can keep exactly.
func usec(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func tp(t time.Time) *time.Time { return &t }

func mustPrincipal(t *testing.T, s keystore.Store, id string, scopes ...string) keystore.Principal {
	t.Helper()
	p := keystore.Principal{ID: id, DisplayName: "Principal " + id, Scopes: scopes}
	if err := s.CreatePrincipal(ctxOf(t), &p); err != nil {
		t.Fatalf("CreatePrincipal(%q) = %v, want nil", id, err)
	}
	return p
}

// newKey returns an unsaved key record and its plaintext.
func newKey(t *testing.T, principalID, name string) (keystore.Key, string) {
	t.Helper()
	k, plain, err := keystore.NewKey(format, hasher, principalID, name)
	if err != nil {
		t.Fatalf("NewKey: %v", err)
	}
	return k, plain
}

func mustKey(t *testing.T, s keystore.Store, principalID, name string, edit func(*keystore.Key)) (keystore.Key, string) {
	t.Helper()
	k, plain := newKey(t, principalID, name)
	if edit != nil {
		edit(&k)
	}
	if err := s.CreateKey(ctxOf(t), &k, 0); err != nil {
		t.Fatalf("CreateKey(%s) = %v, want nil", k.Prefix, err)
	}
	return k, plain
}

func wantErr(t *testing.T, what string, got, want error) {
	t.Helper()
	if !errors.Is(got, want) {
		t.Errorf("%s: err = %v, want %v", what, got, want)
	}
}

func mustNil(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: err = %v, want nil", what, err)
	}
}

// sameTime compares times exactly and wants UTC.
func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
	if got.Location() != time.UTC {
		t.Errorf("%s location = %v, want UTC", what, got.Location())
	}
}

func sameTimePtr(t *testing.T, what string, got, want *time.Time) {
	t.Helper()
	switch {
	case got == nil && want == nil:
	case got == nil || want == nil:
		t.Errorf("%s = %v, want %v", what, got, want)
	default:
		sameTime(t, what, *got, *want)
	}
}

// sameList treats nil and empty alike.
func sameList(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) || (len(got) > 0 && !slices.Equal(got, want)) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func sameMap(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) || !maps.Equal(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func samePrincipal(t *testing.T, got, want keystore.Principal) {
	t.Helper()
	if got.ID != want.ID || got.DisplayName != want.DisplayName || got.PasswordHash != want.PasswordHash {
		t.Errorf("principal = {%q %q %q}, want {%q %q %q}", got.ID, got.DisplayName,
			got.PasswordHash, want.ID, want.DisplayName, want.PasswordHash)
	}
	sameList(t, "principal scopes", got.Scopes, want.Scopes)
	sameList(t, "principal rate_limit", got.RateLimit, want.RateLimit)
	sameMap(t, "principal metadata", got.Metadata, want.Metadata)
	sameTime(t, "principal created_at", got.CreatedAt, want.CreatedAt)
	sameTime(t, "principal updated_at", got.UpdatedAt, want.UpdatedAt)
	sameTimePtr(t, "principal disabled_at", got.DisabledAt, want.DisabledAt)
}

func sameKey(t *testing.T, got, want keystore.Key) {
	t.Helper()
	if got.ID != want.ID || got.PrincipalID != want.PrincipalID || got.Name != want.Name ||
		got.Prefix != want.Prefix || got.Hash != want.Hash || got.Legacy != want.Legacy ||
		got.UsageCount != want.UsageCount {
		t.Errorf("key = {%s %s %q %s legacy=%v usage=%d}, want {%s %s %q %s legacy=%v usage=%d} (or the hash differs)",
			got.ID, got.PrincipalID, got.Name, got.Prefix, got.Legacy, got.UsageCount,
			want.ID, want.PrincipalID, want.Name, want.Prefix, want.Legacy, want.UsageCount)
	}
	sameList(t, "key scopes", got.Scopes, want.Scopes)
	sameList(t, "key rate_limit", got.RateLimit, want.RateLimit)
	sameMap(t, "key metadata", got.Metadata, want.Metadata)
	sameTime(t, "key created_at", got.CreatedAt, want.CreatedAt)
	sameTimePtr(t, "key expires_at", got.ExpiresAt, want.ExpiresAt)
	sameTimePtr(t, "key revoked_at", got.RevokedAt, want.RevokedAt)
	sameTimePtr(t, "key last_used_at", got.LastUsedAt, want.LastUsedAt)
}

func keyIDs(ks []keystore.Key) []string {
	var ids []string
	for _, k := range ks {
		ids = append(ids, k.ID)
	}
	return ids
}

// watcher collects what Watch reports.
type watcher struct {
	mu      sync.Mutex
	changes []keystore.Change
}

func (w *watcher) add(c keystore.Change) {
	w.mu.Lock()
	w.changes = append(w.changes, c)
	w.mu.Unlock()
}

func (w *watcher) has(match func(keystore.Change) bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.ContainsFunc(w.changes, match)
}

// startWatch runs s.Watch until the test ends and returns once the watch is live: it
// updates a probe principal through probe until Watch reports it, so that changes the
// test makes next are certainly after Watch started.
func startWatch(t *testing.T, s, probe keystore.Store) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{}
	done := make(chan error, 1)
	go func() { done <- s.Watch(ctx, w.add) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Watch returned %v after its context ended, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Watch did not return within 5s of its context ending")
		}
	})
	id := fmt.Sprintf("watch-probe-%d", time.Now().UnixNano())
	p := mustPrincipal(t, probe, id)
	deadline := time.Now().Add(5 * time.Second)
	for n := 0; ; n++ {
		p.DisplayName = fmt.Sprint("probe ", n)
		mustNil(t, "UpdatePrincipal(probe)", probe.UpdatePrincipal(ctxOf(t), &p))
		if waitFor(w, func(c keystore.Change) bool { return c.PrincipalID == id }, 100*time.Millisecond) {
			return w
		}
		select {
		case err := <-done:
			t.Fatalf("Watch returned early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("Watch reported no change of the probe principal within 5s")
		}
	}
}

// waitFor polls w until a change matches or within has passed.
func waitFor(w *watcher, match func(keystore.Change) bool, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for {
		if w.has(match) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func wantChange(t *testing.T, w *watcher, what, principalID, keyID string) {
	t.Helper()
	if !waitFor(w, func(c keystore.Change) bool {
		return c.PrincipalID == principalID && c.KeyID == keyID && !c.At.IsZero()
	}, watchWithin) {
		w.mu.Lock()
		defer w.mu.Unlock()
		t.Errorf("%s: no Change{PrincipalID: %q, KeyID: %q} within %v; got %+v",
			what, principalID, keyID, watchWithin, w.changes)
	}
}
