package admin

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/keygate/keygate/auth"
	"github.com/keygate/keygate/keystore"
)

// PrincipalJSON is a principal as the admin API shows it.
type PrincipalJSON struct {
	ID          string            `json:"id"`
	DisplayName string            `json:"display_name"`
	Scopes      []string          `json:"scopes"`
	RateLimit   any               `json:"rate_limit"`
	Metadata    map[string]string `json:"metadata"`
	CreatedAt   *string           `json:"created_at"`
	UpdatedAt   *string           `json:"updated_at"`
	DisabledAt  *string           `json:"disabled_at"`
	HasPassword bool              `json:"has_password"`
}

// PrincipalOut is the JSON view of a principal, shared by the admin API and the CLI.
func PrincipalOut(p *keystore.Principal) PrincipalJSON {
	return PrincipalJSON{
		ID:          p.ID,
		DisplayName: p.DisplayName,
		Scopes:      nonNil(p.Scopes),
		RateLimit:   rateOut(p.RateLimit),
		Metadata:    nonNilMap(p.Metadata),
		CreatedAt:   timeOut(&p.CreatedAt),
		UpdatedAt:   timeOut(&p.UpdatedAt),
		DisabledAt:  timeOut(p.DisabledAt),
		HasPassword: p.PasswordHash != "",
	}
}

// ListJSON is a page of a listing.
type ListJSON[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

// ListOut is a page of a listing: {"items": [...], "next_cursor": "..." | null}.
func ListOut[T any](items []T, next string) ListJSON[T] {
	l := ListJSON[T]{Items: nonNil(items)}
	if next != "" {
		l.NextCursor = &next
	}
	return l
}

// ListOf is ListOut of the JSON views of items: view applied to each, in order.
func ListOf[E, T any](items []E, view func(*E) T, next string) ListJSON[T] {
	out := make([]T, len(items))
	for i := range items {
		out[i] = view(&items[i])
	}
	return ListOut(out, next)
}

// timeOut formats t as RFC 3339 UTC; nil or zero: null.
func timeOut(t *time.Time) *string {
	if t == nil || t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// hashPassword validates a new password and returns its argon2id PHC string. Its errors
// never quote the password.
func hashPassword(pw string) (string, error) {
	if err := keystore.ValidatePassword("password", pw); err != nil {
		return "", err
	}
	h, err := auth.HashPassword(pw)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return h, nil
}

type createPrincipalReq struct {
	ID          string           `json:"id"`
	DisplayName string           `json:"display_name"`
	Password    optional[string] `json:"password"` // null: none
	// PasswordHash imports an existing argon2id or bcrypt hash instead of a password.
	PasswordHash string            `json:"password_hash"`
	Scopes       []string          `json:"scopes"`
	RateLimit    rateLimit         `json:"rate_limit"`
	Metadata     map[string]string `json:"metadata"`
}

// validationErrors joins every problem of an input into one error, so that a client
// sees them all at once. Nil when there is none.
func validationErrors(errs ...error) error {
	var out []error
	for _, e := range errs {
		if e != nil {
			out = append(out, e)
		}
	}
	switch len(out) {
	case 0:
		return nil
	case 1:
		return out[0]
	}
	// Keep the 422 sentinels reachable: the first error decides the status.
	msg := out[0].Error()
	for _, e := range out[1:] {
		msg += "; " + e.Error()
	}
	var fe *keystore.FieldError
	if !errors.As(out[0], &fe) {
		return errors.Join(out...)
	}
	return &keystore.FieldError{Field: fe.Field, Msg: msg[len(fe.Field)+2:], Err: fe.Err}
}

// patchProblems validates the fields that a PATCH of a key and of a principal share, those
// given: scopes, rate_limit and metadata. Nil entries are fine for validationErrors.
func patchProblems(scopes *[]string, rates rateLimit, metadata *map[string]string) []error {
	var errs []error
	if scopes != nil {
		errs = append(errs, keystore.ValidateScopes("scopes", *scopes))
	}
	if rates.Set {
		errs = append(errs, keystore.ValidateRates("rate_limit", rates.Rates))
	}
	if metadata != nil {
		errs = append(errs, keystore.ValidateMetadata("metadata", *metadata))
	}
	return errs
}

// createPrincipal creates a principal, with a password when one is given (hashed with
// argon2id; the response shows has_password, never the password or its hash).
func (a *API) createPrincipal(w http.ResponseWriter, r *http.Request) {
	var req createPrincipalReq
	err := decode(w, r, &req)
	if err != nil {
		a.fail(w, r, "principal", err)
		return
	}
	var pwErr error
	switch {
	case req.Password.Set && !req.Password.Null && req.PasswordHash != "":
		pwErr = &keystore.FieldError{Field: "password_hash", Msg: "give password or password_hash, not both"}
	case req.Password.Set && !req.Password.Null:
		pwErr = keystore.ValidatePassword("password", req.Password.Value)
	case req.PasswordHash != "":
		if auth.CheckPasswordHash(req.PasswordHash) != nil {
			pwErr = &keystore.FieldError{Field: "password_hash", Msg: "not an argon2id PHC string or a bcrypt hash ($2a$, $2b$, $2y$)"}
		}
	}
	if err := validationErrors(
		keystore.ValidatePrincipalID(req.ID, a.keys.Prefix),
		pwErr,
		keystore.ValidateDisplayName("display_name", req.DisplayName),
		keystore.ValidateScopes("scopes", req.Scopes),
		keystore.ValidateRates("rate_limit", req.RateLimit.Rates),
		keystore.ValidateMetadata("metadata", req.Metadata),
	); err != nil {
		a.fail(w, r, "principal", err)
		return
	}
	p := keystore.Principal{
		ID:          req.ID,
		DisplayName: req.DisplayName,
		Scopes:      req.Scopes,
		RateLimit:   req.RateLimit.Rates,
		Metadata:    req.Metadata,
	}
	if req.Password.Set && !req.Password.Null {
		// After every other check: the hash costs tens of milliseconds.
		if p.PasswordHash, err = hashPassword(req.Password.Value); err != nil {
			a.fail(w, r, "principal", err)
			return
		}
	} else if req.PasswordHash != "" {
		p.PasswordHash = req.PasswordHash
	}
	if err := a.store.CreatePrincipal(r.Context(), &p); err != nil {
		a.fail(w, r, "principal", err)
		return
	}
	a.logWrite(r, "principal.create", slog.String("principal_id", p.ID))
	w.Header().Set("Location", "/v1/principals/"+p.ID)
	writeJSON(w, http.StatusCreated, PrincipalOut(&p))
}

func (a *API) listPrincipals(w http.ResponseWriter, r *http.Request) {
	limit, err := queryLimit(r)
	if err != nil {
		a.fail(w, r, "principal", err)
		return
	}
	ps, next, err := a.store.ListPrincipals(r.Context(), keystore.ListOptions{
		Limit: limit, Cursor: r.URL.Query().Get("cursor"),
	})
	if err != nil {
		a.fail(w, r, "principal", err)
		return
	}
	writeJSON(w, http.StatusOK, ListOf(ps, PrincipalOut, next))
}

func (a *API) getPrincipal(w http.ResponseWriter, r *http.Request) {
	p, err := a.store.GetPrincipal(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, "principal", err)
		return
	}
	writeJSON(w, http.StatusOK, PrincipalOut(&p))
}

type updatePrincipalReq struct {
	DisplayName *string            `json:"display_name"`
	Password    optional[string]   `json:"password"` // null: remove
	Scopes      *[]string          `json:"scopes"`
	RateLimit   rateLimit          `json:"rate_limit"`
	Metadata    *map[string]string `json:"metadata"`
	Disabled    *bool              `json:"disabled"`
}

func (a *API) updatePrincipal(w http.ResponseWriter, r *http.Request) {
	var req updatePrincipalReq
	if err := decode(w, r, &req); err != nil {
		a.fail(w, r, "principal", err)
		return
	}
	var errs []error
	if req.Password.Set && !req.Password.Null {
		errs = append(errs, keystore.ValidatePassword("password", req.Password.Value))
	}
	if req.DisplayName != nil {
		errs = append(errs, keystore.ValidateDisplayName("display_name", *req.DisplayName))
	}
	errs = append(errs, patchProblems(req.Scopes, req.RateLimit, req.Metadata)...)
	if err := validationErrors(errs...); err != nil {
		a.fail(w, r, "principal", err)
		return
	}

	ctx := r.Context()
	p, err := a.store.GetPrincipal(ctx, r.PathValue("id"))
	if err != nil {
		a.fail(w, r, "principal", err)
		return
	}
	var changed []string
	if req.DisplayName != nil {
		p.DisplayName = *req.DisplayName
		changed = append(changed, "display_name")
	}
	if req.Password.Set {
		// "password": null removes it; a string replaces it. Hashed last among the
		// checks, after the principal is known: the hash costs tens of milliseconds.
		p.PasswordHash = ""
		if !req.Password.Null {
			if p.PasswordHash, err = hashPassword(req.Password.Value); err != nil {
				a.fail(w, r, "principal", err)
				return
			}
		}
		changed = append(changed, "password")
	}
	if req.Scopes != nil {
		p.Scopes = slices.Clone(*req.Scopes)
		changed = append(changed, "scopes")
	}
	if req.RateLimit.Set {
		p.RateLimit = req.RateLimit.Rates
		changed = append(changed, "rate_limit")
	}
	if req.Metadata != nil {
		p.Metadata = maps.Clone(*req.Metadata)
		changed = append(changed, "metadata")
	}
	if req.Disabled != nil {
		switch {
		case *req.Disabled && p.DisabledAt == nil:
			now := a.now().UTC()
			p.DisabledAt = &now
		case !*req.Disabled:
			p.DisabledAt = nil
		}
		changed = append(changed, "disabled")
	}
	if err := a.store.UpdatePrincipal(ctx, &p); err != nil {
		a.fail(w, r, "principal", err)
		return
	}
	// Any change of a principal can deny access (fewer scopes, a lower rate, disabled, a
	// new or no password): the cache forgets the principal, all its keys and its cached
	// password checks.
	a.evict(keystore.Change{PrincipalID: p.ID, At: p.UpdatedAt})
	a.logWrite(r, "principal.update", slog.String("principal_id", p.ID), slog.Any("fields", changed))
	writeJSON(w, http.StatusOK, PrincipalOut(&p))
}

func (a *API) deletePrincipal(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := a.store.DeletePrincipal(r.Context(), id); err != nil {
		a.fail(w, r, "principal", err)
		return
	}
	a.evict(keystore.Change{PrincipalID: id, At: a.now().UTC()})
	a.logWrite(r, "principal.delete", slog.String("principal_id", id))
	w.WriteHeader(http.StatusNoContent)
}
