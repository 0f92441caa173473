package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// The argon2id parameters of HashPassword: OWASP's minimum configuration for argon2id
// (m=19 MiB, t=2, p=1), with a 16-byte salt and a 32-byte key. One check takes about
// 22 ms on the reference machine (BenchmarkHashPassword, docs/benchmarks.md) and holds
// 19 MiB while it runs; the gateway caps concurrent checks (Options.MaxConcurrentKDF)
// and caches successful ones (Options.BasicCacheTTL), so the cost is paid once per
// client per TTL. m=64 MiB t=1 p=2 (about 50 ms here) was rejected: it would use most of
// the 50 ms budget for an uncached check and triple the memory held per check.
const (
	argonMemory  = 19 * 1024 // KiB
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// Bounds on the parameters VerifyPassword accepts: a stored hash beyond them is
// malformed, so that one bad import cannot make each check take gigabytes or minutes.
const (
	maxArgonMemory  = 256 * 1024 // KiB
	maxArgonTime    = 10
	maxArgonThreads = 16
	minArgonSalt    = 8
	maxArgonSalt    = 64
	minArgonKey     = 16
	maxArgonKey     = 64
	// maxBcryptCost: cost 15 takes a few seconds; no sane import goes beyond.
	maxBcryptCost = 15
)

// ErrMalformedHash is returned by VerifyPassword for a stored hash that is neither a
// well-formed argon2id PHC string within bounds nor a bcrypt hash ($2a$, $2b$, $2y$).
// It never quotes the hash.
var ErrMalformedHash = errors.New("auth: malformed password hash")

var phcB64 = base64.RawStdEncoding.Strict()

// HashPassword returns the argon2id PHC string of pw with the parameters above and a
// fresh random salt: $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash> (unpadded standard
// Base64). It errors only when the system's random source fails.
func HashPassword(pw string) (string, error) {
	var salt [argonSaltLen]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(pw), salt[:], argonTime, argonMemory, argonThreads, argonKeyLen)
	return formatPHC(argonMemory, argonTime, argonThreads, salt[:], key), nil
}

func formatPHC(m, t uint32, p uint8, salt, key []byte) string {
	var sb strings.Builder
	sb.Grow(40 + phcB64.EncodedLen(len(salt)) + phcB64.EncodedLen(len(key)))
	sb.WriteString("$argon2id$v=19$m=")
	sb.WriteString(strconv.FormatUint(uint64(m), 10))
	sb.WriteString(",t=")
	sb.WriteString(strconv.FormatUint(uint64(t), 10))
	sb.WriteString(",p=")
	sb.WriteString(strconv.FormatUint(uint64(p), 10))
	sb.WriteByte('$')
	sb.WriteString(phcB64.EncodeToString(salt))
	sb.WriteByte('$')
	sb.WriteString(phcB64.EncodeToString(key))
	return sb.String()
}

// VerifyPassword reports whether pw matches phc, a stored hash: an argon2id PHC string
// of any parameters within bounds (m ≤ 256 MiB, t ≤ 10, p ≤ 16), or a bcrypt hash with
// prefix $2a$, $2b$ or $2y$ (bcrypt reads only the first 72 bytes of a password, as the
// system that made the hash did). needsRehash is true after a match when phc is not an
// argon2id hash with HashPassword's parameters, i.e. for every bcrypt hash. err is
// ErrMalformedHash when phc cannot be read; then ok is false. The comparison is
// constant-time. VerifyPassword runs the KDF once for a readable hash and never panics.
func VerifyPassword(phc, pw string) (ok, needsRehash bool, err error) {
	switch {
	case strings.HasPrefix(phc, "$argon2id$"):
		a, err := parseArgon2id(phc)
		if err != nil {
			return false, false, err
		}
		got := argon2.IDKey([]byte(pw), a.salt, a.t, a.m, a.p, uint32(len(a.key)))
		if subtle.ConstantTimeCompare(got, a.key) != 1 {
			return false, false, nil
		}
		return true, !a.current(), nil
	case strings.HasPrefix(phc, "$2a$"), strings.HasPrefix(phc, "$2b$"), strings.HasPrefix(phc, "$2y$"):
		cost, err := bcrypt.Cost([]byte(phc))
		if err != nil || cost > maxBcryptCost {
			return false, false, ErrMalformedHash
		}
		switch err := bcrypt.CompareHashAndPassword([]byte(phc), []byte(pw)); {
		case err == nil:
			return true, true, nil
		case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
			return false, false, nil
		default:
			return false, false, ErrMalformedHash
		}
	}
	return false, false, ErrMalformedHash
}

// CheckPasswordHash reports whether phc is a password hash keygate can verify: an argon2id
// PHC string within VerifyPassword's bounds, or a bcrypt hash ($2a$, $2b$, $2y$). It is how
// an existing system's hashes are imported: a bcrypt hash is re-hashed to argon2id after the
// first successful login. Its error never quotes the hash.
func CheckPasswordHash(phc string) error {
	switch {
	case strings.HasPrefix(phc, "$argon2id$"):
		_, err := parseArgon2id(phc)
		return err
	case strings.HasPrefix(phc, "$2a$"), strings.HasPrefix(phc, "$2b$"), strings.HasPrefix(phc, "$2y$"):
		if cost, err := bcrypt.Cost([]byte(phc)); err != nil || cost > maxBcryptCost || len(phc) != 60 {
			return ErrMalformedHash
		}
		return nil
	}
	return ErrMalformedHash
}

// argon2idHash is a parsed argon2id PHC string.
type argon2idHash struct {
	m, t      uint32
	p         uint8
	salt, key []byte
}

func (a *argon2idHash) current() bool {
	return a.m == argonMemory && a.t == argonTime && a.p == argonThreads &&
		len(a.salt) == argonSaltLen && len(a.key) == argonKeyLen
}

// parseArgon2id reads $argon2id$v=19$m=M,t=T,p=P$salt$key, strictly: version 19 only,
// the three parameters in this order and nothing else, canonical unpadded Base64.
func parseArgon2id(s string) (argon2idHash, error) {
	var a argon2idHash
	rest, ok := strings.CutPrefix(s, "$argon2id$v=19$m=")
	if !ok {
		return a, ErrMalformedHash
	}
	ms, rest, ok1 := strings.Cut(rest, ",t=")
	ts, rest, ok2 := strings.Cut(rest, ",p=")
	ps, rest, ok3 := strings.Cut(rest, "$")
	salt, key, ok4 := strings.Cut(rest, "$")
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return a, ErrMalformedHash
	}
	m, ok1 := parseBounded(ms, maxArgonMemory)
	t, ok2 := parseBounded(ts, maxArgonTime)
	p, ok3 := parseBounded(ps, maxArgonThreads)
	if !ok1 || !ok2 || !ok3 || m < 8*p { // RFC 9106: m ≥ 8p KiB
		return a, ErrMalformedHash
	}
	var err error
	if a.salt, err = decodeBounded(salt, minArgonSalt, maxArgonSalt); err != nil {
		return a, err
	}
	if a.key, err = decodeBounded(key, minArgonKey, maxArgonKey); err != nil {
		return a, err
	}
	a.m, a.t, a.p = m, t, uint8(p)
	return a, nil
}

// parseBounded reads a decimal in [1, max] without sign or leading zero.
func parseBounded(s string, max uint32) (uint32, bool) {
	if s == "" || len(s) > 10 || s[0] == '0' {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if n > uint64(max) {
		return 0, false
	}
	return uint32(n), true
}

func decodeBounded(s string, min, max int) ([]byte, error) {
	// The decoder skips CR and LF; a stored hash with them is not canonical.
	if len(s) > phcB64.EncodedLen(max) || strings.ContainsAny(s, "\r\n") {
		return nil, ErrMalformedHash
	}
	b, err := phcB64.DecodeString(s)
	if err != nil || len(b) < min {
		return nil, ErrMalformedHash
	}
	return b, nil
}

// dummyHash is an argon2id hash with HashPassword's parameters of a random password
// nobody knows. It is verified in place of a principal's hash when the principal is
// unknown, disabled or has no password, so that such a check costs what a wrong password
// costs.
const dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$nYt9IbTDaMXODUgWrPL5xw$O2DwjZrmAkW0Mn51TIYGJlpYml8+8luBK+OY+gCNMU8"
