package mech

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	_ "crypto/sha1" // registers crypto.SHA1
	_ "crypto/sha256"
	_ "crypto/sha3" // registers crypto.SHA3_*
	_ "crypto/sha512"
	"hash"
	"io"
	"slices"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

// digestHashes maps the CKM_ digest mechanisms, as they appear in PSS and
// OAEP parameters, to Go's hashes.
var digestHashes = map[uint64]crypto.Hash{
	ck.CKM_SHA_1:    crypto.SHA1,
	ck.CKM_SHA224:   crypto.SHA224,
	ck.CKM_SHA256:   crypto.SHA256,
	ck.CKM_SHA384:   crypto.SHA384,
	ck.CKM_SHA512:   crypto.SHA512,
	ck.CKM_SHA3_224: crypto.SHA3_224,
	ck.CKM_SHA3_256: crypto.SHA3_256,
	ck.CKM_SHA3_384: crypto.SHA3_384,
	ck.CKM_SHA3_512: crypto.SHA3_512,
}

// mgfHashes maps the CKG_MGF1_ values to the hash MGF1 uses.
var mgfHashes = map[uint64]crypto.Hash{
	ck.CKG_MGF1_SHA1:     crypto.SHA1,
	ck.CKG_MGF1_SHA224:   crypto.SHA224,
	ck.CKG_MGF1_SHA256:   crypto.SHA256,
	ck.CKG_MGF1_SHA384:   crypto.SHA384,
	ck.CKG_MGF1_SHA512:   crypto.SHA512,
	ck.CKG_MGF1_SHA3_224: crypto.SHA3_224,
	ck.CKG_MGF1_SHA3_256: crypto.SHA3_256,
	ck.CKG_MGF1_SHA3_384: crypto.SHA3_384,
	ck.CKG_MGF1_SHA3_512: crypto.SHA3_512,
}

// hmacKeyTypes are the key types an HMAC mechanism takes: generic secrets,
// and the hash-specific HMAC key types where PKCS#11 defines one.
func hmacKeyTypes(h crypto.Hash) []uint64 {
	specific := map[crypto.Hash]uint64{
		crypto.SHA1:   ck.CKK_SHA_1_HMAC,
		crypto.SHA224: ck.CKK_SHA224_HMAC,
		crypto.SHA256: ck.CKK_SHA256_HMAC,
		crypto.SHA384: ck.CKK_SHA384_HMAC,
		crypto.SHA512: ck.CKK_SHA512_HMAC,
	}
	if t, ok := specific[h]; ok {
		return []uint64{ck.CKK_GENERIC_SECRET, t}
	}
	return []uint64{ck.CKK_GENERIC_SECRET}
}

func sum(h crypto.Hash, data []byte) []byte {
	d := h.New()
	d.Write(data)
	return d.Sum(nil)
}

// digestRow is a message digest mechanism.
func digestRow(t uint64, h crypto.Hash) Mechanism {
	return Mechanism{
		Type:  t,
		Flags: ck.CKF_DIGEST,
		Param: ParamNone,
		Digest: func(_ Mech, in []byte) ([]byte, error) {
			return sum(h, in), nil
		},
	}
}

// macLen returns the MAC length a MAC mechanism produces: full for the plain
// mechanisms, MacLenParams.Len (1 to full) for the _GENERAL ones.
func macLen(m Mech, general bool, full int) (int, error) {
	if !general {
		return full, nil
	}
	p, err := param[MacLenParams](m, false)
	if err != nil {
		return 0, err
	}
	if p.Len < 1 || p.Len > uint64(full) {
		return 0, hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "the MAC length must be 1 to %d bytes", full)
	}
	return int(p.Len), nil
}

// secretOf returns the value of a secret key of one of the given types.
func secretOf(k *Key, types []uint64) ([]byte, error) {
	if k == nil || k.Secret == nil || (k.Class != 0 && k.Class != ck.CKO_SECRET_KEY) {
		return nil, hsmerr.Errorf(ck.CKR_KEY_TYPE_INCONSISTENT, "the mechanism needs a secret key")
	}
	if !slices.Contains(types, k.KeyType) {
		return nil, hsmerr.Errorf(ck.CKR_KEY_TYPE_INCONSISTENT, "the mechanism does not take a %s key", ck.KeyTypeName(k.KeyType))
	}
	if len(k.Secret) == 0 {
		return nil, hsmerr.Errorf(ck.CKR_KEY_SIZE_RANGE, "the key is empty")
	}
	return k.Secret, nil
}

// hmacRow is CKM_<hash>_HMAC, or with general set CKM_<hash>_HMAC_GENERAL.
func hmacRow(t uint64, h crypto.Hash, general bool) Mechanism {
	types := hmacKeyTypes(h)
	pk := ParamNone
	if general {
		pk = ParamMacLen
	}
	newHash := func() hash.Hash { return h.New() }
	mac := func(k *Key, m Mech, data []byte) ([]byte, int, error) {
		key, err := secretOf(k, types)
		if err != nil {
			return nil, 0, err
		}
		n, err := macLen(m, general, h.Size())
		if err != nil {
			return nil, 0, err
		}
		w := hmac.New(newHash, key)
		w.Write(data)
		return w.Sum(nil)[:n], n, nil
	}
	return Mechanism{
		Type:       t,
		KeyTypes:   types,
		Flags:      ck.CKF_SIGN | ck.CKF_VERIFY,
		MinKeySize: 1,
		MaxKeySize: 512,
		Param:      pk,
		Sign: func(k *Key, m Mech, data []byte) ([]byte, error) {
			tag, _, err := mac(k, m, data)
			return tag, err
		},
		Verify: func(k *Key, m Mech, data, sig []byte) error {
			tag, n, err := mac(k, m, data)
			if err != nil {
				return err
			}
			return checkMAC(tag, n, sig)
		},
	}
}

// checkMAC compares a computed MAC with a caller's in constant time.
func checkMAC(tag []byte, n int, sig []byte) error {
	if len(sig) != n {
		return hsmerr.Errorf(ck.CKR_SIGNATURE_LEN_RANGE, "the MAC must be %d bytes", n)
	}
	if !hmac.Equal(tag, sig) {
		return hsmerr.Errorf(ck.CKR_SIGNATURE_INVALID, "the MAC does not match")
	}
	return nil
}

// secretKeyGenRow is a secret key generation mechanism (sizes in bytes).
func secretKeyGenRow(t, keyType uint64, min, max uint64, valid func(n int) bool) Mechanism {
	return Mechanism{
		Type:       t,
		KeyTypes:   []uint64{keyType},
		Flags:      ck.CKF_GENERATE,
		MinKeySize: min,
		MaxKeySize: max,
		Param:      ParamNone,
		GenerateKey: func(r io.Reader, size int) ([]byte, error) {
			if size < int(min) || size > int(max) || !valid(size) {
				return nil, hsmerr.Errorf(ck.CKR_KEY_SIZE_RANGE, "%s makes keys of %d to %d bytes", ck.MechName(t), min, max)
			}
			b := make([]byte, size)
			if _, err := io.ReadFull(r, b); err != nil {
				return nil, &hsmerr.Error{RV: ck.CKR_FUNCTION_FAILED, Msg: "reading random bytes", Err: err}
			}
			return b, nil
		},
	}
}

// GenerateRandom returns n bytes from the operating system's random source.
func GenerateRandom(n int) ([]byte, error) {
	if n < 0 {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "negative random length")
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, &hsmerr.Error{RV: ck.CKR_FUNCTION_FAILED, Msg: "reading random bytes", Err: err}
	}
	return b, nil
}
