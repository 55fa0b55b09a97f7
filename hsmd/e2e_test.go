package hsmd_test

// The end-to-end test of the daemon: a real hsmd process on a loopback port,
// started by scripts/cluster.sh in a temporary directory, driven through the
// client library, every mechanism and every refusal the hsmd issue names.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"hash"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/pki"
)

var ctx = context.Background()

func ul(t, v uint64) object.Attribute { return object.Attribute{Type: t, Value: object.EncodeUlong(v)} }
func bo(t uint64, v bool) object.Attribute {
	return object.Attribute{Type: t, Value: object.EncodeBool(v)}
}
func by(t uint64, v []byte) object.Attribute { return object.Attribute{Type: t, Value: v} }

func dial(t testing.TB, c *testcluster.Cluster, user, password string) *client.Client {
	t.Helper()
	cfg, err := client.LoadConfig(c.Env["HSM_CONFIG"])
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	if user != "" {
		if err := cl.Login(ctx, user, password); err != nil {
			t.Fatalf("login %s: %v", user, err)
		}
	}
	return cl
}

func wantRV(t testing.TB, what string, err error, rv uint64) {
	t.Helper()
	if got := client.RV(err); got != rv {
		t.Fatalf("%s: got %s (%v), want %s", what, ck.RVName(got), err, ck.RVName(rv))
	}
}

// must(f())(t) fails the test if f failed, and returns f's value.
func must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func attr(t testing.TB, c *client.Client, id, typ uint64) []byte {
	t.Helper()
	vs := must(c.GetAttributes(ctx, id, []uint64{typ}))(t)
	if vs[0].RV != ck.CKR_OK {
		t.Fatalf("%s: %s", ck.AttrName(typ), ck.RVName(vs[0].RV))
	}
	return vs[0].Value
}

// oids of the curves, DER encoded.
var curveParams = map[string][]byte{
	"P-256": {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07},
	"P-384": {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22},
	"P-521": {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23},
}

func publicKey(t testing.TB, c *client.Client, id uint64) crypto.PublicKey {
	t.Helper()
	pub, err := x509.ParsePKIXPublicKey(attr(t, c, id, ck.CKA_PUBLIC_KEY_INFO))
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func TestEndToEnd(t *testing.T) {
	cl := testcluster.Start(t, 1)
	cu := dial(t, cl, cl.Env["P11_TOKEN_LABEL"], cl.Env["P11_PIN"])
	co := dial(t, cl, cl.Env["HSM_USER"], cl.Env["HSM_PASSWORD"])

	t.Run("RSA", func(t *testing.T) { testRSA(t, cu) })
	t.Run("EC", func(t *testing.T) { testEC(t, cu) })
	t.Run("Ed25519", func(t *testing.T) { testEd25519(t, cu) })
	t.Run("AES", func(t *testing.T) { testAES(t, cu) })
	t.Run("MAC", func(t *testing.T) { testMAC(t, cu) })
	t.Run("DigestRandom", func(t *testing.T) { testDigest(t, cu) })
	t.Run("Wrap", func(t *testing.T) { testWrap(t, cu) })
	t.Run("Refusals", func(t *testing.T) { testRefusals(t, cl, cu, co) })
	t.Run("BadInput", func(t *testing.T) { testBadInput(t, cl, cu) })
	t.Run("ForeignCA", func(t *testing.T) { testForeignCA(t, cl) })
	t.Run("LockoutSurvivesRestart", func(t *testing.T) { testLockout(t, cl, co) })
	t.Run("WrongPassphrase", func(t *testing.T) { testWrongPassphrase(t, cl) })
	t.Run("NoSecretsInLogs", func(t *testing.T) { testLogs(t, cl) })
}

func rsaPair(t testing.TB, c *client.Client, bits uint64, token bool) (uint64, uint64) {
	pub, priv, err := c.GenerateKeyPair(ctx, mech.Mech{Type: ck.CKM_RSA_PKCS_KEY_PAIR_GEN},
		object.Template{ul(ck.CKA_MODULUS_BITS, bits), bo(ck.CKA_TOKEN, token)},
		object.Template{bo(ck.CKA_TOKEN, token), by(ck.CKA_LABEL, []byte("rsa"))})
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

var hashes = []struct {
	mech, sign, pss uint64
	h               crypto.Hash
	mgf             uint64
}{
	{ck.CKM_SHA_1, ck.CKM_SHA1_RSA_PKCS, ck.CKM_SHA1_RSA_PKCS_PSS, crypto.SHA1, ck.CKG_MGF1_SHA1},
	{ck.CKM_SHA224, ck.CKM_SHA224_RSA_PKCS, ck.CKM_SHA224_RSA_PKCS_PSS, crypto.SHA224, ck.CKG_MGF1_SHA224},
	{ck.CKM_SHA256, ck.CKM_SHA256_RSA_PKCS, ck.CKM_SHA256_RSA_PKCS_PSS, crypto.SHA256, ck.CKG_MGF1_SHA256},
	{ck.CKM_SHA384, ck.CKM_SHA384_RSA_PKCS, ck.CKM_SHA384_RSA_PKCS_PSS, crypto.SHA384, ck.CKG_MGF1_SHA384},
	{ck.CKM_SHA512, ck.CKM_SHA512_RSA_PKCS, ck.CKM_SHA512_RSA_PKCS_PSS, crypto.SHA512, ck.CKG_MGF1_SHA512},
}

func digest(h crypto.Hash, msg []byte) []byte { x := h.New(); x.Write(msg); return x.Sum(nil) }

func testRSA(t *testing.T, c *client.Client) {
	pubID, privID := rsaPair(t, c, 2048, true)
	pub := publicKey(t, c, pubID).(*rsa.PublicKey)
	if pub.N.BitLen() != 2048 {
		t.Fatalf("modulus is %d bits", pub.N.BitLen())
	}
	msg := []byte("a message to sign")
	for _, h := range hashes {
		sig := must(c.Sign(ctx, privID, mech.Mech{Type: h.sign}, msg))(t)
		if err := rsa.VerifyPKCS1v15(pub, h.h, digest(h.h, msg), sig); err != nil {
			t.Errorf("%s: Go rejects the signature: %v", ck.MechName(h.sign), err)
		}
		if err := c.Verify(ctx, pubID, mech.Mech{Type: h.sign}, msg, sig); err != nil {
			t.Errorf("%s verify: %v", ck.MechName(h.sign), err)
		}
		sig[0] ^= 1
		wantRV(t, ck.MechName(h.sign)+" bad signature", c.Verify(ctx, pubID, mech.Mech{Type: h.sign}, msg, sig), ck.CKR_SIGNATURE_INVALID)

		pss := mech.Mech{Type: h.pss, Param: &mech.PSSParams{Hash: h.mech, MGF: h.mgf, SaltLen: uint64(h.h.Size())}}
		sig = must(c.Sign(ctx, privID, pss, msg))(t)
		if err := rsa.VerifyPSS(pub, h.h, digest(h.h, msg), sig, &rsa.PSSOptions{SaltLength: h.h.Size()}); err != nil {
			t.Errorf("%s: Go rejects the signature: %v", ck.MechName(h.pss), err)
		}
		rawPSS := mech.Mech{Type: ck.CKM_RSA_PKCS_PSS, Param: pss.Param}
		sig = must(c.Sign(ctx, privID, rawPSS, digest(h.h, msg)))(t)
		if err := c.Verify(ctx, pubID, rawPSS, digest(h.h, msg), sig); err != nil {
			t.Errorf("RSA_PKCS_PSS with %s: %v", ck.MechName(h.mech), err)
		}

		label := []byte("label")
		oaep := mech.Mech{Type: ck.CKM_RSA_PKCS_OAEP, Param: &mech.OAEPParams{Hash: h.mech, MGF: h.mgf, Source: ck.CKZ_DATA_SPECIFIED, Label: label}}
		ct, err := rsa.EncryptOAEP(h.h.New(), rand.Reader, pub, msg, label)
		if err != nil {
			t.Fatal(err)
		}
		if pt := must(c.Decrypt(ctx, privID, oaep, ct))(t); !bytes.Equal(pt, msg) {
			t.Errorf("OAEP %s: wrong plaintext", ck.MechName(h.mech))
		}
		ct = must(c.Encrypt(ctx, pubID, oaep, msg))(t)
		if pt := must(c.Decrypt(ctx, privID, oaep, ct))(t); !bytes.Equal(pt, msg) {
			t.Errorf("OAEP %s round trip", ck.MechName(h.mech))
		}
	}
	// Raw PKCS#1 v1.5 over a DigestInfo the caller built.
	prefix, _ := hex.DecodeString("3031300d060960864801650304020105000420")
	h := sha256.Sum256(msg)
	sig := must(c.Sign(ctx, privID, mech.Mech{Type: ck.CKM_RSA_PKCS}, append(prefix, h[:]...)))(t)
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig); err != nil {
		t.Errorf("RSA_PKCS: %v", err)
	}
	ct, _ := rsa.EncryptPKCS1v15(rand.Reader, pub, msg)
	if pt := must(c.Decrypt(ctx, privID, mech.Mech{Type: ck.CKM_RSA_PKCS}, ct))(t); !bytes.Equal(pt, msg) {
		t.Error("RSA_PKCS decrypt")
	}
	// Raw RSA: m^e then ^d gives m back, and matches Go's arithmetic.
	m := make([]byte, 256)
	m[255] = 42
	enc := must(c.Encrypt(ctx, pubID, mech.Mech{Type: ck.CKM_RSA_X_509}, m))(t)
	want := new(big.Int).Exp(new(big.Int).SetBytes(m), big.NewInt(int64(pub.E)), pub.N)
	if new(big.Int).SetBytes(enc).Cmp(want) != 0 {
		t.Error("RSA_X_509 encrypt is not m^e mod n")
	}
	if dec := must(c.Decrypt(ctx, privID, mech.Mech{Type: ck.CKM_RSA_X_509}, enc))(t); !bytes.Equal(dec, m) {
		t.Error("RSA_X_509 decrypt")
	}
	// Sizes: 3072 and 4096 generate; 1024 is refused.
	for _, bits := range []uint64{3072, 4096} {
		p, _ := rsaPair(t, c, bits, false)
		if publicKey(t, c, p).(*rsa.PublicKey).N.BitLen() != int(bits) {
			t.Errorf("RSA-%d", bits)
		}
	}
	_, _, err := c.GenerateKeyPair(ctx, mech.Mech{Type: ck.CKM_RSA_PKCS_KEY_PAIR_GEN}, object.Template{ul(ck.CKA_MODULUS_BITS, 1024)}, nil)
	wantRV(t, "RSA-1024", err, ck.CKR_KEY_SIZE_RANGE)
}

// rawECDSA turns r||s into the two integers.
func rawECDSA(sig []byte) (*big.Int, *big.Int) {
	n := len(sig) / 2
	return new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])
}

func testEC(t *testing.T, c *client.Client) {
	ecdsaMechs := []struct {
		mech uint64
		h    crypto.Hash
	}{{ck.CKM_ECDSA_SHA1, crypto.SHA1}, {ck.CKM_ECDSA_SHA224, crypto.SHA224}, {ck.CKM_ECDSA_SHA256, crypto.SHA256},
		{ck.CKM_ECDSA_SHA384, crypto.SHA384}, {ck.CKM_ECDSA_SHA512, crypto.SHA512}}
	msg := []byte("ecdsa message")
	for name, params := range curveParams {
		pubID, privID := must2(t)(c.GenerateKeyPair(ctx, mech.Mech{Type: ck.CKM_EC_KEY_PAIR_GEN},
			object.Template{by(ck.CKA_EC_PARAMS, params), bo(ck.CKA_TOKEN, true)},
			object.Template{bo(ck.CKA_TOKEN, true), bo(ck.CKA_DERIVE, true)}))
		pub := publicKey(t, c, pubID).(*ecdsa.PublicKey)
		if pub.Curve.Params().Name != name {
			t.Fatalf("curve %s, want %s", pub.Curve.Params().Name, name)
		}
		for _, m := range ecdsaMechs {
			sig := must(c.Sign(ctx, privID, mech.Mech{Type: m.mech}, msg))(t)
			r, s := rawECDSA(sig)
			if !ecdsa.Verify(pub, digest(m.h, msg), r, s) {
				t.Errorf("%s %s: Go rejects the signature", name, ck.MechName(m.mech))
			}
			if err := c.Verify(ctx, pubID, mech.Mech{Type: m.mech}, msg, sig); err != nil {
				t.Errorf("%s %s verify: %v", name, ck.MechName(m.mech), err)
			}
		}
		h := sha256.Sum256(msg)
		sig := must(c.Sign(ctx, privID, mech.Mech{Type: ck.CKM_ECDSA}, h[:]))(t)
		r, s := rawECDSA(sig)
		if !ecdsa.Verify(pub, h[:], r, s) {
			t.Errorf("%s raw ECDSA", name)
		}
		// ECDH with a peer key made by Go: the derived secret matches.
		curve := map[string]ecdh.Curve{"P-256": ecdh.P256(), "P-384": ecdh.P384(), "P-521": ecdh.P521()}[name]
		peer, _ := curve.GenerateKey(rand.Reader)
		derived := must(c.DeriveKey(ctx, mech.Mech{Type: ck.CKM_ECDH1_DERIVE, Param: &mech.ECDHParams{KDF: ck.CKD_NULL, PublicData: peer.PublicKey().Bytes()}},
			privID, object.Template{ul(ck.CKA_CLASS, ck.CKO_SECRET_KEY), ul(ck.CKA_KEY_TYPE, ck.CKK_GENERIC_SECRET),
				bo(ck.CKA_SENSITIVE, false), bo(ck.CKA_EXTRACTABLE, true)}))(t)
		ourPub, err := curve.NewPublicKey(elliptic.Marshal(pub.Curve, pub.X, pub.Y)) //nolint:staticcheck
		if err != nil {
			t.Fatal(err)
		}
		want, _ := peer.ECDH(ourPub)
		if got := attr(t, c, derived, ck.CKA_VALUE); !bytes.Equal(got, want) {
			t.Errorf("%s ECDH: derived secret differs from Go's", name)
		}
	}
}

func must2(t testing.TB) func(a, b uint64, err error) (uint64, uint64) {
	return func(a, b uint64, err error) (uint64, uint64) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
}

func testEd25519(t *testing.T, c *client.Client) {
	ed := []byte{0x06, 0x03, 0x2b, 0x65, 0x70}
	pubID, privID := must2(t)(c.GenerateKeyPair(ctx, mech.Mech{Type: ck.CKM_EC_EDWARDS_KEY_PAIR_GEN},
		object.Template{by(ck.CKA_EC_PARAMS, ed), bo(ck.CKA_TOKEN, true)}, object.Template{bo(ck.CKA_TOKEN, true)}))
	pub := publicKey(t, c, pubID).(ed25519.PublicKey)
	msg := []byte("edwards")
	sig := must(c.Sign(ctx, privID, mech.Mech{Type: ck.CKM_EDDSA}, msg))(t)
	if !ed25519.Verify(pub, msg, sig) {
		t.Fatal("Go rejects the Ed25519 signature")
	}
	if err := c.Verify(ctx, pubID, mech.Mech{Type: ck.CKM_EDDSA}, msg, sig); err != nil {
		t.Fatal(err)
	}
	sig[5] ^= 1
	wantRV(t, "bad EdDSA", c.Verify(ctx, pubID, mech.Mech{Type: ck.CKM_EDDSA}, msg, sig), ck.CKR_SIGNATURE_INVALID)
}

// importSecret makes a token secret key with a known value.
func importSecret(t testing.TB, c *client.Client, kt uint64, value []byte, extra ...object.Attribute) uint64 {
	return must(c.CreateObject(ctx, append(object.Template{ul(ck.CKA_CLASS, ck.CKO_SECRET_KEY), ul(ck.CKA_KEY_TYPE, kt),
		by(ck.CKA_VALUE, value), bo(ck.CKA_TOKEN, true)}, extra...)))(t)
}

func testAES(t *testing.T, c *client.Client) {
	for _, size := range []uint64{16, 24, 32} {
		id := must(c.GenerateKey(ctx, mech.Mech{Type: ck.CKM_AES_KEY_GEN}, object.Template{ul(ck.CKA_VALUE_LEN, size), bo(ck.CKA_TOKEN, true)}))(t)
		if got := attr(t, c, id, ck.CKA_VALUE_LEN); !bytes.Equal(got, object.EncodeUlong(size)) {
			t.Errorf("AES-%d value len", size*8)
		}
		vs := must(c.GetAttributes(ctx, id, []uint64{ck.CKA_VALUE}))(t)
		if vs[0].RV != ck.CKR_ATTRIBUTE_SENSITIVE {
			t.Errorf("a generated key's value is readable: %s", ck.RVName(vs[0].RV))
		}
	}
	key := make([]byte, 32)
	rand.Read(key)
	id := importSecret(t, c, ck.CKK_AES, key)
	block, _ := aes.NewCipher(key)
	iv := make([]byte, 16)
	rand.Read(iv)
	pt := make([]byte, 64)
	rand.Read(pt)

	check := func(name string, m mech.Mech, in, want []byte) {
		t.Helper()
		got := must(c.Encrypt(ctx, id, m, in))(t)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: ciphertext differs from Go's", name)
		}
		back := must(c.Decrypt(ctx, id, m, got))(t)
		if !bytes.Equal(back, in) {
			t.Errorf("%s: decrypt", name)
		}
	}
	ecb := make([]byte, len(pt))
	for i := 0; i < len(pt); i += 16 {
		block.Encrypt(ecb[i:], pt[i:i+16])
	}
	check("ECB", mech.Mech{Type: ck.CKM_AES_ECB}, pt, ecb)
	cbc := make([]byte, len(pt))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(cbc, pt)
	check("CBC", mech.Mech{Type: ck.CKM_AES_CBC, Param: &mech.IVParams{IV: iv}}, pt, cbc)
	odd := pt[:37]
	padded := append(append([]byte{}, odd...), bytes.Repeat([]byte{11}, 11)...)
	cbcPad := make([]byte, 48)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(cbcPad, padded)
	check("CBC_PAD", mech.Mech{Type: ck.CKM_AES_CBC_PAD, Param: &mech.IVParams{IV: iv}}, odd, cbcPad)
	ctr := make([]byte, len(odd))
	cipher.NewCTR(block, iv).XORKeyStream(ctr, odd)
	var cb [16]byte
	copy(cb[:], iv)
	check("CTR", mech.Mech{Type: ck.CKM_AES_CTR, Param: &mech.CTRParams{CounterBits: 128, CB: cb}}, odd, ctr)
	gcm, _ := cipher.NewGCM(block)
	nonce := iv[:12]
	aad := []byte("header")
	check("GCM", mech.Mech{Type: ck.CKM_AES_GCM, Param: &mech.GCMParams{IV: nonce, AAD: aad, TagBits: 128}}, odd, gcm.Seal(nil, nonce, odd, aad))
	ct := must(c.Encrypt(ctx, id, mech.Mech{Type: ck.CKM_AES_GCM, Param: &mech.GCMParams{IV: nonce, AAD: aad, TagBits: 128}}, odd))(t)
	ct[0] ^= 1
	_, err := c.Decrypt(ctx, id, mech.Mech{Type: ck.CKM_AES_GCM, Param: &mech.GCMParams{IV: nonce, AAD: aad, TagBits: 128}}, ct)
	wantRV(t, "GCM tampered", err, ck.CKR_ENCRYPTED_DATA_INVALID)
}

func testMAC(t *testing.T, c *client.Client) {
	// RFC 4493 example 2.
	k, _ := hex.DecodeString("2b7e151628aed2a6abf7158809cf4f3c")
	m, _ := hex.DecodeString("6bc1bee22e409f96e93d7e117393172a")
	want, _ := hex.DecodeString("070a16b46b4d4144f79bdd9dd04a287c")
	id := importSecret(t, c, ck.CKK_AES, k)
	if got := must(c.Sign(ctx, id, mech.Mech{Type: ck.CKM_AES_CMAC}, m))(t); !bytes.Equal(got, want) {
		t.Errorf("CMAC: %x", got)
	}
	if err := c.Verify(ctx, id, mech.Mech{Type: ck.CKM_AES_CMAC}, m, want); err != nil {
		t.Error(err)
	}
	key := make([]byte, 48)
	rand.Read(key)
	hid := importSecret(t, c, ck.CKK_GENERIC_SECRET, key)
	for m2, h := range map[uint64]func() hash.Hash{ck.CKM_SHA_1_HMAC: sha1.New, ck.CKM_SHA224_HMAC: sha256.New224,
		ck.CKM_SHA256_HMAC: sha256.New, ck.CKM_SHA384_HMAC: sha512.New384, ck.CKM_SHA512_HMAC: sha512.New} {
		mac := hmac.New(h, key)
		mac.Write(m)
		want := mac.Sum(nil)
		if got := must(c.Sign(ctx, hid, mech.Mech{Type: m2}, m))(t); !bytes.Equal(got, want) {
			t.Errorf("%s differs from Go's", ck.MechName(m2))
		}
		bad := append([]byte{}, want...)
		bad[0] ^= 1
		wantRV(t, ck.MechName(m2)+" bad MAC", c.Verify(ctx, hid, mech.Mech{Type: m2}, m, bad), ck.CKR_SIGNATURE_INVALID)
	}
	gen := must(c.GenerateKey(ctx, mech.Mech{Type: ck.CKM_GENERIC_SECRET_KEY_GEN}, object.Template{ul(ck.CKA_VALUE_LEN, 32)}))(t)
	mac := must(c.Sign(ctx, gen, mech.Mech{Type: ck.CKM_SHA256_HMAC}, m))(t)
	if err := c.Verify(ctx, gen, mech.Mech{Type: ck.CKM_SHA256_HMAC}, m, mac); err != nil {
		t.Error(err)
	}
}

func testDigest(t *testing.T, c *client.Client) {
	msg := []byte("abc")
	for mechV, h := range map[uint64]func() hash.Hash{ck.CKM_SHA_1: sha1.New, ck.CKM_SHA224: sha256.New224, ck.CKM_SHA256: sha256.New,
		ck.CKM_SHA384: sha512.New384, ck.CKM_SHA512: sha512.New,
		ck.CKM_SHA3_224: func() hash.Hash { return sha3.New224() }, ck.CKM_SHA3_256: func() hash.Hash { return sha3.New256() },
		ck.CKM_SHA3_384: func() hash.Hash { return sha3.New384() }, ck.CKM_SHA3_512: func() hash.Hash { return sha3.New512() }} {
		x := h()
		x.Write(msg)
		if got := must(c.Digest(ctx, mech.Mech{Type: mechV}, msg))(t); !bytes.Equal(got, x.Sum(nil)) {
			t.Errorf("%s differs from Go's", ck.MechName(mechV))
		}
	}
	a := must(c.GenerateRandom(ctx, 32))(t)
	b := must(c.GenerateRandom(ctx, 32))(t)
	if len(a) != 32 || bytes.Equal(a, b) {
		t.Error("random")
	}
}

func testWrap(t *testing.T, c *client.Client) {
	kek := must(c.GenerateKey(ctx, mech.Mech{Type: ck.CKM_AES_KEY_GEN}, object.Template{ul(ck.CKA_VALUE_LEN, 32), bo(ck.CKA_TOKEN, true),
		bo(ck.CKA_WRAP, true), bo(ck.CKA_UNWRAP, true)}))(t)
	secret := make([]byte, 32)
	rand.Read(secret)
	target := importSecret(t, c, ck.CKK_AES, secret, bo(ck.CKA_EXTRACTABLE, true))
	for _, mechV := range []uint64{ck.CKM_AES_KEY_WRAP, ck.CKM_AES_KEY_WRAP_KWP} {
		wrapped := must(c.WrapKey(ctx, mech.Mech{Type: mechV}, kek, target))(t)
		if bytes.Contains(wrapped, secret) {
			t.Fatal("wrapped key holds the clear key")
		}
		back := must(c.UnwrapKey(ctx, mech.Mech{Type: mechV}, kek, wrapped, object.Template{ul(ck.CKA_CLASS, ck.CKO_SECRET_KEY),
			ul(ck.CKA_KEY_TYPE, ck.CKK_AES), bo(ck.CKA_SENSITIVE, false), bo(ck.CKA_EXTRACTABLE, true)}))(t)
		if got := attr(t, c, back, ck.CKA_VALUE); !bytes.Equal(got, secret) {
			t.Errorf("%s: unwrapped key differs", ck.MechName(mechV))
		}
		wrapped[3] ^= 1
		_, err := c.UnwrapKey(ctx, mech.Mech{Type: mechV}, kek, wrapped, object.Template{ul(ck.CKA_CLASS, ck.CKO_SECRET_KEY), ul(ck.CKA_KEY_TYPE, ck.CKK_AES)})
		wantRV(t, ck.MechName(mechV)+" tampered", err, ck.CKR_WRAPPED_KEY_INVALID)
	}
	// A private key goes out as PKCS#8 under KWP and comes back able to sign.
	pubID, privID := must2(t)(c.GenerateKeyPair(ctx, mech.Mech{Type: ck.CKM_EC_KEY_PAIR_GEN},
		object.Template{by(ck.CKA_EC_PARAMS, curveParams["P-256"])}, object.Template{bo(ck.CKA_EXTRACTABLE, true)}))
	wrapped := must(c.WrapKey(ctx, mech.Mech{Type: ck.CKM_AES_KEY_WRAP_KWP}, kek, privID))(t)
	back := must(c.UnwrapKey(ctx, mech.Mech{Type: ck.CKM_AES_KEY_WRAP_KWP}, kek, wrapped,
		object.Template{ul(ck.CKA_CLASS, ck.CKO_PRIVATE_KEY), ul(ck.CKA_KEY_TYPE, ck.CKK_EC)}))(t)
	sig := must(c.Sign(ctx, back, mech.Mech{Type: ck.CKM_ECDSA_SHA256}, []byte("m")))(t)
	if err := c.Verify(ctx, pubID, mech.Mech{Type: ck.CKM_ECDSA_SHA256}, []byte("m"), sig); err != nil {
		t.Error("the unwrapped private key signs differently")
	}
	// Non-extractable keys stay in.
	fixed := must(c.GenerateKey(ctx, mech.Mech{Type: ck.CKM_AES_KEY_GEN}, object.Template{ul(ck.CKA_VALUE_LEN, 16)}))(t)
	_, err := c.WrapKey(ctx, mech.Mech{Type: ck.CKM_AES_KEY_WRAP}, kek, fixed)
	wantRV(t, "wrap unextractable", err, ck.CKR_KEY_UNEXTRACTABLE)
}

func testRefusals(t *testing.T, cl *testcluster.Cluster, cu, co *client.Client) {
	_, priv := rsaPair(t, cu, 2048, true)
	msg := []byte("m")
	_, err := co.Sign(ctx, priv, mech.Mech{Type: ck.CKM_SHA256_RSA_PKCS}, msg)
	wantRV(t, "a crypto officer signs", err, ck.CKR_USER_NOT_LOGGED_IN)
	wantRV(t, "a crypto user creates a user", cu.CreateUser(ctx, "mallory", "CU", "mallory-password"), ck.CKR_USER_NOT_LOGGED_IN)

	if err := co.CreateUser(ctx, "cu2", "CU", "second-user-password"); err != nil {
		t.Fatal(err)
	}
	b := dial(t, cl, "cu2", "second-user-password")
	_, err = b.Sign(ctx, priv, mech.Mech{Type: ck.CKM_SHA256_RSA_PKCS}, msg)
	wantRV(t, "B uses A's unshared key", err, ck.CKR_KEY_HANDLE_INVALID)
	if err := cu.Share(ctx, priv, "cu2"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Sign(ctx, priv, mech.Mech{Type: ck.CKM_SHA256_RSA_PKCS}, msg); err != nil {
		t.Fatalf("B uses the shared key: %v", err)
	}
	wantRV(t, "B deletes the shared key", b.DestroyObject(ctx, priv), ck.CKR_ACTION_PROHIBITED)
	if _, err := cu.Sign(ctx, priv, mech.Mech{Type: ck.CKM_SHA256_RSA_PKCS}, msg); err != nil {
		t.Fatal("the key is gone after B's refused delete")
	}
	anon := dial(t, cl, "", "")
	_, err = anon.Sign(ctx, priv, mech.Mech{Type: ck.CKM_SHA256_RSA_PKCS}, msg)
	wantRV(t, "no login", err, ck.CKR_USER_NOT_LOGGED_IN)
}

func testBadInput(t *testing.T, cl *testcluster.Cluster, cu *client.Client) {
	id := must(cu.GenerateKey(ctx, mech.Mech{Type: ck.CKM_AES_KEY_GEN}, object.Template{ul(ck.CKA_VALUE_LEN, 16)}))(t)
	before := must(cu.FindObjects(ctx, nil, 0))(t)
	_, err := cu.Encrypt(ctx, id, mech.Mech{Type: ck.CKM_AES_GCM, Param: &mech.GCMParams{IV: make([]byte, 12), TagBits: 129}}, []byte("x"))
	if err == nil || !strings.Contains(err.Error(), "mechanism.gcm.tag_bits") {
		t.Errorf("bad tag bits: %v", err)
	}
	_, err = cu.CreateObject(ctx, object.Template{{Type: ck.CKA_LABEL, Value: make([]byte, 70000)}})
	if err == nil || !strings.Contains(err.Error(), "template[0].value") {
		t.Errorf("huge attribute: %v", err)
	}
	_, err = cu.GenerateKey(ctx, mech.Mech{Type: ck.CKM_AES_KEY_GEN}, object.Template{ul(ck.CKA_VALUE_LEN, 20)})
	wantRV(t, "AES-160", err, ck.CKR_KEY_SIZE_RANGE)
	_, err = cu.GenerateKey(ctx, mech.Mech{Type: ck.CKM_AES_KEY_GEN}, object.Template{ul(ck.CKA_VALUE_LEN, 16), {Type: ck.CKA_TOKEN, Value: []byte{7}}})
	wantRV(t, "bad bool", err, ck.CKR_ATTRIBUTE_VALUE_INVALID)
	if after := must(cu.FindObjects(ctx, nil, 0))(t); len(after) != len(before) {
		t.Errorf("bad requests changed the object count: %d -> %d", len(before), len(after))
	}
}

func testForeignCA(t *testing.T, cl *testcluster.Cluster) {
	dir := t.TempDir()
	ca, err := pki.CreateCA(dir, "impostor")
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.IssueClient(dir, "client"); err != nil {
		t.Fatal(err)
	}
	cfg, err := client.LoadConfig(cl.Env["HSM_CONFIG"])
	if err != nil {
		t.Fatal(err)
	}
	// The same settings with the cluster's own certificate work: only the
	// certificate differs below.
	good, err := client.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("control dial: %v", err)
	}
	good.Close()
	cfg.Cert, cfg.Key = pki.CertPath(dir, "client"), pki.KeyPath(dir, "client")
	c, err := client.Dial(ctx, cfg)
	if err == nil {
		// Dial may be lazy; then the first call must fail.
		defer c.Close()
		err = c.Login(ctx, cl.Env["P11_TOKEN_LABEL"], cl.Env["P11_PIN"])
	}
	if err == nil {
		t.Fatal("a certificate from another CA logged in")
	}
	if !strings.Contains(strings.ToLower(err.Error()), "certificate") {
		t.Fatalf("refused, but not for the certificate: %v", err)
	}
}

func testLockout(t *testing.T, cl *testcluster.Cluster, co *client.Client) {
	if err := co.CreateUser(ctx, "victim", "CU", "victim-password"); err != nil {
		t.Fatal(err)
	}
	c := dial(t, cl, "", "")
	for i := 0; i < 5; i++ {
		wantRV(t, "wrong password", throttledLogin(t, c, "victim", "not-the-password"), ck.CKR_PIN_INCORRECT)
	}
	wantRV(t, "sixth login, right password", throttledLogin(t, c, "victim", "victim-password"), ck.CKR_PIN_LOCKED)
	cl.Stop(1, false)
	if out, err := cl.StartNode(1); err != nil {
		t.Fatalf("restart: %v\n%s", err, out)
	}
	c = dial(t, cl, "", "")
	wantRV(t, "after restart", c.Login(ctx, "victim", "victim-password"), ck.CKR_PIN_LOCKED)
	co2 := dial(t, cl, cl.Env["HSM_USER"], cl.Env["HSM_PASSWORD"])
	if err := co2.UnlockUser(ctx, "victim"); err != nil {
		t.Fatal(err)
	}
	if err := c.Login(ctx, "victim", "victim-password"); err != nil {
		t.Fatalf("after unlock: %v", err)
	}
}

var retryIn = regexp.MustCompile(`try again in (\d+)s`)

// throttledLogin logs in, waiting as the node says while it throttles
// failed logins.
func throttledLogin(t *testing.T, c *client.Client, user, password string) error {
	t.Helper()
	for i := 0; ; i++ {
		err := c.Login(ctx, user, password)
		m := retryIn.FindStringSubmatch(fmt.Sprint(err))
		if client.RV(err) != ck.CKR_FUNCTION_REJECTED || m == nil || i == 10 {
			return err
		}
		n, _ := strconv.Atoi(m[1])
		time.Sleep(time.Duration(n)*time.Second + 100*time.Millisecond)
	}
}

// fileHash hashes every file under dir (the store, the Raft log and
// snapshots, the backups).
func fileHash(t *testing.T, dir string) map[string][32]byte {
	out := map[string][32]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out[path] = sha256.Sum256(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func testWrongPassphrase(t *testing.T, cl *testcluster.Cluster) {
	cu := dial(t, cl, cl.Env["P11_TOKEN_LABEL"], cl.Env["P11_PIN"])
	key := must(cu.GenerateKey(ctx, mech.Mech{Type: ck.CKM_AES_KEY_GEN}, object.Template{ul(ck.CKA_VALUE_LEN, 32), bo(ck.CKA_TOKEN, true)}))(t)
	m := mech.Mech{Type: ck.CKM_AES_GCM, Param: &mech.GCMParams{IV: make([]byte, 12), TagBits: 128}}
	ct := must(cu.Encrypt(ctx, key, m, []byte("still here")))(t)
	cl.Stop(1, false)
	data := filepath.Join(cl.Dir, "node1")
	before := fileHash(t, data)
	pass := filepath.Join(cl.Dir, "passphrase")
	good, _ := os.ReadFile(pass)
	os.WriteFile(pass, []byte("this is not the passphrase"), 0o600)
	out, err := cl.StartNode(1)
	if err == nil {
		t.Fatal("the daemon started with the wrong passphrase")
	}
	nodeOut, _ := os.ReadFile(filepath.Join(cl.Dir, "node1.out"))
	if !strings.Contains(string(out)+string(nodeOut), "passphrase") {
		t.Errorf("no clear error about the passphrase:\n%s\n%s", out, nodeOut)
	}
	after := fileHash(t, data)
	if len(before) == 0 || len(before) != len(after) {
		t.Fatalf("files changed: %v -> %v", before, after)
	}
	for name, h := range before {
		if after[name] != h {
			t.Errorf("%s changed", name)
		}
	}
	os.WriteFile(pass, good, 0o600)
	if out, err := cl.StartNode(1); err != nil {
		t.Fatalf("restart with the right passphrase: %v\n%s", err, out)
	}
	cu = dial(t, cl, cl.Env["P11_TOKEN_LABEL"], cl.Env["P11_PIN"])
	if pt := must(cu.Decrypt(ctx, key, m, ct))(t); string(pt) != "still here" {
		t.Fatal("the key changed")
	}
}

func testLogs(t *testing.T, cl *testcluster.Cluster) {
	log, err := os.ReadFile(cl.LogFile(1))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), `"user":"cu1"`) || !strings.Contains(string(log), "generated key") {
		t.Error("the log does not say who did what")
	}
	for name, secret := range map[string]string{"CU password": cl.Env["P11_PIN"], "CO password": cl.Env["HSM_PASSWORD"],
		"second user's password": "second-user-password", "a token": "v1."} {
		if strings.Contains(string(log), secret) {
			t.Errorf("the log holds %s", name)
		}
	}
}
