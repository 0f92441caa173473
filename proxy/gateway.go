package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/ratelimit"
	"github.com/prometheus/client_golang/prometheus"
)

// verifier is what the gateway needs from auth.
type verifier interface {
	Verify(ctx context.Context, c *auth.Credentials, mode auth.Mode, clientIP netip.Addr) (auth.Identity, auth.Result, error)
}

// limiter is what the gateway needs from ratelimit.
type limiter interface {
	Route(rc config.Route) *ratelimit.Route
	Allow(ctx context.Context, rt *ratelimit.Route, id *auth.Identity, clientIP netip.Addr) (ratelimit.Decision, error)
	DraftHeaders() bool
}

// Options configures a Gateway.
type Options struct {
	Config   *config.Config
	Verifier verifier
	// Limiter, when set, applies the rate limits of SPEC §4.
	Limiter limiter
	// SelfService, when set, is served at Config.SelfService.Path as a built-in route
	// with auth required.
	SelfService http.Handler
	// Usage, when set, counts every request admitted with a key.
	Usage interface{ Record(keyID string) }
	// AccessLog, when set, receives the access lines of requests that went well as JSON,
	// written directly (the log's writer, when log.format is json); other lines go to Log.
	AccessLog  io.Writer
	Log        *slog.Logger
	Registerer prometheus.Registerer
}

// Gateway is the public listener's handler.
type Gateway struct {
	routes          routeTable
	verify          verifier
	limits          limiter
	draft           bool
	extract         auth.ExtractOptions
	trusted         []netip.Prefix
	headers         identityHeaders
	wwwAuthenticate []string
	usage           interface{ Record(keyID string) }
	retryBlocked    []string // Retry-After of a caller blocked by auth.failed_attempts
	access          *accessJSON
	log             *slog.Logger
	m               *metrics
	noRoute         requestCounters // keygate_requests_total of requests without a route
	ids             *requestIDs
}

// New builds the Gateway from a validated configuration.
func New(o Options) *Gateway {
	cfg := o.Config
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	g := &Gateway{
		verify: o.Verifier,
		limits: o.Limiter,
		extract: auth.ExtractOptions{
			KeyHeader:     http.CanonicalHeaderKey(cfg.Auth.KeyHeader),
			KeyQueryParam: cfg.Auth.KeyQueryParam,
		},
		trusted:         cfg.TrustedProxies,
		headers:         newIdentityHeaders(cfg.IdentityHeaders),
		wwwAuthenticate: []string{`Basic realm="` + cfg.Auth.Realm + `"`},
		usage:           o.Usage,
		retryBlocked:    []string{strconv.Itoa(longestWindow(cfg.Auth.FailedAttempts))},
		log:             o.Log,
		m:               newMetrics(o.Registerer),
		ids:             newRequestIDs(),
	}
	pool := newBufferPool()
	transports := map[time.Duration]*http.Transport{}
	for _, rc := range cfg.Routes {
		rt := compileRoute(rc)
		timeout := timeoutOr(rc.Timeout, 30*time.Second)
		tr := transports[timeout]
		if tr == nil {
			tr = newTransport(timeout)
			transports[timeout] = tr
		}
		rt.duration = g.m.duration.WithLabelValues(rt.name)
		rt.upstreamMs = g.m.upstream.WithLabelValues(rt.name)
		if g.limits != nil {
			rt.limits = g.limits.Route(rc)
		}
		rt.proxy = &httputil.ReverseProxy{
			Rewrite:      g.rewriter(rt),
			Transport:    timedTransport{next: tr, obs: rt.upstreamMs},
			BufferPool:   pool,
			ErrorHandler: g.upstreamError,
			// keygate's X-Request-Id, set before forwarding, is the one the client gets.
			ModifyResponse: dropUpstreamRequestID,
			ErrorLog:       slog.NewLogLogger(o.Log.Handler(), slog.LevelWarn),
		}
		g.routes = append(g.routes, rt)
	}
	if o.SelfService != nil && cfg.SelfService.Enabled {
		rt := &route{name: "self-service", prefix: cfg.SelfService.Path, mode: auth.ModeRequired, handler: o.SelfService}
		rt.duration = g.m.duration.WithLabelValues(rt.name)
		if g.limits != nil {
			rt.limits = g.limits.Route(config.Route{Name: rt.name, Auth: "required"})
		}
		g.routes = append(g.routes, rt)
	}
	if g.limits != nil {
		g.draft = g.limits.DraftHeaders()
	}
	if o.AccessLog != nil && o.Log.Enabled(context.Background(), slog.LevelInfo) {
		g.access = newAccessJSON(o.AccessLog)
	}
	sortRoutes(g.routes)
	return g
}

// ServeHTTP runs the request path of SPEC §3: path check, route, credentials, scopes,
// limits, forward.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rw := g.begin(w, r)
	defer g.finish(rw, r)

	if !pathAllowed(rawPath(r)) {
		g.fail(rw, errBadPath)
		return
	}
	rt := g.routes.match(r)
	if rt == nil {
		g.fail(rw, errNoRoute)
		return
	}
	rw.route = rt
	if up := r.Header.Get("Upgrade"); up != "" && !strings.EqualFold(up, "websocket") {
		g.fail(rw, errBadUpgrade)
		return
	}
	ctx := r.Context()
	// What is learned lives in rw (already on the heap), not in locals that would escape.
	id := &rw.id
	if rt.mode != auth.ModeNone {
		rw.creds = auth.Extract(r, g.extract)
		var res auth.Result
		var err error
		*id, res, err = g.verify.Verify(ctx, &rw.creds, rt.mode, rw.clientIP)
		rw.creds = auth.Credentials{} // not kept past the check
		rw.result = res
		switch {
		case errors.Is(err, auth.ErrKDFBusy):
			rw.err = err
			rw.Header()["Retry-After"] = oneSecond
			g.fail(rw, errBusy)
			return
		case err != nil:
			rw.err = err
			g.fail(rw, errUnavailable)
			return
		case res == auth.ResultBlocked:
			rw.Header()["Retry-After"] = g.retryAfterBlocked(id.RetryAfter)
			g.fail(rw, errTooManyFailures)
			return
		case res != auth.ResultOK:
			g.fail(rw, errUnauthorized)
			return
		case !id.HasScopes(rt.scopes):
			g.fail(rw, errForbidden)
			return
		}
	}
	if g.limits != nil && rt.limits != nil {
		dec, err := g.limits.Allow(ctx, rt.limits, id, rw.clientIP)
		if err != nil {
			rw.err = err
			g.fail(rw, errLimiterDown)
			return
		}
		dec.SetHeaders(rw.Header(), g.draft)
		rw.limits, rw.draft = dec, g.draft // set again should a 1xx clear the headers
		if dec.Limited {
			g.fail(rw, errRateLimited)
			return
		}
	}
	if id.Method == auth.MethodKey && g.usage != nil {
		g.usage.Record(id.Entry.Key.ID)
	}
	r = r.WithContext(context.WithValue(ctx, recorderKey{}, rw))
	if rt.handler != nil {
		rt.handler.ServeHTTP(rw, r.WithContext(auth.NewContext(r.Context(), id)))
		return
	}
	rt.proxy.ServeHTTP(rw, r)
}

// retryAfterBlocked is the Retry-After of a caller blocked by auth.failed_attempts: the
// seconds until its blocking windows end (wait), rounded up; the longest window when the
// wait is not known.
func (g *Gateway) retryAfterBlocked(wait time.Duration) []string {
	if wait <= 0 {
		return g.retryBlocked
	}
	return []string{strconv.FormatInt(int64((wait+time.Second-1)/time.Second), 10)}
}

// longestWindow is the longest period of rates in whole seconds (at least 1): how long a
// blocked caller may have to wait at most.
func longestWindow(rates config.Rates) int {
	longest := time.Second
	for _, r := range rates {
		longest = max(longest, r.Period)
	}
	return int(longest / time.Second)
}

// rawPath returns the path as the client sent it, still percent-encoded.
func rawPath(r *http.Request) string {
	p := r.RequestURI
	if p == "" || p[0] != '/' { // absolute-form or "*": use the parsed URL
		return r.URL.EscapedPath()
	}
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	return p
}

func (g *Gateway) fail(rw *recorder, e *apiError) {
	g.writeError(rw, e)
}

// upstreamError answers a failed round trip: 504 for a timeout, 502 otherwise.
func (g *Gateway) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	rw, _ := w.(*recorder)
	if rw != nil {
		rw.err = err
	}
	if errors.Is(r.Context().Err(), context.Canceled) {
		w.WriteHeader(499) // the client went away; nobody reads this
		return
	}
	// A connection that could not be made is a dead upstream (502), also when dialing
	// timed out; a timeout after that (the route's response-header timeout) is a 504.
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		g.writeError(w, errBadGateway)
		return
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		g.writeError(w, errTimeout)
		return
	}
	g.writeError(w, errBadGateway)
}

// recorderKey carries the request's recorder, with what the request path learned, from
// ServeHTTP to the Rewrite hook.
type recorderKey struct{}

// dropUpstreamRequestID drops the upstream's X-Request-Id: the client gets keygate's (set
// by begin, and again by the recorder after an interim 1xx response cleared the headers).
func dropUpstreamRequestID(res *http.Response) error {
	delete(res.Header, "X-Request-Id")
	return nil
}
