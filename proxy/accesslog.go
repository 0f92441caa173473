package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/ratelimit"
	"github.com/prometheus/client_golang/prometheus"
)

// recorder wraps the ResponseWriter of one request: it records the status for the access
// log and metrics, and carries what the request path learned.
type recorder struct {
	http.ResponseWriter
	status      int
	written     int64
	start       time.Time
	requestID   string
	limits      ratelimit.Decision // the rate-limit decision whose headers were set
	draft       bool
	idValue     []string   // requestID as a header value, shared by the response and upstream
	peer        netip.Addr // the connection's address
	trustedPeer bool
	clientIP    netip.Addr
	route       *route
	id          auth.Identity
	creds       auth.Credentials // during the credential check only
	result      auth.Result
	err         error
}

func (rw *recorder) WriteHeader(code int) {
	if rw.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) { // 1xx are interim
		rw.status = code
		if h := rw.ResponseWriter.Header(); h["X-Request-Id"] == nil { // cleared after a 1xx
			h["X-Request-Id"] = rw.idValue
			rw.limits.SetHeaders(h, rw.draft) // nothing when no limit applied
		}
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *recorder) Write(b []byte) (int, error) {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	n, err := rw.ResponseWriter.Write(b)
	rw.written += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach Flush and Hijack (SSE, WebSocket).
func (rw *recorder) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// requestIDValue returns the request id as a header value.
func (rw *recorder) requestIDValue() []string { return rw.idValue }

// begin starts the bookkeeping of a request.
func (g *Gateway) begin(w http.ResponseWriter, r *http.Request) *recorder {
	rw := &recorder{ResponseWriter: w, start: time.Now()}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		rw.peer = ap.Addr().Unmap().WithZone("")
	}
	rw.trustedPeer = inPrefixes(g.trusted, rw.peer)
	rw.clientIP = rw.peer
	if rw.trustedPeer {
		rw.clientIP = auth.ClientIP(r, g.trusted)
	}
	if id := r.Header.Get("X-Request-Id"); rw.trustedPeer && validRequestID(id) {
		rw.requestID = id
	} else {
		rw.requestID = g.ids.next()
	}
	rw.idValue = []string{rw.requestID}
	w.Header()["X-Request-Id"] = rw.idValue
	return rw
}

// finish writes the access log line and the request metrics.
func (g *Gateway) finish(rw *recorder, r *http.Request) {
	d := time.Since(rw.start)
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	name := ""
	counters := &g.noRoute
	if rw.route != nil {
		name = rw.route.name
		counters = &rw.route.requests
		rw.route.duration.Observe(d.Seconds())
	}
	counters.get(g.m.requests, name, r.Method, rw.status).Inc()
	if rw.err == nil && g.access != nil {
		g.access.write(rw, r.Method, name, d)
		return
	}
	attrs := [...]slog.Attr{
		slog.String("request_id", rw.requestID),
		slog.String("route", name),
		slog.String("method", r.Method),
		slog.Int("status", rw.status),
		slog.Duration("duration", d),
		slog.String("client_ip", addrString(rw.clientIP)),
		slog.String("principal", rw.id.PrincipalID()),
		slog.String("key_id", entryKeyID(&rw.id)),
		slog.String("auth", rw.result.String()),
		slog.Int64("bytes", rw.written),
	}
	if rw.err != nil {
		g.log.LogAttrs(r.Context(), slog.LevelWarn, "request", append(attrs[:], slog.String("error", rw.err.Error()))...)
		return
	}
	g.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs[:]...)
}

// entryKeyID returns the id of the key a request presented, also when it was refused
// (revoked, expired), for the log.
func entryKeyID(id *auth.Identity) string {
	if id.Entry != nil && id.Method == auth.MethodKey {
		return id.Entry.Key.ID
	}
	return ""
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func inPrefixes(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// validRequestID accepts 1–128 visible ASCII characters without spaces or quotes.
func validRequestID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// requestIDs makes unique request ids: a random process prefix and a counter.
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var b [6]byte
	rand.Read(b[:])
	return &requestIDs{prefix: hex.EncodeToString(b[:]) + "-"}
}

func (r *requestIDs) next() string {
	var buf [32]byte
	b := append(buf[:0], r.prefix...)
	b = strconv.AppendUint(b, r.n.Add(1), 36)
	return string(b)
}

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	upstream *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	buckets := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keygate_requests_total",
			Help: "Requests on the public listener by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "keygate_request_duration_seconds", Help: "Time to serve a request, by route.", Buckets: buckets,
		}, []string{"route"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "keygate_upstream_duration_seconds", Help: "Time to the upstream's response headers, by route.", Buckets: buckets,
		}, []string{"route"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.upstream)
	}
	return m
}

var methodLabels = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "OTHER"}

// methodIndex bounds the method label to the standard methods: an index of methodLabels.
func methodIndex(m string) int {
	for i, l := range methodLabels[:len(methodLabels)-1] {
		if m == l {
			return i
		}
	}
	return len(methodLabels) - 1
}

// requestCounters caches a route's keygate_requests_total series by method and status, so
// that counting a request does not hash its labels.
type requestCounters struct {
	c [len(methodLabels)][600]atomic.Pointer[prometheus.Counter]
}

func (rc *requestCounters) get(vec *prometheus.CounterVec, route, method string, status int) prometheus.Counter {
	m := methodIndex(method)
	if status < 0 || status >= 600 {
		return vec.WithLabelValues(route, methodLabels[m], codeLabel(status))
	}
	if p := rc.c[m][status].Load(); p != nil {
		return *p
	}
	c := vec.WithLabelValues(route, methodLabels[m], codeLabel(status))
	rc.c[m][status].Store(&c)
	return c
}

var codeLabels = func() (l [600]string) {
	for i := range l {
		l[i] = strconv.Itoa(i)
	}
	return l
}()

func codeLabel(c int) string {
	if c >= 0 && c < len(codeLabels) {
		return codeLabels[c]
	}
	return "other"
}
