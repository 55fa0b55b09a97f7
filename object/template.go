package object

import (
	"bytes"
	"encoding/binary"
	"slices"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

// Attribute is one entry of a caller's template, canonically encoded.
type Attribute struct {
	Type  uint64
	Value []byte
}

// Template is a caller's attribute list, in the caller's order.
type Template []Attribute

// TemplateOp says which function a template was given to; the attribute
// rules differ between them.
type TemplateOp int

const (
	OpCreate   TemplateOp = iota // C_CreateObject
	OpGenerate                   // C_GenerateKey, C_GenerateKeyPair
	OpUnwrap                     // C_UnwrapKey
	OpDerive                     // C_DeriveKey
)

// Classes and key types the HSM holds.
var (
	supportedClasses  = []uint64{ck.CKO_DATA, ck.CKO_CERTIFICATE, ck.CKO_PUBLIC_KEY, ck.CKO_PRIVATE_KEY, ck.CKO_SECRET_KEY}
	asymmetricTypes   = []uint64{ck.CKK_RSA, ck.CKK_EC, ck.CKK_EC_EDWARDS, ck.CKK_ML_KEM, ck.CKK_ML_DSA}
	symmetricKeyTypes = []uint64{ck.CKK_AES, ck.CKK_GENERIC_SECRET, ck.CKK_CHACHA20}
)

// CheckSecretKeyType answers CKR_ATTRIBUTE_VALUE_INVALID for a
// C_GenerateKey template whose CKA_KEY_TYPE is a secret key type the HSM
// does not hold, before the mechanism is looked at: AWS CloudHSM and nShield
// answer so, and applications (crypto11's HMAC keys) fall back on it.
func CheckSecretKeyType(t Template) error {
	for _, a := range t {
		if a.Type == ck.CKA_KEY_TYPE && len(a.Value) == 8 {
			if kt := binary.BigEndian.Uint64(a.Value); !contains(symmetricKeyTypes, kt) {
				return hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "CKA_KEY_TYPE %s is not a secret key type this HSM holds", ck.KeyTypeName(kt))
			}
		}
	}
	return nil
}

// decodeTemplate checks every value against its kind and folds the list into
// a map. A repeated attribute with the same value is allowed; with another
// value it is inconsistent.
func decodeTemplate(tmpl Template) (Attrs, error) {
	m := Attrs{}
	for _, a := range tmpl {
		k, ok := knownAttrs[a.Type]
		if !ok {
			return nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_TYPE_INVALID, "%s is not supported", ck.AttrName(a.Type))
		}
		if err := checkValue(a.Type, k, a.Value); err != nil {
			return nil, err
		}
		if old, dup := m[a.Type]; dup && !bytes.Equal(old, a.Value) {
			return nil, hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "%s given twice with different values", ck.AttrName(a.Type))
		}
		m[a.Type] = append([]byte{}, a.Value...)
	}
	return m, nil
}

// fixUlong makes sure the template's value of t, if any, is want.
func fixUlong(m Attrs, t, want uint64) error {
	if v, ok := m.Ulong(t); ok && v != want {
		return hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "%s does not fit the operation", ck.AttrName(t))
	}
	m.SetUlong(t, want)
	return nil
}

// BuildAttrs applies the attribute rules to a template for a new object.
//
// class and keyType are what the operation makes (from the mechanism); 0 and
// ^0 mean "take it from the template", as C_CreateObject does. It returns
// the object's public attributes, defaults filled in, and apart from them the
// attributes the engine seals: the secret ones the caller supplied (CKA_VALUE
// of a secret key, the private components of a private key) and a data
// object's CKA_VALUE, given or defaulted.
// Attributes only the HSM sets are left for the engine to add.
func BuildAttrs(op TemplateOp, tmpl Template, class, keyType uint64) (attrs, secrets Attrs, err error) {
	m, err := decodeTemplate(tmpl)
	if err != nil {
		return nil, nil, err
	}
	if class == 0 {
		c, ok := m.Ulong(ck.CKA_CLASS)
		if !ok {
			return nil, nil, hsmerr.Errorf(ck.CKR_TEMPLATE_INCOMPLETE, "CKA_CLASS is required")
		}
		class = c
	} else if err := fixUlong(m, ck.CKA_CLASS, class); err != nil {
		return nil, nil, err
	}
	if !contains(supportedClasses, class) {
		return nil, nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "CKA_CLASS %s is not supported", ck.ClassName(class))
	}
	var certType uint64 = ^uint64(0)
	isKey := IsKeyClass(class)
	if isKey {
		if keyType == ^uint64(0) {
			kt, ok := m.Ulong(ck.CKA_KEY_TYPE)
			if !ok {
				return nil, nil, hsmerr.Errorf(ck.CKR_TEMPLATE_INCOMPLETE, "CKA_KEY_TYPE is required")
			}
			keyType = kt
		} else if err := fixUlong(m, ck.CKA_KEY_TYPE, keyType); err != nil {
			return nil, nil, err
		}
		switch {
		case class == ck.CKO_SECRET_KEY && !contains(symmetricKeyTypes, keyType),
			class != ck.CKO_SECRET_KEY && !contains(asymmetricTypes, keyType):
			return nil, nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "CKA_KEY_TYPE %s is not supported for %s", ck.KeyTypeName(keyType), ck.ClassName(class))
		}
	} else {
		keyType = ^uint64(0)
		if _, ok := m[ck.CKA_KEY_TYPE]; ok {
			return nil, nil, hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "CKA_KEY_TYPE given for %s", ck.ClassName(class))
		}
	}
	if class == ck.CKO_CERTIFICATE {
		ct, ok := m.Ulong(ck.CKA_CERTIFICATE_TYPE)
		if !ok {
			return nil, nil, hsmerr.Errorf(ck.CKR_TEMPLATE_INCOMPLETE, "CKA_CERTIFICATE_TYPE is required")
		}
		if ct != ck.CKC_X_509 {
			return nil, nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "only CKC_X_509 certificates are supported")
		}
		certType = ct
	}
	rules := rulesFor(class, keyType, certType)
	attrs, secrets = Attrs{}, Attrs{}
	for t, v := range m {
		r, ok := rules[t]
		if !ok {
			return nil, nil, hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "%s does not apply to %s", ck.AttrName(t), ck.ClassName(class))
		}
		switch {
		case r.flags&fTokenSet != 0:
			return nil, nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_READ_ONLY, "%s is set by the HSM", ck.AttrName(t))
		case r.flags&fSOOnly != 0 && v[0] == 1:
			return nil, nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_READ_ONLY, "%s can only be set by a crypto officer", ck.AttrName(t))
		case op == OpCreate && r.flags&fNoCreate != 0,
			op == OpGenerate && r.flags&fNoGen != 0,
			(op == OpUnwrap || op == OpDerive) && r.flags&fNoUnwrap != 0:
			return nil, nil, hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "%s must not be given here", ck.AttrName(t))
		case t == ck.CKA_ALWAYS_AUTHENTICATE && v[0] == 1:
			return nil, nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "CKA_ALWAYS_AUTHENTICATE is not supported")
		}
		if r.flags&(fSensitive|fSealed) != 0 {
			secrets[t] = v
		} else {
			attrs[t] = v
		}
	}
	for t, r := range rules {
		_, given := m[t]
		if !given && (op == OpCreate && r.flags&fReqCreate != 0 ||
			op == OpGenerate && r.flags&fReqGen != 0 ||
			op == OpUnwrap && r.flags&fReqUnwrap != 0) {
			return nil, nil, hsmerr.Errorf(ck.CKR_TEMPLATE_INCOMPLETE, "%s is required", ck.AttrName(t))
		}
		if !given && r.def != nil {
			if r.flags&fSealed != 0 {
				secrets[t] = append([]byte{}, r.def...)
			} else {
				attrs[t] = append([]byte{}, r.def...)
			}
		}
	}
	if class == ck.CKO_SECRET_KEY {
		wrapDefaults(m, attrs)
		if why, bad := usageConflict(attrs); bad {
			return nil, nil, hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "%s", why)
		}
	}
	return attrs, secrets, nil
}

// ApplySet checks a C_SetAttributeValue (or the changes of C_CopyObject)
// against the rules and returns the object's new attributes. A crypto officer
// may set only the SO-only attributes (CKA_TRUSTED). copying allows the few
// attributes only a copy may change (CKA_TOKEN, CKA_PRIVATE, CKA_MODIFIABLE
// to false).
func ApplySet(cur Attrs, changes Template, role Role, copying bool) (Attrs, error) {
	m, err := decodeTemplate(changes)
	if err != nil {
		return nil, err
	}
	if copying && !cur.Bool(ck.CKA_COPYABLE) {
		return nil, hsmerr.Errorf(ck.CKR_ACTION_PROHIBITED, "the object is not copyable")
	}
	if !copying && !cur.Bool(ck.CKA_MODIFIABLE) {
		return nil, hsmerr.Errorf(ck.CKR_ACTION_PROHIBITED, "the object is not modifiable")
	}
	class, _ := cur.Ulong(ck.CKA_CLASS)
	keyType, ok := cur.Ulong(ck.CKA_KEY_TYPE)
	if !ok {
		keyType = ^uint64(0)
	}
	certType, ok := cur.Ulong(ck.CKA_CERTIFICATE_TYPE)
	if !ok {
		certType = ^uint64(0)
	}
	rules := rulesFor(class, keyType, certType)
	next := cur.Clone()
	// In type order: apply runs this, and the refusal must not depend on
	// map order.
	for _, t := range SortedTypes(m) {
		v := m[t]
		r, ok := rules[t]
		if !ok {
			return nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_TYPE_INVALID, "%s does not apply to %s", ck.AttrName(t), ck.ClassName(class))
		}
		old := cur[t]
		if bytes.Equal(old, v) {
			continue // setting the same value is always allowed
		}
		copyOnly := copying && (t == ck.CKA_TOKEN || t == ck.CKA_PRIVATE || (t == ck.CKA_MODIFIABLE && v[0] == 0))
		switch {
		case r.flags&fModifiable == 0 && !copyOnly:
			return nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_READ_ONLY, "%s cannot be changed", ck.AttrName(t))
		case r.flags&fSOOnly != 0 && role != RoleCO && v[0] == 1:
			return nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_READ_ONLY, "%s can only be set by a crypto officer", ck.AttrName(t))
		case r.flags&fSOOnly == 0 && role == RoleCO:
			return nil, hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "a crypto officer may only set CKA_TRUSTED")
		case r.flags&fStickyTrue != 0 && cur.Bool(t) && v[0] == 0:
			return nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_READ_ONLY, "%s cannot go back to false", ck.AttrName(t))
		case r.flags&fStickyFalse != 0 && !cur.Bool(t) && v[0] == 1:
			return nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_READ_ONLY, "%s cannot go back to true", ck.AttrName(t))
		}
		next[t] = v
	}
	if err := checkUsageChange(cur, next, copying); err != nil {
		return nil, err
	}
	return next, nil
}

// AttrValue is one answer of C_GetAttributeValue.
type AttrValue struct {
	Type  uint64
	Value []byte
	RV    uint64 // CKR_OK, CKR_ATTRIBUTE_SENSITIVE or CKR_ATTRIBUTE_TYPE_INVALID
}

// ReadAttrs answers C_GetAttributeValue for an object. secret returns the
// value of a sensitive attribute (it unseals the key) and is called only
// when the key may be revealed: not sensitive and extractable. sealed
// returns the value of a sealed, non-sensitive attribute (a data object's
// CKA_VALUE), which whoever may read the object may read.
func ReadAttrs(o *Object, types []uint64, secret, sealed func(t uint64) ([]byte, bool)) []AttrValue {
	class := o.Class()
	certType, ok := o.Attrs.Ulong(ck.CKA_CERTIFICATE_TYPE)
	if !ok {
		certType = ^uint64(0)
	}
	rules := rulesFor(class, o.KeyType(), certType)
	out := make([]AttrValue, len(types))
	for i, t := range types {
		out[i].Type = t
		r, ok := rules[t]
		if !ok {
			out[i].RV = ck.CKR_ATTRIBUTE_TYPE_INVALID
			continue
		}
		if r.flags&fSealed != 0 {
			v, ok := sealed(t)
			if !ok {
				out[i].RV = ck.CKR_ATTRIBUTE_TYPE_INVALID
				continue
			}
			out[i].Value = v
			continue
		}
		if r.flags&fSensitive != 0 {
			if o.Attrs.Bool(ck.CKA_SENSITIVE) || !o.Attrs.Bool(ck.CKA_EXTRACTABLE) {
				out[i].RV = ck.CKR_ATTRIBUTE_SENSITIVE
				continue
			}
			v, ok := secret(t)
			if !ok {
				out[i].RV = ck.CKR_ATTRIBUTE_TYPE_INVALID
				continue
			}
			out[i].Value = v
			continue
		}
		v, ok := o.Attrs[t]
		if !ok {
			out[i].RV = ck.CKR_ATTRIBUTE_TYPE_INVALID
			continue
		}
		out[i].Value = v
	}
	return out
}

// Matches reports whether an object has every attribute of a C_FindObjects
// template with an equal value. Sensitive and sealed attributes (a data
// object's CKA_VALUE) never match: they are not in Attrs.
func Matches(o *Object, want Attrs) bool {
	for t, v := range want {
		got, ok := o.Attrs[t]
		if !ok || !bytes.Equal(got, v) {
			return false
		}
	}
	return true
}

// DecodeFindTemplate checks a C_FindObjectsInit template. Unknown attributes
// simply match nothing, as the standard asks; malformed values are errors.
func DecodeFindTemplate(tmpl Template) (Attrs, bool, error) {
	m := Attrs{}
	for _, a := range tmpl {
		k, ok := knownAttrs[a.Type]
		if !ok {
			return nil, false, nil
		}
		if err := checkValue(a.Type, k, a.Value); err != nil {
			return nil, false, err
		}
		if old, dup := m[a.Type]; dup && !bytes.Equal(old, a.Value) {
			return nil, false, nil
		}
		m[a.Type] = append([]byte{}, a.Value...)
	}
	return m, true, nil
}

// AddPublicAttrs copies a key's public attributes into a, as far as they
// apply to a's class.
func AddPublicAttrs(a Attrs, pubAttrs Attrs) {
	class, _ := a.Ulong(ck.CKA_CLASS)
	kt, _ := a.Ulong(ck.CKA_KEY_TYPE)
	rules := rulesFor(class, kt, ^uint64(0))
	for t, v := range pubAttrs {
		// A private key's CKA_VALUE is its secret, not the public value
		// of the same name (ML-KEM, ML-DSA).
		if r, ok := rules[t]; ok && r.flags&(fSensitive|fSealed) == 0 {
			a[t] = v
		}
	}
}

// FindAttr returns the value of attribute typ in t, and whether t has it.
func FindAttr(t Template, typ uint64) ([]byte, bool) {
	for _, a := range t {
		if a.Type == typ {
			return a.Value, true
		}
	}
	return nil, false
}

// SortedTypes returns the attribute types of a in order.
func SortedTypes(a Attrs) []uint64 { return SortedKeys(a) }

// SortedKeys returns the keys of m in increasing order.
func SortedKeys[V any](m map[uint64]V) []uint64 {
	keys := make([]uint64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
