package mech

// Post-quantum keys (PKCS#11 v3.2): ML-KEM (FIPS 203) for
// C_EncapsulateKey / C_DecapsulateKey and ML-DSA (FIPS 204) for C_Sign /
// C_Verify. ML-KEM-768 and ML-KEM-1024 run in Go's crypto/mlkem; ML-KEM-512
// (which the standard library lacks), the expanded ML-KEM decapsulation key
// (CKA_VALUE) and all of ML-DSA run in github.com/cloudflare/circl.
//
// A private key is its seed: FIPS 203's d||z (64 bytes) for ML-KEM,
// FIPS 204's xi (32 bytes) for ML-DSA. The key is expanded from it on load.
// At rest (sealed) and in a wrapped key it is PKCS #8 OneAsymmetricKey with
// the NIST algorithm OID and the "seed" CHOICE of the IETF LAMPS profiles:
// privateKey = OCTET STRING { [0] IMPLICIT OCTET STRING seed }.

import (
	"bytes"
	"crypto"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"io"

	"github.com/cloudflare/circl/kem"
	"github.com/cloudflare/circl/kem/mlkem/mlkem1024"
	"github.com/cloudflare/circl/kem/mlkem/mlkem512"
	"github.com/cloudflare/circl/kem/mlkem/mlkem768"
	"github.com/cloudflare/circl/sign"
	"github.com/cloudflare/circl/sign/mldsa/mldsa44"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/cloudflare/circl/sign/mldsa/mldsa87"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
)

// PQSet is one ML-KEM or ML-DSA parameter set.
type PQSet struct {
	Name    string // "ML-KEM-768", "ML-DSA-65"
	KeyType uint64 // CKK_ML_KEM or CKK_ML_DSA
	Param   uint64 // the CKP_ value of CKA_PARAMETER_SET
	OID     asn1.ObjectIdentifier
	// PublicLen is the encoded public key (ek, pk); PrivateLen the
	// expanded private key (dk, sk); SeedLen the seed; OutLen the
	// ciphertext (ML-KEM) or the signature (ML-DSA).
	PublicLen, PrivateLen, SeedLen, OutLen int

	kem  kem.Scheme  // ML-KEM
	sign sign.Scheme // ML-DSA
	// signTo and verify are the FIPS 204 external ML-DSA.Sign and .Verify
	// (with a context string) of the set's circl package.
	signTo func(sk sign.PrivateKey, msg, ctx []byte, hedged bool, sig []byte) error
	verify func(pk sign.PublicKey, msg, ctx, sig []byte) bool
}

// pqSets are the parameter sets. OIDs: NIST CSOR, nistAlgorithms sigAlgs
// (2.16.840.1.101.3.4.3.17-19) and kems (2.16.840.1.101.3.4.4.1-3).
var pqSets = []*PQSet{
	{Name: "ML-KEM-512", KeyType: ck.CKK_ML_KEM, Param: ck.CKP_ML_KEM_512, OID: asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 4, 1},
		PublicLen: 800, PrivateLen: 1632, SeedLen: 64, OutLen: 768, kem: mlkem512.Scheme()},
	{Name: "ML-KEM-768", KeyType: ck.CKK_ML_KEM, Param: ck.CKP_ML_KEM_768, OID: asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 4, 2},
		PublicLen: 1184, PrivateLen: 2400, SeedLen: 64, OutLen: 1088, kem: mlkem768.Scheme()},
	{Name: "ML-KEM-1024", KeyType: ck.CKK_ML_KEM, Param: ck.CKP_ML_KEM_1024, OID: asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 4, 3},
		PublicLen: 1568, PrivateLen: 3168, SeedLen: 64, OutLen: 1568, kem: mlkem1024.Scheme()},
	mlDSASet(ck.CKP_ML_DSA_44, 17, mldsa44.Scheme(), mldsa44.SignTo, mldsa44.Verify),
	mlDSASet(ck.CKP_ML_DSA_65, 18, mldsa65.Scheme(), mldsa65.SignTo, mldsa65.Verify),
	mlDSASet(ck.CKP_ML_DSA_87, 19, mldsa87.Scheme(), mldsa87.SignTo, mldsa87.Verify),
}

// mlDSASet is the row of an ML-DSA parameter set, its OID
// 2.16.840.1.101.3.4.3.oidArc. Name and sizes come from the circl scheme;
// signTo and verify are the set's package-level SignTo and Verify (the
// scheme's own Sign is deterministic only, so it cannot hedge).
func mlDSASet[SK, PK any](param uint64, oidArc int, sch sign.Scheme,
	signTo func(SK, []byte, []byte, bool, []byte) error, verify func(PK, []byte, []byte, []byte) bool) *PQSet {
	return &PQSet{
		Name: sch.Name(), KeyType: ck.CKK_ML_DSA, Param: param, OID: asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, oidArc},
		PublicLen: sch.PublicKeySize(), PrivateLen: sch.PrivateKeySize(), SeedLen: sch.SeedSize(), OutLen: sch.SignatureSize(),
		sign: sch,
		signTo: func(sk sign.PrivateKey, msg, ctx []byte, hedged bool, sig []byte) error {
			return signTo(sk.(SK), msg, ctx, hedged, sig)
		},
		verify: func(pk sign.PublicKey, msg, ctx, sig []byte) bool { return verify(pk.(PK), msg, ctx, sig) },
	}
}

// PQSetOf returns the parameter set of a key type and CKA_PARAMETER_SET.
func PQSetOf(keyType, param uint64) (*PQSet, bool) {
	for _, s := range pqSets {
		if s.KeyType == keyType && s.Param == param {
			return s, true
		}
	}
	return nil, false
}

// PQSetByName returns the parameter set named "ML-KEM-768", "ML-DSA-65", ...
func PQSetByName(name string) (*PQSet, bool) {
	for _, s := range pqSets {
		if s.Name == name {
			return s, true
		}
	}
	return nil, false
}

func isPQKeyType(kt uint64) bool { return kt == ck.CKK_ML_KEM || kt == ck.CKK_ML_DSA }

// pqSetAttr reads CKA_PARAMETER_SET for keyType: absent is
// CKR_TEMPLATE_INCOMPLETE, a value the token does not know
// CKR_PARAMETER_SET_NOT_SUPPORTED.
func pqSetAttr(keyType uint64, a object.Attrs) (*PQSet, error) {
	v, ok := a.Ulong(ck.CKA_PARAMETER_SET)
	if !ok {
		return nil, hsmerr.Errorf(ck.CKR_TEMPLATE_INCOMPLETE, "CKA_PARAMETER_SET is missing")
	}
	s, ok := PQSetOf(keyType, v)
	if !ok {
		return nil, hsmerr.Errorf(ck.CKR_PARAMETER_SET_NOT_SUPPORTED, "CKA_PARAMETER_SET %#x is not a %s parameter set", v, ck.KeyTypeName(keyType))
	}
	return s, nil
}

// ---- keys ----

// MLKEMPublicKey is an ML-KEM encapsulation key (ek), with the key parsed
// from it once (ek).
type MLKEMPublicKey struct {
	Set *PQSet
	raw []byte
	ek  crypto.Encapsulator
}

// Bytes is the encoded encapsulation key, as FIPS 203 defines it.
func (k *MLKEMPublicKey) Bytes() []byte { return append([]byte(nil), k.raw...) }

// Equal reports whether x is the same key.
func (k *MLKEMPublicKey) Equal(x crypto.PublicKey) bool {
	o, ok := x.(*MLKEMPublicKey)
	return ok && o.Set == k.Set && bytes.Equal(o.raw, k.raw)
}

// MLKEMPrivateKey is an ML-KEM decapsulation key, kept as its seed d||z and
// the key expanded from it once (dk). It is a crypto.Signer only so that it travels the paths private keys take
// (sealing, wrapping, the key cache); Sign always fails.
type MLKEMPrivateKey struct {
	Set  *PQSet
	seed []byte
	dk   crypto.Decapsulator
	pub  *MLKEMPublicKey
}

// Public returns the encapsulation key.
func (k *MLKEMPrivateKey) Public() crypto.PublicKey { return k.pub }

// Sign refuses: an ML-KEM key does not sign.
func (k *MLKEMPrivateKey) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("mech: an ML-KEM key does not sign")
}

// Seed returns d||z.
func (k *MLKEMPrivateKey) Seed() []byte { return append([]byte(nil), k.seed...) }

// MLDSAPublicKey is an ML-DSA public key.
type MLDSAPublicKey struct {
	Set *PQSet
	raw []byte
	pk  sign.PublicKey
}

// Bytes is the encoded public key, as FIPS 204 defines it.
func (k *MLDSAPublicKey) Bytes() []byte { return append([]byte(nil), k.raw...) }

// Equal reports whether x is the same key.
func (k *MLDSAPublicKey) Equal(x crypto.PublicKey) bool {
	o, ok := x.(*MLDSAPublicKey)
	return ok && o.Set == k.Set && bytes.Equal(o.raw, k.raw)
}

// MLDSAPrivateKey is an ML-DSA private key, kept as its seed xi and the key
// expanded from it.
type MLDSAPrivateKey struct {
	Set  *PQSet
	seed []byte
	sk   sign.PrivateKey
	pub  *MLDSAPublicKey
}

// Public returns the public key.
func (k *MLDSAPrivateKey) Public() crypto.PublicKey { return k.pub }

// Sign makes a hedged ML-DSA signature with an empty context (FIPS 204
// ML-DSA.Sign); opts is ignored.
func (k *MLDSAPrivateKey) Sign(_ io.Reader, msg []byte, _ crypto.SignerOpts) ([]byte, error) {
	sig := make([]byte, k.Set.OutLen)
	if err := k.Set.signTo(k.sk, msg, nil, true, sig); err != nil {
		return nil, err
	}
	return sig, nil
}

// Seed returns xi.
func (k *MLDSAPrivateKey) Seed() []byte { return append([]byte(nil), k.seed...) }

// NewPQPrivateKey derives a key of set s from its seed (FIPS 203
// ML-KEM.KeyGen_internal(d, z) with seed d||z; FIPS 204
// ML-DSA.KeyGen_internal(xi)).
func NewPQPrivateKey(s *PQSet, seed []byte) (crypto.Signer, error) {
	if len(seed) != s.SeedLen {
		return nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "the seed of an %s key is %d bytes", s.Name, s.SeedLen)
	}
	seed = append([]byte(nil), seed...)
	if s.KeyType == ck.CKK_ML_KEM {
		dk, err := mlKEMDecapsulator(s, seed)
		if err != nil {
			return nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "bad %s seed", s.Name)
		}
		ek := dk.Encapsulator()
		return &MLKEMPrivateKey{Set: s, seed: seed, dk: dk, pub: &MLKEMPublicKey{Set: s, raw: ek.Bytes(), ek: ek}}, nil
	}
	pk, sk := s.sign.DeriveKey(seed)
	raw, err := pk.MarshalBinary()
	if err != nil {
		return nil, &hsmerr.Error{RV: ck.CKR_FUNCTION_FAILED, Msg: "encoding the ML-DSA key", Err: err}
	}
	return &MLDSAPrivateKey{Set: s, seed: seed, sk: sk, pub: &MLDSAPublicKey{Set: s, raw: raw, pk: pk}}, nil
}

// newPQPublicKey decodes and checks a public key of set s.
func newPQPublicKey(s *PQSet, raw []byte) (crypto.PublicKey, error) {
	bad := hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "CKA_VALUE is not an %s public key", s.Name)
	if len(raw) != s.PublicLen {
		return nil, bad
	}
	raw = append([]byte(nil), raw...)
	if s.KeyType == ck.CKK_ML_KEM {
		// Parsing makes FIPS 203 section 7.2's modulus check.
		ek, err := mlKEMEncapsulator(s, raw)
		if err != nil {
			return nil, bad
		}
		return &MLKEMPublicKey{Set: s, raw: raw, ek: ek}, nil
	}
	pk, err := s.sign.UnmarshalBinaryPublicKey(raw)
	if err != nil {
		return nil, bad
	}
	return &MLDSAPublicKey{Set: s, raw: raw, pk: pk}, nil
}

// expandedPrivate is the expanded private key: ML-KEM's dk, ML-DSA's sk.
func expandedPrivate(k crypto.Signer) ([]byte, bool) {
	switch p := k.(type) {
	case *MLKEMPrivateKey:
		_, sk := p.Set.kem.DeriveKeyPair(p.seed)
		b, err := sk.MarshalBinary()
		return b, err == nil
	case *MLDSAPrivateKey:
		b, err := p.sk.MarshalBinary()
		return b, err == nil
	}
	return nil, false
}

// pqPublic is a PQ public key's set and encoded key (not a copy); ok is
// false for other keys.
func pqPublic(pub crypto.PublicKey) (*PQSet, []byte, bool) {
	switch p := pub.(type) {
	case *MLKEMPublicKey:
		return p.Set, p.raw, true
	case *MLDSAPublicKey:
		return p.Set, p.raw, true
	}
	return nil, nil, false
}

// pqPrivate is a PQ private key's set and seed (not a copy); ok is false
// for other keys.
func pqPrivate(k crypto.Signer) (*PQSet, []byte, bool) {
	switch p := k.(type) {
	case *MLKEMPrivateKey:
		return p.Set, p.seed, true
	case *MLDSAPrivateKey:
		return p.Set, p.seed, true
	}
	return nil, nil, false
}

// pqPublicKeyAttrs are the public attributes of a PQ key: CKA_PARAMETER_SET
// and CKA_VALUE (for a public key object; a private key object takes only
// the parameter set, object.AddPublicAttrs leaves its sensitive CKA_VALUE
// alone), with CKA_PUBLIC_KEY_INFO added by the caller.
func pqPublicKeyAttrs(pub crypto.PublicKey) (uint64, object.Attrs, bool) {
	s, raw, ok := pqPublic(pub)
	if !ok {
		return 0, nil, false
	}
	a := object.Attrs{}
	a.SetUlong(ck.CKA_PARAMETER_SET, s.Param)
	a[ck.CKA_VALUE] = append([]byte(nil), raw...)
	return s.KeyType, a, true
}

// pqSPKI is the SubjectPublicKeyInfo of a PQ public key: the NIST OID
// without parameters and the encoded key as the BIT STRING.
func pqSPKI(pub crypto.PublicKey) ([]byte, bool, error) {
	s, raw, ok := pqPublic(pub)
	if !ok {
		return nil, false, nil
	}
	der, err := asn1.Marshal(struct {
		Algo pkix.AlgorithmIdentifier
		Key  asn1.BitString
	}{pkix.AlgorithmIdentifier{Algorithm: s.OID}, asn1.BitString{Bytes: raw, BitLength: 8 * len(raw)}})
	return der, true, err
}

// parsePQSPKI decodes what pqSPKI makes; ok is false for other keys.
func parsePQSPKI(der []byte) (crypto.PublicKey, bool, error) {
	var spki struct {
		Algo pkix.AlgorithmIdentifier
		Key  asn1.BitString
	}
	rest, err := asn1.Unmarshal(der, &spki)
	if err != nil || len(rest) > 0 {
		return nil, false, nil
	}
	for _, s := range pqSets {
		if s.OID.Equal(spki.Algo.Algorithm) {
			if len(spki.Algo.Parameters.FullBytes) != 0 || spki.Key.BitLength != 8*len(spki.Key.Bytes) {
				return nil, true, hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "not an %s SubjectPublicKeyInfo", s.Name)
			}
			pub, err := newPQPublicKey(s, spki.Key.Bytes)
			return pub, true, err
		}
	}
	return nil, false, nil
}

// pqPublicFromAttrs makes a PQ public key from a public key object.
func pqPublicFromAttrs(keyType uint64, a object.Attrs) (crypto.PublicKey, error) {
	s, err := pqSetAttr(keyType, a)
	if err != nil {
		return nil, err
	}
	v, err := need(a, ck.CKA_VALUE)
	if err != nil {
		return nil, err
	}
	return newPQPublicKey(s, v)
}

// pqPrivateFromAttrs makes a PQ private key from a private key object
// (C_CreateObject). The specification asks for CKA_SEED or CKA_VALUE and
// lets a token refuse one alone; this token keeps keys as seeds, so
// CKA_SEED is required, and a CKA_VALUE given with it must be the key the
// seed expands to.
func pqPrivateFromAttrs(keyType uint64, a object.Attrs) (crypto.Signer, error) {
	s, err := pqSetAttr(keyType, a)
	if err != nil {
		return nil, err
	}
	seed, ok := a[ck.CKA_SEED]
	if !ok {
		return nil, hsmerr.Errorf(ck.CKR_TEMPLATE_INCOMPLETE, "CKA_SEED is missing: this token imports %s private keys from their seed", s.Name)
	}
	k, err := NewPQPrivateKey(s, seed)
	if err != nil {
		return nil, err
	}
	if v, ok := a[ck.CKA_VALUE]; ok {
		want, ok := expandedPrivate(k)
		if !ok || !bytes.Equal(v, want) {
			return nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "CKA_VALUE is not the key CKA_SEED expands to")
		}
	}
	return k, nil
}

// pqPrivateAttr reads a private component: CKA_SEED or CKA_VALUE (the
// expanded key).
func pqPrivateAttr(k crypto.Signer, t uint64) ([]byte, bool, bool) {
	_, seed, ok := pqPrivate(k)
	if !ok {
		return nil, false, false
	}
	switch t {
	case ck.CKA_SEED:
		return append([]byte(nil), seed...), true, true
	case ck.CKA_VALUE:
		v, ok := expandedPrivate(k)
		return v, ok, true
	}
	return nil, false, true
}

// pqPKCS8 is OneAsymmetricKey (RFC 5958) as the seed form uses it.
type pqPKCS8 struct {
	Version    int
	Algo       pkix.AlgorithmIdentifier
	PrivateKey []byte
}

// marshalPQPKCS8 encodes a PQ private key as PKCS #8 with the seed CHOICE.
func marshalPQPKCS8(k crypto.Signer) ([]byte, bool, error) {
	s, seed, ok := pqPrivate(k)
	if !ok {
		return nil, false, nil
	}
	inner, err := asn1.MarshalWithParams(seed, "tag:0")
	if err != nil {
		return nil, true, err
	}
	der, err := asn1.Marshal(pqPKCS8{Algo: pkix.AlgorithmIdentifier{Algorithm: s.OID}, PrivateKey: inner})
	return der, true, err
}

// parsePQPKCS8 decodes what marshalPQPKCS8 makes. ok is false when der is
// not a PQ key (another algorithm, or not PKCS #8 at all).
func parsePQPKCS8(der []byte) (keyType uint64, k crypto.Signer, ok bool, err error) {
	var p pqPKCS8
	rest, err := asn1.Unmarshal(der, &p)
	if err != nil || len(rest) > 0 {
		return 0, nil, false, nil
	}
	var s *PQSet
	for _, c := range pqSets {
		if c.OID.Equal(p.Algo.Algorithm) {
			s = c
		}
	}
	if s == nil {
		return 0, nil, false, nil
	}
	bad := hsmerr.Errorf(ck.CKR_DATA_INVALID, "not an %s private key in the seed form", s.Name)
	if p.Version != 0 || len(p.Algo.Parameters.FullBytes) != 0 {
		return 0, nil, true, bad
	}
	var seed []byte
	rest, err = asn1.UnmarshalWithParams(p.PrivateKey, &seed, "tag:0")
	if err != nil || len(rest) > 0 || len(seed) != s.SeedLen {
		return 0, nil, true, bad
	}
	k, err = NewPQPrivateKey(s, seed)
	if err != nil {
		return 0, nil, true, bad
	}
	return s.KeyType, k, true, nil
}

// pqKeySize is a PQ key's size as CK_MECHANISM_INFO counts it: the public
// key's length in bytes.
func pqKeySize(pub crypto.PublicKey) (int, bool) {
	s, _, ok := pqPublic(pub)
	if !ok {
		return 0, false
	}
	return s.PublicLen, true
}

// ---- mechanisms ----

// SignContextParams follows CK_SIGN_ADDITIONAL_CONTEXT: the hedge variant
// (CKH_) and the FIPS 204 context string (at most 255 bytes).
type SignContextParams struct {
	Hedge   uint64
	Context []byte
}

// mlKEMMinLen and mlKEMMaxLen bound ML-KEM public keys (bytes), mlDSAMinLen
// and mlDSAMaxLen ML-DSA's: the CK_MECHANISM_INFO sizes.
const (
	mlKEMMinLen = 800
	mlKEMMaxLen = 1568
	mlDSAMinLen = mldsa44.PublicKeySize
	mlDSAMaxLen = mldsa87.PublicKeySize
)

func pqKeyGenRow(t, keyType uint64, minLen, maxLen uint64) Mechanism {
	return Mechanism{
		Type: t, KeyTypes: []uint64{keyType}, Flags: ck.CKF_GENERATE_KEY_PAIR,
		MinKeySize: minLen, MaxKeySize: maxLen,
		GenerateKeyPair: func(r io.Reader, p KeyPairParams) (crypto.Signer, error) {
			s, ok := PQSetOf(keyType, p.ParameterSet)
			if !ok {
				if p.ParameterSet == 0 {
					return nil, hsmerr.Errorf(ck.CKR_TEMPLATE_INCOMPLETE, "the public key template needs CKA_PARAMETER_SET")
				}
				return nil, hsmerr.Errorf(ck.CKR_PARAMETER_SET_NOT_SUPPORTED, "CKA_PARAMETER_SET %#x is not a %s parameter set", p.ParameterSet, ck.KeyTypeName(keyType))
			}
			seed := make([]byte, s.SeedLen)
			if _, err := io.ReadFull(r, seed); err != nil {
				return nil, &hsmerr.Error{RV: ck.CKR_FUNCTION_FAILED, Msg: "no randomness", Err: err}
			}
			defer clear(seed)
			return NewPQPrivateKey(s, seed)
		},
	}
}

// mlDSARow is CKM_ML_DSA: FIPS 204 ML-DSA.Sign / ML-DSA.Verify (pure, the
// message as given) with an optional CK_SIGN_ADDITIONAL_CONTEXT. No
// parameter means hedged with an empty context. CKH_HEDGE_PREFERRED and
// CKH_HEDGE_REQUIRED sign hedged, CKH_DETERMINISTIC_REQUIRED
// deterministically; verification ignores the hedge.
func mlDSARow() Mechanism {
	return Mechanism{
		Type: ck.CKM_ML_DSA, KeyTypes: []uint64{ck.CKK_ML_DSA}, Flags: fSignVerify,
		MinKeySize: mlDSAMinLen, MaxKeySize: mlDSAMaxLen, Param: ParamSignContext,
		Sign: func(k *Key, m Mech, data []byte) ([]byte, error) {
			p, err := param[SignContextParams](m, true)
			if err != nil {
				return nil, err
			}
			priv, ok := k.Private.(*MLDSAPrivateKey)
			if !ok {
				return nil, hsmerr.Errorf(ck.CKR_KEY_TYPE_INCONSISTENT, "CKM_ML_DSA signs with an ML-DSA private key")
			}
			hedged, ctx := true, []byte(nil)
			if p != nil {
				hedged, ctx = p.Hedge != ck.CKH_DETERMINISTIC_REQUIRED, p.Context
			}
			sig := make([]byte, priv.Set.OutLen)
			if err := priv.Set.signTo(priv.sk, data, ctx, hedged, sig); err != nil {
				return nil, hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "CKM_ML_DSA: %v", err)
			}
			return sig, nil
		},
		Verify: func(k *Key, m Mech, data, sig []byte) error {
			p, err := param[SignContextParams](m, true)
			if err != nil {
				return err
			}
			pub, ok := k.Public.(*MLDSAPublicKey)
			if !ok {
				return hsmerr.Errorf(ck.CKR_KEY_TYPE_INCONSISTENT, "CKM_ML_DSA verifies with an ML-DSA public key")
			}
			var ctx []byte
			if p != nil {
				ctx = p.Context
			}
			if len(sig) != pub.Set.OutLen {
				return hsmerr.Errorf(ck.CKR_SIGNATURE_LEN_RANGE, "an %s signature is %d bytes", pub.Set.Name, pub.Set.OutLen)
			}
			if !pub.Set.verify(pub.pk, data, ctx, sig) {
				return hsmerr.Errorf(ck.CKR_SIGNATURE_INVALID, "the signature does not verify")
			}
			return nil
		},
	}
}

// SharedSecretLen is the length of an ML-KEM shared secret, the value of
// the key C_EncapsulateKey and C_DecapsulateKey make.
const SharedSecretLen = 32

// mlKEMRow is CKM_ML_KEM: FIPS 203 ML-KEM.Encaps with a public key and
// ML-KEM.Decaps with a private key. A ciphertext of the right length that
// was tampered with decapsulates to an unrelated secret (implicit
// rejection), never to an error.
func mlKEMRow() Mechanism {
	return Mechanism{
		Type: ck.CKM_ML_KEM, KeyTypes: []uint64{ck.CKK_ML_KEM}, Flags: ck.CKF_ENCAPSULATE | ck.CKF_DECAPSULATE,
		MinKeySize: mlKEMMinLen, MaxKeySize: mlKEMMaxLen,
		Encapsulate: func(k *Key, _ Mech) ([]byte, []byte, error) {
			pub, ok := k.Public.(*MLKEMPublicKey)
			if !ok || k.Class != ck.CKO_PUBLIC_KEY {
				return nil, nil, hsmerr.Errorf(ck.CKR_KEY_TYPE_INCONSISTENT, "CKM_ML_KEM encapsulates with an ML-KEM public key")
			}
			return mlKEMEncapsulate(pub, nil)
		},
		Decapsulate: func(k *Key, _ Mech, ct []byte) ([]byte, error) {
			priv, ok := k.Private.(*MLKEMPrivateKey)
			if !ok {
				return nil, hsmerr.Errorf(ck.CKR_KEY_TYPE_INCONSISTENT, "CKM_ML_KEM decapsulates with an ML-KEM private key")
			}
			return mlKEMDecapsulate(priv, ct)
		},
	}
}

// mlKEMEncapsulate runs ML-KEM.Encaps; m (32 bytes) makes it deterministic
// for known-answer tests, nil draws it from crypto/rand.
func mlKEMEncapsulate(pub *MLKEMPublicKey, m []byte) (ct, secret []byte, err error) {
	if m == nil {
		secret, ct = pub.ek.Encapsulate()
		return ct, secret, nil
	}
	switch ek := pub.ek.(type) {
	case *mlkem.EncapsulationKey768:
		secret, ct, err = mlkemEncapsulate768(ek, m)
	case *mlkem.EncapsulationKey1024:
		secret, ct, err = mlkemEncapsulate1024(ek, m)
	case *circlEK:
		ct, secret, err = ek.s.EncapsulateDeterministically(ek.pk, m)
	}
	if err != nil {
		return nil, nil, &hsmerr.Error{RV: ck.CKR_FUNCTION_FAILED, Msg: "ML-KEM encapsulation", Err: err}
	}
	return ct, secret, nil
}

// mlkemEncapsulate768 and mlkemEncapsulate1024 are deterministic
// encapsulation for tests; mech_pq_test.go sets them (crypto/mlkem/mlkemtest
// is for tests only).
var (
	mlkemEncapsulate768  = func(*mlkem.EncapsulationKey768, []byte) ([]byte, []byte, error) { return nil, nil, errNoTestHook }
	mlkemEncapsulate1024 = func(*mlkem.EncapsulationKey1024, []byte) ([]byte, []byte, error) { return nil, nil, errNoTestHook }
	errNoTestHook        = errors.New("deterministic encapsulation is for tests")
)

// mlKEMDecapsulate runs ML-KEM.Decaps. A ciphertext of the wrong length is
// CKR_ENCRYPTED_DATA_LEN_RANGE.
func mlKEMDecapsulate(priv *MLKEMPrivateKey, ct []byte) ([]byte, error) {
	if len(ct) != priv.Set.OutLen {
		return nil, hsmerr.Errorf(ck.CKR_ENCRYPTED_DATA_LEN_RANGE, "an %s ciphertext is %d bytes", priv.Set.Name, priv.Set.OutLen)
	}
	ss, err := priv.dk.Decapsulate(ct)
	if err != nil {
		return nil, &hsmerr.Error{RV: ck.CKR_FUNCTION_FAILED, Msg: "ML-KEM decapsulation", Err: err}
	}
	return ss, nil
}

// mlKEMDecapsulator expands a decapsulation key from its seed d||z:
// crypto/mlkem for ML-KEM-768 and -1024, circl for ML-KEM-512.
func mlKEMDecapsulator(s *PQSet, seed []byte) (crypto.Decapsulator, error) {
	switch s.Param {
	case ck.CKP_ML_KEM_768:
		dk, err := mlkem.NewDecapsulationKey768(seed)
		if err != nil {
			return nil, err
		}
		return dk, nil
	case ck.CKP_ML_KEM_1024:
		dk, err := mlkem.NewDecapsulationKey1024(seed)
		if err != nil {
			return nil, err
		}
		return dk, nil
	}
	pk, sk := s.kem.DeriveKeyPair(seed)
	raw, err := pk.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return &circlDK{sk: sk, ek: &circlEK{s: s.kem, pk: pk, raw: raw}}, nil
}

// mlKEMEncapsulator parses an encapsulation key, as mlKEMDecapsulator's
// packages do.
func mlKEMEncapsulator(s *PQSet, raw []byte) (crypto.Encapsulator, error) {
	switch s.Param {
	case ck.CKP_ML_KEM_768:
		ek, err := mlkem.NewEncapsulationKey768(raw)
		if err != nil {
			return nil, err
		}
		return ek, nil
	case ck.CKP_ML_KEM_1024:
		ek, err := mlkem.NewEncapsulationKey1024(raw)
		if err != nil {
			return nil, err
		}
		return ek, nil
	}
	pk, err := s.kem.UnmarshalBinaryPublicKey(raw)
	if err != nil {
		return nil, err
	}
	return &circlEK{s: s.kem, pk: pk, raw: raw}, nil
}

// circlDK and circlEK give circl's ML-KEM-512 keys crypto/mlkem's shape
// (crypto.Decapsulator, crypto.Encapsulator).
type circlDK struct {
	sk kem.PrivateKey
	ek *circlEK
}

func (d *circlDK) Encapsulator() crypto.Encapsulator { return d.ek }

func (d *circlDK) Decapsulate(ct []byte) ([]byte, error) { return d.ek.s.Decapsulate(d.sk, ct) }

type circlEK struct {
	s   kem.Scheme
	pk  kem.PublicKey
	raw []byte
}

func (e *circlEK) Bytes() []byte { return bytes.Clone(e.raw) }

// Encapsulate draws m from crypto/rand, which does not fail; circl fails
// only for another scheme's key or a seed of the wrong length, neither of
// which can happen here.
func (e *circlEK) Encapsulate() (secret, ct []byte) {
	m := make([]byte, 32)
	rand.Read(m)
	defer clear(m)
	ct, secret, err := e.s.EncapsulateDeterministically(e.pk, m)
	if err != nil {
		panic("mech: ML-KEM-512 encapsulation: " + err.Error())
	}
	return secret, ct
}
