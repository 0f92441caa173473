package config

import (
	"slices"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in     string
		limit  int64
		period time.Duration
		ok     bool
	}{
		{"100-M", 100, time.Minute, true},
		{"10-S", 10, time.Second, true},
		{"5000-H", 5000, time.Hour, true},
		{"100000-D", 100000, 24 * time.Hour, true},
		{"1-S", 1, time.Second, true},
		{"0-M", 0, 0, false},
		{"+5-M", 0, 0, false},
		{"-5-M", 0, 0, false},
		{"5-m", 0, 0, false},
		{"05-M", 0, 0, false},
		{" 5-M", 0, 0, false},
		{"5-M ", 0, 0, false},
		{"5 -M", 0, 0, false},
		{"5-W", 0, 0, false},
		{"5-MM", 0, 0, false},
		{"5", 0, 0, false},
		{"", 0, 0, false},
		{"M-5", 0, 0, false},
		{"1e3-M", 0, 0, false},
		{"99999999999999999999-M", 0, 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			r, err := ParseRate(tc.in)
			if got := err == nil; got != tc.ok {
				t.Fatalf("ParseRate(%q) error = %v, want ok %v", tc.in, err, tc.ok)
			}
			if !tc.ok {
				if want := `invalid rate "` + tc.in + `"`; len(err.Error()) < len(want) || err.Error()[:len(want)] != want {
					t.Errorf("ParseRate(%q) error = %q, want it to start with %q", tc.in, err, want)
				}
				return
			}
			if r.Limit != tc.limit || r.Period != tc.period || r.Formatted != tc.in {
				t.Errorf("ParseRate(%q) = %+v, want limit %d period %s", tc.in, r, tc.limit, tc.period)
			}
		})
	}
}

func TestParseRates(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      []string
		want    []string
		wantErr string
	}{
		{"none", nil, nil, ""},
		{"one", []string{"10-S"}, []string{"10-S"}, ""},
		{"several", []string{"10-S", "1000-H"}, []string{"10-S", "1000-H"}, ""},
		{"bad", []string{"10-S", "x"}, nil, `invalid rate "x": want N-S, N-M, N-H or N-D with N a positive integer (e.g. "100-M")`},
		{"empty element", []string{""}, nil, `invalid rate "": want N-S, N-M, N-H or N-D with N a positive integer (e.g. "100-M")`},
		{"same period", []string{"10-S", "20-S"}, nil, `rates "10-S" and "20-S" have the same period: give one rate per period`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRates(tc.in)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tc.wantErr {
				t.Fatalf("ParseRates(%q) error = %q, want %q", tc.in, gotErr, tc.wantErr)
			}
			if got := r.Strings(); !slices.Equal(got, tc.want) {
				t.Errorf("ParseRates(%q).Strings() = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestRatesStringsWithoutFormatted(t *testing.T) {
	r := Rates{{Limit: 5, Period: time.Hour}, {Limit: 7, Period: 24 * time.Hour}}
	if got, want := r.Strings(), []string{"5-H", "7-D"}; !slices.Equal(got, want) {
		t.Errorf("Strings() = %q, want %q", got, want)
	}
}

func TestRatesYAML(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"string", `rate_limit: "100-M"`, []string{"100-M"}},
		{"plain string", `rate_limit: 100-M`, []string{"100-M"}},
		{"empty string", `rate_limit: ""`, nil},
		{"null", `rate_limit: ~`, nil},
		{"list", `rate_limit: ["10-S", "1000-H"]`, []string{"10-S", "1000-H"}},
		{"empty list", `rate_limit: []`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, "routes:\n  - "+tc.src+"\n", nil)
			if got := c.Routes[0].RateLimit.Strings(); len(got) != len(tc.want) || !slices.Equal(got, tc.want) {
				t.Errorf("rate_limit = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParsePrefix(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"10.1.2.3/8", "10.0.0.0/8"},
		{"192.168.1.7", "192.168.1.7/32"},
		{"::ffff:10.0.0.1", "10.0.0.1/32"},
		{"2001:db8::/32", "2001:db8::/32"},
		{"::1", "::1/128"},
		{"10.0.0.0/33", ""},
		{"example.com", ""},
		{"", ""},
	} {
		p, err := ParsePrefix(tc.in)
		got := ""
		if err == nil {
			got = p.String()
		}
		if got != tc.want {
			t.Errorf("ParsePrefix(%q) = %q (err %v), want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestURLString(t *testing.T) {
	if got := (URL{}).String(); got != "" {
		t.Errorf("URL{}.String() = %q, want empty", got)
	}
	u := mustURL(t, "http://user:pw@h:1/p")
	if got, want := u.String(), "http://user:xxxxx@h:1/p"; got != want {
		t.Errorf("String() = %q, want %q (password redacted)", got, want)
	}
}
