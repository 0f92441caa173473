// Package testenv gives tests the real services they need and nothing else: the PostgreSQL
// and Redis URLs from KEYGATE_TEST_*, skipping (or failing, in CI) when one is unset; a fresh
// PostgreSQL schema or Redis key prefix per test; and a TCP relay that cuts or silences a
// connection on demand for outage tests. It is imported only from _test.go files.
package testenv

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variables read by this package.
const (
	// EnvPostgresURL holds a PostgreSQL URL whose role may create and drop schemas.
	EnvPostgresURL = "KEYGATE_TEST_POSTGRES_URL"
	// EnvRedisURL holds a Redis URL (redis://host:port/db).
	EnvRedisURL = "KEYGATE_TEST_REDIS_URL"
	// EnvRequireServices, set to 1, turns a missing service URL from a skip into a failure.
	EnvRequireServices = "KEYGATE_TEST_REQUIRE_SERVICES"
)

// PostgresURL returns KEYGATE_TEST_POSTGRES_URL. When it is unset the test is skipped with a
// message naming the variable, or fails when KEYGATE_TEST_REQUIRE_SERVICES=1.
func PostgresURL(t testing.TB) string {
	t.Helper()
	return serviceURL(t, EnvPostgresURL, "PostgreSQL")
}

// RedisURL returns KEYGATE_TEST_REDIS_URL. When it is unset the test is skipped with a
// message naming the variable, or fails when KEYGATE_TEST_REQUIRE_SERVICES=1.
func RedisURL(t testing.TB) string {
	t.Helper()
	return serviceURL(t, EnvRedisURL, "Redis")
}

func serviceURL(t testing.TB, env, service string) string {
	t.Helper()
	if v := os.Getenv(env); v != "" {
		return v
	}
	if os.Getenv(EnvRequireServices) == "1" {
		t.Fatalf("%s is not set and %s=1: this test needs %s", env, EnvRequireServices, service)
		return ""
	}
	t.Skipf("%s is not set: skipping, this test needs %s (set %s=1 to make this a failure)",
		env, service, EnvRequireServices)
	return ""
}

// NewPostgresSchema creates an empty schema for this test in the database at baseURL and
// returns baseURL with search_path set to it, so that every connection made from the result
// works inside it. The schema is named after t.Name() with a random suffix, and is dropped
// (with everything in it) in t.Cleanup; close your pools in cleanups registered after this
// call, which run first. Both URL and keyword/value connection strings are accepted.
func NewPostgresSchema(t testing.TB, baseURL string) string {
	t.Helper()
	schema := schemaName(t.Name())
	ident := pgx.Identifier{schema}.Sanitize()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := execPostgres(ctx, baseURL, "CREATE SCHEMA "+ident); err != nil {
		t.Fatalf("testenv: create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// A drop that waits on a lock means a connection of the test is still open.
		if err := execPostgres(ctx, baseURL,
			"SET lock_timeout = '10s'", "DROP SCHEMA IF EXISTS "+ident+" CASCADE"); err != nil {
			t.Errorf("testenv: drop schema %s (a connection left open?): %v", schema, err)
		}
	})

	u, err := withSearchPath(baseURL, schema)
	if err != nil {
		t.Fatalf("testenv: %s: %v", EnvPostgresURL, err)
	}
	return u
}

// execPostgres runs each statement on one new connection.
func execPostgres(ctx context.Context, connString string, stmts ...string) error {
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// withSearchPath adds search_path=schema to a connection string; pgx sends parameters it
// does not know to the server as run-time parameters.
func withSearchPath(connString, schema string) (string, error) {
	if !strings.HasPrefix(connString, "postgres://") && !strings.HasPrefix(connString, "postgresql://") {
		return connString + " search_path=" + schema, nil // keyword/value form
	}
	u, err := url.Parse(connString)
	if err != nil {
		return "", fmt.Errorf("not a valid URL") // the error would quote the URL, password included
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// schemaName is "kgtest_", the test name in lower case with every run of other characters
// as one "_" (at most 40 bytes of it), "_" and 8 random hex digits: a valid unquoted
// identifier well under PostgreSQL's 63 bytes.
func schemaName(testName string) string {
	return "kgtest_" + sanitize(testName, 40) + fmt.Sprintf("_%08x", rand.Uint32())
}

// RedisPrefix returns a key prefix no other test uses ("kgtest:<name>:<random>:"). Tests
// give it to the code under test so that their keys never meet, and need not clean up keys
// that expire by themselves.
func RedisPrefix(t testing.TB) string {
	t.Helper()
	return "kgtest:" + sanitize(t.Name(), 60) + fmt.Sprintf(":%08x:", rand.Uint32())
}

// sanitize lower-cases s, keeps [a-z0-9], turns every run of anything else into one "_",
// trims "_" from both ends and cuts the result to at most max bytes.
func sanitize(s string, max int) string {
	var b strings.Builder
	under := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			under = false
			continue
		}
		if !under && b.Len() > 0 {
			b.WriteByte('_')
			under = true
		}
	}
	out := b.String()
	if len(out) > max {
		out = out[:max]
	}
	return strings.TrimRight(out, "_")
}

// Relay is a TCP relay between a client under test and a real service, for outage tests:
// point the client at Addr, then Cut, Blackhole and Restore the service as seen through it.
// A Relay is safe for concurrent use and is closed in t.Cleanup.
type Relay struct {
	target string
	ln     net.Listener
	ctx    context.Context // canceled on Close; bounds dials to the target
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	mu    sync.Mutex
	mode  relayMode
	links map[*link]struct{}
}

type relayMode int

const (
	modeForward   relayMode = iota // relay bytes both ways
	modeCut                        // close every connection, accept and close new ones
	modeBlackhole                  // accept, read and drop everything, answer nothing
	modeClosed                     // listener closed
)

// link is one client connection and, when forwarding, its connection to the target.
type link struct {
	client, server net.Conn // server is nil for a connection accepted while blackholed
	silenced       atomic.Bool
}

func (l *link) close() {
	l.client.Close()
	if l.server != nil {
		l.server.Close()
	}
}

// NewRelay starts a relay listening on 127.0.0.1:0 that forwards every connection to
// target (host:port). It is closed, with all its connections, in t.Cleanup.
func NewRelay(t testing.TB, target string) *Relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: relay listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Relay{target: target, ln: ln, ctx: ctx, cancel: cancel, links: map[*link]struct{}{}}
	r.wg.Add(1)
	go r.acceptLoop()
	t.Cleanup(r.Close)
	return r
}

// Addr is the relay's host:port, to use instead of the target's.
func (r *Relay) Addr() string { return r.ln.Addr().String() }

// Cut closes every current connection, both ways, and from now on accepts each new
// connection and closes it at once (the client sees EOF or a reset), until Restore.
func (r *Relay) Cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mode == modeClosed {
		return
	}
	r.mode = modeCut
	for l := range r.links {
		l.close()
		delete(r.links, l)
	}
}

// Blackhole silences the service without closing anything: current connections stay open
// but their bytes are dropped both ways, and new connections are accepted and read but
// never forwarded nor answered, as in a network partition. Only a client's own timeouts
// end its wait. Restore closes the silenced connections.
func (r *Relay) Blackhole() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mode == modeClosed {
		return
	}
	r.mode = modeBlackhole
	for l := range r.links {
		l.silenced.Store(true)
	}
}

// Restore forwards new connections to the target again. Connections silenced by Blackhole
// are closed, since bytes were lost on them; connections still forwarding are kept.
func (r *Relay) Restore() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mode == modeClosed {
		return
	}
	r.mode = modeForward
	for l := range r.links {
		if l.silenced.Load() {
			l.close()
			delete(r.links, l)
		}
	}
}

// Close stops the listener, closes every connection and waits for the relay's goroutines.
// It is idempotent; NewRelay registers it with t.Cleanup.
func (r *Relay) Close() {
	r.once.Do(func() {
		r.mu.Lock()
		r.mode = modeClosed
		r.ln.Close()
		r.cancel()
		for l := range r.links {
			l.close()
			delete(r.links, l)
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
}

func (r *Relay) acceptLoop() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			r.mu.Lock()
			closed := r.mode == modeClosed
			r.mu.Unlock()
			if closed {
				return
			}
			time.Sleep(5 * time.Millisecond) // e.g. too many open files: try again
			continue
		}
		r.wg.Add(1)
		go r.serve(c)
	}
}

// serve handles one accepted connection according to the mode at the time.
func (r *Relay) serve(c net.Conn) {
	defer r.wg.Done()
	r.mu.Lock()
	mode := r.mode
	r.mu.Unlock()

	l := &link{client: c}
	switch mode {
	case modeForward:
		var d net.Dialer
		ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
		s, err := d.DialContext(ctx, "tcp", r.target)
		cancel()
		if err != nil {
			c.Close() // the target is down: the client sees it as a closed connection
			return
		}
		l.server = s
	case modeBlackhole:
		l.silenced.Store(true)
	default:
		c.Close()
		return
	}

	// The mode may have changed while dialing: register under the lock, or give up.
	r.mu.Lock()
	ok := r.mode == modeForward && l.server != nil || r.mode == modeBlackhole
	if ok {
		if r.mode == modeBlackhole {
			l.silenced.Store(true)
		}
		r.links[l] = struct{}{}
	}
	r.mu.Unlock()
	if !ok {
		l.close()
		return
	}

	if l.server == nil {
		r.pipe(l, c, nil)
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.pipe(l, l.server, c)
	}()
	r.pipe(l, c, l.server)
}

// pipe copies src to dst (dropping the bytes while the link is silenced, or always when dst
// is nil) until either side fails, then closes the link and forgets it.
func (r *Relay) pipe(l *link, src, dst net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && dst != nil && !l.silenced.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				err = werr
			}
		}
		if err != nil {
			break
		}
	}
	l.close()
	r.mu.Lock()
	delete(r.links, l)
	r.mu.Unlock()
}
