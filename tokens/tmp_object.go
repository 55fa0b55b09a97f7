package tokens

import (
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
)

func CheckTemplate(name string, t object.Template) error {
	if len(t) > object.MaxTemplateAttrs {
		return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "%s has more than %d attributes", name, object.MaxTemplateAttrs)
	}
	for _, a := range t {
		if len(a.Value) > object.MaxAttrValue {
			return hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "%s: %s is longer than %d bytes", name, ck.AttrName(a.Type), object.MaxAttrValue)
		}
	}
	return nil
}

func AllTrusted(t object.Template) bool {
	for _, a := range t {
		if a.Type != ck.CKA_TRUSTED {
			return false
		}
	}
	return true
}
