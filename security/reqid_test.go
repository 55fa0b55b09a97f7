package security

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
)

// reqidAESTemplate is a token AES key with a label.
func reqidAESTemplate(label string) object.Template {
	return object.Template{
		{Type: ck.CKA_TOKEN, Value: object.EncodeBool(true)},
		{Type: ck.CKA_VALUE_LEN, Value: object.EncodeUlong(32)},
		{Type: ck.CKA_ENCRYPT, Value: object.EncodeBool(true)},
		{Type: ck.CKA_LABEL, Value: []byte(label)},
	}
}

// reqidSecondCU makes another crypto user (the attacker) through the
// cluster's crypto officer and returns its password.
func reqidSecondCU(t *testing.T, c *testcluster.Cluster, name string) string {
	t.Helper()
	co := pinned(t, c, 1, "admin", secret(t, c, "co.password"))
	pw := "attacker-password-1"
	require.NoError(t, co.CreateUser(ctx, name, "CU", pw))
	return pw
}

func reqidLabelled(t *testing.T, cl *client.Client, label string) []uint64 {
	t.Helper()
	ids, err := cl.FindObjects(ctx, object.Template{{Type: ck.CKA_LABEL, Value: []byte(label)}}, 0)
	require.NoError(t, err)
	return ids
}

// TestAttackReqidOtherUsersID: the attacker holds a crypto user's password
// (its own account, "mallory") and knows or guesses the request ID another
// crypto user used or will use. Reusing that ID must neither give the
// attacker the victim's recorded outcome (the victim's key handle) nor let
// it act on the victim's key, and using it first must not poison the
// victim's request: request outcomes are recorded per user.
func TestAttackReqidOtherUsersID(t *testing.T) {
	c := testcluster.Start(t, 1)
	victim := pinned(t, c, 1, c.Env["P11_TOKEN_LABEL"], c.Env["P11_PIN"])
	mallory := pinned(t, c, 1, "mallory", reqidSecondCU(t, c, "mallory"))
	aes := mech.Mech{Type: ck.CKM_AES_KEY_GEN}

	// The victim's request, then the attacker's with the same ID.
	used := client.NewRequestID()
	vKey, err := victim.GenerateKey(client.WithRequestID(ctx, used), aes, reqidAESTemplate("victim-key"))
	require.NoError(t, err)
	mKey, err := mallory.GenerateKey(client.WithRequestID(ctx, used), aes, reqidAESTemplate("mallory-key"))
	require.NoError(t, err, "the attacker's own request is applied as its own")
	assert.NotEqual(t, vKey, mKey, "the attacker was handed the victim's key handle")
	assert.Equal(t, []uint64{mKey}, reqidLabelled(t, mallory, "mallory-key"))
	assert.Empty(t, reqidLabelled(t, mallory, "victim-key"), "the attacker sees the victim's key")
	_, err = mallory.Encrypt(ctx, vKey, mech.Mech{Type: ck.CKM_AES_ECB}, make([]byte, 16))
	assert.Error(t, err, "the attacker uses the victim's key")

	// A destroy of the victim's key under an ID the victim used for its
	// own destroy: refused, and the key stays.
	destroyID := client.NewRequestID()
	spare, err := victim.GenerateKey(ctx, aes, reqidAESTemplate("victim-spare"))
	require.NoError(t, err)
	require.NoError(t, victim.DestroyObject(client.WithRequestID(ctx, destroyID), spare))
	err = mallory.DestroyObject(client.WithRequestID(ctx, destroyID), vKey)
	assert.Error(t, err, "the attacker replayed the victim's OK")
	assert.Equal(t, []uint64{vKey}, reqidLabelled(t, victim, "victim-key"))

	// Poisoning: the attacker uses an ID first; the victim's request with
	// the same ID is still applied, as the victim's.
	future := client.NewRequestID()
	poison, err := mallory.GenerateKey(client.WithRequestID(ctx, future), aes, reqidAESTemplate("poison"))
	require.NoError(t, err)
	mine, err := victim.GenerateKey(client.WithRequestID(ctx, future), aes, reqidAESTemplate("victim-later"))
	require.NoError(t, err)
	assert.NotEqual(t, poison, mine)
	assert.Equal(t, []uint64{mine}, reqidLabelled(t, victim, "victim-later"), "the victim's request was not applied")
}

// TestAttackReqidRetryMakesOneObject: the attacker holds a crypto user's
// password and sends one write again and again with the same request ID,
// on every node, even with a changed template, hoping to create a second
// object or to get a handle other than the first. Every retry must return
// the first handle and create nothing; a malformed ID is refused and
// creates nothing.
func TestAttackReqidRetryMakesOneObject(t *testing.T) {
	c := testcluster.Start(t, 3)
	user, pin := c.Env["P11_TOKEN_LABEL"], c.Env["P11_PIN"]
	nodes := []*client.Client{pinned(t, c, 1, user, pin), pinned(t, c, 2, user, pin), pinned(t, c, 3, user, pin)}
	aes := mech.Mech{Type: ck.CKM_AES_KEY_GEN}
	id := client.NewRequestID()
	first, err := nodes[0].GenerateKey(client.WithRequestID(ctx, id), aes, reqidAESTemplate("once"))
	require.NoError(t, err)
	for round := range 2 {
		for k, cl := range nodes {
			label := "once"
			if round == 1 {
				label = "changed" // the same ID names the same request
			}
			got, err := cl.GenerateKey(client.WithRequestID(ctx, id), aes, reqidAESTemplate(label))
			require.NoError(t, err, "node%d", k+1)
			assert.Equal(t, first, got, "node%d returned another handle", k+1)
		}
	}
	// Another kind of write under the same ID is refused.
	err = nodes[1].DestroyObject(client.WithRequestID(ctx, id), first)
	assert.Equal(t, uint64(ck.CKR_ARGUMENTS_BAD), client.RV(err), "%v", err)
	for k, cl := range nodes {
		assert.Equal(t, []uint64{first}, reqidLabelled(t, cl, "once"), "node%d", k+1)
		assert.Empty(t, reqidLabelled(t, cl, "changed"), "node%d", k+1)
	}

	for _, bad := range []string{"short", "0123456789ABCDEF0123456789ABCDEF", "0123456789abcdef0123456789abcdeg"} {
		_, err := nodes[0].GenerateKey(client.WithRequestID(ctx, bad), aes, reqidAESTemplate("bad-id"))
		assert.Equal(t, uint64(ck.CKR_ARGUMENTS_BAD), client.RV(err), "request ID %q: %v", bad, err)
	}
	assert.Empty(t, reqidLabelled(t, nodes[0], "bad-id"))
}
