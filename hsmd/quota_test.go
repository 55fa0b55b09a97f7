package hsmd_test

import (
	"testing"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/openhsm/openhsm/object"
	"github.com/stretchr/testify/require"
)

// TestQuotasOnADaemon: a node configured with max_sessions_per_user = 2 and
// max_session_objects = 3 refuses a third login of one user and a fourth
// session object of one session, clearly and without harm to other users;
// a logout gives the session back.
func TestQuotasOnADaemon(t *testing.T) {
	c := testcluster.StartWith(t, 1, "max_sessions_per_user = 2\nmax_session_objects = 3")
	pw := c.Env["P11_PIN"]
	first := dial(t, c, "cu1", pw)
	dial(t, c, "cu1", pw)
	third := dial(t, c, "", "")
	err := third.Login(ctx, "cu1", pw)
	require.Equal(t, uint64(ck.CKR_DEVICE_MEMORY), client.RV(err), "a third session: %v", err)
	require.Contains(t, err.Error(), "login sessions")
	// The officer is not held back by cu1's sessions.
	dial(t, c, "admin", c.Env["HSM_PASSWORD"])
	require.NoError(t, first.Logout(ctx))
	require.NoError(t, third.Login(ctx, "cu1", pw))

	data := object.Template{{Type: ck.CKA_CLASS, Value: object.EncodeUlong(ck.CKO_DATA)}, {Type: ck.CKA_VALUE, Value: []byte("v")}}
	for i := 0; i < 3; i++ {
		_, err := third.CreateObject(ctx, data)
		require.NoError(t, err)
	}
	_, err = third.CreateObject(ctx, data)
	require.Equal(t, uint64(ck.CKR_DEVICE_MEMORY), client.RV(err), "a fourth session object: %v", err)
	// Token objects are not session objects.
	_, err = third.CreateObject(ctx, append(data, object.Attribute{Type: ck.CKA_TOKEN, Value: object.EncodeBool(true)}))
	require.NoError(t, err)
}
