package keystore

import (
	"fmt"

	"github.com/google/uuid"
)

// NewKey returns a new key record for a principal and its plaintext, which is shown once.
// The record has ID, PrincipalID, Name, Prefix and Hash set; the caller sets the rest and
// stores it with Store.CreateKey before it returns the plaintext to anyone.
func NewKey(f Format, h *Hasher, principalID, name string) (Key, string, error) {
	plain, err := f.Generate()
	if err != nil {
		return Key{}, "", fmt.Errorf("generate key: %w", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Key{}, "", fmt.Errorf("generate key id: %w", err)
	}
	return Key{
		ID:          id.String(),
		PrincipalID: principalID,
		Name:        name,
		Prefix:      f.Shown(plain),
		Hash:        h.Hash(plain),
	}, plain, nil
}
