package keystore

import (
	"crypto/rand"
	"errors"
	"hash/crc32"
	"strings"
)

const (
	bodyLen     = 32
	checksumLen = 6
	// shownLen is how many characters after the prefix a key's displayed Prefix keeps.
	shownLen = 8
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// ErrMalformed is returned by ParseKey for a value with the prefix but a bad length,
// alphabet or checksum.
var ErrMalformed = errors.New("keystore: malformed key")

// Format is a key format: the configured prefix.
type Format struct {
	Prefix string
}

// Generate returns a new random key: prefix, 32 base62 characters, 6 base62 characters of
// the CRC32 of prefix and body.
func (f Format) Generate() (string, error) {
	b := make([]byte, len(f.Prefix)+bodyLen+checksumLen)
	copy(b, f.Prefix)
	body := b[len(f.Prefix) : len(f.Prefix)+bodyLen]
	// Rejection sampling keeps every character uniform over the 62.
	var buf [64]byte
	for i := 0; i < bodyLen; {
		if _, err := rand.Read(buf[:]); err != nil {
			return "", err
		}
		for _, c := range buf {
			if c < 248 && i < bodyLen { // 248 = 4*62
				body[i] = base62[c%62]
				i++
			}
		}
	}
	putChecksum(b[len(f.Prefix)+bodyLen:], crc32.ChecksumIEEE(b[:len(f.Prefix)+bodyLen]))
	return string(b), nil
}

// HasPrefix reports whether v starts with the key prefix, and so may only be a key.
func (f Format) HasPrefix(v string) bool {
	return f.Prefix != "" && strings.HasPrefix(v, f.Prefix)
}

// Check reports whether v, which has the prefix, has the right length, alphabet and
// checksum. It does no I/O and does not allocate.
func (f Format) Check(v string) error {
	if len(v) != len(f.Prefix)+bodyLen+checksumLen || !strings.HasPrefix(v, f.Prefix) {
		return ErrMalformed
	}
	rest := v[len(f.Prefix):]
	for i := 0; i < len(rest); i++ {
		if !isBase62(rest[i]) {
			return ErrMalformed
		}
	}
	var want [checksumLen]byte
	putChecksum(want[:], crc32String(v[:len(f.Prefix)+bodyLen]))
	if string(want[:]) != rest[bodyLen:] {
		return ErrMalformed
	}
	return nil
}

// Shown returns the displayed prefix of a key: the prefix and the next 8 characters for a
// key of this format; for a legacy key its first 4 characters, or "" when shorter than 16.
func (f Format) Shown(key string) string {
	if f.HasPrefix(key) && len(key) >= len(f.Prefix)+shownLen {
		return key[:len(f.Prefix)+shownLen]
	}
	if len(key) < 16 {
		return ""
	}
	return key[:4]
}

// crc32String is crc32.ChecksumIEEE(s) without converting s to a []byte, which allocates
// for any value longer than 32 bytes.
func crc32String(s string) uint32 {
	crc := ^uint32(0)
	for i := 0; i < len(s); i++ {
		crc = crc32.IEEETable[byte(crc)^s[i]] ^ crc>>8
	}
	return ^crc
}

func isBase62(c byte) bool {
	return '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z'
}

// putChecksum writes sum in base62, most significant digit first, into 6 bytes
// (62^6 > 2^32).
func putChecksum(dst []byte, sum uint32) {
	n := uint64(sum)
	for i := checksumLen - 1; i >= 0; i-- {
		dst[i] = base62[n%62]
		n /= 62
	}
}
