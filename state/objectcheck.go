package state

import (
	"bytes"
	"crypto"
	"crypto/sha1"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
)

// CheckNewObject checks a finished object, as the engine makes it, against
// the same attribute rules (attr.go) BuildAttrs and ApplySet enforce on a
// caller's template, and against its own key material. material is the
// clear secret (a secret key's value, a private key's PKCS #8), or nil for
// objects without one.
//
// Apply runs it on every object of create_objects, with the material it
// unseals, so a command that did not come from the engine's template checks
// cannot store what the API would refuse: CKA_TRUSTED set by a crypto user, a
// sensitive value in the clear attributes, a class and key type that do not
// fit, attributes that contradict each other or the key (CKA_LOCAL without a
// generating mechanism, CKA_ALWAYS_SENSITIVE on a key that is not sensitive,
// a CKA_CHECK_VALUE or CKA_MODULUS of another key). The engine runs it on
// session objects, which never pass through apply. It is deterministic.
//
// What it cannot tell is history: an imported key claiming CKA_LOCAL with a
// valid generating mechanism looks exactly like a generated one. Only the
// proof that a logged-in API call produced the command (the Forward MAC)
// closes that.
func CheckNewObject(o *object.Object, material []byte) error {
	class, keyType, err := object.CheckStoredAttrs(o)
	if err != nil {
		return err
	}
	if object.IsKeyClass(class) {
		if err := checkKeyOrigin(o.Attrs, class, keyType); err != nil {
			return err
		}
	}
	return checkMaterial(o, class, keyType, material)
}

// checkKeyOrigin keeps CKA_LOCAL, CKA_KEY_GEN_MECHANISM, CKA_ALWAYS_SENSITIVE
// and CKA_NEVER_EXTRACTABLE consistent with each other and the key, as
// finishKey sets them.
func checkKeyOrigin(a object.Attrs, class, keyType uint64) error {
	genMech, _ := a.Ulong(ck.CKA_KEY_GEN_MECHANISM)
	if a.Bool(ck.CKA_LOCAL) {
		row, ok := mech.LookupMechanism(genMech)
		gen := ok && len(row.KeyTypes) > 0 && row.KeyTypes[0] == keyType &&
			(class == ck.CKO_SECRET_KEY && row.GenerateKey != nil || class != ck.CKO_SECRET_KEY && row.GenerateKeyPair != nil)
		if !gen {
			return hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "object: CKA_LOCAL needs the mechanism that generates this key type")
		}
	} else if genMech != object.UnavailableInfo {
		return hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "object: CKA_KEY_GEN_MECHANISM on a key that was not generated here")
	}
	if class == ck.CKO_PUBLIC_KEY {
		return nil
	}
	if a.Bool(ck.CKA_ALWAYS_SENSITIVE) && !a.Bool(ck.CKA_SENSITIVE) {
		return hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "object: CKA_ALWAYS_SENSITIVE on a key that is not sensitive")
	}
	if a.Bool(ck.CKA_NEVER_EXTRACTABLE) && a.Bool(ck.CKA_EXTRACTABLE) {
		return hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "object: CKA_NEVER_EXTRACTABLE on an extractable key")
	}
	return nil
}

// checkMaterial checks the attributes the HSM derives from an object's
// value: a secret key's length and check value, a key pair's public
// attributes, a certificate's check value.
func checkMaterial(o *object.Object, class, keyType uint64, material []byte) error {
	a := o.Attrs
	switch class {
	case ck.CKO_SECRET_KEY:
		if material == nil {
			return hsmerr.Errorf(ck.CKR_TEMPLATE_INCOMPLETE, "object: a secret key needs its sealed value")
		}
		want := object.Attrs{}
		want.SetUlong(ck.CKA_KEY_TYPE, keyType)
		if err := mech.SecretKeyAttrs(want, material); err != nil {
			return err
		}
		for _, t := range []uint64{ck.CKA_VALUE_LEN, ck.CKA_CHECK_VALUE} {
			if !bytes.Equal(a[t], want[t]) {
				return hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "object: %s does not match the key", ck.AttrName(t))
			}
		}
	case ck.CKO_PRIVATE_KEY:
		if material == nil {
			return hsmerr.Errorf(ck.CKR_TEMPLATE_INCOMPLETE, "object: a private key needs its sealed value")
		}
		kt, priv, err := mech.ParsePrivateKey(material)
		if err != nil {
			return hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "object: the sealed value is not a private key")
		}
		if kt != keyType {
			return hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "object: the sealed key is %s, CKA_KEY_TYPE says %s", ck.KeyTypeName(kt), ck.KeyTypeName(keyType))
		}
		return samePublicAttrs(a, class, keyType, priv.Public(), false)
	case ck.CKO_PUBLIC_KEY:
		if material != nil {
			return hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "object: a public key has no sealed value")
		}
		pub, err := mech.PublicKeyFromAttrs(keyType, a)
		if err != nil {
			return err
		}
		// C_CreateObject keeps the caller's encoding of CKA_EC_POINT (raw
		// or DER); PublicKeyFromAttrs has just checked it is the point.
		return samePublicAttrs(a, class, keyType, pub, true)
	case ck.CKO_CERTIFICATE:
		if material != nil {
			return hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "object: a certificate has no sealed value")
		}
		sum := sha1.Sum(a[ck.CKA_VALUE])
		if !bytes.Equal(a[ck.CKA_CHECK_VALUE], sum[:3]) {
			return hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "object: CKA_CHECK_VALUE does not match the certificate")
		}
	}
	// Data objects may carry a sealed value or not.
	return nil
}

// samePublicAttrs checks that every public attribute of the key that applies
// to the object's class holds the key's value.
func samePublicAttrs(a object.Attrs, class, keyType uint64, pub crypto.PublicKey, skipPoint bool) error {
	kt, want, err := mech.PublicKeyAttrs(pub)
	if err != nil {
		return err
	}
	if kt != keyType {
		return hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "object: the key is %s, CKA_KEY_TYPE says %s", ck.KeyTypeName(kt), ck.KeyTypeName(keyType))
	}
	for _, t := range object.SortedTypes(want) {
		v := want[t]
		if !object.AttrApplies(class, keyType, t) || object.AttrSecret(class, keyType, t) || skipPoint && t == ck.CKA_EC_POINT {
			continue
		}
		if !bytes.Equal(a[t], v) {
			return hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "object: %s does not match the key", ck.AttrName(t))
		}
	}
	return nil
}
