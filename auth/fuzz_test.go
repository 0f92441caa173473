package auth

import (
	"encoding/base64"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func FuzzParseBasic(f *testing.F) {
	f.Add(b64("acme:pw"))              // id:password
	f.Add(b64(testKey + ":"))          // key as username, empty password
	f.Add(b64(testKey))                // no colon: username only
	f.Add(b64("a:b:c"))                // colon inside the password
	f.Add(b64(":"))                    // empty username and password
	f.Add("")                          // empty token
	f.Add("YWNtZTpwdw")                // missing padding
	f.Add("YWNt\nZTpwdw==")            // newline inside (the decoder skips \r and \n)
	f.Add("!!!!")                      // not Base64 at all
	f.Add("-_8=")                      // URL alphabet
	f.Add(strings.Repeat("QUFB", 100)) // longer than the stack buffer
	f.Fuzz(func(t *testing.T, v string) {
		user, pass, ok := ParseBasic(v)
		// Reference: the standard decoder, then the first ':'.
		dec, err := base64.StdEncoding.DecodeString(v)
		if ok != (err == nil) {
			t.Fatalf("ParseBasic(%q) ok = %v, want %v (DecodeString error %v)", v, ok, err == nil, err)
		}
		if !ok {
			if user != "" || pass != "" {
				t.Fatalf("ParseBasic(%q) = %q, %q, false, want empty strings", v, user, pass)
			}
			return
		}
		wantUser, wantPass, _ := strings.Cut(string(dec), ":")
		if user != wantUser || pass != wantPass {
			t.Fatalf("ParseBasic(%q) = %q, %q, want %q, %q", v, user, pass, wantUser, wantPass)
		}
		if strings.Contains(user, ":") {
			t.Fatalf("ParseBasic(%q) username %q holds ':'", v, user)
		}
	})
}

func FuzzExtract(f *testing.F) {
	// authorization and keyHeader are split on "\n" into header lines, so that the fuzzer
	// can send two lines (a value from the wire never holds "\n").
	f.Add(true, "Basic "+b64(testKey+":"), false, "", "")      // Basic key, empty password
	f.Add(true, "basic "+b64("acme:pw"), true, testKey, "")    // lowercase Basic wins over the key header
	f.Add(true, "Basic "+b64("acme"), false, "", "")           // Basic without ':'
	f.Add(true, "Basic !!", true, testKey, "")                 // bad Base64: Malformed, no fall-through
	f.Add(true, "Bearer "+testKey, false, "", "api_key=x")     // Bearer wins over query
	f.Add(true, "Bearer ", false, "", "")                      // Bearer without token
	f.Add(true, "Bearer a b", false, "", "")                   // Bearer with a space
	f.Add(true, "Bearer k1\nBearer k2", false, "", "")         // two Authorization lines
	f.Add(true, "Digest x", true, testKey, "")                 // another scheme: Malformed
	f.Add(true, "", false, "", "")                             // empty Authorization
	f.Add(false, "", true, testKey, "")                        // key header
	f.Add(false, "", true, "K1, K2", "")                       // two keys in one header
	f.Add(false, "", true, "k1\nk2", "api_key=k3")             // two key header lines
	f.Add(false, "", true, " ", "")                            // blank key header
	f.Add(false, "", false, "", "a=1&api_key="+testKey+";b=2") // query with & and ;
	f.Add(false, "", false, "", "api_key=k1;api_key=k2")       // query twice
	f.Add(false, "", false, "", "api_key=%zz")                 // bad escape
	f.Add(false, "", false, "", "api_key=k%2Bx+y")             // escaped '+' and '+' as space
	f.Add(false, "", false, "", "api_key")                     // name without '='
	f.Add(false, "", false, "", "")                            // nothing at all
	f.Fuzz(func(t *testing.T, hasAuth bool, authorization string, hasKey bool, keyHeader, rawQuery string) {
		h := http.Header{}
		if hasAuth {
			h["Authorization"] = strings.Split(authorization, "\n")
		}
		if hasKey {
			h["X-Api-Key"] = strings.Split(keyHeader, "\n")
		}
		r := newRequest(h, rawQuery)
		c := Extract(r, testOpts)

		if c.Carrier > CarrierQuery {
			t.Fatalf("Extract = %+v: unknown carrier", c)
		}
		if c.Malformed {
			if c.Username != "" || c.Password != "" || c.Key != "" {
				t.Fatalf("Extract = %+v: Malformed with a credential", c)
			}
		} else {
			switch c.Carrier {
			case CarrierNone:
				if c != (Credentials{}) {
					t.Fatalf("Extract = %+v: CarrierNone with a credential", c)
				}
			case CarrierBasic:
				if c.Username == "" || c.Key != "" {
					t.Fatalf("Extract = %+v: Basic without a username or with a key", c)
				}
				if strings.Contains(c.Username, ":") {
					t.Fatalf("Extract = %+v: username holds ':'", c)
				}
			default:
				if c.Key == "" || c.Username != "" || c.Password != "" {
					t.Fatalf("Extract = %+v: key carrier without a key or with a username", c)
				}
				if strings.Contains(c.Key, ",") {
					t.Fatalf("Extract = %+v: key holds ','", c)
				}
				if c.Carrier != CarrierQuery && c.Key != trimOWS(c.Key) {
					t.Fatalf("Extract = %+v: header key not trimmed", c)
				}
			}
		}

		// First present wins, and a bad carrier never falls through.
		switch {
		case hasAuth:
			if c.Carrier != CarrierNone && c.Carrier != CarrierBasic && c.Carrier != CarrierBearer {
				t.Fatalf("Extract = %+v with Authorization present", c)
			}
			if c.Carrier == CarrierNone && !c.Malformed {
				t.Fatalf("Extract = %+v: Authorization present but no credentials", c)
			}
			if len(h["Authorization"]) > 1 && !c.Malformed {
				t.Fatalf("Extract = %+v from two Authorization lines", c)
			}
		case hasKey:
			if c.Carrier != CarrierHeader {
				t.Fatalf("Extract = %+v with the key header present", c)
			}
			if len(h["X-Api-Key"]) > 1 && !c.Malformed {
				t.Fatalf("Extract = %+v from two key header lines", c)
			}
		default:
			if c.Carrier != CarrierNone && c.Carrier != CarrierQuery {
				t.Fatalf("Extract = %+v with only a query", c)
			}
			if c.Malformed && c.Carrier != CarrierQuery {
				t.Fatalf("Extract = %+v: Malformed without a carrier", c)
			}
		}
		if c.Carrier == CarrierBasic && !c.Malformed {
			// Agrees with ParseBasic on the token.
			v := trimOWS(authorization)
			token := ""
			if i := strings.IndexAny(v, " \t"); i >= 0 {
				token = trimOWS(v[i+1:])
			}
			if user, pass, ok := ParseBasic(token); !ok || user != c.Username || pass != c.Password {
				t.Fatalf("Extract = %+v, ParseBasic(token) = %q, %q, %v", c, user, pass, ok)
			}
		}
		_ = c.Carrier.String()
	})
}

func FuzzClientIP(f *testing.F) {
	// xff is split on "\n" into header lines.
	f.Add("10.0.0.2:5555", "198.51.100.1, 10.0.0.9")            // trusted peer, right-most untrusted
	f.Add("203.0.113.7:5555", "198.51.100.1")                   // untrusted peer: XFF ignored
	f.Add("10.0.0.2:5555", "192.0.2.1\n198.51.100.1, 10.0.0.9") // two header lines
	f.Add("10.0.0.2:5555", "10.0.0.7, 10.0.0.8")                // all trusted: left-most
	f.Add("10.0.0.2:5555", "198.51.100.1, junk, 10.0.0.9")      // unparsable entry stops the walk
	f.Add("[fd00::1]:80", "[2001:db8::1]:443, ::ffff:10.0.0.1") // IPv6, brackets, mapped
	f.Add("[fe80::1%eth0]:1", "fe80::2%25lo, 1.2.3.4:5")        // zones, IPv4 with port
	f.Add("@", "198.51.100.1")                                  // Unix socket peer
	f.Add("10.0.0.2:5555", " ,, ,")                             // only empty entries
	f.Add("10.0.0.2:5555", "[1.2.3.4], [::1")                   // broken brackets
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		lines := strings.Split(xff, "\n")
		r := &http.Request{RemoteAddr: remote, Header: http.Header{"X-Forwarded-For": lines}}
		got := ClientIP(r, trusted)
		peer := parseAddr(remote)
		if got := ClientIP(r, nil); got != peer {
			t.Fatalf("ClientIP(%q, no trusted) = %v, want the peer %v", remote, got, peer)
		}
		if !got.IsValid() {
			if peer.IsValid() {
				t.Fatalf("ClientIP(%q, %q) = zero Addr with a valid peer %v", remote, xff, peer)
			}
			return
		}
		if got.Is4In6() || got.Zone() != "" {
			t.Fatalf("ClientIP(%q, %q) = %v: not unmapped or has a zone", remote, xff, got)
		}
		if !contains(trusted, peer) {
			if got != peer {
				t.Fatalf("ClientIP(%q, %q) = %v, want the untrusted peer %v", remote, xff, got, peer)
			}
			return
		}
		if got == peer {
			return
		}
		for _, line := range lines {
			for _, e := range strings.Split(line, ",") {
				if parseAddr(trimOWS(e)) == got {
					return
				}
			}
		}
		t.Fatalf("ClientIP(%q, %q) = %v: neither the peer nor an entry", remote, xff, got)
	})
}
