// Package ratelimit allows or denies one caller on one route (SPEC §4). It owns the policy
// (caller limits: key and principal, else the global default; route limits; the anonymous
// tier; every limit that applies must allow), bucket names (kind, subject, route, period),
// the stores (memory, or Redis built lazily so that keygate starts without it), the
// on_store_error behaviour, the failed-attempt limiter, the X-RateLimit-* and Retry-After
// headers, readiness, and keygate_ratelimit_total.
//
// It returns facts (a Decision) and never writes a response or an access log line: that is
// the proxy's job. Counting is github.com/ulule/limiter/v3's, one limiter per rate.
package ratelimit
