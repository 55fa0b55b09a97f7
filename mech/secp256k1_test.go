package mech

import (
	"bytes"
	"compress/gzip"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	k1ecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
)

// k1Params is CKA_EC_PARAMS of secp256k1: the DER of 1.3.132.0.10.
const k1Params = "06052b8104000a"

// k1Order is n, the order of the group.
var k1Order, _ = new(big.Int).SetString("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", 16)

func requireRV(t testing.TB, err error, rv uint64) {
	t.Helper()
	require.Error(t, err)
	require.Truef(t, hsmerr.IsRV(err, rv), "got %v, want %s", err, ck.RVName(rv))
}

// k1Key makes a secp256k1 private key from a hex scalar as C_CreateObject
// would.
func k1Key(t testing.TB, d string) *ecdsa.PrivateKey {
	t.Helper()
	k, err := PrivateKeyFromAttrs(ck.CKK_EC, object.Attrs{ck.CKA_EC_PARAMS: unhex(t, k1Params), ck.CKA_VALUE: unhex(t, d)})
	require.NoError(t, err)
	return k.(*ecdsa.PrivateKey)
}

// k1PubObject is the public key object of a key, made from its attributes.
func k1PubObject(t testing.TB, pub crypto.PublicKey) *Key {
	t.Helper()
	kt, a, err := PublicKeyAttrs(pub)
	require.NoError(t, err)
	p, err := PublicKeyFromAttrs(kt, a)
	require.NoError(t, err)
	return pubKey(p)
}

func TestSecp256k1Table(t *testing.T) {
	c, err := CurveByParams(unhex(t, k1Params))
	require.NoError(t, err)
	assert.Same(t, k1Curve, c)
	byName, ok := CurveByName("secp256k1")
	require.True(t, ok)
	assert.Same(t, k1Curve, byName)
	assert.Equal(t, uint64(ck.CKK_EC), c.KeyType)
	assert.Equal(t, 256, c.Bits)
	assert.Equal(t, 32, c.ByteLen())
	assert.Equal(t, "1.3.132.0.10", c.OID.String())

	// A curve that only calls itself secp256k1 is not it.
	fake := *k1Elliptic.Params()
	assert.Nil(t, curveOf(&fake))
	_, err = MarshalPrivateKey(&ecdsa.PrivateKey{PublicKey: ecdsa.PublicKey{Curve: &fake, X: big.NewInt(1), Y: big.NewInt(1)}, D: big.NewInt(1)})
	requireRV(t, err, ck.CKR_CURVE_NOT_SUPPORTED)

	// Every row that takes CKK_EC takes a 256-bit key, and KeyBits says 256.
	k, err := row(t, ck.CKM_EC_KEY_PAIR_GEN).GenerateKeyPair(rand.Reader, KeyPairParams{ECParams: c.Params})
	require.NoError(t, err)
	require.Equal(t, 256, KeyBits(privKey(k)))
	n := 0
	for _, r := range Mechanisms() {
		for _, kt := range r.KeyTypes {
			if kt == ck.CKK_EC {
				n++
				assert.LessOrEqualf(t, r.MinKeySize, uint64(256), "%s", ck.MechName(r.Type))
				assert.GreaterOrEqualf(t, r.MaxKeySize, uint64(256), "%s", ck.MechName(r.Type))
			}
		}
	}
	assert.Equal(t, 12, n, "EC key generation, ten ECDSA rows and ECDH")
}

// TestSecp256k1GoStdlib records what Go's crypto packages do with this
// curve, which is why mech does its own: crypto/ecdsa still signs and
// verifies on a custom elliptic.Curve in Go 1.26 (through its deprecated
// math/big path, interoperable with decred's), but its Bytes, raw parsers
// and ECDH refuse the curve, and crypto/x509 knows neither key encoding.
func TestSecp256k1GoStdlib(t *testing.T) {
	k, err := k1Generate(rand.Reader)
	require.NoError(t, err)
	h := sha256.Sum256([]byte("generic path"))

	// The deprecated path works, both ways.
	der, err := ecdsa.SignASN1(rand.Reader, k, h[:])
	require.NoError(t, err, "crypto/ecdsa no longer signs on custom curves")
	sig, err := k1ecdsa.ParseDERSignature(der)
	require.NoError(t, err)
	pub, err := k1Public(&k.PublicKey)
	require.NoError(t, err)
	assert.True(t, sig.Verify(h[:], pub), "crypto/ecdsa's signature does not verify with decred")
	ours, err := k1Sign(k, h[:])
	require.NoError(t, err)
	assert.True(t, ecdsa.VerifyASN1(&k.PublicKey, h[:], rsToDER(t, ours)), "decred's signature does not verify with crypto/ecdsa")

	// What does not work.
	_, err = k.Bytes()
	assert.Error(t, err)
	_, err = k.PublicKey.Bytes()
	assert.Error(t, err)
	_, err = k.ECDH()
	assert.Error(t, err)
	_, err = ecdsa.ParseRawPrivateKey(k1Elliptic, make([]byte, 32))
	assert.Error(t, err)
	_, err = x509.MarshalPKCS8PrivateKey(k)
	assert.Error(t, err)
	_, err = x509.MarshalPKIXPublicKey(&k.PublicKey)
	assert.Error(t, err)
}

func TestSecp256k1KnownAnswers(t *testing.T) {
	var v struct {
		Vectors []struct{ D, Msg, Sig string }
		G       string `json:"generator"`
	}
	loadJSON(t, "secp256k1_rfc6979.json", &v)
	require.Len(t, v.Vectors, 5)
	half := new(big.Int).Rsh(k1Order, 1)
	for _, tv := range v.Vectors {
		t.Run(tv.Msg[:min(len(tv.Msg), 16)]+"/"+tv.D[56:], func(t *testing.T) {
			k := k1Key(t, tv.D)
			want := unhex(t, tv.Sig)
			require.LessOrEqual(t, new(big.Int).SetBytes(want[32:]).Cmp(half), 0, "the vector's s is low")
			h := sha256.Sum256([]byte(tv.Msg))
			for _, m := range []struct {
				typ  uint64
				data []byte
			}{{ck.CKM_ECDSA_SHA256, []byte(tv.Msg)}, {ck.CKM_ECDSA, h[:]}} {
				r := row(t, m.typ)
				sig, err := r.Sign(privKey(k), Mech{Type: m.typ}, m.data)
				require.NoError(t, err)
				assert.Equalf(t, want, sig, "%s", ck.MechName(m.typ))
				verifier := k1PubObject(t, k.Public())
				require.NoError(t, r.Verify(verifier, Mech{Type: m.typ}, m.data, want))
				// The same signature with the high s verifies too.
				high := append([]byte(nil), want...)
				new(big.Int).Sub(k1Order, new(big.Int).SetBytes(want[32:])).FillBytes(high[32:])
				require.NoError(t, r.Verify(verifier, Mech{Type: m.typ}, m.data, high))
				requireRV(t, r.Verify(verifier, Mech{Type: m.typ}, m.data, flip(want, 40)), ck.CKR_SIGNATURE_INVALID)
			}
		})
	}
	// d = 1: the public key is the generator.
	_, a, err := PublicKeyAttrs(k1Key(t, "01").Public())
	require.NoError(t, err)
	assert.Equal(t, derOctetString(unhex(t, v.G)), a[ck.CKA_EC_POINT])
	assert.Equal(t, unhex(t, k1Params), a[ck.CKA_EC_PARAMS])
	assert.Equal(t, unhex(t, "3056301006072a8648ce3d020106052b8104000a034200"+v.G), a[ck.CKA_PUBLIC_KEY_INFO])
}

// wycheproof is testdata/secp256k1_wycheproof.json.gz (its "source" says
// where it comes from).
type wycheproof struct {
	Source string
	ECDSA  []struct {
		SHA   string
		Key   string
		Tests []struct {
			ID               int
			Msg, Sig, Result string
		}
	}
	ECDH []struct {
		ID                              int
		Public, Private, Shared, Result string
	}
}

func loadWycheproof(t testing.TB) *wycheproof {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "secp256k1_wycheproof.json.gz"))
	require.NoError(t, err)
	defer f.Close()
	z, err := gzip.NewReader(f)
	require.NoError(t, err)
	var w wycheproof
	require.NoError(t, json.NewDecoder(z).Decode(&w))
	require.Contains(t, w.Source, "wycheproof")
	return &w
}

func TestSecp256k1WycheproofECDSA(t *testing.T) {
	w := loadWycheproof(t)
	mechs := map[string]uint64{"SHA-256": ck.CKM_ECDSA_SHA256, "SHA-512": ck.CKM_ECDSA_SHA512}
	counts := map[string]int{}
	for _, g := range w.ECDSA {
		typ, ok := mechs[g.SHA]
		require.True(t, ok, g.SHA)
		r := row(t, typ)
		pub, err := PublicKeyFromAttrs(ck.CKK_EC, object.Attrs{ck.CKA_EC_PARAMS: unhex(t, k1Params), ck.CKA_EC_POINT: unhex(t, g.Key)})
		require.NoError(t, err)
		for _, tc := range g.Tests {
			err := r.Verify(pubKey(pub), Mech{Type: typ}, unhex(t, tc.Msg), unhex(t, tc.Sig))
			switch tc.Result {
			case "valid":
				assert.NoErrorf(t, err, "%s tcId %d", g.SHA, tc.ID)
			case "invalid":
				if assert.Errorf(t, err, "%s tcId %d verifies", g.SHA, tc.ID) {
					assert.Truef(t, hsmerr.IsRV(err, ck.CKR_SIGNATURE_INVALID) || hsmerr.IsRV(err, ck.CKR_SIGNATURE_LEN_RANGE), "%s tcId %d: %v", g.SHA, tc.ID, err)
				}
			default:
				t.Fatalf("%s tcId %d: result %q", g.SHA, tc.ID, tc.Result)
			}
			counts[g.SHA+" "+tc.Result]++
		}
	}
	assert.Equal(t, map[string]int{"SHA-256 valid": 167, "SHA-256 invalid": 85, "SHA-512 valid": 236, "SHA-512 invalid": 86}, counts)
}

func TestSecp256k1WycheproofECDH(t *testing.T) {
	w := loadWycheproof(t)
	r := row(t, ck.CKM_ECDH1_DERIVE)
	got := map[string]int{}
	for _, tc := range w.ECDH {
		derive := func() ([]byte, error) {
			pub, err := ParsePKIXPublicKey(unhex(t, tc.Public))
			if err != nil {
				return nil, err
			}
			ep, ok := pub.(*ecdsa.PublicKey)
			if !ok {
				return nil, hsmerr.Errorf(ck.CKR_KEY_TYPE_INCONSISTENT, "not EC")
			}
			var pt []byte
			if isK1(ep.Curve) {
				pt, err = k1PointBytes(ep)
			} else {
				pt, err = ep.Bytes()
			}
			if err != nil {
				return nil, err
			}
			return r.Derive(privKey(k1Key(t, tc.Private)), Mech{Type: r.Type, Param: &ECDHParams{KDF: ck.CKD_NULL, PublicData: pt}})
		}
		z, err := derive()
		switch {
		case tc.Result == "valid":
			if assert.NoErrorf(t, err, "tcId %d", tc.ID) {
				assert.Equalf(t, unhex(t, tc.Shared), z, "tcId %d", tc.ID)
			}
		case tc.Result == "invalid":
			assert.Errorf(t, err, "tcId %d is invalid", tc.ID)
		case err == nil: // acceptable, and accepted
			assert.Equalf(t, unhex(t, tc.Shared), z, "tcId %d", tc.ID)
		}
		outcome := "refused"
		if err == nil {
			outcome = "derived"
		}
		got[tc.Result+" "+outcome]++
	}
	t.Logf("ECDH outcomes: %v", got)
	assert.Equal(t, 473, got["valid derived"])
	assert.Equal(t, 49, got["invalid refused"])
}

func TestSecp256k1KeyCodecs(t *testing.T) {
	k, err := k1Generate(rand.Reader)
	require.NoError(t, err)

	// Attributes, both ways.
	kt, a, err := PublicKeyAttrs(k.Public())
	require.NoError(t, err)
	require.Equal(t, uint64(ck.CKK_EC), kt)
	pt := rawPoint(t, &k.PublicKey)
	require.Len(t, pt, 65)
	for _, form := range [][]byte{a[ck.CKA_EC_POINT], pt} {
		pub, err := PublicKeyFromAttrs(ck.CKK_EC, object.Attrs{ck.CKA_EC_PARAMS: a[ck.CKA_EC_PARAMS], ck.CKA_EC_POINT: form})
		require.NoError(t, err)
		require.True(t, pub.(*ecdsa.PublicKey).Equal(k.Public()))
	}
	a = privateAttrs(t, k, ck.CKA_VALUE)
	full := make([]byte, 32)
	k.D.FillBytes(full)
	require.Equal(t, bytes.TrimLeft(full, "\x00"), a[ck.CKA_VALUE])
	for _, v := range [][]byte{a[ck.CKA_VALUE], full, append([]byte{0}, full...)} {
		got, err := PrivateKeyFromAttrs(ck.CKK_EC, object.Attrs{ck.CKA_EC_PARAMS: a[ck.CKA_EC_PARAMS], ck.CKA_VALUE: v})
		require.NoError(t, err)
		require.True(t, got.(*ecdsa.PrivateKey).Equal(k))
	}

	// PKCS #8 and SPKI round trips.
	der, err := MarshalPrivateKey(k)
	require.NoError(t, err)
	kt, back, err := ParsePrivateKey(der)
	require.NoError(t, err)
	require.Equal(t, uint64(ck.CKK_EC), kt)
	require.True(t, back.(*ecdsa.PrivateKey).Equal(k))
	require.True(t, isK1(back.(*ecdsa.PrivateKey).Curve))
	spki, err := MarshalPKIXPublicKey(k.Public())
	require.NoError(t, err)
	require.Equal(t, a[ck.CKA_PUBLIC_KEY_INFO], spki)
	pub, err := ParsePKIXPublicKey(spki)
	require.NoError(t, err)
	require.True(t, pub.(*ecdsa.PublicKey).Equal(k.Public()))

	// Other keys go to crypto/x509 unchanged.
	fixtures(t)
	for _, p := range []crypto.PublicKey{&fixRSA.PublicKey, &fixP384.PublicKey} {
		mine, err := MarshalPKIXPublicKey(p)
		require.NoError(t, err)
		theirs, err := x509.MarshalPKIXPublicKey(p)
		require.NoError(t, err)
		require.Equal(t, theirs, mine)
		back, err := ParsePKIXPublicKey(mine)
		require.NoError(t, err)
		require.True(t, back.(interface{ Equal(crypto.PublicKey) bool }).Equal(p))
	}
	_, err = ParsePKIXPublicKey([]byte{0x30, 0x00})
	require.Error(t, err)
}

func TestSecp256k1KeyErrors(t *testing.T) {
	params := unhex(t, k1Params)
	g := "0479be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8"
	notOnCurve := unhex(t, g)
	notOnCurve[64] ^= 1
	hybrid := unhex(t, g)
	hybrid[0] = 6 // G's y is even
	compressed := unhex(t, "02"+g[2:66])
	pubCases := []struct {
		name  string
		point []byte
	}{
		{"not on the curve", notOnCurve},
		{"hybrid form", hybrid},
		{"compressed", compressed},
		{"x = p", unhex(t, "04fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f"+g[66:])},
		{"empty", nil},
	}
	for _, c := range pubCases {
		t.Run("public "+c.name, func(t *testing.T) {
			_, err := PublicKeyFromAttrs(ck.CKK_EC, object.Attrs{ck.CKA_EC_PARAMS: params, ck.CKA_EC_POINT: c.point})
			requireRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
		})
	}
	privCases := []struct {
		name  string
		value []byte
	}{
		{"zero", make([]byte, 32)},
		{"n", k1Order.Bytes()},
		{"n+1", new(big.Int).Add(k1Order, big.NewInt(1)).Bytes()},
		{"33 bytes", append([]byte{1}, make([]byte, 32)...)},
	}
	for _, c := range privCases {
		t.Run("private "+c.name, func(t *testing.T) {
			_, err := PrivateKeyFromAttrs(ck.CKK_EC, object.Attrs{ck.CKA_EC_PARAMS: params, ck.CKA_VALUE: c.value})
			requireRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
		})
	}
	// A key whose public half is off the curve has no attributes.
	_, _, err := PublicKeyAttrs(&ecdsa.PublicKey{Curve: k1Elliptic, X: big.NewInt(1), Y: big.NewInt(1)})
	requireRV(t, err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	_, err = MarshalPKIXPublicKey(&ecdsa.PublicKey{Curve: k1Elliptic, X: big.NewInt(1), Y: big.NewInt(1)})
	require.Error(t, err)
	_, err = MarshalPrivateKey(&ecdsa.PrivateKey{PublicKey: ecdsa.PublicKey{Curve: k1Elliptic}, D: new(big.Int).Set(k1Order)})
	require.Error(t, err)

	// ECDH refuses peers off the curve, compressed or hybrid, and the
	// signature rows a signature of the wrong length.
	k := k1Key(t, "02")
	for _, c := range pubCases[:3] {
		_, err := row(t, ck.CKM_ECDH1_DERIVE).Derive(privKey(k), Mech{Type: ck.CKM_ECDH1_DERIVE, Param: &ECDHParams{KDF: ck.CKD_NULL, PublicData: c.point}})
		requireRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
	}
	r := row(t, ck.CKM_ECDSA_SHA256)
	sig, err := r.Sign(privKey(k), Mech{Type: r.Type}, []byte("m"))
	require.NoError(t, err)
	requireRV(t, r.Verify(k1PubObject(t, k.Public()), Mech{Type: r.Type}, []byte("m"), sig[:63]), ck.CKR_SIGNATURE_LEN_RANGE)
	// r or s of n or more, or zero, is refused rather than reduced.
	for _, bad := range [][]byte{
		append(k1Order.Bytes(), sig[32:]...),
		append(sig[:32:32], k1Order.Bytes()...),
		append(make([]byte, 32), sig[32:]...),
		append(sig[:32:32], make([]byte, 32)...),
	} {
		requireRV(t, r.Verify(k1PubObject(t, k.Public()), Mech{Type: r.Type}, []byte("m"), bad), ck.CKR_SIGNATURE_INVALID)
	}
	// r + n also represents r mod n: still refused.
	rPlusN := new(big.Int).Add(new(big.Int).SetBytes(sig[:32]), k1Order)
	if rPlusN.BitLen() <= 256 {
		bad := append(rPlusN.FillBytes(make([]byte, 32)), sig[32:]...)
		requireRV(t, r.Verify(k1PubObject(t, k.Public()), Mech{Type: r.Type}, []byte("m"), bad), ck.CKR_SIGNATURE_INVALID)
	}
}

// k1PKCS8 builds a PKCS #8 secp256k1 key from hex parts, to test the
// parser on forms mech does not write.
func k1PKCS8(t testing.TB, version, alg, ecKey, tail string) []byte {
	t.Helper()
	return unhex(t, tlv(t, 0x30, version+alg+tlv(t, 0x04, ecKey)+tail))
}

// tlv is a DER element in hex, of at most 255 bytes of contents.
func tlv(t testing.TB, tag byte, hexBody string) string {
	t.Helper()
	n := len(hexBody) / 2
	require.Less(t, n, 256)
	if n < 128 {
		return fmt.Sprintf("%02x%02x", tag, n) + hexBody
	}
	return fmt.Sprintf("%02x81%02x", tag, n) + hexBody
}

func TestSecp256k1PKCS8Parse(t *testing.T) {
	k := k1Key(t, "01")
	der, err := MarshalPrivateKey(k)
	require.NoError(t, err)
	g := "0479be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8"
	alg := "301006072a8648ce3d020106052b8104000a"
	one := "0000000000000000000000000000000000000000000000000000000000000001"
	pubField := "a144034200" + g
	ecKey := func(version, scalar, rest string) string {
		return tlv(t, 0x30, version+tlv(t, 0x04, scalar)+rest)
	}
	// What mech writes: the layout of OpenSSL's PKCS #8 EC keys.
	require.Equal(t, k1PKCS8(t, "020100", alg, ecKey("020101", one, pubField), ""), der)

	good := []struct {
		name string
		der  []byte
	}{
		{"curve in ECPrivateKey too", k1PKCS8(t, "020100", alg, ecKey("020101", one, "a00706052b8104000a"+pubField), "")},
		{"no public key", k1PKCS8(t, "020100", alg, ecKey("020101", one, ""), "")},
		{"short scalar", k1PKCS8(t, "020100", alg, ecKey("020101", "01", ""), "")},
		{"scalar with a leading zero", k1PKCS8(t, "020100", alg, ecKey("020101", "00"+one, ""), "")},
		{"version 1 with attributes", k1PKCS8(t, "020101", alg, ecKey("020101", one, pubField), "a000")},
	}
	for _, c := range good {
		t.Run(c.name, func(t *testing.T) {
			kt, got, err := ParsePrivateKey(c.der)
			require.NoError(t, err)
			require.Equal(t, uint64(ck.CKK_EC), kt)
			require.True(t, got.(*ecdsa.PrivateKey).Equal(k))
		})
	}
	two := "0000000000000000000000000000000000000000000000000000000000000002"
	bad := []struct {
		name string
		der  []byte
	}{
		{"public key of another scalar", k1PKCS8(t, "020100", alg, ecKey("020101", two, pubField), "")},
		{"P-256 in ECPrivateKey", k1PKCS8(t, "020100", alg, ecKey("020101", one, "a00a06082a8648ce3d030107"), "")},
		{"ECPrivateKey version 0", k1PKCS8(t, "020100", alg, ecKey("020100", one, ""), "")},
		{"PrivateKeyInfo version 2", k1PKCS8(t, "020102", alg, ecKey("020101", one, ""), "")},
		{"zero scalar", k1PKCS8(t, "020100", alg, ecKey("020101", strings.Repeat("00", 32), ""), "")},
		{"scalar n", k1PKCS8(t, "020100", alg, ecKey("020101", k1Order.Text(16), ""), "")},
		{"33-byte scalar", k1PKCS8(t, "020100", alg, ecKey("020101", "01"+one, ""), "")},
		{"trailing field", k1PKCS8(t, "020100", alg, ecKey("020101", one, ""), "0500")},
		{"trailing bytes", append(append([]byte(nil), der...), 0)},
		{"cut short", der[:len(der)-1]},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := ParsePrivateKey(c.der)
			requireRV(t, err, ck.CKR_DATA_INVALID)
		})
	}
}

// writeK1PEM writes DER as PEM of the given type into dir.
func writeK1PEM(t testing.TB, dir, name, typ string, der []byte) string {
	t.Helper()
	return writeFile(t, dir, name, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

// pemBody is the DER of the one PEM block of type typ in b.
func pemBody(t testing.TB, b []byte, typ string) []byte {
	t.Helper()
	blk, rest := pem.Decode(b)
	require.NotNil(t, blk)
	require.Equal(t, typ, blk.Type)
	require.Empty(t, bytes.TrimSpace(rest))
	return blk.Bytes
}

// TestSecp256k1OpenSSL checks mech against the openssl binary: OpenSSL
// reads mech's PKCS #8 and SPKI and writes the same bytes back; signatures
// made by either verify with the other; ECDH agrees.
func TestSecp256k1OpenSSL(t *testing.T) {
	dir := t.TempDir()
	msg := []byte("secp256k1 with OpenSSL")
	msgFile := writeFile(t, dir, "msg", msg)

	// mech's key, read by OpenSSL.
	ours, err := row(t, ck.CKM_EC_KEY_PAIR_GEN).GenerateKeyPair(rand.Reader, KeyPairParams{ECParams: unhex(t, k1Params)})
	require.NoError(t, err)
	p8, err := MarshalPrivateKey(ours)
	require.NoError(t, err)
	spki, err := MarshalPKIXPublicKey(ours.Public())
	require.NoError(t, err)
	oursPriv := writeK1PEM(t, dir, "ours.pem", "PRIVATE KEY", p8)
	oursPub := writeK1PEM(t, dir, "ours_pub.pem", "PUBLIC KEY", spki)
	text := string(openssl(t, nil, "pkey", "-in", oursPriv, "-text", "-noout"))
	assert.Contains(t, text, "Private-Key: (256 bit)")
	assert.Contains(t, text, "ASN1 OID: secp256k1")
	text = string(openssl(t, nil, "pkey", "-pubin", "-in", oursPub, "-text", "-noout"))
	assert.Contains(t, text, "Public-Key: (256 bit)")
	assert.Contains(t, text, "ASN1 OID: secp256k1")
	// OpenSSL writes back exactly what mech wrote.
	assert.Equal(t, p8, pemBody(t, openssl(t, nil, "pkey", "-in", oursPriv), "PRIVATE KEY"))
	assert.Equal(t, spki, openssl(t, nil, "pkey", "-in", oursPriv, "-pubout", "-outform", "DER"))
	assert.Equal(t, spki, openssl(t, nil, "pkey", "-pubin", "-in", oursPub, "-outform", "DER"))

	// mech's signatures verify with OpenSSL: CKM_ECDSA_SHA256, and
	// CKM_ECDSA_SHA512 whose hash both cut to 256 bits, and CKM_ECDSA.
	h256 := sha256.Sum256(msg)
	h512 := sha512.Sum512(msg)
	for _, c := range []struct {
		typ    uint64
		data   []byte
		digest []byte
	}{{ck.CKM_ECDSA_SHA256, msg, h256[:]}, {ck.CKM_ECDSA_SHA512, msg, h512[:]}, {ck.CKM_ECDSA, h256[:], h256[:]}} {
		sig, err := row(t, c.typ).Sign(privKey(ours), Mech{Type: c.typ}, c.data)
		require.NoError(t, err)
		require.Len(t, sig, 64)
		sigFile := writeFile(t, dir, "sig.der", rsToDER(t, sig))
		hashFile := writeFile(t, dir, "hash", c.digest)
		out := openssl(t, nil, "pkeyutl", "-verify", "-pubin", "-inkey", oursPub, "-in", hashFile, "-sigfile", sigFile)
		assert.Containsf(t, string(out), "Signature Verified Successfully", "%s", ck.MechName(c.typ))
	}
	out := openssl(t, nil, "dgst", "-sha256", "-verify", oursPub, "-signature", filepath.Join(dir, "sig.der"), msgFile)
	assert.Contains(t, string(out), "Verified OK")

	// OpenSSL's key, read by mech; OpenSSL's signatures verify with mech.
	theirsPriv := filepath.Join(dir, "theirs.pem")
	openssl(t, nil, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:secp256k1", "-out", theirsPriv)
	theirsDER := pemBody(t, openssl(t, nil, "pkey", "-in", theirsPriv), "PRIVATE KEY")
	kt, theirs, err := ParsePrivateKey(theirsDER)
	require.NoError(t, err)
	require.Equal(t, uint64(ck.CKK_EC), kt)
	again, err := MarshalPrivateKey(theirs)
	require.NoError(t, err)
	assert.Equal(t, theirsDER, again, "mech re-encodes OpenSSL's key byte for byte")
	theirsSPKI := openssl(t, nil, "pkey", "-in", theirsPriv, "-pubout", "-outform", "DER")
	theirsPub, err := ParsePKIXPublicKey(theirsSPKI)
	require.NoError(t, err)
	require.True(t, theirsPub.(*ecdsa.PublicKey).Equal(theirs.Public()))
	verifier := k1PubObject(t, theirsPub)
	for i := 0; i < 4; i++ { // OpenSSL's s is high about half the time
		hashFile := writeFile(t, dir, "hash", h256[:])
		der := openssl(t, nil, "pkeyutl", "-sign", "-inkey", theirsPriv, "-in", hashFile)
		sig := derToRS(t, der, 32)
		require.NoError(t, row(t, ck.CKM_ECDSA).Verify(verifier, Mech{Type: ck.CKM_ECDSA}, h256[:], sig))
		require.NoError(t, row(t, ck.CKM_ECDSA_SHA256).Verify(verifier, Mech{Type: ck.CKM_ECDSA_SHA256}, msg, sig))
		requireRV(t, row(t, ck.CKM_ECDSA_SHA256).Verify(verifier, Mech{Type: ck.CKM_ECDSA_SHA256}, flip(msg, 0), sig), ck.CKR_SIGNATURE_INVALID)
	}

	// ECDH: mech's secret with OpenSSL's public key is OpenSSL's secret
	// with mech's.
	theirsPubFile := writeK1PEM(t, dir, "theirs_pub.pem", "PUBLIC KEY", theirsSPKI)
	want := openssl(t, nil, "pkeyutl", "-derive", "-inkey", theirsPriv, "-peerkey", oursPub)
	require.Len(t, want, 32)
	r := row(t, ck.CKM_ECDH1_DERIVE)
	z, err := r.Derive(privKey(ours), Mech{Type: r.Type, Param: &ECDHParams{KDF: ck.CKD_NULL, PublicData: derOctetString(rawPoint(t, theirsPub.(*ecdsa.PublicKey)))}})
	require.NoError(t, err)
	assert.Equal(t, want, z)
	assert.Equal(t, want, openssl(t, nil, "pkeyutl", "-derive", "-inkey", oursPriv, "-peerkey", theirsPubFile))
}
