package proxy

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/ratelimit"
	"github.com/prometheus/client_golang/prometheus"
)

// route is one compiled entry of the route table.
type route struct {
	name         string
	prefix       string
	hosts        []string // lower case, no port; empty: any
	methods      []string // empty: any
	upstream     *url.URL
	strip        bool
	mode         auth.Mode
	scopes       []string
	forwardCreds bool
	preserveHost bool

	limits     *ratelimit.Route // nil: no limiter
	proxy      *httputil.ReverseProxy
	handler    http.Handler // a built-in route (self-service) instead of proxy
	requests   requestCounters
	duration   prometheus.Observer
	upstreamMs prometheus.Observer
}

// routeTable matches requests to routes: longest path prefix first.
type routeTable []*route

// match returns the route of r, or nil.
func (t routeTable) match(r *http.Request) *route {
	path := r.URL.Path
	var host string
	for _, rt := range t {
		if !strings.HasPrefix(path, rt.prefix) {
			continue
		}
		if len(rt.hosts) > 0 {
			if host == "" {
				host = hostOnly(r.Host)
			}
			if !containsFold(rt.hosts, host) {
				continue
			}
		}
		if len(rt.methods) > 0 && !slices.Contains(rt.methods, r.Method) {
			continue
		}
		return rt
	}
	return nil
}

// sortRoutes orders routes longest prefix first; among equal prefixes, the more
// specific (with hosts, with methods) first, then file order.
func sortRoutes(t routeTable) {
	slices.SortStableFunc(t, func(a, b *route) int {
		if d := len(b.prefix) - len(a.prefix); d != 0 {
			return d
		}
		return specificity(b) - specificity(a)
	})
}

func specificity(r *route) int {
	s := 0
	if len(r.hosts) > 0 {
		s += 2
	}
	if len(r.methods) > 0 {
		s++
	}
	return s
}

func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return strings.TrimSuffix(host, ".")
	}
	return strings.TrimSuffix(strings.Trim(h, "[]"), ".")
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

func parseMode(s string) auth.Mode {
	switch s {
	case "optional":
		return auth.ModeOptional
	case "none":
		return auth.ModeNone
	}
	return auth.ModeRequired
}

// compileRoute builds a route from its configuration (already validated).
func compileRoute(rc config.Route) *route {
	rt := &route{
		name:         rc.Name,
		prefix:       rc.Match.PathPrefix,
		methods:      rc.Match.Methods,
		strip:        rc.StripPrefix,
		mode:         parseMode(rc.Auth),
		scopes:       rc.Scopes,
		forwardCreds: rc.ForwardCredentials,
		preserveHost: rc.PreserveHost,
	}
	if rc.Upstream.URL != nil {
		rt.upstream = rc.Upstream.URL
	}
	for _, h := range rc.Match.Hosts {
		rt.hosts = append(rt.hosts, strings.ToLower(hostOnly(h)))
	}
	return rt
}

// timeoutOr returns d, or def when d is not positive.
func timeoutOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
