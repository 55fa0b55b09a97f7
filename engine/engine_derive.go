package engine

// The template attributes of wrapping and deriving keys
// (CKA_WRAP_TEMPLATE, CKA_UNWRAP_TEMPLATE, CKA_DERIVE_TEMPLATE), and the
// key derivation functions (HKDF, SP 800-108 counter mode), whose output
// length comes from the new object's template.

import (
	"context"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
)

// checkWrapTemplate refuses to wrap a key that does not match the wrapping
// key's CKA_WRAP_TEMPLATE: CKR_KEY_NOT_WRAPPABLE.
func checkWrapTemplate(wk, o *object.Object) error {
	v, ok := wk.Attrs[ck.CKA_WRAP_TEMPLATE]
	if !ok || len(v) == 0 {
		return nil
	}
	match, err := object.MatchesTemplateValue(o, ck.CKA_WRAP_TEMPLATE, v)
	if err != nil {
		return err
	}
	if !match {
		return hsmerr.Errorf(ck.CKR_KEY_NOT_WRAPPABLE, "the key does not match the wrapping key's CKA_WRAP_TEMPLATE")
	}
	return nil
}

// keyTemplate applies a key's CKA_UNWRAP_TEMPLATE or CKA_DERIVE_TEMPLATE
// to the caller's template for the new key, and checks again that the
// caller may create what the result says (CKA_TOKEN, CKA_PRIVATE).
func (e *Engine) keyTemplate(c Caller, k *object.Object, attr uint64, tmpl object.Template) (object.Template, error) {
	v, ok := k.Attrs[attr]
	if !ok || len(v) == 0 {
		return tmpl, nil
	}
	full, err := object.ApplyTemplateValue(attr, v, tmpl)
	if err != nil {
		return nil, err
	}
	if err := e.canCreate(c, full); err != nil {
		return nil, err
	}
	return full, nil
}

// defaultValueLen gives a key type of one size its CKA_VALUE_LEN when the
// template has none (ChaCha20: 32 bytes).
func defaultValueLen(row *mech.Mechanism, tmpl object.Template) object.Template {
	if len(row.KeyTypes) != 1 || row.KeyTypes[0] != ck.CKK_CHACHA20 {
		return tmpl
	}
	if _, ok := object.FindAttr(tmpl, ck.CKA_VALUE_LEN); ok {
		return tmpl
	}
	return append(append(object.Template{}, tmpl...), object.Attribute{Type: ck.CKA_VALUE_LEN, Value: object.EncodeUlong(32)})
}

// kdfLen is the length a KDF derives for a new object: CKA_VALUE_LEN of
// the template, else the key type's one size.
func kdfLen(tmpl object.Template) (int, error) {
	if v, ok := object.FindAttr(tmpl, ck.CKA_VALUE_LEN); ok {
		if len(v) != 8 {
			return 0, hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "CKA_VALUE_LEN must be a CK_ULONG")
		}
		n, _ := object.Attrs{0: v}.Ulong(0)
		if n == 0 || n > mech.MaxKDFLen {
			return 0, hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "CKA_VALUE_LEN must be 1 to %d", mech.MaxKDFLen)
		}
		return int(n), nil
	}
	if v, ok := object.FindAttr(tmpl, ck.CKA_KEY_TYPE); ok && len(v) == 8 {
		if kt, _ := (object.Attrs{0: v}).Ulong(0); kt == ck.CKK_CHACHA20 {
			return 32, nil
		}
	}
	return 0, hsmerr.Errorf(ck.CKR_TEMPLATE_INCOMPLETE, "CKA_VALUE_LEN is required: it is the length to derive")
}

// deriveKDF runs a DeriveKDF row and makes the new object: a secret key
// (generic secret unless the template says otherwise), or with
// CKM_HKDF_DATA a data object whose CKA_VALUE is the output.
func (e *Engine) deriveKDF(ctx context.Context, c Caller, row *mech.Mechanism, m mech.Mech, base *object.Object, bkey *mech.Key, tmpl object.Template) (uint64, error) {
	n, err := kdfLen(tmpl)
	if err != nil {
		return 0, err
	}
	in := mech.KDFInput{Len: n}
	if hp, ok := m.Param.(*mech.HKDFParams); ok && hp.Extract && hp.SaltType == ck.CKF_HKDF_SALT_KEY {
		so, sso, err := e.lookup(c, hp.SaltKey, object.ActUse)
		if err != nil {
			return 0, hsmerr.Errorf(ck.CKR_KEY_HANDLE_INVALID, "hSaltKey: no such key")
		}
		if so.Class() != ck.CKO_SECRET_KEY || !so.Attrs.Bool(ck.CKA_DERIVE) {
			return 0, hsmerr.Errorf(ck.CKR_KEY_FUNCTION_NOT_PERMITTED, "hSaltKey must be a secret key with CKA_DERIVE")
		}
		if in.SaltKey, err = e.keyOf(so, sso); err != nil {
			return 0, err
		}
	}
	if row.DataObject {
		full := object.Template{}
		for _, a := range tmpl {
			switch a.Type {
			case ck.CKA_VALUE_LEN:
				continue // the length to derive, not an attribute of data objects
			case ck.CKA_VALUE:
				return 0, hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "CKA_VALUE is what the mechanism derives")
			}
			full = append(full, a)
		}
		if _, ok := object.FindAttr(full, ck.CKA_CLASS); !ok {
			full = append(object.Template{{Type: ck.CKA_CLASS, Value: object.EncodeUlong(ck.CKO_DATA)}}, full...)
		}
		attrs, _, err := object.BuildAttrs(object.OpCreate, full, ck.CKO_DATA, ^uint64(0))
		if err != nil {
			return 0, err
		}
		out, err := row.DeriveKDF(bkey, m, in)
		if err != nil {
			return 0, err
		}
		ids, err := e.storeObjects(ctx, c, newObj{obj: &object.Object{Attrs: attrs}, material: out})
		if err != nil {
			return 0, err
		}
		return ids[0], nil
	}
	attrs, err := secretKeyAttrs(tmpl, ck.MechName(m.Type))
	if err != nil {
		return 0, err
	}
	out, err := row.DeriveKDF(bkey, m, in)
	if err != nil {
		return 0, err
	}
	return e.importKey(ctx, c, attrs, out, base.Attrs)
}
