package object

import (
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

// Limits on what one template may hold.
const (
	MaxTemplateAttrs = 64       // attributes in one template
	MaxAttrValue     = 64 << 10 // bytes in one attribute value
)

// UnavailableInfo is CK_UNAVAILABLE_INFORMATION: an attribute such as
// CKA_KEY_GEN_MECHANISM whose value is not known.
const UnavailableInfo = ^uint64(0)

// CheckTemplate bounds a template a caller sent: at most MaxTemplateAttrs
// attributes of at most MaxAttrValue bytes each. name is the request field,
// for the error.
func CheckTemplate(name string, t Template) error {
	if len(t) > MaxTemplateAttrs {
		return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "%s has more than %d attributes", name, MaxTemplateAttrs)
	}
	for _, a := range t {
		if len(a.Value) > MaxAttrValue {
			return hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "%s: %s is longer than %d bytes", name, ck.AttrName(a.Type), MaxAttrValue)
		}
	}
	return nil
}

// AllTrusted reports whether t changes CKA_TRUSTED and nothing else (the
// one attribute change a crypto officer makes).
func AllTrusted(t Template) bool {
	for _, a := range t {
		if a.Type != ck.CKA_TRUSTED {
			return false
		}
	}
	return true
}
