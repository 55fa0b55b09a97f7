package object

// Limits on what one template may hold.
const (
	MaxTemplateAttrs = 64       // attributes in one template
	MaxAttrValue     = 64 << 10 // bytes in one attribute value
)
