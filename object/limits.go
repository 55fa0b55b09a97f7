package object

// Limits on what one template may hold.
const (
	MaxTemplateAttrs = 64       // attributes in one template
	MaxAttrValue     = 64 << 10 // bytes in one attribute value
)

// UnavailableInfo is CK_UNAVAILABLE_INFORMATION: an attribute such as
// CKA_KEY_GEN_MECHANISM whose value is not known.
const UnavailableInfo = ^uint64(0)
