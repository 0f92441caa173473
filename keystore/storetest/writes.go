package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/keystore"
)

// importWithin is how long ImportKeys may take for bulkImport keys.
const (
	bulkImport   = 10_000
	importWithin = 5 * time.Second
)

// legacyKeys returns n unsaved legacy key records of a principal, created at created
// (zero: the store's now).
func legacyKeys(t *testing.T, principalID string, n int, created time.Time) []keystore.Key {
	t.Helper()
	keys := make([]keystore.Key, n)
	for i := range keys {
		k, _ := newKey(t, principalID, fmt.Sprint("legacy-", i+1))
		k.Legacy = true
		k.Prefix = ""
		k.CreatedAt = created
		keys[i] = k
	}
	return keys
}

func testUpdateKey(t *testing.T, s keystore.Store) {
	ctx := ctxOf(t)
	w := startWatch(t, s, s)
	mustPrincipal(t, s, "up", "read", "write")
	k, plain := mustKey(t, s, "up", "before", func(k *keystore.Key) { k.Scopes = []string{"read", "write"} })

	want := k
	want.Name = "after"
	want.Scopes = []string{"write"}
	want.RateLimit = []string{"10-S", "1000-H"}
	want.Metadata = map[string]string{"team": "ops"}
	want.ExpiresAt = tp(usec(time.Now().Add(48 * time.Hour)))
	upd := want
	mustNil(t, "UpdateKey", s.UpdateKey(ctx, &upd))
	got, err := s.GetKey(ctx, k.ID)
	mustNil(t, "GetKey", err)
	sameKey(t, got, want)
	e, err := s.LookupKey(ctx, hasher.Hash(plain))
	mustNil(t, "LookupKey", err)
	sameKey(t, e.Key, want)
	wantChange(t, w, "update key", "up", k.ID)

	// Clearing: no expiry, no rate limit, no metadata, all of the principal's scopes.
	want.ExpiresAt, want.RateLimit, want.Metadata, want.Scopes = nil, nil, nil, nil
	upd = want
	mustNil(t, "UpdateKey(clear)", s.UpdateKey(ctx, &upd))
	got, err = s.GetKey(ctx, k.ID)
	mustNil(t, "GetKey", err)
	sameKey(t, got, want)

	// A scope the principal does not hold: refused, nothing stored.
	bad := want
	bad.Name = "wider"
	bad.Scopes = []string{"read", "admin"}
	wantErr(t, "UpdateKey(scope not held)", s.UpdateKey(ctx, &bad), keystore.ErrScopeNotHeld)
	got, err = s.GetKey(ctx, k.ID)
	mustNil(t, "GetKey", err)
	sameKey(t, got, want)

	// An expired key can be given a new expiry.
	old, _ := mustKey(t, s, "up", "expired", func(k *keystore.Key) { k.ExpiresAt = tp(usec(time.Now().Add(-time.Hour))) })
	old.ExpiresAt = tp(usec(time.Now().Add(time.Hour)))
	mustNil(t, "UpdateKey(expired key)", s.UpdateKey(ctx, &old))
	if got, err := s.GetKey(ctx, old.ID); err != nil || !got.Active(time.Now()) {
		t.Errorf("expired key after UpdateKey(expires in 1h): Active = %v, err %v; want true, nil", got.Active(time.Now()), err)
	}

	// Revoked and unknown keys: ErrNotFound.
	_, err = s.RevokeKey(ctx, k.ID)
	mustNil(t, "RevokeKey", err)
	gone := want
	gone.Name = "revoked"
	wantErr(t, "UpdateKey(revoked)", s.UpdateKey(ctx, &gone), keystore.ErrNotFound)
	if got, err := s.GetKey(ctx, k.ID); err != nil || got.Name != want.Name {
		t.Errorf("revoked key after a refused UpdateKey: name %q, err %v; want %q, nil", got.Name, err, want.Name)
	}
	unknown := keystore.Key{ID: "0190b7a4-0000-7000-8000-000000000000", PrincipalID: "up", Name: "x"}
	wantErr(t, "UpdateKey(unknown)", s.UpdateKey(ctx, &unknown), keystore.ErrNotFound)
}

func testImportKeys(t *testing.T, s keystore.Store) {
	ctx := ctxOf(t)
	mustPrincipal(t, s, "imp", "read")
	created := usec(time.Now().Add(-365 * 24 * time.Hour))
	keys := legacyKeys(t, "imp", 100, created)
	keys[0].CreatedAt = time.Time{} // zero: now
	before := time.Now().Add(-time.Second)
	n, err := s.ImportKeys(ctx, keys)
	mustNil(t, "ImportKeys", err)
	if n != 100 {
		t.Errorf("ImportKeys(100 new) = %d, want 100", n)
	}
	n, err = s.ImportKeys(ctx, keys)
	mustNil(t, "ImportKeys(again)", err)
	if n != 0 {
		t.Errorf("ImportKeys(the same 100 again) = %d, want 0", n)
	}
	// A re-run makes new ids for the same keys: still nothing twice.
	rerun := slices.Clone(keys)
	for i := range rerun {
		fresh, _ := newKey(t, "imp", "x")
		rerun[i].ID = fresh.ID
	}
	n, err = s.ImportKeys(ctx, rerun)
	mustNil(t, "ImportKeys(same hashes, new ids)", err)
	if n != 0 {
		t.Errorf("ImportKeys(same hashes, new ids) = %d, want 0", n)
	}
	// Half known, ten new: the ten.
	more := append(slices.Clone(keys[:50]), legacyKeys(t, "imp", 10, created)...)
	n, err = s.ImportKeys(ctx, more)
	mustNil(t, "ImportKeys(50 known, 10 new)", err)
	if n != 10 {
		t.Errorf("ImportKeys(50 known, 10 new) = %d, want 10", n)
	}

	got, err := s.GetKey(ctx, keys[1].ID)
	mustNil(t, "GetKey(imported)", err)
	sameKey(t, got, keys[1])
	if !got.Legacy {
		t.Errorf("imported key Legacy = false, want true")
	}
	got, err = s.GetKey(ctx, keys[0].ID)
	mustNil(t, "GetKey(imported, zero CreatedAt)", err)
	if got.CreatedAt.Before(before) || got.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("imported key with zero CreatedAt: CreatedAt = %v, want about now", got.CreatedAt)
	}
	e, err := s.LookupKey(ctx, keys[99].Hash)
	mustNil(t, "LookupKey(imported)", err)
	if e.Key.ID != keys[99].ID || !e.Key.Legacy || !e.Key.Active(time.Now()) {
		t.Errorf("LookupKey(imported) = key %s legacy=%v active=%v, want %s legacy=true active=true",
			e.Key.ID, e.Key.Legacy, e.Key.Active(time.Now()), keys[99].ID)
	}
	var all []keystore.Key
	for cursor := ""; ; {
		ks, next, err := s.ListKeys(ctx, "imp", keystore.ListOptions{Limit: 50, Cursor: cursor})
		mustNil(t, "ListKeys", err)
		all = append(all, ks...)
		if next == "" || len(all) > 200 {
			break
		}
		cursor = next
	}
	if len(all) != 110 {
		t.Errorf("active keys after imports = %d, want 110", len(all))
	}
	// Not bound by the maximum; imported keys count against it afterwards.
	k, _ := newKey(t, "imp", "over")
	wantErr(t, "CreateKey(max 10, 110 imported)", s.CreateKey(ctx, &k, 10), keystore.ErrTooManyKeys)
	n, err = s.ImportKeys(ctx, nil)
	if err != nil || n != 0 {
		t.Errorf("ImportKeys(nil) = %d, %v; want 0, nil", n, err)
	}
}

func testImportUnknownPrincipal(t *testing.T, s keystore.Store) {
	ctx := ctxOf(t)
	mustPrincipal(t, s, "real", "read")
	mustPrincipal(t, s, "was", "read")
	mustNil(t, "DeletePrincipal", s.DeletePrincipal(ctx, "was"))
	for _, missing := range []string{"ghost", "was"} {
		keys := legacyKeys(t, "real", 5, time.Time{})
		keys = append(keys, legacyKeys(t, missing, 1, time.Time{})...)
		keys = append(keys, legacyKeys(t, "real", 5, time.Time{})...)
		n, err := s.ImportKeys(ctx, keys)
		wantErr(t, "ImportKeys(with principal "+missing+")", err, keystore.ErrNotFound)
		if err != nil && !strings.Contains(err.Error(), missing) {
			t.Errorf("ImportKeys error %q does not name principal %q", err, missing)
		}
		if n != 0 {
			t.Errorf("ImportKeys(with principal %s) = %d, want 0", missing, n)
		}
		ks, _, err := s.ListKeys(ctx, "real", keystore.ListOptions{IncludeRevoked: true})
		mustNil(t, "ListKeys", err)
		if len(ks) != 0 {
			t.Errorf("after a refused import naming %s: %d keys stored, want 0", missing, len(ks))
		}
	}
	n, err := s.ImportKeys(ctx, legacyKeys(t, "real", 5, time.Time{}))
	if err != nil || n != 5 {
		t.Errorf("ImportKeys(known principal) = %d, %v; want 5, nil", n, err)
	}
}

func testImportMany(t *testing.T, s keystore.Store) {
	ctx := ctxOf(t)
	mustPrincipal(t, s, "bulk", "read")
	mustPrincipal(t, s, "bulk2", "read")
	keys := legacyKeys(t, "bulk", bulkImport-10, time.Time{})
	keys = append(keys, legacyKeys(t, "bulk2", 10, time.Time{})...)
	start := time.Now()
	n, err := s.ImportKeys(ctx, keys)
	took := time.Since(start)
	mustNil(t, "ImportKeys", err)
	if n != bulkImport {
		t.Errorf("ImportKeys(%d) = %d, want %d", bulkImport, n, bulkImport)
	}
	if took > importWithin*raceSlowdown {
		t.Errorf("ImportKeys(%d) took %v, want under %v", bulkImport, took, importWithin*raceSlowdown)
	}
	for _, i := range []int{0, bulkImport / 2, bulkImport - 1} {
		e, err := s.LookupKey(ctx, keys[i].Hash)
		if err != nil || e.Key.ID != keys[i].ID || e.Key.PrincipalID != keys[i].PrincipalID {
			t.Errorf("LookupKey(key %d) = %s of %s, %v; want %s of %s", i, e.Key.ID, e.Key.PrincipalID, err, keys[i].ID, keys[i].PrincipalID)
		}
	}
	start = time.Now()
	n, err = s.ImportKeys(ctx, keys)
	if err != nil || n != 0 {
		t.Errorf("ImportKeys(%d again) = %d, %v; want 0, nil", bulkImport, n, err)
	}
	if took := time.Since(start); took > importWithin*raceSlowdown {
		t.Errorf("ImportKeys(%d again) took %v, want under %v", bulkImport, took, importWithin*raceSlowdown)
	}
}

func testRecordUsage(t *testing.T, s keystore.Store) {
	ctx := ctxOf(t)
	mustPrincipal(t, s, "use", "read")
	a, _ := mustKey(t, s, "use", "a", nil)
	b, _ := mustKey(t, s, "use", "b", nil)
	c, _ := mustKey(t, s, "use", "unused", nil)
	base := usec(time.Now().Truncate(time.Second))
	at := func(d time.Duration) time.Time { return base.Add(d) }
	// 9.9s against 10.5s: a text time that is not fixed-width would order these wrongly.
	mustNil(t, "RecordUsage(batch 1)", s.RecordUsage(ctx, []keystore.Usage{
		{KeyID: a.ID, Count: 3, LastUsed: at(9900 * time.Millisecond)},
		{KeyID: b.ID, Count: 1, LastUsed: at(time.Second)},
	}))
	mustNil(t, "RecordUsage(batch 2)", s.RecordUsage(ctx, []keystore.Usage{
		{KeyID: a.ID, Count: 2, LastUsed: at(2 * time.Second)}, // earlier: kept 9.9s
		{KeyID: b.ID, Count: 4, LastUsed: at(10500 * time.Millisecond)},
		{KeyID: "0190b7a4-0000-7000-8000-000000000000", Count: 7, LastUsed: at(0)}, // unknown: skipped
	}))
	for _, tc := range []struct {
		k     keystore.Key
		count int64
		last  *time.Time
	}{
		{a, 5, tp(at(9900 * time.Millisecond))},
		{b, 5, tp(at(10500 * time.Millisecond))},
		{c, 0, nil},
	} {
		got, err := s.GetKey(ctx, tc.k.ID)
		mustNil(t, "GetKey", err)
		if got.UsageCount != tc.count {
			t.Errorf("key %s usage_count = %d, want %d", tc.k.Name, got.UsageCount, tc.count)
		}
		sameTimePtr(t, "key "+tc.k.Name+" last_used_at", got.LastUsedAt, tc.last)
	}
	// One key twice in a batch; a revoked key still counts.
	_, err := s.RevokeKey(ctx, a.ID)
	mustNil(t, "RevokeKey", err)
	mustNil(t, "RecordUsage(batch 3)", s.RecordUsage(ctx, []keystore.Usage{
		{KeyID: a.ID, Count: 1, LastUsed: at(time.Hour)},
		{KeyID: a.ID, Count: 1, LastUsed: at(30 * time.Minute)},
	}))
	got, err := s.GetKey(ctx, a.ID)
	mustNil(t, "GetKey", err)
	if got.UsageCount != 7 {
		t.Errorf("usage_count after batch 3 = %d, want 7", got.UsageCount)
	}
	sameTimePtr(t, "last_used_at after batch 3", got.LastUsedAt, tp(at(time.Hour)))
	mustNil(t, "RecordUsage(nil)", s.RecordUsage(ctx, nil))
}
