package mech

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"math/big"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
)

// Key codecs: between Go keys, the attributes of PKCS#11 key objects (in
// their canonical encoding: CK_ULONG 8 bytes big-endian, big integers
// unsigned big-endian without leading zeros) and PKCS #8.

// Limits on RSA keys the HSM accepts from outside. The mechanisms use a
// narrower range (rsaMinBits to rsaMaxBits).
const (
	rsaImportMinBits = 1024
	rsaImportMaxBits = 16384
)

// CurveInfo describes a curve the HSM supports.
type CurveInfo struct {
	Name    string // "P-224", "P-256", "P-384", "P-521", "Ed25519", "secp256k1"
	KeyType uint64 // CKK_EC or CKK_EC_EDWARDS
	OID     asn1.ObjectIdentifier
	Curve   elliptic.Curve // nil for Ed25519; secp256k1.S256() for secp256k1
	Bits    int            // the field size, as CK_MECHANISM_INFO counts it
	// Params is the canonical CKA_EC_PARAMS: the DER of the OID.
	Params []byte
}

// ByteLen is the length of a field element (and of each of r and s in a
// PKCS #11 ECDSA signature); for Ed25519, of the public key.
func (c *CurveInfo) ByteLen() int { return (c.Bits + 7) / 8 }

var curves = func() []*CurveInfo {
	cs := []*CurveInfo{
		{Name: "P-256", KeyType: ck.CKK_EC, OID: asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}, Curve: elliptic.P256(), Bits: 256},
		{Name: "P-384", KeyType: ck.CKK_EC, OID: asn1.ObjectIdentifier{1, 3, 132, 0, 34}, Curve: elliptic.P384(), Bits: 384},
		{Name: "P-521", KeyType: ck.CKK_EC, OID: asn1.ObjectIdentifier{1, 3, 132, 0, 35}, Curve: elliptic.P521(), Bits: 521},
		{Name: "P-224", KeyType: ck.CKK_EC, OID: asn1.ObjectIdentifier{1, 3, 132, 0, 33}, Curve: elliptic.P224(), Bits: 224},
		{Name: "Ed25519", KeyType: ck.CKK_EC_EDWARDS, OID: asn1.ObjectIdentifier{1, 3, 101, 112}, Bits: 255},
		{Name: "secp256k1", KeyType: ck.CKK_EC, OID: oidSecp256k1, Curve: k1Elliptic, Bits: 256},
	}
	for _, c := range cs {
		der, err := asn1.Marshal(c.OID)
		if err != nil {
			panic(err)
		}
		c.Params = der
	}
	return cs
}()

// ed25519Curve is the Edwards curve's entry, k1Curve secp256k1's (whose
// operations are in secp256k1.go).
var (
	ed25519Curve = curves[4]
	k1Curve      = curves[5]
)

// CurveByParams decodes CKA_EC_PARAMS: the DER of a named curve's OID, or,
// for Edwards curves (PKCS #11 v3.0), a DER PrintableString curve name.
// Explicit curve parameters and unknown curves are CKR_CURVE_NOT_SUPPORTED;
// bytes that are not DER are CKR_ATTRIBUTE_VALUE_INVALID.
func CurveByParams(ecParams []byte) (*CurveInfo, error) {
	bad := hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "CKA_EC_PARAMS is not a DER curve OID or name")
	if len(ecParams) == 0 {
		return nil, bad
	}
	switch ecParams[0] {
	case asn1.TagOID:
		var oid asn1.ObjectIdentifier
		rest, err := asn1.Unmarshal(ecParams, &oid)
		if err != nil || len(rest) > 0 {
			return nil, bad
		}
		for _, c := range curves {
			if c.OID.Equal(oid) {
				return c, nil
			}
		}
		return nil, hsmerr.Errorf(ck.CKR_CURVE_NOT_SUPPORTED, "curve %s is not supported", oid)
	case asn1.TagPrintableString:
		var name string
		rest, err := asn1.UnmarshalWithParams(ecParams, &name, "printable")
		if err != nil || len(rest) > 0 {
			return nil, bad
		}
		if name == "edwards25519" {
			return ed25519Curve, nil
		}
		return nil, hsmerr.Errorf(ck.CKR_CURVE_NOT_SUPPORTED, "curve %q is not supported", name)
	case asn1.TagSequence | 0x20, asn1.TagNull:
		return nil, hsmerr.Errorf(ck.CKR_CURVE_NOT_SUPPORTED, "only named curves are supported")
	}
	return nil, bad
}

// curveOf returns the entry of a Go curve, nil if unsupported. secp256k1
// must be the library's own curve value.
func curveOf(c elliptic.Curve) *CurveInfo {
	if c == nil {
		return nil
	}
	if isK1(c) {
		return k1Curve
	}
	for _, ci := range curves {
		if ci.Curve != nil && ci != k1Curve && ci.Curve.Params().Name == c.Params().Name {
			return ci
		}
	}
	return nil
}

// decodeECPoint accepts a point raw (rawLen bytes) or wrapped in a DER
// OCTET STRING, and returns it raw. Both start with byte 0x04 for an
// uncompressed point; the lengths tell them apart.
func decodeECPoint(b []byte, rawLen int) ([]byte, error) {
	if len(b) == rawLen {
		return b, nil
	}
	var inner []byte
	rest, err := asn1.Unmarshal(b, &inner)
	if err != nil || len(rest) > 0 || len(inner) != rawLen {
		return nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "CKA_EC_POINT is not a point of the curve's size")
	}
	return inner, nil
}

func derOctetString(b []byte) []byte {
	der, err := asn1.Marshal(b)
	if err != nil {
		panic(err) // a byte slice always marshals
	}
	return der
}

// PublicKeyAttrs returns the key type and the public attributes of a key:
// for RSA CKA_MODULUS, CKA_PUBLIC_EXPONENT and CKA_MODULUS_BITS; for EC and
// Ed25519 CKA_EC_PARAMS (DER OID) and CKA_EC_POINT (DER OCTET STRING of the
// uncompressed point or of the 32-byte key); and CKA_PUBLIC_KEY_INFO (DER
// SubjectPublicKeyInfo) for all.
func PublicKeyAttrs(pub crypto.PublicKey) (keyType uint64, a object.Attrs, err error) {
	if kt, pa, ok := pqPublicKeyAttrs(pub); ok {
		spki, _, err := pqSPKI(pub)
		if err != nil {
			return 0, nil, &hsmerr.Error{RV: ck.CKR_FUNCTION_FAILED, Msg: "encoding CKA_PUBLIC_KEY_INFO", Err: err}
		}
		pa[ck.CKA_PUBLIC_KEY_INFO] = spki
		return kt, pa, nil
	}
	a = object.Attrs{}
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if p == nil || p.N == nil {
			return 0, nil, hsmerr.Errorf(ck.CKR_KEY_TYPE_INCONSISTENT, "empty RSA key")
		}
		keyType = ck.CKK_RSA
		a[ck.CKA_MODULUS] = p.N.Bytes()
		a[ck.CKA_PUBLIC_EXPONENT] = big.NewInt(int64(p.E)).Bytes()
		a.SetUlong(ck.CKA_MODULUS_BITS, uint64(p.N.BitLen()))
	case *ecdsa.PublicKey:
		if p == nil {
			return 0, nil, hsmerr.Errorf(ck.CKR_KEY_TYPE_INCONSISTENT, "empty EC key")
		}
		c := curveOf(p.Curve)
		if c == nil {
			return 0, nil, hsmerr.Errorf(ck.CKR_CURVE_NOT_SUPPORTED, "the key's curve is not supported")
		}
		var pt []byte
		if c == k1Curve {
			if pt, err = k1PointBytes(p); err != nil {
				return 0, nil, err
			}
		} else if pt, err = p.Bytes(); err != nil {
			return 0, nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "the EC public key is invalid")
		}
		keyType = ck.CKK_EC
		a[ck.CKA_EC_PARAMS] = append([]byte(nil), c.Params...)
		a[ck.CKA_EC_POINT] = derOctetString(pt)
	case ed25519.PublicKey:
		if len(p) != ed25519.PublicKeySize {
			return 0, nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "an Ed25519 public key is 32 bytes")
		}
		keyType = ck.CKK_EC_EDWARDS
		a[ck.CKA_EC_PARAMS] = append([]byte(nil), ed25519Curve.Params...)
		a[ck.CKA_EC_POINT] = derOctetString(p)
	default:
		return 0, nil, hsmerr.Errorf(ck.CKR_KEY_TYPE_INCONSISTENT, "unsupported public key type %T", pub)
	}
	spki, err := MarshalPKIXPublicKey(pub)
	if err != nil {
		return 0, nil, &hsmerr.Error{RV: ck.CKR_FUNCTION_FAILED, Msg: "encoding CKA_PUBLIC_KEY_INFO", Err: err}
	}
	a[ck.CKA_PUBLIC_KEY_INFO] = spki
	return keyType, a, nil
}

// need returns a required attribute.
func need(a object.Attrs, t uint64) ([]byte, error) {
	v, ok := a[t]
	if !ok {
		return nil, hsmerr.Errorf(ck.CKR_TEMPLATE_INCOMPLETE, "%s is missing", ck.AttrName(t))
	}
	return v, nil
}

// bigAttr returns a required big-integer attribute; it must not be zero.
func bigAttr(a object.Attrs, t uint64) (*big.Int, error) {
	v, err := need(a, t)
	if err != nil {
		return nil, err
	}
	n := new(big.Int).SetBytes(v)
	if n.Sign() == 0 {
		return nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "%s is zero or empty", ck.AttrName(t))
	}
	return n, nil
}

// ecCurveAttr returns the curve of CKA_EC_PARAMS, which must be one of
// keyType's.
func ecCurveAttr(keyType uint64, a object.Attrs) (*CurveInfo, error) {
	params, err := need(a, ck.CKA_EC_PARAMS)
	if err != nil {
		return nil, err
	}
	c, err := CurveByParams(params)
	if err != nil {
		return nil, err
	}
	if c.KeyType != keyType {
		return nil, hsmerr.Errorf(ck.CKR_CURVE_NOT_SUPPORTED, "%s is not a curve for %s", c.Name, ck.KeyTypeName(keyType))
	}
	return c, nil
}

func rsaPublicFromAttrs(a object.Attrs) (*rsa.PublicKey, error) {
	n, err := bigAttr(a, ck.CKA_MODULUS)
	if err != nil {
		return nil, err
	}
	if n.BitLen() < rsaImportMinBits || n.BitLen() > rsaImportMaxBits || n.Bit(0) == 0 {
		return nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "CKA_MODULUS must be odd and %d to %d bits", rsaImportMinBits, rsaImportMaxBits)
	}
	e, err := bigAttr(a, ck.CKA_PUBLIC_EXPONENT)
	if err != nil {
		return nil, err
	}
	if e.BitLen() > 31 || e.Int64() < 3 || e.Bit(0) == 0 {
		return nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "CKA_PUBLIC_EXPONENT must be odd, at least 3 and below 2^31")
	}
	return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
}

// PublicKeyFromAttrs makes a public key from a public key object's
// attributes (C_CreateObject, and loading stored public keys). CKA_EC_POINT
// may be raw or DER OCTET STRING wrapped; EC points are checked to be on
// the curve.
func PublicKeyFromAttrs(keyType uint64, a object.Attrs) (crypto.PublicKey, error) {
	if isPQKeyType(keyType) {
		return pqPublicFromAttrs(keyType, a)
	}
	switch keyType {
	case ck.CKK_RSA:
		return rsaPublicFromAttrs(a)
	case ck.CKK_EC:
		c, err := ecCurveAttr(keyType, a)
		if err != nil {
			return nil, err
		}
		v, err := need(a, ck.CKA_EC_POINT)
		if err != nil {
			return nil, err
		}
		raw, err := decodeECPoint(v, 1+2*c.ByteLen())
		if err != nil {
			return nil, err
		}
		if c == k1Curve {
			pub, ok := k1ParsePoint(raw, false)
			if !ok {
				return nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "CKA_EC_POINT is not an uncompressed point on %s", c.Name)
			}
			return pub.ToECDSA(), nil
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(c.Curve, raw)
		if err != nil {
			return nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "CKA_EC_POINT is not an uncompressed point on %s", c.Name)
		}
		return pub, nil
	case ck.CKK_EC_EDWARDS:
		if _, err := ecCurveAttr(keyType, a); err != nil {
			return nil, err
		}
		v, err := need(a, ck.CKA_EC_POINT)
		if err != nil {
			return nil, err
		}
		raw, err := decodeECPoint(v, ed25519.PublicKeySize)
		if err != nil {
			return nil, err
		}
		// crypto/ed25519 offers no point check apart from verifying; a
		// key that is not a point fails every verification.
		return ed25519.PublicKey(append([]byte(nil), raw...)), nil
	}
	return nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "CKA_KEY_TYPE %s is not a public key type", ck.KeyTypeName(keyType))
}

// PrivateKeyFromAttrs makes a private key from a private key object's
// attributes (C_CreateObject), and validates it.
//
// For RSA, CKA_MODULUS, CKA_PUBLIC_EXPONENT and CKA_PRIVATE_EXPONENT are
// required. CKA_PRIME_1 and CKA_PRIME_2 are optional: when both are absent
// they are recovered from n, e and d; CKA_EXPONENT_1, CKA_EXPONENT_2 and
// CKA_COEFFICIENT, if given, must match the computed values.
// For EC, CKA_EC_PARAMS and CKA_VALUE (the scalar) are required; for
// Ed25519, CKA_EC_PARAMS and CKA_VALUE (the 32-byte seed).
func PrivateKeyFromAttrs(keyType uint64, a object.Attrs) (crypto.Signer, error) {
	if isPQKeyType(keyType) {
		return pqPrivateFromAttrs(keyType, a)
	}
	switch keyType {
	case ck.CKK_RSA:
		return rsaPrivateFromAttrs(a)
	case ck.CKK_EC:
		c, err := ecCurveAttr(keyType, a)
		if err != nil {
			return nil, err
		}
		v, err := need(a, ck.CKA_VALUE)
		if err != nil {
			return nil, err
		}
		// CKA_VALUE is a big integer: take it with or without leading
		// zeros.
		v = bytes.TrimLeft(v, "\x00")
		if len(v) > c.ByteLen() {
			return nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "CKA_VALUE is longer than the curve's order")
		}
		scalar := make([]byte, c.ByteLen())
		copy(scalar[len(scalar)-len(v):], v)
		var priv *ecdsa.PrivateKey
		ok := false
		if c == k1Curve {
			priv, ok = k1PrivateFromScalar(scalar)
		} else {
			priv, err = ecdsa.ParseRawPrivateKey(c.Curve, scalar)
			ok = err == nil
		}
		clear(scalar)
		if !ok {
			return nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "CKA_VALUE is not a valid %s private key", c.Name)
		}
		return priv, nil
	case ck.CKK_EC_EDWARDS:
		if _, err := ecCurveAttr(keyType, a); err != nil {
			return nil, err
		}
		v, err := need(a, ck.CKA_VALUE)
		if err != nil {
			return nil, err
		}
		if len(v) != ed25519.SeedSize {
			return nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "CKA_VALUE of an Ed25519 key is a 32-byte seed")
		}
		return ed25519.NewKeyFromSeed(v), nil
	}
	return nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "CKA_KEY_TYPE %s is not a private key type", ck.KeyTypeName(keyType))
}

func rsaPrivateFromAttrs(a object.Attrs) (*rsa.PrivateKey, error) {
	pub, err := rsaPublicFromAttrs(a)
	if err != nil {
		return nil, err
	}
	d, err := bigAttr(a, ck.CKA_PRIVATE_EXPONENT)
	if err != nil {
		return nil, err
	}
	if d.Cmp(pub.N) >= 0 {
		return nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "CKA_PRIVATE_EXPONENT is not less than the modulus")
	}
	_, hasP := a[ck.CKA_PRIME_1]
	_, hasQ := a[ck.CKA_PRIME_2]
	var p, q *big.Int
	switch {
	case hasP && hasQ:
		if p, err = bigAttr(a, ck.CKA_PRIME_1); err != nil {
			return nil, err
		}
		if q, err = bigAttr(a, ck.CKA_PRIME_2); err != nil {
			return nil, err
		}
		if new(big.Int).Mul(p, q).Cmp(pub.N) != 0 {
			return nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "CKA_PRIME_1 times CKA_PRIME_2 is not CKA_MODULUS")
		}
	case hasP || hasQ:
		return nil, hsmerr.Errorf(ck.CKR_TEMPLATE_INCOMPLETE, "CKA_PRIME_1 and CKA_PRIME_2 go together")
	default:
		if p, q = recoverPrimes(pub.N, big.NewInt(int64(pub.E)), d); p == nil {
			return nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "CKA_PRIVATE_EXPONENT does not fit CKA_MODULUS and CKA_PUBLIC_EXPONENT")
		}
	}
	priv := &rsa.PrivateKey{PublicKey: *pub, D: d, Primes: []*big.Int{p, q}}
	// Validate checks the whole key (n = pq, d·e ≡ 1, a test operation)
	// and computes the CRT values.
	if err := priv.Validate(); err != nil {
		return nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "the RSA key components are inconsistent")
	}
	priv.Precompute()
	for t, want := range map[uint64]*big.Int{
		ck.CKA_EXPONENT_1:  priv.Precomputed.Dp,
		ck.CKA_EXPONENT_2:  priv.Precomputed.Dq,
		ck.CKA_COEFFICIENT: priv.Precomputed.Qinv,
	} {
		if v, ok := a[t]; ok && new(big.Int).SetBytes(v).Cmp(want) != 0 {
			return nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "%s does not fit the primes", ck.AttrName(t))
		}
	}
	return priv, nil
}

// recoverPrimes factors n given e and d (NIST SP 800-56B rev. 2, appendix
// C.2): with k = de - 1 = 2^t·r, r odd, for some g the sequence g^r,
// g^2r, ... mod n reaches a non-trivial square root y of 1, and then
// gcd(y-1, n) is a prime. It returns the larger prime first, or nils if n,
// e, d do not form a key. It runs on secret values with math/big, which is
// not constant time; it is only used when importing a key.
func recoverPrimes(n, e, d *big.Int) (*big.Int, *big.Int) {
	one := big.NewInt(1)
	nm1 := new(big.Int).Sub(n, one)
	k := new(big.Int).Mul(d, e)
	k.Sub(k, one)
	if k.Sign() <= 0 || k.Bit(0) != 0 {
		return nil, nil
	}
	t := 0
	r := new(big.Int).Set(k)
	for r.Bit(0) == 0 {
		r.Rsh(r, 1)
		t++
	}
	for g := int64(2); g < 2+100; g++ {
		y := new(big.Int).Exp(big.NewInt(g), r, n)
		if y.Cmp(one) == 0 || y.Cmp(nm1) == 0 {
			continue
		}
		for i := 1; i <= t; i++ {
			x := new(big.Int).Exp(y, big.NewInt(2), n)
			if x.Cmp(one) == 0 {
				p := new(big.Int).GCD(nil, nil, new(big.Int).Sub(y, one), n)
				if p.Cmp(one) == 0 || p.Cmp(n) == 0 {
					break
				}
				q := new(big.Int).Quo(n, p)
				if p.Cmp(q) < 0 {
					p, q = q, p
				}
				return p, q
			}
			if x.Cmp(nm1) == 0 {
				break
			}
			y = x
		}
	}
	return nil, nil
}

// MarshalPrivateKey encodes a private key as PKCS #8 DER: the form private
// keys are sealed and wrapped in. secp256k1 keys are encoded by mech (see
// secp256k1.go), the others by crypto/x509.
func MarshalPrivateKey(k crypto.Signer) ([]byte, error) {
	if der, ok, err := marshalPQPKCS8(k); ok {
		if err != nil {
			return nil, &hsmerr.Error{RV: ck.CKR_FUNCTION_FAILED, Msg: "encoding the private key", Err: err}
		}
		return der, nil
	}
	switch p := k.(type) {
	case *rsa.PrivateKey:
	case *ecdsa.PrivateKey:
		if p == nil || curveOf(p.Curve) == nil {
			return nil, hsmerr.Errorf(ck.CKR_CURVE_NOT_SUPPORTED, "the key's curve is not supported")
		}
		if isK1(p.Curve) {
			der, err := marshalK1PKCS8(p)
			if err != nil {
				return nil, &hsmerr.Error{RV: ck.CKR_FUNCTION_FAILED, Msg: "encoding the private key", Err: err}
			}
			return der, nil
		}
	case ed25519.PrivateKey:
		if len(p) != ed25519.PrivateKeySize {
			return nil, hsmerr.Errorf(ck.CKR_KEY_TYPE_INCONSISTENT, "an Ed25519 private key is 64 bytes")
		}
	default:
		return nil, hsmerr.Errorf(ck.CKR_KEY_TYPE_INCONSISTENT, "unsupported private key type %T", k)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, &hsmerr.Error{RV: ck.CKR_FUNCTION_FAILED, Msg: "encoding the private key", Err: err}
	}
	return der, nil
}

// ParsePrivateKey decodes a PKCS #8 private key (RSA, EC on a supported
// curve, or Ed25519) and returns its key type. RSA keys are validated by
// crypto/x509; secp256k1 keys are decoded by mech.
func ParsePrivateKey(der []byte) (keyType uint64, k crypto.Signer, err error) {
	if kt, k, ok, err := parsePQPKCS8(der); ok {
		return kt, k, err
	}
	if isK1PKCS8(der) {
		p, err := parseK1PKCS8(der)
		if err != nil {
			return 0, nil, err
		}
		return ck.CKK_EC, p, nil
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return 0, nil, hsmerr.Errorf(ck.CKR_DATA_INVALID, "not a PKCS #8 private key")
	}
	switch p := key.(type) {
	case *rsa.PrivateKey:
		if b := p.N.BitLen(); b < rsaImportMinBits || b > rsaImportMaxBits {
			return 0, nil, hsmerr.Errorf(ck.CKR_KEY_SIZE_RANGE, "RSA keys are %d to %d bits", rsaImportMinBits, rsaImportMaxBits)
		}
		if len(p.Primes) != 2 {
			return 0, nil, hsmerr.Errorf(ck.CKR_DATA_INVALID, "multi-prime RSA keys are not supported")
		}
		return ck.CKK_RSA, p, nil
	case *ecdsa.PrivateKey:
		if curveOf(p.Curve) == nil {
			return 0, nil, hsmerr.Errorf(ck.CKR_CURVE_NOT_SUPPORTED, "the key's curve is not supported")
		}
		return ck.CKK_EC, p, nil
	case ed25519.PrivateKey:
		return ck.CKK_EC_EDWARDS, p, nil
	}
	return 0, nil, hsmerr.Errorf(ck.CKR_DATA_INVALID, "unsupported PKCS #8 key type %T", key)
}

// PrivateKeyAttr returns one private component of a key, canonically
// encoded, for reading the attributes of a key that is not sensitive:
// CKA_PRIVATE_EXPONENT, CKA_PRIME_1, CKA_PRIME_2, CKA_EXPONENT_1,
// CKA_EXPONENT_2 and CKA_COEFFICIENT of RSA keys, CKA_VALUE of EC (the
// scalar, a big integer) and Ed25519 keys (the 32-byte seed).
func PrivateKeyAttr(k crypto.Signer, t uint64) ([]byte, bool) {
	if v, ok, pq := pqPrivateAttr(k, t); pq {
		return v, ok
	}
	switch p := k.(type) {
	case *rsa.PrivateKey:
		if len(p.Primes) < 2 {
			return nil, false
		}
		var v *big.Int
		switch t {
		case ck.CKA_PRIVATE_EXPONENT:
			v = p.D
		case ck.CKA_PRIME_1:
			v = p.Primes[0]
		case ck.CKA_PRIME_2:
			v = p.Primes[1]
		case ck.CKA_EXPONENT_1:
			v = p.Precomputed.Dp
			if v == nil {
				v = new(big.Int).Mod(p.D, new(big.Int).Sub(p.Primes[0], big.NewInt(1)))
			}
		case ck.CKA_EXPONENT_2:
			v = p.Precomputed.Dq
			if v == nil {
				v = new(big.Int).Mod(p.D, new(big.Int).Sub(p.Primes[1], big.NewInt(1)))
			}
		case ck.CKA_COEFFICIENT:
			v = p.Precomputed.Qinv
			if v == nil {
				v = new(big.Int).ModInverse(p.Primes[1], p.Primes[0])
			}
		}
		if v == nil {
			return nil, false
		}
		return v.Bytes(), true
	case *ecdsa.PrivateKey:
		if t != ck.CKA_VALUE {
			return nil, false
		}
		var b []byte
		var err error
		if isK1(p.Curve) {
			b, err = k1Scalar(p)
		} else {
			b, err = p.Bytes()
		}
		if err != nil {
			return nil, false
		}
		return bytes.TrimLeft(b, "\x00"), true
	case ed25519.PrivateKey:
		if t != ck.CKA_VALUE || len(p) != ed25519.PrivateKeySize {
			return nil, false
		}
		return append([]byte(nil), p.Seed()...), true
	}
	return nil, false
}

// KeyBits is a key's size as CK_MECHANISM_INFO counts it: RSA modulus
// bits, EC field bits, 255 for Ed25519, and 8 times the length of a secret
// key; for ML-KEM and ML-DSA keys, the public key's length in bytes.
func KeyBits(k *Key) int {
	if k == nil {
		return 0
	}
	if k.Secret != nil {
		return 8 * len(k.Secret)
	}
	pub := k.Public
	if k.Private != nil {
		pub = k.Private.Public()
	}
	if n, ok := pqKeySize(pub); ok {
		return n
	}
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if p != nil && p.N != nil {
			return p.N.BitLen()
		}
	case *ecdsa.PublicKey:
		if p != nil && p.Curve != nil {
			return p.Curve.Params().BitSize
		}
	case ed25519.PublicKey:
		return 255
	}
	return 0
}

// CurveByName returns the curve of a name CurveInfo.Name gives ("P-256").
func CurveByName(name string) (*CurveInfo, bool) {
	for _, c := range curves {
		if c.Name == name {
			return c, true
		}
	}
	return nil, false
}
