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
	var buf [64]byte
	h[HeaderLimit] = []string{string(strconv.AppendInt(buf[:0], d.Limit, 10))}
	h[HeaderRemaining] = []string{string(strconv.AppendInt(buf[:0], d.Remaining, 10))}
	h[HeaderReset] = []string{string(strconv.AppendInt(buf[:0], d.Reset.Unix(), 10))}
	wait := d.secondsToReset()
	if d.Limited {
		h[HeaderRetryAfter] = []string{string(strconv.AppendInt(buf[:0], max(1, wait), 10))}
	}
	if !draft {
		return
	}
	b := append(buf[:0], `"default";q=`...)
	b = strconv.AppendInt(b, d.Limit, 10)
	b = append(b, ";w="...)
	b = strconv.AppendInt(b, int64((d.Period+time.Second-1)/time.Second), 10)
	h[HeaderPolicy] = []string{string(b)}
	b = append(buf[:0], `"default";r=`...)
	b = strconv.AppendInt(b, d.Remaining, 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, max(0, wait), 10)
	h[HeaderRateLimit] = []string{string(b)}
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
