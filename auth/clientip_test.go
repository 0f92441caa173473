package auth

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("fd00::/8"),
	}
	for _, tc := range []struct {
		name    string
		remote  string
		xff     []string // header lines; nil: no header
		trusted []netip.Prefix
		want    string // "" = the zero Addr
	}{
		{"no trusted proxies", "203.0.113.7:5555", nil, nil, "203.0.113.7"},
		{"no trusted proxies ignores XFF", "203.0.113.7:5555", []string{"198.51.100.1"}, nil, "203.0.113.7"},
		{"untrusted peer ignores XFF", "203.0.113.7:5555", []string{"198.51.100.1"}, trusted, "203.0.113.7"},
		{"trusted peer without XFF", "10.0.0.2:5555", nil, trusted, "10.0.0.2"},
		{"trusted peer takes the entry", "10.0.0.2:5555", []string{"198.51.100.1"}, trusted, "198.51.100.1"},
		{"trusted peer takes right-most untrusted", "10.0.0.2:5555",
			[]string{"192.0.2.66, 198.51.100.1, 10.0.0.9, 10.1.2.3"}, trusted, "198.51.100.1"},
		{"spoofed left entry is not taken", "10.0.0.2:5555",
			[]string{"1.1.1.1, 198.51.100.1"}, trusted, "198.51.100.1"},
		{"multiple header lines, right-most in last line", "10.0.0.2:5555",
			[]string{"192.0.2.66", "198.51.100.1, 10.0.0.9"}, trusted, "198.51.100.1"},
		{"multiple header lines, walk into earlier line", "10.0.0.2:5555",
			[]string{"192.0.2.66, 198.51.100.1", "10.0.0.9", "10.0.0.8"}, trusted, "198.51.100.1"},
		{"all trusted: left-most", "10.0.0.2:5555",
			[]string{"10.0.0.7, 10.0.0.8", "10.0.0.9"}, trusted, "10.0.0.7"},
		{"unparsable entry stops the walk", "10.0.0.2:5555",
			[]string{"198.51.100.1, garbage, 10.0.0.9"}, trusted, "10.0.0.9"},
		{"unparsable right-most entry: peer", "10.0.0.2:5555",
			[]string{"198.51.100.1, unknown"}, trusted, "10.0.0.2"},
		{"unparsable entry in a later line", "10.0.0.2:5555",
			[]string{"198.51.100.1", "nope"}, trusted, "10.0.0.2"},
		{"empty entries skipped", "10.0.0.2:5555",
			[]string{"198.51.100.1, , 10.0.0.9,", ""}, trusted, "198.51.100.1"},
		{"whitespace around entries", "10.0.0.2:5555",
			[]string{" \t198.51.100.1 ,\t10.0.0.9  "}, trusted, "198.51.100.1"},
		{"entry with port", "10.0.0.2:5555", []string{"198.51.100.1:8080"}, trusted, "198.51.100.1"},
		{"IPv6 entry with brackets and port", "10.0.0.2:5555", []string{"[2001:db8::1]:443"}, trusted, "2001:db8::1"},
		{"IPv6 entry with brackets, no port", "10.0.0.2:5555", []string{"[2001:db8::1]"}, trusted, "2001:db8::1"},
		{"IPv6 entry", "10.0.0.2:5555", []string{"2001:db8::1, fd00::5"}, trusted, "2001:db8::1"},
		{"IPv6 peer", "[2001:db8::7]:5555", []string{"198.51.100.1"}, trusted, "2001:db8::7"},
		{"IPv6 trusted peer", "[fd00::1]:5555", []string{"2001:db8::1"}, trusted, "2001:db8::1"},
		{"IPv6 zone dropped", "[fe80::1%eth0]:5555", nil, nil, "fe80::1"},
		{"IPv4-mapped peer is unmapped and trusted", "[::ffff:10.0.0.2]:5555", []string{"198.51.100.1"}, trusted, "198.51.100.1"},
		{"IPv4-mapped entry is unmapped and trusted", "10.0.0.2:5555",
			[]string{"198.51.100.1, ::ffff:10.0.0.9"}, trusted, "198.51.100.1"},
		{"IPv4-mapped result is unmapped", "10.0.0.2:5555", []string{"::ffff:198.51.100.1"}, trusted, "198.51.100.1"},
		{"remote without port", "203.0.113.7", nil, trusted, "203.0.113.7"},
		{"remote IPv6 without port", "2001:db8::7", nil, trusted, "2001:db8::7"},
		{"unix socket remote", "@", []string{"198.51.100.1"}, trusted, ""},
		{"empty remote", "", []string{"198.51.100.1"}, trusted, ""},
		{"bracketed IPv4 is unparsable", "10.0.0.2:5555", []string{"198.51.100.1, [10.0.0.9]"}, trusted, "10.0.0.2"},
		{"bad port is unparsable", "10.0.0.2:5555", []string{"198.51.100.1, 10.0.0.9:http"}, trusted, "10.0.0.2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
			if tc.xff != nil {
				r.Header["X-Forwarded-For"] = tc.xff
			}
			var want netip.Addr
			if tc.want != "" {
				want = netip.MustParseAddr(tc.want)
			}
			if got := ClientIP(r, tc.trusted); got != want {
				t.Errorf("ClientIP(remote %q, XFF %q) = %v, want %v", tc.remote, tc.xff, got, want)
			}
		})
	}
}

func TestClientIPAllocs(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, tc := range []struct {
		name    string
		r       *http.Request
		trusted []netip.Prefix
	}{
		{"no trusted proxies", &http.Request{RemoteAddr: "203.0.113.7:5555",
			Header: http.Header{"X-Forwarded-For": {"198.51.100.1"}}}, nil},
		{"trusted proxy", &http.Request{RemoteAddr: "10.0.0.2:5555",
			Header: http.Header{"X-Forwarded-For": {"198.51.100.1, 10.0.0.9"}}}, trusted},
		{"IPv6 peer", &http.Request{RemoteAddr: "[2001:db8::7]:5555", Header: http.Header{}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := testing.AllocsPerRun(100, func() { _ = ClientIP(tc.r, tc.trusted) }); got != 0 {
				t.Errorf("ClientIP allocates %v times per call, want 0", got)
			}
		})
	}
}

func BenchmarkClientIP(b *testing.B) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	r := &http.Request{RemoteAddr: "10.0.0.2:5555",
		Header: http.Header{"X-Forwarded-For": {"192.0.2.66, 198.51.100.1, 10.0.0.9"}}}
	b.ReportAllocs()
	for b.Loop() {
		_ = ClientIP(r, trusted)
	}
}
