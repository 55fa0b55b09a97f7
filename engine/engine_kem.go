package engine

import (
	"context"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
)

// Key encapsulation (PKCS#11 v3.2 C_EncapsulateKey, C_DecapsulateKey): the
// mechanism's shared secret becomes the CKA_VALUE of a new secret key made
// from the caller's template, CKK_GENERIC_SECRET unless it says otherwise
// (CKK_AES takes the 32-byte secret as an AES-256 key; CKA_VALUE_LEN may
// ask for fewer bytes, as for a derived key).

var (
	opEncapsulate = keyOp{"encapsulate", ck.CKF_ENCAPSULATE, ck.CKA_ENCAPSULATE}
	opDecapsulate = keyOp{"decapsulate", ck.CKF_DECAPSULATE, ck.CKA_DECAPSULATE}
)

// EncapsulateKey makes a shared secret with a public key, returns its
// ciphertext and stores the secret as a new key (C_EncapsulateKey).
func (e *Engine) EncapsulateKey(ctx context.Context, c Caller, m mech.Mech, pubID uint64, tmpl object.Template) ([]byte, uint64, error) {
	if err := e.canCreate(c, tmpl); err != nil {
		return nil, 0, err
	}
	row, _, k, err := e.useKey(c, pubID, m, opEncapsulate)
	if err != nil {
		return nil, 0, err
	}
	if k.Class != ck.CKO_PUBLIC_KEY {
		return nil, 0, hsmerr.Errorf(ck.CKR_KEY_TYPE_INCONSISTENT, "encapsulation takes a public key")
	}
	attrs, err := secretKeyAttrs(tmpl, "key encapsulation")
	if err != nil {
		return nil, 0, err
	}
	ct, secret, err := row.Encapsulate(k, m)
	if err != nil {
		return nil, 0, err
	}
	defer clear(secret)
	id, err := e.importKey(ctx, c, attrs, append([]byte(nil), secret...), nil)
	if err != nil {
		return nil, 0, err
	}
	return ct, id, nil
}

// DecapsulateKey recovers the shared secret of a ciphertext with a private
// key and stores it as a new key (C_DecapsulateKey). A tampered ciphertext
// of the right length gives a key all the same, with an unrelated value
// (ML-KEM's implicit rejection).
func (e *Engine) DecapsulateKey(ctx context.Context, c Caller, m mech.Mech, privID uint64, ct []byte, tmpl object.Template) (uint64, error) {
	if err := mech.CheckData("ciphertext", ct); err != nil {
		return 0, err
	}
	if err := e.canCreate(c, tmpl); err != nil {
		return 0, err
	}
	row, priv, k, err := e.useKey(c, privID, m, opDecapsulate)
	if err != nil {
		return 0, err
	}
	if k.Class != ck.CKO_PRIVATE_KEY {
		return 0, hsmerr.Errorf(ck.CKR_KEY_TYPE_INCONSISTENT, "decapsulation takes a private key")
	}
	attrs, err := secretKeyAttrs(tmpl, "key encapsulation")
	if err != nil {
		return 0, err
	}
	secret, err := row.Decapsulate(k, m, ct)
	if err != nil {
		return 0, err
	}
	return e.importKey(ctx, c, attrs, secret, priv.Attrs)
}
