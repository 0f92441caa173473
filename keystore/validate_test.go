package keystore

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// checkErr fails unless err is nil when wantField is "", or a *FieldError naming
// wantField whose message starts with it.
func checkErr(t *testing.T, call string, err error, wantField string) {
	t.Helper()
	if wantField == "" {
		if err != nil {
			t.Errorf("%s = %v, want nil", call, err)
		}
		return
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("%s = %v, want *FieldError for %q", call, err, wantField)
	}
	if fe.Field != wantField || !strings.HasPrefix(err.Error(), wantField+": ") {
		t.Errorf("%s = %q (field %q), want field %q", call, err, fe.Field, wantField)
	}
}

func TestValidatePrincipalID(t *testing.T) {
	for _, tc := range []struct {
		name, id, prefix string
		wantErr          bool
	}{
		{"simple", "acme", "kg_", false},
		{"all classes", "Acme-1.a_b", "kg_", false},
		{"64 chars", strings.Repeat("a", 64), "kg_", false},
		{"empty", "", "kg_", true},
		{"65 chars", strings.Repeat("a", 65), "kg_", true},
		{"space", "ac me", "kg_", true},
		{"slash", "a/b", "kg_", true},
		{"colon", "a:b", "kg_", true},
		{"non-ascii", "acmé", "kg_", true},
		{"newline", "acme\n", "kg_", true},
		{"dot", ".", "kg_", true},
		{"dotdot", "..", "kg_", true},
		{"key prefix", "kg_acme", "kg_", true},
		{"other prefix", "DC.acme", "DC.", true},
		{"prefix case differs", "KG_acme", "kg_", false},
		{"no prefix configured", "kg_acme", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := ""
			if tc.wantErr {
				want = "id"
			}
			checkErr(t, "ValidatePrincipalID("+tc.id+")", ValidatePrincipalID(tc.id, tc.prefix), want)
		})
	}
}

func TestValidateKeyID(t *testing.T) {
	for _, tc := range []struct {
		name, id string
		wantErr  bool
	}{
		{"v7", "0190d7a4-8c3e-7b9a-9f00-0123456789ab", false},
		{"v4 upper", "F47AC10B-58CC-4372-A567-0E02B2C3D479", false},
		{"empty", "", true},
		{"word", "abc", true},
		{"braces", "{f47ac10b-58cc-4372-a567-0e02b2c3d479}", true},
		{"urn", "urn:uuid:f47ac10b-58cc-4372-a567-0e02b2c3d479", true},
		{"no dashes", "f47ac10b58cc4372a5670e02b2c3d479", true},
		{"bad hex", "g47ac10b-58cc-4372-a567-0e02b2c3d479", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := ""
			if tc.wantErr {
				want = "key_id"
			}
			checkErr(t, "ValidateKeyID("+tc.id+")", ValidateKeyID("key_id", tc.id), want)
		})
	}
}

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		wantErr  bool
	}{
		{"simple", "ci deploy", false},
		{"100 runes", strings.Repeat("é", 100), false},
		{"empty", "", true},
		{"101 runes", strings.Repeat("é", 101), true},
		{"CR", "a\rb", true},
		{"LF", "a\nb", true},
		{"NUL", "a\x00b", true},
		{"TAB", "a\tb", true},
		{"DEL", "a\x7fb", true},
		{"C1", "a\u0085b", true},
		{"invalid UTF-8", "a\xffb", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := ""
			if tc.wantErr {
				want = "name"
			}
			checkErr(t, "ValidateName", ValidateName("name", tc.in), want)
		})
	}
	checkErr(t, "ValidateDisplayName(empty)", ValidateDisplayName("display_name", ""), "")
	checkErr(t, "ValidateDisplayName(LF)", ValidateDisplayName("display_name", "a\nb"), "display_name")
}

func TestValidateScopes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		in        []string
		wantField string
	}{
		{"nil", nil, ""},
		{"some", []string{"read", "write:all", "admin.users"}, ""},
		{"empty scope", []string{"read", ""}, "scopes[1]"},
		{"comma", []string{"a,b"}, "scopes[0]"},
		{"space", []string{"read", "a b"}, "scopes[1]"},
		{"tab", []string{"a\tb"}, "scopes[0]"},
		{"LF", []string{"a\nb"}, "scopes[0]"},
		{"NUL", []string{"a\x00"}, "scopes[0]"},
		{"duplicate", []string{"a", "b", "a"}, "scopes[2]"},
		{"too long", []string{strings.Repeat("a", 101)}, "scopes[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErr(t, "ValidateScopes", ValidateScopes("scopes", tc.in), tc.wantField)
		})
	}
	many := make([]string, MaxScopes+1)
	for i := range many {
		many[i] = "s" + strings.Repeat("x", i)
	}
	checkErr(t, "ValidateScopes(too many)", ValidateScopes("scopes", many), "scopes")
}

func TestCheckKeyScopes(t *testing.T) {
	held := []string{"read", "write"}
	if err := CheckKeyScopes("scopes", []string{"read"}, held); err != nil {
		t.Errorf("subset: got %v, want nil", err)
	}
	if err := CheckKeyScopes("scopes", nil, held); err != nil {
		t.Errorf("empty: got %v, want nil", err)
	}
	err := CheckKeyScopes("scopes", []string{"read", "admin"}, held)
	if !errors.Is(err, ErrScopeNotHeld) {
		t.Errorf("outside: got %v, want ErrScopeNotHeld", err)
	}
	checkErr(t, "CheckKeyScopes(outside)", err, "scopes[1]")
}

func TestValidateMetadata(t *testing.T) {
	for _, tc := range []struct {
		name      string
		in        map[string]string
		wantField string
	}{
		{"nil", nil, ""},
		{"some", map[string]string{"team": "billing", "ticket": "OPS-1"}, ""},
		{"empty value", map[string]string{"team": ""}, ""},
		{"empty key", map[string]string{"": "x"}, "metadata"},
		{"LF in value", map[string]string{"team": "a\nb"}, "metadata.team"},
		{"CR in key", map[string]string{"te\ram": "a"}, "metadata key"},
		{"long value", map[string]string{"team": strings.Repeat("a", 1001)}, "metadata.team"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErr(t, "ValidateMetadata", ValidateMetadata("metadata", tc.in), tc.wantField)
		})
	}
}

func TestValidateRates(t *testing.T) {
	for _, tc := range []struct {
		name      string
		in        []string
		wantField string
	}{
		{"none", nil, ""},
		{"one", []string{"100-M"}, ""},
		{"every period", []string{"10-S", "100-M", "5000-H", "100000-D"}, ""},
		{"zero", []string{"0-M"}, "rate_limit"},
		{"leading zero", []string{"05-M"}, "rate_limit"},
		{"plus", []string{"+5-M"}, "rate_limit"},
		{"lower period", []string{"5-m"}, "rate_limit"},
		{"word period", []string{"5-min"}, "rate_limit"},
		{"no dash", []string{"5M"}, "rate_limit"},
		{"empty", []string{""}, "rate_limit"},
		{"negative", []string{"-5-M"}, "rate_limit"},
		{"space", []string{"5 -M"}, "rate_limit"},
		{"overflow", []string{"9999999999999999999999-M"}, "rate_limit"},
		{"second of two bad", []string{"5-M", "x"}, "rate_limit[1]"},
		{"same period twice", []string{"5-M", "50-M"}, "rate_limit[1]"},
		{"too many", []string{"1-S", "2-M", "3-H", "4-D", "5-S"}, "rate_limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErr(t, "ValidateRates", ValidateRates("rate_limit", tc.in), tc.wantField)
		})
	}
}

func TestKeyExpiry(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 500, time.UTC)
	ptr := func(s string) *string { return &s }
	tp := func(t time.Time) *time.Time { return &t }
	for _, tc := range []struct {
		name        string
		expiresAt   *time.Time
		ttl         *string
		def, max    time.Duration
		want        *time.Time
		wantField   string
		wantAboveMx bool
	}{
		{name: "none", want: nil},
		{name: "default", def: time.Hour, want: tp(now.Add(time.Hour).Truncate(time.Second))},
		{name: "ttl", ttl: ptr("720h"), want: tp(now.Add(720 * time.Hour).Truncate(time.Second))},
		{name: "ttl wins over default", ttl: ptr("1h"), def: 24 * time.Hour, want: tp(now.Add(time.Hour).Truncate(time.Second))},
		{name: "expires_at", expiresAt: tp(now.Add(48 * time.Hour)), want: tp(now.Add(48 * time.Hour).Truncate(time.Second))},
		{name: "both", expiresAt: tp(now.Add(time.Hour)), ttl: ptr("1h"), wantField: "ttl"},
		{name: "bad ttl", ttl: ptr("forever"), wantField: "ttl"},
		{name: "zero ttl", ttl: ptr("0s"), wantField: "ttl"},
		{name: "negative ttl", ttl: ptr("-1h"), wantField: "ttl"},
		{name: "sub-second ttl", ttl: ptr("10ms"), wantField: "ttl"},
		{name: "past", expiresAt: tp(now.Add(-time.Second)), wantField: "expires_at"},
		{name: "now", expiresAt: tp(now), wantField: "expires_at"},
		{name: "ttl above max", ttl: ptr("25h"), max: 24 * time.Hour, wantField: "ttl", wantAboveMx: true},
		{name: "ttl at max", ttl: ptr("24h"), max: 24 * time.Hour, want: tp(now.Add(24 * time.Hour).Truncate(time.Second))},
		{name: "expires_at above max", expiresAt: tp(now.Add(25 * time.Hour)), max: 24 * time.Hour, wantField: "expires_at", wantAboveMx: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := KeyExpiry(now, tc.expiresAt, tc.ttl, tc.def, tc.max)
			checkErr(t, "KeyExpiry", err, tc.wantField)
			if got := errors.Is(err, ErrAboveMaxTTL); got != tc.wantAboveMx {
				t.Errorf("errors.Is(%v, ErrAboveMaxTTL) = %v, want %v", err, got, tc.wantAboveMx)
			}
			switch {
			case err != nil:
			case (got == nil) != (tc.want == nil):
				t.Errorf("KeyExpiry = %v, want %v", got, tc.want)
			case got != nil && !got.Equal(*tc.want):
				t.Errorf("KeyExpiry = %v, want %v", *got, *tc.want)
			}
		})
	}
}

func TestValidatePassword(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		wantErr  bool
	}{
		{"8 chars", "s3cret-p", false},
		{"1024 chars", strings.Repeat("p", 1024), false},
		{"8 runes of 2 bytes", strings.Repeat("é", 8), false},
		{"spaces and tabs", "pass word\twith tab", false},
		{"empty", "", true},
		{"7 chars", "s3cret-", true},
		{"7 runes of 2 bytes", strings.Repeat("é", 7), true},
		{"1025 chars", strings.Repeat("p", 1025), true},
		{"NUL", "s3cret-pw\x00x", true},
		{"invalid UTF-8", "s3cret-pw\xff", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := ""
			if tc.wantErr {
				want = "password"
			}
			err := ValidatePassword("password", tc.in)
			checkErr(t, "ValidatePassword", err, want)
			if err != nil && len(tc.in) >= 4 && strings.Contains(err.Error(), tc.in[:4]) {
				t.Errorf("ValidatePassword error %q quotes the password", err)
			}
		})
	}
}
