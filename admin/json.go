package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/keygate/keygate/keystore"
)

// maxBody is the largest request body accepted (SPEC §5).
const maxBody = 1 << 20

// errorBody is the JSON error of SPEC §3.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only our own response types are encoded: this is a programmer error.
		writeError(w, http.StatusInternalServerError, "internal", "internal error")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var b errorBody
	b.Error.Code, b.Error.Message = code, msg
	writeJSON(w, status, b)
}

func notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
}

func methodNotAllowed(allow []string) http.Handler {
	a := strings.Join(allow, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", a)
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method "+r.Method+" not allowed; allowed: "+a)
	})
}

// badRequest is malformed input that is not a keystore.FieldError (a bad query
// parameter, a body that is not JSON). Its message names the field when there is one.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func badRequestf(format string, args ...any) error {
	return &badRequest{msg: fmt.Sprintf(format, args...)}
}

// fail writes the JSON error for err. subject ("principal", "key") words the messages of
// keystore errors. The error behind a 503 is logged, never shown.
func (b *base) fail(w http.ResponseWriter, r *http.Request, subject string, err error) {
	status, code, msg := statusOf(subject, err, b.keys.MaxPerPrincipal)
	if status == http.StatusServiceUnavailable {
		b.log.LogAttrs(r.Context(), slog.LevelError, "store error",
			slog.String("method", r.Method), slog.String("pattern", r.Pattern),
			slog.String("actor", keystore.ActorFrom(r.Context())), slog.String("error", err.Error()))
	}
	writeError(w, status, code, msg)
}

// statusOf is the one mapping from errors to HTTP status, code and message (SPEC §3, §5).
func statusOf(subject string, err error, maxKeys int) (int, string, string) {
	var (
		fe  *keystore.FieldError
		br  *badRequest
		mbe *http.MaxBytesError
	)
	isField := errors.As(err, &fe)
	switch {
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, "payload_too_large",
			fmt.Sprintf("request body is larger than %d bytes", mbe.Limit)
	case errors.Is(err, keystore.ErrScopeNotHeld):
		if isField {
			return http.StatusUnprocessableEntity, "unprocessable", fe.Error()
		}
		return http.StatusUnprocessableEntity, "unprocessable", "scopes: not held by the principal"
	case errors.Is(err, keystore.ErrAboveMaxTTL):
		if isField {
			return http.StatusUnprocessableEntity, "unprocessable", fe.Error()
		}
		return http.StatusUnprocessableEntity, "unprocessable", "ttl: above keys.max_ttl"
	case isField:
		return http.StatusBadRequest, "bad_request", fe.Error()
	case errors.As(err, &br):
		return http.StatusBadRequest, "bad_request", br.msg
	case errors.Is(err, keystore.ErrBadCursor):
		return http.StatusBadRequest, "bad_request", "cursor: not a next_cursor of this listing"
	case errors.Is(err, keystore.ErrNotFound):
		return http.StatusNotFound, "not_found", subject + " not found"
	case errors.Is(err, keystore.ErrConflict):
		if subject == "principal" {
			return http.StatusConflict, "conflict", "principal id is already taken (also by a deleted principal)"
		}
		return http.StatusConflict, "conflict", subject + " already exists"
	case errors.Is(err, keystore.ErrTooManyKeys):
		return http.StatusConflict, "conflict",
			fmt.Sprintf("principal already holds the maximum of %d active keys (keys.max_per_principal)", maxKeys)
	case errors.Is(err, keystore.ErrDisabled):
		return http.StatusConflict, "conflict", "principal is disabled"
	default:
		// Not one of the store's sentinels: the store failed (unreachable, timed out).
		// Issue 5: admin calls get 503 while the store is down; the client may retry.
		return http.StatusServiceUnavailable, "unavailable", "the store cannot be reached right now; retry shortly"
	}
}

// decode reads one JSON object from the request body into v: at most 1 MiB (else a
// *http.MaxBytesError, 413), no unknown fields, no trailing data. Its errors name the
// field when there is one.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, maxBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	var extra json.RawMessage
	switch err := dec.Decode(&extra); {
	case err == io.EOF:
		return nil
	case err == nil:
		return badRequestf("request body: unexpected data after the JSON object")
	default:
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badRequestf("request body: unexpected data after the JSON object")
	}
}

// decodeError turns an encoding/json error into one that names the field.
func decodeError(err error) error {
	var (
		mbe *http.MaxBytesError
		fe  *keystore.FieldError
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &mbe), errors.As(err, &fe):
		return err
	case errors.Is(err, io.EOF):
		return badRequestf("request body: must be a JSON object, got nothing")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequestf("request body: truncated JSON")
	case errors.As(err, &syn):
		return badRequestf("request body: invalid JSON at byte %d: %s", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))
	case errors.As(err, &typ):
		if typ.Field == "" {
			return badRequestf("request body: must be a JSON object, got %s", typ.Value)
		}
		return badRequestf("%s: must be %s, got %s", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
	default:
		// DisallowUnknownFields: `json: unknown field "nmae"`; no typed error exists.
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return badRequestf("unknown field %s", name)
		}
		return badRequestf("request body: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
}

// jsonKind words a Go kind as the JSON type a client should send.
func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "a list"
	case "map", "struct":
		return "an object"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number"
	default:
		return "a " + k
	}
}

// rateLimit is the rate_limit input: a rate string, a list of them, or null. Set tells a
// field that was present (also as null) from one left out.
type rateLimit struct {
	Set   bool
	Rates []string
}

func (rl *rateLimit) UnmarshalJSON(b []byte) error {
	rl.Set = true
	rl.Rates = nil
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		rl.Rates = []string{s}
		return nil
	case len(b) > 0 && b[0] == '[':
		var ss []string
		if err := json.Unmarshal(b, &ss); err != nil {
			return &keystore.FieldError{Field: "rate_limit", Msg: "must be a rate string or a list of rate strings"}
		}
		rl.Rates = ss
		return nil
	default:
		return &keystore.FieldError{Field: "rate_limit", Msg: "must be a rate string or a list of rate strings"}
	}
}

// optional is an input field that tells left out (Set false), null (Set and Null) and a
// value apart: "expires_at": null removes a key's expiry, "password": null a password.
type optional[T any] struct {
	Set   bool
	Null  bool
	Value T
}

func (o *optional[T]) UnmarshalJSON(b []byte) error {
	var zero T
	o.Set, o.Null, o.Value = true, false, zero
	if string(bytes.TrimSpace(b)) == "null" {
		o.Null = true
		return nil
	}
	// A type error here comes back to decode with the field's name added by encoding/json.
	return json.Unmarshal(b, &o.Value)
}

// rateOut is the rate_limit output: null, the string when there is one rate, else the list.
func rateOut(rs []string) any {
	switch len(rs) {
	case 0:
		return nil
	case 1:
		return rs[0]
	default:
		return rs
	}
}

// queryLimit parses ?limit= (1..1000; absent: the store's default).
func queryLimit(r *http.Request) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 1000 {
		return 0, badRequestf("limit: must be an integer from 1 to 1000, got %q", s)
	}
	return n, nil
}
