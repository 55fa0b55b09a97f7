package state_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/state"
)

// Apply decides again (docs/kms-access.md): these tests hold a principal's
// command between the serving node's check and its apply, as a race, a
// faulty node or a malicious one would make it, and apply it to a real
// store. Each refusal is asserted by its exception and message, and by the
// KMS rows, which must be as they were.

const (
	rdAccount = "111122223333"
	rdRegion  = "eu-west-1"
	rdTime    = 1_900_000_000
	// rdAdmin is an identity policy that allows every KMS action.
	rdAdmin = `{"Version":"2012-10-17","Statement":[{"Sid":"Admin","Effect":"Allow","Action":"kms:*","Resource":"*"}]}`
	// rdDenyAll denies every KMS action.
	rdDenyAll = `{"Version":"2012-10-17","Statement":[{"Sid":"Admin","Effect":"Allow","Action":"kms:*","Resource":"*"},{"Sid":"No","Effect":"Deny","Action":"kms:*","Resource":"*"}]}`
	// rdDefaultPolicy is AWS's default key policy: the account's root, so
	// an identity policy decides.
	rdDefaultPolicy = `{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + rdAccount + `:root"},"Action":"kms:*","Resource":"*"}]}`
)

// rdOpsOnly is a key policy that allows only the principal ops, by name.
var rdOpsOnly = `{"Version":"2012-10-17","Statement":[{"Sid":"OpsOnly","Effect":"Allow","Principal":{"AWS":"` + rdArn("ops") + `"},"Action":"kms:*","Resource":"*"}]}`

func rdArn(name string) string { return state.KMSPrincipalArn(rdAccount, name) }

// rdWorld is a machine with kmsuser, the principals ops (admin identity
// policy), bob and carol (none), and one symmetric key made by ops with
// the default key policy.
type rdWorld struct {
	*fixture
	key string // the key's ID
}

func newRDWorld(t *testing.T) *rdWorld {
	t.Helper()
	w := &rdWorld{fixture: newFixture(t), key: "0f5e2b9c-1111-4a4a-8b8b-000000000001"}
	require.NoError(t, w.submit(principalCmd(t, w.fixture, "ops", true)))
	for _, n := range []string{"bob", "carol"} {
		require.NoError(t, w.submit(principalCmd(t, w.fixture, n, false)))
	}
	w.setPolicy(t, "ops", rdAdmin)
	w.createKey(t, w.key)
	return w
}

func (w *rdWorld) submit(c *state.Command) error { return w.rec.Submit(context.Background(), c) }

// setPolicy is an officer's kms_principal_policy ("" removes it).
func (w *rdWorld) setPolicy(t *testing.T, name, doc string) {
	t.Helper()
	require.NoError(t, w.submit(&state.Command{Op: state.OpKMSPrincipalPolicy, Actor: w.co.User, Role: w.co.Role, Time: rdTime,
		KMS: &state.KMSCommand{Name: name, Policy: doc}}))
}

// kms is a principal's command payload with account, region and time.
func rdCmd(op state.Op, principal string, kc state.KMSCommand, access ...state.KMSAccess) *state.Command {
	kc.Principal, kc.Account, kc.Region, kc.Access = principal, rdAccount, rdRegion, access
	return &state.Command{Op: op, Time: rdTime, KMS: &kc}
}

// onKey is the access entry of an action on the world's key, as the
// serving node records it.
func (w *rdWorld) onKey(action string) state.KMSAccess {
	return state.KMSAccess{Action: action, KeyID: w.key, Resource: w.arn(),
		Context: map[string][]string{"kms:KeySpec": {"SYMMETRIC_DEFAULT"}, "kms:KeyUsage": {"ENCRYPT_DECRYPT"}}}
}

func (w *rdWorld) arn() string { return state.KMSArn(rdRegion, rdAccount, "key/"+w.key) }

// createKey makes a symmetric AWS_KMS key as ops.
func (w *rdWorld) createKey(t *testing.T, id string) {
	t.Helper()
	objs, err := w.e.NewKMSMaterial(id, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
	require.NoError(t, err)
	c := rdCmd(state.OpKMSCreateKey, "ops", state.KMSCommand{Key: &state.KMSKey{ID: id, Region: rdRegion, Account: rdAccount,
		KeySpec: "SYMMETRIC_DEFAULT", KeyUsage: "ENCRYPT_DECRYPT", Origin: state.KMSOriginKMS, Policy: rdDefaultPolicy}},
		state.KMSAccess{Action: "kms:CreateKey", Resource: "*"})
	c.Objects = objs
	require.NoError(t, w.submit(c))
}

// readKey reads a key's row.
func (w *rdWorld) readKey(t *testing.T, id string) state.KMSKey {
	t.Helper()
	var k state.KMSKey
	require.NoError(t, state.ReadKMSRow(w.m.Store().Meta, w.m.Sealer(), state.KMSKeyMeta(rdRegion, id), &k))
	return k
}

// kmsRows is every KMS row as stored: a refusal must leave them byte for
// byte.
func (w *rdWorld) kmsRows(t *testing.T) map[string]string {
	t.Helper()
	rows, err := w.m.Store().MetaScan("kms/", "", 1<<20)
	require.NoError(t, err)
	out := map[string]string{}
	for _, r := range rows {
		out[r.Key] = string(r.Value)
	}
	return out
}

// refused applies c and asserts the refusal (exception and message, or,
// for an exception of "", the return value) and that no KMS row changed.
func (w *rdWorld) refused(t *testing.T, c *state.Command, exception string, rv uint64, msg string) {
	t.Helper()
	before := w.kmsRows(t)
	err := w.submit(c)
	require.Error(t, err)
	if exception != "" {
		assert.Equal(t, exception, hsmerr.KMSException(err), "%v", err)
	} else {
		assert.Equal(t, ck.RVName(rv), ck.RVName(hsmerr.RV(err)), "%v", err)
	}
	var he *hsmerr.Error
	require.True(t, errors.As(err, &he), "%T", err)
	assert.Equal(t, msg, he.Msg)
	assert.Equal(t, before, w.kmsRows(t), "a refused command changed KMS rows")
}

func rdDenied(who, action, resource, because string) string {
	m := "User: " + rdArn(who) + " is not authorized to perform: " + action
	if resource != "" {
		m += " on resource: " + resource
	}
	return m + " because no " + because + "-based policy allows the " + action + " action"
}

// TestKMSRedecideNoDecision: a principal's command that carries no access
// decision, names no principal, a principal that does not exist, or lacks
// its account or region is refused, whatever it would do.
func TestKMSRedecideNoDecision(t *testing.T) {
	w := newRDWorld(t)
	disable := func(principal string, access ...state.KMSAccess) *state.Command {
		return rdCmd(state.OpKMSUpdateKey, principal, state.KMSCommand{KeyID: w.key, Change: state.KMSChangeDisable}, access...)
	}
	for _, tc := range []struct {
		name      string
		c         *state.Command
		exception string
		rv        uint64
		msg       string
	}{
		{"no access entries", disable("ops"), "AccessDeniedException", 0, "kms_update_key carries no access decision"},
		{"empty access entries", func() *state.Command { c := disable("ops"); c.KMS.Access = []state.KMSAccess{}; return c }(),
			"AccessDeniedException", 0, "kms_update_key carries no access decision"},
		{"create key without entries", rdCmd(state.OpKMSCreateKey, "ops", state.KMSCommand{Key: &state.KMSKey{ID: "k2", Region: rdRegion,
			Account: rdAccount, KeySpec: "SYMMETRIC_DEFAULT", KeyUsage: "ENCRYPT_DECRYPT", Origin: state.KMSOriginExternal, Policy: rdDefaultPolicy}}),
			"AccessDeniedException", 0, "kms_create_key carries no access decision"},
		{"no principal", disable("", w.onKey("kms:DisableKey")), "AccessDeniedException", 0, "kms_update_key needs a principal"},
		{"a principal that does not exist", disable("mallory", w.onKey("kms:DisableKey")),
			"AccessDeniedException", 0, "The principal mallory no longer exists"},
		{"a user as actor", func() *state.Command { c := disable("ops", w.onKey("kms:DisableKey")); c.Actor = "alice"; return c }(),
			"", ck.CKR_ARGUMENTS_BAD, "kms_update_key is made by a principal, not a user"},
		// 6. Account and region.
		{"no account", func() *state.Command { c := disable("ops", w.onKey("kms:DisableKey")); c.KMS.Account = ""; return c }(),
			"", ck.CKR_ARGUMENTS_BAD, "kms_update_key needs its account and region"},
		{"a short account", func() *state.Command {
			c := disable("ops", w.onKey("kms:DisableKey"))
			c.KMS.Account = "11112222333"
			return c
		}(),
			"", ck.CKR_ARGUMENTS_BAD, "kms_update_key needs its account and region"},
		{"no region", func() *state.Command { c := disable("ops", w.onKey("kms:DisableKey")); c.KMS.Region = ""; return c }(),
			"", ck.CKR_ARGUMENTS_BAD, "kms_update_key needs its account and region"},
		{"a malformed region", func() *state.Command {
			c := disable("ops", w.onKey("kms:DisableKey"))
			c.KMS.Region = "EU_WEST_1"
			return c
		}(),
			"", ck.CKR_ARGUMENTS_BAD, "kms_update_key needs its account and region"},
		{"IAM-only action without account", func() *state.Command {
			c := rdCmd(state.OpKMSCreateKey, "ops", state.KMSCommand{Key: &state.KMSKey{ID: "k2", Region: rdRegion, Account: rdAccount,
				KeySpec: "SYMMETRIC_DEFAULT", KeyUsage: "ENCRYPT_DECRYPT", Origin: state.KMSOriginExternal, Policy: rdDefaultPolicy}},
				state.KMSAccess{Action: "kms:CreateKey", Resource: "*"})
			c.KMS.Account = ""
			return c
		}(), "", ck.CKR_ARGUMENTS_BAD, "kms_create_key needs its account and region"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w.refused(t, tc.c, tc.exception, tc.rv, tc.msg)
			assert.Equal(t, state.KMSEnabled, w.readKey(t, w.key).State)
		})
	}
	// The control: the same command, well formed, applies.
	require.NoError(t, w.submit(disable("ops", w.onKey("kms:DisableKey"))))
	assert.Equal(t, state.KMSDisabled, w.readKey(t, w.key).State)
}

// TestKMSRedecideClaimedAccess: bob has no identity policy and the key's
// policy delegates to the account, so nothing allows him; a command whose
// access entry claims the action is refused by apply, the key unchanged.
// A key policy that names only ops refuses bob with AWS's other message.
func TestKMSRedecideClaimedAccess(t *testing.T) {
	w := newRDWorld(t)
	for _, tc := range []struct {
		action string
		kc     state.KMSCommand
	}{
		{"kms:DisableKey", state.KMSCommand{Change: state.KMSChangeDisable}},
		{"kms:UpdateKeyDescription", state.KMSCommand{Change: state.KMSChangeDescription, Description: "bob was here"}},
		{"kms:ScheduleKeyDeletion", state.KMSCommand{Change: state.KMSChangeSchedule, Days: 7}},
		{"kms:PutKeyPolicy", state.KMSCommand{Change: state.KMSChangePolicy, Policy: rdOpsOnly}},
		{"kms:TagResource", state.KMSCommand{Change: state.KMSChangeTag, Tags: []state.KMSTag{{Key: "owner", Value: "bob"}}}},
	} {
		t.Run(tc.action, func(t *testing.T) {
			before := w.readKey(t, w.key)
			kc := tc.kc
			kc.KeyID = w.key
			w.refused(t, rdCmd(state.OpKMSUpdateKey, "bob", kc, w.onKey(tc.action)),
				"AccessDeniedException", 0, rdDenied("bob", tc.action, w.arn(), "identity"))
			assert.Equal(t, before, w.readKey(t, w.key))
		})
	}
	// Once the key policy names ops alone, bob is refused for want of a
	// resource-based allow, even with an admin identity policy.
	require.NoError(t, w.submit(rdCmd(state.OpKMSUpdateKey, "ops", state.KMSCommand{KeyID: w.key, Change: state.KMSChangePolicy, Policy: rdOpsOnly},
		w.onKey("kms:PutKeyPolicy"))))
	w.setPolicy(t, "bob", rdAdmin)
	w.refused(t, rdCmd(state.OpKMSUpdateKey, "bob", state.KMSCommand{KeyID: w.key, Change: state.KMSChangeDisable}, w.onKey("kms:DisableKey")),
		"AccessDeniedException", 0, rdDenied("bob", "kms:DisableKey", w.arn(), "resource"))
	assert.Equal(t, state.KMSEnabled, w.readKey(t, w.key).State)
}

// TestKMSRedecideRace: carol's DisableKey is allowed by her admin
// identity policy when the serving node decides it; something changes
// before the command reaches the log. Each row is a fresh world: what
// lands between, and how apply answers the command.
func TestKMSRedecideRace(t *testing.T) {
	for _, tc := range []struct {
		name      string
		between   func(t *testing.T, w *rdWorld)
		exception string
		msg       string // with the key's ARN appended where it has one
	}{
		{"nothing: applies", func(*testing.T, *rdWorld) {}, "", ""},
		{"an unrelated identity policy change: applies", func(t *testing.T, w *rdWorld) { w.setPolicy(t, "bob", rdAdmin) }, "", ""},
		{"her identity policy deleted", func(t *testing.T, w *rdWorld) { w.setPolicy(t, "carol", "") },
			"AccessDeniedException", rdDenied("carol", "kms:DisableKey", "%s", "identity")},
		{"her identity policy now denies", func(t *testing.T, w *rdWorld) { w.setPolicy(t, "carol", rdDenyAll) },
			"AccessDeniedException", "User: " + rdArn("carol") + " is not authorized to perform: kms:DisableKey on resource: %s with an explicit deny in an identity-based policy"},
		{"the key policy no longer delegates to the account", func(t *testing.T, w *rdWorld) {
			require.NoError(t, w.submit(rdCmd(state.OpKMSUpdateKey, "ops", state.KMSCommand{KeyID: w.key, Change: state.KMSChangePolicy, Policy: rdOpsOnly},
				w.onKey("kms:PutKeyPolicy"))))
		}, "AccessDeniedException", rdDenied("carol", "kms:DisableKey", "%s", "resource")},
		{"the principal deleted", func(t *testing.T, w *rdWorld) {
			require.NoError(t, w.submit(&state.Command{Op: state.OpKMSPrincipalDelete, Actor: w.co.User, Role: w.co.Role, KMS: &state.KMSCommand{Name: "carol"}}))
		}, "AccessDeniedException", "The principal carol no longer exists"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newRDWorld(t)
			w.setPolicy(t, "carol", rdAdmin)
			// Decided at this index: the serving node's check passes.
			c := rdCmd(state.OpKMSUpdateKey, "carol", state.KMSCommand{KeyID: w.key, Change: state.KMSChangeDisable}, w.onKey("kms:DisableKey"))
			tc.between(t, w)
			before := w.readKey(t, w.key)
			require.Equal(t, state.KMSEnabled, before.State)
			if tc.exception == "" {
				require.NoError(t, w.submit(c))
				assert.Equal(t, state.KMSDisabled, w.readKey(t, w.key).State)
				return
			}
			msg := tc.msg
			if len(msg) > 0 {
				msg = sprintfArn(msg, w.arn())
			}
			w.refused(t, c, tc.exception, 0, msg)
			assert.Equal(t, before, w.readKey(t, w.key))
		})
	}
}

// sprintfArn puts the key's ARN where msg has %s (once), if it has one.
func sprintfArn(msg, arn string) string {
	for i := 0; i+1 < len(msg); i++ {
		if msg[i] == '%' && msg[i+1] == 's' {
			return msg[:i] + arn + msg[i+2:]
		}
	}
	return msg
}

func rdGrantID(n byte) string { return hex.EncodeToString(append(make([]byte, 31), n)) }

// TestKMSRedecideCreateGrantNarrowing: carol holds a grant for
// [Encrypt, CreateGrant] and makes grants for bob. The serving node's
// access entry claims kms:GrantOperations [Encrypt] whatever she asks;
// apply decides with the operations and constraints of the grant in the
// command, so a grant wider than hers is refused. Her grant reaches apply
// as a stored grant or as a grant token's terms (Tokens); a token of a
// grant revoked since is not honoured.
func TestKMSRedecideCreateGrantNarrowing(t *testing.T) {
	const (
		stored = "stored grant"
		token  = "grant token"
		gone   = "grant token of a revoked grant"
	)
	holderEC := &state.KMSGrantConstraints{Equals: map[string]string{"dept": "a"}}
	for _, tc := range []struct {
		source   string
		holderEC *state.KMSGrantConstraints
		ops      []string
		ec       *state.KMSGrantConstraints
		ok       bool
	}{
		{stored, nil, []string{"Encrypt"}, nil, true},
		{stored, nil, []string{"Encrypt", "CreateGrant"}, nil, true},
		{stored, nil, []string{"Decrypt"}, nil, false},
		{stored, nil, []string{"Encrypt", "Decrypt"}, nil, false},
		{stored, nil, []string{"RetireGrant"}, nil, false},
		{token, nil, []string{"Encrypt"}, nil, true},
		{token, nil, []string{"Decrypt"}, nil, false},
		{gone, nil, []string{"Encrypt"}, nil, false},
		// Her grant's constraints: a new grant must be as strict.
		{stored, holderEC, []string{"Encrypt"}, holderEC, true},
		{stored, holderEC, []string{"Encrypt"}, nil, false},
		{stored, holderEC, []string{"Encrypt"}, &state.KMSGrantConstraints{Equals: map[string]string{"dept": "b"}}, false},
		{token, holderEC, []string{"Encrypt"}, &state.KMSGrantConstraints{Subset: map[string]string{"dept": "a"}}, false},
	} {
		name := tc.source + " " + joinOps(tc.ops)
		if tc.holderEC != nil {
			name += " under constraints"
			if tc.ec != nil {
				name += " " + joinEC(tc.ec)
			}
		}
		t.Run(name, func(t *testing.T) {
			w := newRDWorld(t)
			holder := state.KMSGrant{ID: rdGrantID(1), Region: rdRegion, Account: rdAccount, KeyID: w.key, Grantee: rdArn("carol"),
				Operations: []string{"Encrypt", "CreateGrant"}, Constraints: tc.holderEC, Issuer: rdArn("ops")}
			grantAccess := w.onKey("kms:CreateGrant")
			grantAccess.Context["kms:GrantOperations"] = []string{"Encrypt"} // what the serving node claims
			grantAccess.Context["kms:GrantIsForAWSResource"] = []string{"false"}
			if tc.source != token {
				h := holder
				require.NoError(t, w.submit(rdCmd(state.OpKMSGrant, "ops", state.KMSCommand{KeyID: w.key, Change: state.KMSGrantCreate, Grant: &h},
					w.onKey("kms:CreateGrant"))))
			}
			if tc.source == gone {
				require.NoError(t, w.submit(rdCmd(state.OpKMSGrant, "ops", state.KMSCommand{KeyID: w.key, Change: state.KMSGrantRevoke, GrantID: holder.ID},
					w.onKey("kms:RevokeGrant"))))
			}
			if tc.source != stored {
				grantAccess.Tokens = []state.KMSGrant{holder}
			}
			ng := &state.KMSGrant{ID: rdGrantID(2), Region: rdRegion, Account: rdAccount, KeyID: w.key, Grantee: rdArn("bob"),
				Operations: tc.ops, Constraints: tc.ec, Issuer: rdArn("carol")}
			c := rdCmd(state.OpKMSGrant, "carol", state.KMSCommand{KeyID: w.key, Change: state.KMSGrantCreate, Grant: ng}, grantAccess)
			newRow := state.KMSGrantKeyPrefix(rdRegion, w.key) + ng.ID
			if tc.ok {
				require.NoError(t, w.submit(c))
				var got state.KMSGrant
				require.NoError(t, state.ReadKMSRow(w.m.Store().Meta, w.m.Sealer(), newRow, &got))
				assert.Equal(t, tc.ops, got.Operations)
				assert.Equal(t, rdArn("bob"), got.Grantee)
				return
			}
			w.refused(t, c, "AccessDeniedException", 0, rdDenied("carol", "kms:CreateGrant", w.arn(), "identity"))
			_, err := w.m.Store().Meta(newRow)
			assert.ErrorIs(t, err, state.ErrNotFound)
		})
	}
}

func joinOps(ops []string) string {
	s := "["
	for i, o := range ops {
		if i > 0 {
			s += ","
		}
		s += o
	}
	return s + "]"
}

func joinEC(c *state.KMSGrantConstraints) string {
	s := ""
	for k, v := range c.Equals {
		s += "equals " + k + "=" + v
	}
	for k, v := range c.Subset {
		s += "subset " + k + "=" + v
	}
	return s
}

// Custom key stores.

const (
	rdCluster  = "cluster-abcdefghijklmnop"
	rdHSMStore = "cks-0123456789abcdef0"
	rdXKSStore = "cks-0123456789abcdef1"
)

// clusterCert is a self-signed client certificate and its key, PEM.
func clusterCert(t *testing.T) (string, []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "kms client"},
		NotBefore: time.Unix(1_700_000_000, 0), NotAfter: time.Unix(2_000_000_000, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	kd, err := x509.MarshalPKCS8PrivateKey(k)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
}

// withStores adds an HSM cluster, an AWS_CLOUDHSM store on it and an
// EXTERNAL_KEY_STORE, both connected by ops and their connectors.
func (w *rdWorld) withStores(t *testing.T) {
	t.Helper()
	s := w.m.Sealer()
	certPEM, keyPEM := clusterCert(t)
	sealedKey, err := s.Seal(0, state.KMSClusterKeyOwner(rdCluster), keyPEM)
	require.NoError(t, err)
	require.NoError(t, w.submit(&state.Command{Op: state.OpKMSHSMCluster, Actor: w.co.User, Role: w.co.Role, Time: rdTime,
		KMS: &state.KMSCommand{Change: state.KMSClusterAdd, HSMCluster: &state.KMSHSMCluster{ID: rdCluster, Nodes: []string{"127.0.0.1:2225"},
			CertPEM: certPEM, Key: sealedKey}}}))
	pw, err := s.Seal(0, state.KMSStoreSecretOwner(rdHSMStore), []byte("kmsuser-password-x"))
	require.NoError(t, err)
	sec, err := s.Seal(0, state.KMSStoreSecretOwner(rdXKSStore), []byte("xks-secret-0123456789abcdef0123456789"))
	require.NoError(t, err)
	for _, st := range []*state.KMSKeyStore{
		{ID: rdHSMStore, Name: "hsm", Type: state.KMSStoreCloudHSM, ClusterID: rdCluster, TrustAnchor: certPEM, Password: pw},
		{ID: rdXKSStore, Name: "xks", Type: state.KMSStoreExternal, XksEndpoint: "https://127.0.0.1:8443", XksPath: "/kms/xks/v1",
			XksConnectivity: "PUBLIC_ENDPOINT", XksAccessKeyID: "AKIAXKSPROXY00000001", XksSecret: sec},
	} {
		require.NoError(t, w.submit(rdCmd(state.OpKMSKeyStore, "ops", state.KMSCommand{Change: state.KMSStoreCreate, Store: st},
			state.KMSAccess{Action: "kms:CreateCustomKeyStore", Resource: "*"})))
		w.storeChange(t, st.ID, state.KMSStoreConnect)
		require.NoError(t, w.submit(&state.Command{Op: state.OpKMSKeyStoreState, Time: rdTime, KMS: &state.KMSCommand{Region: rdRegion,
			Store: &state.KMSKeyStore{ID: st.ID, Attempt: 1, ConnectionState: state.KMSStoreConnected}}}))
	}
}

// storeChange is ops's connect, disconnect or delete of a store.
func (w *rdWorld) storeChange(t *testing.T, id, change string) {
	t.Helper()
	action := map[string]string{state.KMSStoreConnect: "kms:ConnectCustomKeyStore", state.KMSStoreDisconnect: "kms:DisconnectCustomKeyStore",
		state.KMSStoreDelete: "kms:DeleteCustomKeyStore"}[change]
	require.NoError(t, w.submit(rdCmd(state.OpKMSKeyStore, "ops", state.KMSCommand{Change: change, Store: &state.KMSKeyStore{ID: id}},
		state.KMSAccess{Action: action, Resource: "*"})))
}

// storeKeyCmd is ops's CreateKey of a key in a custom key store: origin
// AWS_CLOUDHSM (no objects here) or EXTERNAL_KEY_STORE (its inner key's
// objects and an external key ID).
func (w *rdWorld) storeKeyCmd(t *testing.T, id, origin, store, xksKey string) *state.Command {
	t.Helper()
	k := &state.KMSKey{ID: id, Region: rdRegion, Account: rdAccount, KeySpec: "SYMMETRIC_DEFAULT", KeyUsage: "ENCRYPT_DECRYPT",
		Origin: origin, Policy: rdDefaultPolicy, CustomKeyStoreID: store, XksKeyID: xksKey}
	c := rdCmd(state.OpKMSCreateKey, "ops", state.KMSCommand{Key: k}, state.KMSAccess{Action: "kms:CreateKey", Resource: "*"})
	if origin == state.KMSOriginExternalKS {
		objs, err := w.e.NewKMSMaterial(id, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
		require.NoError(t, err)
		c.Objects = objs
	}
	return c
}

// TestKMSRedecideStoreKeys: CreateKey in a custom key store is decided by
// the serving node while its store is CONNECTED; apply checks the store
// again (checkStoreKey for AWS_CLOUDHSM, checkXKSKey for
// EXTERNAL_KEY_STORE). Each row is a fresh world with both stores
// connected: what lands between, the key, and apply's answer.
func TestKMSRedecideStoreKeys(t *testing.T) {
	const newKey = "0f5e2b9c-2222-4a4a-8b8b-000000000002"
	hsm, xks := state.KMSOriginCloudHSM, state.KMSOriginExternalKS
	disconnect := func(id string) func(*testing.T, *rdWorld) {
		return func(t *testing.T, w *rdWorld) { w.storeChange(t, id, state.KMSStoreDisconnect) }
	}
	remove := func(id string) func(*testing.T, *rdWorld) {
		return func(t *testing.T, w *rdWorld) {
			w.storeChange(t, id, state.KMSStoreDisconnect)
			w.storeChange(t, id, state.KMSStoreDelete)
		}
	}
	none := func(*testing.T, *rdWorld) {}
	for _, tc := range []struct {
		name      string
		between   func(*testing.T, *rdWorld)
		origin    string
		store     string
		xksKey    string
		edit      func(t *testing.T, w *rdWorld, c *state.Command)
		exception string
		rv        uint64
		msg       string
	}{
		// checkStoreKey.
		{"AWS_CLOUDHSM in its connected store", none, hsm, rdHSMStore, "", nil, "", 0, ""},
		{"AWS_CLOUDHSM, the store disconnected since", disconnect(rdHSMStore), hsm, rdHSMStore, "", nil,
			"CustomKeyStoreInvalidStateException", 0, "The custom key store " + rdHSMStore + " is DISCONNECTED; CreateKey needs it CONNECTED"},
		{"AWS_CLOUDHSM, the store connecting again since", func(t *testing.T, w *rdWorld) {
			w.storeChange(t, rdHSMStore, state.KMSStoreDisconnect)
			w.storeChange(t, rdHSMStore, state.KMSStoreConnect)
		}, hsm, rdHSMStore, "", nil,
			"CustomKeyStoreInvalidStateException", 0, "The custom key store " + rdHSMStore + " is CONNECTING; CreateKey needs it CONNECTED"},
		{"AWS_CLOUDHSM, the store deleted since", remove(rdHSMStore), hsm, rdHSMStore, "", nil,
			"CustomKeyStoreNotFoundException", 0, "Custom key store " + rdHSMStore + " does not exist"},
		{"AWS_CLOUDHSM in an external key store", none, hsm, rdXKSStore, "", nil,
			"ValidationException", 0, "A key of Origin AWS_CLOUDHSM must be in an AWS_CLOUDHSM key store"},
		{"AWS_CLOUDHSM with objects here", none, hsm, rdHSMStore, "", func(t *testing.T, w *rdWorld, c *state.Command) {
			objs, err := w.e.NewKMSMaterial(newKey, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
			require.NoError(t, err)
			c.Objects = objs
		}, "", ck.CKR_ARGUMENTS_BAD, "a key of a custom key store has no objects here"},
		{"AWS_CLOUDHSM of another region", none, hsm, rdHSMStore, "", func(_ *testing.T, _ *rdWorld, c *state.Command) { c.KMS.Key.Region = "us-east-1" },
			"CustomKeyStoreNotFoundException", 0, "Custom key store " + rdHSMStore + " does not exist"},
		{"AWS_CLOUDHSM asymmetric", none, hsm, rdHSMStore, "", func(_ *testing.T, _ *rdWorld, c *state.Command) {
			c.KMS.Key.KeySpec, c.KMS.Key.KeyUsage = "RSA_2048", "ENCRYPT_DECRYPT"
		}, "UnsupportedOperationException", 0, "Keys in a custom key store must be SYMMETRIC_DEFAULT"},
		// checkXKSKey.
		{"EXTERNAL_KEY_STORE in its connected store", none, xks, rdXKSStore, "ext-key-1", nil, "", 0, ""},
		{"EXTERNAL_KEY_STORE, the store disconnected since", disconnect(rdXKSStore), xks, rdXKSStore, "ext-key-1", nil,
			"CustomKeyStoreInvalidStateException", 0, "This KMS key is in a custom key store that is not connected to its external key store proxy. Connect the external key store and try the request again."},
		{"EXTERNAL_KEY_STORE, the store deleted since", remove(rdXKSStore), xks, rdXKSStore, "ext-key-1", nil,
			"CustomKeyStoreNotFoundException", 0, "Custom key store " + rdXKSStore + " does not exist"},
		{"EXTERNAL_KEY_STORE, its external key taken since", func(t *testing.T, w *rdWorld) {
			require.NoError(t, w.submit(w.storeKeyCmd(t, "0f5e2b9c-3333-4a4a-8b8b-000000000003", xks, rdXKSStore, "ext-key-1")))
		}, xks, rdXKSStore, "ext-key-1", nil,
			"XksKeyAlreadyInUseException", 0, "The external key ext-key-1 is already associated with a KMS key in this external key store"},
		{"EXTERNAL_KEY_STORE in an AWS_CLOUDHSM store", none, xks, rdHSMStore, "ext-key-1", nil,
			"ValidationException", 0, "A key of Origin EXTERNAL_KEY_STORE must be in an EXTERNAL_KEY_STORE"},
		{"EXTERNAL_KEY_STORE with a malformed external key ID", none, xks, rdXKSStore, "ext key/1", nil,
			"ValidationException", 0, "XksKeyId must be 1 to 128 of A-Z, a-z, 0-9, '.', '-' and '_'"},
		{"EXTERNAL_KEY_STORE for signing", none, xks, rdXKSStore, "ext-key-1", func(_ *testing.T, _ *rdWorld, c *state.Command) {
			c.KMS.Key.KeySpec, c.KMS.Key.KeyUsage = "RSA_2048", "SIGN_VERIFY"
		}, "UnsupportedOperationException", 0, "Keys in an external key store must be SYMMETRIC_DEFAULT keys for ENCRYPT_DECRYPT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newRDWorld(t)
			w.withStores(t)
			c := w.storeKeyCmd(t, newKey, tc.origin, tc.store, tc.xksKey)
			if tc.edit != nil {
				tc.edit(t, w, c)
			}
			tc.between(t, w)
			if tc.exception == "" && tc.rv == 0 {
				require.NoError(t, w.submit(c))
				k := w.readKey(t, newKey)
				assert.Equal(t, state.KMSEnabled, k.State)
				assert.Equal(t, tc.origin, k.Origin)
				assert.Equal(t, tc.store, k.CustomKeyStoreID)
				assert.Equal(t, tc.xksKey, k.XksKeyID)
				return
			}
			w.refused(t, c, tc.exception, tc.rv, tc.msg)
			for _, region := range []string{rdRegion, c.KMS.Key.Region} {
				_, err := w.m.Store().Meta(state.KMSKeyMeta(region, newKey))
				assert.ErrorIs(t, err, state.ErrNotFound)
			}
		})
	}
}

// TestKMSRedecideEntriesBindToCommand: each entry is decided on its own,
// so a command must carry one for its own action on its own key (and, for
// an alias, on the alias); otherwise a faulty node's entry for an action
// the principal may take, on a key it may use or on a key that does not
// exist, would let any command through. bob may describe any key, list
// keys, and disable the second key only; his DisableKey of the first key
// is refused whatever entries he brings.
func TestKMSRedecideEntriesBindToCommand(t *testing.T) {
	const second = "0f5e2b9c-4444-4a4a-8b8b-000000000004"
	secondArn := state.KMSArn(rdRegion, rdAccount, "key/"+second)
	bobPolicy := `{"Version":"2012-10-17","Statement":[` +
		`{"Effect":"Allow","Action":["kms:DescribeKey","kms:ListKeys"],"Resource":"*"},` +
		`{"Effect":"Allow","Action":"kms:DisableKey","Resource":"` + secondArn + `"}]}`
	w := newRDWorld(t)
	w.createKey(t, second)
	w.setPolicy(t, "bob", bobPolicy)
	on := func(action, key, resource string) state.KMSAccess {
		return state.KMSAccess{Action: action, KeyID: key, Resource: resource}
	}
	disable := func(who, key string, access ...state.KMSAccess) *state.Command {
		return rdCmd(state.OpKMSUpdateKey, who, state.KMSCommand{KeyID: key, Change: state.KMSChangeDisable}, access...)
	}
	noDecision := "kms_update_key carries no access decision for kms:DisableKey on key " + w.key
	for _, tc := range []struct {
		name   string
		access []state.KMSAccess
	}{
		{"the action on a key that does not exist", []state.KMSAccess{on("kms:DisableKey", "0f5e2b9c-9999-4a4a-8b8b-000000000009", w.arn())}},
		{"the action on another key he may disable", []state.KMSAccess{on("kms:DisableKey", second, secondArn)}},
		{"another action on the key", []state.KMSAccess{on("kms:DescribeKey", w.key, w.arn())}},
		{"an IAM-only action", []state.KMSAccess{on("kms:ListKeys", "", "*")}},
		{"the action as IAM-only, on the other key's ARN", []state.KMSAccess{on("kms:DisableKey", "", secondArn)}},
		{"two entries, each allowed", []state.KMSAccess{on("kms:DescribeKey", w.key, w.arn()), on("kms:DisableKey", second, secondArn)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w.refused(t, disable("bob", w.key, tc.access...), "AccessDeniedException", 0, noDecision)
			assert.Equal(t, state.KMSEnabled, w.readKey(t, w.key).State)
			assert.Equal(t, state.KMSEnabled, w.readKey(t, second).State)
		})
	}
	// The entry for the command's own action and key is decided as ever.
	w.refused(t, disable("bob", w.key, on("kms:DisableKey", w.key, w.arn()), on("kms:DisableKey", second, secondArn)),
		"AccessDeniedException", 0, rdDenied("bob", "kms:DisableKey", w.arn(), "identity"))
	require.NoError(t, w.submit(disable("bob", second, on("kms:DisableKey", second, secondArn))))
	assert.Equal(t, state.KMSDisabled, w.readKey(t, second).State)
	require.NoError(t, w.submit(disable("ops", w.key, on("kms:disablekey", w.key, w.arn()))), "actions compare without case")
	assert.Equal(t, state.KMSDisabled, w.readKey(t, w.key).State)

	// Other ops: the entry must name their own action (and key, and
	// alias).
	aliasX := state.KMSArn(rdRegion, rdAccount, "alias/x")
	for _, tc := range []struct {
		name string
		c    *state.Command
		msg  string
	}{
		{"CreateKey with a ListKeys entry", rdCmd(state.OpKMSCreateKey, "bob", state.KMSCommand{Key: &state.KMSKey{ID: "k3", Region: rdRegion,
			Account: rdAccount, KeySpec: "SYMMETRIC_DEFAULT", KeyUsage: "ENCRYPT_DECRYPT", Origin: state.KMSOriginExternal, Policy: rdDefaultPolicy}},
			on("kms:ListKeys", "", "*")), "kms_create_key carries no access decision for kms:CreateKey"},
		{"CreateGrant with a DescribeKey entry", rdCmd(state.OpKMSGrant, "bob", state.KMSCommand{KeyID: w.key, Change: state.KMSGrantCreate,
			Grant: &state.KMSGrant{ID: rdGrantID(3), Region: rdRegion, KeyID: w.key, Grantee: rdArn("bob"), Operations: []string{"Decrypt"}}},
			on("kms:DescribeKey", w.key, w.arn())), "kms_grant carries no access decision for kms:CreateGrant on key " + w.key},
		{"CreateAlias with only the alias's side", rdCmd(state.OpKMSAlias, "ops", state.KMSCommand{KeyID: w.key, Change: state.KMSAliasCreate, Alias: "alias/x"},
			on("kms:CreateAlias", "", state.KMSArn(rdRegion, rdAccount, "alias/x"))), "kms_alias carries no access decision for kms:CreateAlias on key " + w.key},
		{"CreateAlias with only the key's side", rdCmd(state.OpKMSAlias, "ops", state.KMSCommand{KeyID: w.key, Change: state.KMSAliasCreate, Alias: "alias/x"},
			on("kms:CreateAlias", w.key, w.arn())), "kms_alias carries no access decision for kms:CreateAlias on " + aliasX},
		{"CreateAlias with the alias's side on *", rdCmd(state.OpKMSAlias, "ops", state.KMSCommand{KeyID: w.key, Change: state.KMSAliasCreate, Alias: "alias/x"},
			on("kms:CreateAlias", "", "*"), on("kms:CreateAlias", w.key, w.arn())), "kms_alias carries no access decision for kms:CreateAlias on " + aliasX},
		{"DeleteAlias decided on another alias", rdCmd(state.OpKMSAlias, "ops", state.KMSCommand{Change: state.KMSAliasDelete, Alias: "alias/x"},
			on("kms:DeleteAlias", "", state.KMSArn(rdRegion, rdAccount, "alias/y"))), "kms_alias carries no access decision for kms:DeleteAlias on " + aliasX},
		{"DeleteCustomKeyStore with a Connect entry", rdCmd(state.OpKMSKeyStore, "ops", state.KMSCommand{Change: state.KMSStoreDelete,
			Store: &state.KMSKeyStore{ID: rdHSMStore}}, on("kms:ConnectCustomKeyStore", "", "*")),
			"kms_key_store carries no access decision for kms:DeleteCustomKeyStore"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w.refused(t, tc.c, "AccessDeniedException", 0, tc.msg)
		})
	}
}

// TestKMSOpActionsTable: every op a principal makes has a row of the
// action it needs, and every action is a kms: action.
func TestKMSOpActionsTable(t *testing.T) {
	table := state.KMSOpActions()
	ops := state.KMSPrincipalOps()
	var rows []state.Op
	for op, byChange := range table {
		rows = append(rows, op)
		require.NotEmpty(t, byChange, op)
		for change, action := range byChange {
			assert.Regexp(t, `^kms:[A-Z][A-Za-z]+$`, action, "%s %s", op, change)
		}
	}
	assert.ElementsMatch(t, ops, rows)
}
