package auth

import (
	"net/http"
	"net/netip"
	"strings"
)

// ClientIP returns the client address of r: the connection's (r.RemoteAddr) unless that is in
// trusted; then the right-most untrusted X-Forwarded-For entry (all lines of the header, in order).
// Walking from the right, an unparsable entry ends the walk and the address examined just before
// it counts (the peer address when there is none). When every entry is trusted, the left-most
// one counts.
//
// Addresses are unmapped (::ffff:1.2.3.4 is 1.2.3.4) and lose any IPv6 zone; a port is
// stripped when present ("1.2.3.4:5", "[::1]:80"), and empty entries are skipped. The result
// is the zero Addr only when r.RemoteAddr cannot be parsed (a Unix socket). ClientIP does
// not allocate.
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := parseAddr(r.RemoteAddr)
	if !peer.IsValid() || !contains(trusted, peer) {
		return peer
	}
	last := peer
	lines := r.Header["X-Forwarded-For"]
	for i := len(lines) - 1; i >= 0; i-- {
		line := lines[i]
		for line != "" {
			entry := line
			if j := strings.LastIndexByte(line, ','); j >= 0 {
				entry, line = line[j+1:], line[:j]
			} else {
				line = ""
			}
			entry = trimOWS(entry)
			if entry == "" {
				continue
			}
			a := parseAddr(entry)
			if !a.IsValid() {
				return last
			}
			if !contains(trusted, a) {
				return a
			}
			last = a
		}
	}
	return last
}

func contains(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseAddr reads an address with or without a port: "1.2.3.4", "1.2.3.4:5", "::1",
// "[::1]", "[::1]:80". It returns the zero Addr when s is none of these. The form is
// chosen before parsing, because a failed netip parse allocates its error.
func parseAddr(s string) netip.Addr {
	host := s
	bracketed := strings.HasPrefix(s, "[")
	if bracketed {
		end := strings.IndexByte(s, ']')
		if end < 0 || !isPort(s[end+1:], true) {
			return netip.Addr{}
		}
		host = s[1:end]
	} else if i := strings.IndexByte(s, ':'); i >= 0 && strings.LastIndexByte(s, ':') == i {
		// One colon: IPv4 with a port (an IPv6 address has at least two).
		if !isPort(s[i:], false) {
			return netip.Addr{}
		}
		host = s[:i]
	}
	a, err := netip.ParseAddr(host)
	if err != nil || bracketed && !a.Is6() { // "[1.2.3.4]" is not an address
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

// isPort reports whether s is ":" followed by 1 to 5 digits, or empty when allowed.
func isPort(s string, emptyOK bool) bool {
	if s == "" {
		return emptyOK
	}
	if s[0] != ':' || len(s) < 2 || len(s) > 6 {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
