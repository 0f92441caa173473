package admin

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/keygate/keygate/keystore"
)

// keyJSON is a key as the admin API shows it: never the plaintext or the hash.
type keyJSON struct {
	ID          string            `json:"id"`
	PrincipalID string            `json:"principal_id"`
	Name        string            `json:"name"`
	Prefix      string            `json:"prefix"`
	Scopes      []string          `json:"scopes"`
	RateLimit   any               `json:"rate_limit"`
	Metadata    map[string]string `json:"metadata"`
	Legacy      bool              `json:"legacy"`
	CreatedAt   *string           `json:"created_at"`
	ExpiresAt   *string           `json:"expires_at"`
	RevokedAt   *string           `json:"revoked_at"`
	LastUsedAt  *string           `json:"last_used_at"`
	UsageCount  int64             `json:"usage_count"`
}

// createdKeyJSON is the create response: the record and, only here, the plaintext.
type createdKeyJSON struct {
	keyJSON
	Key string `json:"key"`
}

func keyOut(k *keystore.Key) keyJSON {
	return keyJSON{
		ID:          k.ID,
		PrincipalID: k.PrincipalID,
		Name:        k.Name,
		Prefix:      k.Prefix,
		Scopes:      nonNil(k.Scopes),
		RateLimit:   rateOut(k.RateLimit),
		Metadata:    nonNilMap(k.Metadata),
		Legacy:      k.Legacy,
		CreatedAt:   timeOut(&k.CreatedAt),
		ExpiresAt:   timeOut(k.ExpiresAt),
		RevokedAt:   timeOut(k.RevokedAt),
		LastUsedAt:  timeOut(k.LastUsedAt),
		UsageCount:  k.UsageCount,
	}
}

type createKeyReq struct {
	Name      string            `json:"name"`
	Scopes    []string          `json:"scopes"`
	ExpiresAt *string           `json:"expires_at"`
	TTL       *string           `json:"ttl"`
	RateLimit rateLimit         `json:"rate_limit"`
	Metadata  map[string]string `json:"metadata"`
}

func (a *API) createKey(w http.ResponseWriter, r *http.Request) {
	var req createKeyReq
	if err := decode(w, r, &req); err != nil {
		a.fail(w, r, "key", err)
		return
	}
	var (
		expires *time.Time
		expErr  error
	)
	if req.ExpiresAt != nil {
		at, err := time.Parse(time.RFC3339, *req.ExpiresAt)
		if err != nil {
			expErr = &keystore.FieldError{Field: "expires_at", Msg: fmt.Sprintf("must be an RFC 3339 time such as \"2030-01-31T00:00:00Z\", got %q", *req.ExpiresAt)}
		} else {
			expires = &at
		}
	}
	if expErr == nil {
		expires, expErr = keystore.KeyExpiry(a.now(), expires, req.TTL, a.keys.DefaultTTL, a.keys.MaxTTL)
	}
	if err := validationErrors(
		keystore.ValidateName("name", req.Name),
		keystore.ValidateScopes("scopes", req.Scopes),
		keystore.ValidateRates("rate_limit", req.RateLimit.Rates),
		keystore.ValidateMetadata("metadata", req.Metadata),
		expErr,
	); err != nil {
		a.fail(w, r, "key", err)
		return
	}

	ctx := r.Context()
	p, err := a.store.GetPrincipal(ctx, r.PathValue("id"))
	if err != nil {
		a.fail(w, r, "principal", err)
		return
	}
	if p.Disabled() {
		a.fail(w, r, "principal", keystore.ErrDisabled)
		return
	}
	if err := keystore.CheckKeyScopes("scopes", req.Scopes, p.Scopes); err != nil {
		a.fail(w, r, "key", err)
		return
	}

	k, plain, err := keystore.NewKey(a.format, a.hasher, p.ID, req.Name)
	if err != nil {
		a.fail(w, r, "key", err)
		return
	}
	k.Scopes = req.Scopes
	k.RateLimit = req.RateLimit.Rates
	k.Metadata = req.Metadata
	k.ExpiresAt = expires
	if err := a.store.CreateKey(ctx, &k, a.keys.MaxPerPrincipal); err != nil {
		// ErrNotFound and ErrDisabled here are about the principal.
		a.fail(w, r, "principal", err)
		return
	}
	a.logWrite(r, "key.create", slog.String("principal_id", k.PrincipalID),
		slog.String("key_id", k.ID), slog.String("key_prefix", k.Prefix))
	w.Header().Set("Location", "/v1/keys/"+k.ID)
	writeJSON(w, http.StatusCreated, createdKeyJSON{keyJSON: keyOut(&k), Key: plain})
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := queryLimit(r)
	if err != nil {
		a.fail(w, r, "key", err)
		return
	}
	includeRevoked := false
	if s := q.Get("include_revoked"); s != "" {
		if includeRevoked, err = strconv.ParseBool(s); err != nil {
			a.fail(w, r, "key", badRequestf("include_revoked: must be true or false, got %q", s))
			return
		}
	}
	ctx := r.Context()
	id := r.PathValue("id")
	if _, err := a.store.GetPrincipal(ctx, id); err != nil {
		a.fail(w, r, "principal", err)
		return
	}
	ks, next, err := a.store.ListKeys(ctx, id, keystore.ListOptions{
		Limit: limit, Cursor: q.Get("cursor"), IncludeRevoked: includeRevoked,
	})
	if err != nil {
		a.fail(w, r, "key", err)
		return
	}
	out := make([]keyJSON, len(ks))
	for i := range ks {
		out[i] = keyOut(&ks[i])
	}
	writeJSON(w, http.StatusOK, listOut(out, next))
}

// keyID returns the {key_id} path value, or a 400 error when it is not a UUID, so that
// no store call is made for it.
func keyID(r *http.Request) (string, error) {
	id := r.PathValue("key_id")
	return id, keystore.ValidateKeyID("key_id", id)
}

func (a *API) getKey(w http.ResponseWriter, r *http.Request) {
	id, err := keyID(r)
	if err != nil {
		a.fail(w, r, "key", err)
		return
	}
	k, err := a.store.GetKey(r.Context(), id)
	if err != nil {
		a.fail(w, r, "key", err)
		return
	}
	writeJSON(w, http.StatusOK, keyOut(&k))
}

// updateKey answers 501: keystore.Store has no UpdateKey yet.
func (a *API) updateKey(w http.ResponseWriter, r *http.Request) {
	if _, err := keyID(r); err != nil {
		a.fail(w, r, "key", err)
		return
	}
	writeError(w, http.StatusNotImplemented, "not_implemented",
		"changing a key is not supported yet; revoke it and create a new one")
}

func (a *API) revokeKey(w http.ResponseWriter, r *http.Request) {
	id, err := keyID(r)
	if err != nil {
		a.fail(w, r, "key", err)
		return
	}
	k, err := a.store.RevokeKey(r.Context(), id)
	if err != nil {
		a.fail(w, r, "key", err)
		return
	}
	at := a.now().UTC()
	if k.RevokedAt != nil {
		at = *k.RevokedAt
	}
	a.evict(keystore.Change{PrincipalID: k.PrincipalID, KeyID: k.ID, At: at})
	a.logWrite(r, "key.revoke", slog.String("principal_id", k.PrincipalID),
		slog.String("key_id", k.ID), slog.String("key_prefix", k.Prefix))
	writeJSON(w, http.StatusOK, keyOut(&k))
}
