package mech

import (
	"crypto/aes"
	"crypto/sha1"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
)

// SecretKeyAttrs checks a secret key's length and sets CKA_VALUE_LEN and
// CKA_CHECK_VALUE.
func SecretKeyAttrs(a object.Attrs, value []byte) error {
	kt, _ := a.Ulong(ck.CKA_KEY_TYPE)
	switch {
	case kt == ck.CKK_AES && len(value) != 16 && len(value) != 24 && len(value) != 32:
		return hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "an AES key is 16, 24 or 32 bytes")
	case kt == ck.CKK_CHACHA20 && len(value) != 32:
		return hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "a ChaCha20 key is 32 bytes")
	case len(value) == 0 || len(value) > 512:
		return hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "a secret key is 1 to 512 bytes")
	}
	a.SetUlong(ck.CKA_VALUE_LEN, uint64(len(value)))
	if kt == ck.CKK_AES {
		b, _ := aes.NewCipher(value)
		var cv [16]byte
		b.Encrypt(cv[:], cv[:])
		a[ck.CKA_CHECK_VALUE] = cv[:3]
	} else {
		sum := sha1.Sum(value)
		a[ck.CKA_CHECK_VALUE] = sum[:3]
	}
	return nil
}
