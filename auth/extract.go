package auth

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Carrier is where a credential came from.
type Carrier uint8

// The carriers of SPEC §3, in the order Extract looks at them.
const (
	CarrierNone Carrier = iota
	CarrierBasic
	CarrierBearer
	CarrierHeader
	CarrierQuery
)

// String returns the carrier's name: none, basic, bearer, header or query.
func (c Carrier) String() string {
	switch c {
	case CarrierNone:
		return "none"
	case CarrierBasic:
		return "basic"
	case CarrierBearer:
		return "bearer"
	case CarrierHeader:
		return "header"
	case CarrierQuery:
		return "query"
	}
	return "carrier(" + strconv.Itoa(int(c)) + ")"
}

// Credentials is what a request presents, before any check.
//
// When Malformed is set, Username, Password and Key are empty, and Carrier names the
// carrier that could not be read (CarrierNone for an Authorization header that is neither
// Basic nor Bearer, or that was sent twice). When it is not, Carrier says which field is
// set: Username (never empty) and Password for CarrierBasic, Key (never empty) for the
// others, nothing for CarrierNone.
type Credentials struct {
	Carrier  Carrier
	Username string // Basic: the username (a key, or a principal id)
	Password string // Basic: the password (ignored when Username is a key)
	Key      string // Bearer, header, query: the key value
	// Malformed is set when the first present carrier could not be parsed, was empty, or
	// held two values: a 401, never a fall-through to the next carrier.
	Malformed bool
}

// ExtractOptions says where keys may be.
type ExtractOptions struct {
	// KeyHeader is the canonical name of the key header, e.g. "X-Api-Key"
	// (http.CanonicalHeaderKey of the configured "X-API-Key"); "" = off.
	KeyHeader string
	// KeyQueryParam is the name of the key query parameter; "" = off.
	KeyQueryParam string
}

// Extract reads the credentials of r in SPEC §3 order: Authorization (Basic, then Bearer),
// the key header, the key query parameter; first present wins, and a present carrier that
// is empty, garbled, of another scheme or sent twice makes the result Malformed instead of
// falling through to the next one. Header values lose their surrounding spaces and tabs
// only. The query parameter is looked for in r.URL.RawQuery, in pairs separated by '&' or
// ';', its name matched as written (as the proxy removes it) and its value unescaped.
// Extract does no I/O and does not change r; it allocates only to decode Basic
// credentials and to unescape an escaped query value.
func Extract(r *http.Request, o ExtractOptions) Credentials {
	if v := r.Header["Authorization"]; len(v) > 0 {
		return fromAuthorization(v)
	}
	if o.KeyHeader != "" {
		if v := r.Header[o.KeyHeader]; len(v) > 0 {
			return fromKeyHeader(v)
		}
	}
	if o.KeyQueryParam != "" && r.URL != nil {
		return fromQuery(r.URL.RawQuery, o.KeyQueryParam)
	}
	return Credentials{}
}

func fromAuthorization(lines []string) Credentials {
	if len(lines) != 1 {
		return Credentials{Malformed: true}
	}
	v := trimOWS(lines[0])
	scheme, rest := v, ""
	if i := strings.IndexAny(v, " \t"); i >= 0 {
		scheme, rest = v[:i], trimOWS(v[i+1:])
	}
	switch {
	case strings.EqualFold(scheme, "Basic"):
		user, pass, ok := ParseBasic(rest)
		if !ok || user == "" {
			return Credentials{Carrier: CarrierBasic, Malformed: true}
		}
		return Credentials{Carrier: CarrierBasic, Username: user, Password: pass}
	case strings.EqualFold(scheme, "Bearer"):
		if rest == "" || strings.ContainsAny(rest, " \t,") {
			return Credentials{Carrier: CarrierBearer, Malformed: true}
		}
		return Credentials{Carrier: CarrierBearer, Key: rest}
	}
	return Credentials{Malformed: true}
}

func fromKeyHeader(lines []string) Credentials {
	if len(lines) != 1 {
		return Credentials{Carrier: CarrierHeader, Malformed: true}
	}
	v := trimOWS(lines[0])
	if v == "" || strings.IndexByte(v, ',') >= 0 {
		return Credentials{Carrier: CarrierHeader, Malformed: true}
	}
	return Credentials{Carrier: CarrierHeader, Key: v}
}

// fromQuery finds name in a raw query. Absent: no credentials; present twice, empty,
// badly escaped or holding a comma: Malformed.
func fromQuery(q, name string) Credentials {
	var raw string
	found := false
	for q != "" {
		var pair string
		if i := strings.IndexAny(q, "&;"); i >= 0 {
			pair, q = q[:i], q[i+1:]
		} else {
			pair, q = q, ""
		}
		k, v, _ := strings.Cut(pair, "=")
		if k != name {
			continue
		}
		if found {
			return Credentials{Carrier: CarrierQuery, Malformed: true}
		}
		raw, found = v, true
	}
	if !found {
		return Credentials{}
	}
	v := raw
	if strings.ContainsAny(raw, "%+") {
		var err error
		if v, err = url.QueryUnescape(raw); err != nil {
			return Credentials{Carrier: CarrierQuery, Malformed: true}
		}
	}
	if v == "" || strings.IndexByte(v, ',') >= 0 {
		return Credentials{Carrier: CarrierQuery, Malformed: true}
	}
	return Credentials{Carrier: CarrierQuery, Key: v}
}

// maxStackBasic is the longest decoded Basic value that ParseBasic decodes on the stack
// (then its one allocation is the resulting string).
const maxStackBasic = 256

// ParseBasic decodes the value of an Authorization: Basic header (after the scheme), in
// standard padded Base64. A decoded value without ':' is a username with an empty
// password; otherwise the username ends at the first ':'. ok is false on bad Base64.
// Unlike http.Request.BasicAuth it accepts a value without ':'.
func ParseBasic(v string) (user, pass string, ok bool) {
	enc := base64.StdEncoding
	var buf [maxStackBasic]byte
	var dst []byte
	if n := enc.DecodedLen(len(v)); n <= len(buf) {
		dst = buf[:n]
	} else {
		dst = make([]byte, n)
	}
	n, err := enc.Decode(dst, []byte(v))
	if err != nil {
		return "", "", false
	}
	user, pass, _ = strings.Cut(string(dst[:n]), ":")
	return user, pass, true
}

// trimOWS removes the optional whitespace (spaces and tabs) around a header value.
func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
