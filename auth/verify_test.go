package auth

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/keystore"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"
)

// fakePrincipals is a principalLookup over a map; err, when set, is every answer.
type fakePrincipals struct {
	mu     sync.Mutex
	m      map[string]keystore.Principal
	err    error
	calls  int
	during func() // called inside GetPrincipal, after the read
}

func (f *fakePrincipals) GetPrincipal(_ context.Context, id string) (keystore.Principal, error) {
	f.mu.Lock()
	f.calls++
	p, ok := f.m[id]
	err, during := f.err, f.during
	f.mu.Unlock()
	if during != nil {
		during()
	}
	switch {
	case err != nil:
		return keystore.Principal{}, err
	case !ok:
		return keystore.Principal{}, keystore.ErrNotFound
	}
	return p, nil
}

func (f *fakePrincipals) set(p keystore.Principal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[p.ID] = p
}

// fakeKeys is a keyLookup over a map; cached says which hashes Peek reports as cached.
type fakeKeys struct {
	m       map[keystore.Hash]*keystore.Entry
	cached  map[keystore.Hash]bool
	lookups int
}

func (f *fakeKeys) Lookup(_ context.Context, h keystore.Hash) (*keystore.Entry, error) {
	f.lookups++
	if e, ok := f.m[h]; ok {
		return e, nil
	}
	return nil, keystore.ErrNotFound
}

func (f *fakeKeys) Peek(h keystore.Hash) bool { return f.cached[h] }

// Fresh answers a cached hash as the cache would: a lookup served without the store.
func (f *fakeKeys) Fresh(h keystore.Hash) *keystore.Entry {
	if !f.cached[h] || f.m[h] == nil {
		return nil
	}
	f.lookups++
	return f.m[h]
}

// fakeAttempts blocks every caller when blocked is set and records failures.
type fakeAttempts struct {
	mu      sync.Mutex
	blocked bool
	asked   []string // principal argument of each Blocked call
	failed  []string // "ip principal" of each Failed call
}

func (f *fakeAttempts) Blocked(_ context.Context, _ netip.Addr, principal string) (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, principal)
	if !f.blocked {
		return 0, false
	}
	return 42 * time.Second, true
}

func (f *fakeAttempts) Failed(_ context.Context, ip netip.Addr, principal string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed = append(f.failed, ip.String()+" "+principal)
}

var (
	// goodKey is a well-formed key of alice (testKey of extract_test has no valid checksum).
	goodKey = func() string {
		k, err := keystore.Format{Prefix: "kg_"}.Generate()
		if err != nil {
			panic(err)
		}
		return k
	}()
	// otherKey is well-formed and unknown.
	otherKey, _ = keystore.Format{Prefix: "kg_"}.Generate()
	testIP      = netip.MustParseAddr("192.0.2.7")
	testHasher  = keystore.NewHasher("test-secret-test-secret-test-secret")
	// alicePHC is alice's password hash, made once: each HashPassword costs ~22 ms.
	alicePHC = sync.OnceValue(func() string {
		h, err := HashPassword("alice-pw")
		if err != nil {
			panic(err)
		}
		return h
	})
)

type testEnv struct {
	a     *Authenticator
	ps    *fakePrincipals
	keys  *fakeKeys
	tries *fakeAttempts
	now   time.Time
}

// newTestEnv returns an Authenticator over fakes: principal alice (password alice-pw,
// scopes write and read, rate 10-S), the key goodKey of alice, and a limiter that blocks
// no one. edit changes the options before construction.
func newTestEnv(t testing.TB, edit func(*Options)) *testEnv {
	t.Helper()
	env := &testEnv{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	env.ps = &fakePrincipals{m: map[string]keystore.Principal{}}
	env.ps.set(keystore.Principal{ID: "alice", PasswordHash: alicePHC(), Scopes: []string{"write", "read"}, RateLimit: []string{"10-S"}})
	env.keys = &fakeKeys{m: map[keystore.Hash]*keystore.Entry{}, cached: map[keystore.Hash]bool{}}
	env.keys.m[testHasher.Hash(goodKey)] = &keystore.Entry{
		Key:       keystore.Key{ID: "key-1", PrincipalID: "alice", Name: "laptop"},
		Principal: keystore.Principal{ID: "alice"},
		Held:      []string{"read"}, HeldHeader: "read",
	}
	env.tries = &fakeAttempts{}
	o := Options{
		Format:     keystore.Format{Prefix: "kg_"},
		Hasher:     testHasher,
		Keys:       env.keys,
		Principals: env.ps,
		Attempts:   env.tries,
		Now:        func() time.Time { return env.now },
	}
	if edit != nil {
		edit(&o)
	}
	env.a = NewAuthenticator(o)
	return env
}

func basicCreds(user, pw string) *Credentials {
	return &Credentials{Carrier: CarrierBasic, Username: user, Password: pw}
}

func (env *testEnv) verify(c *Credentials) (Identity, Result, error) {
	return env.a.Verify(context.Background(), c, ModeRequired, testIP)
}

func TestVerifyPassword(t *testing.T) {
	storeDown := errors.New("store down")
	for _, tc := range []struct {
		name     string
		user, pw string
		edit     func(*fakePrincipals)
		want     Result
		wantErr  error
		wantKDF  uint64 // KDF runs
		wantFail string // the Failed call, "" for none
	}{
		{"right password", "alice", "alice-pw", nil, ResultOK, nil, 1, ""},
		{"wrong password", "alice", "alice-pw!", nil, ResultBadPassword, nil, 1, "192.0.2.7 alice"},
		{"empty password", "alice", "", nil, ResultBadPassword, nil, 1, "192.0.2.7 alice"},
		{"unknown principal: dummy KDF", "bob", "alice-pw", nil, ResultUnknown, nil, 1, "192.0.2.7 "},
		{"not a principal id: dummy KDF, no lookup", "bob smith", "x", nil, ResultUnknown, nil, 1, "192.0.2.7 "},
		{"disabled: dummy KDF", "alice", "alice-pw", func(f *fakePrincipals) {
			p := f.m["alice"]
			p.DisabledAt = &time.Time{}
			f.m["alice"] = p
		}, ResultDisabled, nil, 1, "192.0.2.7 "},
		{"no password: dummy KDF", "alice", "", func(f *fakePrincipals) {
			p := f.m["alice"]
			p.PasswordHash = ""
			f.m["alice"] = p
		}, ResultBadPassword, nil, 1, "192.0.2.7 alice"},
		{"store error", "alice", "alice-pw", func(f *fakePrincipals) { f.err = storeDown }, ResultStoreError, storeDown, 0, ""},
		{"unreadable stored hash", "alice", "alice-pw", func(f *fakePrincipals) {
			p := f.m["alice"]
			p.PasswordHash = "$argon2id$v=19$m=0"
			f.m["alice"] = p
		}, ResultStoreError, ErrMalformedHash, 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, nil)
			if tc.edit != nil {
				tc.edit(env.ps)
			}
			id, res, err := env.verify(basicCreds(tc.user, tc.pw))
			if res != tc.want || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Errorf("Verify(%s:%s) = %v, %v; want %v, %v", tc.user, tc.pw, res, err, tc.want, tc.wantErr)
			}
			if got := env.a.KDFRuns(); got != tc.wantKDF {
				t.Errorf("KDFRuns() = %d, want %d", got, tc.wantKDF)
			}
			if id.Method != MethodBasic {
				t.Errorf("Identity.Method = %v, want basic", id.Method)
			}
			var wantFailed []string
			if tc.wantFail != "" {
				wantFailed = []string{tc.wantFail}
			}
			if !slicesEqual(env.tries.failed, wantFailed) {
				t.Errorf("Failed calls = %q, want %q", env.tries.failed, wantFailed)
			}
			if tc.want != ResultOK {
				if id.Entry != nil {
					t.Errorf("Identity.Entry = %+v on %v, want nil", id.Entry, res)
				}
				return
			}
			e := id.Entry
			if e == nil || e.Principal.ID != "alice" || id.KeyID() != "" || id.ScopesHeader() != "read,write" ||
				len(id.PrincipalRates()) != 1 || e.Principal.PasswordHash != "" {
				t.Errorf("Identity = %+v, Entry %+v; want alice, no key, scopes read,write, one rate, no password hash", id, e)
			}
		})
	}
}

func slicesEqual(a, b []string) bool {
	return strings.Join(a, "|") == strings.Join(b, "|") && len(a) == len(b)
}

func TestVerifyKDFBusy(t *testing.T) {
	for _, user := range []string{"alice", "bob"} { // known and unknown: the same answer
		t.Run(user, func(t *testing.T) {
			env := newTestEnv(t, func(o *Options) { o.MaxConcurrentKDF = 1 })
			env.a.kdf <- struct{}{} // one check running
			_, res, err := env.verify(basicCreds(user, "alice-pw"))
			if res != ResultStoreError || !errors.Is(err, ErrKDFBusy) {
				t.Errorf("Verify with every KDF slot taken = %v, %v; want store_error, ErrKDFBusy", res, err)
			}
			if n := env.a.KDFRuns(); n != 0 {
				t.Errorf("KDFRuns() = %d, want 0", n)
			}
			if len(env.tries.failed) != 0 {
				t.Errorf("Failed calls = %q; a busy check is no failed attempt", env.tries.failed)
			}
			<-env.a.kdf
			if _, res, _ := env.verify(basicCreds("alice", "alice-pw")); res != ResultOK {
				t.Errorf("Verify after the slot is free = %v, want ok", res)
			}
		})
	}
}

func TestVerifyKDFDefaultSlots(t *testing.T) {
	env := newTestEnv(t, nil)
	if got := cap(env.a.kdf); got < 2 || got%2 != 0 {
		t.Errorf("default KDF slots = %d, want twice the CPUs", got)
	}
}

func TestBasicCache(t *testing.T) {
	env := newTestEnv(t, func(o *Options) { o.BasicCacheTTL = time.Minute })
	check := func(step, user, pw string, want Result, wantKDF uint64) {
		t.Helper()
		if _, res, err := env.verify(basicCreds(user, pw)); res != want || err != nil {
			t.Errorf("%s: Verify(%s:%s) = %v, %v; want %v", step, user, pw, res, err, want)
		}
		if got := env.a.KDFRuns(); got != wantKDF {
			t.Errorf("%s: KDFRuns() = %d, want %d", step, got, wantKDF)
		}
	}
	check("first", "alice", "alice-pw", ResultOK, 1)
	id1, _, _ := env.verify(basicCreds("alice", "alice-pw"))
	check("cached", "alice", "alice-pw", ResultOK, 1)
	if env.ps.calls != 1 {
		t.Errorf("principal lookups = %d, want 1 (a cached check asks no store)", env.ps.calls)
	}
	id2, _, _ := env.verify(basicCreds("alice", "alice-pw"))
	if id1.Entry != id2.Entry {
		t.Errorf("cached checks return different Entries; want the cached one")
	}
	check("wrong password is not cached", "alice", "alice-pw2", ResultBadPassword, 2)
	check("wrong password again", "alice", "alice-pw2", ResultBadPassword, 3)

	env.now = env.now.Add(59 * time.Second)
	check("within the TTL", "alice", "alice-pw", ResultOK, 3)
	env.now = env.now.Add(time.Second)
	check("TTL over", "alice", "alice-pw", ResultOK, 4)

	env.a.Evict(keystore.Change{PrincipalID: "alice", KeyID: "key-1"})
	check("a key change keeps it", "alice", "alice-pw", ResultOK, 4)
	env.a.Evict(keystore.Change{PrincipalID: "bob"})
	check("another principal's change keeps it", "alice", "alice-pw", ResultOK, 4)
	env.a.Evict(keystore.Change{PrincipalID: "alice"})
	check("evicted", "alice", "alice-pw", ResultOK, 5)
	env.a.Flush()
	check("flushed", "alice", "alice-pw", ResultOK, 6)
}

func TestBasicCacheKeyedHash(t *testing.T) {
	env := newTestEnv(t, nil)
	if _, res, _ := env.verify(basicCreds("alice", "alice-pw")); res != ResultOK {
		t.Fatalf("Verify = %v, want ok", res)
	}
	for h := range env.a.basic.m {
		if strings.Contains(string(h[:]), "alice-pw") {
			t.Errorf("basic cache key holds the password")
		}
	}
	// id and password are joined with ':', so moving the boundary changes the key.
	if env.a.basic.key("ab", "c") == env.a.basic.key("a", "bc") {
		t.Errorf("key(ab, c) == key(a, bc)")
	}
	other := newBasicCache(time.Minute, 10)
	if other.key("alice", "alice-pw") == env.a.basic.key("alice", "alice-pw") {
		t.Errorf("two caches name one check alike: the secret is not random")
	}
}

func TestBasicCacheBounded(t *testing.T) {
	env := newTestEnv(t, func(o *Options) { o.BasicCacheMax = 2 })
	for _, id := range []string{"p1", "p2", "p3"} {
		env.ps.set(keystore.Principal{ID: id, PasswordHash: alicePHC()})
		if _, res, _ := env.verify(basicCreds(id, "alice-pw")); res != ResultOK {
			t.Fatalf("Verify(%s) = %v, want ok", id, res)
		}
	}
	if n := len(env.a.basic.m); n != 2 {
		t.Errorf("cached checks = %d, want 2 (the bound)", n)
	}
}

func TestPasswordChangeEvicts(t *testing.T) {
	env := newTestEnv(t, nil)
	if _, res, _ := env.verify(basicCreds("alice", "alice-pw")); res != ResultOK {
		t.Fatalf("Verify(old) = %v, want ok", res)
	}
	newPHC, err := HashPassword("new-pw")
	if err != nil {
		t.Fatal(err)
	}
	p := env.ps.m["alice"]
	p.PasswordHash = newPHC
	env.ps.set(p)
	env.a.Evict(keystore.Change{PrincipalID: "alice"})
	if _, res, _ := env.verify(basicCreds("alice", "alice-pw")); res != ResultBadPassword {
		t.Errorf("Verify(old password) after the change = %v, want bad_password", res)
	}
	if _, res, _ := env.verify(basicCreds("alice", "new-pw")); res != ResultOK {
		t.Errorf("Verify(new password) after the change = %v, want ok", res)
	}
}

// A change that arrives while a check of the old password runs must not leave that
// check cached.
func TestEvictDuringCheckNotCached(t *testing.T) {
	env := newTestEnv(t, nil)
	env.ps.during = func() { env.a.Evict(keystore.Change{PrincipalID: "alice"}) }
	if _, res, _ := env.verify(basicCreds("alice", "alice-pw")); res != ResultOK {
		t.Fatalf("Verify = %v, want ok (the password matched what was read)", res)
	}
	env.ps.during = nil
	env.verify(basicCreds("alice", "alice-pw"))
	if got := env.a.KDFRuns(); got != 2 {
		t.Errorf("KDFRuns() = %d, want 2: a check overtaken by a change must not be cached", got)
	}
}

func TestBlockedPassword(t *testing.T) {
	env := newTestEnv(t, nil)
	env.tries.blocked = true
	id, res, err := env.verify(basicCreds("alice", "alice-pw"))
	if res != ResultBlocked || err != nil || id.RetryAfter != 42*time.Second {
		t.Errorf("Verify when blocked = %v, %v, RetryAfter %v; want blocked, nil, the limiter's 42s", res, err, id.RetryAfter)
	}
	if env.a.KDFRuns() != 0 || env.ps.calls != 0 {
		t.Errorf("KDF runs %d, principal lookups %d; want 0, 0 for a blocked caller", env.a.KDFRuns(), env.ps.calls)
	}
	if len(env.tries.failed) != 0 {
		t.Errorf("Failed calls = %q, want none for a blocked caller", env.tries.failed)
	}
	if !slicesEqual(env.tries.asked, []string{"alice"}) {
		t.Errorf("Blocked asked for %q, want [alice]", env.tries.asked)
	}

	// A check already in the cache is never held back.
	env.tries.blocked = false
	env.verify(basicCreds("alice", "alice-pw"))
	env.tries.blocked = true
	env.tries.asked = nil
	if _, res, _ := env.verify(basicCreds("alice", "alice-pw")); res != ResultOK {
		t.Errorf("Verify of a cached check when blocked = %v, want ok", res)
	}
	if len(env.tries.asked) != 0 || env.a.KDFRuns() != 1 {
		t.Errorf("Blocked asked %q, KDF runs %d; want no question and 1 run", env.tries.asked, env.a.KDFRuns())
	}
	if _, res, _ := env.verify(basicCreds("alice", "other")); res != ResultBlocked {
		t.Errorf("Verify of an uncached password when blocked = %v, want blocked", res)
	}
}

func TestBlockedKey(t *testing.T) {
	h := testHasher.Hash(goodKey)
	for _, tc := range []struct {
		name        string
		cached      bool
		c           *Credentials
		want        Result
		wantLookups int
	}{
		{"uncached key", false, &Credentials{Carrier: CarrierBearer, Key: goodKey}, ResultBlocked, 0},
		{"cached key", true, &Credentials{Carrier: CarrierBearer, Key: goodKey}, ResultOK, 1},
		{"cached key as Basic username", true, basicCreds(goodKey, "anything"), ResultOK, 1},
		{"uncached key as Basic username", false, basicCreds(goodKey, ""), ResultBlocked, 0},
		// Malformed keys need no lookup: they stay 401 and are counted.
		{"malformed key", false, &Credentials{Carrier: CarrierBearer, Key: "kg_short"}, ResultMalformed, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, nil)
			env.tries.blocked = true
			env.keys.cached[h] = tc.cached
			id, res, _ := env.verify(tc.c)
			if res != tc.want {
				t.Errorf("Verify = %v, want %v", res, tc.want)
			}
			if env.keys.lookups != tc.wantLookups {
				t.Errorf("key lookups = %d, want %d", env.keys.lookups, tc.wantLookups)
			}
			if res == ResultOK && id.KeyID() != "key-1" {
				t.Errorf("KeyID() = %q, want key-1", id.KeyID())
			}
			if res == ResultBlocked && id.RetryAfter != 42*time.Second {
				t.Errorf("RetryAfter = %v, want the limiter's 42s", id.RetryAfter)
			}
			if env.a.KDFRuns() != 0 {
				t.Errorf("KDFRuns() = %d, want 0", env.a.KDFRuns())
			}
		})
	}
}

func TestFailedAttemptsKeys(t *testing.T) {
	storeDown := errors.New("down")
	for _, tc := range []struct {
		name string
		c    *Credentials
		mode Mode
		edit func(*Entry)
		want Result
		fail bool
	}{
		{"ok", &Credentials{Carrier: CarrierHeader, Key: goodKey}, ModeRequired, nil, ResultOK, false},
		{"missing", &Credentials{}, ModeRequired, nil, ResultMissing, false},
		{"anonymous", &Credentials{}, ModeOptional, nil, ResultOK, false},
		{"malformed carrier", &Credentials{Carrier: CarrierBearer, Malformed: true}, ModeRequired, nil, ResultMalformed, true},
		{"bad checksum", &Credentials{Carrier: CarrierBearer, Key: badChecksum(goodKey)}, ModeRequired, nil, ResultMalformed, true},
		{"unknown", &Credentials{Carrier: CarrierBearer, Key: otherKey}, ModeRequired, nil, ResultUnknown, true},
		{"revoked", &Credentials{Carrier: CarrierBearer, Key: goodKey}, ModeRequired, func(e *Entry) { e.Key.RevokedAt = &time.Time{} }, ResultRevoked, true},
		{"expired", &Credentials{Carrier: CarrierBearer, Key: goodKey}, ModeRequired, func(e *Entry) { e.Key.ExpiresAt = &time.Time{} }, ResultExpired, true},
		{"disabled", &Credentials{Carrier: CarrierBearer, Key: goodKey}, ModeRequired, func(e *Entry) { e.Principal.DisabledAt = &time.Time{} }, ResultDisabled, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, nil)
			if tc.edit != nil {
				tc.edit(env.keys.m[testHasher.Hash(goodKey)])
			}
			_, res, _ := env.a.Verify(context.Background(), tc.c, tc.mode, testIP)
			if res != tc.want {
				t.Errorf("Verify = %v, want %v", res, tc.want)
			}
			var want []string
			if tc.fail {
				want = []string{"192.0.2.7 "}
			}
			if !slicesEqual(env.tries.failed, want) {
				t.Errorf("Failed calls = %q, want %q", env.tries.failed, want)
			}
		})
	}
	t.Run("store error", func(t *testing.T) {
		env := newTestEnv(t, func(o *Options) { o.Keys = errKeys{storeDown} })
		_, res, err := env.verify(&Credentials{Carrier: CarrierBearer, Key: goodKey})
		if res != ResultStoreError || err != storeDown || len(env.tries.failed) != 0 {
			t.Errorf("Verify = %v, %v, Failed %q; want store_error, the error, no failure", res, err, env.tries.failed)
		}
	})
}

// badChecksum returns key with its last character changed.
func badChecksum(key string) string {
	last := byte('x')
	if key[len(key)-1] == last {
		last = 'y'
	}
	return key[:len(key)-1] + string(last)
}

// Entry shortens the test table above.
type Entry = keystore.Entry

type errKeys struct{ err error }

func (e errKeys) Lookup(context.Context, keystore.Hash) (*keystore.Entry, error) { return nil, e.err }
func (errKeys) Peek(keystore.Hash) bool                                          { return false }
func (errKeys) Fresh(keystore.Hash) *keystore.Entry                              { return nil }

func TestBasicDisambiguation(t *testing.T) {
	const legacyKey = "LEGACY0123456789abcdef"
	for _, tc := range []struct {
		name        string
		legacy      bool
		user, pw    string
		want        Result
		wantMethod  Method
		wantKDF     uint64
		wantLookups int // principal lookups
	}{
		{"prefixed username is a key, password ignored", false, goodKey, "alice-pw", ResultOK, MethodKey, 0, 0},
		{"prefixed but malformed: key path only", false, "kg_alice", "alice-pw", ResultMalformed, MethodKey, 0, 0},
		{"legacy off: a legacy key is an unknown principal", false, legacyKey, "", ResultUnknown, MethodBasic, 1, 1},
		{"legacy on: a legacy key", true, legacyKey, "whatever", ResultOK, MethodKey, 0, 1},
		{"legacy on: a principal wins", true, "alice", "alice-pw", ResultOK, MethodBasic, 1, 1},
		{"legacy on: a principal's wrong password", true, "alice", "nope", ResultBadPassword, MethodBasic, 1, 1},
		{"legacy on: neither costs a KDF run", true, "nobody", "pw", ResultUnknown, MethodKey, 1, 1},
		{"legacy on: not an id, not a key", true, "no body", "pw", ResultUnknown, MethodKey, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, func(o *Options) { o.AcceptLegacy = tc.legacy })
			env.keys.m[testHasher.Hash(legacyKey)] = &keystore.Entry{
				Key: keystore.Key{ID: "key-legacy", Legacy: true}, Principal: keystore.Principal{ID: "alice"}}
			id, res, _ := env.verify(basicCreds(tc.user, tc.pw))
			if res != tc.want || id.Method != tc.wantMethod {
				t.Errorf("Verify(%s:%s) = %v, method %v; want %v, %v", tc.user, tc.pw, res, id.Method, tc.want, tc.wantMethod)
			}
			if env.a.KDFRuns() != tc.wantKDF || env.ps.calls != tc.wantLookups {
				t.Errorf("KDF runs %d, principal lookups %d; want %d, %d", env.a.KDFRuns(), env.ps.calls, tc.wantKDF, tc.wantLookups)
			}
		})
	}
}

// With legacy keys on, a username may be a key: it reaches the limiter as a principal
// name only once the store knows it as one, and a cached legacy key is not held back.
func TestBlockedLegacy(t *testing.T) {
	const legacyKey = "LEGACY0123456789abcdef"
	env := newTestEnv(t, func(o *Options) { o.AcceptLegacy = true })
	h := testHasher.Hash(legacyKey)
	env.keys.m[h] = &keystore.Entry{Key: keystore.Key{ID: "key-legacy"}, Principal: keystore.Principal{ID: "alice"}}
	if _, res, _ := env.verify(basicCreds(legacyKey, "")); res != ResultOK {
		t.Fatalf("Verify(legacy key) = %v, want ok", res)
	}
	if !slicesEqual(env.tries.asked, []string{""}) {
		t.Errorf("Blocked asked for %q, want only the IP (principal \"\")", env.tries.asked)
	}
	env.tries.asked = nil
	if _, res, _ := env.verify(basicCreds("alice", "alice-pw")); res != ResultOK {
		t.Fatalf("Verify(alice) = %v, want ok", res)
	}
	if !slicesEqual(env.tries.asked, []string{"", "alice"}) {
		t.Errorf("Blocked asked for %q, want the IP, then alice once known", env.tries.asked)
	}

	env.tries.blocked = true
	if id, res, _ := env.verify(basicCreds(legacyKey, "")); res != ResultBlocked || id.RetryAfter != 42*time.Second {
		t.Errorf("Verify(uncached legacy key) when blocked = %v, RetryAfter %v; want blocked, 42s", res, id.RetryAfter)
	}
	env.keys.cached[h] = true
	if id, res, _ := env.verify(basicCreds(legacyKey, "")); res != ResultOK || id.KeyID() != "key-legacy" {
		t.Errorf("Verify(cached legacy key) when blocked = %v, %q; want ok, key-legacy", res, id.KeyID())
	}
}

func TestPasswordRehash(t *testing.T) {
	bc, err := bcrypt.GenerateFromPassword([]byte("old-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	type call struct{ id, old, new string }
	got := make(chan call, 1)
	env := newTestEnv(t, func(o *Options) {
		o.RehashPassword = func(id, old, new string) { got <- call{id, old, new} }
	})
	env.ps.set(keystore.Principal{ID: "carol", PasswordHash: string(bc)})
	if _, res, _ := env.verify(basicCreds("carol", "old-pw")); res != ResultOK {
		t.Fatalf("Verify(bcrypt) = %v, want ok", res)
	}
	// A current argon2id hash queues nothing.
	env.verify(basicCreds("alice", "alice-pw"))
	if n := len(env.a.rehashQ); n != 1 {
		t.Fatalf("queued rehashes = %d, want 1 (bcrypt only)", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go env.a.RunRehash(ctx)
	select {
	case c := <-got:
		if c.id != "carol" || c.old != string(bc) {
			t.Errorf("RehashPassword(%q, %q, ...), want carol and the bcrypt hash", c.id, c.old)
		}
		if ok, rehash, err := VerifyPassword(c.new, "old-pw"); !ok || rehash || err != nil {
			t.Errorf("VerifyPassword(new hash) = %v, %v, %v; want true, false, nil", ok, rehash, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RehashPassword not called")
	}
}

func TestRehashQueueNeverBlocks(t *testing.T) {
	bc, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	env := newTestEnv(t, func(o *Options) {
		o.RehashPassword = func(string, string, string) {}
		o.BasicCacheTTL = -1 // every request checks
	})
	env.ps.set(keystore.Principal{ID: "carol", PasswordHash: string(bc)})
	for range cap(env.a.rehashQ) + 3 { // nobody drains the queue
		if _, res, _ := env.verify(basicCreds("carol", "pw")); res != ResultOK {
			t.Fatalf("Verify = %v, want ok", res)
		}
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	env := newTestEnv(t, func(o *Options) { o.Registerer = reg })
	env.verify(basicCreds("bob", "x"))
	env.tries.blocked = true
	env.verify(basicCreds("bob", "x"))
	mfs, err := reg.Gather() // the pedantic registry checks each collector's consistency
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += " " + l.GetName() + "=" + l.GetValue()
			}
			got[name] = m.GetCounter().GetValue()
		}
	}
	for name, want := range map[string]float64{
		"keygate_auth_kdf_total":                                 1,
		"keygate_auth_total method=basic result=unknown":         1,
		"keygate_auth_total method=basic result=blocked":         1,
		"keygate_auth_total method=basic result=bad_password":    0,
		"keygate_auth_total method=anonymous result=store_error": 0,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
	if got := ResultBlocked.String(); got != "blocked" {
		t.Errorf("ResultBlocked.String() = %q, want blocked", got)
	}
}

func TestLegacyKeyCachedOrStoreDown(t *testing.T) {
	const legacyKey = "LEGACY0123456789abcdef"
	storeDown := errors.New("store down")
	for _, tc := range []struct {
		name        string
		cached      bool
		storeErr    error
		user        string
		want        Result
		wantErr     error
		wantLookups int // principal lookups
	}{
		{"cached legacy key asks no store", true, nil, legacyKey, ResultOK, nil, 0},
		{"store down, key still known", false, storeDown, legacyKey, ResultOK, nil, 1},
		{"store down, key unknown", false, storeDown, "nobody", ResultStoreError, storeDown, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, func(o *Options) { o.AcceptLegacy = true })
			h := testHasher.Hash(legacyKey)
			env.keys.m[h] = &keystore.Entry{Key: keystore.Key{ID: "key-legacy"}, Principal: keystore.Principal{ID: "alice"}}
			env.keys.cached[h] = tc.cached
			env.ps.err = tc.storeErr
			_, res, err := env.verify(basicCreds(tc.user, "pw"))
			if res != tc.want || err != tc.wantErr {
				t.Errorf("Verify = %v, %v; want %v, %v", res, err, tc.want, tc.wantErr)
			}
			if env.ps.calls != tc.wantLookups || env.a.KDFRuns() != 0 {
				t.Errorf("principal lookups %d, KDF runs %d; want %d, 0", env.ps.calls, env.a.KDFRuns(), tc.wantLookups)
			}
		})
	}
}

// Only a value that can be a principal id reaches the limiter as one.
func TestBlockedAsksOnlyPrincipalIDs(t *testing.T) {
	env := newTestEnv(t, nil)
	env.verify(basicCreds("not an id", "pw"))
	env.verify(basicCreds("bob", "pw"))
	if !slicesEqual(env.tries.asked, []string{"", "bob"}) {
		t.Errorf("Blocked asked for %q, want [\"\" bob]", env.tries.asked)
	}
}
