package object

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

// CheckStoredAttrs checks a finished object's clear attributes against the
// attribute rules (attr.go): a supported class and a key type that fits it,
// only attributes that apply to it, well-formed values, no sensitive or
// sealed attribute in the clear, no officer-only flag set, every defaulted,
// required or HSM-set attribute present, and CKA_UNIQUE_ID matching the
// object's ID. It returns the class and key type (^0 for objects that are
// not keys). It is deterministic: the first broken rule, in attribute type
// order, is reported.
func CheckStoredAttrs(o *Object) (class, keyType uint64, err error) {
	inconsistent := func(format string, args ...any) error {
		return hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "object: "+format, args...)
	}
	a := o.Attrs
	if len(a) > len(attrRules) {
		return 0, 0, inconsistent("too many attributes")
	}
	class, ok := a.Ulong(ck.CKA_CLASS)
	if !ok || !slices.Contains(supportedClasses, class) {
		return 0, 0, inconsistent("CKA_CLASS is missing or not supported")
	}
	isKey := IsKeyClass(class)
	keyType = ^uint64(0)
	if isKey {
		kt, ok := a.Ulong(ck.CKA_KEY_TYPE)
		if !ok {
			return 0, 0, inconsistent("a key needs CKA_KEY_TYPE")
		}
		if class == ck.CKO_SECRET_KEY && !slices.Contains(symmetricKeyTypes, kt) ||
			class != ck.CKO_SECRET_KEY && !slices.Contains(asymmetricTypes, kt) {
			return 0, 0, inconsistent("CKA_KEY_TYPE %s does not fit %s", ck.KeyTypeName(kt), ck.ClassName(class))
		}
		keyType = kt
	}
	certType := ^uint64(0)
	if class == ck.CKO_CERTIFICATE {
		ct, ok := a.Ulong(ck.CKA_CERTIFICATE_TYPE)
		if !ok || ct != ck.CKC_X_509 {
			return 0, 0, inconsistent("only CKC_X_509 certificates are supported")
		}
		certType = ct
	}
	rules := rulesFor(class, keyType, certType)
	// In type order, so that the first broken rule, and so the refusal,
	// is the same on every node.
	for _, t := range SortedTypes(a) {
		v := a[t]
		r, ok := rules[t]
		if !ok {
			return 0, 0, inconsistent("%s does not apply to %s", ck.AttrName(t), ck.ClassName(class))
		}
		if err := checkValue(t, r.kind, v); err != nil {
			return 0, 0, err
		}
		if len(v) > MaxAttrValue {
			return 0, 0, hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "object: %s is longer than %d bytes", ck.AttrName(t), MaxAttrValue)
		}
		switch {
		case r.flags&(fSensitive|fSealed) != 0:
			return 0, 0, hsmerr.Errorf(ck.CKR_ATTRIBUTE_SENSITIVE, "object: %s must be sealed, not in the clear attributes", ck.AttrName(t))
		case r.flags&fSOOnly != 0 && v[0] == 1:
			// No crypto officer makes objects, and a crypto user may not
			// set these (BuildAttrs refuses them, CopyObject clears them).
			return 0, 0, hsmerr.Errorf(ck.CKR_ATTRIBUTE_READ_ONLY, "object: %s can only be set by a crypto officer", ck.AttrName(t))
		case t == ck.CKA_ALWAYS_AUTHENTICATE && v[0] == 1:
			return 0, 0, hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "object: CKA_ALWAYS_AUTHENTICATE is not supported")
		}
	}
	// Complete: every attribute with a default, every required one and
	// every one the HSM sets is present, so nothing reads as a silent
	// false (a missing CKA_SENSITIVE would make a key readable).
	for _, t := range SortedKeys(rules) {
		r := rules[t]
		if r.flags&(fSensitive|fSealed) != 0 {
			continue // kept in Object.Sealed
		}
		if _, ok := a[t]; !ok && (r.def != nil || r.flags&(fReqCreate|fTokenSet) != 0) {
			return 0, 0, hsmerr.Errorf(ck.CKR_TEMPLATE_INCOMPLETE, "object: %s is missing", ck.AttrName(t))
		}
	}
	if !bytes.Equal(a[ck.CKA_UNIQUE_ID], []byte(fmt.Sprintf("%016x", o.ID))) {
		return 0, 0, inconsistent("CKA_UNIQUE_ID does not match the object")
	}
	if !bytes.Equal(a[ck.CKA_UNIQUE_ID], []byte(fmt.Sprintf("%016x", o.ID))) {
		return 0, 0, inconsistent("CKA_UNIQUE_ID does not match the object")
	}
	return class, keyType, nil
}
