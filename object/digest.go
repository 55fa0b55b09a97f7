package object

import (
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

// Digestible decides which keys C_DigestKey may feed into a digest
// (docs/security-model.md, "C_DigestKey"). PKCS#11 digests "the value of a
// secret key" and leaves to the token which keys it refuses
// (CKR_KEY_INDIGESTIBLE). A digest of a key is a function of its value
// that leaves the HSM: with SHA-1, SHA-2 or SHA-3 it does not give the
// value back, but it confirms a guess of a short or low-entropy value
// offline, and it tells whether two keys are equal. So only a secret key
// whose value is not kept from its owner anyway may be digested: one that
// is not sensitive (C_GetAttributeValue reads CKA_VALUE) or that is
// extractable (C_WrapKey takes it out). A sensitive key that is not
// extractable promises that its value leaves the HSM in no form; it is
// refused, and so is every key that is not a secret key.
func Digestible(a Attrs) error {
	if class, _ := a.Ulong(ck.CKA_CLASS); class != ck.CKO_SECRET_KEY {
		return hsmerr.Errorf(ck.CKR_KEY_INDIGESTIBLE, "only a secret key can be digested")
	}
	if a.Bool(ck.CKA_SENSITIVE) && !a.Bool(ck.CKA_EXTRACTABLE) {
		return hsmerr.Errorf(ck.CKR_KEY_INDIGESTIBLE, "a sensitive key that is not extractable is never digested")
	}
	return nil
}
