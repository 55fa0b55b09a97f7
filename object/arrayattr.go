package object

// Array attributes (CKF_ARRAY_ATTRIBUTE whose value is a CK_ATTRIBUTE
// array): CKA_WRAP_TEMPLATE, CKA_UNWRAP_TEMPLATE, CKA_DERIVE_TEMPLATE.
// Canonically a template value is u32 count, then per attribute u64 type,
// u32 length and the canonical value, all big-endian; the inner attributes
// are known, not arrays themselves, each given once.

import (
	"bytes"
	"encoding/binary"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

// KindTemplate is an attribute whose value is an attribute template.
const KindTemplate Kind = 16

// MaxInnerAttrs bounds the attributes of one template attribute.
const MaxInnerAttrs = 64

// IsTemplateAttr reports whether t is an attribute whose value is a
// CK_ATTRIBUTE array.
func IsTemplateAttr(t uint64) bool {
	return t == ck.CKA_WRAP_TEMPLATE || t == ck.CKA_UNWRAP_TEMPLATE || t == ck.CKA_DERIVE_TEMPLATE
}

// EncodeTemplateValue encodes a template as an array attribute's value.
func EncodeTemplateValue(t Template) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(t)))
	for _, a := range t {
		b = binary.BigEndian.AppendUint64(b, a.Type)
		b = binary.BigEndian.AppendUint32(b, uint32(len(a.Value)))
		b = append(b, a.Value...)
	}
	return b
}

// DecodeTemplateValue decodes and checks an array attribute's value:
// CKR_ATTRIBUTE_VALUE_INVALID if it is malformed, names an unknown or
// array attribute, gives one twice, or a value that does not fit its kind.
func DecodeTemplateValue(outer uint64, v []byte) (Template, error) {
	bad := func(why string) error {
		return hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "%s: %s", ck.AttrName(outer), why)
	}
	if len(v) < 4 {
		return nil, bad("not an attribute array")
	}
	n := binary.BigEndian.Uint32(v)
	v = v[4:]
	if n > MaxInnerAttrs {
		return nil, bad("more than 64 attributes")
	}
	out := make(Template, 0, n)
	seen := map[uint64]bool{}
	for i := uint32(0); i < n; i++ {
		if len(v) < 12 {
			return nil, bad("truncated")
		}
		t, l := binary.BigEndian.Uint64(v), binary.BigEndian.Uint32(v[8:])
		v = v[12:]
		if uint64(l) > uint64(len(v)) {
			return nil, bad("truncated")
		}
		val := append([]byte{}, v[:l]...)
		v = v[l:]
		k, ok := knownAttrs[t]
		if !ok || k == KindTemplate {
			return nil, bad(ck.AttrName(t) + " cannot be in it")
		}
		if seen[t] {
			return nil, bad(ck.AttrName(t) + " given twice")
		}
		seen[t] = true
		if err := checkValue(t, k, val); err != nil {
			return nil, bad(err.Error())
		}
		out = append(out, Attribute{Type: t, Value: val})
	}
	if len(v) != 0 {
		return nil, bad("bytes after the last attribute")
	}
	return out, nil
}

// MatchesTemplateValue reports whether an object has every attribute of
// an array attribute's value with an equal value (CKA_WRAP_TEMPLATE):
// sensitive attributes, not in Attrs, never match.
func MatchesTemplateValue(o *Object, outer uint64, v []byte) (bool, error) {
	t, err := DecodeTemplateValue(outer, v)
	if err != nil {
		return false, err
	}
	for _, a := range t {
		got, ok := o.Attrs[a.Type]
		if !ok || !bytes.Equal(got, a.Value) {
			return false, nil
		}
	}
	return true, nil
}

// ApplyTemplateValue puts an array attribute's attributes (a key's
// CKA_UNWRAP_TEMPLATE or CKA_DERIVE_TEMPLATE) into a caller's template for
// the new key: an attribute the caller gives with another value is
// CKR_TEMPLATE_INCONSISTENT; the rest are added.
func ApplyTemplateValue(outer uint64, v []byte, user Template) (Template, error) {
	if len(v) == 0 {
		return user, nil
	}
	t, err := DecodeTemplateValue(outer, v)
	if err != nil {
		return nil, err
	}
	out := append(Template{}, user...)
	for _, a := range t {
		if uv, ok := FindAttr(user, a.Type); ok {
			if !bytes.Equal(uv, a.Value) {
				return nil, hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "%s conflicts with the key's %s", ck.AttrName(a.Type), ck.AttrName(outer))
			}
			continue
		}
		out = append(out, a)
	}
	return out, nil
}
