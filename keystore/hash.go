package keystore

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"sync"
)

// Hash is HMAC-SHA256(secret, key): what the store keeps instead of a key.
type Hash [sha256.Size]byte

// String returns the hash in hex. Never log it: it identifies a key.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Hasher hashes keys with the current secret and the previous ones. It is safe for
// concurrent use and does not allocate per call.
type Hasher struct {
	pools []*sync.Pool // of *macState; [0]: current secret, then previous secrets in order
}

// macState is one pooled HMAC with the buffers that keep Sum from allocating.
type macState struct {
	mac hash.Hash
	buf []byte // the key, copied: hash.Hash.Write takes a []byte
	sum Hash
}

// NewHasher returns a Hasher for the current secret and the previous ones.
func NewHasher(current string, previous ...string) *Hasher {
	h := &Hasher{}
	for _, s := range append([]string{current}, previous...) {
		secret := []byte(s)
		h.pools = append(h.pools, &sync.Pool{New: func() any {
			return &macState{mac: hmac.New(sha256.New, secret)}
		}})
	}
	return h
}

// Secrets returns how many secrets the Hasher holds (1 + previous).
func (h *Hasher) Secrets() int { return len(h.pools) }

// Sum returns the hash of key under secret i (0: current).
func (h *Hasher) Sum(i int, key string) Hash {
	s := h.pools[i].Get().(*macState)
	s.mac.Reset()
	s.buf = append(s.buf[:0], key...)
	s.mac.Write(s.buf)
	clear(s.buf) // no plaintext key left behind in the pool
	s.mac.Sum(s.sum[:0])
	out := s.sum
	h.pools[i].Put(s)
	return out
}

// Hash returns the hash of key under the current secret.
func (h *Hasher) Hash(key string) Hash { return h.Sum(0, key) }
