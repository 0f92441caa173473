package admin

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/keygate/keygate/keystore"
)

// KeyJSON is a key as the admin API shows it: never the plaintext or the hash.
type KeyJSON struct {
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
	KeyJSON
	Key string `json:"key"`
}

// KeyOut is the JSON view of a key, shared by the admin API and the CLI.
func KeyOut(k *keystore.Key) KeyJSON {
	return KeyJSON{
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

// parseExpiresAt parses an expires_at input (RFC 3339).
func parseExpiresAt(s string) (time.Time, error) {
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, &keystore.FieldError{Field: "expires_at",
			Msg: fmt.Sprintf("must be an RFC 3339 time such as \"2030-01-31T00:00:00Z\", got %q", s)}
	}
	return at, nil
}

// expiry returns a key's expiry from at most one of expiresAt and ttl (relative to now),
// else defaultTTL (0: never), within keys.max_ttl (above it: 422).
func (b *base) expiry(expiresAt, ttl *string, defaultTTL time.Duration) (*time.Time, error) {
	var at *time.Time
	if expiresAt != nil {
		t, err := parseExpiresAt(*expiresAt)
		if err != nil {
			return nil, err
		}
		at = &t
	}
	return keystore.KeyExpiry(b.now(), at, ttl, defaultTTL, b.keys.MaxTTL)
}

// createKey validates req and stores a new key for the principal, within its scopes and
// keys.max_per_principal. It returns the stored key and its plaintext. Errors about the
// principal (unknown, disabled, too many keys) are worded with the subject "principal".
func (b *base) createKey(ctx context.Context, principalID string, req *createKeyReq) (keystore.Key, string, error) {
	expires, expErr := b.expiry(req.ExpiresAt, req.TTL, b.keys.DefaultTTL)
	if err := validationErrors(
		keystore.ValidateName("name", req.Name),
		keystore.ValidateScopes("scopes", req.Scopes),
		keystore.ValidateRates("rate_limit", req.RateLimit.Rates),
		keystore.ValidateMetadata("metadata", req.Metadata),
		expErr,
	); err != nil {
		return keystore.Key{}, "", err
	}
	p, err := b.store.GetPrincipal(ctx, principalID)
	if err != nil {
		return keystore.Key{}, "", err
	}
	if p.Disabled() {
		return keystore.Key{}, "", keystore.ErrDisabled
	}
	if err := keystore.CheckKeyScopes("scopes", req.Scopes, p.Scopes); err != nil {
		return keystore.Key{}, "", err
	}
	k, plain, err := keystore.NewKey(b.format, b.hasher, p.ID, req.Name)
	if err != nil {
		return keystore.Key{}, "", err
	}
	k.Scopes = req.Scopes
	k.RateLimit = req.RateLimit.Rates
	k.Metadata = req.Metadata
	k.ExpiresAt = expires
	if err := b.store.CreateKey(ctx, &k, b.keys.MaxPerPrincipal); err != nil {
		return keystore.Key{}, "", err
	}
	return k, plain, nil
}

func (a *API) createKey(w http.ResponseWriter, r *http.Request) {
	var req createKeyReq
	if err := decode(w, r, &req); err != nil {
		a.fail(w, r, "key", err)
		return
	}
	k, plain, err := a.base.createKey(r.Context(), r.PathValue("id"), &req)
	if err != nil {
		// ErrNotFound, ErrDisabled and ErrTooManyKeys here are about the principal.
		a.fail(w, r, "principal", err)
		return
	}
	a.logWrite(r, "key.create", slog.String("principal_id", k.PrincipalID),
		slog.String("key_id", k.ID), slog.String("key_prefix", k.Prefix))
	w.Header().Set("Location", "/v1/keys/"+k.ID)
	writeJSON(w, http.StatusCreated, createdKeyJSON{KeyJSON: KeyOut(&k), Key: plain})
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
	writeJSON(w, http.StatusOK, ListOf(ks, KeyOut, next))
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
	writeJSON(w, http.StatusOK, KeyOut(&k))
}

// updateKeyReq is a PATCH of a key: a field left out is unchanged. Null for name, scopes,
// ttl or metadata is unchanged too; "expires_at": null removes the expiry and
// "rate_limit": null (or []) the key's own rate limit.
type updateKeyReq struct {
	Name      *string            `json:"name"`
	Scopes    *[]string          `json:"scopes"`
	ExpiresAt optional[string]   `json:"expires_at"`
	TTL       *string            `json:"ttl"`
	RateLimit rateLimit          `json:"rate_limit"`
	Metadata  *map[string]string `json:"metadata"`
}

// updateExpiry returns the new expiry of a PATCH and whether it changes. A ttl counts
// from now; with keys.max_ttl set, removing the expiry is above it (422).
func (a *API) updateExpiry(req *updateKeyReq) (*time.Time, bool, error) {
	switch {
	case req.ExpiresAt.Set && req.TTL != nil:
		return nil, false, &keystore.FieldError{Field: "ttl", Msg: "give expires_at or ttl, not both"}
	case req.ExpiresAt.Null:
		if a.keys.MaxTTL > 0 {
			return nil, false, &keystore.FieldError{Field: "expires_at",
				Msg: fmt.Sprintf("a key without expiry is above keys.max_ttl (%s)", a.keys.MaxTTL),
				Err: keystore.ErrAboveMaxTTL}
		}
		return nil, true, nil
	case req.ExpiresAt.Set:
		at, err := a.expiry(&req.ExpiresAt.Value, nil, 0)
		return at, err == nil, err
	case req.TTL != nil:
		at, err := a.expiry(nil, req.TTL, 0)
		return at, err == nil, err
	}
	return nil, false, nil
}

// updateKey changes a key's name, scopes, expiry, rate limit or metadata. A revoked or
// unknown key is 404; scopes beyond the principal's or an expiry beyond keys.max_ttl 422.
func (a *API) updateKey(w http.ResponseWriter, r *http.Request) {
	id, err := keyID(r)
	if err != nil {
		a.fail(w, r, "key", err)
		return
	}
	var req updateKeyReq
	if err := decode(w, r, &req); err != nil {
		a.fail(w, r, "key", err)
		return
	}
	expires, expiryChanged, expErr := a.updateExpiry(&req)
	errs := []error{expErr}
	if req.Name != nil {
		errs = append(errs, keystore.ValidateName("name", *req.Name))
	}
	errs = append(errs, patchProblems(req.Scopes, req.RateLimit, req.Metadata)...)
	if err := validationErrors(errs...); err != nil {
		a.fail(w, r, "key", err)
		return
	}

	ctx := r.Context()
	k, err := a.store.GetKey(ctx, id)
	if err == nil && k.RevokedAt != nil {
		err = keystore.ErrNotFound
	}
	if err != nil {
		a.fail(w, r, "key", err)
		return
	}
	var changed []string
	if req.Name != nil {
		k.Name = *req.Name
		changed = append(changed, "name")
	}
	if req.Scopes != nil {
		p, err := a.store.GetPrincipal(ctx, k.PrincipalID)
		if err != nil {
			// A deleted principal's keys are revoked: the key is gone.
			a.fail(w, r, "key", err)
			return
		}
		if err := keystore.CheckKeyScopes("scopes", *req.Scopes, p.Scopes); err != nil {
			a.fail(w, r, "key", err)
			return
		}
		k.Scopes = slices.Clone(*req.Scopes)
		changed = append(changed, "scopes")
	}
	if expiryChanged {
		k.ExpiresAt = expires
		changed = append(changed, "expires_at")
	}
	if req.RateLimit.Set {
		k.RateLimit = req.RateLimit.Rates
		changed = append(changed, "rate_limit")
	}
	if req.Metadata != nil {
		k.Metadata = maps.Clone(*req.Metadata)
		changed = append(changed, "metadata")
	}
	// The store checks the scopes again in its transaction (the principal may have
	// changed since) and answers ErrNotFound for a key revoked meanwhile.
	if err := a.store.UpdateKey(ctx, &k); err != nil {
		a.fail(w, r, "key", err)
		return
	}
	// Fewer scopes, a lower rate or an earlier expiry can deny access: the cache forgets
	// the key at once.
	a.evict(keystore.Change{PrincipalID: k.PrincipalID, KeyID: k.ID, At: a.now().UTC()})
	a.logWrite(r, "key.update", slog.String("principal_id", k.PrincipalID),
		slog.String("key_id", k.ID), slog.String("key_prefix", k.Prefix), slog.Any("fields", changed))
	writeJSON(w, http.StatusOK, KeyOut(&k))
}

// revokeKey revokes a key: 200 with its record; again, or unknown, 404.
func (a *API) revokeKey(w http.ResponseWriter, r *http.Request) {
	id, err := keyID(r)
	if err != nil {
		a.fail(w, r, "key", err)
		return
	}
	k, err := a.revoke(r, id)
	if err != nil {
		a.fail(w, r, "key", err)
		return
	}
	writeJSON(w, http.StatusOK, KeyOut(&k))
}

// revoke revokes key id, reports the change to the cache and logs the write.
func (b *base) revoke(r *http.Request, id string) (keystore.Key, error) {
	k, err := b.store.RevokeKey(r.Context(), id)
	if err != nil {
		return keystore.Key{}, err
	}
	at := b.now().UTC()
	if k.RevokedAt != nil {
		at = *k.RevokedAt
	}
	b.evict(keystore.Change{PrincipalID: k.PrincipalID, KeyID: k.ID, At: at})
	b.logWrite(r, "key.revoke", slog.String("principal_id", k.PrincipalID),
		slog.String("key_id", k.ID), slog.String("key_prefix", k.Prefix))
	return k, nil
}
