package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/keystore"
)

// Options are what the admin API needs. The zero value of every field but Store works:
// no tokens (every /v1/ request is 401), no /metrics (404), no readiness checks (always
// ready), no eviction callback, a discarding logger, time.Now.
type Options struct {
	// Store holds principals and keys.
	Store keystore.Store
	// Tokens are the admin bearer tokens; "admin:" and a token's Name is the actor in the
	// audit log and in logs. Tokens with an empty secret are ignored.
	Tokens []config.AdminToken
	// Keys gives the key prefix, keys.max_per_principal, keys.default_ttl and keys.max_ttl.
	Keys config.Keys
	// Hasher hashes new keys (keys.secret).
	Hasher *keystore.Hasher
	// Gatherer is served at /metrics; nil: /metrics is 404.
	Gatherer prometheus.Gatherer
	// Checks are the dependencies /readyz asks, by name ("store", "redis").
	Checks map[string]Readiness
	// Evicted is called after every successful write that can deny access (changing or
	// revoking a key; changing, disabling or deleting a principal, also its password),
	// so that this process's caches (keys, password checks) forget at once rather than
	// when the store's Watch reports the change.
	Evicted func(keystore.Change)
	// Log receives one info line per admin write (with the actor's token name, never
	// the token) and the errors behind 500s.
	Log *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Readiness is a dependency that /readyz asks: Ready returns an error when it cannot
// serve. Satisfied by keystore.Store and the rate limiter.
type Readiness interface {
	Ready(ctx context.Context) error
}

// API is the admin listener's handler. Build it with New; it is safe for concurrent use.
type API struct {
	base
	tokens   []adminToken
	checks   map[string]Readiness
	mux      *http.ServeMux
	readyLog readyLog
}

// base is what the admin API and the self-service handler share: the store, the key
// settings, the clock, the log and the eviction callback, and with them the one way to
// create or revoke a key, log a write and answer an error.
type base struct {
	store   keystore.Store
	keys    config.Keys
	format  keystore.Format
	hasher  *keystore.Hasher
	evicted func(keystore.Change)
	log     *slog.Logger
	now     func() time.Time
	// event names the info line of a successful write ("admin write").
	event string
}

func newBase(store keystore.Store, keys config.Keys, hasher *keystore.Hasher,
	evicted func(keystore.Change), log *slog.Logger, now func() time.Time, event string) base {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return base{
		store:   store,
		keys:    keys,
		format:  keystore.Format{Prefix: keys.Prefix},
		hasher:  hasher,
		evicted: evicted,
		log:     log,
		now:     now,
		event:   event,
	}
}

// adminToken is a configured token, kept as its SHA-256 so that every comparison is of
// equal length and constant time.
type adminToken struct {
	name string
	sum  [sha256.Size]byte
}

// readyTimeout bounds each dependency check of /readyz.
const readyTimeout = 2 * time.Second

// New returns the admin API for o. It does not check the store; /readyz does.
func New(o Options) *API {
	a := &API{
		base:   newBase(o.Store, o.Keys, o.Hasher, o.Evicted, o.Log, o.Now, "admin write"),
		checks: o.Checks,
	}
	for _, t := range o.Tokens {
		if t.Token.Reveal() == "" {
			continue
		}
		a.tokens = append(a.tokens, adminToken{name: t.Name, sum: sha256.Sum256([]byte(t.Token.Reveal()))})
	}
	a.readyLog.last = make(map[string]time.Time)

	m := http.NewServeMux()
	m.HandleFunc("GET /healthz", a.healthz)
	m.HandleFunc("GET /readyz", a.readyz)
	if o.Gatherer != nil {
		m.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}))
	}

	// Every /v1/ route, with its methods; the method-less pattern of each path answers
	// 405 JSON for the others.
	v1 := []struct {
		path    string
		methods map[string]http.HandlerFunc
	}{
		{"/v1/principals", map[string]http.HandlerFunc{
			"POST": a.createPrincipal, "GET": a.listPrincipals}},
		{"/v1/principals/{id}", map[string]http.HandlerFunc{
			"GET": a.getPrincipal, "PATCH": a.updatePrincipal, "DELETE": a.deletePrincipal}},
		{"/v1/principals/{id}/keys", map[string]http.HandlerFunc{
			"POST": a.createKey, "GET": a.listKeys}},
		{"/v1/keys/{key_id}", map[string]http.HandlerFunc{
			"GET": a.getKey, "PATCH": a.updateKey, "DELETE": a.revokeKey}},
		{"/v1/audit", map[string]http.HandlerFunc{
			"GET": a.listAudit}},
	}
	for _, rt := range v1 {
		var allow []string
		for method, h := range rt.methods {
			m.Handle(method+" "+rt.path, a.authed(h))
			allow = append(allow, method)
			if method == "GET" {
				allow = append(allow, "HEAD")
			}
		}
		m.Handle(rt.path, a.authed(methodNotAllowed(allow)))
	}
	m.Handle("/v1/", a.authed(http.HandlerFunc(notFound)))
	m.HandleFunc("/", notFound)
	a.mux = m
	return a
}

// ServeHTTP serves the admin listener.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mux.ServeHTTP(w, r)
}

// authed requires a bearer token matching one of the configured tokens, and runs h with
// the actor "admin:<token name>" in the request context (keystore.WithActor), so that
// every store write it makes is audited under that name and every log line names it.
func (a *API) authed(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		name, ok := a.matchToken(r.Header.Values("Authorization"))
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="keygate-admin"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "a valid admin bearer token is required")
			return
		}
		h.ServeHTTP(w, r.WithContext(keystore.WithActor(r.Context(), "admin:"+name)))
	})
}

// matchToken compares the presented bearer token with every configured token in
// constant time (no early exit, so timing tells neither which token matched nor how
// much of one did) and returns the matched token's name.
func (a *API) matchToken(values []string) (string, bool) {
	if len(values) != 1 {
		return "", false
	}
	scheme, tok, ok := strings.Cut(values[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimLeft(tok, " ")
	if tok == "" {
		return "", false
	}
	sum := sha256.Sum256([]byte(tok))
	found, idx := 0, 0
	for i := range a.tokens {
		eq := subtle.ConstantTimeCompare(sum[:], a.tokens[i].sum[:])
		idx = subtle.ConstantTimeSelect(eq, i, idx)
		found |= eq
	}
	if found != 1 {
		return "", false
	}
	return a.tokens[idx].name, true
}

// logWrite records one successful write, with the actor of the request's context.
func (b *base) logWrite(r *http.Request, action string, attrs ...slog.Attr) {
	attrs = append([]slog.Attr{
		slog.String("action", action),
		slog.String("actor", keystore.ActorFrom(r.Context())),
	}, attrs...)
	b.log.LogAttrs(r.Context(), slog.LevelInfo, b.event, attrs...)
}

// evict reports a change that can deny access.
func (b *base) evict(c keystore.Change) {
	if b.evicted != nil {
		b.evicted(c)
	}
}

// readyLog limits failing-dependency log lines to one per dependency every readyLogEvery.
type readyLog struct {
	mu   sync.Mutex
	last map[string]time.Time
}

const readyLogEvery = 10 * time.Second

func (l *readyLog) allow(dep string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.last[dep]; ok && now.Sub(t) < readyLogEvery {
		return false
	}
	l.last[dep] = now
	return true
}
