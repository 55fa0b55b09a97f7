package xksclient

import (
	"bytes"
	"context"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/internal/enginetest"
	"github.com/openhsm/openhsm/kms/xks"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
)

// Test credentials of the forms AWS KMS accepts; test values only. The
// tests check that no error shows a secret.
const (
	akid1   = "AKIDXKSCLIENTONE2345A"
	secret1 = "xksClientSecretOne000000000000000000000000000="
	akid2   = "AKIDXKSCLIENTTWO2345B"
	secret2 = "xksClientSecretTwo111111111111111111111111111+"
	prefix  = "/keystores/team-a"
	region  = "eu-west-1"
)

// proxy is a real kms/xks.Handler over a real engine (internal/enginetest)
// with the crypto user "xks" and its AES-256 key "ext-1", served over TLS
// on 127.0.0.1 with a run-time port.
type proxy struct {
	srv   *httptest.Server
	creds *xks.Credentials
	pool  *x509.CertPool
	conns atomic.Int32 // new TCP connections accepted
}

func startProxy(t *testing.T) *proxy {
	t.Helper()
	ctx := context.Background()
	e := enginetest.Start(t).Engine
	co := engine.Caller{User: "admin", Role: object.RoleCO, Session: 1}
	require.NoError(t, e.CreateUser(ctx, co, "xks", object.RoleCU, "xks-user-password-1"))
	tmpl := object.Template{
		{Type: ck.CKA_TOKEN, Value: object.EncodeBool(true)},
		{Type: ck.CKA_LABEL, Value: []byte("ext-1")},
		{Type: ck.CKA_VALUE_LEN, Value: object.EncodeUlong(32)},
		{Type: ck.CKA_ENCRYPT, Value: object.EncodeBool(true)},
		{Type: ck.CKA_DECRYPT, Value: object.EncodeBool(true)},
		{Type: ck.CKA_EXTRACTABLE, Value: object.EncodeBool(false)},
	}
	_, err := e.GenerateKey(ctx, engine.Caller{User: "xks", Role: object.RoleCU, Session: 7}, mech.Mech{Type: ck.CKM_AES_KEY_GEN}, tmpl)
	require.NoError(t, err)

	p := &proxy{creds: &xks.Credentials{}}
	require.NoError(t, p.creds.Set(prefix, akid1, secret1))
	require.NoError(t, p.creds.Set(prefix, akid2, secret2))
	h, err := xks.New(xks.Config{Backend: &xks.HSMBackend{Engine: e, User: "xks"}, Credentials: p.creds,
		MetadataKey: bytes.Repeat([]byte{0x42}, xks.MetadataKeySize)})
	require.NoError(t, err)
	p.srv = httptest.NewUnstartedServer(h)
	p.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			p.conns.Add(1)
		}
	}
	p.srv.StartTLS()
	t.Cleanup(p.srv.Close)
	p.pool = x509.NewCertPool()
	p.pool.AddCert(p.srv.Certificate())
	return p
}

// config is a Config for the proxy with the first credential.
func (p *proxy) config() Config {
	return Config{Endpoint: p.srv.URL, Path: prefix + APIPath, AccessKeyID: akid1, SecretAccessKey: secret1,
		Region: region, RootCAs: p.pool}
}

func newClient(t *testing.T, c Config) *Client {
	t.Helper()
	cl, err := New(c)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}

// tlsServer is a TLS server on 127.0.0.1 that answers with h, and a pool
// that trusts it.
func tlsServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *x509.CertPool) {
	t.Helper()
	s := httptest.NewTLSServer(h)
	t.Cleanup(s.Close)
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	return s, pool
}

func healthMD() xks.RequestMetadata {
	return xks.RequestMetadata{KMSRequestID: "4112f4d6-db54-4af4-ae30-c55a22a8dfae", KMSOperation: "CreateCustomKeyStore"}
}

func cryptoMD(op string) xks.RequestMetadata {
	return xks.RequestMetadata{KMSRequestID: "5112f4d6-db54-4af4-ae30-c55a22a8dfae", KMSOperation: op,
		AWSPrincipalARN: "arn:aws:iam::111122223333:role/app",
		KMSKeyARN:       "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}
}

// noSecret fails if err's text holds a secret of the tests or the bytes
// given.
func noSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range append(secrets, secret1, secret2) {
		require.NotContains(t, err.Error(), s)
	}
	require.False(t, strings.Contains(err.Error(), "Authorization"), "error shows a header: %v", err)
}
