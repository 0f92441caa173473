package keystore

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"runtime/debug"
	"strconv"
	"sync"
	"testing"
)

// refHMAC is the crypto/hmac reference: a fresh HMAC per call.
func refHMAC(secret, key string) Hash {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(key))
	var h Hash
	copy(h[:], m.Sum(nil))
	return h
}

func TestHasherMatchesHMAC(t *testing.T) {
	h := NewHasher("current-secret", "old-1", "old-2")
	for _, tc := range []struct {
		name, key string
	}{
		{"empty key", ""},
		{"key", "kg_Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78St"},
		{"long key", string(make([]byte, 300))},
		{"non-ASCII", "clé-héritée"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Twice: the second call reuses a pooled HMAC, which must have been reset.
			for range 2 {
				if got, want := h.Hash(tc.key), refHMAC("current-secret", tc.key); got != want {
					t.Errorf("Hash(%q) = %v, want %v", tc.key, got, want)
				}
				for i, s := range []string{"current-secret", "old-1", "old-2"} {
					if got, want := h.Sum(i, tc.key), refHMAC(s, tc.key); got != want {
						t.Errorf("Sum(%d, %q) = %v, want %v", i, tc.key, got, want)
					}
				}
			}
		})
	}
}

// TestHasherKnownVector pins the result to RFC 4231 test case 2, so that the reference
// and the Hasher cannot both be wrong the same way.
func TestHasherKnownVector(t *testing.T) {
	h := NewHasher("Jefe")
	want := "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
	if got := h.Hash("what do ya want for nothing?").String(); got != want {
		t.Errorf("Hash(RFC 4231 case 2) = %s, want %s", got, want)
	}
}

func TestHasherSecretsDiffer(t *testing.T) {
	const key = "kg_Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78St"
	a, b := NewHasher("secret-a"), NewHasher("secret-b")
	if a.Hash(key) == b.Hash(key) {
		t.Errorf("Hash(%q) is the same under two secrets, want different", key)
	}
	if a.Hash(key) == a.Hash(key+"x") {
		t.Errorf("Hash(%q) = Hash(%q), want different", key, key+"x")
	}
}

func TestHasherPrevious(t *testing.T) {
	const key = "kg_Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78St"
	h := NewHasher("new", "old", "older")
	if got, want := h.Secrets(), 3; got != want {
		t.Fatalf("Secrets() = %d, want %d", got, want)
	}
	if got, want := h.Sum(1, key), NewHasher("old").Hash(key); got != want {
		t.Errorf("Sum(1, key) = %v, want the hash under the first previous secret %v", got, want)
	}
	if got, want := h.Sum(2, key), NewHasher("older").Hash(key); got != want {
		t.Errorf("Sum(2, key) = %v, want the hash under the second previous secret %v", got, want)
	}
	if got, want := h.Sum(0, key), h.Hash(key); got != want {
		t.Errorf("Sum(0, key) = %v, want Hash(key) %v", got, want)
	}
	if got, want := NewHasher("only").Secrets(), 1; got != want {
		t.Errorf("NewHasher(one secret).Secrets() = %d, want %d", got, want)
	}
}

func TestHashString(t *testing.T) {
	var h Hash
	h[0], h[31] = 0xab, 0x01
	got := h.String()
	if want := "ab" + hex.EncodeToString(make([]byte, 30)) + "01"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// TestHasherConcurrent checks, under -race, that pooled HMACs are never shared between
// goroutines: every result must equal the reference.
func TestHasherConcurrent(t *testing.T) {
	h := NewHasher("current", "previous")
	const workers, perWorker = 8, 200
	keys := make([]string, 50)
	want := make([][2]Hash, len(keys))
	for i := range keys {
		keys[i] = "kg_key" + strconv.Itoa(i)
		want[i] = [2]Hash{refHMAC("current", keys[i]), refHMAC("previous", keys[i])}
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for j := range perWorker {
				i := (w*perWorker + j) % len(keys)
				s := j % 2
				if got := h.Sum(s, keys[i]); got != want[i][s] {
					t.Errorf("Sum(%d, %q) = %v, want %v", s, keys[i], got, want[i][s])
					return
				}
			}
		})
	}
	wg.Wait()
}

// raceEnabled reports whether the test binary was built with -race, under which
// sync.Pool drops items on purpose and allocation counts mean nothing.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

func TestHasherAllocs(t *testing.T) {
	if raceEnabled() {
		t.Skip("sync.Pool drops items under -race")
	}
	h := NewHasher("current", "previous")
	key := "kg_Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78St" // longer than 32 bytes
	for i := range h.Secrets() {
		h.Sum(i, key) // fill the pool
		if got := testing.AllocsPerRun(100, func() { _ = h.Sum(i, key) }); got != 0 {
			t.Errorf("Sum(%d, key) allocates %v times per call, want 0", i, got)
		}
	}
}

func BenchmarkHash(b *testing.B) {
	h := NewHasher("a-secret-of-reasonable-length-0123456789")
	const key = "kg_Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78St"
	b.ReportAllocs()
	for b.Loop() {
		_ = h.Hash(key)
	}
}
