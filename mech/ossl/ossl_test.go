//go:build cgo

package ossl

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// kat is the message the known-answer signature in testdata signs
// (made with: openssl dgst -sha256 -sign rsa2048.pem).
const kat = "openhsm known-answer test"

var keyBits = []int{2048, 3072, 4096}

var (
	keysMu sync.Mutex
	keys   = map[int]*rsa.PrivateKey{}
)

// testKey returns the fixed key of the given size from testdata.
func testKey(t testing.TB, bits int) *rsa.PrivateKey {
	t.Helper()
	keysMu.Lock()
	defer keysMu.Unlock()
	if k := keys[bits]; k != nil {
		return k
	}
	b, err := os.ReadFile(filepath.Join("testdata", fmt.Sprintf("rsa%d.pem", bits)))
	require.NoError(t, err)
	blk, _ := pem.Decode(b)
	require.NotNil(t, blk)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	require.NoError(t, err)
	keys[bits] = k.(*rsa.PrivateKey)
	return keys[bits]
}

func loadRSA(t testing.TB, bits int) (*rsa.PrivateKey, *RSAKey) {
	t.Helper()
	priv := testKey(t, bits)
	fast, err := LoadRSA(priv)
	require.NoError(t, err)
	return priv, fast
}

func digest(h crypto.Hash, msg string) []byte {
	w := h.New()
	w.Write([]byte(msg))
	return w.Sum(nil)
}

// hashes are the hashes of the table: SHA-1 and SHA-2 as the brief asks,
// SHA-3 because the mechanism table has those rows too.
var hashes = []crypto.Hash{crypto.SHA1, crypto.SHA224, crypto.SHA256, crypto.SHA384, crypto.SHA512,
	crypto.SHA3_224, crypto.SHA3_256, crypto.SHA3_384, crypto.SHA3_512}

// digestInfoPrefix is the DER DigestInfo before the digest, built here
// rather than taken from crypto/rsa.
func digestInfoPrefix(t testing.TB, h crypto.Hash) []byte {
	oids := map[crypto.Hash]string{
		crypto.SHA1: "2b0e03021a", crypto.SHA224: "608648016503040204", crypto.SHA256: "608648016503040201",
		crypto.SHA384: "608648016503040202", crypto.SHA512: "608648016503040203",
		crypto.SHA3_224: "608648016503040207", crypto.SHA3_256: "608648016503040208",
		crypto.SHA3_384: "608648016503040209", crypto.SHA3_512: "60864801650304020a",
	}
	oid, err := hex.DecodeString(oids[h])
	require.NoError(t, err)
	algID := append([]byte{0x06, byte(len(oid))}, oid...)
	algID = append(algID, 0x05, 0x00)
	algSeq := append([]byte{0x30, byte(len(algID))}, algID...)
	body := append(algSeq, 0x04, byte(h.Size()))
	return append([]byte{0x30, byte(len(body) + h.Size())}, body...)
}

func TestKnownAnswer(t *testing.T) {
	priv, fast := loadRSA(t, 2048)
	b, err := os.ReadFile(filepath.Join("testdata", "rsa2048-sha256-pkcs1.hex"))
	require.NoError(t, err)
	want, err := hex.DecodeString(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	d := digest(crypto.SHA256, kat)

	got, err := fast.SignPKCS1v15(crypto.SHA256, d)
	require.NoError(t, err)
	assert.Equal(t, want, got, "libcrypto")
	goSig, err := rsa.SignPKCS1v15(nil, priv, crypto.SHA256, d)
	require.NoError(t, err)
	assert.Equal(t, want, goSig, "crypto/rsa")
}

func TestSignTable(t *testing.T) {
	for _, bits := range keyBits {
		priv, fast := loadRSA(t, bits)
		for _, h := range hashes {
			t.Run(fmt.Sprintf("%d/%v", bits, h), func(t *testing.T) {
				d := digest(h, kat)
				want, err := rsa.SignPKCS1v15(nil, priv, h, d)
				require.NoError(t, err)

				got, err := fast.SignPKCS1v15(h, d)
				require.NoError(t, err)
				assert.Equal(t, want, got, "PKCS #1 v1.5 with the hash's DigestInfo")

				// CKM_RSA_PKCS: the caller's DigestInfo, padded and signed as it is.
				di := append(digestInfoPrefix(t, h), d...)
				got, err = fast.SignPKCS1v15(0, di)
				require.NoError(t, err)
				assert.Equal(t, want, got, "PKCS #1 v1.5 of a built DigestInfo")
				goRaw, err := rsa.SignPKCS1v15(nil, priv, 0, di)
				require.NoError(t, err)
				assert.Equal(t, want, goRaw)

				for _, salt := range []int{h.Size(), 1, 20} {
					sig, err := fast.SignPSS(h, h, salt, d)
					require.NoError(t, err)
					require.Len(t, sig, priv.Size())
					assert.NoError(t, rsa.VerifyPSS(&priv.PublicKey, h, d, sig, &rsa.PSSOptions{SaltLength: salt, Hash: h}), "Go verifies libcrypto's PSS, salt %d", salt)
					assert.Error(t, rsa.VerifyPSS(&priv.PublicKey, h, digest(h, "other"), sig, &rsa.PSSOptions{SaltLength: salt, Hash: h}))

					goPSS, err := rsa.SignPSS(rand.Reader, priv, h, d, &rsa.PSSOptions{SaltLength: salt, Hash: h})
					require.NoError(t, err)
					assert.NoError(t, fast.verifyPSS(h, h, salt, d, goPSS), "libcrypto verifies Go's PSS, salt %d", salt)
					assert.Error(t, fast.verifyPSS(h, h, salt, digest(h, "other"), goPSS))
				}
			})
		}
	}
}

func TestDecryptTable(t *testing.T) {
	for _, bits := range keyBits {
		priv, fast := loadRSA(t, bits)
		pub := &priv.PublicKey
		t.Run(fmt.Sprintf("%d/pkcs1", bits), func(t *testing.T) {
			for _, n := range []int{0, 1, 32, priv.Size() - 11} {
				msg := bytes.Repeat([]byte{0xa5}, n)
				ct, err := rsa.EncryptPKCS1v15(rand.Reader, pub, msg)
				require.NoError(t, err)
				got, err := fast.DecryptPKCS1v15(ct)
				require.NoError(t, err)
				assert.Equal(t, msg, got, "%d bytes", n)
			}
			// A ciphertext that is no PKCS #1 v1.5 padding: an error, as in
			// crypto/rsa, not a made-up plaintext.
			bad := new(big.Int).Exp(big.NewInt(12345), big.NewInt(int64(pub.E)), pub.N).FillBytes(make([]byte, priv.Size()))
			_, err := fast.DecryptPKCS1v15(bad)
			assert.ErrorIs(t, err, rsa.ErrDecryption)
			_, err = rsa.DecryptPKCS1v15(nil, priv, bad)
			assert.ErrorIs(t, err, rsa.ErrDecryption)
		})
		for _, h := range hashes {
			for _, mgf := range []crypto.Hash{h, crypto.SHA1} {
				t.Run(fmt.Sprintf("%d/oaep-%v-mgf1-%v", bits, h, mgf), func(t *testing.T) {
					label := []byte("label")
					msg := []byte(kat)
					ct, err := rsa.EncryptOAEPWithOptions(rand.Reader, pub, msg, &rsa.OAEPOptions{Hash: h, MGFHash: mgf, Label: label})
					require.NoError(t, err)
					got, err := fast.DecryptOAEP(h, mgf, label, ct)
					require.NoError(t, err)
					assert.Equal(t, msg, got)

					_, err = fast.DecryptOAEP(h, mgf, []byte("other"), ct)
					assert.ErrorIs(t, err, rsa.ErrDecryption, "wrong label")
					_, err = fast.DecryptOAEP(h, mgf, nil, ct)
					assert.ErrorIs(t, err, rsa.ErrDecryption, "no label")

					ct, err = rsa.EncryptOAEPWithOptions(rand.Reader, pub, msg, &rsa.OAEPOptions{Hash: h, MGFHash: mgf})
					require.NoError(t, err)
					got, err = fast.DecryptOAEP(h, mgf, nil, ct)
					require.NoError(t, err)
					assert.Equal(t, msg, got)
				})
			}
		}
	}
}

func TestRaw(t *testing.T) {
	for _, bits := range keyBits {
		priv, fast := loadRSA(t, bits)
		for _, c := range []*big.Int{big.NewInt(0), big.NewInt(1), big.NewInt(2), new(big.Int).Sub(priv.N, big.NewInt(1)), new(big.Int).Rsh(priv.N, 3)} {
			got, err := fast.Raw(c.FillBytes(make([]byte, priv.Size())))
			require.NoError(t, err)
			want := new(big.Int).Exp(c, priv.D, priv.N).FillBytes(make([]byte, priv.Size()))
			assert.Equal(t, want, got, "%d bits, %v", bits, c)
		}
	}
}

// TestConcurrent shares one key among goroutines, each with its own
// contexts, as the engine's key cache does.
func TestConcurrent(t *testing.T) {
	priv, fast := loadRSA(t, 2048)
	d := digest(crypto.SHA256, kat)
	want, err := rsa.SignPKCS1v15(nil, priv, crypto.SHA256, d)
	require.NoError(t, err)
	ct, err := rsa.EncryptOAEP(crypto.SHA256.New(), rand.Reader, &priv.PublicKey, []byte(kat), nil)
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			for i := range 20 {
				var err error
				switch (g + i) % 3 {
				case 0:
					var sig []byte
					if sig, err = fast.SignPKCS1v15(crypto.SHA256, d); err == nil && !bytes.Equal(sig, want) {
						err = fmt.Errorf("PKCS #1 signature differs")
					}
				case 1:
					var sig []byte
					if sig, err = fast.SignPSS(crypto.SHA256, crypto.SHA256, 32, d); err == nil {
						err = rsa.VerifyPSS(&priv.PublicKey, crypto.SHA256, d, sig, &rsa.PSSOptions{SaltLength: 32})
					}
				case 2:
					var pt []byte
					if pt, err = fast.DecryptOAEP(crypto.SHA256, crypto.SHA256, nil, ct); err == nil && string(pt) != kat {
						err = fmt.Errorf("OAEP plaintext differs")
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
}
