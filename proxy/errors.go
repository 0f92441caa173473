package proxy

import (
	"net/http"
	"strconv"
)

// apiError is one of keygate's own JSON error answers.
type apiError struct {
	status int
	code   string
	body   []byte // {"error":{"code":...,"message":...}}
}

func newAPIError(status int, code, msg string) *apiError {
	return &apiError{status: status, code: code,
		body: []byte(`{"error":{"code":"` + code + `","message":` + strconv.Quote(msg) + `}}` + "\n")}
}

// The errors of the request path. The 401 body is the same whatever the reason.
var (
	errBadPath         = newAPIError(http.StatusBadRequest, "bad_request", "the request path is not allowed")
	errBadUpgrade      = newAPIError(http.StatusBadRequest, "bad_request", "only websocket upgrades are allowed")
	errUnauthorized    = newAPIError(http.StatusUnauthorized, "unauthorized", "missing or invalid credentials")
	errForbidden       = newAPIError(http.StatusForbidden, "forbidden", "the credentials do not hold the scopes this route requires")
	errNoRoute         = newAPIError(http.StatusNotFound, "not_found", "no route matches the request")
	errUnavailable     = newAPIError(http.StatusServiceUnavailable, "unavailable", "the credentials cannot be checked right now")
	errRateLimited     = newAPIError(http.StatusTooManyRequests, "rate_limited", "rate limit exceeded")
	errTooManyFailures = newAPIError(http.StatusTooManyRequests, "rate_limited", "too many failed authentication attempts")
	errBusy            = newAPIError(http.StatusServiceUnavailable, "unavailable", "too many password checks at once; retry shortly")
	errLimiterDown     = newAPIError(http.StatusServiceUnavailable, "unavailable", "the rate limit cannot be checked right now")
	errBadGateway      = newAPIError(http.StatusBadGateway, "bad_gateway", "the upstream did not answer")
	errTimeout         = newAPIError(http.StatusGatewayTimeout, "gateway_timeout", "the upstream did not answer in time")
)

// writeError writes e as JSON; a 401 carries WWW-Authenticate with the realm.
func (g *Gateway) writeError(w http.ResponseWriter, e *apiError) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Cache-Control"] = noStore
	h["X-Content-Type-Options"] = nosniff
	if e.status == http.StatusUnauthorized {
		h["Www-Authenticate"] = g.wwwAuthenticate
	}
	w.WriteHeader(e.status)
	w.Write(e.body)
}

var (
	oneSecond       = []string{"1"}
	jsonContentType = []string{"application/json"}
	noStore         = []string{"no-store"}
	nosniff         = []string{"nosniff"}
)
