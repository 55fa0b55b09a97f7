package security

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
)

func publicRV(t *testing.T, rv uint64, err error, what string) {
	t.Helper()
	require.Equal(t, ck.RVName(rv), ck.RVName(hsmerr.RV(err)), "%s: %v", what, err)
}

func publicData(label string, token, private bool, value []byte) object.Template {
	return object.Template{objectsUlong(ck.CKA_CLASS, ck.CKO_DATA), objectsBool(ck.CKA_TOKEN, token),
		objectsBool(ck.CKA_PRIVATE, private), {Type: ck.CKA_LABEL, Value: []byte(label)}, {Type: ck.CKA_VALUE, Value: value}}
}

// TestAttackPublicSession: a client certificate alone opens a public
// session on a token (PKCS#11 before C_Login) and tries for more than the
// token's public objects and its own public session objects: private
// objects, sensitive attributes, another token's objects, the token's
// objects with the setting off, token and private objects of its own,
// changing or destroying the token's objects, a private key's use, the
// calls a login needs (also after Refresh), more session objects than the
// bounds, and its objects after the session ended. Its whole life writes
// nothing to the log and no file holds its objects.
func TestAttackPublicSession(t *testing.T) {
	c := testcluster.StartOpts(t, 1, testcluster.Options{NoKMS: true})
	token := c.Env["P11_TOKEN_LABEL"]
	cu := pinned(t, c, 1, token, secret(t, c, "cu.password"))
	co := pinned(t, c, 1, "admin", secret(t, c, "co.password"))
	privMarker := objectsRandom(t, 32)
	privID, err := cu.CreateObject(ctx, publicData("priv", true, true, privMarker))
	require.NoError(t, err)
	pubID, err := cu.CreateObject(ctx, publicData("pub", true, false, []byte("public value")))
	require.NoError(t, err)
	// A public but sensitive secret key: visible, its value never.
	sens, err := cu.CreateObject(ctx, object.Template{objectsUlong(ck.CKA_CLASS, ck.CKO_SECRET_KEY),
		objectsUlong(ck.CKA_KEY_TYPE, ck.CKK_AES), objectsBool(ck.CKA_TOKEN, true), objectsBool(ck.CKA_PRIVATE, false),
		objectsBool(ck.CKA_SENSITIVE, true), objectsBool(ck.CKA_EXTRACTABLE, false), objectsBool(ck.CKA_ENCRYPT, true),
		{Type: ck.CKA_VALUE, Value: objectsRandom(t, 32)}})
	require.NoError(t, err)
	_, privKey, err := cu.GenerateKeyPair(ctx, mech.Mech{Type: ck.CKM_EC_KEY_PAIR_GEN},
		object.Template{objectsBool(ck.CKA_TOKEN, true), {Type: ck.CKA_EC_PARAMS, Value: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}}},
		object.Template{objectsBool(ck.CKA_TOKEN, true), objectsBool(ck.CKA_SIGN, true)})
	require.NoError(t, err)
	// Another token's public object.
	cu2 := pinned(t, c, 1, "cu2", objectsUser(t, c, "cu2"))
	otherID, err := cu2.CreateObject(ctx, publicData("other", true, false, []byte("cu2's")))
	require.NoError(t, err)
	time.Sleep(2 * time.Second) // let the setup's writes settle before counting

	pub := pinned(t, c, 1, "", "")
	require.NoError(t, pub.OpenPublic(ctx, token))
	ids, err := pub.FindObjects(ctx, nil, 0)
	require.NoError(t, err)
	start := pub.Index()
	assert.Contains(t, ids, pubID)
	assert.Contains(t, ids, sens)
	assert.NotContains(t, ids, privID, "a private object is found")
	assert.NotContains(t, ids, privKey, "a private key is found")
	assert.NotContains(t, ids, otherID, "another token's object is found")
	for _, id := range []uint64{privID, privKey, otherID} {
		_, err = pub.GetAttributes(ctx, id, []uint64{ck.CKA_LABEL})
		publicRV(t, ck.CKR_OBJECT_HANDLE_INVALID, err, "reading a private or foreign object")
	}
	av, err := pub.GetAttributes(ctx, sens, []uint64{ck.CKA_LABEL, ck.CKA_VALUE})
	require.NoError(t, err)
	assert.Equal(t, ck.RVName(ck.CKR_ATTRIBUTE_SENSITIVE), ck.RVName(av[1].RV), "a sensitive value is read")
	assert.Empty(t, av[1].Value)
	_, err = pub.Sign(ctx, privKey, mech.Mech{Type: ck.CKM_ECDSA}, make([]byte, 32))
	publicRV(t, ck.CKR_KEY_HANDLE_INVALID, err, "signing with the token's private key")
	_, err = pub.Encrypt(ctx, sens, objectsCBC(), make([]byte, 16))
	publicRV(t, ck.CKR_KEY_HANDLE_INVALID, err, "using the token's public secret key")
	_, err = pub.CreateObject(ctx, publicData("x", true, false, nil))
	publicRV(t, ck.CKR_USER_NOT_LOGGED_IN, err, "making a token object")
	_, err = pub.CreateObject(ctx, publicData("x", false, true, nil))
	publicRV(t, ck.CKR_USER_NOT_LOGGED_IN, err, "making a private session object")
	_, err = pub.GenerateKey(ctx, mech.Mech{Type: ck.CKM_AES_KEY_GEN}, object.Template{objectsUlong(ck.CKA_VALUE_LEN, 32)})
	publicRV(t, ck.CKR_USER_NOT_LOGGED_IN, err, "a key private by default")
	publicRV(t, ck.CKR_OBJECT_HANDLE_INVALID, pub.DestroyObject(ctx, pubID), "destroying a token object")
	publicRV(t, ck.CKR_OBJECT_HANDLE_INVALID, pub.SetAttributes(ctx, pubID, object.Template{{Type: ck.CKA_LABEL, Value: []byte("x")}}), "changing a token object")
	_, err = pub.CopyObject(ctx, pubID, object.Template{objectsBool(ck.CKA_TOKEN, false)})
	publicRV(t, ck.CKR_OBJECT_HANDLE_INVALID, err, "copying a token object")
	publicRV(t, ck.CKR_USER_NOT_LOGGED_IN, pub.Share(ctx, pubID, "cu2"), "sharing")
	_, err = pub.ListUsers(ctx)
	publicRV(t, ck.CKR_USER_NOT_LOGGED_IN, err, "a login's call")
	require.NoError(t, pub.Refresh(ctx))
	_, err = pub.ListUsers(ctx)
	publicRV(t, ck.CKR_USER_NOT_LOGGED_IN, err, "a login's call after Refresh")
	publicRV(t, ck.CKR_USER_NOT_LOGGED_IN, pub.SetClusterSetting(ctx, "public_objects", "on"), "changing a setting")

	// Its own public session objects, up to the session's bound; their
	// value is a marker no file may hold.
	marker := objectsRandom(t, 32)
	first, err := pub.CreateObject(ctx, publicData("mine", false, false, marker))
	require.NoError(t, err)
	got, err := pub.GetAttributes(ctx, first, []uint64{ck.CKA_VALUE})
	require.NoError(t, err)
	require.Equal(t, marker, got[0].Value)
	for i := 1; i < engine.DefaultPublicSessionObjects; i++ {
		_, err := pub.CreateObject(ctx, publicData(fmt.Sprint(i), false, false, nil))
		require.NoError(t, err, "object %d", i)
	}
	_, err = pub.CreateObject(ctx, publicData("one too many", false, false, nil))
	publicRV(t, ck.CKR_DEVICE_MEMORY, err, "past the session's bound")
	// The certificate's bound, over further public sessions.
	var more []*client.Client
	made := engine.DefaultPublicSessionObjects
	for made < engine.DefaultPublicObjectsPerCert {
		p := pinned(t, c, 1, "", "")
		require.NoError(t, p.OpenPublic(ctx, token))
		more = append(more, p)
		for i := 0; i < engine.DefaultPublicSessionObjects && made < engine.DefaultPublicObjectsPerCert; i++ {
			_, err := p.CreateObject(ctx, publicData("fill", false, false, nil))
			require.NoError(t, err, "object %d", made)
			made++
		}
	}
	last := pinned(t, c, 1, "", "")
	require.NoError(t, last.OpenPublic(ctx, token))
	_, err = last.CreateObject(ctx, publicData("past the certificate", false, false, nil))
	publicRV(t, ck.CKR_DEVICE_MEMORY, err, "past the certificate's bound")

	// Nothing of it reached the log or a file.
	_, err = pub.FindObjects(ctx, nil, 0)
	require.NoError(t, err)
	assert.Equal(t, start, pub.Index(), "a public session wrote to the log")
	found, scanned := objectsScan(t, c.Dir, marker)
	require.NotZero(t, scanned)
	assert.Empty(t, found, "a public session object's value is in a file")
	found, _ = objectsScan(t, c.Dir, privMarker)
	assert.Empty(t, found)

	// Ended, its objects are gone; the certificate's room comes back.
	require.NoError(t, pub.Logout(ctx))
	for _, p := range more {
		require.NoError(t, p.Logout(ctx))
	}
	again := pinned(t, c, 1, "", "")
	require.NoError(t, again.OpenPublic(ctx, token))
	_, err = again.GetAttributes(ctx, first, []uint64{ck.CKA_LABEL})
	publicRV(t, ck.CKR_OBJECT_HANDLE_INVALID, err, "an ended session's object")
	_, err = again.CreateObject(ctx, publicData("room again", false, false, nil))
	require.NoError(t, err)

	// With public_objects off, not even the token's public objects show.
	require.NoError(t, co.SetClusterSetting(ctx, "public_objects", "off"))
	ids, err = again.FindObjects(ctx, object.Template{objectsBool(ck.CKA_TOKEN, true)}, 0)
	require.NoError(t, err)
	assert.Empty(t, ids)
	_, err = again.GetAttributes(ctx, pubID, []uint64{ck.CKA_LABEL})
	publicRV(t, ck.CKR_OBJECT_HANDLE_INVALID, err, "a public object with the setting off")
	_, err = again.GetAttributes(ctx, otherID, []uint64{ck.CKA_LABEL})
	publicRV(t, ck.CKR_OBJECT_HANDLE_INVALID, err, "another token's object with the setting off")
	publicRV(t, ck.CKR_USER_NOT_LOGGED_IN, cu.SetClusterSetting(ctx, "public_objects", "on"), "a crypto user changes a setting")
}
