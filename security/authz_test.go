package security

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/openhsm/openhsm/cluster/peerpb"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/passwords"
	"github.com/openhsm/openhsm/pki"
	"github.com/openhsm/openhsm/seal"
	"github.com/openhsm/openhsm/state"
	"github.com/openhsm/openhsm/state/sqlite"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// authzPeer dials node k's Peer service with nothing but a node's
// certificate and key from the cluster directory: what a thief of one
// node's TLS files holds, without the passphrase or any password.
func authzPeer(t *testing.T, c *testcluster.Cluster, k int) peerpb.PeerClient {
	t.Helper()
	pkiDir := filepath.Join(c.Dir, "pki")
	tc, err := pki.NodePeerConfig(filepath.Join(pkiDir, "node1.pem"), filepath.Join(pkiDir, "node1-key.pem"), filepath.Join(pkiDir, "ca.pem"), nil)
	require.NoError(t, err)
	conn, err := grpc.NewClient(c.Addr(k), grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return peerpb.NewPeerClient(conn)
}

// authzForge makes, with an engine of the attacker's own (its own domain
// key, its own store), the create_objects command the real engine would
// send for tmpl in user's name. Its objects are well formed, but any
// sealed value is sealed under the attacker's key, not the cluster's.
func authzForge(t *testing.T, user string, tmpl object.Template) *state.Command {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "attacker.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	sealer, _, err := seal.NewDomainKey("attacker", seal.KEKSource{KeyFile: bytes.Repeat([]byte{9}, 32)})
	require.NoError(t, err)
	cp := &authzCapture{}
	e := engine.NewEngine(state.NewMachine(st, sealer, nil), cp, engine.Options{})
	_, err = e.CreateObject(context.Background(), engine.Caller{User: user, Role: object.RoleCU, Session: 1}, tmpl)
	require.NoError(t, err)
	require.NotNil(t, cp.last)
	return cp.last
}

type authzCapture struct{ last *state.Command }

func (c *authzCapture) Submit(_ context.Context, cmd *state.Command) error { c.last = cmd; return nil }

func authzAttr(t uint64, v []byte) object.Attribute { return object.Attribute{Type: t, Value: v} }

// TestAttackAuthzForgedForward: the attacker holds only a node's
// certificate and key (no passphrase, no password) and sends hand-made
// commands through Peer.Forward to the leader. Apply must refuse every one
// by its own checks: an officer made by no one, by a crypto user or by a
// stranger; a second bootstrap; cu1's password set by no one, or set to a
// hash that would exhaust the daemon at every login even in cu1's or the
// officer's name; cu1's key destroyed by no one, by the officer or by a
// stranger; a trusted public key planted in cu1's token, even in cu1's
// name; a secret key the attacker knows planted in cu1's token; objects
// owned by someone else than their maker; cu1's token wiped by cu1, by no
// one or by a stranger; a cluster setting changed by cu1 or by no one.
// Afterwards cu1 and the officer log in with their own passwords, cu1's
// key still works, the setting is as it was, and there is no new user and
// no new object.
//
// (A forged command that names a real actor with the right role, such as
// a create_user in the officer's name, passes apply's authority check by
// construction: what stops it is the Forward MAC, which the trust work
// adds. The cases here are the ones apply itself must refuse, and they
// stay refused once Forward also needs a MAC.)
func TestAttackAuthzForgedForward(t *testing.T) {
	c := testcluster.Start(t, 1)
	coPW, cuPW := secret(t, c, "co.password"), secret(t, c, "cu.password")
	cu := pinned(t, c, 1, "cu1", cuPW)
	key, err := cu.GenerateKey(ctx, mech.Mech{Type: ck.CKM_AES_KEY_GEN}, object.Template{
		authzAttr(ck.CKA_VALUE_LEN, object.EncodeUlong(32)), authzAttr(ck.CKA_TOKEN, object.EncodeBool(true))})
	require.NoError(t, err)
	gcm := mech.Mech{Type: ck.CKM_AES_GCM, Param: &mech.GCMParams{IV: make([]byte, 12), TagBits: 128}}
	ct, err := cu.Encrypt(ctx, key, gcm, []byte("before the attack"))
	require.NoError(t, err)

	goodHash, err := passwords.HashPassword("attacker-password")
	require.NoError(t, err)
	bomb := "$argon2id$v=19$m=4194304,t=16,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
	officer := func(actor string) *state.Command {
		return &state.Command{Op: state.OpCreateUser, Actor: actor, User: &object.User{Name: "evil", Role: object.RoleCO, PasswordHash: goodHash}}
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	point, err := ecKey.PublicKey.Bytes()
	require.NoError(t, err)
	p256 := []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}
	publicKey := object.Template{authzAttr(ck.CKA_CLASS, object.EncodeUlong(ck.CKO_PUBLIC_KEY)),
		authzAttr(ck.CKA_KEY_TYPE, object.EncodeUlong(ck.CKK_EC)), authzAttr(ck.CKA_EC_PARAMS, p256),
		authzAttr(ck.CKA_EC_POINT, point), authzAttr(ck.CKA_TOKEN, object.EncodeBool(true))}
	trusted := authzForge(t, "cu1", publicKey)
	trusted.Objects[0].Attrs.SetBool(ck.CKA_TRUSTED, true)
	known := authzForge(t, "cu1", object.Template{authzAttr(ck.CKA_CLASS, object.EncodeUlong(ck.CKO_SECRET_KEY)),
		authzAttr(ck.CKA_KEY_TYPE, object.EncodeUlong(ck.CKK_AES)), authzAttr(ck.CKA_VALUE, bytes.Repeat([]byte{0x42}, 32)),
		authzAttr(ck.CKA_TOKEN, object.EncodeBool(true)), authzAttr(ck.CKA_WRAP, object.EncodeBool(true))})
	byOfficer := authzForge(t, "cu1", publicKey)
	byOfficer.Actor = "admin"
	byNoOne := authzForge(t, "cu1", publicKey)
	byNoOne.Actor = ""
	officerOwned := authzForge(t, "admin", publicKey)
	officerOwned.Actor = "admin"

	forged := []struct {
		name string
		cmd  *state.Command
	}{
		{"an officer made by no one", officer("")},
		{"an officer made by cu1", officer("cu1")},
		{"an officer made by a stranger", officer("ghost")},
		{"a second bootstrap", &state.Command{Op: state.OpBootstrap, User: &object.User{Name: "evil", Role: object.RoleCO, PasswordHash: goodHash}}},
		{"cu1's password set by no one", &state.Command{Op: state.OpSetPassword, Name: "cu1", PasswordHash: goodHash}},
		{"cu1's password set by a stranger", &state.Command{Op: state.OpSetPassword, Actor: "ghost", Name: "cu1", PasswordHash: goodHash}},
		{"a hash bomb as cu1's password in cu1's name", &state.Command{Op: state.OpSetPassword, Actor: "cu1", Name: "cu1", PasswordHash: bomb}},
		{"a hash bomb as cu1's password in the officer's name", &state.Command{Op: state.OpSetPassword, Actor: "admin", Name: "cu1", PasswordHash: bomb}},
		{"cu1's key destroyed by no one", &state.Command{Op: state.OpDestroyObject, ObjectID: key}},
		{"cu1's key destroyed by the officer", &state.Command{Op: state.OpDestroyObject, Actor: "admin", ObjectID: key}},
		{"cu1's key destroyed by a stranger", &state.Command{Op: state.OpDestroyObject, Actor: "ghost", ObjectID: key}},
		{"cu1's key shared by the officer", &state.Command{Op: state.OpShare, Actor: "admin", ObjectID: key, Name: "cu1"}},
		{"a trusted public key in cu1's token, in cu1's name", trusted},
		{"a secret key the attacker knows in cu1's token, in cu1's name", known},
		{"an object owned by cu1, made by the officer", byOfficer},
		{"an object owned by cu1, made by no one", byNoOne},
		{"an object owned by the officer", officerOwned},
		{"cu1's token wiped by cu1", &state.Command{Op: state.OpWipeToken, Actor: "cu1", Name: "cu1"}},
		{"cu1's token wiped by no one", &state.Command{Op: state.OpWipeToken, Name: "cu1"}},
		{"cu1's token wiped by a stranger", &state.Command{Op: state.OpWipeToken, Actor: "ghost", Name: "cu1"}},
		{"a cluster setting changed by cu1", &state.Command{Op: state.OpSetSetting, Actor: "cu1", Name: state.SettingPublicObjects, Value: "off"}},
		{"a cluster setting changed by no one", &state.Command{Op: state.OpSetSetting, Name: state.SettingPublicObjects, Value: "off"}},
	}
	peer := authzPeer(t, c, 1)
	for _, f := range forged {
		raw, err := f.cmd.Encode()
		require.NoError(t, err)
		resp, err := peer.Forward(ctx, &peerpb.ForwardRequest{Command: raw})
		refused := err != nil || resp.GetRv() != 0
		require.True(t, refused, "%s: applied at index %d", f.name, resp.GetIndex())
	}

	// Nothing changed: both passwords still work, cu1's key still decrypts,
	// no user and no object was added.
	cu = pinned(t, c, 1, "cu1", cuPW)
	pt, err := cu.Decrypt(ctx, key, gcm, ct)
	require.NoError(t, err)
	require.Equal(t, "before the attack", string(pt))
	co := pinned(t, c, 1, "admin", coPW)
	users, err := co.ListUsers(ctx)
	require.NoError(t, err)
	var names []string
	for _, u := range users {
		names = append(names, u.Name+"/"+u.Role)
	}
	sort.Strings(names)
	require.Equal(t, []string{"admin/CO", "admin2/CO", "cu1/CU", "kmsuser/CU"}, names) // as cluster.sh made them (kmsuser with its KMS principal)
	settings, err := co.ClusterSettings(ctx)
	require.NoError(t, err)
	require.Equal(t, "on", settings[state.SettingPublicObjects], "a forged command changed a cluster setting")
	// The owner lists them (an officer no longer sees a crypto user's
	// private keys at all).
	objs, err := cu.ListObjects(ctx, nil, 0)
	require.NoError(t, err)
	require.Len(t, objs, 1)
	require.Equal(t, key, objs[0].ID)
	v, ok := objs[0].Attr(ck.CKA_TRUSTED)
	require.True(t, ok)
	require.Equal(t, []byte{0}, v)
	require.Empty(t, objs[0].SharedWith)
}

// TestAttackAuthzConcurrentBootstrap: the attacker holds a client
// certificate and races the cluster's owner to activate a new cluster:
// eight Bootstraps at once against a node with no users. Exactly one makes
// an officer; the seven others are refused clearly ("already has users"),
// and their names cannot log in.
func TestAttackAuthzConcurrentBootstrap(t *testing.T) {
	c := testcluster.StartEmpty(t)
	const n = 8
	clients := make([]*client.Client, n)
	for i := range clients {
		clients[i] = pinned(t, c, 1, "", "")
	}
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = clients[i].Bootstrap(ctx, fmt.Sprintf("officer%d", i), fmt.Sprintf("officer%d-password", i))
		}()
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		if err == nil {
			require.Equal(t, -1, winner, "two bootstraps succeeded: officer%d and officer%d", winner, i)
			winner = i
			continue
		}
		require.Equal(t, uint64(ck.CKR_USER_ALREADY_LOGGED_IN), client.RV(err), "officer%d: %v", i, err)
		require.True(t, strings.Contains(err.Error(), "already has users"), "officer%d: %v", i, err)
	}
	require.NotEqual(t, -1, winner, "no bootstrap succeeded")

	co := pinned(t, c, 1, fmt.Sprintf("officer%d", winner), fmt.Sprintf("officer%d-password", winner))
	users, err := co.ListUsers(ctx)
	require.NoError(t, err)
	require.Len(t, users, 1)
	require.Equal(t, fmt.Sprintf("officer%d", winner), users[0].Name)
	require.Equal(t, "CO", users[0].Role)
	for i := range clients {
		if i != winner {
			require.Error(t, clients[i].Login(ctx, fmt.Sprintf("officer%d", i), fmt.Sprintf("officer%d-password", i)))
		}
	}
}

// TestAttackAuthzSessionFlood: the attacker holds a client certificate and
// cu1's password and tries to exhaust a node's memory: login after login,
// and session object after session object in one session. The node (run
// with low limits, max_sessions_per_user = 3 and max_session_objects = 5,
// so the test is short; the defaults are 1,024 and 10,000) refuses the
// fourth login and the sixth object with CKR_DEVICE_MEMORY, keeps serving
// the officer, and takes cu1 again once a session is logged out.
func TestAttackAuthzSessionFlood(t *testing.T) {
	c := testcluster.StartWith(t, 1, "max_sessions_per_user = 3\nmax_session_objects = 5")
	cuPW, coPW := secret(t, c, "cu.password"), secret(t, c, "co.password")
	var sessions []*client.Client
	for i := 0; i < 3; i++ {
		sessions = append(sessions, pinned(t, c, 1, "cu1", cuPW))
	}
	flood := pinned(t, c, 1, "", "")
	for i := 0; i < 3; i++ {
		err := flood.Login(ctx, "cu1", cuPW)
		require.Equal(t, uint64(ck.CKR_DEVICE_MEMORY), client.RV(err), "login %d past the limit: %v", i+4, err)
	}
	data := object.Template{authzAttr(ck.CKA_CLASS, object.EncodeUlong(ck.CKO_DATA)), authzAttr(ck.CKA_VALUE, bytes.Repeat([]byte{1}, 1024))}
	made := 0
	for i := 0; i < 10; i++ {
		if _, err := sessions[0].CreateObject(ctx, data); err != nil {
			require.Equal(t, uint64(ck.CKR_DEVICE_MEMORY), client.RV(err), "object %d: %v", i+1, err)
			continue
		}
		made++
	}
	require.Equal(t, 5, made)

	pinned(t, c, 1, "admin", coPW)
	require.NoError(t, sessions[2].Logout(ctx))
	require.NoError(t, flood.Login(ctx, "cu1", cuPW))
	_, err := flood.CreateObject(ctx, data)
	require.NoError(t, err, "a new session has its own room")
}
