package xks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRoundTrip: what Encrypt returns, Decrypt turns back into the
// plaintext, with and without AAD, at the size limits.
func TestRoundTrip(t *testing.T) {
	p := newProxy(t)
	for _, c := range []struct {
		name    string
		pt, aad []byte
	}{
		{"no AAD", []byte("Hello World!"), nil},
		{"AAD", []byte("Hello World!"), []byte("project=nile,department=marketing")},
		{"empty plaintext", []byte{}, []byte("a")},
		{"4300 and 8192 bytes", repeat(4300), bytes.Repeat([]byte{0xa5}, 8192)},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := p.encrypt("key-1", c.pt, c.aad)
			a := p.post("/kms/xks/v1/keys/key-1/decrypt", decReq(e.Ciphertext, e, c.aad))
			require.Equal(t, 200, a.status, string(a.body))
			var d DecryptResponse
			require.NoError(t, json.Unmarshal(a.body, &d))
			assert.True(t, bytes.Equal(c.pt, d.Plaintext))
		})
	}
}

// TestTamper: a changed AAD, IV, tag, ciphertext or ciphertextMetadata,
// metadata moved between ciphertexts or keys, and the spec's length-
// confusion case are all InvalidCiphertextException.
func TestTamper(t *testing.T) {
	p := newProxy(t)
	aad := []byte("context=a")
	e := p.encrypt("key-1", []byte("the data key, 32 bytes long ...."), aad)
	other := p.encrypt("key-1", []byte("the data key, 32 bytes long ...."), aad)
	flip := func(b []byte, i int) []byte { c := bytes.Clone(b); c[i] ^= 1; return c }
	cases := []struct {
		name string
		edit func(*DecryptRequest)
		path string
	}{
		{"AAD changed", func(d *DecryptRequest) { d.AdditionalAuthenticatedData = []byte("context=b") }, ""},
		{"AAD dropped", func(d *DecryptRequest) { d.AdditionalAuthenticatedData = nil }, ""},
		{"AAD added to", func(d *DecryptRequest) { d.AdditionalAuthenticatedData = append(bytes.Clone(aad), 0) }, ""},
		{"IV bit", func(d *DecryptRequest) { d.InitializationVector = flip(d.InitializationVector, 11) }, ""},
		{"IV padded to 16", func(d *DecryptRequest) {
			d.InitializationVector = append(bytes.Clone(d.InitializationVector), 0, 0, 0, 0)
		}, ""},
		{"tag bit", func(d *DecryptRequest) { d.AuthenticationTag = flip(d.AuthenticationTag, 0) }, ""},
		{"ciphertext bit", func(d *DecryptRequest) { c := flip(*d.Ciphertext, 5); d.Ciphertext = &c }, ""},
		{"ciphertext cut", func(d *DecryptRequest) { c := (*d.Ciphertext)[:31]; d.Ciphertext = &c }, ""},
		{"metadata format byte", func(d *DecryptRequest) { d.CiphertextMetadata = flip(d.CiphertextMetadata, 0) }, ""},
		{"metadata key version", func(d *DecryptRequest) { d.CiphertextMetadata = flip(d.CiphertextMetadata, 4) }, ""},
		{"metadata MAC", func(d *DecryptRequest) { d.CiphertextMetadata = flip(d.CiphertextMetadata, 19) }, ""},
		{"metadata cut", func(d *DecryptRequest) { d.CiphertextMetadata = d.CiphertextMetadata[:19] }, ""},
		{"metadata of another ciphertext", func(d *DecryptRequest) { d.CiphertextMetadata = other.CiphertextMetadata }, ""},
		{"metadata passed as AAD, none as metadata", func(d *DecryptRequest) {
			d.AdditionalAuthenticatedData = append(bytes.Clone(aad), d.CiphertextMetadata...)
			d.CiphertextMetadata = nil
		}, ""},
		{"another key", func(*DecryptRequest) {}, "/kms/xks/v1/keys/key-2/decrypt"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := decReq(e.Ciphertext, e, aad)
			c.edit(&d)
			path := c.path
			if path == "" {
				path = "/kms/xks/v1/keys/key-1/decrypt"
			}
			a := p.post(path, d)
			require.Equal(t, 400, a.status, string(a.body))
			assert.Equal(t, InvalidCiphertextException, a.errorName())
		})
	}
	// The untouched request still works after all that.
	a := p.post("/kms/xks/v1/keys/key-1/decrypt", decReq(e.Ciphertext, e, aad))
	require.Equal(t, 200, a.status)
}

// TestKeyVersions: the metadata carries the key version the HSM used;
// ciphertext of every version stays decryptable after a rotation, and a
// version the key does not have is InvalidCiphertextException.
func TestKeyVersions(t *testing.T) {
	p := newProxy(t)
	version := func(e EncryptResponse) uint32 { return binary.BigEndian.Uint32(e.CiphertextMetadata[1:5]) }
	e2 := p.encrypt("key-1", []byte("under two"), nil)
	assert.Equal(t, uint32(2), version(e2))
	p.b.rotate("key-1")
	e3 := p.encrypt("key-1", []byte("under three"), nil)
	assert.Equal(t, uint32(3), version(e3))
	assert.Equal(t, byte(metadataFormat), e3.CiphertextMetadata[0])

	// Version 1, made directly through the Backend (as an older proxy
	// would have), with a 16-byte IV, which the spec also allows.
	iv := bytes.Repeat([]byte{7}, 16)
	pt := []byte("under one, 16-byte IV")
	b := p.b
	b.mu.Lock()
	ct1, tag1, _, err := func() ([]byte, []byte, uint32, error) {
		out := gcmOf(b.keys["key-1"].versions[0], 16).Seal(nil, iv, pt, gcmAAD(nil))
		return out[:len(pt)], out[len(pt):], 1, nil
	}()
	b.mu.Unlock()
	require.NoError(t, err)
	e1 := EncryptResponse{Ciphertext: ct1, InitializationVector: iv, AuthenticationTag: tag1,
		CiphertextMetadata: sealMetadata(testMetadataKey, "key-1", 1, iv, tag1)}

	for _, c := range []struct {
		e  EncryptResponse
		pt string
	}{{e1, string(pt)}, {e2, "under two"}, {e3, "under three"}} {
		a := p.post("/kms/xks/v1/keys/key-1/decrypt", decReq(c.e.Ciphertext, c.e, nil))
		require.Equal(t, 200, a.status, string(a.body))
		var d DecryptResponse
		require.NoError(t, json.Unmarshal(a.body, &d))
		assert.Equal(t, c.pt, string(d.Plaintext))
	}

	// A correctly MACed metadata naming version 9, which does not exist.
	forged := e3
	forged.CiphertextMetadata = sealMetadata(testMetadataKey, "key-1", 9, e3.InitializationVector, e3.AuthenticationTag)
	a := p.post("/kms/xks/v1/keys/key-1/decrypt", decReq(forged.Ciphertext, forged, nil))
	assert.Equal(t, InvalidCiphertextException, a.errorName())

	// Another MetadataKey (another proxy fleet, same HSM keys) cannot open
	// this metadata.
	q := newProxy(t, func(c *Config) { c.MetadataKey = bytes.Repeat([]byte{1}, MetadataKeySize); c.Backend = p.b })
	a = q.post("/kms/xks/v1/keys/key-1/decrypt", decReq(e3.Ciphertext, e3, nil))
	assert.Equal(t, InvalidCiphertextException, a.errorName())
}

// TestCDIVVector: the spec's Appendix C example.
func TestCDIVVector(t *testing.T) {
	h := func(s string) []byte {
		b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
		require.NoError(t, err)
		return b
	}
	got := cdiv([]byte("project=nile,department=marketing"), []byte("key_version=1"),
		h("1c ca e5 47 0f 39 70 02 54 77 90 31"), h("82 1c 64 2b 5b 71 78 33 67 de af 18"),
		h("bc 1c 4d da 77 07 d6 81 24 47 c5 95 5e 99 b2 61"))
	assert.Equal(t, "qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc=", base64.StdEncoding.EncodeToString(got))
}

// TestCDIV: asked for, the CDIV is SHA-256 over the AAD and the answer's
// parts, and the proxy checked the ciphertext by decrypting it; a Backend
// that cannot decrypt what it made fails the Encrypt.
func TestCDIV(t *testing.T) {
	p := newProxy(t)
	aad := []byte("project=nile")
	for _, withAAD := range []bool{true, false} {
		r := encReq([]byte("Hello World!"), nil)
		if withAAD {
			r.AdditionalAuthenticatedData = aad
		}
		r.CiphertextDataIntegrityValueAlgorithm = "SHA_256"
		before := p.b.calls
		a := p.post("/kms/xks/v1/keys/key-1/encrypt", r)
		require.Equal(t, 200, a.status, string(a.body))
		assert.Equal(t, 2, p.b.calls-before, "an encryption and its check decryption")
		var e EncryptResponse
		require.NoError(t, json.Unmarshal(a.body, &e))
		var in []byte
		in = append(in, r.AdditionalAuthenticatedData...)
		in = append(in, e.CiphertextMetadata...)
		in = append(in, e.InitializationVector...)
		in = append(in, e.Ciphertext...)
		in = append(in, e.AuthenticationTag...)
		want := sha256.Sum256(in)
		assert.Equal(t, want[:], e.CiphertextDataIntegrityValue)
	}

	broken := &corruptingBackend{memBackend: newMemBackend()}
	q := newProxy(t, func(c *Config) { c.Backend = broken })
	r := encReq([]byte("Hello World!"), aad)
	r.CiphertextDataIntegrityValueAlgorithm = "SHA_256"
	a := q.post("/kms/xks/v1/keys/key-1/encrypt", r)
	assert.Equal(t, 500, a.status)
	assert.Equal(t, InternalException, a.errorName())
	// Without a CDIV there is no check decryption to catch it.
	r.CiphertextDataIntegrityValueAlgorithm = ""
	assert.Equal(t, 200, q.post("/kms/xks/v1/keys/key-1/encrypt", r).status)
}

// corruptingBackend flips a ciphertext bit after encrypting.
type corruptingBackend struct{ *memBackend }

func (c *corruptingBackend) Encrypt(ctx context.Context, keyID string, pt, aad, iv []byte) ([]byte, []byte, uint32, error) {
	ct, tag, v, err := c.memBackend.Encrypt(ctx, keyID, pt, aad, iv)
	if err == nil && len(ct) > 0 {
		ct[0] ^= 0x80
	}
	return ct, tag, v, err
}

// TestGCMAADFraming: the AAD the Backend sees is the spec's framing.
func TestGCMAADFraming(t *testing.T) {
	assert.Equal(t, []byte{0, 0, 0}, gcmAAD(nil))
	assert.Equal(t, []byte{0, 3, 'a', 'b', 'c', 0}, gcmAAD([]byte("abc")))
	big := gcmAAD(make([]byte, 8192))
	assert.Equal(t, []byte{0x20, 0x00}, big[:2])
	assert.Len(t, big, 8192+3)
}

// TestIVsAreFresh: every Encrypt gets its own random 12-byte IV.
func TestIVsAreFresh(t *testing.T) {
	p := newProxy(t)
	seen := map[string]bool{}
	for range 50 {
		e := p.encrypt("key-1", []byte("same"), nil)
		require.Len(t, e.InitializationVector, 12)
		require.False(t, seen[string(e.InitializationVector)])
		seen[string(e.InitializationVector)] = true
	}
}
