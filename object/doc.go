// Package object holds what a PKCS#11 object is and the decisions about its
// attributes: the attribute rule table (attr.go: which attribute applies to
// which class and key type, its kind, default and flags), templates and how
// they build, change and match an object (template.go), the array
// attributes whose value is a template (arrayattr.go: CKA_WRAP_TEMPLATE and
// its kin, their canonical encoding, matching and applying), the checks of a
// finished object's clear attributes (attrcheck.go), the usage flag policy
// (usage.go), roles, and who may do what with an object (access.go). It is
// pure and deterministic; it does no crypto and holds no key material.
package object
