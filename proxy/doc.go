// Package proxy is the public listener: the route table, the request path of SPEC §3
// (path check, route, credentials, scopes, limits, forward), the reverse proxy with its
// Rewrite hook, keygate's JSON errors, the access log line and the request metrics.
package proxy
