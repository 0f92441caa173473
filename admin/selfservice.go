package admin

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/keystore"
)

// DefaultSelfServicePath is where SelfService serves when SelfServiceOptions.Path is empty
// (self_service.path).
const DefaultSelfServicePath = "/keygate/v1/keys"

// SelfServiceOptions are what the self-service handler needs. The zero value of every
// field but Store and Hasher works.
type SelfServiceOptions struct {
	// Store holds principals and keys.
	Store keystore.Store
	// Keys gives the key prefix, keys.max_per_principal, keys.default_ttl and keys.max_ttl.
	Keys config.Keys
	// Hasher hashes new keys (keys.secret).
	Hasher *keystore.Hasher
	// Path is self_service.path, without a trailing "/": the handler sees full request
	// paths (the proxy does not strip it) and serves POST and GET on Path and DELETE on
	// Path/{key_id}. It must be a plain path (no "{", "}" or "..."). Default:
	// DefaultSelfServicePath.
	Path string
	// Realm is sent in WWW-Authenticate when a request reaches the handler without an
	// identity (the proxy's required auth normally answers first). Default: "keygate".
	Realm string
	// Evicted is called after a key is revoked, so that this process's key cache forgets
	// it at once.
	Evicted func(keystore.Change)
	// Log receives one info line per write (actor "self:<principal id>") and the errors
	// behind 500s.
	Log *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// selfService is the handler SelfService returns.
type selfService struct {
	base
	realm string
	mux   *http.ServeMux
}

// SelfService returns the handler of SPEC §6, for the proxy to mount at o.Path as a
// built-in route with auth required: it reads the caller with auth.FromContext. Only a
// principal's id:password Basic credentials may use it (a key cannot mint keys: 403).
// POST {Path} creates a key of the caller (rate_limit may not be set: 400), GET {Path}
// lists the caller's active keys, DELETE {Path}/{key_id} revokes one (another
// principal's key: 404). Bodies, limits and errors are those of the admin API, and every
// write is audited with the actor "self:<principal id>". It panics when o.Path is not a
// valid http.ServeMux path (a start-up error).
func SelfService(o SelfServiceOptions) http.Handler {
	path := strings.TrimRight(o.Path, "/")
	if o.Path == "" {
		path = DefaultSelfServicePath
	}
	s := &selfService{
		base:  newBase(o.Store, o.Keys, o.Hasher, o.Evicted, o.Log, o.Now, "self-service write"),
		realm: o.Realm,
	}
	if s.realm == "" {
		s.realm = "keygate"
	}
	m := http.NewServeMux()
	m.Handle("POST "+path, s.authed(s.createKey))
	m.Handle("GET "+path, s.authed(s.listKeys))
	m.Handle("DELETE "+path+"/{key_id}", s.authed(s.revokeKey))
	m.Handle(path, methodNotAllowed([]string{"GET", "HEAD", "POST"}))
	m.Handle(path+"/{key_id}", methodNotAllowed([]string{"DELETE"}))
	m.HandleFunc("/", notFound)
	s.mux = m
	return s
}

func (s *selfService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// authed admits only a principal authenticated with id:password and runs h with the
// principal's id and the actor "self:<id>" in the context.
func (s *selfService) authed(h func(http.ResponseWriter, *http.Request, string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		id := auth.FromContext(r.Context())
		switch {
		case id == nil || id.PrincipalID() == "":
			w.Header().Set("WWW-Authenticate", `Basic realm="`+s.realm+`"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "credentials are required")
			return
		case id.Method != auth.MethodBasic:
			writeError(w, http.StatusForbidden, "forbidden",
				"keys are managed with the principal's id:password Basic credentials, not with a key")
			return
		}
		pid := id.PrincipalID()
		h(w, r.WithContext(keystore.WithActor(r.Context(), "self:"+pid)), pid)
	})
}

// errSelfRateLimit answers a rate_limit in a self-service create (SPEC §4, §6).
var errSelfRateLimit = &keystore.FieldError{Field: "rate_limit",
	Msg: "cannot be set through self-service; an operator sets it with the admin API or the CLI"}

func (s *selfService) createKey(w http.ResponseWriter, r *http.Request, pid string) {
	var req createKeyReq
	if err := decode(w, r, &req); err != nil {
		s.fail(w, r, "key", err)
		return
	}
	if req.RateLimit.Set {
		s.fail(w, r, "key", errSelfRateLimit)
		return
	}
	k, plain, err := s.base.createKey(r.Context(), pid, &req)
	if err != nil {
		s.fail(w, r, "principal", err)
		return
	}
	s.logWrite(r, "key.create", slog.String("principal_id", k.PrincipalID),
		slog.String("key_id", k.ID), slog.String("key_prefix", k.Prefix))
	writeJSON(w, http.StatusCreated, createdKeyJSON{KeyJSON: KeyOut(&k), Key: plain})
}

// listKeys lists the caller's active keys (?limit=&cursor=), never a plaintext or hash.
func (s *selfService) listKeys(w http.ResponseWriter, r *http.Request, pid string) {
	limit, err := queryLimit(r)
	if err != nil {
		s.fail(w, r, "key", err)
		return
	}
	ks, next, err := s.store.ListKeys(r.Context(), pid, keystore.ListOptions{
		Limit: limit, Cursor: r.URL.Query().Get("cursor"),
	})
	if err != nil {
		s.fail(w, r, "principal", err)
		return
	}
	writeJSON(w, http.StatusOK, ListOf(ks, KeyOut, next))
}

// revokeKey revokes one of the caller's keys. Another principal's key is 404, as an
// unknown one is, so that key ids of others cannot be probed.
func (s *selfService) revokeKey(w http.ResponseWriter, r *http.Request, pid string) {
	id, err := keyID(r)
	if err != nil {
		s.fail(w, r, "key", err)
		return
	}
	k, err := s.store.GetKey(r.Context(), id)
	if err == nil && k.PrincipalID != pid {
		err = keystore.ErrNotFound
	}
	if err == nil {
		k, err = s.revoke(r, id)
	}
	if err != nil {
		s.fail(w, r, "key", err)
		return
	}
	writeJSON(w, http.StatusOK, KeyOut(&k))
}
