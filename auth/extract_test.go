package auth

import (
	"bufio"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

const testKey = "kg_Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78St"

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// newRequest builds a request with the given header lines and raw query, as the server
// would hand it over (canonical header names).
func newRequest(h http.Header, rawQuery string) *http.Request {
	if h == nil {
		h = http.Header{}
	}
	return &http.Request{Method: "GET", URL: &url.URL{Path: "/", RawQuery: rawQuery}, Header: h}
}

var testOpts = ExtractOptions{KeyHeader: "X-Api-Key", KeyQueryParam: "api_key"}

func TestExtract(t *testing.T) {
	malformed := func(c Carrier) Credentials { return Credentials{Carrier: c, Malformed: true} }
	for _, tc := range []struct {
		name   string
		header http.Header
		query  string
		opts   ExtractOptions // zero: testOpts
		want   Credentials
	}{
		{"nothing", nil, "", ExtractOptions{}, Credentials{}},
		{"nothing with all carriers on", nil, "a=1&b=2", testOpts, Credentials{}},

		// Basic.
		{"basic key, empty password", http.Header{"Authorization": {"Basic " + b64(testKey+":")}}, "", testOpts,
			Credentials{Carrier: CarrierBasic, Username: testKey}},
		{"basic key, non-empty password", http.Header{"Authorization": {"Basic " + b64(testKey+":x")}}, "", testOpts,
			Credentials{Carrier: CarrierBasic, Username: testKey, Password: "x"}},
		{"basic without colon", http.Header{"Authorization": {"Basic " + b64(testKey)}}, "", testOpts,
			Credentials{Carrier: CarrierBasic, Username: testKey}},
		{"basic principal id:password", http.Header{"Authorization": {"Basic " + b64("acme:s3cr:et")}}, "", testOpts,
			Credentials{Carrier: CarrierBasic, Username: "acme", Password: "s3cr:et"}},
		{"basic lowercase scheme", http.Header{"Authorization": {"basic " + b64("acme:pw")}}, "", testOpts,
			Credentials{Carrier: CarrierBasic, Username: "acme", Password: "pw"}},
		{"basic uppercase scheme, extra spaces", http.Header{"Authorization": {"  BASIC   " + b64("acme:pw") + " \t"}}, "", testOpts,
			Credentials{Carrier: CarrierBasic, Username: "acme", Password: "pw"}},
		{"basic bad base64", http.Header{"Authorization": {"Basic !!!notbase64"}}, "", testOpts, malformed(CarrierBasic)},
		{"basic unpadded base64", http.Header{"Authorization": {"Basic " + base64.RawStdEncoding.EncodeToString([]byte("acme:pw"))}}, "", testOpts,
			malformed(CarrierBasic)},
		{"basic token with inner space", http.Header{"Authorization": {"Basic YWNt ZTpw"}}, "", testOpts, malformed(CarrierBasic)},
		{"basic without token", http.Header{"Authorization": {"Basic"}}, "", testOpts, malformed(CarrierBasic)},
		{"basic empty username", http.Header{"Authorization": {"Basic " + b64(":pw")}}, "", testOpts, malformed(CarrierBasic)},
		{"basic bad, key header present", http.Header{"Authorization": {"Basic %%%"}, "X-Api-Key": {testKey}}, "", testOpts,
			malformed(CarrierBasic)},

		// Bearer.
		{"bearer", http.Header{"Authorization": {"Bearer " + testKey}}, "", testOpts,
			Credentials{Carrier: CarrierBearer, Key: testKey}},
		{"bearer uppercase scheme", http.Header{"Authorization": {"BEARER " + testKey}}, "", testOpts,
			Credentials{Carrier: CarrierBearer, Key: testKey}},
		{"bearer surrounding whitespace", http.Header{"Authorization": {"\tBearer  " + testKey + "  "}}, "", testOpts,
			Credentials{Carrier: CarrierBearer, Key: testKey}},
		{"bearer empty", http.Header{"Authorization": {"Bearer "}}, "", testOpts, malformed(CarrierBearer)},
		{"bearer alone", http.Header{"Authorization": {"Bearer"}}, "", testOpts, malformed(CarrierBearer)},
		{"bearer two tokens", http.Header{"Authorization": {"Bearer k1 k2"}}, "", testOpts, malformed(CarrierBearer)},
		{"bearer comma", http.Header{"Authorization": {"Bearer k1,k2"}}, "", testOpts, malformed(CarrierBearer)},

		// Authorization in general.
		{"two authorization lines", http.Header{"Authorization": {"Bearer " + testKey, "Bearer " + testKey}}, "", testOpts,
			malformed(CarrierNone)},
		{"digest scheme", http.Header{"Authorization": {`Digest username="acme", realm="x"`}}, "", testOpts,
			malformed(CarrierNone)},
		{"digest scheme does not fall through to key header", http.Header{"Authorization": {"Digest x"}, "X-Api-Key": {testKey}}, "", testOpts,
			malformed(CarrierNone)},
		{"empty authorization", http.Header{"Authorization": {""}}, "", testOpts, malformed(CarrierNone)},
		{"blank authorization", http.Header{"Authorization": {"  "}}, "", testOpts, malformed(CarrierNone)},
		{"garbled authorization", http.Header{"Authorization": {testKey}}, "", testOpts, malformed(CarrierNone)},
		{"scheme prefix only", http.Header{"Authorization": {"Basicx " + b64("acme:pw")}}, "", testOpts, malformed(CarrierNone)},

		// Key header.
		{"key header", http.Header{"X-Api-Key": {testKey}}, "", testOpts, Credentials{Carrier: CarrierHeader, Key: testKey}},
		{"key header trimmed", http.Header{"X-Api-Key": {" \t" + testKey + " "}}, "", testOpts,
			Credentials{Carrier: CarrierHeader, Key: testKey}},
		{"custom key header", http.Header{"Api-Token": {testKey}, "X-Api-Key": {"other"}}, "", ExtractOptions{KeyHeader: "Api-Token"},
			Credentials{Carrier: CarrierHeader, Key: testKey}},
		{"key header off", http.Header{"X-Api-Key": {testKey}}, "", ExtractOptions{}, Credentials{}},
		{"two key header lines", http.Header{"X-Api-Key": {testKey, testKey}}, "", testOpts, malformed(CarrierHeader)},
		{"K1, K2 in one key header", http.Header{"X-Api-Key": {"K1, K2"}}, "", testOpts, malformed(CarrierHeader)},
		{"empty key header", http.Header{"X-Api-Key": {" "}}, "", testOpts, malformed(CarrierHeader)},
		{"bad key header does not fall through to query", http.Header{"X-Api-Key": {"a,b"}}, "api_key=" + testKey, testOpts,
			malformed(CarrierHeader)},

		// Query parameter.
		{"query", nil, "api_key=" + testKey, testOpts, Credentials{Carrier: CarrierQuery, Key: testKey}},
		{"query after &", nil, "a=1&api_key=" + testKey + "&b=2", testOpts, Credentials{Carrier: CarrierQuery, Key: testKey}},
		{"query after ;", nil, "a=1;api_key=" + testKey + ";b=2", testOpts, Credentials{Carrier: CarrierQuery, Key: testKey}},
		{"query escaped value", nil, "api_key=kg%5Fabc", testOpts, Credentials{Carrier: CarrierQuery, Key: "kg_abc"}},
		{"query name is a suffix of another", nil, "my_api_key=x&xapi_key=y", testOpts, Credentials{}},
		{"query name escaped is not matched", nil, "api%5Fkey=" + testKey, testOpts, Credentials{}},
		{"query off", nil, "api_key=" + testKey, ExtractOptions{KeyHeader: "X-Api-Key"}, Credentials{}},
		{"two query params with &", nil, "api_key=k1&api_key=k2", testOpts, malformed(CarrierQuery)},
		{"two query params with & and ;", nil, "api_key=k1;x=1&api_key=k1", testOpts, malformed(CarrierQuery)},
		{"query comma", nil, "api_key=k1,k2", testOpts, malformed(CarrierQuery)},
		{"query escaped comma", nil, "api_key=k1%2Ck2", testOpts, malformed(CarrierQuery)},
		{"query empty value", nil, "api_key=", testOpts, malformed(CarrierQuery)},
		{"query without =", nil, "api_key&a=1", testOpts, malformed(CarrierQuery)},
		{"query bad escape", nil, "api_key=kg%zz", testOpts, malformed(CarrierQuery)},

		// Precedence: first present wins.
		{"basic wins over key header", http.Header{"Authorization": {"Basic " + b64("acme:pw")}, "X-Api-Key": {testKey}}, "", testOpts,
			Credentials{Carrier: CarrierBasic, Username: "acme", Password: "pw"}},
		{"bearer wins over key header and query", http.Header{"Authorization": {"Bearer k1"}, "X-Api-Key": {"k2"}}, "api_key=k3", testOpts,
			Credentials{Carrier: CarrierBearer, Key: "k1"}},
		{"key header wins over query", http.Header{"X-Api-Key": {"k2"}}, "api_key=k3", testOpts,
			Credentials{Carrier: CarrierHeader, Key: "k2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRequest(tc.header, tc.query)
			if got := Extract(r, tc.opts); got != tc.want {
				t.Errorf("Extract(%v, ?%s) = %+v, want %+v", tc.header, tc.query, got, tc.want)
			}
		})
	}
}

// TestExtractFromWire checks the rules on a request as net/http parses it, so that two
// header lines and surrounding whitespace arrive as they would from a client.
func TestExtractFromWire(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		want      Credentials
	}{
		{"key header", "GET / HTTP/1.1\r\nHost: x\r\nx-api-key:   " + testKey + "  \r\n\r\n",
			Credentials{Carrier: CarrierHeader, Key: testKey}},
		{"two key header lines", "GET / HTTP/1.1\r\nHost: x\r\nX-API-Key: k1\r\nX-Api-Key: k2\r\n\r\n",
			Credentials{Carrier: CarrierHeader, Malformed: true}},
		{"two authorization lines", "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k1\r\nauthorization: Bearer k1\r\n\r\n",
			Credentials{Malformed: true}},
		{"query with ;", "GET /p?x=1;api_key=k1 HTTP/1.1\r\nHost: x\r\n\r\n",
			Credentials{Carrier: CarrierQuery, Key: "k1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tc.raw)))
			if err != nil {
				t.Fatalf("ReadRequest: %v", err)
			}
			if got := Extract(r, testOpts); got != tc.want {
				t.Errorf("Extract(%q) = %+v, want %+v", tc.raw, got, tc.want)
			}
		})
	}
}

func TestParseBasic(t *testing.T) {
	for _, tc := range []struct {
		name, in   string
		user, pass string
		ok         bool
	}{
		{"user and password", b64("acme:pw"), "acme", "pw", true},
		{"empty password", b64("acme:"), "acme", "", true},
		{"no colon", b64("acme"), "acme", "", true},
		{"colon in password", b64("acme:a:b"), "acme", "a:b", true},
		{"empty", "", "", "", true},
		{"long value, decoded on the heap", b64(testKey + ":" + string(make([]byte, 400))), testKey, string(make([]byte, 400)), true},
		{"bad base64", "!!!", "", "", false},
		{"missing padding", "YWNtZTpwdw", "", "", false},
		{"url alphabet", "-_-_", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			user, pass, ok := ParseBasic(tc.in)
			if user != tc.user || pass != tc.pass || ok != tc.ok {
				t.Errorf("ParseBasic(%q) = %q, %q, %v, want %q, %q, %v", tc.in, user, pass, ok, tc.user, tc.pass, tc.ok)
			}
		})
	}
}

func TestCarrierString(t *testing.T) {
	for _, tc := range []struct {
		in   Carrier
		want string
	}{
		{CarrierNone, "none"}, {CarrierBasic, "basic"}, {CarrierBearer, "bearer"},
		{CarrierHeader, "header"}, {CarrierQuery, "query"}, {Carrier(9), "carrier(9)"},
	} {
		if got := tc.in.String(); got != tc.want {
			t.Errorf("Carrier(%d).String() = %q, want %q", uint8(tc.in), got, tc.want)
		}
	}
}

func TestExtractAllocs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header http.Header
		query  string
		want   float64
	}{
		{"none", nil, "a=1&b=2", 0},
		{"bearer", http.Header{"Authorization": {"Bearer " + testKey}}, "", 0},
		{"key header", http.Header{"X-Api-Key": {testKey}}, "", 0},
		{"query", nil, "a=1&api_key=" + testKey, 0},
		{"basic", http.Header{"Authorization": {"Basic " + b64(testKey+":")}}, "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRequest(tc.header, tc.query)
			if got := testing.AllocsPerRun(100, func() { _ = Extract(r, testOpts) }); got != tc.want {
				t.Errorf("Extract allocates %v times per call, want %v", got, tc.want)
			}
		})
	}
}

func BenchmarkExtractBasic(b *testing.B) {
	r := newRequest(http.Header{"Authorization": {"Basic " + b64(testKey+":")}}, "")
	b.ReportAllocs()
	for b.Loop() {
		if c := Extract(r, testOpts); c.Username != testKey {
			b.Fatalf("Extract = %+v", c)
		}
	}
}

func BenchmarkExtractHeader(b *testing.B) {
	r := newRequest(http.Header{"X-Api-Key": {testKey}}, "a=1&b=2")
	b.ReportAllocs()
	for b.Loop() {
		if c := Extract(r, testOpts); c.Key != testKey {
			b.Fatalf("Extract = %+v", c)
		}
	}
}
