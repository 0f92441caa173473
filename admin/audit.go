package admin

import (
	"net/http"

	"github.com/keygate/keygate/keystore"
)

// auditJSON is one audit event as GET /v1/audit shows it. It never holds a secret: the
// store records field names and counts, not values.
type auditJSON struct {
	ID          int64   `json:"id"`
	At          *string `json:"at"`
	Actor       string  `json:"actor"`
	Action      string  `json:"action"`
	PrincipalID string  `json:"principal_id"`
	KeyID       *string `json:"key_id"`
	Detail      string  `json:"detail"`
}

func auditOut(e *keystore.AuditEvent) auditJSON {
	out := auditJSON{
		ID:          e.ID,
		At:          timeOut(&e.At),
		Actor:       e.Actor,
		Action:      e.Action,
		PrincipalID: e.PrincipalID,
		Detail:      e.Detail,
	}
	if e.KeyID != "" {
		out.KeyID = &e.KeyID
	}
	return out
}

// listAudit serves GET /v1/audit?principal=&limit=&cursor=: events newest first, of one
// principal (also a deleted one) or of all. key_id is null for principal events.
func (a *API) listAudit(w http.ResponseWriter, r *http.Request) {
	limit, err := queryLimit(r)
	if err != nil {
		a.fail(w, r, "principal", err)
		return
	}
	q := r.URL.Query()
	evs, next, err := a.store.ListAudit(r.Context(), q.Get("principal"), keystore.ListOptions{
		Limit: limit, Cursor: q.Get("cursor"),
	})
	if err != nil {
		a.fail(w, r, "principal", err)
		return
	}
	writeJSON(w, http.StatusOK, ListOf(evs, auditOut, next))
}
