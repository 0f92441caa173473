package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// fakeTB records Skipf and Fatalf and ends the calling goroutine as testing.T does.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls fn on f in a goroutine of its own (fn may Goexit) and returns its result.
func (f *fakeTB) run(fn func(testing.TB) string) (got string) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		got = fn(f)
	}()
	<-done
	return got
}

func TestServiceURL(t *testing.T) {
	for _, tc := range []struct {
		name                string
		value, require      string
		want                string
		wantSkip, wantFatal bool
	}{
		{name: "set", value: "redis://h:1/0", want: "redis://h:1/0"},
		{name: "set and required", value: "redis://h:1/0", require: "1", want: "redis://h:1/0"},
		{name: "unset skips", wantSkip: true},
		{name: "unset, require not 1, skips", require: "true", wantSkip: true},
		{name: "unset and required fails", require: "1", wantFatal: true},
	} {
		for _, fn := range []struct {
			env string
			get func(testing.TB) string
		}{{EnvPostgresURL, PostgresURL}, {EnvRedisURL, RedisURL}} {
			t.Run(tc.name+"/"+fn.env, func(t *testing.T) {
				t.Setenv(fn.env, tc.value)
				t.Setenv(EnvRequireServices, tc.require)
				f := &fakeTB{TB: t}
				got := f.run(fn.get)
				if got != tc.want {
					t.Errorf("got %q, want %q", got, tc.want)
				}
				if (f.skipped != "") != tc.wantSkip {
					t.Errorf("skipped = %q, want skip %v", f.skipped, tc.wantSkip)
				}
				if (f.failed != "") != tc.wantFatal {
					t.Errorf("failed = %q, want fatal %v", f.failed, tc.wantFatal)
				}
				if msg := f.skipped + f.failed; msg != "" && !strings.Contains(msg, fn.env) {
					t.Errorf("message %q does not name %s", msg, fn.env)
				}
			})
		}
	}
}

func TestSanitize(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		max      int
		want     string
	}{
		{"plain", "TestStore", 40, "teststore"},
		{"subtests", "TestStore/Create_key#01", 40, "teststore_create_key_01"},
		{"runs of others", "Test--a  b", 40, "test_a_b"},
		{"leading and trailing", "/Test/", 40, "test"},
		{"non-ASCII", "Test/ünïcode", 40, "test_n_code"},
		{"cut", "TestAbcdef", 5, "testa"},
		{"cut before underscore", "Test/abc", 5, "test"},
		{"nothing left", "###", 40, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sanitize(tc.in, tc.max); got != tc.want {
				t.Errorf("sanitize(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
			}
		})
	}
}

func TestSchemaName(t *testing.T) {
	long := "Test" + strings.Repeat("/VeryLongSubtestName", 10)
	a, b := schemaName(long), schemaName(long)
	if a == b {
		t.Errorf("schemaName twice = %q both times, want different", a)
	}
	if len(a) > 63 {
		t.Errorf("schemaName(%q) = %q, %d bytes, want at most 63", long, a, len(a))
	}
	if !strings.HasPrefix(a, "kgtest_test_verylongsubtestname_") {
		t.Errorf("schemaName(%q) = %q, want the sanitized name after kgtest_", long, a)
	}
	for _, r := range a {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			t.Fatalf("schemaName(%q) = %q, has %q, want [a-z0-9_] only", long, a, r)
		}
	}
}

func TestWithSearchPath(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"url", "postgres://u@h:5432/db", "postgres://u@h:5432/db?search_path=s1"},
		{"url with query", "postgresql://u@h/db?sslmode=disable",
			"postgresql://u@h/db?search_path=s1&sslmode=disable"},
		{"url with search_path", "postgres://h/db?search_path=public", "postgres://h/db?search_path=s1"},
		{"keyword/value", "host=h dbname=db", "host=h dbname=db search_path=s1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := withSearchPath(tc.in, "s1")
			if err != nil || got != tc.want {
				t.Errorf("withSearchPath(%q) = %q, %v, want %q", tc.in, got, err, tc.want)
			}
		})
	}
	if _, err := withSearchPath("postgres://u:hunter2@h:bad/db", "s1"); err == nil ||
		strings.Contains(err.Error(), "hunter2") {
		t.Errorf("withSearchPath(bad URL) error = %v, want an error without the password", err)
	}
}

func TestRedisPrefix(t *testing.T) {
	a, b := RedisPrefix(t), RedisPrefix(t)
	if a == b {
		t.Errorf("RedisPrefix twice = %q both times, want different", a)
	}
	if !strings.HasPrefix(a, "kgtest:testredisprefix:") || !strings.HasSuffix(a, ":") {
		t.Errorf("RedisPrefix = %q, want kgtest:testredisprefix:<random>:", a)
	}
}

// echoServer serves TCP connections that echo what they read; it is closed in t.Cleanup.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg and reads len(msg) bytes back, waiting at most wait.
func roundTrip(c net.Conn, msg string, wait time.Duration) (string, error) {
	c.SetDeadline(time.Now().Add(wait))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	buf := make([]byte, len(msg))
	n, err := io.ReadFull(c, buf)
	return string(buf[:n]), err
}

func mustEcho(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if got, err := roundTrip(c, msg, 2*time.Second); err != nil || got != msg {
		t.Fatalf("echo through relay = %q, %v, want %q", got, err, msg)
	}
}

// mustBeClosed checks that c is (or soon becomes) closed by the other side.
func mustBeClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("read on a connection the relay should have closed: %v, want EOF or reset", err)
	}
}

// mustBeSilent checks that c stays open but answers nothing.
func mustBeSilent(t *testing.T, c net.Conn) {
	t.Helper()
	got, err := roundTrip(c, "ping", 200*time.Millisecond)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("round trip through a blackholed relay = %q, %v, want a timeout", got, err)
	}
}

func TestRelayForwards(t *testing.T) {
	r := NewRelay(t, echoServer(t))
	c := dial(t, r.Addr())
	mustEcho(t, c, "hello")
	big := strings.Repeat("0123456789abcdef", 16<<10) // 256 KiB, more than one buffer
	mustEcho(t, c, big)
}

func TestRelayCut(t *testing.T) {
	r := NewRelay(t, echoServer(t))
	before := dial(t, r.Addr())
	mustEcho(t, before, "hello")

	r.Cut()
	mustBeClosed(t, before)
	during := dial(t, r.Addr()) // accepted, then closed
	mustBeClosed(t, during)

	r.Restore()
	after := dial(t, r.Addr())
	mustEcho(t, after, "again")
}

func TestRelayBlackhole(t *testing.T) {
	r := NewRelay(t, echoServer(t))
	before := dial(t, r.Addr())
	mustEcho(t, before, "hello")

	r.Blackhole()
	mustBeSilent(t, before)
	during := dial(t, r.Addr()) // accepted, never answered
	mustBeSilent(t, during)

	r.Restore()
	mustBeClosed(t, before) // bytes were lost on it
	mustBeClosed(t, during)
	after := dial(t, r.Addr())
	mustEcho(t, after, "again")
}

func TestRelayTargetDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := ln.Addr().String()
	ln.Close() // nothing listens there now
	r := NewRelay(t, target)
	mustBeClosed(t, dial(t, r.Addr()))
}

func TestRelayClosedOnCleanup(t *testing.T) {
	echo := echoServer(t)
	var addr string
	var c net.Conn
	t.Run("inner", func(t *testing.T) {
		r := NewRelay(t, echo)
		addr = r.Addr()
		c, _ = net.Dial("tcp", addr)
		mustEcho(t, c, "hello")
	})
	defer c.Close()
	mustBeClosed(t, c)
	if c2, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c2.Close()
		t.Errorf("dial %s after the test ended: connected, want refused", addr)
	}
}

func TestNewPostgresSchema(t *testing.T) {
	base := PostgresURL(t)
	ctx := t.Context()
	var schema string
	t.Run("inner", func(t *testing.T) {
		u := NewPostgresSchema(t, base)
		parsed, err := url.Parse(u)
		if err != nil {
			t.Fatalf("NewPostgresSchema returned an unparsable URL: %v", err)
		}
		schema = parsed.Query().Get("search_path")
		if !strings.HasPrefix(schema, "kgtest_testnewpostgresschema_inner_") {
			t.Fatalf("search_path = %q, want kgtest_testnewpostgresschema_inner_<random>", schema)
		}
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatalf("connect with the schema URL: %v", err)
		}
		defer conn.Close(ctx)
		var got string
		if err := conn.QueryRow(ctx, "SELECT current_schema()").Scan(&got); err != nil || got != schema {
			t.Fatalf("current_schema() = %q, %v, want %q", got, err, schema)
		}
		if _, err := conn.Exec(ctx, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)"); err != nil {
			t.Fatalf("create a table in the schema: %v", err)
		}
		var n int
		q := "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name = 't'"
		if err := conn.QueryRow(ctx, q, schema).Scan(&n); err != nil || n != 1 {
			t.Fatalf("tables named t in %s = %d, %v, want 1", schema, n, err)
		}
	})
	if t.Failed() || schema == "" {
		return
	}

	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	var exists bool
	q := "SELECT EXISTS (SELECT 1 FROM information_schema.schemata WHERE schema_name = $1)"
	if err := conn.QueryRow(ctx, q, schema).Scan(&exists); err != nil || exists {
		t.Errorf("schema %s exists after the test = %v, %v, want dropped", schema, exists, err)
	}
}

func redisClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(RedisURL(t))
	if err != nil {
		t.Fatalf("parse %s: %v", EnvRedisURL, err)
	}
	if addr != "" {
		opts.Addr = addr
	}
	opts.MaxRetries = -1
	opts.DialTimeout = 500 * time.Millisecond
	opts.ReadTimeout = 500 * time.Millisecond
	opts.WriteTimeout = 500 * time.Millisecond
	opts.ContextTimeoutEnabled = true
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRedis(t *testing.T) {
	ctx := t.Context()
	c := redisClient(t, "")
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING: %v", err)
	}
	key := RedisPrefix(t) + "k"
	if err := c.Set(ctx, key, "v", time.Minute).Err(); err != nil {
		t.Fatalf("SET %s: %v", key, err)
	}
	t.Cleanup(func() { c.Del(context.Background(), key) })
	if got, err := c.Get(ctx, key).Result(); err != nil || got != "v" {
		t.Errorf("GET %s = %q, %v, want %q", key, got, err, "v")
	}
}

// TestRelayRedisOutage is the shape of an outage test: a real client through the relay.
func TestRelayRedisOutage(t *testing.T) {
	opts, err := redis.ParseURL(RedisURL(t))
	if err != nil {
		t.Fatalf("parse %s: %v", EnvRedisURL, err)
	}
	r := NewRelay(t, opts.Addr)
	c := redisClient(t, r.Addr())
	ping := func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		return c.Ping(ctx).Err()
	}
	if err := ping(); err != nil {
		t.Fatalf("PING through the relay: %v", err)
	}

	for _, outage := range []struct {
		name  string
		start func()
	}{{"cut", r.Cut}, {"blackhole", r.Blackhole}} {
		outage.start()
		start := time.Now()
		if err := ping(); err == nil {
			t.Errorf("%s: PING succeeded, want an error", outage.name)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: PING failed after %v, want within the 300ms context", outage.name, d)
		}
		r.Restore()
		if err := pingUntil(ping, 2*time.Second); err != nil {
			t.Errorf("%s: PING after Restore: %v", outage.name, err)
		}
	}
}

// pingUntil retries ping until it succeeds or d passes: the pool may hand out a connection
// the relay closed before noticing.
func pingUntil(ping func() error, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		err := ping()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}
