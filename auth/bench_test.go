package auth

import (
	"context"
	"testing"

	"github.com/keygate/keygate/keystore"
)

// The request path's cost of one authentication, against in-memory fakes of the key
// cache and the principal store (the real keystore.Cache adds its own RLock and map
// lookup, measured in keystore). A failed-attempt limiter that blocks no one is wired,
// as in production, so the cached paths include their Peek/cache checks.
// Recorded in docs/benchmarks.md:
//
//	go test -run '^$' -bench . -benchmem ./auth/

// BenchmarkVerifyCachedKey: parse (prefix, length, checksum), HMAC, cache hit.
func BenchmarkVerifyCachedKey(b *testing.B) {
	env := newTestEnv(b, nil)
	env.keys.cached[testHasher.Hash(goodKey)] = true
	c := &Credentials{Carrier: CarrierBearer, Key: goodKey}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, res, _ := env.a.Verify(ctx, c, ModeRequired, testIP); res != ResultOK {
			b.Fatalf("Verify = %v, want ok", res)
		}
	}
}

// BenchmarkVerifyCachedBasic: id:password found in the basic cache (keyed HMAC, map hit).
func BenchmarkVerifyCachedBasic(b *testing.B) {
	env := newTestEnv(b, nil)
	c := basicCreds("alice", "alice-pw")
	ctx := context.Background()
	if _, res, _ := env.a.Verify(ctx, c, ModeRequired, testIP); res != ResultOK {
		b.Fatalf("Verify = %v, want ok", res)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, res, _ := env.a.Verify(ctx, c, ModeRequired, testIP); res != ResultOK {
			b.Fatalf("Verify = %v, want ok", res)
		}
	}
	if env.a.KDFRuns() != 1 {
		b.Fatalf("KDFRuns() = %d, want 1: the cache was missed", env.a.KDFRuns())
	}
}

// BenchmarkVerifyUncachedBasic: one argon2id check (m=19 MiB, t=2, p=1) per request.
func BenchmarkVerifyUncachedBasic(b *testing.B) {
	env := newTestEnv(b, func(o *Options) { o.BasicCacheTTL = -1 })
	c := basicCreds("alice", "alice-pw")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, res, _ := env.a.Verify(ctx, c, ModeRequired, testIP); res != ResultOK {
			b.Fatalf("Verify = %v, want ok", res)
		}
	}
}

// BenchmarkVerifyUnknownPrincipal: the dummy check an unknown principal costs.
func BenchmarkVerifyUnknownPrincipal(b *testing.B) {
	env := newTestEnv(b, nil)
	c := basicCreds("nobody", "pw")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, res, _ := env.a.Verify(ctx, c, ModeRequired, testIP); res != ResultUnknown {
			b.Fatalf("Verify = %v, want unknown", res)
		}
	}
}

func BenchmarkHashPassword(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := HashPassword("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

// oneKeyStore is a keystore.Store holding one key; only LookupKey is used.
type oneKeyStore struct {
	keystore.Store
	h keystore.Hash
	e keystore.Entry
}

func (s *oneKeyStore) LookupKey(_ context.Context, h keystore.Hash) (keystore.Entry, error) {
	if h != s.h {
		return keystore.Entry{}, keystore.ErrNotFound
	}
	return s.e, nil
}

// BenchmarkVerifyCachedKeyRealCache: the whole key step of a request as served — Bearer
// key, prefix, length, checksum, HMAC, then a hit in the real keystore.Cache (RLock, map).
func BenchmarkVerifyCachedKeyRealCache(b *testing.B) {
	st := &oneKeyStore{h: testHasher.Hash(goodKey), e: keystore.Entry{
		Key:       keystore.Key{ID: "key-1", PrincipalID: "alice", Name: "laptop"},
		Principal: keystore.Principal{ID: "alice", Scopes: []string{"read"}},
	}}
	cache := keystore.NewCache(st, keystore.CacheOptions{})
	a := NewAuthenticator(Options{Format: keystore.Format{Prefix: "kg_"}, Hasher: testHasher, Keys: cache})
	c := &Credentials{Carrier: CarrierBearer, Key: goodKey}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, res, _ := a.Verify(ctx, c, ModeRequired, testIP); res != ResultOK {
			b.Fatalf("Verify = %v, want ok", res)
		}
	}
}
