package kms_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/internal/kmstest"
	"github.com/openhsm/openhsm/object"
)

// testCA is a CA certificate and a client certificate and key it issued,
// in PEM: what `hsm kms cluster add` takes and a store's trust anchor.
func testCA(t *testing.T) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "store CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caT, caT, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	cT := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kms"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	cDER, err := x509.CreateCertificate(rand.Reader, cT, caT, &k.PublicKey, caKey)
	require.NoError(t, err)
	kDER, err := x509.MarshalPKCS8PrivateKey(k)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cDER}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kDER})
}

func inProcessSDK(t *testing.T, srv *kmstest.Server) *awskms.Client {
	env := map[string]string{}
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return sdkClient(t, env, "")
}

// TestCustomKeyStoreLifecycle drives the six operations through the
// unchanged SDK on one in-process node with a real store cluster B:
// creating a store checks B (known, answering, its CA the trust anchor, two
// reachable nodes), a store of B connects to FAILED with NETWORK_ERRORS
// while B is down, and every refusal is AWS's exception.
// waitStore waits (bounded) until the store leaves CONNECTING and answers
// its state and error code. The bound is above the connector's own
// (connectTimeout, then a few tries to record the outcome).
func waitStore(t *testing.T, c *awskms.Client, id string) (types.ConnectionStateType, types.ConnectionErrorCodeType) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		out, err := c.DescribeCustomKeyStores(context.Background(), &awskms.DescribeCustomKeyStoresInput{CustomKeyStoreId: aws.String(id)})
		require.NoError(t, err)
		require.Len(t, out.CustomKeyStores, 1)
		st := out.CustomKeyStores[0]
		if st.ConnectionState != types.ConnectionStateTypeConnecting {
			return st.ConnectionState, st.ConnectionErrorCode
		}
		require.True(t, time.Now().Before(deadline), "the store is still CONNECTING after 90 s")
		time.Sleep(200 * time.Millisecond)
	}
}

func TestCustomKeyStoreLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real cluster")
	}
	ctx := context.Background()
	b, ca, cert, key := startStoreCluster(t, "kmsuser-pass-1")
	cluster := b.Env["HSM_CLUSTER_ID"]
	srv := kmstest.Start(t)
	c := inProcessSDK(t, srv)
	otherCA, otherCert, otherKey := testCA(t)
	const unreachable = "cluster-abcdefghijk"
	co := engine.Caller{User: "admin", Role: object.RoleCO, Session: 1}
	require.NoError(t, srv.Service.AddHSMCluster(ctx, co, cluster, []string{b.Addr(1), b.Addr(2)}, cert, key))
	require.NoError(t, srv.Service.AddHSMCluster(ctx, co, unreachable, []string{"127.0.0.1:1", "127.0.0.1:2"}, otherCert, otherKey))
	list, err := srv.Service.ListHSMClusters(co)
	require.NoError(t, err)
	require.Len(t, list, 2)

	in := &awskms.CreateCustomKeyStoreInput{CustomKeyStoreName: aws.String("store1"), CloudHsmClusterId: aws.String(cluster),
		TrustAnchorCertificate: aws.String(string(ca)), KeyStorePassword: aws.String("kmsuser-pass-1")}
	out, err := c.CreateCustomKeyStore(ctx, in)
	require.NoError(t, err)
	id := aws.ToString(out.CustomKeyStoreId)
	require.Regexp(t, `^cks-[0-9a-f]{17}$`, id)

	refusals := []struct {
		name string
		do   func() error
		exc  string
	}{
		{"the same name again", func() error { _, err := c.CreateCustomKeyStore(ctx, in); return err }, "CustomKeyStoreNameInUseException"},
		{"the same cluster again", func() error {
			i2 := *in
			i2.CustomKeyStoreName = aws.String("store2")
			_, err := c.CreateCustomKeyStore(ctx, &i2)
			return err
		}, "CloudHsmClusterInUseException"},
		{"an unknown cluster", func() error {
			i2 := *in
			i2.CustomKeyStoreName, i2.CloudHsmClusterId = aws.String("store3"), aws.String("cluster-zzzzzzzzzzz")
			_, err := c.CreateCustomKeyStore(ctx, &i2)
			return err
		}, "CloudHsmClusterNotFoundException"},
		{"a cluster that does not answer", func() error {
			i2 := *in
			i2.CustomKeyStoreName, i2.CloudHsmClusterId, i2.TrustAnchorCertificate = aws.String("store5"), aws.String(unreachable), aws.String(string(otherCA))
			_, err := c.CreateCustomKeyStore(ctx, &i2)
			return err
		}, "CloudHsmClusterNotActiveException"},
		{"a trust anchor that is no certificate", func() error {
			i2 := *in
			i2.CustomKeyStoreName, i2.TrustAnchorCertificate = aws.String("store4"), aws.String("not a certificate")
			_, err := c.CreateCustomKeyStore(ctx, &i2)
			return err
		}, "IncorrectTrustAnchorException"},
		{"an unknown store", func() error {
			_, err := c.DescribeCustomKeyStores(ctx, &awskms.DescribeCustomKeyStoresInput{CustomKeyStoreId: aws.String("cks-00000000000000000")})
			return err
		}, "CustomKeyStoreNotFoundException"},
		{"a key in a disconnected store", func() error {
			_, err := c.CreateKey(ctx, &awskms.CreateKeyInput{CustomKeyStoreId: aws.String(id), Origin: types.OriginTypeAwsCloudhsm})
			return err
		}, "CustomKeyStoreInvalidStateException"},
	}
	for _, r := range refusals {
		err := r.do()
		require.Error(t, err, r.name)
		assert.Contains(t, err.Error(), r.exc, r.name)
	}
	// Another CA as B's trust anchor (the store must be deleted first: one
	// store per cluster).
	_, err = c.DeleteCustomKeyStore(ctx, &awskms.DeleteCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	require.NoError(t, err)
	wrongAnchor := *in
	wrongAnchor.TrustAnchorCertificate = aws.String(string(otherCA))
	_, err = c.CreateCustomKeyStore(ctx, &wrongAnchor)
	require.ErrorContains(t, err, "IncorrectTrustAnchorException")
	out, err = c.CreateCustomKeyStore(ctx, in)
	require.NoError(t, err)
	id = aws.ToString(out.CustomKeyStoreId)

	_, err = c.UpdateCustomKeyStore(ctx, &awskms.UpdateCustomKeyStoreInput{CustomKeyStoreId: aws.String(id), NewCustomKeyStoreName: aws.String("renamed")})
	require.NoError(t, err)
	d, err := c.DescribeCustomKeyStores(ctx, &awskms.DescribeCustomKeyStoresInput{CustomKeyStoreName: aws.String("renamed")})
	require.NoError(t, err)
	require.Len(t, d.CustomKeyStores, 1)
	e := d.CustomKeyStores[0]
	assert.Equal(t, id, aws.ToString(e.CustomKeyStoreId))
	assert.Equal(t, cluster, aws.ToString(e.CloudHsmClusterId))
	assert.Equal(t, string(ca), aws.ToString(e.TrustAnchorCertificate))
	assert.Equal(t, types.ConnectionStateTypeDisconnected, e.ConnectionState)
	assert.Equal(t, types.CustomKeyStoreTypeAwsCloudhsm, e.CustomKeyStoreType)

	// Connect returns at once; with B down the connector finds no node
	// and records FAILED with NETWORK_ERRORS.
	b.Stop(1, false)
	b.Stop(2, false)
	_, err = c.ConnectCustomKeyStore(ctx, &awskms.ConnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	require.NoError(t, err)
	cstate, ccode := waitStore(t, c, id)
	assert.Equal(t, types.ConnectionStateTypeFailed, cstate)
	assert.Equal(t, types.ConnectionErrorCodeTypeNetworkErrors, ccode)
	_, err = c.ConnectCustomKeyStore(ctx, &awskms.ConnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	require.ErrorContains(t, err, "CustomKeyStoreInvalidStateException", "a FAILED store must be disconnected first")
	_, err = c.DeleteCustomKeyStore(ctx, &awskms.DeleteCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	require.ErrorContains(t, err, "CustomKeyStoreInvalidStateException")
	_, err = c.DisconnectCustomKeyStore(ctx, &awskms.DisconnectCustomKeyStoreInput{CustomKeyStoreId: aws.String(id)})
	require.NoError(t, err)

	// An external key store's fields are stored and described (no secret).
	x, err := c.CreateCustomKeyStore(ctx, &awskms.CreateCustomKeyStoreInput{CustomKeyStoreName: aws.String("xks"),
		CustomKeyStoreType: types.CustomKeyStoreTypeExternalKeyStore, XksProxyUriEndpoint: aws.String("https://xks.example.com"),
		XksProxyUriPath: aws.String("/kms/xks/v1"), XksProxyConnectivity: types.XksProxyConnectivityTypePublicEndpoint,
		XksProxyAuthenticationCredential: &types.XksProxyAuthenticationCredentialType{AccessKeyId: aws.String("ABCDEFGHIJKLMNOPQRST"),
			RawSecretAccessKey: aws.String("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ")}})
	require.NoError(t, err)
	all, err := c.DescribeCustomKeyStores(ctx, &awskms.DescribeCustomKeyStoresInput{})
	require.NoError(t, err)
	require.Len(t, all.CustomKeyStores, 2)
	for _, s := range all.CustomKeyStores {
		if aws.ToString(s.CustomKeyStoreId) == aws.ToString(x.CustomKeyStoreId) {
			require.NotNil(t, s.XksProxyConfiguration)
			assert.Equal(t, "https://xks.example.com", aws.ToString(s.XksProxyConfiguration.UriEndpoint))
			assert.Equal(t, "ABCDEFGHIJKLMNOPQRST", aws.ToString(s.XksProxyConfiguration.AccessKeyId))
		}
	}
	// A proxy that cannot be reached: the connection fails, asynchronously.
	_, err = c.ConnectCustomKeyStore(ctx, &awskms.ConnectCustomKeyStoreInput{CustomKeyStoreId: x.CustomKeyStoreId})
	require.NoError(t, err)
	xstate, xcode := waitStore(t, c, aws.ToString(x.CustomKeyStoreId))
	assert.Equal(t, types.ConnectionStateTypeFailed, xstate)
	assert.Equal(t, types.ConnectionErrorCodeType("XKS_PROXY_NOT_REACHABLE"), xcode)
	_, err = c.DisconnectCustomKeyStore(ctx, &awskms.DisconnectCustomKeyStoreInput{CustomKeyStoreId: x.CustomKeyStoreId})
	require.NoError(t, err)

	for _, sid := range []string{id, aws.ToString(x.CustomKeyStoreId)} {
		_, err = c.DeleteCustomKeyStore(ctx, &awskms.DeleteCustomKeyStoreInput{CustomKeyStoreId: aws.String(sid)})
		require.NoError(t, err)
	}
	all, err = c.DescribeCustomKeyStores(ctx, &awskms.DescribeCustomKeyStoresInput{})
	require.NoError(t, err)
	require.Empty(t, all.CustomKeyStores)
	require.NoError(t, srv.Service.RemoveHSMCluster(ctx, co, cluster))
	require.NoError(t, srv.Service.RemoveHSMCluster(ctx, co, unreachable))
}
