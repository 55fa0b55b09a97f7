package mech

import (
	"crypto"
	"fmt"
	"sort"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

// Operation flags shared by several rows.
const (
	fSignVerify = ck.CKF_SIGN | ck.CKF_VERIFY
	fEncDec     = ck.CKF_ENCRYPT | ck.CKF_DECRYPT
	fWrapUnwrap = ck.CKF_WRAP | ck.CKF_UNWRAP
	// fEC are the capability flags of the mechanisms on NIST prime curves:
	// curves over F_p, given by name (OID), points uncompressed.
	fEC = ck.CKF_EC_F_P | ck.CKF_EC_NAMEDCURVE | ck.CKF_EC_UNCOMPRESS
	// fEdwards: edwards25519 is over F_p and is named by OID or by the
	// printable string "edwards25519".
	fEdwards = ck.CKF_EC_F_P | ck.CKF_EC_OID | ck.CKF_EC_CURVENAME
)

// Key sizes of the rows, in CK_MECHANISM_INFO units (bits for RSA and EC,
// bytes for secret keys).
const (
	rsaMinBits  = 2048
	rsaMaxBits  = 4096
	ecMinBits   = 224 // P-224 signs; Go's crypto/ecdh has no P-224, so ECDH starts at 256
	ecdhMinBits = 256
	ecMaxBits   = 521
)

// mechanisms is the mechanism table. The helpers that make the rows live
// next to their crypto: mech_rsa.go, mech_ec.go, mech_aes.go, mech_hash.go.
var mechanisms = []Mechanism{
	// Key generation.
	rsaKeyGenRow(),
	ecKeyGenRow(),
	edwardsKeyGenRow(),
	secretKeyGenRow(ck.CKM_AES_KEY_GEN, ck.CKK_AES, 16, 32, func(n int) bool { return n == 16 || n == 24 || n == 32 }),
	secretKeyGenRow(ck.CKM_GENERIC_SECRET_KEY_GEN, ck.CKK_GENERIC_SECRET, 1, 512, func(int) bool { return true }),

	// RSA.
	rsaPKCSRow(),
	rsaHashPKCSRow(ck.CKM_SHA1_RSA_PKCS, crypto.SHA1),
	rsaHashPKCSRow(ck.CKM_SHA224_RSA_PKCS, crypto.SHA224),
	rsaHashPKCSRow(ck.CKM_SHA256_RSA_PKCS, crypto.SHA256),
	rsaHashPKCSRow(ck.CKM_SHA384_RSA_PKCS, crypto.SHA384),
	rsaHashPKCSRow(ck.CKM_SHA512_RSA_PKCS, crypto.SHA512),
	rsaHashPKCSRow(ck.CKM_SHA3_224_RSA_PKCS, crypto.SHA3_224),
	rsaHashPKCSRow(ck.CKM_SHA3_256_RSA_PKCS, crypto.SHA3_256),
	rsaHashPKCSRow(ck.CKM_SHA3_384_RSA_PKCS, crypto.SHA3_384),
	rsaHashPKCSRow(ck.CKM_SHA3_512_RSA_PKCS, crypto.SHA3_512),
	rsaPSSRow(ck.CKM_RSA_PKCS_PSS, 0),
	rsaPSSRow(ck.CKM_SHA1_RSA_PKCS_PSS, crypto.SHA1),
	rsaPSSRow(ck.CKM_SHA224_RSA_PKCS_PSS, crypto.SHA224),
	rsaPSSRow(ck.CKM_SHA256_RSA_PKCS_PSS, crypto.SHA256),
	rsaPSSRow(ck.CKM_SHA384_RSA_PKCS_PSS, crypto.SHA384),
	rsaPSSRow(ck.CKM_SHA512_RSA_PKCS_PSS, crypto.SHA512),
	rsaPSSRow(ck.CKM_SHA3_224_RSA_PKCS_PSS, crypto.SHA3_224),
	rsaPSSRow(ck.CKM_SHA3_256_RSA_PKCS_PSS, crypto.SHA3_256),
	rsaPSSRow(ck.CKM_SHA3_384_RSA_PKCS_PSS, crypto.SHA3_384),
	rsaPSSRow(ck.CKM_SHA3_512_RSA_PKCS_PSS, crypto.SHA3_512),
	rsaOAEPRow(),
	rsaX509Row(),

	// EC and Edwards.
	ecdsaRow(ck.CKM_ECDSA, 0),
	ecdsaRow(ck.CKM_ECDSA_SHA1, crypto.SHA1),
	ecdsaRow(ck.CKM_ECDSA_SHA224, crypto.SHA224),
	ecdsaRow(ck.CKM_ECDSA_SHA256, crypto.SHA256),
	ecdsaRow(ck.CKM_ECDSA_SHA384, crypto.SHA384),
	ecdsaRow(ck.CKM_ECDSA_SHA512, crypto.SHA512),
	ecdsaRow(ck.CKM_ECDSA_SHA3_224, crypto.SHA3_224),
	ecdsaRow(ck.CKM_ECDSA_SHA3_256, crypto.SHA3_256),
	ecdsaRow(ck.CKM_ECDSA_SHA3_384, crypto.SHA3_384),
	ecdsaRow(ck.CKM_ECDSA_SHA3_512, crypto.SHA3_512),
	ecdhRow(),
	eddsaRow(),

	// AES.
	aesECBRow(),
	aesCBCRow(ck.CKM_AES_CBC, false),
	aesCBCRow(ck.CKM_AES_CBC_PAD, true),
	aesCTRRow(),
	aesGCMRow(),
	aesKeyWrapRow(),
	aesKeyWrapPadRow(),
	aesCMACRow(ck.CKM_AES_CMAC, false),
	aesCMACRow(ck.CKM_AES_CMAC_GENERAL, true),

	// HMAC.
	hmacRow(ck.CKM_SHA_1_HMAC, crypto.SHA1, false),
	hmacRow(ck.CKM_SHA_1_HMAC_GENERAL, crypto.SHA1, true),
	hmacRow(ck.CKM_SHA224_HMAC, crypto.SHA224, false),
	hmacRow(ck.CKM_SHA224_HMAC_GENERAL, crypto.SHA224, true),
	hmacRow(ck.CKM_SHA256_HMAC, crypto.SHA256, false),
	hmacRow(ck.CKM_SHA256_HMAC_GENERAL, crypto.SHA256, true),
	hmacRow(ck.CKM_SHA384_HMAC, crypto.SHA384, false),
	hmacRow(ck.CKM_SHA384_HMAC_GENERAL, crypto.SHA384, true),
	hmacRow(ck.CKM_SHA512_HMAC, crypto.SHA512, false),
	hmacRow(ck.CKM_SHA512_HMAC_GENERAL, crypto.SHA512, true),
	hmacRow(ck.CKM_SHA3_224_HMAC, crypto.SHA3_224, false),
	hmacRow(ck.CKM_SHA3_224_HMAC_GENERAL, crypto.SHA3_224, true),
	hmacRow(ck.CKM_SHA3_256_HMAC, crypto.SHA3_256, false),
	hmacRow(ck.CKM_SHA3_256_HMAC_GENERAL, crypto.SHA3_256, true),
	hmacRow(ck.CKM_SHA3_384_HMAC, crypto.SHA3_384, false),
	hmacRow(ck.CKM_SHA3_384_HMAC_GENERAL, crypto.SHA3_384, true),
	hmacRow(ck.CKM_SHA3_512_HMAC, crypto.SHA3_512, false),
	hmacRow(ck.CKM_SHA3_512_HMAC_GENERAL, crypto.SHA3_512, true),

	// Digests.
	digestRow(ck.CKM_SHA_1, crypto.SHA1),
	digestRow(ck.CKM_SHA224, crypto.SHA224),
	digestRow(ck.CKM_SHA256, crypto.SHA256),
	digestRow(ck.CKM_SHA384, crypto.SHA384),
	digestRow(ck.CKM_SHA512, crypto.SHA512),
	digestRow(ck.CKM_SHA3_224, crypto.SHA3_224),
	digestRow(ck.CKM_SHA3_256, crypto.SHA3_256),
	digestRow(ck.CKM_SHA3_384, crypto.SHA3_384),
	digestRow(ck.CKM_SHA3_512, crypto.SHA3_512),

	// Post-quantum (PKCS#11 v3.2; mech_pq.go).
	pqKeyGenRow(ck.CKM_ML_KEM_KEY_PAIR_GEN, ck.CKK_ML_KEM, mlKEMMinLen, mlKEMMaxLen),
	pqKeyGenRow(ck.CKM_ML_DSA_KEY_PAIR_GEN, ck.CKK_ML_DSA, mlDSAMinLen, mlDSAMaxLen),
	mlDSARow(),
	mlKEMRow(),
}

// The key derivation and AEAD rows of mech_kdf.go: HKDF, SP 800-108,
// ChaCha20-Poly1305.
func init() { mechanisms = append(mechanisms, kdfRows()...) }

var (
	mechByType map[uint64]*Mechanism
	mechSorted []Mechanism
)

func init() {
	mechByType = make(map[uint64]*Mechanism, len(mechanisms))
	for i := range mechanisms {
		m := &mechanisms[i]
		if _, dup := mechByType[m.Type]; dup {
			panic("tokens: mechanism " + ck.MechName(m.Type) + " is in the table twice")
		}
		mechByType[m.Type] = m
	}
	mechSorted = append([]Mechanism(nil), mechanisms...)
	sort.Slice(mechSorted, func(i, j int) bool { return mechSorted[i].Type < mechSorted[j].Type })
}

// LookupMechanism returns the row of a mechanism type.
func LookupMechanism(t uint64) (*Mechanism, bool) {
	m, ok := mechByType[t]
	return m, ok
}

// Mechanisms returns the table sorted by type, for C_GetMechanismList. The
// slice is a copy; the rows' functions are shared.
func Mechanisms() []Mechanism {
	return append([]Mechanism(nil), mechSorted...)
}

// optionalParam lists the mechanisms whose parameter may be absent although
// their row names a parameter type.
var optionalParam = map[uint64]bool{
	ck.CKM_AES_KEY_WRAP:     true, // default IV A6A6A6A6A6A6A6A6
	ck.CKM_AES_KEY_WRAP_KWP: true, // default AIV A65959A6
	ck.CKM_EDDSA:            true, // plain Ed25519
	ck.CKM_ML_DSA:           true, // hedged, empty context
}

// CheckParam checks that a mechanism's parameter has the Go type its row
// says. It does not check the values; the mechanism's functions do.
func CheckParam(m *Mechanism, given Mech) error {
	var ok bool
	switch m.Param {
	case ParamNone:
		ok = given.Param == nil
	case ParamIV:
		ok = isParam[IVParams](given.Param)
	case ParamGCM:
		ok = isParam[GCMParams](given.Param)
	case ParamCTR:
		ok = isParam[CTRParams](given.Param)
	case ParamPSS:
		ok = isParam[PSSParams](given.Param)
	case ParamOAEP:
		ok = isParam[OAEPParams](given.Param)
	case ParamECDH:
		ok = isParam[ECDHParams](given.Param)
	case ParamEdDSA:
		ok = isParam[EdDSAParams](given.Param)
	case ParamMacLen:
		ok = isParam[MacLenParams](given.Param)
	case ParamSignContext:
		ok = isParam[SignContextParams](given.Param)
	case ParamHKDF:
		ok = isParam[HKDFParams](given.Param)
	case ParamKDF108:
		ok = isParam[KDF108Params](given.Param)
	case ParamChaCha:
		ok = isParam[ChaChaParams](given.Param)
	}
	if !ok && optionalParam[m.Type] && isNilParam(given.Param) {
		ok = true
	}
	if !ok {
		if m.Param == ParamNone {
			return hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "%s takes no parameter", ck.MechName(m.Type))
		}
		return hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "%s needs a %s parameter", ck.MechName(m.Type), paramNames[m.Param])
	}
	if check := paramChecks[m.Param]; check != nil && !isNilParam(given.Param) {
		if why := check(m.Type, given.Param); why != "" {
			return hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "%s: %s", ck.MechName(m.Type), why)
		}
	}
	return nil
}

// ivLens are the IV lengths of the mechanisms whose IV has one length.
var ivLens = map[uint64]int{ck.CKM_AES_CBC: 16, ck.CKM_AES_CBC_PAD: 16, ck.CKM_AES_KEY_WRAP: 8, ck.CKM_AES_KEY_WRAP_KWP: 4}

// paramChecks check a parameter's values, so that a bad parameter is
// refused when the operation starts (C_EncryptInit and the like), not only
// when it runs. The operations check again.
var paramChecks = map[ParamKind]func(mech uint64, p any) string{
	ParamIV: func(mech uint64, p any) string {
		iv, ok := asParam[IVParams](p)
		if !ok {
			return wrongParam
		}
		if n, ok := ivLens[mech]; ok && len(iv.IV) != n {
			return fmt.Sprintf("the IV must be %d bytes", n)
		}
		return ""
	},
	ParamGCM: func(_ uint64, p any) string {
		g, ok := asParam[GCMParams](p)
		if !ok {
			return wrongParam
		}
		switch {
		case len(g.IV) == 0 || len(g.IV) > 256:
			return "the IV must be 1 to 256 bytes"
		case g.TagBits < 96 || g.TagBits > 128 || g.TagBits%8 != 0:
			return "the tag must be 96 to 128 bits, in steps of 8"
		case len(g.IV) != 12 && g.TagBits != 128:
			return "a tag shorter than 128 bits needs a 12-byte IV"
		}
		return ""
	},
	ParamCTR: func(_ uint64, p any) string {
		ctr, ok := asParam[CTRParams](p)
		if !ok {
			return wrongParam
		}
		if c := ctr.CounterBits; c == 0 || c > 128 {
			return "the counter must be 1 to 128 bits"
		}
		return ""
	},
	ParamOAEP: func(_ uint64, p any) string {
		o, ok := asParam[OAEPParams](p)
		if !ok {
			return wrongParam
		}
		if _, ok := digestHashes[o.Hash]; !ok {
			return "unknown hash"
		}
		if _, ok := mgfHashes[o.MGF]; !ok {
			return "unknown mask generation function"
		}
		if o.Source != 0 && o.Source != ck.CKZ_DATA_SPECIFIED {
			return "unknown label source"
		}
		return ""
	},
	ParamPSS: func(_ uint64, p any) string {
		ps, ok := asParam[PSSParams](p)
		if !ok {
			return wrongParam
		}
		if _, ok := digestHashes[ps.Hash]; !ok {
			return "unknown hash"
		}
		if _, ok := mgfHashes[ps.MGF]; !ok {
			return "unknown mask generation function"
		}
		return ""
	},
	ParamECDH: func(_ uint64, p any) string {
		e, ok := asParam[ECDHParams](p)
		if !ok {
			return wrongParam
		}
		if e.KDF != ck.CKD_NULL {
			if _, ok := ecdhKDFs[e.KDF]; !ok {
				return "unknown key derivation function"
			}
		}
		return ""
	},

	ParamSignContext: func(_ uint64, p any) string {
		c, ok := asParam[SignContextParams](p)
		if !ok {
			return wrongParam
		}
		switch {
		case c.Hedge > ck.CKH_DETERMINISTIC_REQUIRED:
			return "unknown hedgeVariant"
		case len(c.Context) > 255:
			return "the context string is longer than 255 bytes"
		}
		return ""
	},
}

var paramNames = map[ParamKind]string{
	ParamIV:     "IV",
	ParamGCM:    "CK_GCM_PARAMS",
	ParamCTR:    "CK_AES_CTR_PARAMS",
	ParamPSS:    "CK_RSA_PKCS_PSS_PARAMS",
	ParamOAEP:   "CK_RSA_PKCS_OAEP_PARAMS",
	ParamECDH:   "CK_ECDH1_DERIVE_PARAMS",
	ParamEdDSA:  "CK_EDDSA_PARAMS",
	ParamMacLen: "CK_MAC_GENERAL_PARAMS",

	ParamSignContext: "CK_SIGN_ADDITIONAL_CONTEXT",
}

// wrongParam is a parameter check's answer to a parameter of another type.
const wrongParam = "wrong parameter type"

// asParam is p as a non-nil *T: a checked assertion, so a parameter of an
// unexpected type is refused, never a panic.
func asParam[T any](p any) (*T, bool) {
	v, ok := p.(*T)
	return v, ok && v != nil
}

// isParam reports whether p is a non-nil *T.
func isParam[T any](p any) bool {
	v, ok := p.(*T)
	return ok && v != nil
}

// isNilParam reports whether p is nil or a typed nil pointer to one of the
// parameter types.
func isNilParam(p any) bool {
	switch v := p.(type) {
	case nil:
		return true
	case *IVParams:
		return v == nil
	case *EdDSAParams:
		return v == nil
	case *SignContextParams:
		return v == nil
	}
	return false
}

// param returns the mechanism's parameter as a *T. With optional set, an
// absent parameter gives (nil, nil).
func param[T any](m Mech, optional bool) (*T, error) {
	if optional && isNilParam(m.Param) {
		return nil, nil
	}
	v, ok := m.Param.(*T)
	if !ok || v == nil {
		return nil, hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "%s: wrong parameter type", ck.MechName(m.Type))
	}
	return v, nil
}
