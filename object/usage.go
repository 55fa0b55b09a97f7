package object

import (
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

// The key usage policy against the Clulow attack (docs/key-usage-policy.md).
// A key that may both wrap and decrypt lets its user wrap a sensitive key
// and decrypt the result: the key comes out in clear. A key that may both
// unwrap and encrypt lets its user encrypt a value of its choosing and
// unwrap it as a key it knows, with whatever attributes it likes. So, for a
// secret key, CKA_WRAP excludes CKA_DECRYPT and CKA_UNWRAP excludes
// CKA_ENCRYPT; for a key pair made together, the public key's CKA_WRAP
// excludes the private key's CKA_DECRYPT and the public key's CKA_ENCRYPT
// the private key's CKA_UNWRAP; and a public key may not wrap while the
// caller holds its private half with CKA_DECRYPT.
//
// A key whose value its owner can read anyway (CKA_SENSITIVE false,
// CKA_EXTRACTABLE true) and that no officer marked CKA_TRUSTED is exempt:
// whoever wraps under it can decrypt the result with the value it reads,
// so the pair gives nothing more (pkcs11-tool's ECDH derive asks for such
// a key with every usage). Turning such a key sensitive re-checks the rule.
//
// Usages only shrink on a key that hides its value: a usage of the four may
// be turned off, but not on after the key was made, or a key could wrap,
// drop CKA_WRAP, take CKA_DECRYPT and decrypt what it wrapped.

// usageFlags are the four usages the policy is about.
var usageFlags = []uint64{ck.CKA_WRAP, ck.CKA_UNWRAP, ck.CKA_ENCRYPT, ck.CKA_DECRYPT}

// ValueKnown tells whether the key's owner can read its value and no
// officer vouched for it: the policy has nothing to protect there.
func ValueKnown(a Attrs) bool {
	return !a.Bool(ck.CKA_SENSITIVE) && a.Bool(ck.CKA_EXTRACTABLE) && !a.Bool(ck.CKA_TRUSTED)
}

// usageConflict returns the first pair of usages a secret key may not hold
// together, if it holds one.
func usageConflict(a Attrs) (string, bool) {
	if class, _ := a.Ulong(ck.CKA_CLASS); class != ck.CKO_SECRET_KEY || ValueKnown(a) {
		return "", false
	}
	switch {
	case a.Bool(ck.CKA_WRAP) && a.Bool(ck.CKA_DECRYPT):
		return "a key may not both wrap (CKA_WRAP) and decrypt (CKA_DECRYPT)", true
	case a.Bool(ck.CKA_UNWRAP) && a.Bool(ck.CKA_ENCRYPT):
		return "a key may not both unwrap (CKA_UNWRAP) and encrypt (CKA_ENCRYPT)", true
	}
	return "", false
}

// pairConflict is usageConflict for a key pair made together.
func pairConflict(pub, priv Attrs) (string, bool) {
	if !priv.Bool(ck.CKA_SENSITIVE) && priv.Bool(ck.CKA_EXTRACTABLE) && !pub.Bool(ck.CKA_TRUSTED) {
		return "", false
	}
	switch {
	case pub.Bool(ck.CKA_WRAP) && priv.Bool(ck.CKA_DECRYPT):
		return "a key pair may not both wrap (CKA_WRAP) and decrypt (CKA_DECRYPT)", true
	case priv.Bool(ck.CKA_UNWRAP) && pub.Bool(ck.CKA_ENCRYPT):
		return "a key pair may not both unwrap (CKA_UNWRAP) and encrypt (CKA_ENCRYPT)", true
	}
	return "", false
}

// wrapDefaults fills the defaults of a new secret key's usages so that they
// never conflict: a key asked to wrap or unwrap is a wrapping key and does
// not encrypt or decrypt unless the template says so; any other key
// encrypts and decrypts and does not wrap (the table's defaults).
func wrapDefaults(m, attrs Attrs) {
	if !m.Bool(ck.CKA_WRAP) && !m.Bool(ck.CKA_UNWRAP) {
		return
	}
	for _, t := range []uint64{ck.CKA_ENCRYPT, ck.CKA_DECRYPT} {
		if _, given := m[t]; !given {
			attrs.SetBool(t, false)
		}
	}
}

// checkUsageChange is the policy for C_SetAttributeValue and the changes of
// C_CopyObject: next may hold no conflict, and a key that hides its value
// gains none of the four usages.
func checkUsageChange(cur, next Attrs, copying bool) error {
	var rv uint64 = ck.CKR_ATTRIBUTE_VALUE_INVALID
	if copying {
		rv = ck.CKR_TEMPLATE_INCONSISTENT
	}
	if why, bad := usageConflict(next); bad {
		// A key made before the policy may already hold both; a change that
		// adds nothing (a new label) is let through, and C_WrapKey and
		// C_UnwrapKey refuse to use it (CheckWrapUse). A copy never is.
		if _, had := usageConflict(cur); copying || !had {
			return hsmerr.Errorf(rv, "%s", why)
		}
	}
	if class, _ := next.Ulong(ck.CKA_CLASS); !IsKeyClass(class) || ValueKnown(next) {
		return nil
	}
	for _, t := range usageFlags {
		if next.Bool(t) && !cur.Bool(t) {
			return hsmerr.Errorf(rv, "%s cannot be turned on once a key that hides its value exists (it could undo what another usage did)", ck.AttrName(t))
		}
	}
	return nil
}

// PairUsage fills a new key pair's usage defaults so they do not conflict
// (a pair asked to wrap or unwrap neither encrypts nor decrypts unless the
// templates say so) and refuses templates that ask for a conflict.
func PairUsage(pubT, privT Template, pub, priv Attrs) error {
	_, pubW := FindAttr(pubT, ck.CKA_WRAP)
	_, privU := FindAttr(privT, ck.CKA_UNWRAP)
	if pubW && pub.Bool(ck.CKA_WRAP) || privU && priv.Bool(ck.CKA_UNWRAP) {
		if _, given := FindAttr(pubT, ck.CKA_ENCRYPT); !given {
			pub.SetBool(ck.CKA_ENCRYPT, false)
		}
		if _, given := FindAttr(privT, ck.CKA_DECRYPT); !given {
			priv.SetBool(ck.CKA_DECRYPT, false)
		}
	}
	if why, bad := pairConflict(pub, priv); bad {
		return hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "%s", why)
	}
	return nil
}

// CheckNewUsage is the policy in apply, for the objects of one
// create_objects command: each secret key alone, and a public and a private
// key made together as a pair.
func CheckNewUsage(objs []*Object) error {
	for _, o := range objs {
		if why, bad := usageConflict(o.Attrs); bad {
			return hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "%s", why)
		}
	}
	if len(objs) == 2 && objs[0].Class() == ck.CKO_PUBLIC_KEY && objs[1].Class() == ck.CKO_PRIVATE_KEY {
		if why, bad := pairConflict(objs[0].Attrs, objs[1].Attrs); bad {
			return hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "%s", why)
		}
	}
	return nil
}

// CheckWrapUse refuses to wrap or unwrap with a key that holds a conflict:
// one made before the policy, when CKA_WRAP and CKA_UNWRAP defaulted on.
func CheckWrapUse(k *Object) error {
	if why, bad := usageConflict(k.Attrs); bad {
		return hsmerr.Errorf(ck.CKR_KEY_FUNCTION_NOT_PERMITTED, "%s; drop one of the two usages", why)
	}
	return nil
}
