package mech

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/object"
)

func TestKeyCurveByParams(t *testing.T) {
	cases := []struct {
		params string
		name   string
		rv     uint64
	}{
		{"06082a8648ce3d030107", "P-256", 0},
		{"06052b81040022", "P-384", 0},
		{"06052b81040023", "P-521", 0},
		{"06032b6570", "Ed25519", 0},
		{"130c656477617264733235353139", "Ed25519", 0}, // PrintableString "edwards25519"
		{"06052b81040021", "P-224", 0},
		{"06052b8104000a", "secp256k1", 0},
		{"06032b656e", "", ck.CKR_CURVE_NOT_SUPPORTED}, // X25519
		{"130a63757276653235353139", "", ck.CKR_CURVE_NOT_SUPPORTED},
		{"3000", "", ck.CKR_CURVE_NOT_SUPPORTED}, // explicit parameters
		{"0500", "", ck.CKR_CURVE_NOT_SUPPORTED}, // implicitlyCA
		{"", "", ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"06082a8648ce3d0301", "", ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"06082a8648ce3d03010700", "", ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"0c0c656477617264733235353139", "", ck.CKR_ATTRIBUTE_VALUE_INVALID}, // UTF8String
		{"ff", "", ck.CKR_ATTRIBUTE_VALUE_INVALID},
	}
	for _, c := range cases {
		got, err := CurveByParams(unhex(t, c.params))
		if c.rv != 0 {
			wantRV(t, err, c.rv)
			continue
		}
		noErr(t, err)
		if got.Name != c.name {
			t.Errorf("%s: got %s, want %s", c.params, got.Name, c.name)
		}
	}
	if curves[0].ByteLen() != 32 || curves[2].ByteLen() != 66 || ed25519Curve.ByteLen() != 32 {
		t.Error("wrong byte lengths")
	}
}

func TestKeyPublicAttrs(t *testing.T) {
	fixtures(t)
	// RSA: exact encodings.
	kt, a, err := PublicKeyAttrs(&fixRSA.PublicKey)
	noErr(t, err)
	if kt != ck.CKK_RSA || !bytes.Equal(a[ck.CKA_MODULUS], fixRSA.N.Bytes()) || hex.EncodeToString(a[ck.CKA_PUBLIC_EXPONENT]) != "010001" ||
		!bytes.Equal(a[ck.CKA_MODULUS_BITS], object.EncodeUlong(2048)) || a[ck.CKA_MODULUS][0] == 0 {
		t.Fatalf("RSA attributes: %x", a)
	}

	// EC: the RFC 6979 P-256 key, exact encodings.
	var v struct{ X, Ux, Uy string }
	loadJSON(t, "ecdsa_rfc6979.json", &v)
	rawPt := unhex(t, "04"+v.Ux+v.Uy)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), rawPt)
	noErr(t, err)
	kt, a, err = PublicKeyAttrs(pub)
	noErr(t, err)
	if kt != ck.CKK_EC || hex.EncodeToString(a[ck.CKA_EC_PARAMS]) != "06082a8648ce3d030107" ||
		hex.EncodeToString(a[ck.CKA_EC_POINT]) != "0441"+hex.EncodeToString(rawPt) {
		t.Fatalf("EC attributes: %x", a)
	}

	// Ed25519.
	edPub := ed25519.PublicKey(unhex(t, "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"))
	kt, a, err = PublicKeyAttrs(edPub)
	noErr(t, err)
	if kt != ck.CKK_EC_EDWARDS || hex.EncodeToString(a[ck.CKA_EC_PARAMS]) != "06032b6570" ||
		hex.EncodeToString(a[ck.CKA_EC_POINT]) != "0420"+hex.EncodeToString(edPub) {
		t.Fatalf("Ed25519 attributes: %x", a)
	}

	// Round trips, with CKA_PUBLIC_KEY_INFO checked against crypto/x509.
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	for _, k := range []crypto.PublicKey{&fixRSA.PublicKey, pub, &fixP384.PublicKey, &p521.PublicKey, edPub} {
		kt, a, err := PublicKeyAttrs(k)
		noErr(t, err)
		spki, err := x509.ParsePKIXPublicKey(a[ck.CKA_PUBLIC_KEY_INFO])
		noErr(t, err)
		if !spki.(interface{ Equal(crypto.PublicKey) bool }).Equal(k) {
			t.Errorf("%T: CKA_PUBLIC_KEY_INFO is another key", k)
		}
		back, err := PublicKeyFromAttrs(kt, a)
		noErr(t, err)
		if !back.(interface{ Equal(crypto.PublicKey) bool }).Equal(k) {
			t.Errorf("%T: round trip gives another key", k)
		}
	}

	// CKA_EC_POINT raw is accepted as well as wrapped.
	back, err := PublicKeyFromAttrs(ck.CKK_EC, object.Attrs{ck.CKA_EC_PARAMS: curves[0].Params, ck.CKA_EC_POINT: rawPt})
	noErr(t, err)
	if !back.(*ecdsa.PublicKey).Equal(pub) {
		t.Error("raw EC point gives another key")
	}
	back, err = PublicKeyFromAttrs(ck.CKK_EC_EDWARDS, object.Attrs{ck.CKA_EC_PARAMS: []byte("\x13\x0cedwards25519"), ck.CKA_EC_POINT: edPub})
	noErr(t, err)
	if !back.(ed25519.PublicKey).Equal(edPub) {
		t.Error("raw Ed25519 point gives another key")
	}
}

func TestKeyPublicFromAttrsErrors(t *testing.T) {
	fixtures(t)
	var v struct{ Ux, Uy string }
	loadJSON(t, "ecdsa_rfc6979.json", &v)
	rawPt := unhex(t, "04"+v.Ux+v.Uy)
	offCurve := append([]byte(nil), rawPt...)
	offCurve[64] ^= 1
	compressed := elliptic.MarshalCompressed(elliptic.P256(), new(big.Int).SetBytes(rawPt[1:33]), new(big.Int).SetBytes(rawPt[33:]))
	p256 := curves[0].Params
	n := fixRSA.N.Bytes()
	cases := []struct {
		name string
		kt   uint64
		a    object.Attrs
		rv   uint64
	}{
		{"RSA no modulus", ck.CKK_RSA, object.Attrs{ck.CKA_PUBLIC_EXPONENT: []byte{1, 0, 1}}, ck.CKR_TEMPLATE_INCOMPLETE},
		{"RSA no exponent", ck.CKK_RSA, object.Attrs{ck.CKA_MODULUS: n}, ck.CKR_TEMPLATE_INCOMPLETE},
		{"RSA even modulus", ck.CKK_RSA, object.Attrs{ck.CKA_MODULUS: append(n[:255:255], 2), ck.CKA_PUBLIC_EXPONENT: []byte{1, 0, 1}}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"RSA 512-bit modulus", ck.CKK_RSA, object.Attrs{ck.CKA_MODULUS: n[:64], ck.CKA_PUBLIC_EXPONENT: []byte{1, 0, 1}}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"RSA empty modulus", ck.CKK_RSA, object.Attrs{ck.CKA_MODULUS: nil, ck.CKA_PUBLIC_EXPONENT: []byte{1, 0, 1}}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"RSA even exponent", ck.CKK_RSA, object.Attrs{ck.CKA_MODULUS: n, ck.CKA_PUBLIC_EXPONENT: []byte{1, 0, 0}}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"RSA exponent 1", ck.CKK_RSA, object.Attrs{ck.CKA_MODULUS: n, ck.CKA_PUBLIC_EXPONENT: []byte{1}}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"RSA exponent 2^31+1", ck.CKK_RSA, object.Attrs{ck.CKA_MODULUS: n, ck.CKA_PUBLIC_EXPONENT: []byte{0x80, 0, 0, 1}}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"EC no params", ck.CKK_EC, object.Attrs{ck.CKA_EC_POINT: rawPt}, ck.CKR_TEMPLATE_INCOMPLETE},
		{"EC no point", ck.CKK_EC, object.Attrs{ck.CKA_EC_PARAMS: p256}, ck.CKR_TEMPLATE_INCOMPLETE},
		{"EC point off the curve", ck.CKK_EC, object.Attrs{ck.CKA_EC_PARAMS: p256, ck.CKA_EC_POINT: offCurve}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"EC point off the curve, wrapped", ck.CKK_EC, object.Attrs{ck.CKA_EC_PARAMS: p256, ck.CKA_EC_POINT: derOctetString(offCurve)}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"EC compressed point", ck.CKK_EC, object.Attrs{ck.CKA_EC_PARAMS: p256, ck.CKA_EC_POINT: compressed}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"EC point for P-384", ck.CKK_EC, object.Attrs{ck.CKA_EC_PARAMS: curves[1].Params, ck.CKA_EC_POINT: rawPt}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"EC point with trailing byte", ck.CKK_EC, object.Attrs{ck.CKA_EC_PARAMS: p256, ck.CKA_EC_POINT: append(derOctetString(rawPt), 0)}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"EC unknown curve", ck.CKK_EC, object.Attrs{ck.CKA_EC_PARAMS: unhex(t, "06092b2403030208010107"), ck.CKA_EC_POINT: rawPt}, ck.CKR_CURVE_NOT_SUPPORTED}, // brainpoolP256r1
		{"EC P-256 point for secp256k1", ck.CKK_EC, object.Attrs{ck.CKA_EC_PARAMS: unhex(t, "06052b8104000a"), ck.CKA_EC_POINT: rawPt}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"EC with Ed25519 params", ck.CKK_EC, object.Attrs{ck.CKA_EC_PARAMS: ed25519Curve.Params, ck.CKA_EC_POINT: rawPt}, ck.CKR_CURVE_NOT_SUPPORTED},
		{"Edwards with P-256 params", ck.CKK_EC_EDWARDS, object.Attrs{ck.CKA_EC_PARAMS: p256, ck.CKA_EC_POINT: make([]byte, 32)}, ck.CKR_CURVE_NOT_SUPPORTED},
		{"Edwards 31-byte point", ck.CKK_EC_EDWARDS, object.Attrs{ck.CKA_EC_PARAMS: ed25519Curve.Params, ck.CKA_EC_POINT: make([]byte, 31)}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"Edwards no point", ck.CKK_EC_EDWARDS, object.Attrs{ck.CKA_EC_PARAMS: ed25519Curve.Params}, ck.CKR_TEMPLATE_INCOMPLETE},
		{"AES is no public key", ck.CKK_AES, object.Attrs{}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := PublicKeyFromAttrs(c.kt, c.a)
			wantRV(t, err, c.rv)
		})
	}
	toy := &elliptic.CurveParams{Name: "toy", BitSize: 256, P: big.NewInt(23), N: big.NewInt(29), B: big.NewInt(1), Gx: big.NewInt(1), Gy: big.NewInt(1)}
	_, _, err := PublicKeyAttrs(&ecdsa.PublicKey{Curve: toy})
	wantRV(t, err, ck.CKR_CURVE_NOT_SUPPORTED)
	_, _, err = PublicKeyAttrs("not a key")
	wantRV(t, err, ck.CKR_KEY_TYPE_INCONSISTENT)
}

// privateAttrs reads every private component of a key with PrivateKeyAttr,
// plus its public attributes: a C_CreateObject template for it.
func privateAttrs(t testing.TB, k crypto.Signer, types ...uint64) object.Attrs {
	t.Helper()
	_, a, err := PublicKeyAttrs(k.Public())
	noErr(t, err)
	for _, typ := range types {
		v, ok := PrivateKeyAttr(k, typ)
		if !ok {
			t.Fatalf("%T: no %s", k, ck.AttrName(typ))
		}
		a[typ] = v
	}
	return a
}

var rsaPrivateTypes = []uint64{ck.CKA_PRIVATE_EXPONENT, ck.CKA_PRIME_1, ck.CKA_PRIME_2, ck.CKA_EXPONENT_1, ck.CKA_EXPONENT_2, ck.CKA_COEFFICIENT}

func TestKeyPrivateFromAttrs(t *testing.T) {
	fixtures(t)
	// RSA with every component.
	a := privateAttrs(t, fixRSA, rsaPrivateTypes...)
	if !bytes.Equal(a[ck.CKA_PRIVATE_EXPONENT], fixRSA.D.Bytes()) || !bytes.Equal(a[ck.CKA_COEFFICIENT], fixRSA.Precomputed.Qinv.Bytes()) {
		t.Fatal("PrivateKeyAttr gives other values")
	}
	k, err := PrivateKeyFromAttrs(ck.CKK_RSA, a)
	noErr(t, err)
	if !k.(*rsa.PrivateKey).Equal(fixRSA) {
		t.Fatal("RSA round trip gives another key")
	}

	// RSA from n, e, d alone: the primes are recovered.
	minimal := object.Attrs{ck.CKA_MODULUS: a[ck.CKA_MODULUS], ck.CKA_PUBLIC_EXPONENT: a[ck.CKA_PUBLIC_EXPONENT], ck.CKA_PRIVATE_EXPONENT: a[ck.CKA_PRIVATE_EXPONENT]}
	k, err = PrivateKeyFromAttrs(ck.CKK_RSA, minimal)
	noErr(t, err)
	got := k.(*rsa.PrivateKey)
	if !got.Equal(fixRSA) {
		t.Fatal("RSA from n, e, d gives another key")
	}
	ps := []*big.Int{got.Primes[0], got.Primes[1]}
	if !(ps[0].Cmp(fixRSA.Primes[0]) == 0 && ps[1].Cmp(fixRSA.Primes[1]) == 0 || ps[0].Cmp(fixRSA.Primes[1]) == 0 && ps[1].Cmp(fixRSA.Primes[0]) == 0) {
		t.Fatal("recovered primes differ")
	}
	if ps[0].Cmp(ps[1]) < 0 {
		t.Error("recovered primes are not p > q")
	}
	// The recovered key signs as the original does.
	sig1, _ := rsa.SignPKCS1v15(nil, fixRSA, crypto.SHA256, sum(crypto.SHA256, []byte("x")))
	sig2, err := rsa.SignPKCS1v15(nil, got, crypto.SHA256, sum(crypto.SHA256, []byte("x")))
	noErr(t, err)
	if !bytes.Equal(sig1, sig2) {
		t.Fatal("recovered key signs differently")
	}

	// EC, with and without leading zeros in CKA_VALUE.
	for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		for i := 0; i < 3; i++ {
			ec, _ := ecdsa.GenerateKey(c, rand.Reader)
			a := privateAttrs(t, ec, ck.CKA_VALUE)
			full, _ := ec.Bytes()
			if !bytes.Equal(a[ck.CKA_VALUE], bytes.TrimLeft(full, "\x00")) {
				t.Fatal("EC CKA_VALUE is not the minimal big-endian scalar")
			}
			for _, v := range [][]byte{a[ck.CKA_VALUE], full, append([]byte{0, 0}, full...)} {
				a[ck.CKA_VALUE] = v
				k, err := PrivateKeyFromAttrs(ck.CKK_EC, a)
				noErr(t, err)
				if !k.(*ecdsa.PrivateKey).Equal(ec) {
					t.Fatal("EC round trip gives another key")
				}
			}
		}
	}

	// Ed25519.
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	a = privateAttrs(t, ed, ck.CKA_VALUE)
	if !bytes.Equal(a[ck.CKA_VALUE], ed.Seed()) {
		t.Fatal("Ed25519 CKA_VALUE is not the seed")
	}
	k, err = PrivateKeyFromAttrs(ck.CKK_EC_EDWARDS, a)
	noErr(t, err)
	if !k.(ed25519.PrivateKey).Equal(ed) {
		t.Fatal("Ed25519 round trip gives another key")
	}

	// What PrivateKeyAttr does not give.
	for _, c := range []struct {
		k crypto.Signer
		t uint64
	}{{fixRSA, ck.CKA_VALUE}, {fixRSA, ck.CKA_MODULUS}, {fixP384, ck.CKA_PRIVATE_EXPONENT}, {ed, ck.CKA_EC_POINT}} {
		if _, ok := PrivateKeyAttr(c.k, c.t); ok {
			t.Errorf("%T gives %s", c.k, ck.AttrName(c.t))
		}
	}
}

func TestKeyPrivateFromAttrsErrors(t *testing.T) {
	fixtures(t)
	good := privateAttrs(t, fixRSA, rsaPrivateTypes...)
	with := func(a object.Attrs, typ uint64, v []byte) object.Attrs {
		c := a.Clone()
		if v == nil {
			delete(c, typ)
		} else {
			c[typ] = v
		}
		return c
	}
	bump := func(b []byte) []byte {
		n := new(big.Int).SetBytes(b)
		return n.Add(n, big.NewInt(2)).Bytes()
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	noErr(t, err)
	minimal := object.Attrs{ck.CKA_MODULUS: good[ck.CKA_MODULUS], ck.CKA_PUBLIC_EXPONENT: good[ck.CKA_PUBLIC_EXPONENT], ck.CKA_PRIVATE_EXPONENT: good[ck.CKA_PRIVATE_EXPONENT]}
	ecA := privateAttrs(t, fixP384, ck.CKA_VALUE)
	order := fixP384.Curve.Params().N
	cases := []struct {
		name string
		kt   uint64
		a    object.Attrs
		rv   uint64
	}{
		{"RSA no private exponent", ck.CKK_RSA, with(good, ck.CKA_PRIVATE_EXPONENT, nil), ck.CKR_TEMPLATE_INCOMPLETE},
		{"RSA no modulus", ck.CKK_RSA, with(good, ck.CKA_MODULUS, nil), ck.CKR_TEMPLATE_INCOMPLETE},
		{"RSA one prime only", ck.CKK_RSA, with(good, ck.CKA_PRIME_2, nil), ck.CKR_TEMPLATE_INCOMPLETE},
		{"RSA wrong d", ck.CKK_RSA, with(good, ck.CKA_PRIVATE_EXPONENT, bump(good[ck.CKA_PRIVATE_EXPONENT])), ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"RSA wrong d, no primes", ck.CKK_RSA, with(minimal, ck.CKA_PRIVATE_EXPONENT, bump(good[ck.CKA_PRIVATE_EXPONENT])), ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"RSA d of another key", ck.CKK_RSA, with(minimal, ck.CKA_PRIVATE_EXPONENT, other.D.Bytes()), ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"RSA d not below n", ck.CKK_RSA, with(good, ck.CKA_PRIVATE_EXPONENT, good[ck.CKA_MODULUS]), ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"RSA primes of another key", ck.CKK_RSA, with(with(good, ck.CKA_PRIME_1, other.Primes[0].Bytes()), ck.CKA_PRIME_2, other.Primes[1].Bytes()), ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"RSA wrong exponent 1", ck.CKK_RSA, with(good, ck.CKA_EXPONENT_1, bump(good[ck.CKA_EXPONENT_1])), ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"RSA wrong coefficient", ck.CKK_RSA, with(good, ck.CKA_COEFFICIENT, bump(good[ck.CKA_COEFFICIENT])), ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"RSA wrong public exponent", ck.CKK_RSA, with(good, ck.CKA_PUBLIC_EXPONENT, []byte{3}), ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"EC no value", ck.CKK_EC, with(ecA, ck.CKA_VALUE, nil), ck.CKR_TEMPLATE_INCOMPLETE},
		{"EC no params", ck.CKK_EC, with(ecA, ck.CKA_EC_PARAMS, nil), ck.CKR_TEMPLATE_INCOMPLETE},
		{"EC zero scalar", ck.CKK_EC, with(ecA, ck.CKA_VALUE, make([]byte, 48)), ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"EC scalar = order", ck.CKK_EC, with(ecA, ck.CKA_VALUE, order.Bytes()), ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"EC scalar too long", ck.CKK_EC, with(ecA, ck.CKA_VALUE, append([]byte{1}, make([]byte, 48)...)), ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"EC unsupported curve", ck.CKK_EC, with(ecA, ck.CKA_EC_PARAMS, unhex(t, "06092b2403030208010107")), ck.CKR_CURVE_NOT_SUPPORTED}, // brainpoolP256r1
		{"Ed25519 31-byte seed", ck.CKK_EC_EDWARDS, object.Attrs{ck.CKA_EC_PARAMS: ed25519Curve.Params, ck.CKA_VALUE: make([]byte, 31)}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"Ed25519 64-byte key", ck.CKK_EC_EDWARDS, object.Attrs{ck.CKA_EC_PARAMS: ed25519Curve.Params, ck.CKA_VALUE: make([]byte, 64)}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"Ed25519 with P-256 params", ck.CKK_EC_EDWARDS, object.Attrs{ck.CKA_EC_PARAMS: curves[0].Params, ck.CKA_VALUE: make([]byte, 32)}, ck.CKR_CURVE_NOT_SUPPORTED},
		{"Ed25519 no value", ck.CKK_EC_EDWARDS, object.Attrs{ck.CKA_EC_PARAMS: ed25519Curve.Params}, ck.CKR_TEMPLATE_INCOMPLETE},
		{"AES is no private key", ck.CKK_AES, object.Attrs{ck.CKA_VALUE: make([]byte, 16)}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := PrivateKeyFromAttrs(c.kt, c.a)
			wantRV(t, err, c.rv)
			for _, secret := range [][]byte{fixRSA.D.Bytes(), fixRSA.Primes[0].Bytes(), ecA[ck.CKA_VALUE]} {
				if bytes.Contains([]byte(err.Error()), []byte(hex.EncodeToString(secret[:8]))) {
					t.Fatalf("error shows key bytes: %v", err)
				}
			}
		})
	}
}

func TestKeyPKCS8(t *testing.T) {
	fixtures(t)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	for _, c := range []struct {
		k  crypto.Signer
		kt uint64
	}{{fixRSA, ck.CKK_RSA}, {fixP384, ck.CKK_EC}, {p256, ck.CKK_EC}, {p521, ck.CKK_EC}, {ed, ck.CKK_EC_EDWARDS}} {
		der, err := MarshalPrivateKey(c.k)
		noErr(t, err)
		kt, back, err := ParsePrivateKey(der)
		noErr(t, err)
		if kt != c.kt || !back.(interface{ Equal(crypto.PrivateKey) bool }).Equal(c.k) {
			t.Errorf("%T: PKCS #8 round trip gives %s, another key", c.k, ck.KeyTypeName(kt))
		}
		// OpenSSL reads what we write.
		dir := t.TempDir()
		f := writeFile(t, dir, "k.der", der)
		out := openssl(t, nil, "pkey", "-inform", "DER", "-in", f, "-pubout")
		blk, _ := pem.Decode(out)
		pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
		noErr(t, err)
		if !pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(c.k.Public()) {
			t.Errorf("%T: openssl reads another public key", c.k)
		}
	}
	// OpenSSL-written PKCS #8 (the fixtures) parses: fixtures() did that.
	b, err := os.ReadFile(filepath.Join("testdata", "ec_p384.pem"))
	noErr(t, err)
	blk, _ := pem.Decode(b)
	kt, _, err := ParsePrivateKey(blk.Bytes)
	noErr(t, err)
	if kt != ck.CKK_EC {
		t.Error("P-384 fixture is not CKK_EC")
	}

	_, _, err = ParsePrivateKey([]byte("not DER"))
	wantRV(t, err, ck.CKR_DATA_INVALID)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(p224)
	if kt, _, err := ParsePrivateKey(der); err != nil || kt != ck.CKK_EC {
		t.Errorf("P-224 PKCS#8: %v", err)
	}
	x, _ := ecdhX25519()
	der, _ = x509.MarshalPKCS8PrivateKey(x)
	_, _, err = ParsePrivateKey(der)
	wantRV(t, err, ck.CKR_DATA_INVALID)
}

func TestKeyBits(t *testing.T) {
	fixtures(t)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	for _, c := range []struct {
		k    *Key
		bits int
	}{
		{privKey(fixRSA), 2048},
		{pubKey(&fixRSA.PublicKey), 2048},
		{privKey(fixP384), 384},
		{pubKey(&p521.PublicKey), 521},
		{privKey(ed), 255},
		{pubKey(ed.Public()), 255},
		{secretKey(ck.CKK_AES, make([]byte, 24)), 192},
		{secretKey(ck.CKK_GENERIC_SECRET, make([]byte, 1)), 8},
		{&Key{}, 0},
		{nil, 0},
	} {
		if got := KeyBits(c.k); got != c.bits {
			t.Errorf("KeyBits = %d, want %d", got, c.bits)
		}
	}
}

func ecdhX25519() (*ecdh.PrivateKey, error) { return ecdh.X25519().GenerateKey(rand.Reader) }
