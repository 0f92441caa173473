package ratelimit

import (
	"net/http"
	"strconv"
	"time"
)

// Header names written by SetHeaders.
const (
	HeaderLimit      = "X-Ratelimit-Limit"
	HeaderRemaining  = "X-Ratelimit-Remaining"
	HeaderReset      = "X-Ratelimit-Reset"
	HeaderRetryAfter = "Retry-After"
	HeaderPolicy     = "Ratelimit-Policy" // IETF draft-11
	HeaderRateLimit  = "Ratelimit"        // IETF draft-11
)

// DraftHeaders reports whether ratelimit.draft_headers is on, for SetHeaders.
func (l *Limiter) DraftHeaders() bool { return l.draft }

// SetHeaders writes X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset (a Unix
// time) for the applying limit with the fewest remaining; when limited, also Retry-After in
// seconds, at least 1. With draft, also the IETF draft-11 fields
// `RateLimit-Policy: "default";q=100;w=60` and `RateLimit: "default";r=42;t=30`. It writes
// nothing when no limit applied.
func (d *Decision) SetHeaders(h http.Header, draft bool) {
	if !d.Applied {
		return
	}
	// One string holds every value and one slice every header's value: two allocations
	// whatever the number of headers.
	var buf [160]byte
	var ends [6]int
	n := 0
	b := strconv.AppendInt(buf[:0], d.Limit, 10)
	ends[n], n = len(b), n+1
	b = strconv.AppendInt(b, d.Remaining, 10)
	ends[n], n = len(b), n+1
	b = strconv.AppendInt(b, d.Reset.Unix(), 10)
	ends[n], n = len(b), n+1
	wait := d.secondsToReset()
	if d.Limited {
		b = strconv.AppendInt(b, max(1, wait), 10)
		ends[n], n = len(b), n+1
	}
	if draft {
		b = append(b, `"default";q=`...)
		b = strconv.AppendInt(b, d.Limit, 10)
		b = append(b, ";w="...)
		b = strconv.AppendInt(b, int64((d.Period+time.Second-1)/time.Second), 10)
		ends[n], n = len(b), n+1
		b = append(b, `"default";r=`...)
		b = strconv.AppendInt(b, d.Remaining, 10)
		b = append(b, ";t="...)
		b = strconv.AppendInt(b, max(0, wait), 10)
		ends[n], n = len(b), n+1
	}
	all := string(b)
	vals := make([]string, n)
	from := 0
	for i := range n {
		vals[i] = all[from:ends[i]]
		from = ends[i]
	}
	i := 0
	next := func(name string) {
		h[name] = vals[i : i+1 : i+1]
		i++
	}
	next(HeaderLimit)
	next(HeaderRemaining)
	next(HeaderReset)
	if d.Limited {
		next(HeaderRetryAfter)
	}
	if draft {
		next(HeaderPolicy)
		next(HeaderRateLimit)
	}
}

// secondsToReset is ceil(Reset - the decision's time) in seconds (may be <= 0).
func (d *Decision) secondsToReset() int64 {
	at := d.at
	if at.IsZero() {
		at = time.Now()
	}
	w := d.Reset.Sub(at)
	s := int64(w / time.Second)
	if w%time.Second > 0 {
		s++
	}
	return s
}

// RetryAfter is the Retry-After value of a limited decision: ceil(Reset - now), at least
// 1 second.
func (d *Decision) RetryAfter() time.Duration {
	return time.Duration(max(1, d.secondsToReset())) * time.Second
}
