package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate/internal/testenv"
	"github.com/keygate/keygate/keystore"
	"github.com/keygate/keygate/keystore/postgres"
	"github.com/keygate/keygate/keystore/storetest"
)

// testConns keeps the suite's parallel tests, each with its own pool, well under the
// server's max_connections.
const testConns = 4

// newSchema returns the URL of a fresh, empty schema of the test database.
func newSchema(t testing.TB) string {
	t.Helper()
	return testenv.NewPostgresSchema(t, testenv.PostgresURL(t))
}

// openRaw opens a Store on url without migrating it; it is closed in t.Cleanup, before the
// schema is dropped.
func openRaw(t testing.TB, url string, o postgres.Options) *postgres.Store {
	t.Helper()
	if o.MaxConns == 0 {
		o.MaxConns = testConns
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := postgres.Open(ctx, url, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// open opens and migrates a Store on url.
func open(t testing.TB, url string) *postgres.Store {
	t.Helper()
	s := openRaw(t, url, postgres.Options{})
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) keystore.Store {
		return open(t, newSchema(t))
	})
}

func TestConformanceShared(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (keystore.Store, keystore.Store) {
		url := newSchema(t)
		return open(t, url), open(t, url)
	})
}

// TestConcurrentMigrate runs Migrate from four fresh Stores on one empty schema at once:
// the advisory lock must make them wait for each other, so that each succeeds and every
// migration is applied once.
func TestConcurrentMigrate(t *testing.T) {
	url := newSchema(t)
	var stores []*postgres.Store
	for range 4 {
		stores = append(stores, openRaw(t, url, postgres.Options{MaxConns: 2}))
	}
	start := make(chan struct{})
	errs := make(chan error, len(stores))
	for _, s := range stores {
		go func() {
			<-start
			errs <- s.Migrate(t.Context())
		}()
	}
	close(start)
	for range stores {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Migrate = %v, want nil", err)
		}
	}
	for i, s := range stores {
		if v, err := s.SchemaVersion(t.Context()); err != nil || v != 1 {
			t.Errorf("store %d: SchemaVersion = %d, %v; want 1, nil", i, v, err)
		}
	}
	conn := connect(t, url)
	var n int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil || n != 1 {
		t.Errorf("schema_migrations rows = %d, %v; want 1", n, err)
	}
	// The lock is released: one more Migrate neither waits nor fails.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := stores[0].Migrate(ctx); err != nil {
		t.Errorf("Migrate after the others = %v, want nil", err)
	}
}

// TestWatchSeesRevokeWithinASecond: a revoke through one Store reaches Watch on another
// within SPEC §9's second.
func TestWatchSeesRevokeWithinASecond(t *testing.T) {
	url := newSchema(t)
	a, b := open(t, url), open(t, url)
	ctx := t.Context()
	p := keystore.Principal{ID: "w", Scopes: []string{"read"}}
	if err := b.CreatePrincipal(ctx, &p); err != nil {
		t.Fatal(err)
	}
	k, _, err := keystore.NewKey(keystore.Format{Prefix: "kg_"}, keystore.NewHasher(storetest.Secret), "w", "n")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.CreateKey(ctx, &k, 0); err != nil {
		t.Fatal(err)
	}

	changes := make(chan keystore.Change, 16)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Watch(wctx, func(c keystore.Change) { changes <- c }) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch after cancel = %v, want nil", err)
		}
	}()
	// Wait until the watch is live: probe with principal updates until one arrives.
	live := false
	for range 50 {
		p.DisplayName = fmt.Sprint(time.Now().UnixNano())
		if err := b.UpdatePrincipal(ctx, &p); err != nil {
			t.Fatal(err)
		}
		select {
		case <-changes:
			live = true
		case <-time.After(100 * time.Millisecond):
		}
		if live {
			break
		}
	}
	if !live {
		t.Fatal("Watch reported no probe change within 5s")
	}
	for len(changes) > 0 {
		<-changes
	}

	var latencies []time.Duration
	for i := range 5 {
		k, _, _ := keystore.NewKey(keystore.Format{Prefix: "kg_"}, keystore.NewHasher(storetest.Secret), "w", fmt.Sprint(i))
		if err := b.CreateKey(ctx, &k, 0); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := b.RevokeKey(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
		deadline := time.After(time.Second)
	wait:
		for {
			select {
			case c := <-changes:
				if c.KeyID == k.ID {
					if c.PrincipalID != "w" || c.At.IsZero() {
						t.Errorf("change = %+v, want principal w and At set", c)
					}
					latencies = append(latencies, time.Since(start))
					break wait
				}
			case <-deadline:
				t.Fatalf("revoke of %s not seen by Watch within 1s", k.ID)
			}
		}
	}
	t.Logf("revoke commit+notify to Watch: %v", latencies)
}

// TestWatchEndsWithClose: closing the store ends a running Watch with nil.
func TestWatchEndsWithClose(t *testing.T) {
	url := newSchema(t)
	s, err := postgres.Open(t.Context(), url, postgres.Options{MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Watch(context.Background(), func(keystore.Change) {}) }()
	time.Sleep(50 * time.Millisecond) // let it connect; Close must work either way
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Watch after Close = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return within 5s of Close")
	}
}

// TestWatchConnectionLost: Watch returns an error when its connection is cut.
func TestWatchConnectionLost(t *testing.T) {
	base := testenv.PostgresURL(t)
	url := newSchema(t)
	cfg, err := pgx.ParseConfig(base)
	if err != nil {
		t.Fatal(err)
	}
	relay := testenv.NewRelay(t, fmt.Sprintf("%s:%d", cfg.Host, cfg.Port))
	relayed := strings.Replace(url, fmt.Sprintf("%s:%d", cfg.Host, cfg.Port), relay.Addr(), 1)
	if relayed == url {
		t.Skip("cannot point the test URL at the relay")
	}
	s, direct := open(t, relayed), open(t, url)
	seen := make(chan keystore.Change, 100)
	done := make(chan error, 1)
	go func() { done <- s.Watch(t.Context(), func(c keystore.Change) { seen <- c }) }()
	// Cut only once the watch is live, so that the connection lost is the LISTENing one.
	p := keystore.Principal{ID: "probe"}
	must(t, direct.CreatePrincipal(t.Context(), &p))
	for live := false; !live; {
		must(t, direct.UpdatePrincipal(t.Context(), &p))
		select {
		case <-seen:
			live = true
		case err := <-done:
			t.Fatalf("Watch returned before the cut: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	relay.Cut()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("Watch after its connection was cut = nil, want an error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return within 5s of its connection being cut")
	}
}

func TestOpenErrorHoldsNoPassword(t *testing.T) {
	for _, url := range []string{
		"postgres://keygate:s3cr3t-pw@127.0.0.1:1/none?sslmode=disable&connect_timeout=1",
		"postgres://keygate:s3cr3t-pw@[bad/none",
		"host=127.0.0.1 port=1 user=keygate password=s3cr3t-pw dbname=none connect_timeout=1 sslmode=disable",
		"host=127.0.0.1 port=notaport password=s3cr3t-pw",
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := postgres.Open(ctx, url, postgres.Options{})
		cancel()
		if err == nil {
			t.Errorf("Open(unreachable) err = nil, want an error")
			continue
		}
		t.Logf("Open error: %v", err)
		if msg := err.Error(); strings.Contains(msg, "s3cr3t") || !strings.HasPrefix(msg, "open postgres: ") {
			t.Errorf("Open error %q: want \"open postgres: ...\" without the password", msg)
		}
	}
}

// TestMaxActiveNeedsTheLock checks the suite's concurrency test against a pool as wide as
// the number of creates, where nothing but the row lock serializes them.
func TestMaxActiveNeedsTheLock(t *testing.T) {
	s := openRaw(t, newSchema(t), postgres.Options{MaxConns: 20})
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	p := keystore.Principal{ID: "m"}
	if err := s.CreatePrincipal(ctx, &p); err != nil {
		t.Fatal(err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		ok   int
		errs []error
	)
	start := make(chan struct{})
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, _, _ := keystore.NewKey(keystore.Format{Prefix: "kg_"}, keystore.NewHasher(storetest.Secret), "m", fmt.Sprint(i))
			<-start
			err := s.CreateKey(ctx, &k, 10)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, keystore.ErrTooManyKeys):
				errs = append(errs, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if ok != 10 || len(errs) > 0 {
		t.Errorf("20 concurrent creates, room for 10, 20 connections: %d created, errors %v; want 10, none", ok, errs)
	}
}

// TestAuditInTransaction: every write leaves one audit row with the actor of its context,
// and a refused write leaves none.
func TestAuditInTransaction(t *testing.T) {
	s := open(t, newSchema(t))
	ctx := keystore.WithActor(t.Context(), "admin:ops")
	p := keystore.Principal{ID: "a", Scopes: []string{"read"}}
	must(t, s.CreatePrincipal(ctx, &p))
	if err := s.CreatePrincipal(ctx, &p); !errors.Is(err, keystore.ErrConflict) {
		t.Fatalf("duplicate CreatePrincipal = %v, want ErrConflict", err)
	}
	k, _, _ := keystore.NewKey(keystore.Format{Prefix: "kg_"}, keystore.NewHasher(storetest.Secret), "a", "n")
	must(t, s.CreateKey(ctx, &k, 0))
	k.Name = "renamed"
	must(t, s.UpdateKey(ctx, &k))
	_, err := s.RevokeKey(ctx, k.ID)
	must(t, err)
	p.DisabledAt = ptr(time.Now())
	must(t, s.UpdatePrincipal(ctx, &p))
	p.DisabledAt = nil
	must(t, s.UpdatePrincipal(ctx, &p))
	must(t, s.UpdatePrincipal(ctx, &p))
	must(t, s.DeletePrincipal(ctx, "a"))
	evs, next, err := s.ListAudit(t.Context(), "a", keystore.ListOptions{})
	must(t, err)
	var got []string
	for _, e := range evs {
		if e.Actor != "admin:ops" || e.At.IsZero() || e.At.Location() != time.UTC {
			t.Errorf("event %+v: want actor admin:ops and a UTC time", e)
		}
		got = append(got, e.Action+"/"+e.KeyID)
	}
	want := []string{"principal.delete/", "principal.update/", "principal.enable/", "principal.disable/",
		"key.revoke/" + k.ID, "key.update/" + k.ID, "key.create/" + k.ID, "principal.create/"}
	if strings.Join(got, " ") != strings.Join(want, " ") || next != "" {
		t.Errorf("audit = %v, next %q; want %v, \"\"", got, next, want)
	}
	// Pages, newest first.
	page, next, err := s.ListAudit(t.Context(), "", keystore.ListOptions{Limit: 3})
	must(t, err)
	page2, _, err := s.ListAudit(t.Context(), "", keystore.ListOptions{Limit: 3, Cursor: next})
	must(t, err)
	if len(page) != 3 || len(page2) != 3 || page[2].ID <= page2[0].ID {
		t.Errorf("pages of 3: %d then %d events, ids %d then %d; want 3, 3, descending", len(page), len(page2), page[len(page)-1].ID, page2[0].ID)
	}
	if _, _, err := s.ListAudit(t.Context(), "", keystore.ListOptions{Cursor: "!"}); !errors.Is(err, keystore.ErrBadCursor) {
		t.Errorf("ListAudit(bad cursor) = %v, want ErrBadCursor", err)
	}
}

func TestImportKeys(t *testing.T) {
	s := open(t, newSchema(t))
	ctx := keystore.WithActor(t.Context(), "cli")
	for _, id := range []string{"a", "b"} {
		p := keystore.Principal{ID: id}
		must(t, s.CreatePrincipal(ctx, &p))
	}
	h := keystore.NewHasher(storetest.Secret)
	var keys []keystore.Key
	for i := range 1000 {
		pid := "a"
		if i%2 == 1 {
			pid = "b"
		}
		k, _, _ := keystore.NewKey(keystore.Format{Prefix: "kg_"}, h, pid, fmt.Sprint("legacy-", i+1))
		k.Legacy, k.Prefix = true, ""
		if i == 0 {
			k.Scopes, k.Metadata = nil, map[string]string{"from": "old"}
		}
		keys = append(keys, k)
	}
	keys = append(keys, keys[3]) // a duplicate within the file
	keys[len(keys)-1].ID = "0190b7a4-0000-7000-8000-000000000001"
	n, err := s.ImportKeys(ctx, keys)
	if err != nil || n != 1000 {
		t.Fatalf("ImportKeys = %d, %v; want 1000, nil", n, err)
	}
	e, err := s.LookupKey(ctx, keys[0].Hash)
	must(t, err)
	if !e.Key.Legacy || e.Key.Metadata["from"] != "old" || e.Key.CreatedAt.IsZero() || e.Principal.ID != "a" {
		t.Errorf("imported key = %+v, want legacy with its metadata, created now, of a", e.Key)
	}
	// Again: nothing twice.
	if n, err := s.ImportKeys(ctx, keys[:10]); err != nil || n != 0 {
		t.Errorf("ImportKeys(again) = %d, %v; want 0, nil", n, err)
	}
	// An unknown principal: nothing stored, ErrNotFound naming it.
	k1, _, _ := keystore.NewKey(keystore.Format{Prefix: "kg_"}, h, "a", "new")
	k2, _, _ := keystore.NewKey(keystore.Format{Prefix: "kg_"}, h, "ghost", "new")
	_, err = s.ImportKeys(ctx, []keystore.Key{k1, k2})
	if !errors.Is(err, keystore.ErrNotFound) || !strings.Contains(err.Error(), `"ghost"`) {
		t.Errorf("ImportKeys(unknown principal) = %v, want ErrNotFound naming ghost", err)
	}
	if _, err := s.LookupKey(ctx, k1.Hash); !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("LookupKey(key of a refused import) = %v, want ErrNotFound", err)
	}
	evs, _, err := s.ListAudit(ctx, "b", keystore.ListOptions{})
	must(t, err)
	if len(evs) < 2 || evs[0].Action != "key.import" || evs[0].Detail != "imported 0 keys, skipped 5 already stored" ||
		evs[1].Detail != "imported 500 keys, skipped 1 already stored" {
		t.Errorf("audit of b = %+v, want key.import events for both imports", evs)
	}
}

func TestRecordUsage(t *testing.T) {
	s := open(t, newSchema(t))
	ctx := t.Context()
	p := keystore.Principal{ID: "u"}
	must(t, s.CreatePrincipal(ctx, &p))
	h := keystore.NewHasher(storetest.Secret)
	k1, _, _ := keystore.NewKey(keystore.Format{Prefix: "kg_"}, h, "u", "1")
	k2, _, _ := keystore.NewKey(keystore.Format{Prefix: "kg_"}, h, "u", "2")
	must(t, s.CreateKey(ctx, &k1, 0))
	must(t, s.CreateKey(ctx, &k2, 0))
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 6007, time.UTC)
	must(t, s.RecordUsage(ctx, []keystore.Usage{
		{KeyID: k1.ID, Count: 3, LastUsed: t0},
		{KeyID: k1.ID, Count: 2, LastUsed: t0.Add(-time.Hour)},
		{KeyID: k2.ID, Count: 1},
		{KeyID: "0190b7a4-0000-7000-8000-00000000dead", Count: 9, LastUsed: t0},
		{KeyID: "not-a-uuid", Count: 9, LastUsed: t0},
	}))
	must(t, s.RecordUsage(ctx, []keystore.Usage{{KeyID: k1.ID, Count: 1, LastUsed: t0.Add(-time.Minute)}}))
	got1, err := s.GetKey(ctx, k1.ID)
	must(t, err)
	if got1.UsageCount != 6 || got1.LastUsedAt == nil || !got1.LastUsedAt.Equal(t0.Truncate(time.Microsecond)) {
		t.Errorf("k1 usage = %d, last %v; want 6, %v", got1.UsageCount, got1.LastUsedAt, t0)
	}
	got2, err := s.GetKey(ctx, k2.ID)
	must(t, err)
	if got2.UsageCount != 1 || got2.LastUsedAt != nil {
		t.Errorf("k2 usage = %d, last %v; want 1, nil", got2.UsageCount, got2.LastUsedAt)
	}
}

// TestRecordUsageConcurrent: flushes of overlapping batches from several stores at once
// neither deadlock nor lose counts.
func TestRecordUsageConcurrent(t *testing.T) {
	url := newSchema(t)
	a, b := open(t, url), open(t, url)
	ctx := t.Context()
	p := keystore.Principal{ID: "u"}
	must(t, a.CreatePrincipal(ctx, &p))
	h := keystore.NewHasher(storetest.Secret)
	var ids []string
	for i := range 50 {
		k, _, _ := keystore.NewKey(keystore.Format{Prefix: "kg_"}, h, "u", fmt.Sprint(i))
		must(t, a.CreateKey(ctx, &k, 0))
		ids = append(ids, k.ID)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := a
			if g%2 == 1 {
				s = b
			}
			for range 10 {
				var u []keystore.Usage
				for i := range ids {
					j := i
					if g%2 == 1 {
						j = len(ids) - 1 - i // the other order
					}
					u = append(u, keystore.Usage{KeyID: ids[j], Count: 1, LastUsed: time.Now()})
				}
				if err := s.RecordUsage(ctx, u); err != nil {
					t.Errorf("RecordUsage: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, id := range ids {
		k, err := a.GetKey(ctx, id)
		must(t, err)
		if k.UsageCount != 80 {
			t.Fatalf("key %s usage = %d, want 80", id, k.UsageCount)
		}
	}
}

func TestUpdateKey(t *testing.T) {
	s := open(t, newSchema(t))
	ctx := t.Context()
	p := keystore.Principal{ID: "k", Scopes: []string{"read", "write"}}
	must(t, s.CreatePrincipal(ctx, &p))
	other := keystore.Principal{ID: "other"}
	must(t, s.CreatePrincipal(ctx, &other))
	h := keystore.NewHasher(storetest.Secret)
	k, _, _ := keystore.NewKey(keystore.Format{Prefix: "kg_"}, h, "k", "n")
	k.ExpiresAt = ptr(time.Now().Add(-time.Hour)) // expired keys may be extended
	must(t, s.CreateKey(ctx, &k, 0))
	exp := time.Now().Add(time.Hour)
	upd := keystore.Key{ID: k.ID, Name: "new", Scopes: []string{"write"}, RateLimit: []string{"5-S"},
		Metadata: map[string]string{"x": "y"}, ExpiresAt: &exp}
	must(t, s.UpdateKey(ctx, &upd))
	got, err := s.GetKey(ctx, k.ID)
	must(t, err)
	if got.Name != "new" || got.Scopes[0] != "write" || got.RateLimit[0] != "5-S" || got.Metadata["x"] != "y" ||
		!got.ExpiresAt.Equal(exp.Truncate(time.Microsecond)) || got.Hash != k.Hash || !got.CreatedAt.Equal(k.CreatedAt) {
		t.Errorf("after UpdateKey: %+v", got)
	}
	if upd.PrincipalID != "k" || upd.Hash != k.Hash {
		t.Errorf("UpdateKey did not fill k from the stored record: %+v", upd)
	}
	upd.Scopes = []string{"admin"}
	if err := s.UpdateKey(ctx, &upd); !errors.Is(err, keystore.ErrScopeNotHeld) {
		t.Errorf("UpdateKey(scope not held) = %v, want ErrScopeNotHeld", err)
	}
	wrong := keystore.Key{ID: k.ID, PrincipalID: "other", Name: "x"}
	if err := s.UpdateKey(ctx, &wrong); !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("UpdateKey(another principal's key) = %v, want ErrNotFound", err)
	}
	_, err = s.RevokeKey(ctx, k.ID)
	must(t, err)
	upd.Scopes = nil
	if err := s.UpdateKey(ctx, &upd); !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("UpdateKey(revoked) = %v, want ErrNotFound", err)
	}
	for _, id := range []string{"0190b7a4-0000-7000-8000-000000000000", "nope"} {
		if err := s.UpdateKey(ctx, &keystore.Key{ID: id}); !errors.Is(err, keystore.ErrNotFound) {
			t.Errorf("UpdateKey(%s) = %v, want ErrNotFound", id, err)
		}
	}
}

func TestNotUUIDKeyIDsAreNotFound(t *testing.T) {
	s := open(t, newSchema(t))
	ctx := t.Context()
	if _, err := s.GetKey(ctx, "nope"); !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("GetKey(nope) = %v, want ErrNotFound", err)
	}
	if _, err := s.RevokeKey(ctx, "nope"); !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("RevokeKey(nope) = %v, want ErrNotFound", err)
	}
	if err := s.Rehash(ctx, "nope", keystore.Hash{1}); !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("Rehash(nope) = %v, want ErrNotFound", err)
	}
}

// BenchmarkLookupKey measures one LookupKey round trip (key joined with its principal)
// against the test database.
func BenchmarkLookupKey(b *testing.B) {
	s := open(b, newSchema(b))
	ctx := context.Background()
	p := keystore.Principal{ID: "bench", Scopes: []string{"read"}}
	if err := s.CreatePrincipal(ctx, &p); err != nil {
		b.Fatal(err)
	}
	k, _, _ := keystore.NewKey(keystore.Format{Prefix: "kg_"}, keystore.NewHasher(storetest.Secret), "bench", "n")
	if err := s.CreateKey(ctx, &k, 0); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.LookupKey(ctx, k.Hash); err != nil {
			b.Fatal(err)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}
