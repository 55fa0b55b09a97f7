//go:build cgo

package ossl_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/mech/ossl"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These tests run the mechanism rows, as the engine calls them, once on
// crypto/rsa and once through libcrypto, and want the same answers and the
// same CKR values.

func rowKey(t *testing.T, bits int) *rsa.PrivateKey {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", fmt.Sprintf("rsa%d.pem", bits)))
	require.NoError(t, err)
	blk, _ := pem.Decode(b)
	require.NotNil(t, blk)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	require.NoError(t, err)
	return k.(*rsa.PrivateKey)
}

func newKey(priv *rsa.PrivateKey) *mech.Key {
	return &mech.Key{Class: ck.CKO_PRIVATE_KEY, KeyType: ck.CKK_RSA, Private: priv, Public: &priv.PublicKey}
}

// loads counts the keys libcrypto loaded, so a test knows it went there.
var loads atomic.Int64

func useOpenSSL() {
	mech.SetRSABackend(func(k *rsa.PrivateKey) (mech.RSAPrivate, error) {
		fast, err := ossl.LoadRSA(k)
		if err != nil {
			return nil, err
		}
		loads.Add(1)
		return fast, nil
	})
}

// both runs f with a fresh key on crypto/rsa (fast false) and on libcrypto.
func both(t *testing.T, priv *rsa.PrivateKey, f func(t *testing.T, k *mech.Key, fast bool)) {
	t.Helper()
	mech.SetRSABackend(nil)
	f(t, newKey(priv), false)
	useOpenSSL()
	defer mech.SetRSABackend(nil)
	before := loads.Load()
	f(t, newKey(priv), true)
	assert.Greater(t, loads.Load(), before, "libcrypto was not used")
}

func row(t *testing.T, typ uint64) *mech.Mechanism {
	t.Helper()
	r, ok := mech.LookupMechanism(typ)
	require.True(t, ok, ck.MechName(typ))
	return r
}

var hashRows = []struct {
	h               crypto.Hash
	digest, mgf     uint64
	pkcsRow, pssRow uint64
}{
	{crypto.SHA1, ck.CKM_SHA_1, ck.CKG_MGF1_SHA1, ck.CKM_SHA1_RSA_PKCS, ck.CKM_SHA1_RSA_PKCS_PSS},
	{crypto.SHA224, ck.CKM_SHA224, ck.CKG_MGF1_SHA224, ck.CKM_SHA224_RSA_PKCS, ck.CKM_SHA224_RSA_PKCS_PSS},
	{crypto.SHA256, ck.CKM_SHA256, ck.CKG_MGF1_SHA256, ck.CKM_SHA256_RSA_PKCS, ck.CKM_SHA256_RSA_PKCS_PSS},
	{crypto.SHA384, ck.CKM_SHA384, ck.CKG_MGF1_SHA384, ck.CKM_SHA384_RSA_PKCS, ck.CKM_SHA384_RSA_PKCS_PSS},
	{crypto.SHA512, ck.CKM_SHA512, ck.CKG_MGF1_SHA512, ck.CKM_SHA512_RSA_PKCS, ck.CKM_SHA512_RSA_PKCS_PSS},
	{crypto.SHA3_256, ck.CKM_SHA3_256, ck.CKG_MGF1_SHA3_256, ck.CKM_SHA3_256_RSA_PKCS, ck.CKM_SHA3_256_RSA_PKCS_PSS},
}

func TestRowsAgree(t *testing.T) {
	msg := []byte("the rows agree")
	for _, bits := range []int{2048, 3072, 4096} {
		priv := rowKey(t, bits)
		pubKey := &mech.Key{Class: ck.CKO_PUBLIC_KEY, KeyType: ck.CKK_RSA, Public: &priv.PublicKey}
		for _, hr := range hashRows {
			t.Run(fmt.Sprintf("%d/%v", bits, hr.h), func(t *testing.T) {
				var sigs [2][]byte
				pss := mech.Mech{Type: hr.pssRow, Param: &mech.PSSParams{Hash: hr.digest, MGF: hr.mgf, SaltLen: uint64(hr.h.Size())}}
				oaep := mech.Mech{Type: ck.CKM_RSA_PKCS_OAEP, Param: &mech.OAEPParams{Hash: hr.digest, MGF: hr.mgf, Source: ck.CKZ_DATA_SPECIFIED, Label: []byte("l")}}
				ct, err := row(t, ck.CKM_RSA_PKCS_OAEP).Encrypt(pubKey, oaep, msg)
				require.NoError(t, err)
				both(t, priv, func(t *testing.T, k *mech.Key, fast bool) {
					sig, err := row(t, hr.pkcsRow).Sign(k, mech.Mech{Type: hr.pkcsRow}, msg)
					require.NoError(t, err)
					sigs[boolIdx(fast)] = sig
					require.NoError(t, row(t, hr.pkcsRow).Verify(pubKey, mech.Mech{Type: hr.pkcsRow}, msg, sig))

					sig, err = row(t, hr.pssRow).Sign(k, pss, msg)
					require.NoError(t, err)
					require.NoError(t, row(t, hr.pssRow).Verify(pubKey, pss, msg, sig), "fast %v", fast)

					pt, err := row(t, ck.CKM_RSA_PKCS_OAEP).Decrypt(k, oaep, ct)
					require.NoError(t, err)
					assert.Equal(t, msg, pt)
				})
				assert.Equal(t, sigs[0], sigs[1], "PKCS #1 v1.5 signatures differ")
			})
		}
		t.Run(fmt.Sprintf("%d/RSA_PKCS-and-X_509", bits), func(t *testing.T) {
			var out [2][][]byte
			ct, err := row(t, ck.CKM_RSA_PKCS).Encrypt(pubKey, mech.Mech{Type: ck.CKM_RSA_PKCS}, msg)
			require.NoError(t, err)
			x := new(big.Int).Exp(big.NewInt(7), big.NewInt(int64(priv.E)), priv.N).FillBytes(make([]byte, priv.Size()))
			both(t, priv, func(t *testing.T, k *mech.Key, fast bool) {
				sig, err := row(t, ck.CKM_RSA_PKCS).Sign(k, mech.Mech{Type: ck.CKM_RSA_PKCS}, msg)
				require.NoError(t, err)
				pt, err := row(t, ck.CKM_RSA_PKCS).Decrypt(k, mech.Mech{Type: ck.CKM_RSA_PKCS}, ct)
				require.NoError(t, err)
				assert.Equal(t, msg, pt)
				raw, err := row(t, ck.CKM_RSA_X_509).Sign(k, mech.Mech{Type: ck.CKM_RSA_X_509}, msg)
				require.NoError(t, err)
				dec, err := row(t, ck.CKM_RSA_X_509).Decrypt(k, mech.Mech{Type: ck.CKM_RSA_X_509}, x)
				require.NoError(t, err)
				assert.Equal(t, byte(7), dec[len(dec)-1])
				out[boolIdx(fast)] = [][]byte{sig, raw, dec}
			})
			assert.Equal(t, out[0], out[1])
		})
	}
}

func boolIdx(b bool) int {
	if b {
		return 1
	}
	return 0
}

func rvOf(err error) uint64 {
	var e *hsmerr.Error
	if errors.As(err, &e) {
		return e.RV
	}
	return ^uint64(0)
}

func TestRowErrorsAgree(t *testing.T) {
	priv := rowKey(t, 2048)
	n := priv.Size()
	pub := &mech.Key{Class: ck.CKO_PUBLIC_KEY, KeyType: ck.CKK_RSA, Public: &priv.PublicKey}
	oaepL := func(label string) mech.Mech {
		return mech.Mech{Type: ck.CKM_RSA_PKCS_OAEP, Param: &mech.OAEPParams{Hash: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256, Source: ck.CKZ_DATA_SPECIFIED, Label: []byte(label)}}
	}
	oaepCT, err := row(t, ck.CKM_RSA_PKCS_OAEP).Encrypt(pub, oaepL("a"), []byte("x"))
	require.NoError(t, err)
	pkcsCT, err := row(t, ck.CKM_RSA_PKCS).Encrypt(pub, mech.Mech{Type: ck.CKM_RSA_PKCS}, []byte("x"))
	require.NoError(t, err)
	notPadded := new(big.Int).Exp(big.NewInt(99), big.NewInt(int64(priv.E)), priv.N).FillBytes(make([]byte, n))
	tooBig := priv.N.Bytes()
	pss := func(salt uint64) mech.Mech {
		return mech.Mech{Type: ck.CKM_RSA_PKCS_PSS, Param: &mech.PSSParams{Hash: ck.CKM_SHA256, MGF: ck.CKG_MGF1_SHA256, SaltLen: salt}}
	}
	cases := []struct {
		name string
		rv   uint64
		do   func(k *mech.Key) error
	}{
		{"RSA_PKCS sign, data too long", ck.CKR_DATA_LEN_RANGE, func(k *mech.Key) error {
			_, err := row(t, ck.CKM_RSA_PKCS).Sign(k, mech.Mech{Type: ck.CKM_RSA_PKCS}, make([]byte, n-10))
			return err
		}},
		{"RSA_PKCS decrypt, no PKCS #1 padding", ck.CKR_ENCRYPTED_DATA_INVALID, func(k *mech.Key) error {
			_, err := row(t, ck.CKM_RSA_PKCS).Decrypt(k, mech.Mech{Type: ck.CKM_RSA_PKCS}, notPadded)
			return err
		}},
		{"RSA_PKCS decrypt, an OAEP ciphertext", ck.CKR_ENCRYPTED_DATA_INVALID, func(k *mech.Key) error {
			_, err := row(t, ck.CKM_RSA_PKCS).Decrypt(k, mech.Mech{Type: ck.CKM_RSA_PKCS}, oaepCT)
			return err
		}},
		{"RSA_PKCS decrypt, short ciphertext", ck.CKR_ENCRYPTED_DATA_LEN_RANGE, func(k *mech.Key) error {
			_, err := row(t, ck.CKM_RSA_PKCS).Decrypt(k, mech.Mech{Type: ck.CKM_RSA_PKCS}, pkcsCT[1:])
			return err
		}},
		{"OAEP decrypt, wrong label", ck.CKR_ENCRYPTED_DATA_INVALID, func(k *mech.Key) error {
			_, err := row(t, ck.CKM_RSA_PKCS_OAEP).Decrypt(k, oaepL("b"), oaepCT)
			return err
		}},
		{"OAEP decrypt, a PKCS #1 v1.5 ciphertext", ck.CKR_ENCRYPTED_DATA_INVALID, func(k *mech.Key) error {
			_, err := row(t, ck.CKM_RSA_PKCS_OAEP).Decrypt(k, oaepL("a"), pkcsCT)
			return err
		}},
		{"OAEP decrypt, ciphertext not less than the modulus", ck.CKR_ENCRYPTED_DATA_INVALID, func(k *mech.Key) error {
			_, err := row(t, ck.CKM_RSA_PKCS_OAEP).Decrypt(k, oaepL("a"), tooBig)
			return err
		}},
		{"PSS, salt length 0", ck.CKR_MECHANISM_PARAM_INVALID, func(k *mech.Key) error {
			_, err := row(t, ck.CKM_RSA_PKCS_PSS).Sign(k, pss(0), make([]byte, 32))
			return err
		}},
		{"PSS, salt too long", ck.CKR_MECHANISM_PARAM_INVALID, func(k *mech.Key) error {
			_, err := row(t, ck.CKM_RSA_PKCS_PSS).Sign(k, pss(uint64(n)), make([]byte, 32))
			return err
		}},
		{"PSS, data not a hash", ck.CKR_DATA_LEN_RANGE, func(k *mech.Key) error {
			_, err := row(t, ck.CKM_RSA_PKCS_PSS).Sign(k, pss(32), make([]byte, 31))
			return err
		}},
		{"X_509 sign, not less than the modulus", ck.CKR_DATA_INVALID, func(k *mech.Key) error {
			_, err := row(t, ck.CKM_RSA_X_509).Sign(k, mech.Mech{Type: ck.CKM_RSA_X_509}, tooBig)
			return err
		}},
		{"X_509 sign, too long", ck.CKR_DATA_LEN_RANGE, func(k *mech.Key) error {
			_, err := row(t, ck.CKM_RSA_X_509).Sign(k, mech.Mech{Type: ck.CKM_RSA_X_509}, make([]byte, n+1))
			return err
		}},
		{"X_509 decrypt, short", ck.CKR_ENCRYPTED_DATA_LEN_RANGE, func(k *mech.Key) error {
			_, err := row(t, ck.CKM_RSA_X_509).Decrypt(k, mech.Mech{Type: ck.CKM_RSA_X_509}, make([]byte, n-1))
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mech.SetRSABackend(nil)
			goErr := c.do(newKey(priv))
			useOpenSSL()
			defer mech.SetRSABackend(nil)
			k := newKey(priv)
			// Load the key first, so that the case reaches libcrypto even
			// when it fails before the private operation.
			_, err := row(t, ck.CKM_RSA_PKCS).Sign(k, mech.Mech{Type: ck.CKM_RSA_PKCS}, []byte("x"))
			require.NoError(t, err)
			osslErr := c.do(k)
			assert.Equal(t, c.rv, rvOf(goErr), "crypto/rsa: %v", goErr)
			assert.Equal(t, c.rv, rvOf(osslErr), "libcrypto: %v", osslErr)
		})
	}
}

// badBackend signs garbage: the self-check must refuse it and leave the
// key with crypto/rsa.
type badBackend struct{ mech.RSAPrivate }

func (badBackend) SignPKCS1v15(crypto.Hash, []byte) ([]byte, error) { return make([]byte, 256), nil }

func TestBackendSelfCheck(t *testing.T) {
	priv := rowKey(t, 2048)
	var used atomic.Int64
	mech.SetRSABackend(func(k *rsa.PrivateKey) (mech.RSAPrivate, error) {
		used.Add(1)
		fast, err := ossl.LoadRSA(k)
		if err != nil {
			return nil, err
		}
		return badBackend{fast}, nil
	})
	defer mech.SetRSABackend(nil)
	k := newKey(priv)
	m := mech.Mech{Type: ck.CKM_SHA256_RSA_PKCS}
	for range 3 {
		sig, err := row(t, m.Type).Sign(k, m, []byte("m"))
		require.NoError(t, err)
		require.NoError(t, row(t, m.Type).Verify(k, m, []byte("m"), sig))
	}
	assert.Equal(t, int64(1), used.Load(), "the key is loaded once, refused, and not tried again")

	mech.SetRSABackend(func(*rsa.PrivateKey) (mech.RSAPrivate, error) { return nil, errors.ErrUnsupported })
	ct, err := rsa.EncryptOAEP(crypto.SHA1.New(), rand.Reader, &priv.PublicKey, []byte("m"), nil)
	require.NoError(t, err)
	pt, err := row(t, ck.CKM_RSA_PKCS_OAEP).Decrypt(newKey(priv), mech.Mech{Type: ck.CKM_RSA_PKCS_OAEP, Param: &mech.OAEPParams{Hash: ck.CKM_SHA_1, MGF: ck.CKG_MGF1_SHA1}}, ct)
	require.NoError(t, err)
	assert.Equal(t, []byte("m"), pt)
}
