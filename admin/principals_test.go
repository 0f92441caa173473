package admin

import (
	"net/http"
	"strings"
	"testing"

	"github.com/keygate/keygate/auth"

	"golang.org/x/crypto/bcrypt"
)

func TestPrincipalPassword(t *testing.T) {
	const pw, pw2 = "correct horse battery", "Tr0ub4dor&3-again"
	e := newEnv(t, nil)
	first := len(e.bodies)
	p := e.must(e.do("POST", "/v1/principals", map[string]any{"id": "acme", "password": pw}), http.StatusCreated)
	if p["has_password"] != true {
		t.Errorf("has_password after create with a password = %v, want true", p["has_password"])
	}
	stored, err := e.store.GetPrincipal(t.Context(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored.PasswordHash, "$argon2id$") {
		t.Fatalf("stored hash is not an argon2id PHC string")
	}
	if ok, _, err := auth.VerifyPassword(stored.PasswordHash, pw); !ok || err != nil {
		t.Errorf("VerifyPassword(stored, pw) = %v, %v; want true", ok, err)
	}
	hash1 := stored.PasswordHash
	if p := e.must(e.do("GET", "/v1/principals/acme", nil), http.StatusOK); p["has_password"] != true {
		t.Errorf("GET has_password = %v, want true", p["has_password"])
	}

	// A change: new hash, and the cache drops the principal (and its cached Basic checks).
	p = e.must(e.do("PATCH", "/v1/principals/acme", map[string]any{"password": pw2}), http.StatusOK)
	stored, _ = e.store.GetPrincipal(t.Context(), "acme")
	if p["has_password"] != true || stored.PasswordHash == hash1 {
		t.Errorf("after a password change: has_password %v, hash changed %v; want true, true",
			p["has_password"], stored.PasswordHash != hash1)
	}
	if ok, _, _ := auth.VerifyPassword(stored.PasswordHash, pw2); !ok {
		t.Errorf("the new password does not verify")
	}
	if ev := e.evictions(); len(ev) != 1 || ev[0].PrincipalID != "acme" || ev[0].KeyID != "" {
		t.Errorf("evictions after a password change = %+v, want one for principal acme", ev)
	}

	// A refused password changes nothing.
	e.wantError(e.do("PATCH", "/v1/principals/acme", map[string]any{"password": "short"}), 400, "bad_request", "password: ")
	if again, _ := e.store.GetPrincipal(t.Context(), "acme"); again.PasswordHash != stored.PasswordHash {
		t.Errorf("a refused password changed the stored hash")
	}

	p = e.must(e.do("PATCH", "/v1/principals/acme", `{"password": null}`), http.StatusOK)
	stored, _ = e.store.GetPrincipal(t.Context(), "acme")
	if p["has_password"] != false || stored.PasswordHash != "" {
		t.Errorf("after password null: has_password %v, stored hash empty %v; want false, true",
			p["has_password"], stored.PasswordHash == "")
	}
	if ev := e.evictions(); len(ev) != 2 || ev[1].PrincipalID != "acme" || ev[1].KeyID != "" {
		t.Errorf("evictions after a password removal = %+v, want a second for principal acme", ev)
	}

	// null on create is no password.
	if p := e.must(e.do("POST", "/v1/principals", `{"id":"globex","password":null}`), http.StatusCreated); p["has_password"] != false {
		t.Errorf("has_password after create with password null = %v, want false", p["has_password"])
	}

	e.do("GET", "/v1/audit", nil)
	for _, s := range []string{pw, pw2, hash1, "argon2id"} {
		for i, b := range e.bodies[first:] {
			if strings.Contains(b, s) {
				t.Errorf("response %d holds a password or its hash: %s", i, b)
			}
		}
		if strings.Contains(e.logBuf.String(), s) {
			t.Errorf("log holds a password or its hash")
		}
	}
}

func TestCreatePrincipalWithImportedHash(t *testing.T) {
	e := newEnv(t, nil)
	bc, err := bcrypt.GenerateFromPassword([]byte("legacy-password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	m := e.must(e.do("POST", "/v1/principals", map[string]any{"id": "old-client", "password_hash": string(bc)}), http.StatusCreated)
	if m["has_password"] != true {
		t.Errorf("has_password = %v, want true", m["has_password"])
	}
	e.wantError(e.do("POST", "/v1/principals", map[string]any{"id": "c2", "password_hash": "$2a$10$short"}),
		http.StatusBadRequest, "bad_request", "password_hash")
	e.wantError(e.do("POST", "/v1/principals", map[string]any{"id": "c3", "password_hash": "plain"}),
		http.StatusBadRequest, "bad_request", "password_hash")
	e.wantError(e.do("POST", "/v1/principals", map[string]any{"id": "c4", "password": "long-enough-pw", "password_hash": string(bc)}),
		http.StatusBadRequest, "bad_request", "password_hash")
	for _, b := range e.bodies {
		if strings.Contains(b, string(bc)) {
			t.Errorf("a response holds the imported hash: %s", b)
		}
	}
}
