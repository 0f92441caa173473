package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/keystore"
)

func testCreateGetPrincipal(t *testing.T, s keystore.Store) {
	ctx := ctxOf(t)
	before := time.Now().Add(-time.Second)
	p := keystore.Principal{
		ID: "acme.corp_1-x", DisplayName: "ACME", PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
		Scopes: []string{"read", "write"}, RateLimit: []string{"10-S", "1000-H"},
		Metadata: map[string]string{"team": "a", "tier": "gold"},
	}
	mustNil(t, "CreatePrincipal", s.CreatePrincipal(ctx, &p))
	if p.CreatedAt.Before(before) || p.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("CreatedAt = %v, want about now", p.CreatedAt)
	}
	if !p.UpdatedAt.Equal(p.CreatedAt) {
		t.Errorf("UpdatedAt = %v, want CreatedAt %v", p.UpdatedAt, p.CreatedAt)
	}
	got, err := s.GetPrincipal(ctx, p.ID)
	mustNil(t, "GetPrincipal", err)
	samePrincipal(t, got, p)
	if got.Disabled() {
		t.Errorf("Disabled() = true, want false")
	}
	_, err = s.GetPrincipal(ctx, "nobody")
	wantErr(t, "GetPrincipal(unknown)", err, keystore.ErrNotFound)
}

func testDuplicatePrincipal(t *testing.T, s keystore.Store) {
	mustPrincipal(t, s, "dup", "a")
	p := keystore.Principal{ID: "dup", DisplayName: "other"}
	wantErr(t, "CreatePrincipal(dup)", s.CreatePrincipal(ctxOf(t), &p), keystore.ErrConflict)
	got, err := s.GetPrincipal(ctxOf(t), "dup")
	mustNil(t, "GetPrincipal", err)
	if got.DisplayName != "Principal dup" {
		t.Errorf("DisplayName = %q after a refused duplicate, want %q", got.DisplayName, "Principal dup")
	}
}

func testDeletedIDNotReused(t *testing.T, s keystore.Store) {
	ctx := ctxOf(t)
	p := mustPrincipal(t, s, "gone", "a")
	mustNil(t, "DeletePrincipal", s.DeletePrincipal(ctx, "gone"))
	_, err := s.GetPrincipal(ctx, "gone")
	wantErr(t, "GetPrincipal(deleted)", err, keystore.ErrNotFound)
	wantErr(t, "DeletePrincipal(deleted)", s.DeletePrincipal(ctx, "gone"), keystore.ErrNotFound)
	wantErr(t, "UpdatePrincipal(deleted)", s.UpdatePrincipal(ctx, &p), keystore.ErrNotFound)
	again := keystore.Principal{ID: "gone"}
	wantErr(t, "CreatePrincipal(deleted id)", s.CreatePrincipal(ctx, &again), keystore.ErrConflict)
	ps, _, err := s.ListPrincipals(ctx, keystore.ListOptions{})
	mustNil(t, "ListPrincipals", err)
	if len(ps) != 0 {
		t.Errorf("ListPrincipals = %d principals, want 0 (deleted ones are not listed)", len(ps))
	}
	_, _, err = s.ListKeys(ctx, "gone", keystore.ListOptions{IncludeRevoked: true})
	wantErr(t, "ListKeys(deleted principal)", err, keystore.ErrNotFound)
	_, _, err = s.ListKeys(ctx, "never-was", keystore.ListOptions{})
	wantErr(t, "ListKeys(unknown principal)", err, keystore.ErrNotFound)
}

func testListPrincipals(t *testing.T, s keystore.Store) {
	ctx := ctxOf(t)
	var want []string
	for _, i := range rand25() {
		id := fmt.Sprintf("p%02d", i)
		mustPrincipal(t, s, id)
	}
	for i := range 25 {
		want = append(want, fmt.Sprintf("p%02d", i))
	}
	mustNil(t, "DeletePrincipal", s.DeletePrincipal(ctx, "p03")) // not listed
	want = slices.Delete(want, 3, 4)
	mustPrincipal(t, s, "p25")
	want = append(want, "p25")

	var got []string
	var sizes []int
	cursor := ""
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatalf("more than 10 pages: the cursor does not advance")
		}
		ps, next, err := s.ListPrincipals(ctx, keystore.ListOptions{Limit: 10, Cursor: cursor})
		mustNil(t, "ListPrincipals", err)
		sizes = append(sizes, len(ps))
		for _, p := range ps {
			got = append(got, p.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if !slices.Equal(sizes, []int{10, 10, 5}) {
		t.Errorf("page sizes = %v, want [10 10 5]", sizes)
	}
	if !slices.Equal(got, want) {
		t.Errorf("ids = %v, want %v", got, want)
	}
}

// rand25 returns 0..24 in a fixed shuffled order, so that listing order cannot come from
// insertion order.
func rand25() []int {
	return []int{7, 19, 0, 24, 3, 12, 5, 21, 9, 1, 16, 22, 14, 2, 11, 18, 6, 23, 13, 4, 20, 8, 15, 10, 17}
}

func testListPrincipalsDefaultLimit(t *testing.T, s keystore.Store) {
	for i := range 101 {
		mustPrincipal(t, s, fmt.Sprintf("d%03d", i))
	}
	ps, next, err := s.ListPrincipals(ctxOf(t), keystore.ListOptions{})
	mustNil(t, "ListPrincipals", err)
	if len(ps) != 100 || next == "" {
		t.Fatalf("ListPrincipals(Limit 0) = %d principals, next %q; want 100 and a cursor", len(ps), next)
	}
	ps, next, err = s.ListPrincipals(ctxOf(t), keystore.ListOptions{Cursor: next})
	mustNil(t, "ListPrincipals(page 2)", err)
	if len(ps) != 1 || ps[0].ID != "d100" || next != "" {
		t.Errorf("page 2 = %d principals, next %q; want [d100] and \"\"", len(ps), next)
	}
}

func testListBadCursor(t *testing.T, s keystore.Store) {
	ctx := ctxOf(t)
	mustPrincipal(t, s, "a")
	mustKey(t, s, "a", "k", nil)
	for _, c := range []string{"not a cursor!", "%%%", "\x00"} {
		opts := keystore.ListOptions{Cursor: c}
		_, _, err := s.ListPrincipals(ctx, opts)
		wantErr(t, fmt.Sprintf("ListPrincipals(cursor %q)", c), err, keystore.ErrBadCursor)
		for _, p := range []string{"", "a"} {
			_, _, err = s.ListKeys(ctx, p, opts)
			wantErr(t, fmt.Sprintf("ListKeys(%q, cursor %q)", p, c), err, keystore.ErrBadCursor)
			_, _, err = s.ListAudit(ctx, p, opts)
			wantErr(t, fmt.Sprintf("ListAudit(%q, cursor %q)", p, c), err, keystore.ErrBadCursor)
		}
	}
}

func testUpdatePrincipal(t *testing.T, s keystore.Store) {
	ctx := ctxOf(t)
	p := mustPrincipal(t, s, "u1", "read")
	created := p.CreatedAt
	p.DisplayName = "Renamed"
	p.PasswordHash = "$argon2id$v=19$m=19456,t=2,p=1$bmV3$bmV3"
	p.Scopes = []string{"read", "write", "admin"}
	p.RateLimit = []string{"5-S"}
	p.Metadata = map[string]string{"k": "v"}
	p.CreatedAt = time.Time{} // ignored
	mustNil(t, "UpdatePrincipal", s.UpdatePrincipal(ctx, &p))
	if p.UpdatedAt.Before(created) {
		t.Errorf("UpdatedAt = %v, want not before CreatedAt %v", p.UpdatedAt, created)
	}
	got, err := s.GetPrincipal(ctx, "u1")
	mustNil(t, "GetPrincipal", err)
	sameTime(t, "created_at after update", got.CreatedAt, created)
	p.CreatedAt = created
	samePrincipal(t, got, p)

	// Clearing fields.
	p.PasswordHash, p.Scopes, p.RateLimit, p.Metadata = "", nil, nil, nil
	mustNil(t, "UpdatePrincipal(clear)", s.UpdatePrincipal(ctx, &p))
	got, err = s.GetPrincipal(ctx, "u1")
	mustNil(t, "GetPrincipal", err)
	samePrincipal(t, got, p)

	ghost := keystore.Principal{ID: "ghost"}
	wantErr(t, "UpdatePrincipal(unknown)", s.UpdatePrincipal(ctx, &ghost), keystore.ErrNotFound)
}

func testDisable(t *testing.T, s keystore.Store) {
	ctx := ctxOf(t)
	w := startWatch(t, s, s)
	p := mustPrincipal(t, s, "dis", "read")
	k1, _ := mustKey(t, s, "dis", "one", nil)
	k2, _ := mustKey(t, s, "dis", "two", nil)
	other := mustPrincipal(t, s, "other", "read")
	ko, _ := mustKey(t, s, other.ID, "other", nil)

	p.DisabledAt = tp(usec(time.Now()))
	mustNil(t, "UpdatePrincipal(disable)", s.UpdatePrincipal(ctx, &p))
	got, err := s.GetPrincipal(ctx, "dis")
	mustNil(t, "GetPrincipal", err)
	if !got.Disabled() {
		t.Fatalf("Disabled() = false after disabling")
	}
	sameTimePtr(t, "disabled_at", got.DisabledAt, p.DisabledAt)
	for _, k := range []keystore.Key{k1, k2} {
		e, err := s.LookupKey(ctx, k.Hash)
		mustNil(t, "LookupKey(disabled principal's key)", err)
		if e.Key.RevokedAt == nil {
			t.Errorf("key %s of a disabled principal: RevokedAt = nil, want set", k.Prefix)
		}
		if !e.Principal.Disabled() {
			t.Errorf("LookupKey principal Disabled() = false, want true")
		}
	}
	if e, err := s.LookupKey(ctx, ko.Hash); err != nil || e.Key.RevokedAt != nil {
		t.Errorf("other principal's key: RevokedAt = %v, err %v; want nil, nil", e.Key.RevokedAt, err)
	}
	wantChange(t, w, "disable", "dis", "")

	k3, _ := newKey(t, "dis", "three")
	wantErr(t, "CreateKey(disabled principal)", s.CreateKey(ctx, &k3, 0), keystore.ErrDisabled)

	// Enabling again restores the principal, not its keys.
	p.DisabledAt = nil
	mustNil(t, "UpdatePrincipal(enable)", s.UpdatePrincipal(ctx, &p))
	if e, err := s.LookupKey(ctx, k1.Hash); err != nil || e.Key.RevokedAt == nil || e.Principal.Disabled() {
		t.Errorf("after enabling: key RevokedAt = %v, principal disabled %v, err %v; want set, false, nil",
			e.Key.RevokedAt, e.Principal.Disabled(), err)
	}
	mustKey(t, s, "dis", "after enable", nil)
}

func testDeletePrincipal(t *testing.T, s keystore.Store) {
	ctx := ctxOf(t)
	w := startWatch(t, s, s)
	mustPrincipal(t, s, "del", "read")
	var keys []keystore.Key
	for i := range 3 {
		k, _ := mustKey(t, s, "del", fmt.Sprint("k", i), nil)
		keys = append(keys, k)
	}
	mustNil(t, "DeletePrincipal", s.DeletePrincipal(ctx, "del"))
	for _, k := range keys {
		got, err := s.GetKey(ctx, k.ID)
		mustNil(t, "GetKey", err)
		if got.RevokedAt == nil {
			t.Errorf("key %s of a deleted principal: RevokedAt = nil, want set", k.Prefix)
		}
		if e, err := s.LookupKey(ctx, k.Hash); err == nil && e.Key.Active(time.Now()) {
			t.Errorf("LookupKey(%s) of a deleted principal is active", k.Prefix)
		}
	}
	ks, _, err := s.ListKeys(ctx, "", keystore.ListOptions{})
	mustNil(t, "ListKeys(all active)", err)
	if len(ks) != 0 {
		t.Errorf("active keys after delete = %v, want none", keyIDs(ks))
	}
	wantChange(t, w, "delete", "del", "")
	k, _ := newKey(t, "del", "late")
	wantErr(t, "CreateKey(deleted principal)", s.CreateKey(ctx, &k, 0), keystore.ErrNotFound)
	wantErr(t, "DeletePrincipal(unknown)", s.DeletePrincipal(ctx, "never"), keystore.ErrNotFound)
}

func testCreateLookupKey(t *testing.T, s keystore.Store) {
	ctx := ctxOf(t)
	p := mustPrincipal(t, s, "look", "read", "write")
	exp := usec(time.Now().Add(720 * time.Hour))
	k, plain := newKey(t, "look", "ci deploy")
	k.Scopes = []string{"read"}
	k.RateLimit = []string{"10-S"}
	k.Metadata = map[string]string{"env": "ci"}
	k.ExpiresAt = &exp
	before := time.Now().Add(-time.Second)
	mustNil(t, "CreateKey", s.CreateKey(ctx, &k, 10))
	if k.CreatedAt.Before(before) || k.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("CreatedAt = %v, want about now", k.CreatedAt)
	}
	e, err := s.LookupKey(ctx, hasher.Hash(plain))
	mustNil(t, "LookupKey", err)
	sameKey(t, e.Key, k)
	samePrincipal(t, e.Principal, p)
	if !e.Key.Active(time.Now()) {
		t.Errorf("new key Active = false, want true")
	}
	if got := e.EffectiveScopes(); !slices.Equal(got, []string{"read"}) {
		t.Errorf("Entry.EffectiveScopes() = %q, want [read]", got)
	}

	legacy, _ := newKey(t, "look", "imported")
	legacy.Legacy = true
	legacy.Prefix = ""
	mustNil(t, "CreateKey(legacy)", s.CreateKey(ctx, &legacy, 0))
	e, err = s.LookupKey(ctx, legacy.Hash)
	mustNil(t, "LookupKey(legacy)", err)
	sameKey(t, e.Key, legacy)
}

func testGetKey(t *testing.T, s keystore.Store) {
	ctx := ctxOf(t)
	mustPrincipal(t, s, "g", "read")
	k, _ := mustKey(t, s, "g", "by id", func(k *keystore.Key) { k.Metadata = map[string]string{"a": "b"} })
	got, err := s.GetKey(ctx, k.ID)
	mustNil(t, "GetKey", err)
	sameKey(t, got, k)
	_, err = s.GetKey(ctx, "0190b7a4-0000-7000-8000-000000000000")
	wantErr(t, "GetKey(unknown)", err, keystore.ErrNotFound)
}

func testLookupUnknown(t *testing.T, s keystore.Store) {
	mustPrincipal(t, s, "x", "read")
	mustKey(t, s, "x", "known", nil)
	_, err := s.LookupKey(ctxOf(t), hasher.Hash("kg_unknown"))
	wantErr(t, "LookupKey(unknown)", err, keystore.ErrNotFound)
}

func testListKeys(t *testing.T, s keystore.Store) {
	ctx := ctxOf(t)
	mustPrincipal(t, s, "l1", "read")
	mustPrincipal(t, s, "l2", "read")
	a, _ := mustKey(t, s, "l1", "a", nil)
	b, _ := mustKey(t, s, "l1", "b", nil)
	c, _ := mustKey(t, s, "l1", "c", nil)
	d, _ := mustKey(t, s, "l2", "d", nil)
	_, err := s.RevokeKey(ctx, b.ID)
	mustNil(t, "RevokeKey", err)

	for _, tc := range []struct {
		name      string
		principal string
		opts      keystore.ListOptions
		want      []string
	}{
		{"active of l1", "l1", keystore.ListOptions{}, []string{a.ID, c.ID}},
		{"all of l1", "l1", keystore.ListOptions{IncludeRevoked: true}, []string{a.ID, b.ID, c.ID}},
		{"active of everyone", "", keystore.ListOptions{}, []string{a.ID, c.ID, d.ID}},
		{"all of everyone", "", keystore.ListOptions{IncludeRevoked: true}, []string{a.ID, b.ID, c.ID, d.ID}},
	} {
		ks, next, err := s.ListKeys(ctx, tc.principal, tc.opts)
		mustNil(t, "ListKeys("+tc.name+")", err)
		if got := keyIDs(ks); !slices.Equal(got, tc.want) || next != "" {
			t.Errorf("ListKeys(%s) = %v, next %q; want %v, \"\"", tc.name, got, next, tc.want)
		}
	}
}

func testListKeysPages(t *testing.T, s keystore.Store) {
	ctx := ctxOf(t)
	mustPrincipal(t, s, "pg", "read")
	var want []string
	for i := range 5 {
		k, _ := mustKey(t, s, "pg", fmt.Sprint("k", i), nil)
		want = append(want, k.ID)
	}
	var got []string
	var sizes []int
	cursor := ""
	for page := 0; ; page++ {
		if page > 5 {
			t.Fatalf("more than 5 pages: the cursor does not advance")
		}
		ks, next, err := s.ListKeys(ctx, "pg", keystore.ListOptions{Limit: 2, Cursor: cursor})
		mustNil(t, "ListKeys", err)
		sizes = append(sizes, len(ks))
		got = append(got, keyIDs(ks)...)
		if next == "" {
			break
		}
		cursor = next
	}
	if !slices.Equal(sizes, []int{2, 2, 1}) || !slices.Equal(got, want) {
		t.Errorf("pages %v of %v, want [2 2 1] of %v", sizes, got, want)
	}
}

func testRevoke(t *testing.T, s keystore.Store) {
	ctx := ctxOf(t)
	mustPrincipal(t, s, "r", "read")
	k, plain := mustKey(t, s, "r", "to revoke", nil)
	before := time.Now().Add(-time.Second)
	got, err := s.RevokeKey(ctx, k.ID)
	mustNil(t, "RevokeKey", err)
	if got.RevokedAt == nil || got.RevokedAt.Before(before) {
		t.Fatalf("RevokeKey RevokedAt = %v, want about now", got.RevokedAt)
	}
	if got.ID != k.ID || got.Name != k.Name || got.Hash != k.Hash {
		t.Errorf("RevokeKey returned key %s %q, want %s %q", got.ID, got.Name, k.ID, k.Name)
	}
	stored, err := s.GetKey(ctx, k.ID)
	mustNil(t, "GetKey", err)
	sameTimePtr(t, "stored revoked_at", stored.RevokedAt, got.RevokedAt)
	e, err := s.LookupKey(ctx, hasher.Hash(plain))
	mustNil(t, "LookupKey(revoked)", err)
	if e.Key.Active(time.Now()) {
		t.Errorf("revoked key Active = true")
	}
	_, err = s.RevokeKey(ctx, k.ID)
	wantErr(t, "RevokeKey(again)", err, keystore.ErrNotFound)
	_, err = s.RevokeKey(ctx, "0190b7a4-0000-7000-8000-000000000000")
	wantErr(t, "RevokeKey(unknown)", err, keystore.ErrNotFound)
}

func testMaxActiveConcurrent(t *testing.T, s keystore.Store) {
	ctx := ctxOf(t)
	mustPrincipal(t, s, "max", "read")
	const n, limit = 20, 10
	var (
		wg                 sync.WaitGroup
		mu                 sync.Mutex
		ok, tooMany, other int
		otherErr           error
	)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, _, err := keystore.NewKey(format, hasher, "max", fmt.Sprint("k", i))
			if err == nil {
				<-start
				err = s.CreateKey(ctx, &k, limit)
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errorsIs(err, keystore.ErrTooManyKeys):
				tooMany++
			default:
				other++
				otherErr = err
			}
		}()
	}
	close(start)
	wg.Wait()
	if ok != limit || tooMany != n-limit || other != 0 {
		t.Errorf("%d concurrent creates with room for %d: %d created, %d ErrTooManyKeys, %d other errors (%v); want %d, %d, 0",
			n, limit, ok, tooMany, other, otherErr, limit, n-limit)
	}
	ks, _, err := s.ListKeys(ctx, "max", keystore.ListOptions{})
	mustNil(t, "ListKeys", err)
	if len(ks) != limit {
		t.Errorf("active keys = %d, want %d", len(ks), limit)
	}
	// Revoking one makes room for one.
	_, err = s.RevokeKey(ctx, ks[0].ID)
	mustNil(t, "RevokeKey", err)
	k, _ := newKey(t, "max", "after revoke")
	mustNil(t, "CreateKey(after revoke)", s.CreateKey(ctx, &k, limit))
	k2, _ := newKey(t, "max", "over")
	wantErr(t, "CreateKey(over the limit)", s.CreateKey(ctx, &k2, limit), keystore.ErrTooManyKeys)
	// maxActive <= 0: no limit (keys import).
	mustNil(t, "CreateKey(maxActive 0)", s.CreateKey(ctx, &k2, 0))
}

func testExpired(t *testing.T, s keystore.Store) {
	ctx := ctxOf(t)
	mustPrincipal(t, s, "exp", "read")
	old, _ := mustKey(t, s, "exp", "expired", func(k *keystore.Key) { k.ExpiresAt = tp(usec(time.Now().Add(-time.Hour))) })
	live, _ := mustKey(t, s, "exp", "live", func(k *keystore.Key) { k.ExpiresAt = tp(usec(time.Now().Add(time.Hour))) })
	ks, _, err := s.ListKeys(ctx, "exp", keystore.ListOptions{})
	mustNil(t, "ListKeys", err)
	if got := keyIDs(ks); !slices.Equal(got, []string{live.ID}) {
		t.Errorf("active keys = %v, want [%s] (not the expired %s)", got, live.ID, old.ID)
	}
	ks, _, err = s.ListKeys(ctx, "exp", keystore.ListOptions{IncludeRevoked: true})
	mustNil(t, "ListKeys(IncludeRevoked)", err)
	if got := keyIDs(ks); !slices.Equal(got, []string{old.ID, live.ID}) {
		t.Errorf("all keys = %v, want [%s %s]", got, old.ID, live.ID)
	}
	// The expired key does not count: room for 2 holds live + one more.
	k, _ := newKey(t, "exp", "second live")
	mustNil(t, "CreateKey(max 2, one expired one live)", s.CreateKey(ctx, &k, 2))
	k2, _ := newKey(t, "exp", "third")
	wantErr(t, "CreateKey(max 2, two live)", s.CreateKey(ctx, &k2, 2), keystore.ErrTooManyKeys)
	e, err := s.LookupKey(ctx, old.Hash)
	mustNil(t, "LookupKey(expired)", err)
	if e.Key.Active(time.Now()) || e.Key.RevokedAt != nil {
		t.Errorf("expired key: Active = %v, RevokedAt = %v; want false, nil", e.Key.Active(time.Now()), e.Key.RevokedAt)
	}
}

func testScopeNotHeld(t *testing.T, s keystore.Store) {
	ctx := ctxOf(t)
	mustPrincipal(t, s, "sc", "read", "write")
	k, _ := newKey(t, "sc", "too wide")
	k.Scopes = []string{"read", "admin"}
	wantErr(t, "CreateKey(scope not held)", s.CreateKey(ctx, &k, 0), keystore.ErrScopeNotHeld)
	mustNil(t, "CreateKey(subset)", s.CreateKey(ctx, &keystore.Key{
		ID: k.ID, PrincipalID: "sc", Name: "subset", Prefix: k.Prefix, Hash: k.Hash, Scopes: []string{"write"},
	}, 0))
	mustKey(t, s, "sc", "all of the principal's", nil)
	mustPrincipal(t, s, "none")
	k3, _ := newKey(t, "none", "any")
	k3.Scopes = []string{"read"}
	wantErr(t, "CreateKey(principal without scopes)", s.CreateKey(ctx, &k3, 0), keystore.ErrScopeNotHeld)
}

func testDuplicateHash(t *testing.T, s keystore.Store) {
	ctx := ctxOf(t)
	mustPrincipal(t, s, "h", "read")
	k, _ := mustKey(t, s, "h", "first", nil)
	dup, _ := newKey(t, "h", "second")
	dup.Hash = k.Hash
	wantErr(t, "CreateKey(duplicate hash)", s.CreateKey(ctx, &dup, 0), keystore.ErrConflict)
	_, err := s.GetKey(ctx, dup.ID)
	wantErr(t, "GetKey(refused duplicate)", err, keystore.ErrNotFound)
}

func testCreateKeyPrincipalState(t *testing.T, s keystore.Store) {
	ctx := ctxOf(t)
	k, _ := newKey(t, "nobody", "x")
	wantErr(t, "CreateKey(unknown principal)", s.CreateKey(ctx, &k, 0), keystore.ErrNotFound)
	p := mustPrincipal(t, s, "off", "read")
	p.DisabledAt = tp(usec(time.Now()))
	mustNil(t, "UpdatePrincipal(disable)", s.UpdatePrincipal(ctx, &p))
	k2, _ := newKey(t, "off", "x")
	wantErr(t, "CreateKey(disabled principal)", s.CreateKey(ctx, &k2, 0), keystore.ErrDisabled)
	mustPrincipal(t, s, "del", "read")
	mustNil(t, "DeletePrincipal", s.DeletePrincipal(ctx, "del"))
	k3, _ := newKey(t, "del", "x")
	wantErr(t, "CreateKey(deleted principal)", s.CreateKey(ctx, &k3, 0), keystore.ErrNotFound)
}

func testRehash(t *testing.T, s keystore.Store) {
	ctx := ctxOf(t)
	mustPrincipal(t, s, "rh", "read")
	k, plain := mustKey(t, s, "rh", "rotate", nil)
	other, _ := mustKey(t, s, "rh", "other", nil)
	newHash := keystore.NewHasher("fedcba9876543210fedcba9876543210").Hash(plain)
	mustNil(t, "Rehash", s.Rehash(ctx, k.ID, newHash))
	e, err := s.LookupKey(ctx, newHash)
	mustNil(t, "LookupKey(new hash)", err)
	if e.Key.ID != k.ID || e.Key.Hash != newHash {
		t.Errorf("LookupKey(new hash) = key %s, want %s with the new hash", e.Key.ID, k.ID)
	}
	_, err = s.LookupKey(ctx, k.Hash)
	wantErr(t, "LookupKey(old hash)", err, keystore.ErrNotFound)
	wantErr(t, "Rehash(to another key's hash)", s.Rehash(ctx, k.ID, other.Hash), keystore.ErrConflict)
	wantErr(t, "Rehash(unknown key)", s.Rehash(ctx, "0190b7a4-0000-7000-8000-000000000000", hasher.Hash("kg_x")), keystore.ErrNotFound)
}

func testWatchSameStore(t *testing.T, s keystore.Store) {
	w := startWatch(t, s, s)
	mustPrincipal(t, s, "ws", "read")
	k, _ := mustKey(t, s, "ws", "watched", nil)
	_, err := s.RevokeKey(ctxOf(t), k.ID)
	mustNil(t, "RevokeKey", err)
	wantChange(t, w, "revoke", "ws", k.ID)
}

func testWatchStops(t *testing.T, s keystore.Store) {
	ctx, cancel := context.WithCancel(ctxOf(t))
	done := make(chan error, 1)
	go func() { done <- s.Watch(ctx, func(keystore.Change) {}) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Watch after cancel = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("Watch did not return within 5s of its context ending")
	}
}

// ---- two stores on one database ----

func testSharedSeesWrites(t *testing.T, a, b keystore.Store) {
	ctx := ctxOf(t)
	p := mustPrincipal(t, a, "sh", "read")
	k, plain := mustKey(t, a, "sh", "shared", nil)
	got, err := b.GetPrincipal(ctx, "sh")
	mustNil(t, "b.GetPrincipal", err)
	samePrincipal(t, got, p)
	e, err := b.LookupKey(ctx, hasher.Hash(plain))
	mustNil(t, "b.LookupKey", err)
	sameKey(t, e.Key, k)
	_, err = b.RevokeKey(ctx, k.ID)
	mustNil(t, "b.RevokeKey", err)
	e, err = a.LookupKey(ctx, k.Hash)
	mustNil(t, "a.LookupKey", err)
	if e.Key.RevokedAt == nil {
		t.Errorf("a sees RevokedAt = nil after b revoked, want set")
	}
}

func testWatchOtherStore(t *testing.T, a, b keystore.Store) {
	w := startWatch(t, a, b)
	mustPrincipal(t, b, "wo", "read")
	k, _ := mustKey(t, b, "wo", "watched", nil)
	_, err := b.RevokeKey(ctxOf(t), k.ID)
	mustNil(t, "b.RevokeKey", err)
	wantChange(t, w, "revoke by the other store", "wo", k.ID)
}

func testWatchOtherStorePrincipal(t *testing.T, a, b keystore.Store) {
	ctx := ctxOf(t)
	w := startWatch(t, a, b)
	p := mustPrincipal(t, b, "wp", "read")
	mustPrincipal(t, b, "wd", "read")
	p.DisabledAt = tp(usec(time.Now()))
	mustNil(t, "b.UpdatePrincipal(disable)", b.UpdatePrincipal(ctx, &p))
	mustNil(t, "b.DeletePrincipal", b.DeletePrincipal(ctx, "wd"))
	wantChange(t, w, "disable by the other store", "wp", "")
	wantChange(t, w, "delete by the other store", "wd", "")
}

func testMaxActiveShared(t *testing.T, a, b keystore.Store) {
	ctx := ctxOf(t)
	mustPrincipal(t, a, "ms", "read")
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := a
			if i%2 == 1 {
				s = b
			}
			k, _, err := keystore.NewKey(format, hasher, "ms", fmt.Sprint("k", i))
			if err == nil {
				err = s.CreateKey(ctx, &k, 10)
			}
			if err != nil && !errorsIs(err, keystore.ErrTooManyKeys) {
				t.Errorf("CreateKey: err = %v, want nil or ErrTooManyKeys", err)
			}
			if err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ok != 10 {
		t.Errorf("20 creates through two stores with room for 10: %d created, want 10", ok)
	}
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
