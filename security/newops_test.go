package security

import (
	"bytes"
	"crypto/mlkem"
	"crypto/sha256"
	"encoding"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
)

// newopsParty is a one-node cluster with its crypto user (cu, whose token
// is token), its officer (co), a second crypto user cu2 (password cu2PW)
// and a public session on cu's token, each logged in on its own client.
type newopsParty struct {
	c            *testcluster.Cluster
	token, cu2PW string
	cu, co, cu2  *client.Client
	pub          *client.Client
}

func newopsStart(t *testing.T) *newopsParty {
	c := testcluster.StartOpts(t, 1, testcluster.Options{NoKMS: true})
	p := &newopsParty{c: c, token: c.Env["P11_TOKEN_LABEL"], cu2PW: objectsUser(t, c, "cu2")}
	p.cu = pinned(t, c, 1, p.token, secret(t, c, "cu.password"))
	p.co = pinned(t, c, 1, "admin", secret(t, c, "co.password"))
	p.cu2 = pinned(t, c, 1, "cu2", p.cu2PW)
	p.pub = pinned(t, c, 1, "", "")
	require.NoError(t, p.pub.OpenPublic(ctx, p.token))
	return p
}

// TestAttackNewopsWipeToken: a crypto user's password, or a client
// certificate alone in a public session, tries C_InitToken's wipe
// (WipeToken) on its own token and on another user's. Each is refused
// before the log (CKR_USER_NOT_LOGGED_IN), and the token's keys still
// work. An officer's wipe of an officer (no token) is refused too; only
// then does the officer's wipe of the crypto user go through, and the
// wiped user still logs in, with no objects. (Apply's own re-check of a
// forged command: state TestApplyWipeToken.)
func TestAttackNewopsWipeToken(t *testing.T) {
	p := newopsStart(t)
	c, token, cu, co, cu2, pub := p.c, p.token, p.cu, p.co, p.cu2, p.pub
	aes := func(u *client.Client) uint64 {
		id, err := u.GenerateKey(ctx, mech.Mech{Type: ck.CKM_AES_KEY_GEN}, object.Template{
			objectsUlong(ck.CKA_VALUE_LEN, 32), objectsBool(ck.CKA_TOKEN, true), objectsBool(ck.CKA_ENCRYPT, true)})
		require.NoError(t, err)
		return id
	}
	key, key2 := aes(cu), aes(cu2)

	publicRV(t, ck.CKR_USER_NOT_LOGGED_IN, cu.WipeToken(ctx, token), "a crypto user wipes its own token")
	publicRV(t, ck.CKR_USER_NOT_LOGGED_IN, cu.WipeToken(ctx, "cu2"), "a crypto user wipes another's token")
	publicRV(t, ck.CKR_USER_NOT_LOGGED_IN, pub.WipeToken(ctx, token), "a public session wipes its token")
	publicRV(t, ck.CKR_ACTION_PROHIBITED, co.WipeToken(ctx, "admin"), "an officer has no token")
	_, err := cu.Encrypt(ctx, key, objectsCBC(), make([]byte, 16))
	require.NoError(t, err, "the token's key after the refused wipes")
	_, err = cu2.Encrypt(ctx, key2, objectsCBC(), make([]byte, 16))
	require.NoError(t, err, "cu2's key after the refused wipes")

	require.NoError(t, co.WipeToken(ctx, "cu2"))
	_, err = cu2.Encrypt(ctx, key2, objectsCBC(), make([]byte, 16))
	assert.Error(t, err, "a wiped key still works")
	again := pinned(t, c, 1, "cu2", p.cu2PW)
	left, err := again.FindObjects(ctx, nil, 0)
	require.NoError(t, err)
	assert.Empty(t, left, "objects left after the wipe")
	_, err = cu.Encrypt(ctx, key, objectsCBC(), make([]byte, 16))
	require.NoError(t, err, "another token's key after the wipe")
}

// TestAttackNewopsKEM: key encapsulation with keys that are not the
// caller's or not for it: another user's ML-KEM key (public and private
// half), the wrong half, an EC key and an ML-DSA key under CKM_ML_KEM, and a
// crypto officer. Each is refused and makes no object; the owner's own
// round trip still works.
func TestAttackNewopsKEM(t *testing.T) {
	p := newopsStart(t)
	cu, co, cu2 := p.cu, p.co, p.cu2
	tok := objectsBool(ck.CKA_TOKEN, true)
	p256 := []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}
	pair := func(m mech.Mech, pubT, privT object.Template) (uint64, uint64) {
		pubID, privID, err := cu.GenerateKeyPair(ctx, m, pubT, privT)
		require.NoError(t, err, ck.MechName(m.Type))
		return pubID, privID
	}
	kemPub, kemPriv := pair(mech.Mech{Type: ck.CKM_ML_KEM_KEY_PAIR_GEN},
		object.Template{tok, objectsUlong(ck.CKA_PARAMETER_SET, ck.CKP_ML_KEM_768)}, object.Template{tok})
	dsaPub, dsaPriv := pair(mech.Mech{Type: ck.CKM_ML_DSA_KEY_PAIR_GEN},
		object.Template{tok, objectsUlong(ck.CKA_PARAMETER_SET, ck.CKP_ML_DSA_65)}, object.Template{tok})
	ecPub, ecPriv := pair(mech.Mech{Type: ck.CKM_EC_KEY_PAIR_GEN},
		object.Template{tok, {Type: ck.CKA_EC_PARAMS, Value: p256}}, object.Template{tok})
	vals, err := cu.GetAttributes(ctx, kemPub, []uint64{ck.CKA_VALUE})
	require.NoError(t, err)
	ek, err := mlkem.NewEncapsulationKey768(vals[0].Value)
	require.NoError(t, err)
	_, ct := ek.Encapsulate()
	kem := mech.Mech{Type: ck.CKM_ML_KEM}
	secretT := object.Template{objectsBool(ck.CKA_TOKEN, true)}
	count := func(who string) []uint64 {
		var ids []uint64
		for _, u := range []*client.Client{cu, cu2} {
			got, err := u.FindObjects(ctx, nil, 0)
			require.NoError(t, err, who)
			ids = append(ids, got...)
		}
		slices.Sort(ids)
		return ids
	}
	before := count("before")

	// Each row: who calls, with which key, and the refusal.
	encap := []struct {
		name string
		as   *client.Client
		key  uint64
		rv   uint64
	}{
		{"another user's public key", cu2, kemPub, ck.CKR_KEY_HANDLE_INVALID},
		{"a crypto officer", co, kemPub, ck.CKR_USER_NOT_LOGGED_IN},
		{"the private half", cu, kemPriv, ck.CKR_KEY_FUNCTION_NOT_PERMITTED},
		{"an ML-DSA public key", cu, dsaPub, ck.CKR_KEY_FUNCTION_NOT_PERMITTED},
		{"an EC public key", cu, ecPub, ck.CKR_KEY_FUNCTION_NOT_PERMITTED},
	}
	for _, e := range encap {
		ct, id, err := e.as.EncapsulateKey(ctx, kem, e.key, secretT)
		publicRV(t, e.rv, err, "encapsulate with "+e.name)
		assert.Empty(t, ct, e.name)
		assert.Zero(t, id, e.name)
	}
	decap := []struct {
		name string
		as   *client.Client
		key  uint64
		rv   uint64
	}{
		{"another user's private key", cu2, kemPriv, ck.CKR_KEY_HANDLE_INVALID},
		{"a crypto officer", co, kemPriv, ck.CKR_USER_NOT_LOGGED_IN},
		{"the public half", cu, kemPub, ck.CKR_KEY_FUNCTION_NOT_PERMITTED},
		{"an ML-DSA private key", cu, dsaPriv, ck.CKR_KEY_FUNCTION_NOT_PERMITTED},
		{"an EC private key", cu, ecPriv, ck.CKR_KEY_FUNCTION_NOT_PERMITTED},
	}
	for _, d := range decap {
		id, err := d.as.DecapsulateKey(ctx, kem, d.key, ct, secretT)
		publicRV(t, d.rv, err, "decapsulate with "+d.name)
		assert.Zero(t, id, d.name)
	}
	// The flag alone does not make a key a KEM key: an EC pair cannot
	// even be made with CKA_ENCAPSULATE or CKA_DECAPSULATE.
	_, _, err = cu.GenerateKeyPair(ctx, mech.Mech{Type: ck.CKM_EC_KEY_PAIR_GEN},
		object.Template{tok, objectsBool(ck.CKA_ENCAPSULATE, true), {Type: ck.CKA_EC_PARAMS, Value: p256}}, object.Template{tok})
	require.Error(t, err, "an EC public key that encapsulates")
	_, _, err = cu.GenerateKeyPair(ctx, mech.Mech{Type: ck.CKM_EC_KEY_PAIR_GEN},
		object.Template{tok, {Type: ck.CKA_EC_PARAMS, Value: p256}}, object.Template{tok, objectsBool(ck.CKA_DECAPSULATE, true)})
	require.Error(t, err, "an EC private key that decapsulates")
	assert.Equal(t, before, count("after"), "a refused encapsulation made an object")
	_, _, err = cu.EncapsulateKey(ctx, kem, kemPub, object.Template{objectsBool(ck.CKA_TOKEN, false)})
	require.NoError(t, err, "the owner's own encapsulation")
}

// TestAttackNewopsDigestKey: C_DigestKey over the API. The sealed state a
// crypto user's step answers holds no key byte, and is refused when
// replayed by another user (even one the key is shared with), under
// another mechanism, or changed by one bit; a sensitive, non-extractable
// key is refused (CKR_KEY_INDIGESTIBLE); another user's key is invisible;
// a public session and an officer may not digest at all.
func TestAttackNewopsDigestKey(t *testing.T) {
	p := newopsStart(t)
	cu, co, cu2, pub := p.cu, p.co, p.cu2, p.pub
	value := objectsRandom(t, 32)
	mk := func(v []byte, sensitive, extractable bool) uint64 {
		id, err := cu.CreateObject(ctx, object.Template{objectsUlong(ck.CKA_CLASS, ck.CKO_SECRET_KEY),
			objectsUlong(ck.CKA_KEY_TYPE, ck.CKK_GENERIC_SECRET), objectsBool(ck.CKA_TOKEN, true),
			objectsBool(ck.CKA_SENSITIVE, sensitive), objectsBool(ck.CKA_EXTRACTABLE, extractable), {Type: ck.CKA_VALUE, Value: v}})
		require.NoError(t, err)
		return id
	}
	open := mk(value, true, true)
	locked := mk(objectsRandom(t, 32), true, false)
	require.NoError(t, cu.Share(ctx, open, "cu2"))
	sha := mech.Mech{Type: ck.CKM_SHA256}
	fresh, err := sha256.New().(encoding.BinaryMarshaler).MarshalBinary()
	require.NoError(t, err)

	sealed, err := cu.DigestKey(ctx, client.DigestStep{Mech: sha, State: fresh, Key: open})
	require.NoError(t, err)
	assert.False(t, bytes.Contains(sealed, value[:8]), "the sealed state shows key bytes")
	_, err = cu2.DigestKey(ctx, client.DigestStep{Mech: sha, Sealed: sealed, Final: true})
	publicRV(t, ck.CKR_ARGUMENTS_BAD, err, "another user replays the sealed state")
	_, err = cu.DigestKey(ctx, client.DigestStep{Mech: mech.Mech{Type: ck.CKM_SHA384}, Sealed: sealed, Final: true})
	publicRV(t, ck.CKR_ARGUMENTS_BAD, err, "the sealed state under another mechanism")
	changed := bytes.Clone(sealed)
	changed[len(changed)/2] ^= 1
	_, err = cu.DigestKey(ctx, client.DigestStep{Mech: sha, Sealed: changed, Final: true})
	publicRV(t, ck.CKR_ARGUMENTS_BAD, err, "a changed sealed state")
	_, err = cu.DigestKey(ctx, client.DigestStep{Mech: sha, State: fresh, Key: locked})
	publicRV(t, ck.CKR_KEY_INDIGESTIBLE, err, "a sensitive, non-extractable key")
	_, err = cu2.DigestKey(ctx, client.DigestStep{Mech: sha, State: fresh, Key: locked})
	publicRV(t, ck.CKR_KEY_HANDLE_INVALID, err, "another user's key")
	_, err = co.DigestKey(ctx, client.DigestStep{Mech: sha, State: fresh, Key: open})
	publicRV(t, ck.CKR_USER_NOT_LOGGED_IN, err, "a crypto officer")
	_, err = pub.DigestKey(ctx, client.DigestStep{Mech: sha, State: fresh, Key: open})
	publicRV(t, ck.CKR_USER_NOT_LOGGED_IN, err, "a public session")

	got, err := cu.DigestKey(ctx, client.DigestStep{Mech: sha, Sealed: sealed, Final: true})
	require.NoError(t, err)
	want := sha256.Sum256(value)
	assert.Equal(t, want[:], got, "the owner's digest")
}
