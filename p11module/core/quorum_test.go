package core

import (
	"context"
	"testing"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/quorum"
	"github.com/stretchr/testify/require"
)

// With quorum on for user management, an SO's C_InitPIN (reset on a token
// slot, create-or-reset on the cluster slot) cannot carry a token and is
// refused; the CU's PIN keeps working.
func TestInitPINUnderQuorum(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cfg, err := client.LoadConfig(e.cl.Env["HSM_CONFIG"])
	require.NoError(t, err)
	officer := func(user, pw string) *client.Client {
		hc, err := client.Dial(ctx, cfg)
		require.NoError(t, err)
		t.Cleanup(func() { hc.Close() })
		require.NoError(t, hc.Login(ctx, user, pw))
		priv, _, err := client.GenerateQuorumKey("ed25519")
		require.NoError(t, err)
		require.NoError(t, hc.RegisterQuorumKey(ctx, priv))
		return hc
	}
	admin := officer(e.cl.Env["HSM_USER"], e.cl.Env["HSM_PASSWORD"])
	officer(e.cl.Env["HSM_USER2"], e.cl.Env["HSM_PASSWORD2"]) // cluster.sh makes a second officer
	require.NoError(t, admin.SetQuorumPolicy(ctx, quorum.ServiceUserManagement, 2))

	m := e.m
	h, err := m.OpenSession(e.slot, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	require.NoError(t, err)
	require.NoError(t, m.Login(h, ck.CKU_SO, []byte(e.cl.Env["P11_SO_PIN"])))
	wantRV(t, "SO reset under quorum", m.InitPIN(h, []byte("a-new-pin-for-cu1")), ck.CKR_ACTION_PROHIBITED)
	cs, err := m.OpenSession(clusterSlot, ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)
	require.NoError(t, err)
	require.NoError(t, m.Login(cs, ck.CKU_SO, []byte(e.cl.Env["P11_SO_PIN"])))
	wantRV(t, "SO creates a user under quorum", m.InitPIN(cs, []byte("carol:carol-password")), ck.CKR_ACTION_PROHIBITED)
	m.Logout(h)
	require.NoError(t, m.Login(h, ck.CKU_USER, []byte(e.cl.Env["P11_PIN"])))
}
