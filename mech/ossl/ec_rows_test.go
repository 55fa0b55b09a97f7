//go:build cgo

package ossl_test

import (
	"crypto/ecdsa"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/mech/ossl"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The ECDSA rows, as the engine calls them, once on crypto/ecdsa and once
// through libcrypto.

// ecRowKey makes a key pair with the EC key generation row.
func ecRowKey(t *testing.T, curve string) *ecdsa.PrivateKey {
	t.Helper()
	c, ok := mech.CurveByName(curve)
	require.True(t, ok, curve)
	s, err := row(t, ck.CKM_EC_KEY_PAIR_GEN).GenerateKeyPair(rand.Reader, mech.KeyPairParams{ECParams: c.Params})
	require.NoError(t, err)
	return s.(*ecdsa.PrivateKey)
}

func newECKey(priv *ecdsa.PrivateKey) *mech.Key {
	return &mech.Key{Class: ck.CKO_PRIVATE_KEY, KeyType: ck.CKK_EC, Private: priv, Public: &priv.PublicKey}
}

var ecLoads atomic.Int64

func useOpenSSLEC() {
	mech.SetECBackend(func(k *ecdsa.PrivateKey) (mech.ECPrivate, error) {
		fast, err := ossl.LoadEC(k)
		if err != nil {
			return nil, err
		}
		ecLoads.Add(1)
		return fast, nil
	})
}

// bothEC runs f with a fresh key on crypto/ecdsa (fast false) and on
// libcrypto; loaded says whether libcrypto must have loaded the key.
func bothEC(t *testing.T, priv *ecdsa.PrivateKey, loaded bool, f func(t *testing.T, k *mech.Key, fast bool)) {
	t.Helper()
	mech.SetECBackend(nil)
	f(t, newECKey(priv), false)
	useOpenSSLEC()
	defer mech.SetECBackend(nil)
	before := ecLoads.Load()
	f(t, newECKey(priv), true)
	if loaded {
		assert.Greater(t, ecLoads.Load(), before, "libcrypto was not used")
	} else {
		assert.Equal(t, before, ecLoads.Load(), "libcrypto loaded a key it should refuse")
	}
}

var ecdsaRows = []uint64{ck.CKM_ECDSA, ck.CKM_ECDSA_SHA1, ck.CKM_ECDSA_SHA224, ck.CKM_ECDSA_SHA256,
	ck.CKM_ECDSA_SHA384, ck.CKM_ECDSA_SHA512, ck.CKM_ECDSA_SHA3_256, ck.CKM_ECDSA_SHA3_512}

func TestECRowsAgree(t *testing.T) {
	curves := []struct {
		name   string
		byLibc bool // P-224 and secp256k1 stay in Go
	}{{"P-256", true}, {"P-384", true}, {"P-521", true}, {"P-224", false}, {"secp256k1", false}}
	for _, c := range curves {
		priv := ecRowKey(t, c.name)
		pub := &mech.Key{Class: ck.CKO_PUBLIC_KEY, KeyType: ck.CKK_EC, Public: &priv.PublicKey}
		n := mech.KeyBits(pub)
		for _, typ := range ecdsaRows {
			t.Run(fmt.Sprintf("%s/%s", c.name, ck.MechName(typ)), func(t *testing.T) {
				m := mech.Mech{Type: typ}
				bothEC(t, priv, c.byLibc, func(t *testing.T, k *mech.Key, fast bool) {
					for _, l := range []int{0, 20, 32, 48, 64, 66, 200} {
						data := make([]byte, l)
						_, _ = rand.Read(data)
						sig, err := row(t, typ).Sign(k, m, data)
						require.NoError(t, err)
						require.Len(t, sig, 2*((n+7)/8))
						require.NoError(t, row(t, typ).Verify(pub, m, data, sig), "fast %v, %d bytes", fast, l)
						if l > 0 {
							data[0] ^= 1
							assert.Equal(t, uint64(ck.CKR_SIGNATURE_INVALID), rvOf(row(t, typ).Verify(pub, m, data, sig)))
						}
					}
				})
			})
		}
	}
}

func TestECRowErrorsAgree(t *testing.T) {
	priv := ecRowKey(t, "P-256")
	rsaPriv := rowKey(t, 2048)
	m := mech.Mech{Type: ck.CKM_ECDSA_SHA256}
	cases := []struct {
		name string
		rv   uint64
		do   func(k *mech.Key) error
	}{
		{"an RSA key", ck.CKR_KEY_TYPE_INCONSISTENT, func(*mech.Key) error {
			_, err := row(t, m.Type).Sign(newKey(rsaPriv), m, []byte("m"))
			return err
		}},
		{"a public key", ck.CKR_KEY_TYPE_INCONSISTENT, func(k *mech.Key) error {
			_, err := row(t, m.Type).Sign(&mech.Key{Class: ck.CKO_PUBLIC_KEY, KeyType: ck.CKK_EC, Public: k.Public}, m, []byte("m"))
			return err
		}},
		{"no key", ck.CKR_KEY_TYPE_INCONSISTENT, func(*mech.Key) error {
			_, err := row(t, m.Type).Sign(nil, m, []byte("m"))
			return err
		}},
		{"verify, short signature", ck.CKR_SIGNATURE_LEN_RANGE, func(k *mech.Key) error {
			sig, err := row(t, m.Type).Sign(k, m, []byte("m"))
			require.NoError(t, err)
			return row(t, m.Type).Verify(k, m, []byte("m"), sig[1:])
		}},
		{"verify, other data", ck.CKR_SIGNATURE_INVALID, func(k *mech.Key) error {
			sig, err := row(t, m.Type).Sign(k, m, []byte("m"))
			require.NoError(t, err)
			return row(t, m.Type).Verify(k, m, []byte("n"), sig)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mech.SetECBackend(nil)
			goErr := c.do(newECKey(priv))
			useOpenSSLEC()
			defer mech.SetECBackend(nil)
			k := newECKey(priv)
			before := ecLoads.Load()
			_, err := row(t, m.Type).Sign(k, m, []byte("x")) // load the key first
			require.NoError(t, err)
			require.Greater(t, ecLoads.Load(), before)
			osslErr := c.do(k)
			assert.Equal(t, c.rv, rvOf(goErr), "crypto/ecdsa: %v", goErr)
			assert.Equal(t, c.rv, rvOf(osslErr), "libcrypto: %v", osslErr)
		})
	}
}

// TestECBackendSelfCheck: a backend key that is not the key (loaded from
// another private key) or that the backend refuses is never used; the row
// signs with crypto/ecdsa and the key is loaded only once.
func TestECBackendSelfCheck(t *testing.T) {
	priv := ecRowKey(t, "P-256")
	other := ecRowKey(t, "P-256")
	m := mech.Mech{Type: ck.CKM_ECDSA_SHA256}
	backends := map[string]mech.ECBackend{
		"another key": func(*ecdsa.PrivateKey) (mech.ECPrivate, error) { return ossl.LoadEC(other) },
		"refused":     func(*ecdsa.PrivateKey) (mech.ECPrivate, error) { return nil, errors.ErrUnsupported },
		"nil key":     func(*ecdsa.PrivateKey) (mech.ECPrivate, error) { return nil, nil },
	}
	for name, b := range backends {
		t.Run(name, func(t *testing.T) {
			var used atomic.Int64
			mech.SetECBackend(func(k *ecdsa.PrivateKey) (mech.ECPrivate, error) {
				used.Add(1)
				return b(k)
			})
			defer mech.SetECBackend(nil)
			k := newECKey(priv)
			for range 3 {
				sig, err := row(t, m.Type).Sign(k, m, []byte("m"))
				require.NoError(t, err)
				require.NoError(t, row(t, m.Type).Verify(k, m, []byte("m"), sig))
			}
			assert.Equal(t, int64(1), used.Load(), "the key is loaded once, refused, and not tried again")
		})
	}
}

// TestECRowConcurrent: many goroutines sign on one key, the first uses
// racing to load it.
func TestECRowConcurrent(t *testing.T) {
	priv := ecRowKey(t, "P-256")
	useOpenSSLEC()
	defer mech.SetECBackend(nil)
	k := newECKey(priv)
	m := mech.Mech{Type: ck.CKM_ECDSA_SHA256}
	before := ecLoads.Load()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for g := range 16 {
		wg.Go(func() {
			for i := range 30 {
				data := []byte{byte(g), byte(i)}
				sig, err := row(t, m.Type).Sign(k, m, data)
				if err != nil || row(t, m.Type).Verify(k, m, data, sig) != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	assert.Zero(t, failed.Load())
	assert.LessOrEqual(t, ecLoads.Load()-before, int64(16), "loaded more than once per racing first use")
	assert.Greater(t, ecLoads.Load(), before)
}
