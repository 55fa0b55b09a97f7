package xks

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/internal/enginetest"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
)

// The proxy over the real HSM: one node's engine on a real store
// (internal/enginetest), its crypto user's AES keys found by label, through
// the real handler and SigV4.
func TestHSMBackend(t *testing.T) {
	ctx := context.Background()
	e := enginetest.Start(t).Engine
	co := engine.Caller{User: "admin", Role: object.RoleCO, Session: 1}
	for _, u := range []string{"xks", "other"} {
		require.NoError(t, e.CreateUser(ctx, co, u, object.RoleCU, u+"-user-password-1"))
	}
	gen := func(user, label, version string) uint64 {
		tmpl := object.Template{
			{Type: ck.CKA_TOKEN, Value: object.EncodeBool(true)},
			{Type: ck.CKA_LABEL, Value: []byte(label)},
			{Type: ck.CKA_VALUE_LEN, Value: object.EncodeUlong(32)},
			{Type: ck.CKA_ENCRYPT, Value: object.EncodeBool(true)},
			{Type: ck.CKA_DECRYPT, Value: object.EncodeBool(true)},
			{Type: ck.CKA_EXTRACTABLE, Value: object.EncodeBool(false)},
		}
		if version != "" {
			tmpl = append(tmpl, object.Attribute{Type: ck.CKA_ID, Value: []byte(version)})
		}
		id, err := e.GenerateKey(ctx, engine.Caller{User: user, Role: object.RoleCU, Session: 7}, mech.Mech{Type: ck.CKM_AES_KEY_GEN}, tmpl)
		require.NoError(t, err)
		return id
	}
	gen("xks", "ext-1", "")
	gen("other", "theirs", "")
	p := newProxy(t, func(c *Config) { c.Backend = &HSMBackend{Engine: e, User: "xks"} })

	md := p.post("/kms/xks/v1/keys/ext-1/metadata", MetadataRequest{RequestMetadata: cryptoMD("DescribeKey")})
	require.Equal(t, http.StatusOK, md.status, string(md.body))
	var m MetadataResponse
	require.NoError(t, json.Unmarshal(md.body, &m))
	assert.Equal(t, MetadataResponse{KeySpec: "AES_256", KeyUsage: []string{"ENCRYPT", "DECRYPT"}, KeyStatus: KeyEnabled}, m)

	aad := []byte("context")
	enc := p.encrypt("ext-1", []byte("hello xks"), aad)
	dec := p.post("/kms/xks/v1/keys/ext-1/decrypt", decReq(enc.Ciphertext, enc, aad))
	require.Equal(t, http.StatusOK, dec.status, string(dec.body))
	var d DecryptResponse
	require.NoError(t, json.Unmarshal(dec.body, &d))
	assert.Equal(t, []byte("hello xks"), d.Plaintext)

	// Another AAD, or a flipped tag bit, is refused by the HSM.
	bad := p.post("/kms/xks/v1/keys/ext-1/decrypt", decReq(enc.Ciphertext, enc, []byte("other")))
	assert.Equal(t, InvalidCiphertextException, bad.errorName(), string(bad.body))

	// A second version is used for new ciphertexts; the first still
	// decrypts its own.
	gen("xks", "ext-1", "2")
	enc2 := p.encrypt("ext-1", []byte("v2"), nil)
	assert.NotEqual(t, enc.CiphertextMetadata, enc2.CiphertextMetadata)
	again := p.post("/kms/xks/v1/keys/ext-1/decrypt", decReq(enc.Ciphertext, enc, aad))
	assert.Equal(t, http.StatusOK, again.status, string(again.body))

	// Another user's key, or none, is not found; the proxy's user alone
	// is served.
	for _, k := range []string{"theirs", "none"} {
		a := p.post("/kms/xks/v1/keys/"+k+"/metadata", MetadataRequest{RequestMetadata: cryptoMD("DescribeKey")})
		assert.Equal(t, KeyNotFoundException, a.errorName(), k)
	}

	h := (&HSMBackend{Engine: e, User: "xks"}).Health(ctx)
	require.Len(t, h, 1)
	assert.Equal(t, HealthActive, h[0].Status)
}
