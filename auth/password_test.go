package auth

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

func TestHashPasswordRoundTrip(t *testing.T) {
	phc, err := HashPassword("correct horse")
	if err != nil {
		t.Fatalf("HashPassword: %v", err)
	}
	if !strings.HasPrefix(phc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("HashPassword = %q, want the $argon2id$v=19$m=19456,t=2,p=1$ prefix", phc)
	}
	a, err := parseArgon2id(phc)
	if err != nil || len(a.salt) != 16 || len(a.key) != 32 {
		t.Fatalf("parseArgon2id(HashPassword) = salt %d, key %d bytes, %v; want 16, 32, nil", len(a.salt), len(a.key), err)
	}
	if again, _ := HashPassword("correct horse"); again == phc {
		t.Errorf("two hashes of one password are equal (%q): the salt is not random", phc)
	}
	for _, tc := range []struct {
		name, pw   string
		ok, rehash bool
	}{
		{"right password", "correct horse", true, false},
		{"wrong password", "correct horse.", false, false},
		{"empty password", "", false, false},
		{"prefix of the password", "correct", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, rehash, err := VerifyPassword(phc, tc.pw)
			if ok != tc.ok || rehash != tc.rehash || err != nil {
				t.Errorf("VerifyPassword(hash, %q) = %v, %v, %v; want %v, %v, nil", tc.pw, ok, rehash, err, tc.ok, tc.rehash)
			}
		})
	}
}

// argonPHC returns an argon2id PHC string of pw with the given parameters.
func argonPHC(pw string, m, tm uint32, p uint8, saltLen, keyLen int) string {
	salt := []byte(strings.Repeat("s", saltLen))
	return formatPHC(m, tm, p, salt, argon2.IDKey([]byte(pw), salt, tm, m, p, uint32(keyLen)))
}

func TestVerifyPasswordOtherParameters(t *testing.T) {
	for _, tc := range []struct {
		name string
		phc  string
	}{
		{"less memory", argonPHC("pw", 8*1024, 2, 1, 16, 32)},
		{"one pass, two lanes", argonPHC("pw", 19*1024, 1, 2, 16, 32)},
		{"short salt", argonPHC("pw", 19*1024, 2, 1, 8, 32)},
		{"longer key", argonPHC("pw", 19*1024, 2, 1, 16, 64)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if ok, rehash, err := VerifyPassword(tc.phc, "pw"); !ok || !rehash || err != nil {
				t.Errorf("VerifyPassword(%q, right) = %v, %v, %v; want true, true, nil", tc.phc, ok, rehash, err)
			}
			if ok, rehash, err := VerifyPassword(tc.phc, "wrong"); ok || rehash || err != nil {
				t.Errorf("VerifyPassword(%q, wrong) = %v, %v, %v; want false, false, nil", tc.phc, ok, rehash, err)
			}
		})
	}
}

func TestVerifyPasswordBcrypt(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	rest := strings.TrimPrefix(string(h), "$2a$")
	for _, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
		t.Run(prefix, func(t *testing.T) {
			phc := prefix + rest
			if ok, rehash, err := VerifyPassword(phc, "s3cret"); !ok || !rehash || err != nil {
				t.Errorf("VerifyPassword(%s..., right) = %v, %v, %v; want true, true, nil", prefix, ok, rehash, err)
			}
			if ok, rehash, err := VerifyPassword(phc, "s3cret!"); ok || rehash || err != nil {
				t.Errorf("VerifyPassword(%s..., wrong) = %v, %v, %v; want false, false, nil", prefix, ok, rehash, err)
			}
		})
	}
}

func TestVerifyPasswordMalformed(t *testing.T) {
	good := argonPHC("pw", 8, 1, 1, 16, 32)
	salt, key := "c3Nzc3Nzc3Nzc3Nzc3Nzcw", good[strings.LastIndexByte(good, '$')+1:]
	bc, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	for _, tc := range []struct{ name, phc string }{
		{"empty", ""},
		{"plaintext", "pw"},
		{"argon2id only", "$argon2id$"},
		{"argon2i", "$argon2i$v=19$m=8,t=1,p=1$" + salt + "$" + key},
		{"argon2d", "$argon2d$v=19$m=8,t=1,p=1$" + salt + "$" + key},
		{"version 16", "$argon2id$v=16$m=8,t=1,p=1$" + salt + "$" + key},
		{"no version", "$argon2id$m=8,t=1,p=1$" + salt + "$" + key},
		{"params out of order", "$argon2id$v=19$t=1,m=8,p=1$" + salt + "$" + key},
		{"extra param", "$argon2id$v=19$m=8,t=1,p=1,keyid=x$" + salt + "$" + key},
		{"m zero", "$argon2id$v=19$m=0,t=1,p=1$" + salt + "$" + key},
		{"t zero", "$argon2id$v=19$m=8,t=0,p=1$" + salt + "$" + key},
		{"p zero", "$argon2id$v=19$m=8,t=1,p=0$" + salt + "$" + key},
		{"m below 8p", "$argon2id$v=19$m=15,t=1,p=2$" + salt + "$" + key},
		{"m over 256 MiB", "$argon2id$v=19$m=262145,t=1,p=1$" + salt + "$" + key},
		{"t over 10", "$argon2id$v=19$m=8,t=11,p=1$" + salt + "$" + key},
		{"p over 16", "$argon2id$v=19$m=256,t=1,p=17$" + salt + "$" + key},
		{"m overflows uint32", "$argon2id$v=19$m=4294967304,t=1,p=1$" + salt + "$" + key},
		{"m leading zero", "$argon2id$v=19$m=08,t=1,p=1$" + salt + "$" + key},
		{"m signed", "$argon2id$v=19$m=+8,t=1,p=1$" + salt + "$" + key},
		{"m negative", "$argon2id$v=19$m=-8,t=1,p=1$" + salt + "$" + key},
		{"m empty", "$argon2id$v=19$m=,t=1,p=1$" + salt + "$" + key},
		{"newline in key", "$argon2id$v=19$m=8,t=1,p=1$" + salt + "$" + key[:10] + "\n" + key[10:]},
		{"padded salt", "$argon2id$v=19$m=8,t=1,p=1$" + salt + "==$" + key},
		{"URL alphabet", "$argon2id$v=19$m=8,t=1,p=1$" + salt + "$" + strings.NewReplacer("+", "-", "/", "_").Replace(key) + "-_"},
		{"salt too short", "$argon2id$v=19$m=8,t=1,p=1$c3Nzcw$" + key},
		{"key too short", "$argon2id$v=19$m=8,t=1,p=1$" + salt + "$a2V5"},
		{"empty key", "$argon2id$v=19$m=8,t=1,p=1$" + salt + "$"},
		{"no key", "$argon2id$v=19$m=8,t=1,p=1$" + salt},
		{"extra segment", good + "$x"},
		{"key too long", "$argon2id$v=19$m=8,t=1,p=1$" + salt + "$" + strings.Repeat("A", 100)},
		{"bcrypt 2x", "$2x$" + string(bc[4:])},
		{"bcrypt 2", "$2$" + string(bc[4:])},
		{"bcrypt truncated", string(bc[:20])},
		{"bcrypt prefix only", "$2a$"},
		{"bcrypt cost 31", "$2a$31$" + string(bc[7:])},
		{"bcrypt cost 16", "$2b$16$" + string(bc[7:])},
		{"bcrypt bad salt", "$2y$04$!!!!!!!!!!!!!!!!!!!!!!" + string(bc[29:])},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, rehash, err := VerifyPassword(tc.phc, "pw")
			if ok || rehash || !errors.Is(err, ErrMalformedHash) {
				t.Errorf("VerifyPassword(%q) = %v, %v, %v; want false, false, ErrMalformedHash", tc.phc, ok, rehash, err)
			}
		})
	}
	if ok, _, err := VerifyPassword(good, "pw"); !ok || err != nil {
		t.Fatalf("the unbroken hash the cases derive from: VerifyPassword = %v, %v; want true, nil", ok, err)
	}
}

// The dummy hash must cost what a real one costs: HashPassword's parameters.
func TestDummyHashHasCurrentParameters(t *testing.T) {
	a, err := parseArgon2id(dummyHash)
	if err != nil || !a.current() {
		t.Errorf("parseArgon2id(dummyHash) = %+v, %v; want HashPassword's parameters", a, err)
	}
}

func FuzzVerifyPassword(f *testing.F) {
	f.Add(argonPHC("pw", 8, 1, 1, 16, 32), "pw")                 // valid, tiny parameters
	f.Add(argonPHC("pw", 8, 1, 1, 16, 32), "wrong")              // valid, wrong password
	f.Add("$argon2id$v=19$m=8,t=1,p=0$c2FsdHNhbHQ$a2V5a2V5", "") // p=0 panics argon2 if not refused
	f.Add("$argon2id$v=19$m=8,t=0,p=1$c2FsdHNhbHQ$a2V5a2V5", "") // t=0 panics argon2 if not refused
	f.Add("$argon2id$v=19$m=99999999999,t=1,p=1$$", "")          // overflow
	f.Add("$argon2id$v=19$m=8,t=1,p=1$$$$", "")                  // extra separators
	f.Add("$2a$04$", "pw")                                       // bcrypt prefix only
	f.Add("$2y$04$abcdefghijklmnopqrstuu5ZvqXo2cr8p1vMVMVSVZKnw.WR/Ue8S", "pw")
	f.Add("", "")
	f.Add("$argon2id$v=19$m=8,t=1,p=1$00000000000$0\r0000000000000000000000", "0") // CR inside Base64 (found by fuzzing)
	f.Fuzz(func(t *testing.T, phc, pw string) {
		// Keep each run fast: skip the KDF for heavy but valid parameters, after checking
		// that a parsed hash is canonical.
		if a, err := parseArgon2id(phc); err == nil {
			if got := formatPHC(a.m, a.t, a.p, a.salt, a.key); got != phc {
				t.Fatalf("parseArgon2id(%q) accepted a non-canonical string (reformatted %q)", phc, got)
			}
			if a.m*a.t > 4096 {
				return
			}
		}
		if strings.HasPrefix(phc, "$2") {
			if c, err := bcrypt.Cost([]byte(phc)); err == nil && c > 6 {
				return
			}
		}
		ok, rehash, err := VerifyPassword(phc, pw)
		if err != nil && (ok || rehash) {
			t.Fatalf("VerifyPassword(%q) = %v, %v, %v: an error with a match", phc, ok, rehash, err)
		}
		if !ok && rehash {
			t.Fatalf("VerifyPassword(%q) = false, true: needsRehash without a match", phc)
		}
		if err != nil && !errors.Is(err, ErrMalformedHash) {
			t.Fatalf("VerifyPassword(%q) error %v, want ErrMalformedHash", phc, err)
		}
	})
}
