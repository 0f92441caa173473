package postgres_test

// Scale measurements of docs/scale.md: loading a million keys into PostgreSQL and cold
// LookupKey latency over them. They run only with KEYGATE_SCALE=1 (never in CI):
//
//	KEYGATE_SCALE=1 KEYGATE_SCALE_SCHEMA=scale_big KEYGATE_SCALE_KEYS=1000000 \
//	KEYGATE_SCALE_OUT=/tmp/scale/big-keys.txt \
//	  go test ./keystore/postgres -run 'TestScaleLoad$' -v -timeout 30m
//	KEYGATE_SCALE=1 KEYGATE_SCALE_SCHEMA=scale_big KEYGATE_SCALE_OUT=/tmp/scale/big-keys.txt \
//	  go test ./keystore/postgres -run 'TestScaleColdLookup$' -v
//
// TestScaleLoad creates the schema (kept afterwards: drop it yourself), migrates it,
// inserts KEYGATE_SCALE_KEYS/10 principals in one SQL statement and imports the keys,
// ten per principal, through Store.ImportKeys in batches. The keys are real keygate keys
// (keystore.NewKey, prefix kg_, checksummed), hashed with KEYGATE_SCALE_SECRET; their
// plaintexts are written to KEYGATE_SCALE_OUT, one a line, for the gateway load test.
// Other variables: KEYGATE_SCALE_URL (the database; default KEYGATE_TEST_POSTGRES_URL or
// the local test database), KEYGATE_SCALE_SECRET (default the bench secret).

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate/keystore"
	"github.com/keygate/keygate/keystore/postgres"
)

const defaultScaleSecret = "bench-secret-0123456789abcdef0123456789abcdef"

type scaleEnv struct {
	base, url, schema, secret, out string
	keys                           int
}

func scaleSetup(t *testing.T) scaleEnv {
	t.Helper()
	if os.Getenv("KEYGATE_SCALE") != "1" {
		t.Skip("scale measurement: set KEYGATE_SCALE=1 (see docs/scale.md)")
	}
	e := scaleEnv{
		base:   os.Getenv("KEYGATE_SCALE_URL"),
		schema: os.Getenv("KEYGATE_SCALE_SCHEMA"),
		secret: os.Getenv("KEYGATE_SCALE_SECRET"),
		out:    os.Getenv("KEYGATE_SCALE_OUT"),
		keys:   1000000,
	}
	if e.base == "" {
		e.base = os.Getenv("KEYGATE_TEST_POSTGRES_URL")
	}
	if e.base == "" {
		e.base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	if e.schema == "" {
		e.schema = "scale_big"
	}
	if e.secret == "" {
		e.secret = defaultScaleSecret
	}
	if v := os.Getenv("KEYGATE_SCALE_KEYS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 10 {
			t.Fatalf("KEYGATE_SCALE_KEYS=%q: want a number >= 10", v)
		}
		e.keys = n
	}
	u, err := url.Parse(e.base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", e.schema)
	u.RawQuery = q.Encode()
	e.url = u.String()
	return e
}

func TestScaleLoad(t *testing.T) {
	e := scaleSetup(t)
	if e.out == "" {
		t.Fatal("set KEYGATE_SCALE_OUT to the file that receives the plaintext keys")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.base)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{e.schema}.Sanitize())
	conn.Close(ctx)
	if err != nil {
		t.Fatalf("create schema %s (it must not exist yet): %v", e.schema, err)
	}
	s, err := postgres.Open(ctx, e.url, postgres.Options{MaxConns: 4, StatementTimeout: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	np := e.keys / 10
	c, err := pgx.Connect(ctx, e.url)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Exec(ctx, `INSERT INTO principals (id, display_name, scopes, created_at, updated_at)
		SELECT 'customer-' || lpad(i::text, 7, '0'), 'Customer ' || i, '{read,write}', now(), now()
		FROM generate_series(0, $1::int - 1) AS i`, np)
	c.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d principals inserted in %v", np, time.Since(start).Round(time.Millisecond))

	f, err := os.Create(e.out)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	format, hasher := keystore.Format{Prefix: "kg_"}, keystore.NewHasher(e.secret)
	const batch = 20000
	type job struct{ keys []keystore.Key }
	jobs := make(chan job, 2)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		stored   int
		firstErr error
	)
	for range 2 { // two importers: the machine has two cores
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				n, err := s.ImportKeys(ctx, j.keys)
				mu.Lock()
				stored += n
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	imp := time.Now()
	var cur []keystore.Key
	for i := range e.keys {
		k, plain, err := keystore.NewKey(format, hasher, fmt.Sprintf("customer-%07d", i/10), "key-"+strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		k.Scopes = []string{"read", "write"}
		cur = append(cur, k)
		w.WriteString(plain)
		w.WriteByte('\n')
		if len(cur) == batch || i == e.keys-1 {
			jobs <- job{cur}
			cur = nil
		}
	}
	close(jobs)
	wg.Wait()
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	if stored != e.keys {
		t.Fatalf("stored %d keys, want %d", stored, e.keys)
	}
	c, err = pgx.Connect(ctx, e.url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "VACUUM ANALYZE keys"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "VACUUM ANALYZE principals"); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d keys imported in %v (%v in all); plaintexts in %s", stored,
		time.Since(imp).Round(time.Millisecond), time.Since(start).Round(time.Millisecond), e.out)
}

// TestScaleColdLookup measures Store.LookupKey (no keygate cache in front) for random keys
// of the loaded schema, each looked up once, and for unknown hashes, and logs EXPLAIN
// ANALYZE of the lookup query. KEYGATE_SCALE_LOOKUPS sets the number (default 10000).
func TestScaleColdLookup(t *testing.T) {
	e := scaleSetup(t)
	if e.out == "" {
		t.Fatal("set KEYGATE_SCALE_OUT to the plaintext keys written by TestScaleLoad")
	}
	n := 10000
	if v := os.Getenv("KEYGATE_SCALE_LOOKUPS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	data, err := os.ReadFile(e.out)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Fields(string(data))
	rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	if n > len(all) {
		n = len(all)
	}
	hasher := keystore.NewHasher(e.secret)
	hashes := make([]keystore.Hash, n)
	for i := range hashes {
		hashes[i] = hasher.Hash(all[i])
	}
	ctx := context.Background()
	s, err := postgres.Open(ctx, e.url, postgres.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var count int
	c, err := pgx.Connect(ctx, e.url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if err := c.QueryRow(ctx, "SELECT count(*) FROM keys").Scan(&count); err != nil {
		t.Fatal(err)
	}
	t.Logf("schema %s: %d keys; %d cold lookups of distinct random keys, one at a time", e.schema, count, n)

	// Warm the pool's connections and their prepared statements on keys not measured.
	for _, k := range all[n:min(len(all), n+50)] {
		if _, err := s.LookupKey(ctx, hasher.Hash(k)); err != nil {
			t.Fatal(err)
		}
	}
	measure := func(name string, hs []keystore.Hash, want error) {
		d := make([]time.Duration, len(hs))
		t0 := time.Now()
		for i, h := range hs {
			s0 := time.Now()
			_, err := s.LookupKey(ctx, h)
			d[i] = time.Since(s0)
			if err != want && (want == nil || err == nil || err.Error() != want.Error()) {
				t.Fatalf("%s: LookupKey = %v, want %v", name, err, want)
			}
		}
		total := time.Since(t0)
		slices.Sort(d)
		pct := func(p float64) time.Duration { return d[int(p*float64(len(d)-1))] }
		t.Logf("%s: n=%d p50=%v p90=%v p99=%v max=%v (%.0f lookups/s sequential)", name, len(d),
			pct(0.50).Round(time.Microsecond), pct(0.90).Round(time.Microsecond),
			pct(0.99).Round(time.Microsecond), d[len(d)-1].Round(time.Microsecond),
			float64(len(d))/total.Seconds())
	}
	measure("known keys", hashes, nil)
	unknown := make([]keystore.Hash, min(n, 2000))
	for i := range unknown {
		unknown[i] = hasher.Hash(fmt.Sprintf("kg_unknown-%d-%d", i, rand.Int()))
	}
	measure("unknown keys", unknown, keystore.ErrNotFound)

	// EXPLAIN ANALYZE of the query LookupKey runs (same join and predicate).
	h := hasher.Hash(all[len(all)-1])
	rows, err := c.Query(ctx, `EXPLAIN (ANALYZE, BUFFERS) SELECT k.*, p.* FROM keys k
		JOIN principals p ON p.id = k.principal_id WHERE k.hash = $1`, h[:])
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("EXPLAIN ANALYZE:\n%s", strings.Join(lines, "\n"))
}
