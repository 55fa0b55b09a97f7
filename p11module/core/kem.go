package core

import (
	"encoding/binary"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/mech"
)

// PKCS#11 v3.2 key encapsulation. Both run in the daemon, which makes the
// new secret key; encapsulation with a public key could run here, but the
// secret would then cross back to the daemon to become a key object.

// maxCiphertextLen is the longest KEM ciphertext (ML-KEM-1024's).
const maxCiphertextLen = 1568

// ciphertextLen is the ciphertext length of a KEM public key, from its
// CKA_KEY_TYPE and CKA_PARAMETER_SET (C_EncapsulateKey's length query).
func (m *Module) ciphertextLen(s *session, pub uint64) (uint64, error) {
	c, err := s.loggedIn()
	if err != nil {
		return 0, err
	}
	ctx, cancel := m.ctx()
	defer cancel()
	vals, err := c.GetAttributes(ctx, pub, []uint64{ck.CKA_CLASS, ck.CKA_KEY_TYPE, ck.CKA_PARAMETER_SET})
	if err != nil {
		if hsmerr.RV(err) == ck.CKR_OBJECT_HANDLE_INVALID {
			return 0, errorf(ck.CKR_KEY_HANDLE_INVALID, "no such key")
		}
		return 0, err
	}
	var u [3]uint64
	for i, v := range vals {
		if i >= len(u) || v.RV != ck.CKR_OK || len(v.Value) != 8 {
			return 0, errorf(ck.CKR_KEY_TYPE_INCONSISTENT, "the key is not a KEM public key")
		}
		u[i] = binary.BigEndian.Uint64(v.Value)
	}
	set, ok := mech.PQSetOf(u[1], u[2])
	if u[0] != ck.CKO_PUBLIC_KEY || !ok || set.KeyType != ck.CKK_ML_KEM {
		return 0, errorf(ck.CKR_KEY_TYPE_INCONSISTENT, "the key is not a KEM public key")
	}
	return uint64(set.OutLen), nil
}

// EncapsulateKey is C_EncapsulateKey. The ciphertext follows the two-call
// rule; a length query or a buffer too small makes no key.
func (m *Module) EncapsulateKey(h uint64, mc Mechanism, pub uint64, t []Attr, out Out) (OutResult, uint64, error) {
	s, c, ct, err := m.forObject(h, t, pub)
	if err != nil {
		return OutResult{}, 0, err
	}
	tm, row, err := toMech(mc)
	if err != nil {
		return OutResult{}, 0, err
	}
	if row.Encapsulate == nil {
		return OutResult{}, 0, errorf(ck.CKR_MECHANISM_INVALID, "%s does not encapsulate", ck.MechName(mc.Type))
	}
	// Unless the buffer holds any ciphertext, ask for the length first,
	// so that no key is made whose ciphertext the caller cannot get.
	if !out.Present || out.Cap < maxCiphertextLen {
		n, err := m.ciphertextLen(s, pub)
		if err != nil {
			return OutResult{}, 0, err
		}
		if r, err, done := outLen(int(n), out); !done {
			return r, 0, err
		}
	}
	ctx, cancel := m.ctx()
	defer cancel()
	ciphertext, id, err := c.EncapsulateKey(ctx, tm, pub, ct)
	if err != nil {
		return OutResult{}, 0, err
	}
	s.made(id, ct, c)
	return OutResult{Len: uint64(len(ciphertext)), Data: ciphertext}, id, nil
}

// DecapsulateKey is C_DecapsulateKey.
func (m *Module) DecapsulateKey(h uint64, mc Mechanism, priv uint64, t []Attr, ciphertext []byte) (uint64, error) {
	s, c, ct, err := m.forObject(h, t, priv)
	if err != nil {
		return 0, err
	}
	tm, row, err := toMech(mc)
	if err != nil {
		return 0, err
	}
	if row.Decapsulate == nil {
		return 0, errorf(ck.CKR_MECHANISM_INVALID, "%s does not decapsulate", ck.MechName(mc.Type))
	}
	ctx, cancel := m.ctx()
	defer cancel()
	id, err := c.DecapsulateKey(ctx, tm, priv, ciphertext, ct)
	if err != nil {
		return 0, err
	}
	s.made(id, ct, c)
	return id, nil
}
