package keystore

import (
	"errors"
	"hash/crc32"
	"strings"
	"testing"
)

// refChecksumOK is an independent reading of the checksum: it decodes the last 6
// characters of v as a base62 number and compares it with the CRC32 of the rest.
func refChecksumOK(v string) bool {
	if len(v) < checksumLen {
		return false
	}
	var n uint64
	for _, c := range []byte(v[len(v)-checksumLen:]) {
		d := strings.IndexByte(base62, c)
		if d < 0 {
			return false
		}
		n = n*62 + uint64(d)
	}
	return n == uint64(crc32.ChecksumIEEE([]byte(v[:len(v)-checksumLen])))
}

// withChecksum returns prefixAndBody followed by its correct checksum, so that a test
// can build a value whose only fault is elsewhere.
func withChecksum(prefixAndBody string) string {
	var sum [checksumLen]byte
	putChecksum(sum[:], crc32.ChecksumIEEE([]byte(prefixAndBody)))
	return prefixAndBody + string(sum[:])
}

func mustGenerate(t testing.TB, f Format) string {
	t.Helper()
	k, err := f.Generate()
	if err != nil {
		t.Fatalf("Generate() error = %v", err)
	}
	return k
}

func TestGenerate(t *testing.T) {
	for _, prefix := range []string{"kg_", "DC.", "sk_live_", "x"} {
		t.Run(prefix, func(t *testing.T) {
			f := Format{Prefix: prefix}
			seen := map[string]bool{}
			for range 50 {
				k := mustGenerate(t, f)
				if got, want := len(k), len(prefix)+32+6; got != want {
					t.Fatalf("len(Generate()) = %d, want %d (%q)", got, want, k)
				}
				if !strings.HasPrefix(k, prefix) {
					t.Fatalf("Generate() = %q, want prefix %q", k, prefix)
				}
				for i, c := range []byte(k[len(prefix):]) {
					if !strings.ContainsRune(base62, rune(c)) {
						t.Fatalf("Generate() = %q: byte %d (%q) is not base62", k, len(prefix)+i, c)
					}
				}
				if !refChecksumOK(k) {
					t.Fatalf("Generate() = %q: checksum does not match CRC32 of prefix+body", k)
				}
				if err := f.Check(k); err != nil {
					t.Fatalf("Check(Generate()) = %v, want nil", err)
				}
				if seen[k] {
					t.Fatalf("Generate() returned %q twice", k)
				}
				seen[k] = true
			}
		})
	}
}

// TestGenerateUniform is a coarse guard against a biased alphabet (e.g. c%62 over all
// 256 byte values, which makes the first 8 characters twice as likely): with 40 000
// characters every one of the 62 should appear about 645 times.
func TestGenerateUniform(t *testing.T) {
	f := Format{Prefix: "kg_"}
	var counts [256]int
	total := 0
	for range 1250 {
		k := mustGenerate(t, f)
		for _, c := range []byte(k[len(f.Prefix) : len(f.Prefix)+bodyLen]) {
			counts[c]++
			total++
		}
	}
	want := total / 62
	for _, c := range []byte(base62) {
		if got := counts[c]; got < want*3/4 || got > want*5/4 {
			t.Errorf("character %q appeared %d times in %d, want about %d", c, got, total, want)
		}
	}
}

func TestCheck(t *testing.T) {
	f := Format{Prefix: "kg_"}
	good := mustGenerate(t, f)
	body := good[len(f.Prefix) : len(f.Prefix)+bodyLen]

	for _, tc := range []struct {
		name, in string
		want     error
	}{
		{"generated", good, nil},
		{"empty", "", ErrMalformed},
		{"prefix only", "kg_", ErrMalformed},
		{"one short", good[:len(good)-1], ErrMalformed},
		{"one long", good + "0", ErrMalformed},
		// Length is the only fault: the checksum is right for a 31-character body.
		{"short body, valid checksum", withChecksum("kg_" + body[:31]), ErrMalformed},
		{"long body, valid checksum", withChecksum("kg_" + body + "0"), ErrMalformed},
		// Prefix is the only fault: same length, checksum computed over the other prefix.
		{"other prefix, valid checksum", withChecksum("sk_" + body), ErrMalformed},
		{"prefix case", withChecksum("KG_" + body), ErrMalformed},
		// Alphabet is the only fault: the checksum is computed over the bad character.
		{"underscore in body", withChecksum("kg_" + body[:5] + "_" + body[6:]), ErrMalformed},
		{"dash in body", withChecksum("kg_-" + body[1:]), ErrMalformed},
		{"space in body", withChecksum("kg_" + body[:31] + " "), ErrMalformed},
		{"non-ASCII in body", withChecksum("kg_" + body[:30] + "é"), ErrMalformed},
		{"NUL in body", withChecksum("kg_" + body[:31] + "\x00"), ErrMalformed},
		{"bad char in checksum", good[:len(good)-1] + "+", ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := f.Check(tc.in); !errors.Is(got, tc.want) {
				t.Errorf("Check(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

// TestCheckOneCharacterChange changes every position after the prefix to every other
// base62 character: CRC32 catches every single-character change in the body, and any
// change to the checksum is a mismatch.
func TestCheckOneCharacterChange(t *testing.T) {
	f := Format{Prefix: "kg_"}
	good := mustGenerate(t, f)
	b := []byte(good)
	for i := len(f.Prefix); i < len(b); i++ {
		orig := b[i]
		for _, c := range []byte(base62) {
			if c == orig {
				continue
			}
			b[i] = c
			if got := f.Check(string(b)); !errors.Is(got, ErrMalformed) {
				t.Errorf("Check(%q) (position %d changed from %q to %q) = %v, want %v",
					b, i, orig, c, got, ErrMalformed)
			}
		}
		b[i] = orig
	}
}

func TestCheckAllocs(t *testing.T) {
	f := Format{Prefix: "sk_live_"}
	good := mustGenerate(t, f)
	bad := good[:len(good)-1] + "!"
	for _, v := range []string{good, bad} {
		if got := testing.AllocsPerRun(100, func() { _ = f.Check(v) }); got != 0 {
			t.Errorf("Check(%q) allocates %v times per call, want 0", v, got)
		}
	}
}

func TestHasPrefix(t *testing.T) {
	for _, tc := range []struct {
		name, prefix, in string
		want             bool
	}{
		{"match", "kg_", "kg_abc", true},
		{"prefix alone", "kg_", "kg_", true},
		{"no match", "kg_", "sk_abc", false},
		{"case differs", "kg_", "KG_abc", false},
		{"shorter than prefix", "kg_", "kg", false},
		{"empty prefix never matches", "", "anything", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := Format{Prefix: tc.prefix}
			if got := f.HasPrefix(tc.in); got != tc.want {
				t.Errorf("Format{%q}.HasPrefix(%q) = %v, want %v", tc.prefix, tc.in, got, tc.want)
			}
		})
	}
}

func TestShown(t *testing.T) {
	f := Format{Prefix: "kg_"}
	for _, tc := range []struct {
		name, in, want string
	}{
		{"key", "kg_Ab12Cd34" + strings.Repeat("x", 24) + "000000", "kg_Ab12Cd34"},
		{"key of another prefix length", "kg_Zz99yy88rest", "kg_Zz99yy88"},
		{"legacy 16 chars", "abcdefghijklmnop", "abcd"},
		{"legacy long", "legacy-0123456789abcdef0123456789", "lega"},
		{"legacy 15 chars", "abcdefghijklmno", ""},
		{"legacy empty", "", ""},
		// Has the prefix but too short to show 8 more: treated as any other short value.
		{"prefixed but short", "kg_abc", ""},
		{"prefixed, short, but 16 long", "kg_abcd", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := f.Shown(tc.in); got != tc.want {
				t.Errorf("Shown(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}

	t.Run("other prefix", func(t *testing.T) {
		g := Format{Prefix: "sk_live_"}
		k := mustGenerate(t, g)
		if got, want := g.Shown(k), k[:len("sk_live_")+8]; got != want {
			t.Errorf("Shown(%q) = %q, want %q", k, got, want)
		}
		// A key of this format is at least 16 long: a format without the prefix shows 4.
		if got, want := f.Shown(k), k[:4]; got != want {
			t.Errorf("Format{kg_}.Shown(%q) = %q, want %q", k, got, want)
		}
	})
}

func FuzzCheck(f *testing.F) {
	f.Add("kg_", "")                                                    // empty value
	f.Add("kg_", "kg_")                                                 // prefix alone
	f.Add("kg_", "kg_0000000000000000000000000000000000000")            // right length, wrong checksum
	f.Add("kg_", withChecksum("kg_"+strings.Repeat("a", 32)))           // valid key
	f.Add("kg_", withChecksum("kg_"+strings.Repeat("a", 31)+"_"))       // valid checksum, bad alphabet
	f.Add("sk_live_", withChecksum("sk_live_"+strings.Repeat("Z", 32))) // longer prefix
	f.Add("kg_", "kg_\xff\xfe"+strings.Repeat("a", 36))                 // invalid UTF-8
	f.Add("", withChecksum(strings.Repeat("9", 32)))                    // empty prefix
	f.Fuzz(func(t *testing.T, prefix, v string) {
		kf := Format{Prefix: prefix}
		if kf.Check(v) == nil {
			if got, want := len(v), len(prefix)+bodyLen+checksumLen; got != want {
				t.Fatalf("Check(%q) passed with length %d, want %d", v, got, want)
			}
			if !strings.HasPrefix(v, prefix) {
				t.Fatalf("Check(%q) passed without prefix %q", v, prefix)
			}
			for _, c := range []byte(v[len(prefix):]) {
				if !strings.ContainsRune(base62, rune(c)) {
					t.Fatalf("Check(%q) passed with non-base62 byte %q", v, c)
				}
			}
			if !refChecksumOK(v) {
				t.Fatalf("Check(%q) passed with a wrong checksum", v)
			}
		}
		k, err := kf.Generate()
		if err != nil {
			t.Fatalf("Generate() error = %v", err)
		}
		if err := kf.Check(k); err != nil {
			t.Fatalf("Format{%q}.Check(Generate() = %q) = %v, want nil", prefix, k, err)
		}
		_ = kf.Shown(v) // must not panic
	})
}

func BenchmarkCheck(b *testing.B) {
	f := Format{Prefix: "kg_"}
	k := mustGenerate(b, f)
	b.ReportAllocs()
	for b.Loop() {
		if err := f.Check(k); err != nil {
			b.Fatal(err)
		}
	}
}
