package hsmd

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/internal/kmstest"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/pki"
)

// issued is a PEM certificate and key from a fresh cluster CA of id.
func issued(t *testing.T, id string, node bool) (cert, key []byte) {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.CreateClusterCA(dir, "test CA", id)
	require.NoError(t, err)
	if node {
		require.NoError(t, ca.IssueNode(dir, "n1", nil))
	} else {
		require.NoError(t, ca.IssueClient(dir, "n1"))
	}
	cert, err = os.ReadFile(pki.CertPath(dir, "n1"))
	require.NoError(t, err)
	key, err = os.ReadFile(pki.KeyPath(dir, "n1"))
	require.NoError(t, err)
	return cert, key
}

// The HSM cluster calls are a crypto officer's, a node without [kms] says
// so, and each bad add request is refused with a message that names the
// fault (never the key), changing nothing.
func TestKMSHSMClusterHandlers(t *testing.T) {
	const id = "cluster-abcdefghijk2"
	cert, key := issued(t, id, false)
	otherCert, otherKey := issued(t, "cluster-zzzzzzzzzzz2", false)
	nodeCert, nodeKey := issued(t, id, true)
	good := func() *hsmpb.KMSAddHSMClusterRequest {
		return &hsmpb.KMSAddHSMClusterRequest{ClusterId: id, Nodes: []string{"127.0.0.1:4001", "127.0.0.1:4002"}, CertPem: string(cert), KeyPem: key}
	}

	noKMS := kmsServer(t, nil)
	for _, role := range []object.Role{object.RoleCU, 0} {
		ctx := as(role)
		_, e1 := noKMS.KMSAddHSMCluster(ctx, good())
		_, e2 := noKMS.KMSListHSMClusters(ctx, &hsmpb.Empty{})
		_, e3 := noKMS.KMSRemoveHSMCluster(ctx, &hsmpb.KMSHSMClusterRequest{ClusterId: id})
		for _, err := range []error{e1, e2, e3} {
			assert.Equal(t, uint64(ck.CKR_USER_NOT_LOGGED_IN), hsmerr.RV(err), "%v", err)
			assert.ErrorContains(t, err, "only a crypto officer")
		}
	}
	_, err := noKMS.KMSListHSMClusters(as(object.RoleCO), &hsmpb.Empty{})
	assert.Equal(t, uint64(ck.CKR_FUNCTION_NOT_SUPPORTED), hsmerr.RV(err))

	s := kmsServer(t, kmstest.Start(t).Service)
	// The officer kmstest made: the service's commands name their actor.
	co := context.WithValue(context.Background(), keyCaller, engine.Caller{User: "admin", Role: object.RoleCO, Session: 1})
	for _, tc := range []struct {
		name   string
		change func(r *hsmpb.KMSAddHSMClusterRequest)
		want   string
	}{
		{"no ID", func(r *hsmpb.KMSAddHSMClusterRequest) { r.ClusterId = "" }, "cluster_id: "},
		{"a bad ID", func(r *hsmpb.KMSAddHSMClusterRequest) { r.ClusterId = "cluster/../x" }, "cluster_id: "},
		{"no nodes", func(r *hsmpb.KMSAddHSMClusterRequest) { r.Nodes = nil }, "give 1 to 64 node addresses"},
		{"65 nodes", func(r *hsmpb.KMSAddHSMClusterRequest) { r.Nodes = make([]string, 65) }, "give 1 to 64 node addresses"},
		{"no port", func(r *hsmpb.KMSAddHSMClusterRequest) { r.Nodes = []string{"127.0.0.1"} }, `"127.0.0.1" is not host:port`},
		{"no host", func(r *hsmpb.KMSAddHSMClusterRequest) { r.Nodes = []string{":4001"} }, `":4001" is not host:port`},
		{"a node twice", func(r *hsmpb.KMSAddHSMClusterRequest) { r.Nodes = []string{"h:1", "h:1"} }, `"h:1" is given twice`},
		{"no key", func(r *hsmpb.KMSAddHSMClusterRequest) { r.KeyPem = nil }, "both needed"},
		{"no certificate", func(r *hsmpb.KMSAddHSMClusterRequest) { r.CertPem = "" }, "both needed"},
		{"a huge key", func(r *hsmpb.KMSAddHSMClusterRequest) { r.KeyPem = make([]byte, 65<<10) }, "larger than"},
		{"another certificate's key", func(r *hsmpb.KMSAddHSMClusterRequest) { r.KeyPem = otherKey }, "the client certificate and key: "},
		{"not PEM", func(r *hsmpb.KMSAddHSMClusterRequest) { r.CertPem = "hello" }, "the client certificate and key: "},
		{"another cluster's certificate", func(r *hsmpb.KMSAddHSMClusterRequest) { r.CertPem, r.KeyPem = string(otherCert), otherKey },
			"bound to cluster cluster-zzzzzzzzzzz2, not " + id},
		{"a node certificate", func(r *hsmpb.KMSAddHSMClusterRequest) { r.CertPem, r.KeyPem = string(nodeCert), nodeKey }, "not a client certificate"},
	} {
		r := good()
		tc.change(r)
		_, err := s.KMSAddHSMCluster(co, r)
		assert.Equal(t, uint64(ck.CKR_ARGUMENTS_BAD), hsmerr.RV(err), "%s: %v", tc.name, err)
		assert.ErrorContains(t, err, tc.want, tc.name)
		if err != nil {
			assert.NotContains(t, err.Error(), "PRIVATE KEY", tc.name)
			assert.NotContains(t, err.Error(), string(key[40:80]), tc.name)
		}
	}
	l, err := s.KMSListHSMClusters(co, &hsmpb.Empty{})
	require.NoError(t, err)
	assert.Empty(t, l.GetClusters(), "a refused add changed something")

	_, err = s.KMSAddHSMCluster(co, good())
	require.NoError(t, err)
	l, err = s.KMSListHSMClusters(co, &hsmpb.Empty{})
	require.NoError(t, err)
	require.Len(t, l.GetClusters(), 1)
	got := l.GetClusters()[0]
	assert.Equal(t, id, got.GetClusterId())
	assert.Equal(t, []string{"127.0.0.1:4001", "127.0.0.1:4002"}, got.GetNodes())
	assert.Equal(t, string(cert), got.GetCertPem())
	assert.NotZero(t, got.GetAddedUnix())

	_, err = s.KMSRemoveHSMCluster(co, &hsmpb.KMSHSMClusterRequest{ClusterId: "bad/id"})
	assert.Equal(t, uint64(ck.CKR_ARGUMENTS_BAD), hsmerr.RV(err))
	_, err = s.KMSRemoveHSMCluster(co, &hsmpb.KMSHSMClusterRequest{ClusterId: id})
	require.NoError(t, err)
	_, err = s.KMSRemoveHSMCluster(co, &hsmpb.KMSHSMClusterRequest{ClusterId: id})
	assert.ErrorContains(t, err, "is not known to this KMS")
}
