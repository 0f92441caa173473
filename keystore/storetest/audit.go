package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/keystore"
)

// listAudit pages through ListAudit with limit and returns every event and the page sizes.
func listAudit(t *testing.T, s keystore.Store, principalID string, limit int) ([]keystore.AuditEvent, []int) {
	t.Helper()
	var (
		all   []keystore.AuditEvent
		sizes []int
	)
	for cursor := ""; ; {
		if len(sizes) > 100 {
			t.Fatalf("ListAudit(%q): more than 100 pages: the cursor does not advance", principalID)
		}
		es, next, err := s.ListAudit(ctxOf(t), principalID, keystore.ListOptions{Limit: limit, Cursor: cursor})
		mustNil(t, "ListAudit", err)
		all = append(all, es...)
		sizes = append(sizes, len(es))
		if next == "" {
			return all, sizes
		}
		cursor = next
	}
}

type wantEvent struct{ action, actor, principal, key, detail string }

// sameEvents compares events with want, newest first; detail "" is not compared. It
// checks that ids fall and times are set, in UTC, between from and to.
func sameEvents(t *testing.T, what string, got []keystore.AuditEvent, want []wantEvent, from, to time.Time) {
	t.Helper()
	if len(got) != len(want) {
		var acts []string
		for _, e := range got {
			acts = append(acts, e.Action+" "+e.PrincipalID)
		}
		t.Fatalf("%s: %d events %q, want %d", what, len(got), acts, len(want))
	}
	for i, e := range got {
		w := want[i]
		if e.Action != w.action || e.Actor != w.actor || e.PrincipalID != w.principal || e.KeyID != w.key ||
			(w.detail != "" && e.Detail != w.detail) {
			t.Errorf("%s[%d] = {%s actor=%q principal=%q key=%q detail=%q}, want {%s actor=%q principal=%q key=%q detail=%q}",
				what, i, e.Action, e.Actor, e.PrincipalID, e.KeyID, e.Detail,
				w.action, w.actor, w.principal, w.key, w.detail)
		}
		if i > 0 && e.ID >= got[i-1].ID {
			t.Errorf("%s[%d].ID = %d after %d, want ids falling (newest first)", what, i, e.ID, got[i-1].ID)
		}
		if e.At.Before(from) || e.At.After(to) || e.At.Location() != time.UTC {
			t.Errorf("%s[%d].At = %v, want UTC between %v and %v", what, i, e.At, from, to)
		}
	}
}

func testAuditEveryWrite(t *testing.T, s keystore.Store) {
	from := time.Now().Add(-time.Second)
	ctx := keystore.WithActor(ctxOf(t), "admin:ops")
	const secretHash = "$argon2id$v=19$m=19456,t=2,p=1$c2VjcmV0$c2VjcmV0aGFzaA"

	p := keystore.Principal{ID: "au", Scopes: []string{"read", "write"}}
	mustNil(t, "CreatePrincipal", s.CreatePrincipal(ctx, &p))
	p.DisplayName = "Audited"
	p.PasswordHash = secretHash
	mustNil(t, "UpdatePrincipal", s.UpdatePrincipal(ctx, &p))
	k, plain := newKey(t, "au", "audited key")
	mustNil(t, "CreateKey", s.CreateKey(ctx, &k, 0))
	k.Name = "renamed"
	mustNil(t, "UpdateKey", s.UpdateKey(ctx, &k))
	_, err := s.RevokeKey(ctx, k.ID)
	mustNil(t, "RevokeKey", err)
	p.DisabledAt = tp(usec(time.Now()))
	mustNil(t, "UpdatePrincipal(disable)", s.UpdatePrincipal(ctx, &p))
	p.DisabledAt = nil
	mustNil(t, "UpdatePrincipal(enable)", s.UpdatePrincipal(ctx, &p))
	imported := legacyKeys(t, "au", 2, time.Time{})
	n, err := s.ImportKeys(ctx, imported)
	if err != nil || n != 2 {
		t.Fatalf("ImportKeys = %d, %v; want 2, nil", n, err)
	}

	// Not audited: rehash and usage. Refused writes leave no event.
	newHash := keystore.NewHasher("fedcba9876543210fedcba9876543210").Hash("kg_rotated")
	mustNil(t, "Rehash", s.Rehash(ctx, imported[0].ID, newHash))
	mustNil(t, "RecordUsage", s.RecordUsage(ctx, []keystore.Usage{{KeyID: imported[1].ID, Count: 1, LastUsed: usec(time.Now())}}))
	dup := keystore.Principal{ID: "au"}
	wantErr(t, "CreatePrincipal(dup)", s.CreatePrincipal(ctx, &dup), keystore.ErrConflict)
	wide, _ := newKey(t, "au", "wide")
	wide.Scopes = []string{"admin"}
	wantErr(t, "CreateKey(scope not held)", s.CreateKey(ctx, &wide, 0), keystore.ErrScopeNotHeld)
	_, err = s.RevokeKey(ctx, k.ID)
	wantErr(t, "RevokeKey(again)", err, keystore.ErrNotFound)

	mustNil(t, "DeletePrincipal", s.DeletePrincipal(ctx, "au"))

	// Another principal: without an actor ("unknown"), then as the CLI.
	other := keystore.Principal{ID: "ot"}
	mustNil(t, "CreatePrincipal(no actor)", s.CreatePrincipal(ctxOf(t), &other))
	ko, _ := newKey(t, "ot", "cli key")
	mustNil(t, "CreateKey(cli)", s.CreateKey(keystore.WithActor(ctxOf(t), "cli"), &ko, 0))
	to := time.Now().Add(time.Second)

	const ops = "admin:ops"
	wantAU := []wantEvent{
		{"principal.delete", ops, "au", "", ""},
		{"key.import", ops, "au", "", "imported 2 keys"},
		{"principal.enable", ops, "au", "", ""},
		{"principal.disable", ops, "au", "", ""},
		{"key.revoke", ops, "au", k.ID, ""},
		{"key.update", ops, "au", k.ID, ""},
		{"key.create", ops, "au", k.ID, ""},
		{"principal.update", ops, "au", "", ""},
		{"principal.create", ops, "au", "", ""},
	}
	got, _ := listAudit(t, s, "au", 0) // a deleted principal's events stay listed
	sameEvents(t, "ListAudit(au)", got, wantAU, from, to)
	all, _ := listAudit(t, s, "", 0)
	sameEvents(t, "ListAudit(all)", all, append([]wantEvent{
		{"key.create", "cli", "ot", ko.ID, ""},
		{"principal.create", "unknown", "ot", "", ""},
	}, wantAU...), from, to)
	for _, e := range all {
		for _, secret := range []string{plain, secretHash, k.Hash.String(), imported[0].Hash.String(), newHash.String()} {
			if strings.Contains(e.Detail, secret) {
				t.Errorf("event %s detail %q holds a secret", e.Action, e.Detail)
			}
		}
	}
	none, next, err := s.ListAudit(ctxOf(t), "nobody", keystore.ListOptions{})
	if err != nil || len(none) != 0 || next != "" {
		t.Errorf("ListAudit(unknown principal) = %d events, next %q, %v; want 0, \"\", nil", len(none), next, err)
	}
}

func testAuditPages(t *testing.T, s keystore.Store) {
	ctx := keystore.WithActor(ctxOf(t), "cli")
	from := time.Now().Add(-time.Second)
	var want []wantEvent
	for _, i := range rand25() {
		id := fmt.Sprintf("ap%02d", i)
		mustPrincipal(t, s, id)
		want = append(want, wantEvent{"principal.create", "unknown", id, "", ""})
	}
	p, err := s.GetPrincipal(ctx, "ap07")
	mustNil(t, "GetPrincipal", err)
	for i := range 5 {
		p.DisplayName = fmt.Sprint("name ", i)
		mustNil(t, "UpdatePrincipal", s.UpdatePrincipal(ctx, &p))
		want = append(want, wantEvent{"principal.update", "cli", "ap07", "", ""})
	}
	slices.Reverse(want)
	to := time.Now().Add(time.Second)

	got, sizes := listAudit(t, s, "", 10)
	if !slices.Equal(sizes, []int{10, 10, 10}) {
		t.Errorf("ListAudit(limit 10) page sizes = %v, want [10 10 10]", sizes)
	}
	sameEvents(t, "ListAudit(all, limit 10)", got, want, from, to)
	got, sizes = listAudit(t, s, "", 0)
	if !slices.Equal(sizes, []int{30}) {
		t.Errorf("ListAudit(limit 0) page sizes = %v, want [30]", sizes)
	}
	got, sizes = listAudit(t, s, "ap07", 4)
	if !slices.Equal(sizes, []int{4, 2}) {
		t.Errorf("ListAudit(ap07, limit 4) page sizes = %v, want [4 2]", sizes)
	}
	var wantAP07 []wantEvent
	for _, w := range want {
		if w.principal == "ap07" {
			wantAP07 = append(wantAP07, w)
		}
	}
	sameEvents(t, "ListAudit(ap07, limit 4)", got, wantAP07, from, to)
}
