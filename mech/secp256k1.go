package mech

// secp256k1 (SEC 2 v2 §2.4.1, OID 1.3.132.0.10): the curve of AWS KMS key
// spec ECC_SECG_P256K1 and of CKA_EC_PARAMS 06052b8104000a.
//
// Go's standard library has no such curve. Its arithmetic comes from
// github.com/decred/dcrd/dcrec/secp256k1/v4. Keys are still
// *ecdsa.PrivateKey and *ecdsa.PublicKey, with Curve set to
// secp256k1.S256() (an elliptic.Curve), so code that handles EC keys by
// type handles these too. But crypto/ecdsa, crypto/ecdh and crypto/x509
// serve the NIST curves only: on this curve Bytes, ParseRawPrivateKey,
// ParseUncompressedPublicKey, ECDH and the x509 codecs fail, and
// ecdsa.Sign/Verify fall back to a deprecated math/big path. So mech does
// every secp256k1 operation here:
//
//   - signing: decred's ecdsa.Sign, deterministic (RFC 6979 with
//     HMAC-SHA256 whatever the message hash) and with s in the lower half
//     of the order (BIP 62); the hash is cut to its leftmost 256 bits, as
//     FIPS 186 says;
//   - verification: decred's, which takes either s; r and s must be in
//     [1, n-1];
//   - ECDH: the X coordinate of d·Q, Q checked to be on the curve;
//   - SubjectPublicKeyInfo (RFC 5480) and PKCS #8 holding an RFC 5915
//     ECPrivateKey, written and read with cryptobyte.
//
// decred's scalar multiplications are not constant time.

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/asn1"
	"io"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	k1ecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

const (
	k1ScalarLen = 32     // bytes of a scalar and of a field element
	k1PointLen  = 1 + 64 // an uncompressed point
)

var (
	oidECPublicKey = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidSecp256k1   = asn1.ObjectIdentifier{1, 3, 132, 0, 10}
)

// k1Elliptic is the curve as crypto/ecdsa keys carry it.
var k1Elliptic elliptic.Curve = secp256k1.S256()

// isK1 tells whether a Go curve is secp256k1: the library's own value,
// not just a curve that calls itself so.
func isK1(c elliptic.Curve) bool { return c == k1Elliptic }

// k1Generate makes a key from r: 32 bytes at a time until they are a
// scalar in [1, n-1].
func k1Generate(r io.Reader) (*ecdsa.PrivateKey, error) {
	k, err := secp256k1.GeneratePrivateKeyFromRand(r)
	if err != nil {
		return nil, &hsmerr.Error{RV: ck.CKR_FUNCTION_FAILED, Msg: "secp256k1 key generation", Err: err}
	}
	defer k.Zero()
	return k.ToECDSA(), nil
}

// k1PrivateFromScalar makes a key from a 32-byte big-endian scalar, which
// must be in [1, n-1].
func k1PrivateFromScalar(b []byte) (*ecdsa.PrivateKey, bool) {
	if len(b) != k1ScalarLen {
		return nil, false
	}
	var s secp256k1.ModNScalar
	if overflow := s.SetByteSlice(b); overflow || s.IsZero() {
		s.Zero()
		return nil, false
	}
	k := secp256k1.NewPrivateKey(&s)
	defer k.Zero()
	s.Zero()
	return k.ToECDSA(), true
}

// k1Private returns decred's form of a key on this curve.
func k1Private(p *ecdsa.PrivateKey) (*secp256k1.PrivateKey, error) {
	var b [k1ScalarLen]byte
	defer clear(b[:])
	if p.D == nil || p.D.Sign() <= 0 || p.D.BitLen() > 8*k1ScalarLen {
		return nil, hsmerr.Errorf(ck.CKR_KEY_TYPE_INCONSISTENT, "the secp256k1 private key is invalid")
	}
	p.D.FillBytes(b[:])
	var s secp256k1.ModNScalar
	if overflow := s.SetByteSlice(b[:]); overflow || s.IsZero() {
		return nil, hsmerr.Errorf(ck.CKR_KEY_TYPE_INCONSISTENT, "the secp256k1 private key is invalid")
	}
	return secp256k1.NewPrivateKey(&s), nil
}

// k1Scalar is the 32-byte big-endian scalar of a key.
func k1Scalar(p *ecdsa.PrivateKey) ([]byte, error) {
	k, err := k1Private(p)
	if err != nil {
		return nil, err
	}
	defer k.Zero()
	return k.Serialize(), nil
}

// k1PointBytes is the uncompressed point of a public key, which must be on
// the curve.
func k1PointBytes(p *ecdsa.PublicKey) ([]byte, error) {
	bad := hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "the secp256k1 public key is not a point on the curve")
	if p.X == nil || p.Y == nil || p.X.Sign() < 0 || p.Y.Sign() < 0 || p.X.BitLen() > 256 || p.Y.BitLen() > 256 {
		return nil, bad
	}
	pt := make([]byte, k1PointLen)
	pt[0] = 4
	p.X.FillBytes(pt[1:33])
	p.Y.FillBytes(pt[33:])
	if _, err := secp256k1.ParsePubKey(pt); err != nil {
		return nil, bad
	}
	return pt, nil
}

// k1ParsePoint reads an uncompressed point (and, if compressedToo, a
// compressed one), checked to be on the curve. The hybrid forms 06 and 07
// are refused.
func k1ParsePoint(b []byte, compressedToo bool) (*secp256k1.PublicKey, bool) {
	switch {
	case len(b) == k1PointLen && b[0] == 4:
	case compressedToo && len(b) == 33 && (b[0] == 2 || b[0] == 3):
	default:
		return nil, false
	}
	pub, err := secp256k1.ParsePubKey(b)
	if err != nil {
		return nil, false
	}
	return pub, true
}

// k1Public returns decred's form of a public key on this curve.
func k1Public(p *ecdsa.PublicKey) (*secp256k1.PublicKey, error) {
	pt, err := k1PointBytes(p)
	if err != nil {
		return nil, err
	}
	pub, _ := k1ParsePoint(pt, false)
	return pub, nil
}

// k1Sign signs a hash; the signature is r||s, 32 bytes each.
func k1Sign(p *ecdsa.PrivateKey, hash []byte) ([]byte, error) {
	k, err := k1Private(p)
	if err != nil {
		return nil, err
	}
	defer k.Zero()
	sig := k1ecdsa.Sign(k, hash)
	r, s := sig.R(), sig.S()
	out := make([]byte, 2*k1ScalarLen)
	r.PutBytesUnchecked(out[:k1ScalarLen])
	s.PutBytesUnchecked(out[k1ScalarLen:])
	return out, nil
}

// k1Verify checks an r||s signature of a hash. The caller has checked its
// length.
func k1Verify(p *ecdsa.PublicKey, hash, sig []byte) (bool, error) {
	pub, err := k1Public(p)
	if err != nil {
		return false, err
	}
	var r, s secp256k1.ModNScalar
	if r.SetByteSlice(sig[:k1ScalarLen]) || s.SetByteSlice(sig[k1ScalarLen:]) || r.IsZero() || s.IsZero() {
		return false, nil // not in [1, n-1]
	}
	return k1ecdsa.NewSignature(&r, &s).Verify(hash, pub), nil
}

// k1ECDH is the shared secret of a key and a peer's uncompressed point: the
// X coordinate of d·Q, 32 bytes.
func k1ECDH(p *ecdsa.PrivateKey, peer []byte) ([]byte, error) {
	q, ok := k1ParsePoint(peer, false)
	if !ok {
		return nil, hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "ECDH: the public data is not an uncompressed point on secp256k1")
	}
	k, err := k1Private(p)
	if err != nil {
		return nil, err
	}
	defer k.Zero()
	// The order is prime and the cofactor 1: d in [1, n-1] times a point
	// of the curve other than infinity (which has no uncompressed
	// encoding) is never infinity.
	return secp256k1.GenerateSharedSecret(k, q), nil
}

// MarshalPKIXPublicKey encodes a public key as DER SubjectPublicKeyInfo
// (CKA_PUBLIC_KEY_INFO, KMS GetPublicKey). secp256k1 keys are encoded here
// (RFC 5480: id-ecPublicKey, namedCurve 1.3.132.0.10, the uncompressed
// point); other keys by crypto/x509.
func MarshalPKIXPublicKey(pub crypto.PublicKey) ([]byte, error) {
	if der, ok, err := pqSPKI(pub); ok {
		return der, err
	}
	p, ok := pub.(*ecdsa.PublicKey)
	if !ok || p == nil || !isK1(p.Curve) {
		return x509.MarshalPKIXPublicKey(pub)
	}
	pt, err := k1PointBytes(p)
	if err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		addK1AlgorithmIdentifier(b)
		b.AddASN1BitString(pt)
	})
	return b.Bytes()
}

// ParsePKIXPublicKey decodes DER SubjectPublicKeyInfo: secp256k1 keys
// (uncompressed or compressed point) here, others by crypto/x509.
func ParsePKIXPublicKey(der []byte) (crypto.PublicKey, error) {
	if pub, ok, err := parsePQSPKI(der); ok {
		return pub, err
	}
	in := cryptobyte.String(der)
	var spki, alg cryptobyte.String
	if !in.ReadASN1(&spki, cbasn1.SEQUENCE) || !in.Empty() || !spki.ReadASN1(&alg, cbasn1.SEQUENCE) || !isK1Algorithm(alg) {
		return x509.ParsePKIXPublicKey(der)
	}
	bad := hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "not a secp256k1 SubjectPublicKeyInfo")
	var bits asn1.BitString
	if !spki.ReadASN1BitString(&bits) || !spki.Empty() || bits.BitLength != 8*len(bits.Bytes) {
		return nil, bad
	}
	pub, ok := k1ParsePoint(bits.Bytes, true)
	if !ok {
		return nil, bad
	}
	return pub.ToECDSA(), nil
}

func addK1AlgorithmIdentifier(b *cryptobyte.Builder) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oidECPublicKey)
		b.AddASN1ObjectIdentifier(oidSecp256k1)
	})
}

// isK1Algorithm tells whether the contents of an AlgorithmIdentifier are
// id-ecPublicKey with the named curve secp256k1.
func isK1Algorithm(alg cryptobyte.String) bool {
	var algOID, curveOID asn1.ObjectIdentifier
	return alg.ReadASN1ObjectIdentifier(&algOID) && algOID.Equal(oidECPublicKey) &&
		alg.ReadASN1ObjectIdentifier(&curveOID) && curveOID.Equal(oidSecp256k1) && alg.Empty()
}

// marshalK1PKCS8 encodes a key as PKCS #8 PrivateKeyInfo (RFC 5208) whose
// privateKey is an RFC 5915 ECPrivateKey: version 1, the 32-byte scalar
// and the public key; the curve is named in the AlgorithmIdentifier only,
// as OpenSSL and crypto/x509 do.
func marshalK1PKCS8(p *ecdsa.PrivateKey) ([]byte, error) {
	d, err := k1Scalar(p)
	if err != nil {
		return nil, err
	}
	defer clear(d)
	k, _ := k1PrivateFromScalar(d)
	pt, err := k1PointBytes(&k.PublicKey)
	if err != nil {
		return nil, err
	}
	var inner cryptobyte.Builder
	inner.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(1)
		b.AddASN1OctetString(d)
		b.AddASN1(cbasn1.Tag(1).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1BitString(pt)
		})
	})
	ecKey, err := inner.Bytes()
	if err != nil {
		return nil, err
	}
	defer clear(ecKey)
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(0)
		addK1AlgorithmIdentifier(b)
		b.AddASN1OctetString(ecKey)
	})
	return b.Bytes()
}

// isK1PKCS8 tells whether DER looks like a PKCS #8 key on secp256k1.
func isK1PKCS8(der []byte) bool {
	in := cryptobyte.String(der)
	var info, alg cryptobyte.String
	var version int64
	return in.ReadASN1(&info, cbasn1.SEQUENCE) && info.ReadASN1Integer(&version) &&
		info.ReadASN1(&alg, cbasn1.SEQUENCE) && isK1Algorithm(alg)
}

// parseK1PKCS8 decodes a PKCS #8 secp256k1 key. The ECPrivateKey's curve,
// if given, must be secp256k1 and its public key, if given, must be the
// scalar's. The scalar may come with or without leading zeros.
func parseK1PKCS8(der []byte) (*ecdsa.PrivateKey, error) {
	bad := hsmerr.Errorf(ck.CKR_DATA_INVALID, "not a PKCS #8 secp256k1 private key")
	in := cryptobyte.String(der)
	var info, alg, ecKeyDER cryptobyte.String
	var version int64
	if !in.ReadASN1(&info, cbasn1.SEQUENCE) || !in.Empty() ||
		!info.ReadASN1Integer(&version) || (version != 0 && version != 1) ||
		!info.ReadASN1(&alg, cbasn1.SEQUENCE) || !isK1Algorithm(alg) ||
		!info.ReadASN1(&ecKeyDER, cbasn1.OCTET_STRING) ||
		!info.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) || // attributes
		!info.SkipOptionalASN1(cbasn1.Tag(1).ContextSpecific()) || // OneAsymmetricKey publicKey
		!info.Empty() {
		return nil, bad
	}
	var ecKey, scalar cryptobyte.String
	var ecVersion int64
	if !ecKeyDER.ReadASN1(&ecKey, cbasn1.SEQUENCE) || !ecKeyDER.Empty() ||
		!ecKey.ReadASN1Integer(&ecVersion) || ecVersion != 1 ||
		!ecKey.ReadASN1(&scalar, cbasn1.OCTET_STRING) {
		return nil, bad
	}
	var params, pubField cryptobyte.String
	var hasParams, hasPub bool
	if !ecKey.ReadOptionalASN1(&params, &hasParams, cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!ecKey.ReadOptionalASN1(&pubField, &hasPub, cbasn1.Tag(1).Constructed().ContextSpecific()) ||
		!ecKey.Empty() {
		return nil, bad
	}
	if hasParams {
		var oid asn1.ObjectIdentifier
		if !params.ReadASN1ObjectIdentifier(&oid) || !params.Empty() || !oid.Equal(oidSecp256k1) {
			return nil, bad
		}
	}
	d := bytes.TrimLeft(scalar, "\x00")
	if len(d) > k1ScalarLen {
		return nil, bad
	}
	full := make([]byte, k1ScalarLen)
	defer clear(full)
	copy(full[k1ScalarLen-len(d):], d)
	k, ok := k1PrivateFromScalar(full)
	if !ok {
		return nil, bad
	}
	if hasPub {
		var bits asn1.BitString
		if !pubField.ReadASN1BitString(&bits) || !pubField.Empty() || bits.BitLength != 8*len(bits.Bytes) {
			return nil, bad
		}
		given, ok := k1ParsePoint(bits.Bytes, true)
		if !ok || !given.ToECDSA().Equal(&k.PublicKey) {
			return nil, hsmerr.Errorf(ck.CKR_DATA_INVALID, "the PKCS #8 secp256k1 key's public key does not match its private key")
		}
	}
	return k, nil
}
