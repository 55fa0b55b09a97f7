package mech

// Key derivation functions (HKDF, RFC 5869, and the counter mode of NIST
// SP 800-108 over HMAC) and ChaCha20-Poly1305 (RFC 8439), with their
// parameters: PKCS#11 v3.0 CKM_HKDF_DERIVE, CKM_HKDF_DATA,
// CKM_SP800_108_COUNTER_KDF, CKM_CHACHA20_POLY1305 and
// CKM_CHACHA20_KEY_GEN.

import (
	"crypto"
	"crypto/cipher"
	"crypto/hmac"
	"encoding/binary"
	"fmt"
	"hash"
	"io"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"
)

// Parameter kinds of this file's mechanisms.
const (
	ParamHKDF   ParamKind = 40 + iota // *HKDFParams
	ParamKDF108                       // *KDF108Params
	ParamChaCha                       // *ChaChaParams
)

// HKDFParams follows CK_HKDF_PARAMS. PRF is a CKM_ digest; SaltType one of
// CKF_HKDF_SALT_NULL, _DATA, _KEY; SaltKey the handle of the salt key (the
// engine resolves it into KDFInput.SaltKey).
type HKDFParams struct {
	Extract, Expand bool
	PRF             uint64
	SaltType        uint64
	Salt            []byte
	SaltKey         uint64
	Info            []byte
}

// KDF108Data is one CK_PRF_DATA_PARAM of SP 800-108, decoded: Type is
// CK_SP800_108_ITERATION_VARIABLE (LittleEndian, WidthBits: its
// CK_SP800_108_COUNTER_FORMAT), CK_SP800_108_DKM_LENGTH (DKMMethod,
// LittleEndian, WidthBits), CK_SP800_108_BYTE_ARRAY (Bytes), or another
// type, which the mechanism refuses.
type KDF108Data struct {
	Type         uint64
	LittleEndian bool
	WidthBits    uint64
	DKMMethod    uint64
	Bytes        []byte
}

// KDF108Params follows CK_SP800_108_KDF_PARAMS. AdditionalKeys is
// ulAdditionalDerivedKeys: the HSM derives one key per call, so it must be 0.
type KDF108Params struct {
	PRF            uint64 // a CKM_<hash>_HMAC mechanism
	Data           []KDF108Data
	AdditionalKeys uint64
}

// ChaChaParams follows CK_SALSA20_CHACHA20_POLY1305_PARAMS.
type ChaChaParams struct {
	Nonce, AAD []byte
}

// KDFInput is what a DeriveKDF row needs beyond its base key: the length
// to derive, in bytes, and the salt key of HKDF with CKF_HKDF_SALT_KEY.
type KDFInput struct {
	Len     int
	SaltKey *Key
}

// MaxKDFLen bounds what a KDF derives in one call (bytes): a secret key is
// at most 512 bytes, and so is a derived data object.
const MaxKDFLen = 512

// kdf108PRFs are the PRFs of CKM_SP800_108_COUNTER_KDF.
var kdf108PRFs = map[uint64]crypto.Hash{
	ck.CKM_SHA_1_HMAC:    crypto.SHA1,
	ck.CKM_SHA224_HMAC:   crypto.SHA224,
	ck.CKM_SHA256_HMAC:   crypto.SHA256,
	ck.CKM_SHA384_HMAC:   crypto.SHA384,
	ck.CKM_SHA512_HMAC:   crypto.SHA512,
	ck.CKM_SHA3_224_HMAC: crypto.SHA3_224,
	ck.CKM_SHA3_256_HMAC: crypto.SHA3_256,
	ck.CKM_SHA3_384_HMAC: crypto.SHA3_384,
	ck.CKM_SHA3_512_HMAC: crypto.SHA3_512,
}

// kdfBaseTypes are the key types the KDFs derive from.
var kdfBaseTypes = []uint64{ck.CKK_GENERIC_SECRET}

func init() {
	paramNames[ParamHKDF] = "CK_HKDF_PARAMS"
	paramNames[ParamKDF108] = "CK_SP800_108_KDF_PARAMS"
	paramNames[ParamChaCha] = "CK_SALSA20_CHACHA20_POLY1305_PARAMS"
	paramChecks[ParamHKDF] = func(_ uint64, p any) string {
		h, ok := asParam[HKDFParams](p)
		if !ok {
			return wrongParam
		}
		return checkHKDF(h)
	}
	paramChecks[ParamKDF108] = func(_ uint64, p any) string {
		k, ok := asParam[KDF108Params](p)
		if !ok {
			return wrongParam
		}
		_, _, why := kdf108Layout(k)
		return why
	}
	paramChecks[ParamChaCha] = func(_ uint64, p any) string {
		c, ok := asParam[ChaChaParams](p)
		if !ok {
			return wrongParam
		}
		if len(c.Nonce) != chacha20poly1305.NonceSize {
			return "the nonce must be 12 bytes"
		}
		return ""
	}
}

func checkHKDF(h *HKDFParams) string {
	switch {
	case !h.Extract && !h.Expand:
		return "bExtract or bExpand must be true"
	}
	if _, ok := digestHashes[h.PRF]; !ok {
		return "unknown prfHashMechanism"
	}
	if h.Extract {
		switch h.SaltType {
		case ck.CKF_HKDF_SALT_NULL:
		case ck.CKF_HKDF_SALT_DATA:
			if len(h.Salt) == 0 {
				return "CKF_HKDF_SALT_DATA needs a salt"
			}
		case ck.CKF_HKDF_SALT_KEY:
		default:
			return "ulSaltType must be one of CKF_HKDF_SALT_NULL, _DATA, _KEY"
		}
	}
	return ""
}

// hkdfDerive runs HKDF: extract (salt, IKM) when asked, then expand with
// info to n bytes when asked; without expand the result is the PRK, of
// which n bytes are taken.
func hkdfDerive(base *Key, m Mech, in KDFInput) ([]byte, error) {
	p, err := param[HKDFParams](m, false)
	if err != nil {
		return nil, err
	}
	if why := checkHKDF(p); why != "" {
		return nil, hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "%s: %s", ck.MechName(m.Type), why)
	}
	ikm, err := secretOf(base, kdfBaseTypes)
	if err != nil {
		return nil, err
	}
	h := digestHashes[p.PRF]
	newHash := func() hash.Hash { return h.New() }
	n := in.Len
	if n <= 0 || n > MaxKDFLen {
		return nil, hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "the derived length must be 1 to %d bytes", MaxKDFLen)
	}
	prk := ikm
	if p.Extract {
		var salt []byte
		switch p.SaltType {
		case ck.CKF_HKDF_SALT_DATA:
			salt = p.Salt
		case ck.CKF_HKDF_SALT_KEY:
			if salt, err = secretOf(in.SaltKey, kdfBaseTypes); err != nil {
				return nil, hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "%s: hSaltKey must be a generic secret key", ck.MechName(m.Type))
			}
		}
		prk = hkdf.Extract(newHash, ikm, salt)
	}
	if !p.Expand {
		if n > len(prk) {
			return nil, hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "without expand the derived key is the %d-byte PRK", len(prk))
		}
		return append([]byte(nil), prk[:n]...), nil
	}
	if n > 255*h.Size() {
		return nil, hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "HKDF expands to at most %d bytes", 255*h.Size())
	}
	out := make([]byte, n)
	if _, err := io.ReadFull(hkdf.Expand(newHash, prk, p.Info), out); err != nil {
		return nil, hsmerr.Errorf(ck.CKR_FUNCTION_FAILED, "HKDF: %v", err)
	}
	return out, nil
}

func hkdfRow(t uint64, data bool) Mechanism {
	return Mechanism{
		Type:       t,
		KeyTypes:   kdfBaseTypes,
		Flags:      ck.CKF_DERIVE,
		MinKeySize: 1,
		MaxKeySize: 512,
		Param:      ParamHKDF,
		DeriveKDF:  hkdfDerive,
		DataObject: data,
	}
}

// kdf108Layout checks SP 800-108 counter mode parameters: a known PRF,
// exactly one iteration variable (the counter, 8 to 32 bits in steps of 8),
// at most one DKM length (8 to 64 bits in steps of 8, a known method), byte
// arrays, nothing else, and no additional keys. It returns the PRF's hash
// and the index of the counter.
func kdf108Layout(p *KDF108Params) (crypto.Hash, int, string) {
	h, ok := kdf108PRFs[p.PRF]
	if !ok {
		return 0, 0, "prfType must be a CKM_<hash>_HMAC mechanism"
	}
	if p.AdditionalKeys != 0 {
		return 0, 0, "additional derived keys are not supported"
	}
	ctr, dkm := -1, -1
	for i, d := range p.Data {
		switch d.Type {
		case ck.CK_SP800_108_ITERATION_VARIABLE:
			if ctr >= 0 {
				return 0, 0, "more than one iteration variable"
			}
			if d.WidthBits == 0 || d.WidthBits > 32 || d.WidthBits%8 != 0 {
				return 0, 0, "the counter must be 8, 16, 24 or 32 bits"
			}
			ctr = i
		case ck.CK_SP800_108_DKM_LENGTH:
			if dkm >= 0 {
				return 0, 0, "more than one DKM length"
			}
			if d.WidthBits == 0 || d.WidthBits > 64 || d.WidthBits%8 != 0 {
				return 0, 0, "the DKM length must be 8 to 64 bits, in steps of 8"
			}
			if d.DKMMethod != ck.CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS && d.DKMMethod != ck.CK_SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS {
				return 0, 0, "unknown DKM length method"
			}
			dkm = i
		case ck.CK_SP800_108_BYTE_ARRAY:
			if len(d.Bytes) == 0 {
				return 0, 0, "a byte array must not be empty"
			}
		default:
			return 0, 0, fmt.Sprintf("data parameter type 0x%x is not one counter mode takes", d.Type)
		}
	}
	if ctr < 0 {
		return 0, 0, "counter mode needs an iteration variable"
	}
	return h, ctr, ""
}

// putInt appends v as a width-bit integer in the given byte order.
func putInt(b []byte, v uint64, widthBits uint64, little bool) []byte {
	n := int(widthBits / 8)
	var full [8]byte
	if little {
		binary.LittleEndian.PutUint64(full[:], v)
		return append(b, full[:n]...)
	}
	binary.BigEndian.PutUint64(full[:], v)
	return append(b, full[8-n:]...)
}

// kdf108Counter is SP 800-108 counter mode over HMAC with hash h: the
// output is K(1) || K(2) || ... cut to n bytes, where K(i) is the HMAC
// under key of the data parameters in order, the iteration variable
// standing for i and the DKM length for the length derived. p is one
// kdf108Layout has accepted.
func kdf108Counter(h crypto.Hash, key []byte, p *KDF108Params, n int) ([]byte, error) {
	size := h.Size()
	blocks := (n + size - 1) / size
	out := make([]byte, 0, blocks*size)
	mac := hmac.New(func() hash.Hash { return h.New() }, key)
	var buf []byte
	for i := 1; i <= blocks; i++ {
		buf = buf[:0]
		for _, d := range p.Data {
			switch d.Type {
			case ck.CK_SP800_108_ITERATION_VARIABLE:
				if uint64(i) >= uint64(1)<<d.WidthBits {
					return nil, hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "the counter of %d bits cannot count %d blocks", d.WidthBits, blocks)
				}
				buf = putInt(buf, uint64(i), d.WidthBits, d.LittleEndian)
			case ck.CK_SP800_108_DKM_LENGTH:
				bits := uint64(n) * 8
				if d.DKMMethod == ck.CK_SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS {
					bits = uint64(blocks*size) * 8
				}
				if d.WidthBits < 64 && bits >= uint64(1)<<d.WidthBits {
					return nil, hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "the DKM length does not fit %d bits", d.WidthBits)
				}
				buf = putInt(buf, bits, d.WidthBits, d.LittleEndian)
			case ck.CK_SP800_108_BYTE_ARRAY:
				buf = append(buf, d.Bytes...)
			}
		}
		mac.Reset()
		mac.Write(buf)
		out = mac.Sum(out)
	}
	return out[:n], nil
}

func kdf108Row() Mechanism {
	return Mechanism{
		Type:       ck.CKM_SP800_108_COUNTER_KDF,
		KeyTypes:   kdfBaseTypes,
		Flags:      ck.CKF_DERIVE,
		MinKeySize: 1,
		MaxKeySize: 512,
		Param:      ParamKDF108,
		DeriveKDF: func(base *Key, m Mech, in KDFInput) ([]byte, error) {
			p, err := param[KDF108Params](m, false)
			if err != nil {
				return nil, err
			}
			h, _, why := kdf108Layout(p)
			if why != "" {
				return nil, hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "%s: %s", ck.MechName(m.Type), why)
			}
			key, err := secretOf(base, kdfBaseTypes)
			if err != nil {
				return nil, err
			}
			if in.Len <= 0 || in.Len > MaxKDFLen {
				return nil, hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "the derived length must be 1 to %d bytes", MaxKDFLen)
			}
			return kdf108Counter(h, key, p, in.Len)
		},
	}
}

// chachaKeyTypes: ChaCha20-Poly1305 takes CKK_CHACHA20 keys of 32 bytes.
var chachaKeyTypes = []uint64{ck.CKK_CHACHA20}

func chachaAEAD(k *Key, m Mech) (cipher.AEAD, *ChaChaParams, error) {
	p, err := param[ChaChaParams](m, false)
	if err != nil {
		return nil, nil, err
	}
	if len(p.Nonce) != chacha20poly1305.NonceSize {
		return nil, nil, hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "the nonce must be 12 bytes")
	}
	key, err := secretOf(k, chachaKeyTypes)
	if err != nil {
		return nil, nil, err
	}
	a, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, nil, hsmerr.Errorf(ck.CKR_KEY_SIZE_RANGE, "a ChaCha20 key is 32 bytes")
	}
	return a, p, nil
}

func chachaPolyRow() Mechanism {
	return Mechanism{
		Type:       ck.CKM_CHACHA20_POLY1305,
		KeyTypes:   chachaKeyTypes,
		Flags:      fEncDec,
		MinKeySize: 32,
		MaxKeySize: 32,
		Param:      ParamChaCha,
		Encrypt: func(k *Key, m Mech, in []byte) ([]byte, error) {
			a, p, err := chachaAEAD(k, m)
			if err != nil {
				return nil, err
			}
			return a.Seal(nil, p.Nonce, in, p.AAD), nil
		},
		Decrypt: func(k *Key, m Mech, in []byte) ([]byte, error) {
			a, p, err := chachaAEAD(k, m)
			if err != nil {
				return nil, err
			}
			if len(in) < a.Overhead() {
				return nil, hsmerr.Errorf(ck.CKR_ENCRYPTED_DATA_LEN_RANGE, "the ciphertext is shorter than the tag")
			}
			out, err := a.Open(nil, p.Nonce, in, p.AAD)
			if err != nil {
				return nil, hsmerr.Errorf(ck.CKR_ENCRYPTED_DATA_INVALID, "the ciphertext or tag fails authentication")
			}
			return out, nil
		},
	}
}

// kdfRows are this file's rows of the mechanism table.
func kdfRows() []Mechanism {
	return []Mechanism{
		secretKeyGenRow(ck.CKM_CHACHA20_KEY_GEN, ck.CKK_CHACHA20, 32, 32, func(n int) bool { return n == 32 }),
		chachaPolyRow(),
		hkdfRow(ck.CKM_HKDF_DERIVE, false),
		hkdfRow(ck.CKM_HKDF_DATA, true),
		kdf108Row(),
	}
}
