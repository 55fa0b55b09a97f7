//go:build cgo

package ossl

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var ecCurves = []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()}

func ecKey(t testing.TB, c elliptic.Curve) (*ecdsa.PrivateKey, *ECKey) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(c, rand.Reader)
	require.NoError(t, err)
	fast, err := LoadEC(priv)
	require.NoError(t, err)
	return priv, fast
}

// goVerify checks a PKCS #11 r||s signature with crypto/ecdsa.
func goVerify(pub *ecdsa.PublicKey, digest, sig []byte) bool {
	n := (pub.Curve.Params().BitSize + 7) / 8
	if len(sig) != 2*n {
		return false
	}
	return ecdsa.Verify(pub, digest, new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:]))
}

// TestECSignVerifiesWithGo signs digests of several lengths, shorter and
// longer than the order (so that both truncate), on each curve: every
// libcrypto signature has the PKCS #11 length and verifies with Go, and
// every Go signature verifies in libcrypto.
func TestECSignVerifiesWithGo(t *testing.T) {
	for _, c := range ecCurves {
		priv, fast := ecKey(t, c)
		n := (c.Params().BitSize + 7) / 8
		lengths := []int{0, 1, 20, 32, 48, 64, n, 100}
		for _, l := range lengths {
			t.Run(fmt.Sprintf("%s/%d", c.Params().Name, l), func(t *testing.T) {
				// A digest with its top bit set, so that a wrong
				// truncation changes the number signed.
				h := sha512.Sum512([]byte(fmt.Sprintf("digest %d", l)))
				d := make([]byte, l)
				for i := range d {
					d[i] = h[i%len(h)]
				}
				if l > 0 {
					d[0] |= 0x80
				}
				for range 4 {
					sig, err := fast.Sign(d)
					require.NoError(t, err)
					require.Len(t, sig, 2*n)
					require.True(t, goVerify(&priv.PublicKey, d, sig), "libcrypto's signature does not verify with Go")
					other := append([]byte{}, d...)
					if l > 0 {
						other[0] ^= 0x40
						assert.False(t, goVerify(&priv.PublicKey, other, sig), "the signature verifies for another digest")
					}

					goSig, err := ecdsa.SignASN1(rand.Reader, priv, d)
					require.NoError(t, err)
					require.NoError(t, fast.verifyASN1(d, goSig), "Go's signature does not verify in libcrypto")
				}
			})
		}
	}
}

// TestECTruncationMatchesGo: a 64-byte digest on P-256 is the same
// signature input as its first 32 bytes, in libcrypto as in Go.
func TestECTruncationMatchesGo(t *testing.T) {
	priv, fast := ecKey(t, elliptic.P256())
	d := sha512.Sum512([]byte("truncation"))
	sig, err := fast.Sign(d[:])
	require.NoError(t, err)
	assert.True(t, goVerify(&priv.PublicKey, d[:32], sig))
	assert.True(t, goVerify(&priv.PublicKey, d[:], sig))
}

func TestECOtherCurvesUnsupported(t *testing.T) {
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	require.NoError(t, err)
	_, err = LoadEC(p224)
	assert.True(t, errors.Is(err, errors.ErrUnsupported), "%v", err)
	_, err = LoadEC(&ecdsa.PrivateKey{PublicKey: ecdsa.PublicKey{Curve: secp256k1.S256()}, D: big.NewInt(1)})
	assert.True(t, errors.Is(err, errors.ErrUnsupported), "%v", err)
}

func TestECConcurrent(t *testing.T) {
	priv, fast := ecKey(t, elliptic.P256())
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			for i := range 40 {
				d := sha512.Sum512_256([]byte{byte(g), byte(i)})
				sig, err := fast.Sign(d[:])
				if err != nil {
					errs <- err
					return
				}
				if !goVerify(&priv.PublicKey, d[:], sig) {
					errs <- errors.New("a concurrent signature does not verify")
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func TestFixed(t *testing.T) {
	cases := []struct {
		v    []byte
		want []byte // nil: refused
	}{
		{[]byte{1}, []byte{0, 0, 1}},
		{[]byte{0, 0x80, 1}, []byte{0, 0x80, 1}},
		{[]byte{0xff, 1, 2}, []byte{0xff, 1, 2}},
		{[]byte{0, 0, 0, 0, 5}, []byte{0, 0, 5}},
		{[]byte{1, 2, 3, 4}, nil},
		{[]byte{0}, nil},
		{nil, nil},
	}
	for _, c := range cases {
		dst := make([]byte, 3)
		ok := fixed(dst, c.v)
		assert.Equal(t, c.want != nil, ok, "%x", c.v)
		if ok {
			assert.Equal(t, c.want, dst, "%x", c.v)
		}
	}
}
