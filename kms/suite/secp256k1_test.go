package suite

import (
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"testing"

	"github.com/stretchr/testify/require"
)

// Go's crypto has no secp256k1 (SEC 2, 2.4.1), so the suite checks
// ECC_SECG_P256K1 keys and signatures with this small affine
// implementation of its own, written from the curve's parameters: y² =
// x³ + 7 over F_p. It is for checking only: not constant time.

var (
	k1P, _  = new(big.Int).SetString("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F", 16)
	k1N, _  = new(big.Int).SetString("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", 16)
	k1Gx, _ = new(big.Int).SetString("79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798", 16)
	k1Gy, _ = new(big.Int).SetString("483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8", 16)

	oidECPublicKey = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidSecp256k1   = asn1.ObjectIdentifier{1, 3, 132, 0, 10}
)

// k1Point is a point of secp256k1; nil coordinates are the point at
// infinity.
type k1Point struct{ X, Y *big.Int }

func (p k1Point) inf() bool { return p.X == nil }

func (p k1Point) onCurve() bool {
	if p.inf() || p.X.Sign() < 0 || p.X.Cmp(k1P) >= 0 || p.Y.Sign() < 0 || p.Y.Cmp(k1P) >= 0 {
		return false
	}
	y2 := new(big.Int).Mul(p.Y, p.Y)
	x3 := new(big.Int).Exp(p.X, big.NewInt(3), k1P)
	x3.Add(x3, big.NewInt(7))
	return y2.Sub(y2, x3).Mod(y2, k1P).Sign() == 0
}

func k1Add(a, b k1Point) k1Point {
	switch {
	case a.inf():
		return b
	case b.inf():
		return a
	}
	var l *big.Int
	if a.X.Cmp(b.X) == 0 {
		if new(big.Int).Add(a.Y, b.Y).Mod(new(big.Int).Add(a.Y, b.Y), k1P).Sign() == 0 {
			return k1Point{}
		}
		// λ = 3x² / 2y
		num := new(big.Int).Mul(a.X, a.X)
		num.Mul(num, big.NewInt(3))
		den := new(big.Int).Lsh(a.Y, 1)
		l = num.Mul(num, den.ModInverse(den, k1P))
	} else {
		num := new(big.Int).Sub(b.Y, a.Y)
		den := new(big.Int).Sub(b.X, a.X)
		den.Mod(den, k1P)
		l = num.Mul(num, den.ModInverse(den, k1P))
	}
	l.Mod(l, k1P)
	x := new(big.Int).Mul(l, l)
	x.Sub(x, a.X).Sub(x, b.X).Mod(x, k1P)
	y := new(big.Int).Sub(a.X, x)
	y.Mul(y, l).Sub(y, a.Y).Mod(y, k1P)
	return k1Point{x, y}
}

func k1Mul(p k1Point, k *big.Int) k1Point {
	r := k1Point{}
	for i := k.BitLen() - 1; i >= 0; i-- {
		r = k1Add(r, r)
		if k.Bit(i) == 1 {
			r = k1Add(r, p)
		}
	}
	return r
}

// k1PublicKey is a secp256k1 public key.
type k1PublicKey struct{ k1Point }

// k1Verify is ECDSA verification (SEC 1, 4.1.4) of a DER signature over
// a digest of at most 32 bytes.
func k1Verify(pub *k1PublicKey, digest, der []byte) error {
	var sig struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(der, &sig); err != nil || len(rest) > 0 {
		return errors.New("the signature is not a DER sequence of two integers")
	}
	if sig.R.Sign() <= 0 || sig.S.Sign() <= 0 || sig.R.Cmp(k1N) >= 0 || sig.S.Cmp(k1N) >= 0 {
		return errors.New("r or s out of range")
	}
	e := new(big.Int).SetBytes(digest)
	w := new(big.Int).ModInverse(sig.S, k1N)
	u1 := new(big.Int).Mul(e, w)
	u1.Mod(u1, k1N)
	u2 := new(big.Int).Mul(sig.R, w)
	u2.Mod(u2, k1N)
	x := k1Add(k1Mul(k1Point{k1Gx, k1Gy}, u1), k1Mul(pub.k1Point, u2))
	if x.inf() || new(big.Int).Mod(x.X, k1N).Cmp(sig.R) != 0 {
		return errors.New("secp256k1 ECDSA signature invalid")
	}
	return nil
}

type spki struct {
	Algorithm struct {
		Algorithm  asn1.ObjectIdentifier
		Parameters asn1.RawValue
	}
	PublicKey asn1.BitString
}

// parsePublicKey parses DER SPKI: Go's x509 for the keys it knows, the
// suite's own reading for secp256k1.
func parsePublicKey(der []byte) (crypto.PublicKey, error) {
	var s spki
	if rest, err := asn1.Unmarshal(der, &s); err != nil || len(rest) > 0 {
		return nil, fmt.Errorf("not SPKI: %v", err)
	}
	var curve asn1.ObjectIdentifier
	if s.Algorithm.Algorithm.Equal(oidECPublicKey) {
		if _, err := asn1.Unmarshal(s.Algorithm.Parameters.FullBytes, &curve); err == nil && curve.Equal(oidSecp256k1) {
			b := s.PublicKey.Bytes
			if len(b) != 65 || b[0] != 4 {
				return nil, errors.New("a secp256k1 key is an uncompressed point")
			}
			p := k1Point{new(big.Int).SetBytes(b[1:33]), new(big.Int).SetBytes(b[33:])}
			if !p.onCurve() {
				return nil, errors.New("the point is not on secp256k1")
			}
			return &k1PublicKey{p}, nil
		}
	}
	return x509.ParsePKIXPublicKey(der)
}

// parsePrivateKey parses DER PKCS #8 and returns its public key: Go's
// x509 for the keys it knows, for secp256k1 d·G of the RFC 5915 key.
func parsePrivateKey(der []byte) (crypto.PublicKey, error) {
	var p8 struct {
		Version   int
		Algorithm struct {
			Algorithm  asn1.ObjectIdentifier
			Parameters asn1.RawValue
		}
		PrivateKey []byte
	}
	if _, err := asn1.Unmarshal(der, &p8); err == nil && p8.Algorithm.Algorithm.Equal(oidECPublicKey) {
		var curve asn1.ObjectIdentifier
		if _, err := asn1.Unmarshal(p8.Algorithm.Parameters.FullBytes, &curve); err == nil && curve.Equal(oidSecp256k1) {
			var ec struct {
				Version    int
				PrivateKey []byte
				Rest       asn1.RawValue `asn1:"optional"`
			}
			if _, err := asn1.Unmarshal(p8.PrivateKey, &ec); err != nil {
				return nil, fmt.Errorf("not an RFC 5915 EC private key: %v", err)
			}
			d := new(big.Int).SetBytes(ec.PrivateKey)
			if d.Sign() <= 0 || d.Cmp(k1N) >= 0 {
				return nil, errors.New("the private scalar is out of range")
			}
			return &k1PublicKey{k1Mul(k1Point{k1Gx, k1Gy}, d)}, nil
		}
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	return priv.(interface{ Public() crypto.PublicKey }).Public(), nil
}

func (p *k1PublicKey) Equal(x crypto.PublicKey) bool {
	o, ok := x.(*k1PublicKey)
	return ok && p.X.Cmp(o.X) == 0 && p.Y.Cmp(o.Y) == 0
}

// TestSecp256k1Checker checks the suite's own secp256k1 against the
// curve's known multiples of G (2G) and the group order (n·G is the
// point at infinity).
func TestSecp256k1Checker(t *testing.T) {
	g := k1Point{k1Gx, k1Gy}
	require.True(t, g.onCurve())
	two := k1Mul(g, big.NewInt(2))
	wantX, _ := new(big.Int).SetString("C6047F9441ED7D6D3045406E95C07CD85C778E4B8CEF3CA7ABAC09B95C709EE5", 16)
	wantY, _ := new(big.Int).SetString("1AE168FEA63DC339A3C58419466CEAEEF7F632653266D0E1236431A950CFE52A", 16)
	require.Equal(t, 0, two.X.Cmp(wantX))
	require.Equal(t, 0, two.Y.Cmp(wantY))
	require.True(t, k1Add(g, g).X.Cmp(wantX) == 0)
	require.True(t, k1Mul(g, k1N).inf())
}
