package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/keystore"
	"github.com/keygate/keygate/keystore/sqlite"
	"github.com/keygate/keygate/keystore/storetest"
)

// fastPoll keeps the Watch tests quick; the default is checked separately.
const fastPoll = 20 * time.Millisecond

func open(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(path, sqlite.Options{PollInterval: fastPoll})
	if err != nil {
		t.Fatalf("Open(%s) = %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) keystore.Store {
		return open(t, filepath.Join(t.TempDir(), "kg.db"))
	})
}

func TestConformanceShared(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (keystore.Store, keystore.Store) {
		path := filepath.Join(t.TempDir(), "kg.db")
		return open(t, path), open(t, path)
	})
}

func TestMigrateTwice(t *testing.T) {
	ctx := t.Context()
	s := open(t, filepath.Join(t.TempDir(), "kg.db"))
	v, err := s.SchemaVersion(ctx)
	if err != nil || v != 2 {
		t.Fatalf("SchemaVersion = %d, %v; want 2, nil", v, err)
	}
	p := keystore.Principal{ID: "kept"}
	if err := s.CreatePrincipal(ctx, &p); err != nil {
		t.Fatalf("CreatePrincipal: %v", err)
	}
	for i := range 2 {
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("Migrate again (%d) = %v, want nil", i, err)
		}
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v != 2 {
		t.Errorf("SchemaVersion after re-runs = %d, %v; want 2, nil", v, err)
	}
	if _, err := s.GetPrincipal(ctx, "kept"); err != nil {
		t.Errorf("GetPrincipal after re-migrating = %v, want nil", err)
	}
}

func TestSchemaVersionBeforeMigrate(t *testing.T) {
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "kg.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.SchemaVersion(t.Context()); err != nil || v != 0 {
		t.Errorf("SchemaVersion before Migrate = %d, %v; want 0, nil", v, err)
	}
}

func TestConcurrentMigrate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kg.db")
	var stores []*sqlite.Store
	for range 4 {
		s, err := sqlite.Open(path, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores = append(stores, s)
	}
	errs := make(chan error, len(stores))
	for _, s := range stores {
		go func() { errs <- s.Migrate(t.Context()) }()
	}
	for range stores {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Migrate = %v, want nil", err)
		}
	}
}

func TestSecondOpenSeesWrites(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "kg.db")
	a := open(t, path)
	p := keystore.Principal{ID: "cli-made", Scopes: []string{"read"}}
	if err := a.CreatePrincipal(ctx, &p); err != nil {
		t.Fatalf("CreatePrincipal: %v", err)
	}
	b := open(t, path)
	got, err := b.GetPrincipal(ctx, "cli-made")
	if err != nil || got.ID != "cli-made" || !got.CreatedAt.Equal(p.CreatedAt) {
		t.Errorf("second Open GetPrincipal = %+v, %v; want cli-made created %v", got, err, p.CreatedAt)
	}
}

func TestOpenCreatesDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "kg.db")
	open(t, path)
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file: %v", err)
	}
}

func TestOpenErrorNamesPath(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(blocker, "kg.db") // parent is a file
	_, err := sqlite.Open(path, sqlite.Options{})
	if err == nil || !strings.Contains(err.Error(), "open sqlite "+path) {
		t.Errorf("Open(under a file) err = %v, want it to name %s", err, path)
	}
	for _, bad := range []string{"", ":memory:", "file:x.db", "x.db?mode=ro"} {
		if _, err := sqlite.Open(bad, sqlite.Options{}); err == nil {
			t.Errorf("Open(%q) err = nil, want an error", bad)
		}
	}
}

// TestWAL checks the pragmas the DSN asks for reach every connection.
func TestPragmas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kg.db")
	open(t, path)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
}

// TestNowOption checks the store takes its times from Options.Now, and that times
// round-trip to the nanosecond in UTC.
func TestNowOption(t *testing.T) {
	ctx := t.Context()
	fixed := time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.FixedZone("X", 3600))
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "kg.db"), sqlite.Options{Now: func() time.Time { return fixed }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	p := keystore.Principal{ID: "t", Scopes: []string{"a"}}
	if err := s.CreatePrincipal(ctx, &p); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetPrincipal(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	if got.CreatedAt != fixed.UTC() {
		t.Errorf("CreatedAt = %v, want exactly %v", got.CreatedAt, fixed.UTC())
	}
	k, _, err := keystore.NewKey(keystore.Format{Prefix: "kg_"}, keystore.NewHasher(storetest.Secret), "t", "n")
	if err != nil {
		t.Fatal(err)
	}
	exp := fixed.Add(time.Nanosecond) // active: one nanosecond left
	k.ExpiresAt = &exp
	if err := s.CreateKey(ctx, &k, 1); err != nil {
		t.Fatal(err)
	}
	ks, _, err := s.ListKeys(ctx, "t", keystore.ListOptions{})
	if err != nil || len(ks) != 1 || *ks[0].ExpiresAt != exp.UTC() {
		t.Errorf("ListKeys = %v, %v; want the key, expiring exactly %v", ks, err, exp.UTC())
	}
	k2, _, _ := keystore.NewKey(keystore.Format{Prefix: "kg_"}, keystore.NewHasher(storetest.Secret), "t", "m")
	if err := s.CreateKey(ctx, &k2, 1); !errors.Is(err, keystore.ErrTooManyKeys) {
		t.Errorf("CreateKey over max = %v, want ErrTooManyKeys", err)
	}
	far := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	k2.ExpiresAt = &far
	if err := s.CreateKey(ctx, &k2, 0); err == nil {
		t.Errorf("CreateKey(expires in year 10000) err = nil, want an error")
	}
}

// TestErrorsHoldNoSecret checks that a failing write names the database and not the hash.
func TestErrorsHoldNoSecret(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "kg.db")
	s := open(t, path)
	p := keystore.Principal{ID: "p"}
	if err := s.CreatePrincipal(ctx, &p); err != nil {
		t.Fatal(err)
	}
	k, plain, _ := keystore.NewKey(keystore.Format{Prefix: "kg_"}, keystore.NewHasher(storetest.Secret), "p", "n")
	if err := s.CreateKey(ctx, &k, 0); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	for _, err := range []error{
		s.Rehash(cctx, k.ID, k.Hash),
		func() error { _, err := s.LookupKey(cctx, k.Hash); return err }(),
	} {
		if err == nil {
			t.Fatalf("call with a cancelled context err = nil, want an error")
		}
		msg := err.Error()
		if strings.Contains(msg, plain) || strings.Contains(msg, k.Hash.String()) {
			t.Errorf("error %q holds the key or its hash", msg)
		}
		if !strings.Contains(msg, path) {
			t.Errorf("error %q does not name %s", msg, path)
		}
	}
}

// TestImportRefusals checks what ImportKeys refuses beyond the suite: a disabled
// principal, a scope it does not hold, a key id already taken. Each stores nothing.
func TestImportRefusals(t *testing.T) {
	ctx := t.Context()
	s := open(t, filepath.Join(t.TempDir(), "kg.db"))
	for _, id := range []string{"on", "off"} {
		p := keystore.Principal{ID: id, Scopes: []string{"read"}}
		if err := s.CreatePrincipal(ctx, &p); err != nil {
			t.Fatal(err)
		}
	}
	off, _ := s.GetPrincipal(ctx, "off")
	now := time.Now()
	off.DisabledAt = &now
	if err := s.UpdatePrincipal(ctx, &off); err != nil {
		t.Fatal(err)
	}
	taken, _, _ := keystore.NewKey(keystore.Format{Prefix: "kg_"}, keystore.NewHasher(storetest.Secret), "on", "taken")
	if err := s.CreateKey(ctx, &taken, 0); err != nil {
		t.Fatal(err)
	}
	mk := func(principal string, edit func(*keystore.Key)) []keystore.Key {
		var ks []keystore.Key
		for range 3 {
			k, _, _ := keystore.NewKey(keystore.Format{Prefix: "kg_"}, keystore.NewHasher(storetest.Secret), "on", "legacy")
			k.Legacy = true
			ks = append(ks, k)
		}
		ks[1].PrincipalID = principal
		if edit != nil {
			edit(&ks[1])
		}
		return ks
	}
	for _, tc := range []struct {
		name string
		keys []keystore.Key
		want error
		says string
	}{
		{"disabled principal", mk("off", nil), keystore.ErrDisabled, `"off"`},
		{"scope not held", mk("on", func(k *keystore.Key) { k.Scopes = []string{"admin"} }), keystore.ErrScopeNotHeld, "key 1"},
		{"id taken", mk("on", func(k *keystore.Key) { k.ID = taken.ID }), keystore.ErrConflict, taken.ID},
	} {
		n, err := s.ImportKeys(ctx, tc.keys)
		if !errors.Is(err, tc.want) || n != 0 || !strings.Contains(fmt.Sprint(err), tc.says) {
			t.Errorf("ImportKeys(%s) = %d, %v; want 0 and %v naming %s", tc.name, n, err, tc.want, tc.says)
		}
		if strings.Contains(fmt.Sprint(err), tc.keys[1].Hash.String()) {
			t.Errorf("ImportKeys(%s) error holds a hash", tc.name)
		}
		ks, _, err := s.ListKeys(ctx, "on", keystore.ListOptions{IncludeRevoked: true})
		if err != nil || len(ks) != 1 {
			t.Errorf("after ImportKeys(%s): %d keys, %v; want only the taken one", tc.name, len(ks), err)
		}
	}
}
