package proxy

import (
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/config"
)

// identityHeaders are the configured names of the headers keygate sets upstream.
type identityHeaders struct {
	principal, keyID, keyName, scopes, method string
	all                                       []string // canonical names, for stripping
}

func newIdentityHeaders(c config.IdentityHeaders) identityHeaders {
	h := identityHeaders{
		principal: http.CanonicalHeaderKey(c.Principal),
		keyID:     http.CanonicalHeaderKey(c.KeyID),
		keyName:   http.CanonicalHeaderKey(c.KeyName),
		scopes:    http.CanonicalHeaderKey(c.Scopes),
		method:    http.CanonicalHeaderKey(c.Method),
	}
	h.all = []string{h.principal, h.keyID, h.keyName, h.scopes, h.method}
	return h
}

// forwardingHeaders are stripped from request trailers and, from untrusted peers, from
// the request.
var forwardingHeaders = []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host",
	"Forwarded", "X-Real-Ip", "X-Request-Id"}

// sameHeaderName compares header names case-insensitively, with '_' equal to '-'.
func sameHeaderName(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == '_' {
			x = '-'
		}
		if y == '_' {
			y = '-'
		}
		if x|0x20 != y|0x20 || (x|0x20 < 'a' || x|0x20 > 'z') && x != y {
			return false
		}
	}
	return true
}

// stripNamed deletes every header of h whose name is one of names, in any case and with
// '_' for '-'.
func stripNamed(h http.Header, names []string) {
	for k := range h {
		for _, n := range names {
			if sameHeaderName(k, n) {
				delete(h, k)
				break
			}
		}
	}
}

// rewriter returns the Rewrite hook of a route: it runs after ReverseProxy removed
// hop-by-hop, Connection-listed and X-Forwarded-* headers from pr.Out.
func (g *Gateway) rewriter(rt *route) func(*httputil.ProxyRequest) {
	return func(pr *httputil.ProxyRequest) {
		rw, _ := pr.In.Context().Value(recorderKey{}).(*recorder)
		out := pr.Out
		h := out.Header

		stripNamed(h, g.headers.all)
		if out.Trailer != nil {
			stripNamed(out.Trailer, g.headers.all)
			stripNamed(out.Trailer, forwardingHeaders)
		}
		if rt.mode != auth.ModeNone && !rt.forwardCreds {
			// A request that got here with an Authorization header was authenticated by it
			// (any other scheme is a 401), so it is a credential: never forward it.
			delete(h, "Authorization")
			delete(h, g.extract.KeyHeader)
		}

		// Path and query: strip the prefix, keep the query byte for byte (but the key).
		if rt.strip {
			out.URL.Path = stripPrefix(out.URL.Path, rt.prefix)
			if out.URL.RawPath != "" {
				out.URL.RawPath = stripPrefix(out.URL.RawPath, rt.prefix)
			}
		}
		pr.SetURL(rt.upstream)
		out.URL.RawQuery = pr.In.URL.RawQuery
		if g.extract.KeyQueryParam != "" && rt.mode != auth.ModeNone && !rt.forwardCreds {
			out.URL.RawQuery = removeQueryParam(out.URL.RawQuery, g.extract.KeyQueryParam)
		}
		if rt.preserveHost {
			out.Host = pr.In.Host
		}

		if rw == nil { // not reached through ServeHTTP: nothing is known of the caller
			g.setForwarded(pr, netip.Addr{}, false)
			return
		}
		g.setForwarded(pr, rw.peer, rw.trustedPeer)
		h["X-Request-Id"] = rw.requestIDValue()
		if rt.mode != auth.ModeNone {
			g.setIdentity(h, &rw.id)
		}
	}
}

// setIdentity sets the identity headers of id on h (one allocation for all values).
func (g *Gateway) setIdentity(h http.Header, id *auth.Identity) {
	h[g.headers.method] = methodValues[id.Method]
	if id.Entry == nil {
		return
	}
	v := make([]string, 0, 4)
	add := func(name, value string) {
		if value != "" {
			v = append(v, value)
			h[name] = v[len(v)-1 : len(v) : len(v)]
		}
	}
	add(g.headers.principal, id.PrincipalID())
	add(g.headers.keyID, id.KeyID())
	add(g.headers.keyName, id.KeyName())
	add(g.headers.scopes, id.ScopesHeader())
}

var methodValues = [...][]string{
	auth.MethodAnonymous: {"anonymous"},
	auth.MethodKey:       {"key"},
	auth.MethodBasic:     {"basic"},
}

// setForwarded sets X-Forwarded-For/-Proto/-Host: the chain of a trusted peer is kept and
// extended, an untrusted peer's is replaced; Forwarded and X-Real-IP of untrusted peers go.
func (g *Gateway) setForwarded(pr *httputil.ProxyRequest, peer netip.Addr, trusted bool) {
	in, h := pr.In.Header, pr.Out.Header
	ip := ""
	if peer.IsValid() {
		ip = peer.String()
	}
	if trusted {
		if prior := in["X-Forwarded-For"]; len(prior) > 0 {
			h["X-Forwarded-For"] = []string{strings.Join(prior, ", ") + ", " + ip}
		} else {
			h["X-Forwarded-For"] = []string{ip}
		}
		if v := in["X-Forwarded-Proto"]; len(v) > 0 {
			h["X-Forwarded-Proto"] = v
		}
		if v := in["X-Forwarded-Host"]; len(v) > 0 {
			h["X-Forwarded-Host"] = v
		}
		if v := in["Forwarded"]; len(v) > 0 { // ReverseProxy drops it before Rewrite
			h["Forwarded"] = v
		}
	} else {
		h["X-Forwarded-For"] = []string{ip}
		delete(h, "Forwarded")
		delete(h, "X-Real-Ip")
	}
	if _, ok := h["X-Forwarded-Proto"]; !ok {
		if pr.In.TLS != nil {
			h["X-Forwarded-Proto"] = httpsValue
		} else {
			h["X-Forwarded-Proto"] = httpValue
		}
	}
	if _, ok := h["X-Forwarded-Host"]; !ok {
		h["X-Forwarded-Host"] = []string{pr.In.Host}
	}
}

var (
	httpValue  = []string{"http"}
	httpsValue = []string{"https"}
)

// stripPrefix removes prefix from p and keeps the result rooted.
func stripPrefix(p, prefix string) string {
	rest := strings.TrimPrefix(p, strings.TrimSuffix(prefix, "/"))
	if rest == "" || rest[0] != '/' {
		rest = "/" + rest
	}
	return rest
}

// removeQueryParam removes every occurrence of name from a raw query, whether '&'- or
// ';'-separated, and keeps the rest byte for byte.
func removeQueryParam(q, name string) string {
	if !strings.Contains(q, name) {
		return q
	}
	var b strings.Builder
	sep, first := "", true
	for {
		part, next, more := q, "", false
		if i := strings.IndexAny(q, "&;"); i >= 0 {
			part, next, q, more = q[:i], q[i:i+1], q[i+1:], true
		}
		if k, _, _ := strings.Cut(part, "="); k != name {
			if !first {
				b.WriteString(sep)
			}
			b.WriteString(part)
			first = false
		}
		if !more {
			return b.String()
		}
		sep = next
	}
}
