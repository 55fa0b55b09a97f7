package mech

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
)

// ---------------------------------------------------------------------------
// Helpers shared by the mechanism, key wrap, CMAC and key codec tests.

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func loadJSON(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// wantRV fails unless err is an *Error with the return value rv.
func wantRV(t testing.TB, err error, rv uint64) {
	t.Helper()
	var e *hsmerr.Error
	if !errors.As(err, &e) {
		t.Fatalf("got error %v (%T), want *Error %s", err, err, ck.RVName(rv))
	}
	if e.RV != rv {
		t.Fatalf("got %v, want %s", err, ck.RVName(rv))
	}
}

func noErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func row(t testing.TB, typ uint64) *Mechanism {
	t.Helper()
	m, ok := LookupMechanism(typ)
	if !ok {
		t.Fatalf("%s is not in the table", ck.MechName(typ))
	}
	return m
}

func secretKey(kt uint64, v []byte) *Key {
	return &Key{Class: ck.CKO_SECRET_KEY, KeyType: kt, Secret: v}
}

func keyTypeOf(p crypto.PublicKey) uint64 {
	switch p.(type) {
	case *rsa.PublicKey:
		return ck.CKK_RSA
	case *ecdsa.PublicKey:
		return ck.CKK_EC
	case ed25519.PublicKey:
		return ck.CKK_EC_EDWARDS
	}
	return ^uint64(0)
}

// privKey is a private key as the engine hands it to a mechanism: the
// private key and its public half.
func privKey(s crypto.Signer) *Key {
	return &Key{Class: ck.CKO_PRIVATE_KEY, KeyType: keyTypeOf(s.Public()), Private: s, Public: s.Public()}
}

// pubKey is a public key object's key: the public key alone.
func pubKey(p crypto.PublicKey) *Key {
	return &Key{Class: ck.CKO_PUBLIC_KEY, KeyType: keyTypeOf(p), Public: p}
}

func readPEMKey(t testing.TB, name string) crypto.Signer {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	noErr(t, err)
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", name)
	}
	_, k, err := ParsePrivateKey(blk.Bytes)
	noErr(t, err)
	return k
}

var (
	fixtureOnce sync.Once
	fixRSA      *rsa.PrivateKey   // testdata/rsa2048.pem (OpenSSL-made)
	fixP384     *ecdsa.PrivateKey // testdata/ec_p384.pem (OpenSSL-made)
)

func fixtures(t testing.TB) {
	fixtureOnce.Do(func() {
		fixRSA = readPEMKey(t, "rsa2048.pem").(*rsa.PrivateKey)
		fixP384 = readPEMKey(t, "ec_p384.pem").(*ecdsa.PrivateKey)
	})
	if fixRSA == nil {
		t.Fatal("fixtures failed to load")
	}
}

// openssl runs the openssl binary, skipping the test if there is none.
func openssl(t testing.TB, stdin []byte, args ...string) []byte {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed")
	}
	cmd := exec.Command(path, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

func writeFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	noErr(t, os.WriteFile(p, b, 0o600))
	return p
}

func writePubPEM(t testing.TB, dir string, pub crypto.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	noErr(t, err)
	return writeFile(t, dir, "pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func writePrivPEM(t testing.TB, dir string, k crypto.Signer) string {
	t.Helper()
	der, err := MarshalPrivateKey(k)
	noErr(t, err)
	return writeFile(t, dir, "priv.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// rsToDER turns a PKCS #11 r||s signature into an ASN.1 one, and back.
func rsToDER(t testing.TB, sig []byte) []byte {
	t.Helper()
	n := len(sig) / 2
	der, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])})
	noErr(t, err)
	return der
}

func derToRS(t testing.TB, der []byte, n int) []byte {
	t.Helper()
	var v struct{ R, S *big.Int }
	_, err := asn1.Unmarshal(der, &v)
	noErr(t, err)
	out := make([]byte, 2*n)
	v.R.FillBytes(out[:n])
	v.S.FillBytes(out[n:])
	return out
}

// rawPoint is the uncompressed point of an EC public key on any curve of
// the table.
func rawPoint(t testing.TB, p *ecdsa.PublicKey) []byte {
	t.Helper()
	if isK1(p.Curve) {
		pt, err := k1PointBytes(p)
		noErr(t, err)
		return pt
	}
	pt, err := p.Bytes()
	noErr(t, err)
	return pt
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0x01
	return c
}

// ---------------------------------------------------------------------------
// The table itself.

var hashMechs = map[crypto.Hash]struct{ ckm, mgf uint64 }{
	crypto.SHA1:     {ck.CKM_SHA_1, ck.CKG_MGF1_SHA1},
	crypto.SHA224:   {ck.CKM_SHA224, ck.CKG_MGF1_SHA224},
	crypto.SHA256:   {ck.CKM_SHA256, ck.CKG_MGF1_SHA256},
	crypto.SHA384:   {ck.CKM_SHA384, ck.CKG_MGF1_SHA384},
	crypto.SHA512:   {ck.CKM_SHA512, ck.CKG_MGF1_SHA512},
	crypto.SHA3_224: {ck.CKM_SHA3_224, ck.CKG_MGF1_SHA3_224},
	crypto.SHA3_256: {ck.CKM_SHA3_256, ck.CKG_MGF1_SHA3_256},
	crypto.SHA3_384: {ck.CKM_SHA3_384, ck.CKG_MGF1_SHA3_384},
	crypto.SHA3_512: {ck.CKM_SHA3_512, ck.CKG_MGF1_SHA3_512},
}

// pssRowHash is the hash of each PSS row; the raw one is tested with SHA-256.
var pssRowHash = map[uint64]crypto.Hash{
	ck.CKM_RSA_PKCS_PSS:          crypto.SHA256,
	ck.CKM_SHA1_RSA_PKCS_PSS:     crypto.SHA1,
	ck.CKM_SHA224_RSA_PKCS_PSS:   crypto.SHA224,
	ck.CKM_SHA256_RSA_PKCS_PSS:   crypto.SHA256,
	ck.CKM_SHA384_RSA_PKCS_PSS:   crypto.SHA384,
	ck.CKM_SHA512_RSA_PKCS_PSS:   crypto.SHA512,
	ck.CKM_SHA3_224_RSA_PKCS_PSS: crypto.SHA3_224,
	ck.CKM_SHA3_256_RSA_PKCS_PSS: crypto.SHA3_256,
	ck.CKM_SHA3_384_RSA_PKCS_PSS: crypto.SHA3_384,
	ck.CKM_SHA3_512_RSA_PKCS_PSS: crypto.SHA3_512,
}

func pssMech(t uint64, h crypto.Hash, salt int) Mech {
	return Mech{Type: t, Param: &PSSParams{Hash: hashMechs[h].ckm, MGF: hashMechs[h].mgf, SaltLen: uint64(salt)}}
}

// defaultMech is a valid mechanism, parameter included, for a row.
func defaultMech(r *Mechanism) Mech {
	m := Mech{Type: r.Type}
	switch r.Param {
	case ParamPSS:
		h := pssRowHash[r.Type]
		m = pssMech(r.Type, h, h.Size())
	case ParamOAEP:
		m.Param = &OAEPParams{Hash: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256, Source: ck.CKZ_DATA_SPECIFIED, Label: []byte("label")}
	case ParamIV:
		if !optionalParam[r.Type] {
			m.Param = &IVParams{IV: bytes.Repeat([]byte{0x5a}, 16)}
		}
	case ParamCTR:
		p := &CTRParams{CounterBits: 32}
		copy(p.CB[:], bytes.Repeat([]byte{0xc3}, 12))
		m.Param = p
	case ParamGCM:
		m.Param = &GCMParams{IV: bytes.Repeat([]byte{7}, 12), AAD: []byte("header"), TagBits: 128}
	case ParamMacLen:
		m.Param = &MacLenParams{Len: 10}
	case ParamECDH:
		m.Param = &ECDHParams{KDF: ck.CKD_NULL}
	case ParamHKDF:
		m.Param = &HKDFParams{Extract: true, Expand: true, PRF: ck.CKM_SHA256, SaltType: ck.CKF_HKDF_SALT_DATA, Salt: []byte("salt"), Info: []byte("info")}
	case ParamKDF108:
		m.Param = &KDF108Params{PRF: ck.CKM_SHA256_HMAC, Data: []KDF108Data{
			{Type: ck.CK_SP800_108_ITERATION_VARIABLE, WidthBits: 32},
			{Type: ck.CK_SP800_108_BYTE_ARRAY, Bytes: []byte("label")},
		}}
	case ParamChaCha:
		m.Param = &ChaChaParams{Nonce: bytes.Repeat([]byte{9}, 12), AAD: []byte("aad")}
	}
	return m
}

// dataFor is valid input for a row and key.
func dataFor(r *Mechanism, k *Key) []byte {
	switch r.Type {
	case ck.CKM_RSA_PKCS_PSS:
		return bytes.Repeat([]byte{0x11}, 32)
	case ck.CKM_ECDSA:
		return bytes.Repeat([]byte{0x22}, 48)
	case ck.CKM_RSA_X_509:
		n := KeyBits(k) / 8
		b := make([]byte, n)
		rand.Read(b[1:])
		return b
	case ck.CKM_AES_ECB, ck.CKM_AES_CBC, ck.CKM_AES_KEY_WRAP:
		return bytes.Repeat([]byte("0123456789abcdef"), 3)
	}
	return []byte("The quick brown fox jumps over the dog")
}

func TestMechanismTableShape(t *testing.T) {
	all := Mechanisms()
	if len(all) != len(mechanisms) {
		t.Fatalf("Mechanisms() has %d rows, the table %d", len(all), len(mechanisms))
	}
	if !sort.SliceIsSorted(all, func(i, j int) bool { return all[i].Type < all[j].Type }) {
		t.Fatal("Mechanisms() is not sorted by type")
	}
	for i := range all {
		r := &all[i]
		name := ck.MechName(r.Type)
		if strings.HasPrefix(name, "CKM_0x") {
			t.Errorf("row 0x%x has no PKCS#11 name", r.Type)
		}
		got, ok := LookupMechanism(r.Type)
		if !ok || got.Type != r.Type {
			t.Errorf("%s: LookupMechanism fails", name)
		}
		flags := []struct {
			flag uint64
			fn   bool
		}{
			{ck.CKF_SIGN, r.Sign != nil},
			{ck.CKF_VERIFY, r.Verify != nil},
			{ck.CKF_ENCRYPT, r.Encrypt != nil},
			{ck.CKF_DECRYPT, r.Decrypt != nil},
			{ck.CKF_DIGEST, r.Digest != nil},
			{ck.CKF_DERIVE, r.Derive != nil || r.DeriveKDF != nil},
			{ck.CKF_GENERATE, r.GenerateKey != nil},
			{ck.CKF_GENERATE_KEY_PAIR, r.GenerateKeyPair != nil},
		}
		for _, f := range flags {
			if (r.Flags&f.flag != 0) != f.fn {
				t.Errorf("%s: flag 0x%x does not agree with its function", name, f.flag)
			}
		}
		if r.Flags&ck.CKF_SIGN_RECOVER != 0 && r.Sign == nil || r.Flags&ck.CKF_VERIFY_RECOVER != 0 && r.Verify == nil {
			t.Errorf("%s: recovers without Sign/Verify", name)
		}
		if r.Flags&ck.CKF_WRAP != 0 && r.Encrypt == nil || r.Flags&ck.CKF_UNWRAP != 0 && r.Decrypt == nil {
			t.Errorf("%s: wraps without Encrypt/Decrypt", name)
		}
		keyed := r.Digest == nil
		if keyed && (len(r.KeyTypes) == 0 || r.MinKeySize == 0 || r.MinKeySize > r.MaxKeySize) {
			t.Errorf("%s: key types %v, sizes %d..%d", name, r.KeyTypes, r.MinKeySize, r.MaxKeySize)
		}
		if (r.Sign != nil) != (r.Verify != nil) || (r.Encrypt != nil) != (r.Decrypt != nil) {
			t.Errorf("%s: one-way mechanism", name)
		}
		if err := CheckParam(r, defaultMech(r)); err != nil {
			t.Errorf("%s: default parameter refused: %v", name, err)
		}
		isEC := slices.Contains(r.KeyTypes, ck.CKK_EC) || slices.Contains(r.KeyTypes, ck.CKK_EC_EDWARDS)
		if isEC != (r.Flags&ck.CKF_EC_F_P != 0) {
			t.Errorf("%s: CKF_EC_F_P is wrong", name)
		}
	}
	// The rows the brief lists as wrapping mechanisms, and only those.
	var wrapping []string
	for _, r := range all {
		if r.Flags&(ck.CKF_WRAP|ck.CKF_UNWRAP) == ck.CKF_WRAP|ck.CKF_UNWRAP {
			wrapping = append(wrapping, ck.MechName(r.Type))
		}
	}
	want := []string{"CKM_RSA_PKCS", "CKM_RSA_PKCS_OAEP", "CKM_AES_CBC_PAD", "CKM_AES_GCM", "CKM_AES_KEY_WRAP", "CKM_AES_KEY_WRAP_KWP"}
	if strings.Join(wrapping, ",") != strings.Join(want, ",") {
		t.Errorf("wrapping rows %v, want %v", wrapping, want)
	}
	for _, typ := range []uint64{ck.CKM_RSA_PKCS_KEY_PAIR_GEN, ck.CKM_SHA3_512_RSA_PKCS_PSS, ck.CKM_ECDSA_SHA3_256, ck.CKM_SHA3_384_HMAC_GENERAL, ck.CKM_SHA3_224} {
		row(t, typ)
	}
	if _, ok := LookupMechanism(ck.CKM_MD5); ok {
		t.Error("CKM_MD5 is in the table")
	}
}

// TestMechanismTableRoundTrip runs every row with fresh keys at the ends
// of its key size range.
func TestMechanismTableRoundTrip(t *testing.T) {
	// Fresh keys made by the generation rows.
	rsaKey, err := row(t, ck.CKM_RSA_PKCS_KEY_PAIR_GEN).GenerateKeyPair(rand.Reader, KeyPairParams{ModulusBits: 2048, PublicExponent: 65537})
	noErr(t, err)
	genEC := func(c *CurveInfo) *Key {
		k, err := row(t, ck.CKM_EC_KEY_PAIR_GEN).GenerateKeyPair(rand.Reader, KeyPairParams{ECParams: c.Params})
		noErr(t, err)
		return privKey(k)
	}
	ed, err := row(t, ck.CKM_EC_EDWARDS_KEY_PAIR_GEN).GenerateKeyPair(rand.Reader, KeyPairParams{ECParams: []byte("\x13\x0cedwards25519")})
	noErr(t, err)
	genSecret := func(mech, kt uint64, n int) *Key {
		v, err := row(t, mech).GenerateKey(rand.Reader, n)
		noErr(t, err)
		if len(v) != n {
			t.Fatalf("%s made %d bytes, want %d", ck.MechName(mech), len(v), n)
		}
		return secretKey(kt, v)
	}
	keys := map[uint64][]*Key{
		ck.CKK_RSA:            {privKey(rsaKey)},
		ck.CKK_EC:             {genEC(curves[0]), genEC(curves[1]), genEC(curves[2]), genEC(k1Curve)},
		ck.CKK_EC_EDWARDS:     {privKey(ed)},
		ck.CKK_AES:            {genSecret(ck.CKM_AES_KEY_GEN, ck.CKK_AES, 16), genSecret(ck.CKM_AES_KEY_GEN, ck.CKK_AES, 24), genSecret(ck.CKM_AES_KEY_GEN, ck.CKK_AES, 32)},
		ck.CKK_GENERIC_SECRET: {genSecret(ck.CKM_GENERIC_SECRET_KEY_GEN, ck.CKK_GENERIC_SECRET, 1), genSecret(ck.CKM_GENERIC_SECRET_KEY_GEN, ck.CKK_GENERIC_SECRET, 512)},
	}

	tested := 0
	for _, r := range Mechanisms() {
		r := r
		name := ck.MechName(r.Type)
		if r.Digest != nil {
			in := []byte("abc")
			out, err := r.Digest(Mech{Type: r.Type}, in)
			noErr(t, err)
			h := digestHashes[r.Type]
			if !bytes.Equal(out, sum(h, in)) {
				t.Errorf("%s: wrong digest", name)
			}
			tested++
			continue
		}
		if r.GenerateKey != nil || r.GenerateKeyPair != nil {
			tested++ // used above
			continue
		}
		for _, k := range keys[r.KeyTypes[0]] {
			bits := uint64(KeyBits(k))
			if k.Class == ck.CKO_SECRET_KEY {
				bits /= 8
			}
			if bits < r.MinKeySize || bits > r.MaxKeySize {
				continue // e.g. the 512-byte HMAC key for AES rows
			}
			m := defaultMech(&r)
			data := dataFor(&r, k)
			verifier, encrypter := k, k
			if k.Class == ck.CKO_PRIVATE_KEY {
				verifier, encrypter = pubKey(k.Public), pubKey(k.Public)
			}
			t.Run(fmt.Sprintf("%s/%s/%d", name, ck.KeyTypeName(k.KeyType), KeyBits(k)), func(t *testing.T) {
				if r.Sign != nil {
					sig, err := r.Sign(k, m, data)
					noErr(t, err)
					noErr(t, r.Verify(verifier, m, data, sig))
					wantRV(t, r.Verify(verifier, m, data, flip(sig, len(sig)-1)), ck.CKR_SIGNATURE_INVALID)
					wantRV(t, r.Verify(verifier, m, flip(data, 0), sig), ck.CKR_SIGNATURE_INVALID)
				}
				if r.Encrypt != nil {
					ct, err := r.Encrypt(encrypter, m, data)
					noErr(t, err)
					pt, err := r.Decrypt(k, m, ct)
					noErr(t, err)
					if !bytes.Equal(pt, data) {
						t.Fatalf("decrypt gives %x, want %x", pt, data)
					}
				}
				if r.Derive != nil {
					other := genEC(curveOf(k.Private.(*ecdsa.PrivateKey).Curve))
					pt1 := rawPoint(t, k.Public.(*ecdsa.PublicKey))
					pt2 := rawPoint(t, other.Public.(*ecdsa.PublicKey))
					for _, kdf := range []uint64{ck.CKD_NULL, ck.CKD_SHA256_KDF} {
						s1, err := r.Derive(k, Mech{Type: r.Type, Param: &ECDHParams{KDF: kdf, PublicData: pt2}})
						noErr(t, err)
						s2, err := r.Derive(other, Mech{Type: r.Type, Param: &ECDHParams{KDF: kdf, PublicData: derOctetString(pt1)}})
						noErr(t, err)
						if !bytes.Equal(s1, s2) || len(s1) != curveOf(k.Private.(*ecdsa.PrivateKey).Curve).ByteLen() {
							t.Fatalf("ECDH secrets differ or have the wrong length")
						}
					}
				}
			})
			tested++
		}
	}
	if tested < len(mechanisms) {
		t.Errorf("only %d row/key runs for %d rows", tested, len(mechanisms))
	}
}

func TestMechRSAKeyGenRange(t *testing.T) {
	t.Parallel()
	r := row(t, ck.CKM_RSA_PKCS_KEY_PAIR_GEN)
	k, err := r.GenerateKeyPair(rand.Reader, KeyPairParams{ModulusBits: 4096, PublicExponent: 65537})
	noErr(t, err)
	priv := k.(*rsa.PrivateKey)
	if priv.N.BitLen() != 4096 || priv.E != 65537 || KeyBits(privKey(k)) != 4096 {
		t.Fatalf("got a %d-bit key with e=%d", priv.N.BitLen(), priv.E)
	}
	s := row(t, ck.CKM_SHA512_RSA_PKCS_PSS)
	m := pssMech(s.Type, crypto.SHA512, 64)
	sig, err := s.Sign(privKey(k), m, []byte("hello"))
	noErr(t, err)
	if len(sig) != 512 {
		t.Fatalf("signature is %d bytes", len(sig))
	}
	noErr(t, s.Verify(pubKey(k.Public()), m, []byte("hello"), sig))
	for _, p := range []KeyPairParams{{ModulusBits: 2047}, {ModulusBits: 1024}, {ModulusBits: 4097}, {ModulusBits: 8192}, {ModulusBits: 2049}} {
		_, err := r.GenerateKeyPair(rand.Reader, p)
		wantRV(t, err, ck.CKR_KEY_SIZE_RANGE)
	}
	_, err = r.GenerateKeyPair(rand.Reader, KeyPairParams{ModulusBits: 2048, PublicExponent: 3})
	wantRV(t, err, ck.CKR_TEMPLATE_INCONSISTENT)
}

func TestMechKeyGenErrors(t *testing.T) {
	ec := row(t, ck.CKM_EC_KEY_PAIR_GEN)
	ed := row(t, ck.CKM_EC_EDWARDS_KEY_PAIR_GEN)
	brainpool := []byte{0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07}
	cases := []struct {
		name string
		r    *Mechanism
		p    []byte
		rv   uint64
	}{
		{"EC without params", ec, nil, ck.CKR_TEMPLATE_INCOMPLETE},
		{"EC secp256k1 as Edwards", ed, curves[5].Params, ck.CKR_CURVE_NOT_SUPPORTED},
		{"EC brainpoolP256r1", ec, brainpool, ck.CKR_CURVE_NOT_SUPPORTED},
		{"EC with Ed25519 OID", ec, ed25519Curve.Params, ck.CKR_CURVE_NOT_SUPPORTED},
		{"EC garbage", ec, []byte{0x42, 0x01}, ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"EC truncated OID", ec, curves[0].Params[:5], ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"EC trailing bytes", ec, append(append([]byte(nil), curves[0].Params...), 0), ck.CKR_ATTRIBUTE_VALUE_INVALID},
		{"EC explicit params", ec, []byte{0x30, 0x00}, ck.CKR_CURVE_NOT_SUPPORTED},
		{"Edwards with P-256", ed, curves[0].Params, ck.CKR_CURVE_NOT_SUPPORTED},
		{"Edwards curve448 name", ed, []byte("\x13\x0aedwards448"), ck.CKR_CURVE_NOT_SUPPORTED},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.r.GenerateKeyPair(rand.Reader, KeyPairParams{ECParams: c.p})
			wantRV(t, err, c.rv)
		})
	}
	for _, c := range []struct {
		mech uint64
		size int
		ok   bool
	}{
		{ck.CKM_AES_KEY_GEN, 16, true}, {ck.CKM_AES_KEY_GEN, 24, true}, {ck.CKM_AES_KEY_GEN, 32, true},
		{ck.CKM_AES_KEY_GEN, 20, false}, {ck.CKM_AES_KEY_GEN, 8, false}, {ck.CKM_AES_KEY_GEN, 64, false},
		{ck.CKM_GENERIC_SECRET_KEY_GEN, 1, true}, {ck.CKM_GENERIC_SECRET_KEY_GEN, 512, true},
		{ck.CKM_GENERIC_SECRET_KEY_GEN, 0, false}, {ck.CKM_GENERIC_SECRET_KEY_GEN, 513, false},
	} {
		v, err := row(t, c.mech).GenerateKey(rand.Reader, c.size)
		if c.ok {
			noErr(t, err)
			if len(v) != c.size || c.size >= 16 && bytes.Equal(v, make([]byte, c.size)) {
				t.Errorf("%s(%d): got %d bytes", ck.MechName(c.mech), c.size, len(v))
			}
		} else {
			wantRV(t, err, ck.CKR_KEY_SIZE_RANGE)
		}
	}
	b, err := GenerateRandom(32)
	noErr(t, err)
	b2, _ := GenerateRandom(32)
	if len(b) != 32 || bytes.Equal(b, b2) {
		t.Error("GenerateRandom repeats itself")
	}
	_, err = GenerateRandom(-1)
	wantRV(t, err, ck.CKR_ARGUMENTS_BAD)
}

// ---------------------------------------------------------------------------
// Known answers.

var hashByName = map[string]struct {
	digest, hmac, hmacGeneral uint64
}{
	"SHA1":     {ck.CKM_SHA_1, ck.CKM_SHA_1_HMAC, ck.CKM_SHA_1_HMAC_GENERAL},
	"SHA224":   {ck.CKM_SHA224, ck.CKM_SHA224_HMAC, ck.CKM_SHA224_HMAC_GENERAL},
	"SHA256":   {ck.CKM_SHA256, ck.CKM_SHA256_HMAC, ck.CKM_SHA256_HMAC_GENERAL},
	"SHA384":   {ck.CKM_SHA384, ck.CKM_SHA384_HMAC, ck.CKM_SHA384_HMAC_GENERAL},
	"SHA512":   {ck.CKM_SHA512, ck.CKM_SHA512_HMAC, ck.CKM_SHA512_HMAC_GENERAL},
	"SHA3_224": {ck.CKM_SHA3_224, ck.CKM_SHA3_224_HMAC, ck.CKM_SHA3_224_HMAC_GENERAL},
	"SHA3_256": {ck.CKM_SHA3_256, ck.CKM_SHA3_256_HMAC, ck.CKM_SHA3_256_HMAC_GENERAL},
	"SHA3_384": {ck.CKM_SHA3_384, ck.CKM_SHA3_384_HMAC, ck.CKM_SHA3_384_HMAC_GENERAL},
	"SHA3_512": {ck.CKM_SHA3_512, ck.CKM_SHA3_512_HMAC, ck.CKM_SHA3_512_HMAC_GENERAL},
}

func TestMechDigestKAT(t *testing.T) {
	var v struct {
		Msg     string
		Digests map[string]string
	}
	loadJSON(t, "digest.json", &v)
	if len(v.Digests) != 9 {
		t.Fatalf("%d digests in the vectors", len(v.Digests))
	}
	for name, want := range v.Digests {
		typ := hashByName[name].digest
		got, err := row(t, typ).Digest(Mech{Type: typ}, []byte(v.Msg))
		noErr(t, err)
		if hex.EncodeToString(got) != want {
			t.Errorf("%s(%q) = %x, want %s", name, v.Msg, got, want)
		}
	}
}

func TestMechHMACKAT(t *testing.T) {
	var v struct {
		Cases []struct {
			Source, Hash, Key, Data, Mac string
			MacLen                       int `json:"mac_len"`
		}
	}
	loadJSON(t, "hmac.json", &v)
	if len(v.Cases) != 34 {
		t.Fatalf("%d HMAC vectors", len(v.Cases))
	}
	for _, c := range v.Cases {
		key := secretKey(ck.CKK_GENERIC_SECRET, unhex(t, c.Key))
		data, mac := unhex(t, c.Data), unhex(t, c.Mac)
		hm := hashByName[c.Hash]
		var m Mech
		var r *Mechanism
		if c.MacLen > 0 {
			r, m = row(t, hm.hmacGeneral), Mech{Type: hm.hmacGeneral, Param: &MacLenParams{Len: uint64(c.MacLen)}}
		} else {
			r, m = row(t, hm.hmac), Mech{Type: hm.hmac}
		}
		got, err := r.Sign(key, m, data)
		noErr(t, err)
		if !bytes.Equal(got, mac) {
			t.Errorf("%s %s: got %x, want %x", c.Source, c.Hash, got, mac)
			continue
		}
		noErr(t, r.Verify(key, m, data, mac))
		wantRV(t, r.Verify(key, m, data, flip(mac, 0)), ck.CKR_SIGNATURE_INVALID)
		wantRV(t, r.Verify(key, m, data, mac[:len(mac)-1]), ck.CKR_SIGNATURE_LEN_RANGE)
	}
	// The hash-specific HMAC key types are accepted too.
	sig, err := row(t, ck.CKM_SHA256_HMAC).Sign(secretKey(ck.CKK_SHA256_HMAC, []byte("Jefe")), Mech{Type: ck.CKM_SHA256_HMAC}, []byte("what do ya want for nothing?"))
	noErr(t, err)
	if hex.EncodeToString(sig) != "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" {
		t.Error("CKK_SHA256_HMAC key gives a different MAC")
	}
}

func TestMechAESKAT(t *testing.T) {
	var v struct {
		SP  map[string]string `json:"sp800_38a"`
		GCM []struct{ Name, Key, IV, Pt, Aad, Ct, Tag string }
	}
	loadJSON(t, "aes.json", &v)
	str := func(k string) []byte { return unhex(t, v.SP[k]) }
	key := secretKey(ck.CKK_AES, str("key"))
	pt := str("plaintext")

	check := func(name string, m Mech, want []byte) {
		t.Helper()
		r := row(t, m.Type)
		got, err := r.Encrypt(key, m, pt)
		noErr(t, err)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: got %x, want %x", name, got, want)
		}
		back, err := r.Decrypt(key, m, want)
		noErr(t, err)
		if !bytes.Equal(back, pt) {
			t.Errorf("%s: decrypt differs", name)
		}
	}
	check("F.1.1 ECB-AES128", Mech{Type: ck.CKM_AES_ECB}, str("ecb"))
	check("F.2.1 CBC-AES128", Mech{Type: ck.CKM_AES_CBC, Param: &IVParams{IV: str("cbc_iv")}}, str("cbc"))
	ctr := &CTRParams{CounterBits: 128}
	copy(ctr.CB[:], str("ctr_iv"))
	check("F.5.1 CTR-AES128", Mech{Type: ck.CKM_AES_CTR, Param: ctr}, str("ctr"))
	ctr16 := *ctr
	ctr16.CounterBits = 16 // 0xfeff + 4 blocks stays below 2^16
	check("F.5.1 CTR-AES128, 16-bit counter", Mech{Type: ck.CKM_AES_CTR, Param: &ctr16}, str("ctr"))

	// CBC_PAD: the SP 800-38A ciphertext followed by the encryption of a
	// whole block of padding.
	pad := Mech{Type: ck.CKM_AES_CBC_PAD, Param: &IVParams{IV: str("cbc_iv")}}
	got, err := row(t, ck.CKM_AES_CBC_PAD).Encrypt(key, pad, pt)
	noErr(t, err)
	if len(got) != 80 || !bytes.Equal(got[:64], str("cbc")) {
		t.Errorf("CBC_PAD: got %x", got)
	}

	if len(v.GCM) != 6 {
		t.Fatalf("%d GCM vectors", len(v.GCM))
	}
	gcm := row(t, ck.CKM_AES_GCM)
	for _, c := range v.GCM {
		k := secretKey(ck.CKK_AES, unhex(t, c.Key))
		m := Mech{Type: ck.CKM_AES_GCM, Param: &GCMParams{IV: unhex(t, c.IV), AAD: unhex(t, c.Aad), TagBits: 128}}
		want := append(unhex(t, c.Ct), unhex(t, c.Tag)...)
		got, err := gcm.Encrypt(k, m, unhex(t, c.Pt))
		noErr(t, err)
		if !bytes.Equal(got, want) {
			t.Errorf("GCM %s: got %x, want %x", c.Name, got, want)
		}
		back, err := gcm.Decrypt(k, m, want)
		noErr(t, err)
		if !bytes.Equal(back, unhex(t, c.Pt)) {
			t.Errorf("GCM %s: decrypt differs", c.Name)
		}
		wantRV(t, errOf(gcm.Decrypt(k, m, flip(want, len(want)-1))), ck.CKR_ENCRYPTED_DATA_INVALID)
	}
	// Test case 4 with a 96-bit tag: the tag is the first 12 bytes.
	c := v.GCM[3]
	m := Mech{Type: ck.CKM_AES_GCM, Param: &GCMParams{IV: unhex(t, c.IV), AAD: unhex(t, c.Aad), TagBits: 96}}
	got, err = gcm.Encrypt(secretKey(ck.CKK_AES, unhex(t, c.Key)), m, unhex(t, c.Pt))
	noErr(t, err)
	if want := append(unhex(t, c.Ct), unhex(t, c.Tag)[:12]...); !bytes.Equal(got, want) {
		t.Errorf("GCM 96-bit tag: got %x, want %x", got, want)
	}
}

func errOf(_ []byte, err error) error { return err }

func TestMechEd25519KAT(t *testing.T) {
	var v struct {
		Cases []struct{ Name, Variant, Context, Secret, Public, Msg, Sig string }
	}
	loadJSON(t, "ed25519.json", &v)
	r := row(t, ck.CKM_EDDSA)
	for _, c := range v.Cases {
		priv, err := PrivateKeyFromAttrs(ck.CKK_EC_EDWARDS, object.Attrs{
			ck.CKA_EC_PARAMS: ed25519Curve.Params,
			ck.CKA_VALUE:     unhex(t, c.Secret),
		})
		noErr(t, err)
		if pub := priv.Public().(ed25519.PublicKey); hex.EncodeToString(pub) != c.Public {
			t.Errorf("%s: public key %x", c.Name, pub)
		}
		m := Mech{Type: ck.CKM_EDDSA}
		switch c.Variant {
		case "ctx":
			m.Param = &EdDSAParams{Context: unhex(t, c.Context)}
		case "ph":
			m.Param = &EdDSAParams{PHFlag: true}
		}
		msg := unhex(t, c.Msg)
		sig, err := r.Sign(privKey(priv), m, msg)
		noErr(t, err)
		if hex.EncodeToString(sig) != c.Sig {
			t.Errorf("%s: got %x, want %s", c.Name, sig, c.Sig)
		}
		pub := pubKey(ed25519.PublicKey(unhex(t, c.Public)))
		noErr(t, r.Verify(pub, m, msg, unhex(t, c.Sig)))
		wantRV(t, r.Verify(pub, m, append(msg, 0), unhex(t, c.Sig)), ck.CKR_SIGNATURE_INVALID)
		// The same signature under another variant does not verify.
		other := Mech{Type: ck.CKM_EDDSA, Param: &EdDSAParams{Context: []byte("bar")}}
		wantRV(t, r.Verify(pub, other, msg, unhex(t, c.Sig)), ck.CKR_SIGNATURE_INVALID)
	}
}

func TestMechECDSAKAT(t *testing.T) {
	var v struct{ Curve, X, Ux, Uy, Msg, R, S string }
	loadJSON(t, "ecdsa_rfc6979.json", &v)
	pt := append(append([]byte{4}, unhex(t, v.Ux)...), unhex(t, v.Uy)...)
	pub, err := PublicKeyFromAttrs(ck.CKK_EC, object.Attrs{ck.CKA_EC_PARAMS: curves[0].Params, ck.CKA_EC_POINT: pt})
	noErr(t, err)
	sig := append(unhex(t, v.R), unhex(t, v.S)...)
	k := pubKey(pub)
	noErr(t, row(t, ck.CKM_ECDSA_SHA256).Verify(k, Mech{Type: ck.CKM_ECDSA_SHA256}, []byte(v.Msg), sig))
	h := sum(crypto.SHA256, []byte(v.Msg))
	noErr(t, row(t, ck.CKM_ECDSA).Verify(k, Mech{Type: ck.CKM_ECDSA}, h, sig))
	wantRV(t, row(t, ck.CKM_ECDSA_SHA384).Verify(k, Mech{Type: ck.CKM_ECDSA_SHA384}, []byte(v.Msg), sig), ck.CKR_SIGNATURE_INVALID)
	// The private key of the RFC signs verifiably with our row.
	priv, err := PrivateKeyFromAttrs(ck.CKK_EC, object.Attrs{ck.CKA_EC_PARAMS: curves[0].Params, ck.CKA_VALUE: unhex(t, v.X)})
	noErr(t, err)
	if !priv.Public().(*ecdsa.PublicKey).Equal(pub) {
		t.Fatal("the RFC 6979 private key does not match its public key")
	}
	mine, err := row(t, ck.CKM_ECDSA_SHA256).Sign(privKey(priv), Mech{Type: ck.CKM_ECDSA_SHA256}, []byte(v.Msg))
	noErr(t, err)
	if len(mine) != 64 || !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), h, rsToDER(t, mine)) {
		t.Fatal("our P-256 signature does not verify with crypto/ecdsa")
	}

	// An OpenSSL-made P-384 signature.
	fixtures(t)
	var o map[string]string
	loadJSON(t, "openssl.json", &o)
	rs := derToRS(t, unhex(t, o["ecdsa_p384_sha384_der"]), 48)
	r := row(t, ck.CKM_ECDSA_SHA384)
	noErr(t, r.Verify(pubKey(&fixP384.PublicKey), Mech{Type: ck.CKM_ECDSA_SHA384}, []byte(o["message"]), rs))
	noErr(t, r.Verify(privKey(fixP384), Mech{Type: ck.CKM_ECDSA_SHA384}, []byte(o["message"]), rs))
}

func TestMechRSAKAT(t *testing.T) {
	fixtures(t)
	var o map[string]string
	loadJSON(t, "openssl.json", &o)
	msg := []byte(o["message"])
	priv, pub := privKey(fixRSA), pubKey(&fixRSA.PublicKey)

	// PKCS #1 v1.5 signatures are deterministic: ours must be OpenSSL's.
	want := unhex(t, o["rsa_sha256_pkcs1"])
	r := row(t, ck.CKM_SHA256_RSA_PKCS)
	sig, err := r.Sign(priv, Mech{Type: r.Type}, msg)
	noErr(t, err)
	if !bytes.Equal(sig, want) {
		t.Fatal("CKM_SHA256_RSA_PKCS differs from OpenSSL's signature")
	}
	noErr(t, r.Verify(pub, Mech{Type: r.Type}, msg, want))
	// CKM_RSA_PKCS over the DigestInfo gives the same signature.
	digestInfo := append(unhex(t, "3031300d060960864801650304020105000420"), sum(crypto.SHA256, msg)...)
	raw := row(t, ck.CKM_RSA_PKCS)
	sig, err = raw.Sign(priv, Mech{Type: raw.Type}, digestInfo)
	noErr(t, err)
	if !bytes.Equal(sig, want) {
		t.Fatal("CKM_RSA_PKCS over the DigestInfo differs from OpenSSL's signature")
	}
	noErr(t, raw.Verify(pub, Mech{Type: raw.Type}, digestInfo, want))

	// OpenSSL's PSS signature, salt 32.
	pss := row(t, ck.CKM_SHA256_RSA_PKCS_PSS)
	noErr(t, pss.Verify(pub, pssMech(pss.Type, crypto.SHA256, 32), msg, unhex(t, o["rsa_sha256_pss_salt32"])))
	wantRV(t, pss.Verify(pub, pssMech(pss.Type, crypto.SHA256, 20), msg, unhex(t, o["rsa_sha256_pss_salt32"])), ck.CKR_SIGNATURE_INVALID)

	// OpenSSL's ciphertexts.
	plain := []byte(o["plaintext"])
	oaep := row(t, ck.CKM_RSA_PKCS_OAEP)
	for _, c := range []struct {
		name string
		p    *OAEPParams
	}{
		{"oaep_sha256_label_6f70656e68736d", &OAEPParams{Hash: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256, Source: ck.CKZ_DATA_SPECIFIED, Label: []byte("openhsm")}},
		{"oaep_sha384_mgf1sha1_nolabel", &OAEPParams{Hash: ck.CKM_SHA384, MGF: ck.CKG_MGF1_SHA1}},
	} {
		got, err := oaep.Decrypt(priv, Mech{Type: oaep.Type, Param: c.p}, unhex(t, o[c.name]))
		noErr(t, err)
		if !bytes.Equal(got, plain) {
			t.Errorf("%s: got %q", c.name, got)
		}
	}
	got, err := raw.Decrypt(priv, Mech{Type: raw.Type}, unhex(t, o["pkcs1v15_encrypted"]))
	noErr(t, err)
	if !bytes.Equal(got, plain) {
		t.Errorf("PKCS #1 v1.5: got %q", got)
	}
}

// ---------------------------------------------------------------------------
// Cross-checks with OpenSSL.

func TestMechOpenSSLSignatures(t *testing.T) {
	fixtures(t)
	dir := t.TempDir()
	msg := []byte("cross-checked with openssl")
	msgFile := writeFile(t, dir, "msg", msg)
	verify := func(pub crypto.PublicKey, sig []byte, args ...string) {
		t.Helper()
		pubFile := writePubPEM(t, dir, pub)
		sigFile := writeFile(t, dir, "sig", sig)
		out := openssl(t, nil, append(append([]string{"dgst"}, args...), "-verify", pubFile, "-signature", sigFile, msgFile)...)
		if !strings.Contains(string(out), "Verified OK") {
			t.Fatalf("openssl: %s", out)
		}
	}
	priv := privKey(fixRSA)
	sig, err := row(t, ck.CKM_SHA256_RSA_PKCS).Sign(priv, Mech{Type: ck.CKM_SHA256_RSA_PKCS}, msg)
	noErr(t, err)
	verify(&fixRSA.PublicKey, sig, "-sha256")

	sig, err = row(t, ck.CKM_SHA512_RSA_PKCS).Sign(priv, Mech{Type: ck.CKM_SHA512_RSA_PKCS}, msg)
	noErr(t, err)
	verify(&fixRSA.PublicKey, sig, "-sha512")

	sig, err = row(t, ck.CKM_SHA384_RSA_PKCS_PSS).Sign(priv, pssMech(ck.CKM_SHA384_RSA_PKCS_PSS, crypto.SHA384, 48), msg)
	noErr(t, err)
	verify(&fixRSA.PublicKey, sig, "-sha384", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:48")

	sig, err = row(t, ck.CKM_SHA3_256_RSA_PKCS_PSS).Sign(priv, pssMech(ck.CKM_SHA3_256_RSA_PKCS_PSS, crypto.SHA3_256, 32), msg)
	noErr(t, err)
	verify(&fixRSA.PublicKey, sig, "-sha3-256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32")

	// Raw CKM_RSA_PKCS_PSS over a SHA-256 hash, salt 20.
	sig, err = row(t, ck.CKM_RSA_PKCS_PSS).Sign(priv, pssMech(ck.CKM_RSA_PKCS_PSS, crypto.SHA256, 20), sum(crypto.SHA256, msg))
	noErr(t, err)
	verify(&fixRSA.PublicKey, sig, "-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:20")

	for _, c := range []struct {
		curve elliptic.Curve
		mech  uint64
		dgst  string
	}{
		{elliptic.P256(), ck.CKM_ECDSA_SHA256, "-sha256"},
		{elliptic.P384(), ck.CKM_ECDSA_SHA3_384, "-sha3-384"},
		{elliptic.P521(), ck.CKM_ECDSA_SHA512, "-sha512"},
	} {
		k, err := ecdsa.GenerateKey(c.curve, rand.Reader)
		noErr(t, err)
		sig, err := row(t, c.mech).Sign(privKey(k), Mech{Type: c.mech}, msg)
		noErr(t, err)
		if len(sig) != 2*curveOf(c.curve).ByteLen() {
			t.Fatalf("%s: %d-byte signature", ck.MechName(c.mech), len(sig))
		}
		verify(&k.PublicKey, rsToDER(t, sig), c.dgst)
	}

	// Ed25519: pkeyutl, the message given raw.
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	sig, err = row(t, ck.CKM_EDDSA).Sign(privKey(ed), Mech{Type: ck.CKM_EDDSA}, msg)
	noErr(t, err)
	pubFile := writePubPEM(t, dir, ed.Public())
	sigFile := writeFile(t, dir, "sig", sig)
	out := openssl(t, nil, "pkeyutl", "-verify", "-pubin", "-inkey", pubFile, "-rawin", "-in", msgFile, "-sigfile", sigFile)
	if !strings.Contains(string(out), "Signature Verified Successfully") {
		t.Fatalf("openssl: %s", out)
	}

	// And the other way: an OpenSSL Ed25519 signature verifies with our row.
	privFile := writePrivPEM(t, dir, ed)
	sslSig := openssl(t, nil, "pkeyutl", "-sign", "-inkey", privFile, "-rawin", "-in", msgFile)
	noErr(t, row(t, ck.CKM_EDDSA).Verify(pubKey(ed.Public()), Mech{Type: ck.CKM_EDDSA}, msg, sslSig))
}

func TestMechOpenSSLRSAEncryption(t *testing.T) {
	fixtures(t)
	dir := t.TempDir()
	privFile := writePrivPEM(t, dir, fixRSA)
	priv, pub := privKey(fixRSA), pubKey(&fixRSA.PublicKey)
	plain := []byte("a 32-byte AES key goes here.....")
	oaep := row(t, ck.CKM_RSA_PKCS_OAEP)

	// OpenSSL encrypts with a label, we decrypt.
	ct := openssl(t, plain, "pkeyutl", "-encrypt", "-inkey", privFile, "-pkeyopt", "rsa_padding_mode:oaep",
		"-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_oaep_label:0102030405")
	m := Mech{Type: oaep.Type, Param: &OAEPParams{Hash: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256, Source: ck.CKZ_DATA_SPECIFIED, Label: []byte{1, 2, 3, 4, 5}}}
	got, err := oaep.Decrypt(priv, m, ct)
	noErr(t, err)
	if !bytes.Equal(got, plain) {
		t.Fatalf("got %q", got)
	}
	m.Param.(*OAEPParams).Label = []byte{1, 2, 3, 4}
	wantRV(t, errOf(oaep.Decrypt(priv, m, ct)), ck.CKR_ENCRYPTED_DATA_INVALID)

	// We encrypt with SHA-512 and MGF1-SHA-1 and a label, OpenSSL decrypts.
	m = Mech{Type: oaep.Type, Param: &OAEPParams{Hash: ck.CKM_SHA512, MGF: ck.CKG_MGF1_SHA1, Source: ck.CKZ_DATA_SPECIFIED, Label: []byte("lbl")}}
	ct, err = oaep.Encrypt(pub, m, plain)
	noErr(t, err)
	ctFile := writeFile(t, dir, "ct", ct)
	got = openssl(t, nil, "pkeyutl", "-decrypt", "-inkey", privFile, "-in", ctFile, "-pkeyopt", "rsa_padding_mode:oaep",
		"-pkeyopt", "rsa_oaep_md:sha512", "-pkeyopt", "rsa_mgf1_md:sha1", "-pkeyopt", "rsa_oaep_label:"+hex.EncodeToString([]byte("lbl")))
	if !bytes.Equal(got, plain) {
		t.Fatalf("openssl got %q", got)
	}

	// PKCS #1 v1.5 both ways.
	raw := row(t, ck.CKM_RSA_PKCS)
	ct, err = raw.Encrypt(pub, Mech{Type: raw.Type}, plain)
	noErr(t, err)
	ctFile = writeFile(t, dir, "ct", ct)
	if got := openssl(t, nil, "pkeyutl", "-decrypt", "-inkey", privFile, "-in", ctFile, "-pkeyopt", "rsa_padding_mode:pkcs1"); !bytes.Equal(got, plain) {
		t.Fatalf("openssl got %q", got)
	}

	// Raw RSA: OpenSSL encrypts a k-byte block without padding, we
	// decrypt it; we encrypt, OpenSSL decrypts.
	block := make([]byte, 256)
	rand.Read(block[1:])
	x509row := row(t, ck.CKM_RSA_X_509)
	ct = openssl(t, block, "pkeyutl", "-encrypt", "-inkey", privFile, "-pkeyopt", "rsa_padding_mode:none")
	got, err = x509row.Decrypt(priv, Mech{Type: x509row.Type}, ct)
	noErr(t, err)
	if !bytes.Equal(got, block) {
		t.Fatal("raw RSA decrypt differs from OpenSSL's input")
	}
	ct, err = x509row.Encrypt(pub, Mech{Type: x509row.Type}, block)
	noErr(t, err)
	ctFile = writeFile(t, dir, "ct", ct)
	if got := openssl(t, nil, "pkeyutl", "-decrypt", "-inkey", privFile, "-in", ctFile, "-pkeyopt", "rsa_padding_mode:none"); !bytes.Equal(got, block) {
		t.Fatal("OpenSSL's raw RSA decrypt differs")
	}
	// Raw RSA signing of a short input is m^d, left-padded: it equals
	// the decryption of the same value, and verifies.
	short := []byte{1, 2, 3}
	sig, err := x509row.Sign(priv, Mech{Type: x509row.Type}, short)
	noErr(t, err)
	if len(sig) != 256 {
		t.Fatalf("raw signature is %d bytes", len(sig))
	}
	noErr(t, x509row.Verify(pub, Mech{Type: x509row.Type}, short, sig))
	noErr(t, x509row.Verify(pub, Mech{Type: x509row.Type}, append(make([]byte, 253), short...), sig))
	sigFile := writeFile(t, dir, "sig", sig)
	rec := openssl(t, nil, "pkeyutl", "-verifyrecover", "-inkey", privFile, "-in", sigFile, "-pkeyopt", "rsa_padding_mode:none")
	if !bytes.Equal(bytes.TrimLeft(rec, "\x00"), short) {
		t.Fatalf("openssl recovers %x", rec)
	}
}

func TestMechOpenSSLAES(t *testing.T) {
	for _, n := range []int{16, 24, 32} {
		key := make([]byte, n)
		rand.Read(key)
		iv := make([]byte, 16)
		rand.Read(iv)
		k := secretKey(ck.CKK_AES, key)
		bits := map[int]string{16: "128", 24: "192", 32: "256"}[n]
		kh, ivh := hex.EncodeToString(key), hex.EncodeToString(iv)
		for _, c := range []struct {
			mech   uint64
			cipher string
			pad    bool
			in     int
		}{
			{ck.CKM_AES_ECB, "ecb", false, 64},
			{ck.CKM_AES_CBC, "cbc", false, 48},
			{ck.CKM_AES_CBC_PAD, "cbc", true, 45},
			{ck.CKM_AES_CBC_PAD, "cbc", true, 32},
			{ck.CKM_AES_CTR, "ctr", false, 77},
		} {
			in := make([]byte, c.in)
			rand.Read(in)
			m := Mech{Type: c.mech}
			switch c.mech {
			case ck.CKM_AES_CBC, ck.CKM_AES_CBC_PAD:
				m.Param = &IVParams{IV: iv}
			case ck.CKM_AES_CTR:
				p := &CTRParams{CounterBits: 128}
				copy(p.CB[:], iv)
				m.Param = p
			}
			args := []string{"enc", "-aes-" + bits + "-" + c.cipher, "-K", kh}
			if c.mech != ck.CKM_AES_ECB {
				args = append(args, "-iv", ivh)
			}
			if !c.pad {
				args = append(args, "-nopad")
			}
			want := openssl(t, in, args...)
			got, err := row(t, c.mech).Encrypt(k, m, in)
			noErr(t, err)
			if !bytes.Equal(got, want) {
				t.Errorf("%s AES-%s: got %x, openssl %x", ck.MechName(c.mech), bits, got, want)
			}
			back := openssl(t, got, append(args, "-d")...)
			if !bytes.Equal(back, in) {
				t.Errorf("%s AES-%s: openssl decrypts to something else", ck.MechName(c.mech), bits)
			}
		}
	}
}

// ---------------------------------------------------------------------------
// Error paths.

func TestMechErrors(t *testing.T) {
	fixtures(t)
	rsaPriv, rsaPub := privKey(fixRSA), pubKey(&fixRSA.PublicKey)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ecPriv := privKey(p256)
	_, edk, _ := ed25519.GenerateKey(rand.Reader)
	edPriv := privKey(edk)
	aesBytes := []byte("0123456789abcdef")
	aes := secretKey(ck.CKK_AES, aesBytes)
	gen := secretKey(ck.CKK_GENERIC_SECRET, []byte("generic secret!!"))
	iv16 := &IVParams{IV: make([]byte, 16)}
	gcm := func(iv, tag int) Mech {
		return Mech{Type: ck.CKM_AES_GCM, Param: &GCMParams{IV: make([]byte, iv), TagBits: uint64(tag)}}
	}
	oaep := func(h, mgf, src uint64, label []byte) Mech {
		return Mech{Type: ck.CKM_RSA_PKCS_OAEP, Param: &OAEPParams{Hash: h, MGF: mgf, Source: src, Label: label}}
	}
	ecdh := func(kdf uint64, shared, pub []byte) Mech {
		return Mech{Type: ck.CKM_ECDH1_DERIVE, Param: &ECDHParams{KDF: kdf, SharedData: shared, PublicData: pub}}
	}
	p256pt, _ := p256.PublicKey.Bytes()
	p384pt, _ := p384.PublicKey.Bytes()
	offCurve := append([]byte(nil), p256pt...)
	offCurve[64] ^= 1
	ctrAt := func(bits uint64, start byte) Mech {
		p := &CTRParams{CounterBits: bits}
		p.CB[15] = start
		return Mech{Type: ck.CKM_AES_CTR, Param: p}
	}

	// Valid ciphertexts and signatures to tamper with.
	enc := func(typ uint64, k *Key, m Mech, in []byte) []byte {
		out, err := row(t, typ).Encrypt(k, m, in)
		noErr(t, err)
		return out
	}
	sign := func(typ uint64, k *Key, m Mech, in []byte) []byte {
		out, err := row(t, typ).Sign(k, m, in)
		noErr(t, err)
		return out
	}
	msg := []byte("pl41ntext-m3ss4ge")
	gcmOK := Mech{Type: ck.CKM_AES_GCM, Param: &GCMParams{IV: make([]byte, 12), AAD: []byte("aad"), TagBits: 128}}
	gcmCT := enc(ck.CKM_AES_GCM, aes, gcmOK, msg)
	gcmOtherAAD := Mech{Type: ck.CKM_AES_GCM, Param: &GCMParams{IV: make([]byte, 12), AAD: []byte("aad!"), TagBits: 128}}
	// With a zero IV, CBC decryption of one block is ECB decryption: this
	// block decrypts to ...00 02, which is not PKCS #7 padding.
	padCT := enc(ck.CKM_AES_ECB, aes, Mech{Type: ck.CKM_AES_ECB}, append(make([]byte, 15), 2))
	oaepOK := oaep(ck.CKM_SHA256, ck.CKG_MGF1_SHA256, ck.CKZ_DATA_SPECIFIED, []byte("L"))
	oaepCT := enc(ck.CKM_RSA_PKCS_OAEP, rsaPub, oaepOK, msg)
	pssOK := pssMech(ck.CKM_SHA256_RSA_PKCS_PSS, crypto.SHA256, 32)
	rsaSig := sign(ck.CKM_SHA256_RSA_PKCS, rsaPriv, Mech{Type: ck.CKM_SHA256_RSA_PKCS}, msg)
	pssSig := sign(ck.CKM_SHA256_RSA_PKCS_PSS, rsaPriv, pssOK, msg)
	ecSig := sign(ck.CKM_ECDSA_SHA256, ecPriv, Mech{Type: ck.CKM_ECDSA_SHA256}, msg)
	edSig := sign(ck.CKM_EDDSA, edPriv, Mech{Type: ck.CKM_EDDSA}, msg)
	hmacSig := sign(ck.CKM_SHA256_HMAC, gen, Mech{Type: ck.CKM_SHA256_HMAC}, msg)
	cmacSig := sign(ck.CKM_AES_CMAC, aes, Mech{Type: ck.CKM_AES_CMAC}, msg)
	x509Sig := sign(ck.CKM_RSA_X_509, rsaPriv, Mech{Type: ck.CKM_RSA_X_509}, msg)
	kwCT := enc(ck.CKM_AES_KEY_WRAP, aes, Mech{Type: ck.CKM_AES_KEY_WRAP}, aesBytes)
	kwpCT := enc(ck.CKM_AES_KEY_WRAP_KWP, aes, Mech{Type: ck.CKM_AES_KEY_WRAP_KWP}, msg)

	type op func() error
	signOp := func(typ uint64, k *Key, m Mech, in []byte) op {
		return func() error { _, err := row(t, typ).Sign(k, m, in); return err }
	}
	verifyOp := func(typ uint64, k *Key, m Mech, in, sig []byte) op {
		return func() error { return row(t, typ).Verify(k, m, in, sig) }
	}
	encOp := func(typ uint64, k *Key, m Mech, in []byte) op {
		return func() error { _, err := row(t, typ).Encrypt(k, m, in); return err }
	}
	decOp := func(typ uint64, k *Key, m Mech, in []byte) op {
		return func() error { _, err := row(t, typ).Decrypt(k, m, in); return err }
	}
	deriveOp := func(k *Key, m Mech) op {
		return func() error { _, err := row(t, ck.CKM_ECDH1_DERIVE).Derive(k, m); return err }
	}
	E := Mech{Type: ck.CKM_ECDSA}

	cases := []struct {
		name string
		op   op
		rv   uint64
	}{
		// Wrong key types.
		{"AES-CBC with a generic secret", encOp(ck.CKM_AES_CBC, gen, Mech{Type: ck.CKM_AES_CBC, Param: iv16}, aesBytes), ck.CKR_KEY_TYPE_INCONSISTENT},
		{"AES-GCM with an RSA key", encOp(ck.CKM_AES_GCM, rsaPriv, gcmOK, msg), ck.CKR_KEY_TYPE_INCONSISTENT},
		{"RSA sign with an EC key", signOp(ck.CKM_SHA256_RSA_PKCS, ecPriv, Mech{Type: ck.CKM_SHA256_RSA_PKCS}, msg), ck.CKR_KEY_TYPE_INCONSISTENT},
		{"RSA sign with a public key", signOp(ck.CKM_SHA256_RSA_PKCS, rsaPub, Mech{Type: ck.CKM_SHA256_RSA_PKCS}, msg), ck.CKR_KEY_TYPE_INCONSISTENT},
		{"RSA decrypt with a public key", decOp(ck.CKM_RSA_PKCS_OAEP, rsaPub, oaepOK, oaepCT), ck.CKR_KEY_TYPE_INCONSISTENT},
		{"RSA verify with an AES key", verifyOp(ck.CKM_SHA256_RSA_PKCS, aes, Mech{Type: ck.CKM_SHA256_RSA_PKCS}, msg, rsaSig), ck.CKR_KEY_TYPE_INCONSISTENT},
		{"ECDSA with an RSA key", signOp(ck.CKM_ECDSA, rsaPriv, E, msg), ck.CKR_KEY_TYPE_INCONSISTENT},
		{"ECDSA with an Ed25519 key", signOp(ck.CKM_ECDSA, edPriv, E, msg), ck.CKR_KEY_TYPE_INCONSISTENT},
		{"EdDSA with an EC key", signOp(ck.CKM_EDDSA, ecPriv, Mech{Type: ck.CKM_EDDSA}, msg), ck.CKR_KEY_TYPE_INCONSISTENT},
		{"HMAC with an AES key", signOp(ck.CKM_SHA256_HMAC, aes, Mech{Type: ck.CKM_SHA256_HMAC}, msg), ck.CKR_KEY_TYPE_INCONSISTENT},
		{"HMAC with an RSA key", signOp(ck.CKM_SHA256_HMAC, rsaPriv, Mech{Type: ck.CKM_SHA256_HMAC}, msg), ck.CKR_KEY_TYPE_INCONSISTENT},
		{"CMAC with a generic secret", signOp(ck.CKM_AES_CMAC, gen, Mech{Type: ck.CKM_AES_CMAC}, msg), ck.CKR_KEY_TYPE_INCONSISTENT},
		{"ECDH with an Ed25519 key", deriveOp(edPriv, ecdh(ck.CKD_NULL, nil, p256pt)), ck.CKR_KEY_TYPE_INCONSISTENT},

		// Key sizes.
		{"AES key of 20 bytes", encOp(ck.CKM_AES_ECB, secretKey(ck.CKK_AES, make([]byte, 20)), Mech{Type: ck.CKM_AES_ECB}, aesBytes), ck.CKR_KEY_SIZE_RANGE},
		{"OAEP SHA-512 needs 130 bytes of room", encOp(ck.CKM_RSA_PKCS_OAEP, rsaPub, oaep(ck.CKM_SHA512, ck.CKG_MGF1_SHA512, 0, nil), make([]byte, 127)), ck.CKR_DATA_LEN_RANGE},

		// Parameters.
		{"CBC with an 8-byte IV", encOp(ck.CKM_AES_CBC, aes, Mech{Type: ck.CKM_AES_CBC, Param: &IVParams{IV: make([]byte, 8)}}, aesBytes), ck.CKR_MECHANISM_PARAM_INVALID},
		{"CBC without IV", decOp(ck.CKM_AES_CBC_PAD, aes, Mech{Type: ck.CKM_AES_CBC_PAD}, aesBytes), ck.CKR_MECHANISM_PARAM_INVALID},
		{"CBC with GCM params", encOp(ck.CKM_AES_CBC, aes, Mech{Type: ck.CKM_AES_CBC, Param: &GCMParams{}}, aesBytes), ck.CKR_MECHANISM_PARAM_INVALID},
		{"GCM 64-bit tag", encOp(ck.CKM_AES_GCM, aes, gcm(12, 64), msg), ck.CKR_MECHANISM_PARAM_INVALID},
		{"GCM 100-bit tag", encOp(ck.CKM_AES_GCM, aes, gcm(12, 100), msg), ck.CKR_MECHANISM_PARAM_INVALID},
		{"GCM 136-bit tag", encOp(ck.CKM_AES_GCM, aes, gcm(12, 136), msg), ck.CKR_MECHANISM_PARAM_INVALID},
		{"GCM empty IV", encOp(ck.CKM_AES_GCM, aes, gcm(0, 128), msg), ck.CKR_MECHANISM_PARAM_INVALID},
		{"GCM 257-byte IV", encOp(ck.CKM_AES_GCM, aes, gcm(257, 128), msg), ck.CKR_MECHANISM_PARAM_INVALID},
		{"GCM 16-byte IV with a 96-bit tag", encOp(ck.CKM_AES_GCM, aes, gcm(16, 96), msg), ck.CKR_MECHANISM_PARAM_INVALID},
		{"CTR 0-bit counter", encOp(ck.CKM_AES_CTR, aes, ctrAt(0, 0), msg), ck.CKR_MECHANISM_PARAM_INVALID},
		{"CTR 129-bit counter", encOp(ck.CKM_AES_CTR, aes, ctrAt(129, 0), msg), ck.CKR_MECHANISM_PARAM_INVALID},
		{"PSS hash not the mechanism's", signOp(ck.CKM_SHA256_RSA_PKCS_PSS, rsaPriv, pssMech(ck.CKM_SHA256_RSA_PKCS_PSS, crypto.SHA384, 32), msg), ck.CKR_MECHANISM_PARAM_INVALID},
		{"PSS MGF hash differs", signOp(ck.CKM_SHA256_RSA_PKCS_PSS, rsaPriv, Mech{Type: ck.CKM_SHA256_RSA_PKCS_PSS, Param: &PSSParams{Hash: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA1, SaltLen: 32}}, msg), ck.CKR_MECHANISM_PARAM_INVALID},
		{"PSS unknown MGF", verifyOp(ck.CKM_SHA256_RSA_PKCS_PSS, rsaPub, Mech{Type: ck.CKM_SHA256_RSA_PKCS_PSS, Param: &PSSParams{Hash: ck.CKM_SHA256, MGF: 99, SaltLen: 32}}, msg, pssSig), ck.CKR_MECHANISM_PARAM_INVALID},
		{"PSS salt 0", signOp(ck.CKM_SHA256_RSA_PKCS_PSS, rsaPriv, pssMech(ck.CKM_SHA256_RSA_PKCS_PSS, crypto.SHA256, 0), msg), ck.CKR_MECHANISM_PARAM_INVALID},
		{"PSS salt too long", signOp(ck.CKM_SHA256_RSA_PKCS_PSS, rsaPriv, pssMech(ck.CKM_SHA256_RSA_PKCS_PSS, crypto.SHA256, 256-32-1), msg), ck.CKR_MECHANISM_PARAM_INVALID},
		{"PSS raw with MD5", signOp(ck.CKM_RSA_PKCS_PSS, rsaPriv, Mech{Type: ck.CKM_RSA_PKCS_PSS, Param: &PSSParams{Hash: ck.CKM_MD5, MGF: ck.CKG_MGF1_SHA1, SaltLen: 16}}, make([]byte, 16)), ck.CKR_MECHANISM_PARAM_INVALID},
		{"PSS without params", signOp(ck.CKM_SHA256_RSA_PKCS_PSS, rsaPriv, Mech{Type: ck.CKM_SHA256_RSA_PKCS_PSS}, msg), ck.CKR_MECHANISM_PARAM_INVALID},
		{"OAEP with MD5", encOp(ck.CKM_RSA_PKCS_OAEP, rsaPub, oaep(ck.CKM_MD5, ck.CKG_MGF1_SHA1, 0, nil), msg), ck.CKR_MECHANISM_PARAM_INVALID},
		{"OAEP with unknown MGF", decOp(ck.CKM_RSA_PKCS_OAEP, rsaPriv, oaep(ck.CKM_SHA256, 77, 0, nil), oaepCT), ck.CKR_MECHANISM_PARAM_INVALID},
		{"OAEP label without source", encOp(ck.CKM_RSA_PKCS_OAEP, rsaPub, oaep(ck.CKM_SHA256, ck.CKG_MGF1_SHA256, 0, []byte("L")), msg), ck.CKR_MECHANISM_PARAM_INVALID},
		{"OAEP unknown source", encOp(ck.CKM_RSA_PKCS_OAEP, rsaPub, oaep(ck.CKM_SHA256, ck.CKG_MGF1_SHA256, 2, nil), msg), ck.CKR_MECHANISM_PARAM_INVALID},
		{"HMAC_GENERAL length 0", signOp(ck.CKM_SHA256_HMAC_GENERAL, gen, Mech{Type: ck.CKM_SHA256_HMAC_GENERAL, Param: &MacLenParams{Len: 0}}, msg), ck.CKR_MECHANISM_PARAM_INVALID},
		{"HMAC_GENERAL length 33", signOp(ck.CKM_SHA256_HMAC_GENERAL, gen, Mech{Type: ck.CKM_SHA256_HMAC_GENERAL, Param: &MacLenParams{Len: 33}}, msg), ck.CKR_MECHANISM_PARAM_INVALID},
		{"CMAC_GENERAL length 17", signOp(ck.CKM_AES_CMAC_GENERAL, aes, Mech{Type: ck.CKM_AES_CMAC_GENERAL, Param: &MacLenParams{Len: 17}}, msg), ck.CKR_MECHANISM_PARAM_INVALID},
		{"EdDSA 256-byte context", signOp(ck.CKM_EDDSA, edPriv, Mech{Type: ck.CKM_EDDSA, Param: &EdDSAParams{Context: make([]byte, 256)}}, msg), ck.CKR_MECHANISM_PARAM_INVALID},
		{"EdDSA with an IV", signOp(ck.CKM_EDDSA, edPriv, Mech{Type: ck.CKM_EDDSA, Param: iv16}, msg), ck.CKR_MECHANISM_PARAM_INVALID},
		{"ECDH unknown KDF", deriveOp(ecPriv, ecdh(99, nil, p256pt)), ck.CKR_MECHANISM_PARAM_INVALID},
		{"ECDH CKD_NULL with shared data", deriveOp(ecPriv, ecdh(ck.CKD_NULL, []byte("x"), p256pt)), ck.CKR_MECHANISM_PARAM_INVALID},
		{"ECDH point off the curve", deriveOp(ecPriv, ecdh(ck.CKD_NULL, nil, offCurve)), ck.CKR_MECHANISM_PARAM_INVALID},
		{"ECDH point of another curve", deriveOp(ecPriv, ecdh(ck.CKD_NULL, nil, p384pt)), ck.CKR_MECHANISM_PARAM_INVALID},
		{"ECDH compressed point", deriveOp(ecPriv, ecdh(ck.CKD_NULL, nil, elliptic.MarshalCompressed(elliptic.P256(), p256.X, p256.Y))), ck.CKR_MECHANISM_PARAM_INVALID},
		{"ECDH without params", deriveOp(ecPriv, Mech{Type: ck.CKM_ECDH1_DERIVE}), ck.CKR_MECHANISM_PARAM_INVALID},
		{"KW with a 4-byte IV", encOp(ck.CKM_AES_KEY_WRAP, aes, Mech{Type: ck.CKM_AES_KEY_WRAP, Param: &IVParams{IV: make([]byte, 4)}}, aesBytes), ck.CKR_MECHANISM_PARAM_INVALID},
		{"KWP with an 8-byte IV", encOp(ck.CKM_AES_KEY_WRAP_KWP, aes, Mech{Type: ck.CKM_AES_KEY_WRAP_KWP, Param: &IVParams{IV: make([]byte, 8)}}, aesBytes), ck.CKR_MECHANISM_PARAM_INVALID},
		{"KW with CTR params", encOp(ck.CKM_AES_KEY_WRAP, aes, Mech{Type: ck.CKM_AES_KEY_WRAP, Param: &CTRParams{}}, aesBytes), ck.CKR_MECHANISM_PARAM_INVALID},

		// Input lengths.
		{"ECB encrypt 15 bytes", encOp(ck.CKM_AES_ECB, aes, Mech{Type: ck.CKM_AES_ECB}, make([]byte, 15)), ck.CKR_DATA_LEN_RANGE},
		{"ECB decrypt 17 bytes", decOp(ck.CKM_AES_ECB, aes, Mech{Type: ck.CKM_AES_ECB}, make([]byte, 17)), ck.CKR_ENCRYPTED_DATA_LEN_RANGE},
		{"CBC encrypt 20 bytes", encOp(ck.CKM_AES_CBC, aes, Mech{Type: ck.CKM_AES_CBC, Param: iv16}, make([]byte, 20)), ck.CKR_DATA_LEN_RANGE},
		{"CBC decrypt 20 bytes", decOp(ck.CKM_AES_CBC, aes, Mech{Type: ck.CKM_AES_CBC, Param: iv16}, make([]byte, 20)), ck.CKR_ENCRYPTED_DATA_LEN_RANGE},
		{"CBC_PAD decrypt nothing", decOp(ck.CKM_AES_CBC_PAD, aes, Mech{Type: ck.CKM_AES_CBC_PAD, Param: iv16}, nil), ck.CKR_ENCRYPTED_DATA_LEN_RANGE},
		{"CBC_PAD decrypt 31 bytes", decOp(ck.CKM_AES_CBC_PAD, aes, Mech{Type: ck.CKM_AES_CBC_PAD, Param: iv16}, make([]byte, 31)), ck.CKR_ENCRYPTED_DATA_LEN_RANGE},
		{"CTR wraps an 8-bit counter", encOp(ck.CKM_AES_CTR, aes, ctrAt(8, 0xfe), make([]byte, 33)), ck.CKR_DATA_LEN_RANGE},
		{"CTR wraps a 1-bit counter", decOp(ck.CKM_AES_CTR, aes, ctrAt(1, 0), make([]byte, 33)), ck.CKR_ENCRYPTED_DATA_LEN_RANGE},
		{"GCM decrypt shorter than the tag", decOp(ck.CKM_AES_GCM, aes, gcmOK, make([]byte, 15)), ck.CKR_ENCRYPTED_DATA_LEN_RANGE},
		{"RSA_PKCS sign 246 bytes", signOp(ck.CKM_RSA_PKCS, rsaPriv, Mech{Type: ck.CKM_RSA_PKCS}, make([]byte, 246)), ck.CKR_DATA_LEN_RANGE},
		{"RSA_PKCS verify 246 bytes", verifyOp(ck.CKM_RSA_PKCS, rsaPub, Mech{Type: ck.CKM_RSA_PKCS}, make([]byte, 246), rsaSig), ck.CKR_DATA_LEN_RANGE},
		{"RSA_PKCS encrypt 246 bytes", encOp(ck.CKM_RSA_PKCS, rsaPub, Mech{Type: ck.CKM_RSA_PKCS}, make([]byte, 246)), ck.CKR_DATA_LEN_RANGE},
		{"RSA_PKCS decrypt 257 bytes", decOp(ck.CKM_RSA_PKCS, rsaPriv, Mech{Type: ck.CKM_RSA_PKCS}, make([]byte, 257)), ck.CKR_ENCRYPTED_DATA_LEN_RANGE},
		{"RSA_PKCS_PSS data not a hash", signOp(ck.CKM_RSA_PKCS_PSS, rsaPriv, pssMech(ck.CKM_RSA_PKCS_PSS, crypto.SHA256, 32), make([]byte, 31)), ck.CKR_DATA_LEN_RANGE},
		{"RSA_PKCS_PSS verify data not a hash", verifyOp(ck.CKM_RSA_PKCS_PSS, rsaPub, pssMech(ck.CKM_RSA_PKCS_PSS, crypto.SHA256, 32), make([]byte, 33), pssSig), ck.CKR_DATA_LEN_RANGE},
		{"OAEP encrypt 191 bytes", encOp(ck.CKM_RSA_PKCS_OAEP, rsaPub, oaepOK, make([]byte, 191)), ck.CKR_DATA_LEN_RANGE},
		{"OAEP decrypt 255 bytes", decOp(ck.CKM_RSA_PKCS_OAEP, rsaPriv, oaepOK, oaepCT[1:]), ck.CKR_ENCRYPTED_DATA_LEN_RANGE},
		{"X_509 sign 257 bytes", signOp(ck.CKM_RSA_X_509, rsaPriv, Mech{Type: ck.CKM_RSA_X_509}, make([]byte, 257)), ck.CKR_DATA_LEN_RANGE},
		{"X_509 sign the modulus", signOp(ck.CKM_RSA_X_509, rsaPriv, Mech{Type: ck.CKM_RSA_X_509}, fixRSA.N.Bytes()), ck.CKR_DATA_INVALID},
		{"X_509 encrypt the modulus", encOp(ck.CKM_RSA_X_509, rsaPub, Mech{Type: ck.CKM_RSA_X_509}, fixRSA.N.Bytes()), ck.CKR_DATA_INVALID},
		{"X_509 decrypt 255 bytes", decOp(ck.CKM_RSA_X_509, rsaPriv, Mech{Type: ck.CKM_RSA_X_509}, make([]byte, 255)), ck.CKR_ENCRYPTED_DATA_LEN_RANGE},
		{"X_509 decrypt the modulus", decOp(ck.CKM_RSA_X_509, rsaPriv, Mech{Type: ck.CKM_RSA_X_509}, fixRSA.N.Bytes()), ck.CKR_ENCRYPTED_DATA_INVALID},
		{"KW wrap 8 bytes", encOp(ck.CKM_AES_KEY_WRAP, aes, Mech{Type: ck.CKM_AES_KEY_WRAP}, make([]byte, 8)), ck.CKR_DATA_LEN_RANGE},
		{"KW wrap 20 bytes", encOp(ck.CKM_AES_KEY_WRAP, aes, Mech{Type: ck.CKM_AES_KEY_WRAP}, make([]byte, 20)), ck.CKR_DATA_LEN_RANGE},
		{"KW unwrap 16 bytes", decOp(ck.CKM_AES_KEY_WRAP, aes, Mech{Type: ck.CKM_AES_KEY_WRAP}, make([]byte, 16)), ck.CKR_ENCRYPTED_DATA_LEN_RANGE},
		{"KW unwrap 30 bytes", decOp(ck.CKM_AES_KEY_WRAP, aes, Mech{Type: ck.CKM_AES_KEY_WRAP}, make([]byte, 30)), ck.CKR_ENCRYPTED_DATA_LEN_RANGE},
		{"KWP wrap nothing", encOp(ck.CKM_AES_KEY_WRAP_KWP, aes, Mech{Type: ck.CKM_AES_KEY_WRAP_KWP}, nil), ck.CKR_DATA_LEN_RANGE},
		{"KWP unwrap 8 bytes", decOp(ck.CKM_AES_KEY_WRAP_KWP, aes, Mech{Type: ck.CKM_AES_KEY_WRAP_KWP}, make([]byte, 8)), ck.CKR_ENCRYPTED_DATA_LEN_RANGE},
		{"KWP unwrap 20 bytes", decOp(ck.CKM_AES_KEY_WRAP_KWP, aes, Mech{Type: ck.CKM_AES_KEY_WRAP_KWP}, make([]byte, 20)), ck.CKR_ENCRYPTED_DATA_LEN_RANGE},

		// Signature lengths.
		{"RSA signature 255 bytes", verifyOp(ck.CKM_SHA256_RSA_PKCS, rsaPub, Mech{Type: ck.CKM_SHA256_RSA_PKCS}, msg, rsaSig[1:]), ck.CKR_SIGNATURE_LEN_RANGE},
		{"PSS signature 257 bytes", verifyOp(ck.CKM_SHA256_RSA_PKCS_PSS, rsaPub, pssOK, msg, append(pssSig, 0)), ck.CKR_SIGNATURE_LEN_RANGE},
		{"X_509 signature 255 bytes", verifyOp(ck.CKM_RSA_X_509, rsaPub, Mech{Type: ck.CKM_RSA_X_509}, msg, x509Sig[1:]), ck.CKR_SIGNATURE_LEN_RANGE},
		{"ECDSA signature 63 bytes", verifyOp(ck.CKM_ECDSA_SHA256, ecPriv, Mech{Type: ck.CKM_ECDSA_SHA256}, msg, ecSig[1:]), ck.CKR_SIGNATURE_LEN_RANGE},
		{"ECDSA signature in DER", verifyOp(ck.CKM_ECDSA_SHA256, ecPriv, Mech{Type: ck.CKM_ECDSA_SHA256}, msg, rsToDER(t, ecSig)), ck.CKR_SIGNATURE_LEN_RANGE},
		{"EdDSA signature 63 bytes", verifyOp(ck.CKM_EDDSA, edPriv, Mech{Type: ck.CKM_EDDSA}, msg, edSig[1:]), ck.CKR_SIGNATURE_LEN_RANGE},
		{"HMAC 31 bytes", verifyOp(ck.CKM_SHA256_HMAC, gen, Mech{Type: ck.CKM_SHA256_HMAC}, msg, hmacSig[1:]), ck.CKR_SIGNATURE_LEN_RANGE},
		{"CMAC 15 bytes", verifyOp(ck.CKM_AES_CMAC, aes, Mech{Type: ck.CKM_AES_CMAC}, msg, cmacSig[1:]), ck.CKR_SIGNATURE_LEN_RANGE},

		// Tampering.
		{"GCM tag flipped", decOp(ck.CKM_AES_GCM, aes, gcmOK, flip(gcmCT, len(gcmCT)-1)), ck.CKR_ENCRYPTED_DATA_INVALID},
		{"GCM ciphertext flipped", decOp(ck.CKM_AES_GCM, aes, gcmOK, flip(gcmCT, 0)), ck.CKR_ENCRYPTED_DATA_INVALID},
		{"GCM other AAD", decOp(ck.CKM_AES_GCM, aes, gcmOtherAAD, gcmCT), ck.CKR_ENCRYPTED_DATA_INVALID},
		{"CBC_PAD bad padding", decOp(ck.CKM_AES_CBC_PAD, aes, Mech{Type: ck.CKM_AES_CBC_PAD, Param: iv16}, padCT), ck.CKR_ENCRYPTED_DATA_INVALID},
		{"CBC_PAD pad byte 0", decOp(ck.CKM_AES_CBC_PAD, aes, Mech{Type: ck.CKM_AES_CBC_PAD, Param: iv16}, enc(ck.CKM_AES_ECB, aes, Mech{Type: ck.CKM_AES_ECB}, make([]byte, 16))), ck.CKR_ENCRYPTED_DATA_INVALID},
		{"CBC_PAD pad byte 17", decOp(ck.CKM_AES_CBC_PAD, aes, Mech{Type: ck.CKM_AES_CBC_PAD, Param: iv16}, enc(ck.CKM_AES_ECB, aes, Mech{Type: ck.CKM_AES_ECB}, bytes.Repeat([]byte{17}, 16))), ck.CKR_ENCRYPTED_DATA_INVALID},
		{"KW flipped", decOp(ck.CKM_AES_KEY_WRAP, aes, Mech{Type: ck.CKM_AES_KEY_WRAP}, flip(kwCT, 9)), ck.CKR_ENCRYPTED_DATA_INVALID},
		{"KW other IV", decOp(ck.CKM_AES_KEY_WRAP, aes, Mech{Type: ck.CKM_AES_KEY_WRAP, Param: &IVParams{IV: make([]byte, 8)}}, kwCT), ck.CKR_ENCRYPTED_DATA_INVALID},
		{"KWP flipped", decOp(ck.CKM_AES_KEY_WRAP_KWP, aes, Mech{Type: ck.CKM_AES_KEY_WRAP_KWP}, flip(kwpCT, 0)), ck.CKR_ENCRYPTED_DATA_INVALID},
		{"OAEP flipped", decOp(ck.CKM_RSA_PKCS_OAEP, rsaPriv, oaepOK, flip(oaepCT, 100)), ck.CKR_ENCRYPTED_DATA_INVALID},
		{"OAEP other label", decOp(ck.CKM_RSA_PKCS_OAEP, rsaPriv, oaep(ck.CKM_SHA256, ck.CKG_MGF1_SHA256, ck.CKZ_DATA_SPECIFIED, []byte("M")), oaepCT), ck.CKR_ENCRYPTED_DATA_INVALID},
		{"OAEP other MGF", decOp(ck.CKM_RSA_PKCS_OAEP, rsaPriv, oaep(ck.CKM_SHA256, ck.CKG_MGF1_SHA1, ck.CKZ_DATA_SPECIFIED, []byte("L")), oaepCT), ck.CKR_ENCRYPTED_DATA_INVALID},
		{"PKCS1 decrypt of an OAEP ciphertext", decOp(ck.CKM_RSA_PKCS, rsaPriv, Mech{Type: ck.CKM_RSA_PKCS}, oaepCT), ck.CKR_ENCRYPTED_DATA_INVALID},
		{"RSA bad signature", verifyOp(ck.CKM_SHA256_RSA_PKCS, rsaPub, Mech{Type: ck.CKM_SHA256_RSA_PKCS}, msg, flip(rsaSig, 7)), ck.CKR_SIGNATURE_INVALID},
		{"RSA signature of other hash", verifyOp(ck.CKM_SHA384_RSA_PKCS, rsaPub, Mech{Type: ck.CKM_SHA384_RSA_PKCS}, msg, rsaSig), ck.CKR_SIGNATURE_INVALID},
		{"PSS bad signature", verifyOp(ck.CKM_SHA256_RSA_PKCS_PSS, rsaPub, pssOK, msg, flip(pssSig, 7)), ck.CKR_SIGNATURE_INVALID},
		{"PSS other salt length", verifyOp(ck.CKM_SHA256_RSA_PKCS_PSS, rsaPub, pssMech(ck.CKM_SHA256_RSA_PKCS_PSS, crypto.SHA256, 20), msg, pssSig), ck.CKR_SIGNATURE_INVALID},
		{"X_509 bad signature", verifyOp(ck.CKM_RSA_X_509, rsaPub, Mech{Type: ck.CKM_RSA_X_509}, msg, flip(x509Sig, 200)), ck.CKR_SIGNATURE_INVALID},
		{"X_509 signature above the modulus", verifyOp(ck.CKM_RSA_X_509, rsaPub, Mech{Type: ck.CKM_RSA_X_509}, msg, bytes.Repeat([]byte{0xff}, 256)), ck.CKR_SIGNATURE_INVALID},
		{"ECDSA bad signature", verifyOp(ck.CKM_ECDSA_SHA256, ecPriv, Mech{Type: ck.CKM_ECDSA_SHA256}, msg, flip(ecSig, 40)), ck.CKR_SIGNATURE_INVALID},
		{"ECDSA zero signature", verifyOp(ck.CKM_ECDSA_SHA256, ecPriv, Mech{Type: ck.CKM_ECDSA_SHA256}, msg, make([]byte, 64)), ck.CKR_SIGNATURE_INVALID},
		{"EdDSA bad signature", verifyOp(ck.CKM_EDDSA, edPriv, Mech{Type: ck.CKM_EDDSA}, msg, flip(edSig, 3)), ck.CKR_SIGNATURE_INVALID},
		{"EdDSA ph of a pure signature", verifyOp(ck.CKM_EDDSA, edPriv, Mech{Type: ck.CKM_EDDSA, Param: &EdDSAParams{PHFlag: true}}, msg, edSig), ck.CKR_SIGNATURE_INVALID},
		{"HMAC bad", verifyOp(ck.CKM_SHA256_HMAC, gen, Mech{Type: ck.CKM_SHA256_HMAC}, msg, flip(hmacSig, 31)), ck.CKR_SIGNATURE_INVALID},
		{"CMAC bad", verifyOp(ck.CKM_AES_CMAC, aes, Mech{Type: ck.CKM_AES_CMAC}, msg, flip(cmacSig, 15)), ck.CKR_SIGNATURE_INVALID},
	}
	secrets := [][]byte{aesBytes, gen.Secret, edk.Seed(), fixRSA.D.Bytes(), msg}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.op()
			wantRV(t, err, c.rv)
			s := err.Error()
			for _, b := range secrets {
				if strings.Contains(s, string(b)) || strings.Contains(s, hex.EncodeToString(b)) || strings.Contains(strings.ToLower(s), hex.EncodeToString(b[:4])) {
					t.Fatalf("the error message shows key or data bytes: %s", s)
				}
			}
		})
	}
}

func TestMechCheckParam(t *testing.T) {
	cases := []struct {
		mech uint64
		p    any
		ok   bool
	}{
		{ck.CKM_SHA256, nil, true},
		{ck.CKM_SHA256, &IVParams{}, false},
		{ck.CKM_AES_ECB, &IVParams{IV: make([]byte, 16)}, false},
		{ck.CKM_AES_CBC, &IVParams{IV: make([]byte, 16)}, true},
		{ck.CKM_AES_CBC, IVParams{IV: make([]byte, 16)}, false}, // not a pointer
		{ck.CKM_AES_CBC, (*IVParams)(nil), false},
		{ck.CKM_AES_CBC, nil, false},
		{ck.CKM_AES_CBC, &GCMParams{}, false},
		{ck.CKM_AES_GCM, &GCMParams{IV: make([]byte, 12), TagBits: 128}, true},
		{ck.CKM_AES_GCM, &GCMParams{TagBits: 128}, false},
		{ck.CKM_AES_GCM, &GCMParams{IV: make([]byte, 12), TagBits: 129}, false},
		{ck.CKM_AES_GCM, nil, false},
		{ck.CKM_AES_CTR, &CTRParams{CounterBits: 32}, true},
		{ck.CKM_AES_CTR, &CTRParams{}, false},
		{ck.CKM_AES_CTR, &GCMParams{}, false},
		{ck.CKM_AES_KEY_WRAP, nil, true},
		{ck.CKM_AES_KEY_WRAP, (*IVParams)(nil), true},
		{ck.CKM_AES_KEY_WRAP, &IVParams{IV: make([]byte, 8)}, true},
		{ck.CKM_AES_KEY_WRAP_KWP, nil, true},
		{ck.CKM_AES_KEY_WRAP_KWP, &GCMParams{}, false},
		{ck.CKM_EDDSA, nil, true},
		{ck.CKM_EDDSA, (*EdDSAParams)(nil), true},
		{ck.CKM_EDDSA, &EdDSAParams{PHFlag: true}, true},
		{ck.CKM_EDDSA, &IVParams{}, false},
		{ck.CKM_RSA_PKCS_PSS, &PSSParams{Hash: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256}, true},
		{ck.CKM_RSA_PKCS_PSS, &PSSParams{}, false},
		{ck.CKM_RSA_PKCS_PSS, (*PSSParams)(nil), false},
		{ck.CKM_RSA_PKCS_PSS, nil, false},
		{ck.CKM_SHA256_RSA_PKCS_PSS, &OAEPParams{}, false},
		{ck.CKM_RSA_PKCS_OAEP, &OAEPParams{Hash: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256}, true},
		{ck.CKM_RSA_PKCS_OAEP, &OAEPParams{Hash: ck.CKM_SHA256_HMAC, MGF: ck.CKG_MGF1_SHA256}, false},
		{ck.CKM_RSA_PKCS_OAEP, nil, false},
		{ck.CKM_RSA_PKCS, nil, true},
		{ck.CKM_RSA_PKCS, &OAEPParams{}, false},
		{ck.CKM_ECDH1_DERIVE, &ECDHParams{KDF: ck.CKD_NULL}, true},
		{ck.CKM_ECDH1_DERIVE, &ECDHParams{KDF: 0x99}, false},
		{ck.CKM_ECDH1_DERIVE, nil, false},
		{ck.CKM_SHA256_HMAC_GENERAL, &MacLenParams{Len: 4}, true},
		{ck.CKM_SHA256_HMAC_GENERAL, nil, false},
		{ck.CKM_SHA256_HMAC, &MacLenParams{Len: 4}, false},
		{ck.CKM_AES_CMAC_GENERAL, &MacLenParams{}, true},
		{ck.CKM_RSA_PKCS_KEY_PAIR_GEN, nil, true},
		{ck.CKM_AES_KEY_GEN, []byte{1}, false},
	}
	for _, c := range cases {
		err := CheckParam(row(t, c.mech), Mech{Type: c.mech, Param: c.p})
		if c.ok {
			if err != nil {
				t.Errorf("%s with %T: %v", ck.MechName(c.mech), c.p, err)
			}
		} else {
			if err == nil {
				t.Errorf("%s with %T: accepted", ck.MechName(c.mech), c.p)
				continue
			}
			wantRV(t, err, ck.CKR_MECHANISM_PARAM_INVALID)
		}
	}
}

// The raw RSA private operation is checked against crypto/rsa's: with
// PKCS #1 v1.5 signing padding applied by hand, CKM_RSA_X_509 signs as
// crypto/rsa does.
func TestMechRSAX509MatchesPKCS1(t *testing.T) {
	fixtures(t)
	k := fixRSA.Size()
	hashed := sum(crypto.SHA256, []byte("x"))
	digestInfo := append(unhex(t, "3031300d060960864801650304020105000420"), hashed...)
	em := make([]byte, k)
	em[1] = 1
	for i := 2; i < k-len(digestInfo)-1; i++ {
		em[i] = 0xff
	}
	copy(em[k-len(digestInfo):], digestInfo)
	want, err := rsa.SignPKCS1v15(nil, fixRSA, crypto.SHA256, hashed)
	noErr(t, err)
	// Once with the CRT values, once without (they are recomputed).
	noCRT := *fixRSA
	noCRT.Precomputed = rsa.PrecomputedValues{}
	for _, priv := range []*rsa.PrivateKey{fixRSA, &noCRT} {
		got, err := row(t, ck.CKM_RSA_X_509).Sign(privKey(priv), Mech{Type: ck.CKM_RSA_X_509}, em)
		noErr(t, err)
		if !bytes.Equal(got, want) {
			t.Fatal("raw RSA over the padded DigestInfo differs from crypto/rsa")
		}
	}
}
