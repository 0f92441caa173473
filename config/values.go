package config

import (
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ulule/limiter/v3"
	"gopkg.in/yaml.v3"
)

// Secret is a configuration value that must never be printed.
type Secret string

func (Secret) String() string               { return "[redacted]" }
func (Secret) GoString() string             { return "[redacted]" }
func (Secret) LogValue() slog.Value         { return slog.StringValue("[redacted]") }
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }

// Reveal returns the secret itself; grep-able in review.
func (s Secret) Reveal() string { return string(s) }

// URL is a parsed URL value (a route's upstream). The zero URL (nil) means "not set";
// Validate reports it where a URL is required.
type URL struct{ *url.URL }

// String returns the URL with any password redacted, or "" when it is not set.
func (u URL) String() string {
	if u.URL == nil {
		return ""
	}
	return u.URL.Redacted()
}

// UnmarshalYAML parses a URL from a scalar. An empty string leaves the URL unset.
// Scheme and host are checked by Validate. Errors are *yaml.TypeError, so that
// decoding goes on and every bad value is reported.
func (u *URL) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return nodeError(n, "want a URL string, got %s", kindName(n))
	}
	if n.Value == "" {
		u.URL = nil
		return nil
	}
	p, err := url.Parse(n.Value)
	if err != nil {
		msg := err.Error()
		if ue, ok := err.(*url.Error); ok {
			msg = ue.Err.Error() // url.Error quotes the whole URL, which may hold a password
		}
		return nodeError(n, "not a valid URL: %s", msg)
	}
	u.URL = p
	return nil
}

// MarshalYAML writes the URL as a string (with its password, so that a generated
// file loads again).
func (u URL) MarshalYAML() (any, error) {
	if u.URL == nil {
		return "", nil
	}
	return u.URL.String(), nil
}

// Rates is a rate field: one limiter rate string ("100-M") or a list of them.
// Every rate of the list applies; no two rates of one list share a period.
type Rates []limiter.Rate

// ParseRate parses one rate, "N-P" with N a positive integer without sign or leading
// zero and P one of S, M, H, D (second, minute, hour, day). It is stricter than
// limiter.NewRateFromFormatted, which also lets "0-M", "+5-M" and "5-m" through. The
// error quotes the bad value.
func ParseRate(s string) (limiter.Rate, error) {
	if !validRate(s) {
		return limiter.Rate{}, fmt.Errorf("invalid rate %q: want N-S, N-M, N-H or N-D with N a positive integer (e.g. \"100-M\")", s)
	}
	r, err := limiter.NewRateFromFormatted(s)
	if err != nil {
		return limiter.Rate{}, fmt.Errorf("invalid rate %q: limit out of range", s)
	}
	return r, nil
}

// validRate reports whether s matches ^[1-9][0-9]*-[SMHD]$.
func validRate(s string) bool {
	n, p, ok := strings.Cut(s, "-")
	if !ok || len(n) == 0 || n[0] < '1' || n[0] > '9' || len(p) != 1 || !strings.Contains("SMHD", p) {
		return false
	}
	for i := 1; i < len(n); i++ {
		if n[i] < '0' || n[i] > '9' {
			return false
		}
	}
	return true
}

// ParseRates parses a list of rates with ParseRate. An empty list gives no rates; an
// empty string in the list is an error, and so are two rates with the same period
// (they would share one counter).
func ParseRates(ss []string) (Rates, error) {
	if len(ss) == 0 {
		return nil, nil
	}
	rs := make(Rates, 0, len(ss))
	for _, s := range ss {
		r, err := ParseRate(s)
		if err != nil {
			return nil, err
		}
		for _, prev := range rs {
			if prev.Period == r.Period {
				return nil, fmt.Errorf("rates %q and %q have the same period: give one rate per period", prev.Formatted, s)
			}
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// Strings returns the rates in their "N-P" form.
func (r Rates) Strings() []string {
	if r == nil {
		return nil
	}
	out := make([]string, len(r))
	for i, rate := range r {
		out[i] = formatRate(rate)
	}
	return out
}

func formatRate(r limiter.Rate) string {
	if r.Formatted != "" {
		return r.Formatted
	}
	p := ""
	switch r.Period {
	case time.Second:
		p = "S"
	case time.Minute:
		p = "M"
	case time.Hour:
		p = "H"
	case 24 * time.Hour:
		p = "D"
	default:
		return strconv.FormatInt(r.Limit, 10) + "/" + r.Period.String()
	}
	return strconv.FormatInt(r.Limit, 10) + "-" + p
}

// UnmarshalYAML accepts a rate string, an empty string (no rates), or a list of rate
// strings. Errors are *yaml.TypeError, one per bad rate, so that decoding goes on.
func (r *Rates) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Value == "" {
			*r = nil
			return nil
		}
		rate, err := ParseRate(n.Value)
		if err != nil {
			return nodeError(n, "%v", err)
		}
		*r = Rates{rate}
		return nil
	case yaml.SequenceNode:
		var errs []string
		rs := make(Rates, 0, len(n.Content))
		first := map[time.Duration]string{}
		for _, e := range n.Content {
			e = resolveAlias(e)
			if e.Kind != yaml.ScalarNode {
				errs = append(errs, nodeMsg(e, "want a rate string, got %s", kindName(e)))
				continue
			}
			rate, err := ParseRate(e.Value)
			if err != nil {
				errs = append(errs, nodeMsg(e, "%v", err))
				continue
			}
			if prev, dup := first[rate.Period]; dup {
				errs = append(errs, nodeMsg(e, "rates %q and %q have the same period: give one rate per period", prev, e.Value))
				continue
			}
			first[rate.Period] = e.Value
			rs = append(rs, rate)
		}
		if errs != nil {
			return &yaml.TypeError{Errors: errs}
		}
		*r = rs
		return nil
	default:
		return nodeError(n, "want a rate string or a list of them, got %s", kindName(n))
	}
}

// MarshalYAML writes one rate as a string and several as a list.
func (r Rates) MarshalYAML() (any, error) {
	switch len(r) {
	case 0:
		return "", nil
	case 1:
		return formatRate(r[0]), nil
	}
	return r.Strings(), nil
}

// Prefixes is a list of CIDRs (trusted_proxies). A bare address is taken as a
// single-address prefix; host bits are masked off.
type Prefixes []netip.Prefix

// ParsePrefix parses a CIDR ("10.0.0.0/8") or a bare address ("10.1.2.3", taken as /32
// or /128), with host bits masked off.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid CIDR %q", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("invalid CIDR %q", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// UnmarshalYAML accepts a list of CIDR strings (or one string). Errors are
// *yaml.TypeError, one per bad entry, so that decoding goes on.
func (p *Prefixes) UnmarshalYAML(n *yaml.Node) error {
	var elems []*yaml.Node
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Value == "" {
			*p = nil
			return nil
		}
		elems = []*yaml.Node{n}
	case yaml.SequenceNode:
		elems = n.Content
	default:
		return nodeError(n, "want a list of CIDRs, got %s", kindName(n))
	}
	var errs []string
	out := make(Prefixes, 0, len(elems))
	for _, e := range elems {
		e = resolveAlias(e)
		if e.Kind != yaml.ScalarNode {
			errs = append(errs, nodeMsg(e, "want a CIDR string, got %s", kindName(e)))
			continue
		}
		pfx, err := ParsePrefix(e.Value)
		if err != nil {
			errs = append(errs, nodeMsg(e, "%v", err))
			continue
		}
		out = append(out, pfx)
	}
	if errs != nil {
		return &yaml.TypeError{Errors: errs}
	}
	*p = out
	return nil
}

// MarshalYAML writes the prefixes as a list of strings.
func (p Prefixes) MarshalYAML() (any, error) {
	out := make([]string, len(p))
	for i, x := range p {
		out[i] = x.String()
	}
	return out, nil
}

// nodeMsg formats a decode problem at n in the form the loader maps back to a field
// path ("line L column C: msg").
func nodeMsg(n *yaml.Node, format string, args ...any) string {
	return fmt.Sprintf("line %d column %d: ", n.Line, n.Column) + fmt.Sprintf(format, args...)
}

// nodeError is nodeMsg as a *yaml.TypeError, the one error type yaml.v3 decodes past.
func nodeError(n *yaml.Node, format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{nodeMsg(n, format, args...)}}
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// kindName names a node's kind for messages, never its value.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!int", "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		case "!!null":
			return "null"
		}
		return "a string"
	}
	return "an alias"
}
