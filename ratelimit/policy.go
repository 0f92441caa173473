package ratelimit

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/ulule/limiter/v3"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/config"
)

// Bucket kinds, the first part of a bucket's subject.
const (
	kindKey       = "k"  // per key
	kindPrincipal = "p"  // per principal
	kindIP        = "ip" // per client IP (IPv6: per /64)
)

// limit is one rate with the period suffix of its bucket names (":60s").
type limit struct {
	rate   limiter.Rate
	suffix string
}

func compile(rs config.Rates) []limit {
	if len(rs) == 0 {
		return nil
	}
	out := make([]limit, len(rs))
	for i, r := range rs {
		out[i] = limit{rate: r, suffix: periodSuffix(r.Period)}
	}
	return out
}

// periodSuffix is ":" and the period in whole seconds with an "s" ("60s"); the usual
// periods cost no allocation.
func periodSuffix(p time.Duration) string {
	switch p {
	case time.Second:
		return ":1s"
	case time.Minute:
		return ":60s"
	case time.Hour:
		return ":3600s"
	case 24 * time.Hour:
		return ":86400s"
	}
	if p%time.Second == 0 {
		return ":" + strconv.FormatInt(int64(p/time.Second), 10) + "s"
	}
	return ":" + strconv.FormatInt(int64(p), 10) + "ns"
}

// Route is a route's limits and metric series, compiled once by Limiter.Route (its zero
// value is not usable). A nil *Route given to Allow means a route without limits of its own.
type Route struct {
	name string
	// prefix starts the route's bucket names: "r:" and the name with ':' and '%' escaped,
	// and ':', so that no route name can reach into another route's buckets.
	prefix    string
	perCaller []limit // rate_limit: per key, or per principal with password auth
	perIP     []limit // anonymous_rate_limit: per client IP, anonymous callers
	// authNone: credentials are not read on this route, so the caller tier
	// (ratelimit.anonymous) does not apply, only anonymous_rate_limit (SPEC §3).
	authNone bool

	allowed, limited, storeError prometheus.Counter
}

// Name returns the route's name, the route label of keygate_ratelimit_total.
func (rt *Route) Name() string { return rt.name }

// Route compiles a route's limits and resolves its metric series. Call it once per route
// at start-up, not per request.
func (l *Limiter) Route(rc config.Route) *Route {
	esc := strings.NewReplacer("%", "%25", ":", "%3A").Replace(rc.Name)
	return &Route{
		name:       rc.Name,
		prefix:     "r:" + esc + ":",
		perCaller:  compile(rc.RateLimit),
		perIP:      compile(rc.AnonymousRateLimit),
		authNone:   rc.Auth == "none",
		allowed:    l.metrics.decisions.WithLabelValues(rc.Name, resultAllowed),
		limited:    l.metrics.decisions.WithLabelValues(rc.Name, resultLimited),
		storeError: l.metrics.decisions.WithLabelValues(rc.Name, resultStoreError),
	}
}

// Decision is the outcome of Allow for one request.
type Decision struct {
	// Limited: answer 429.
	Limited bool
	// Limit, Remaining and Reset describe the applying limit with the fewest remaining (on
	// a tie, the one that resets last). Reset is rounded up to a whole second: the window
	// has ended by then.
	Limit, Remaining int64
	Reset            time.Time
	// Applied: at least one limit applied, so the rate-limit headers are to be written.
	Applied bool
	// Period is the window of that limit, for the draft headers.
	Period time.Duration

	at time.Time // when the decision was made, for Retry-After
}

// bucket is one counter a request increments.
type bucket struct {
	name string
	rate limiter.Rate
}

// maxBuckets is how many buckets a request usually touches, kept on the stack.
const maxBuckets = 8

// Allow decides one request on route rt (nil: a route without limits of its own) for
// caller id (nil: anonymous) from clientIP. Every limit that applies must allow it, and
// each counts the request even when another denies it.
//
// It returns an error only when the shared store failed and on_store_error is deny (wrapping
// ErrStoreUnavailable: answer 503). With local, the decision falls back to this instance's
// memory limiter with the same rates; with allow, the request is not limited. With the Redis
// store, the whole decision takes at most ratelimit.redis.timeout.
func (l *Limiter) Allow(ctx context.Context, rt *Route, id *auth.Identity, clientIP netip.Addr) (Decision, error) {
	if rt == nil {
		rt = l.noRoute
	}
	var buf [maxBuckets]bucket
	bs := l.buckets(buf[:0], rt, id, clientIP)
	if len(bs) == 0 {
		return Decision{}, nil
	}
	now := l.now()
	if l.client == nil { // memory store
		d, _ := decide(ctx, l.local, bs, now)
		rt.count(d)
		return d, nil
	}
	if st := l.sharedStore(); st != nil {
		d, err := l.decideShared(ctx, st, bs, now)
		if err == nil {
			rt.count(d)
			return d, nil
		}
		if ctx.Err() == nil { // the caller is still there: Redis failed
			l.markDown()
		}
		l.logStoreError(err)
	}
	rt.storeError.Inc()
	switch l.mode {
	case modeAllow:
		return Decision{}, nil
	case modeDeny:
		return Decision{}, ErrStoreUnavailable
	}
	d, _ := decide(ctx, l.local, bs, now)
	return d, nil
}

func (rt *Route) count(d Decision) {
	if d.Limited {
		rt.limited.Inc()
	} else {
		rt.allowed.Inc()
	}
}

// buckets appends the buckets of every limit that applies (SPEC §4 "Limits stack").
func (l *Limiter) buckets(bs []bucket, rt *Route, id *auth.Identity, ip netip.Addr) []bucket {
	method := auth.MethodAnonymous
	if id != nil {
		method = id.Method
	}
	if method == auth.MethodAnonymous {
		if rt.authNone && len(rt.perIP) == 0 || !rt.authNone && len(l.anonymous) == 0 && len(rt.perIP) == 0 {
			return bs
		}
		subject := ipSubject(ip)
		if !rt.authNone {
			bs = appendBuckets(bs, "", kindIP, subject, l.anonymous)
		}
		return appendBuckets(bs, rt.prefix, kindIP, subject, rt.perIP)
	}

	// The caller's own bucket: the key, or the principal with password auth.
	kind, subject := kindKey, id.KeyID()
	if method != auth.MethodKey {
		kind, subject = kindPrincipal, id.PrincipalID()
	}
	// Key and principal rates come with the identity (they may change at any time), so
	// they are not compiled ahead.
	keyRates, principalRates := id.KeyRates(), id.PrincipalRates()
	switch {
	case len(keyRates) == 0 && len(principalRates) == 0:
		bs = appendBuckets(bs, "", kind, subject, l.authenticated)
	default:
		if method == auth.MethodKey {
			bs = appendRates(bs, "", kindKey, subject, keyRates)
		}
		bs = appendRates(bs, "", kindPrincipal, id.PrincipalID(), principalRates)
	}
	return appendBuckets(bs, rt.prefix, kind, subject, rt.perCaller)
}

func appendBuckets(bs []bucket, prefix, kind, subject string, ls []limit) []bucket {
	for _, lm := range ls {
		bs = append(bs, bucket{name: bucketName(prefix, kind, subject, lm.suffix), rate: lm.rate})
	}
	return bs
}

func appendRates(bs []bucket, prefix, kind, subject string, rs config.Rates) []bucket {
	for _, r := range rs {
		bs = append(bs, bucket{name: bucketName(prefix, kind, subject, periodSuffix(r.Period)), rate: r})
	}
	return bs
}

// bucketName is prefix (a route's "r:<route>:", or "" for caller limits), kind, ":",
// subject and the period suffix: "k:<key id>:60s", "r:<route>:ip:<ip>:1s". The period comes
// last and has no ':', and kind and escaped route have none, so names never collide.
func bucketName(prefix, kind, subject, suffix string) string {
	var b strings.Builder
	b.Grow(len(prefix) + len(kind) + 1 + len(subject) + len(suffix))
	b.WriteString(prefix)
	b.WriteString(kind)
	b.WriteByte(':')
	b.WriteString(subject)
	b.WriteString(suffix)
	return b.String()
}

// ipSubject is the client's address (IPv4, or IPv4-mapped IPv6, per address) or its /64
// (other IPv6), so that one IPv6 client cannot spread over its subnet's addresses.
func ipSubject(ip netip.Addr) string {
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// decide increments every bucket in order on st, a store that answers at once (memory),
// and combines the results.
func decide(ctx context.Context, st limiter.Store, bs []bucket, now time.Time) (Decision, error) {
	var d Decision
	for _, b := range bs {
		c, err := st.Increment(ctx, b.name, 1, b.rate)
		if err != nil {
			return Decision{}, err
		}
		d.merge(c, b.rate.Period)
	}
	d.at = now
	return d, nil
}

// result is one increment's answer from the shared store.
type result struct {
	c      limiter.Context
	period time.Duration
	err    error
}

// decideShared increments every bucket on st at once and waits for all of them at most
// l.timeout in total. It returns as soon as the deadline passes, whatever the client does.
func (l *Limiter) decideShared(ctx context.Context, st limiter.Store, bs []bucket, now time.Time) (Decision, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	if len(bs) == 1 { // the common case: no goroutine; the client honours ctx's deadline
		c, err := st.Increment(ctx, bs[0].name, 1, bs[0].rate)
		if err != nil {
			return Decision{}, err
		}
		var d Decision
		d.merge(c, bs[0].rate.Period)
		d.at = now
		return d, nil
	}
	results := make(chan result, len(bs)) // buffered: a late answer never blocks its sender
	for _, b := range bs {
		go func() {
			c, err := st.Increment(ctx, b.name, 1, b.rate)
			results <- result{c: c, period: b.rate.Period, err: err}
		}()
	}
	var d Decision
	for range bs {
		select {
		case r := <-results:
			if r.err != nil {
				return Decision{}, r.err
			}
			d.merge(r.c, r.period)
		case <-ctx.Done():
			return Decision{}, ctx.Err()
		}
	}
	d.at = now
	return d, nil
}

// merge folds one limit's answer into d: limited if any limit is reached (count > limit:
// the request that makes count == limit is still allowed), and the headers of the limit
// with the fewest remaining, the later reset on a tie.
func (d *Decision) merge(c limiter.Context, period time.Duration) {
	reset := time.Unix(c.Reset+1, 0) // Reset is the window's end truncated to a second
	if c.Reached {
		d.Limited = true
	}
	if !d.Applied || c.Remaining < d.Remaining || c.Remaining == d.Remaining && reset.After(d.Reset) {
		d.Limit, d.Remaining, d.Reset, d.Period = c.Limit, c.Remaining, reset, period
	}
	d.Applied = true
}
