package hsmd_test

// The XKS proxy on real nodes started by `scripts/cluster.sh up --xks`
// (HSM_XKS=1): requests signed by aws-sdk-go-v2's SigV4 signer over HTTPS
// that trusts the cluster CA, as a KMS would send them.

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/openhsm/openhsm/kms/xks"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// xksCaller sends signed XKS requests to one proxy address.
type xksCaller struct {
	host, prefix string
	akid, secret string
	service      string
	signedAt     time.Time // zero: now
	http         *http.Client
}

func newXKSCaller(t *testing.T, cl *testcluster.Cluster, host string, cert *tls.Certificate) *xksCaller {
	pem, err := os.ReadFile(cl.Env["XKS_CA_CERT"])
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pem))
	conf := &tls.Config{RootCAs: pool}
	if cert != nil {
		conf.Certificates = []tls.Certificate{*cert}
	}
	return &xksCaller{host: host, prefix: cl.Env["XKS_URI_PREFIX"], akid: cl.Env["XKS_ACCESS_KEY_ID"],
		secret: cl.Env["XKS_SECRET_ACCESS_KEY"], service: xks.Service,
		http: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: conf, DisableKeepAlives: true}}}
}

// call POSTs body (JSON) to <prefix>/kms/xks/v1/<path>, signed, and
// answers the status and the body.
func (c *xksCaller) call(t *testing.T, method, path string, body any) (int, []byte, error) {
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequest(method, "https://"+c.host+c.prefix+"/kms/xks/v1/"+path, bytes.NewReader(raw))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(raw)
	at := c.signedAt
	if at.IsZero() {
		at = time.Now()
	}
	err = v4.NewSigner().SignHTTP(t.Context(), aws.Credentials{AccessKeyID: c.akid, SecretAccessKey: c.secret},
		req, hex.EncodeToString(sum[:]), c.service, "us-east-1", at)
	require.NoError(t, err)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// errName is an error answer's errorName.
func errName(b []byte) string {
	var e xks.ErrorResponse
	_ = json.Unmarshal(b, &e)
	return e.ErrorName
}

func md(op string) *xks.RequestMetadata {
	return &xks.RequestMetadata{KMSRequestID: "4112f4d6-db54-4af4-ae30-c55a22a8dfae", KMSOperation: op,
		AWSPrincipalARN: "arn:aws:iam::123456789012:user/Alice",
		KMSKeyARN:       "arn:aws:kms:us-east-1:123456789012:key/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111"}
}

func (c *xksCaller) health(t *testing.T) (int, xks.HealthResponse) {
	st, b, err := c.call(t, http.MethodPost, "health", xks.HealthRequest{RequestMetadata: &xks.RequestMetadata{KMSRequestID: "r1", KMSOperation: "CreateCustomKeyStore"}})
	require.NoError(t, err)
	var h xks.HealthResponse
	if st == http.StatusOK {
		require.NoError(t, json.Unmarshal(b, &h))
	}
	return st, h
}

func (c *xksCaller) encrypt(t *testing.T, key string, pt, aad []byte) xks.EncryptResponse {
	st, b, err := c.call(t, http.MethodPost, "keys/"+key+"/encrypt",
		xks.EncryptRequest{RequestMetadata: md("Encrypt"), Plaintext: &pt, EncryptionAlgorithm: "AES_GCM", AdditionalAuthenticatedData: aad})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, st, "encrypt: %s", b)
	var r xks.EncryptResponse
	require.NoError(t, json.Unmarshal(b, &r))
	return r
}

func (c *xksCaller) decrypt(t *testing.T, key string, e xks.EncryptResponse, aad []byte) (int, []byte) {
	ct := e.Ciphertext
	st, b, err := c.call(t, http.MethodPost, "keys/"+key+"/decrypt",
		xks.DecryptRequest{RequestMetadata: md("Decrypt"), Ciphertext: &ct, CiphertextMetadata: e.CiphertextMetadata,
			EncryptionAlgorithm: "AES_GCM", AdditionalAuthenticatedData: aad, InitializationVector: e.InitializationVector,
			AuthenticationTag: e.AuthenticationTag})
	require.NoError(t, err)
	return st, b
}

func (c *xksCaller) metadata(t *testing.T, key string) (int, []byte) {
	st, b, err := c.call(t, http.MethodPost, "keys/"+key+"/metadata", xks.MetadataRequest{RequestMetadata: md("DescribeKey")})
	require.NoError(t, err)
	return st, b
}

func xksAddr(t *testing.T, cl *testcluster.Cluster, k int) string {
	b, err := os.ReadFile(filepath.Join(cl.Dir, fmt.Sprintf("node%d.xks.addr", k)))
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}

func flip(b []byte) []byte {
	out := bytes.Clone(b)
	out[len(out)-1] ^= 1
	return out
}

func TestXKSProxy(t *testing.T) {
	t.Setenv("HSM_XKS", "1")
	cl := testcluster.Start(t, 3)

	// What `cluster.sh up --xks` prints, and that it works.
	for _, k := range []string{"XKS_PROXY_HOST", "XKS_URI_PREFIX", "XKS_ACCESS_KEY_ID", "XKS_SECRET_ACCESS_KEY", "XKS_KEY_ID", "XKS_CA_CERT"} {
		require.NotEmpty(t, cl.Env[k], "cluster.sh up --xks prints %s", k)
	}
	assert.Equal(t, filepath.Join(cl.Dir, "pki", "ca.pem"), cl.Env["XKS_CA_CERT"])
	key := cl.Env["XKS_KEY_ID"]
	front := newXKSCaller(t, cl, cl.Env["XKS_PROXY_HOST"], nil)
	st, _ := front.health(t)
	require.Equal(t, http.StatusOK, st)
	pt := bytes.Repeat([]byte("4300 bytes of plaintext, the spec's minimum. "), 100)[:4300]
	aad := []byte("kms's own layer's AAD")
	enc := front.encrypt(t, key, pt, aad)
	st, b := front.decrypt(t, key, enc, aad)
	require.Equal(t, http.StatusOK, st, "%s", b)
	var dec xks.DecryptResponse
	require.NoError(t, json.Unmarshal(b, &dec))
	require.Equal(t, pt, dec.Plaintext, "round trip through XKS_PROXY_HOST")

	n1 := newXKSCaller(t, cl, xksAddr(t, cl, 1), nil)
	n2 := newXKSCaller(t, cl, xksAddr(t, cl, 2), nil)

	t.Run("another node decrypts", func(t *testing.T) {
		// The metadata key derives from the domain key: every node agrees.
		st, b := n2.decrypt(t, key, n1.encrypt(t, key, []byte("hello"), nil), nil)
		require.Equal(t, http.StatusOK, st, "%s", b)
	})

	t.Run("tampering", func(t *testing.T) {
		cases := []struct {
			name   string
			change func(e *xks.EncryptResponse, aad *[]byte)
		}{
			{"AAD", func(e *xks.EncryptResponse, aad *[]byte) { *aad = flip(*aad) }},
			{"AAD left out", func(e *xks.EncryptResponse, aad *[]byte) { *aad = nil }},
			{"IV", func(e *xks.EncryptResponse, aad *[]byte) { e.InitializationVector = flip(e.InitializationVector) }},
			{"tag", func(e *xks.EncryptResponse, aad *[]byte) { e.AuthenticationTag = flip(e.AuthenticationTag) }},
			{"ciphertext", func(e *xks.EncryptResponse, aad *[]byte) { e.Ciphertext = flip(e.Ciphertext) }},
			{"ciphertextMetadata", func(e *xks.EncryptResponse, aad *[]byte) { e.CiphertextMetadata = flip(e.CiphertextMetadata) }},
			{"ciphertextMetadata version", func(e *xks.EncryptResponse, aad *[]byte) { e.CiphertextMetadata[4] ^= 2 }},
			{"ciphertextMetadata cut", func(e *xks.EncryptResponse, aad *[]byte) { e.CiphertextMetadata = e.CiphertextMetadata[:10] }},
			{"ciphertextMetadata left out", func(e *xks.EncryptResponse, aad *[]byte) { e.CiphertextMetadata = nil }},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				e := n1.encrypt(t, key, []byte("secret data"), aad)
				a := bytes.Clone(aad)
				c.change(&e, &a)
				st, b := n1.decrypt(t, key, e, a)
				assert.Equal(t, http.StatusBadRequest, st)
				assert.Equal(t, "InvalidCiphertextException", errName(b))
				assert.NotContains(t, string(b), "secret data")
			})
		}
	})

	t.Run("SigV4 refusals", func(t *testing.T) {
		cases := []struct {
			name   string
			change func(c *xksCaller)
		}{
			{"wrong secret", func(c *xksCaller) { c.secret = strings.Repeat("A", 44) }},
			{"unknown access key ID", func(c *xksCaller) { c.akid = "AAAAAAAAAAAAAAAAAAAA" }},
			{"wrong service", func(c *xksCaller) { c.service = "kms" }},
			{"stale date", func(c *xksCaller) { c.signedAt = time.Now().Add(-10 * time.Minute) }},
			{"future date", func(c *xksCaller) { c.signedAt = time.Now().Add(10 * time.Minute) }},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				bad := *n1
				c.change(&bad)
				st, b := bad.metadata(t, key)
				assert.Equal(t, http.StatusUnauthorized, st)
				assert.Equal(t, "AuthenticationFailedException", errName(b))
				assert.NotContains(t, string(b), n1.secret)
			})
		}
	})

	t.Run("GET is 405", func(t *testing.T) {
		for _, p := range []string{"health", "keys/" + key + "/metadata", "keys/" + key + "/encrypt", "keys/" + key + "/decrypt"} {
			st, _, err := n1.call(t, http.MethodGet, p, struct{}{})
			require.NoError(t, err)
			assert.Equal(t, http.StatusMethodNotAllowed, st, p)
		}
	})

	t.Run("keyStatus", func(t *testing.T) {
		pw, err := os.ReadFile(filepath.Join(cl.Dir, "xks.password"))
		require.NoError(t, err)
		hc := dial(t, cl, "xks", strings.TrimSpace(string(pw)))
		gen := func(label string, bytes uint64, encrypt, decrypt bool) {
			_, err := hc.GenerateKey(ctx, mech.Mech{Type: ck.CKM_AES_KEY_GEN}, object.Template{
				ul(ck.CKA_CLASS, ck.CKO_SECRET_KEY), ul(ck.CKA_KEY_TYPE, ck.CKK_AES), ul(ck.CKA_VALUE_LEN, bytes),
				bo(ck.CKA_TOKEN, true), bo(ck.CKA_ENCRYPT, encrypt), bo(ck.CKA_DECRYPT, decrypt), by(ck.CKA_LABEL, []byte(label))})
			require.NoError(t, err, label)
		}
		gen("aes-128", 16, true, true)
		gen("encrypt-only", 32, true, false)
		gen("decrypt-only", 32, false, true)
		cases := []struct {
			key, status, errorName string
			code                   int
		}{
			{key, xks.KeyEnabled, "", http.StatusOK},
			{"no-such-key", "", "KeyNotFoundException", http.StatusNotFound},
			{"aes-128", "", "KeyNotFoundException", http.StatusNotFound},
			{"encrypt-only", xks.KeyDisabled, "", http.StatusOK},
			{"decrypt-only", xks.KeyDisabled, "", http.StatusOK},
		}
		for _, c := range cases {
			st, b := n1.metadata(t, c.key)
			require.Equal(t, c.code, st, "%s: %s", c.key, b)
			if c.errorName != "" {
				assert.Equal(t, c.errorName, errName(b), c.key)
				continue
			}
			var m xks.MetadataResponse
			require.NoError(t, json.Unmarshal(b, &m))
			assert.Equal(t, xks.MetadataResponse{KeySpec: "AES_256", KeyUsage: []string{"ENCRYPT", "DECRYPT"}, KeyStatus: c.status}, m, c.key)
		}
		// A disabled key does not encrypt.
		p := []byte("x")
		st, b, err := n1.call(t, http.MethodPost, "keys/encrypt-only/encrypt",
			xks.EncryptRequest{RequestMetadata: md("Encrypt"), Plaintext: &p, EncryptionAlgorithm: "AES_GCM"})
		require.NoError(t, err)
		assert.Equal(t, http.StatusBadRequest, st)
		assert.Equal(t, "InvalidStateException", errName(b))
	})

	t.Run("credential rotation without restart", func(t *testing.T) {
		path := filepath.Join(cl.Dir, "xks-credentials.toml")
		old, err := os.ReadFile(path)
		require.NoError(t, err)
		newer := *n1
		newer.akid, newer.secret = "ROTATEDROTATEDROTATE", "bmV3LXNlY3JldC1mb3ItdGhlLXJvdGF0aW9uLXRlc3Qh"
		entry := fmt.Sprintf("[[credential]]\nprefix = %q\naccess_key_id = %q\nsecret_access_key = %q\n", n1.prefix, newer.akid, newer.secret)
		// 1. Add the new credential: both work, on every node.
		require.NoError(t, os.WriteFile(path+".tmp", append(bytes.Clone(old), entry...), 0o600))
		require.NoError(t, os.Rename(path+".tmp", path))
		for _, node := range []int{1, 2, 3} {
			nc := newer
			nc.host = xksAddr(t, cl, node)
			require.Eventually(t, func() bool { st, _ := nc.metadata(t, key); return st == http.StatusOK }, 15*time.Second, 200*time.Millisecond, "node%d takes the new credential", node)
		}
		st, _ := n1.metadata(t, key)
		require.Equal(t, http.StatusOK, st, "the old credential still works")
		// A bad file keeps both.
		require.NoError(t, os.WriteFile(path+".tmp", []byte("[[credential]]\nprefix = 7\n"), 0o600))
		require.NoError(t, os.Rename(path+".tmp", path))
		time.Sleep(6 * time.Second) // past a poll
		st, _ = n1.metadata(t, key)
		assert.Equal(t, http.StatusOK, st, "a bad file changes nothing")
		st, _ = newer.metadata(t, key)
		assert.Equal(t, http.StatusOK, st, "a bad file changes nothing")
		// 2. Remove the old one: refused, and the new one goes on.
		require.NoError(t, os.WriteFile(path+".tmp", []byte(entry), 0o600))
		require.NoError(t, os.Rename(path+".tmp", path))
		require.Eventually(t, func() bool { st, _ := n1.metadata(t, key); return st == http.StatusUnauthorized }, 15*time.Second, 200*time.Millisecond)
		st, _ = newer.metadata(t, key)
		assert.Equal(t, http.StatusOK, st)
		logs, err := os.ReadFile(cl.LogFile(1))
		require.NoError(t, err)
		assert.NotContains(t, string(logs), newer.secret)
		assert.NotContains(t, string(logs), n1.secret)
		assert.Contains(t, string(logs), "the XKS credentials file is bad; keeping the credentials in use")
		// Later steps use the new credential.
		*n1 = newer
		n2.akid, n2.secret = newer.akid, newer.secret
	})

	t.Run("health", func(t *testing.T) {
		byID := func(h xks.HealthResponse) map[string]string {
			m := map[string]string{}
			for _, d := range h.EKMFleetDetails {
				m[d.ID] = d.HealthStatus
			}
			return m
		}
		all := map[string]string{"node1": xks.HealthActive, "node2": xks.HealthActive, "node3": xks.HealthActive}
		require.Eventually(t, func() bool { st, h := n1.health(t); return st == http.StatusOK && assert.ObjectsAreEqual(all, byID(h)) }, 15*time.Second, 200*time.Millisecond)
		_, h := n1.health(t)
		assert.Equal(t, "openhsm", h.EKMVendor)
		cl.Stop(3, false)
		require.Eventually(t, func() bool {
			st, h := n1.health(t)
			m := byID(h)
			return st == http.StatusOK && len(m) == 3 && m["node3"] != xks.HealthActive && m["node1"] == xks.HealthActive
		}, 15*time.Second, 200*time.Millisecond, "a stopped node is not ACTIVE")
		_, h = n1.health(t)
		assert.Equal(t, xks.HealthUnavailable, byID(h)["node3"])
		// /ping for load balancers: no signature.
		resp, err := n1.http.Get("https://" + n1.host + "/ping")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	})
}

// With client_ca, the proxy refuses a client without a certificate of
// that CA, and serves one with.
func TestXKSMutualTLS(t *testing.T) {
	t.Setenv("HSM_XKS", "1")
	t.Setenv("HSM_XKS_CONFIG", `client_ca = "pki/ca.pem"`)
	cl := testcluster.Start(t, 1)
	host := cl.Env["XKS_PROXY_HOST"]
	require.Equal(t, xksAddr(t, cl, 1), host, "one node: the proxy is node1's")
	_, _, err := newXKSCaller(t, cl, host, nil).call(t, http.MethodPost, "health", struct{}{})
	require.Error(t, err, "no client certificate: the handshake fails")
	cert, err := tls.LoadX509KeyPair(filepath.Join(cl.Dir, "pki", "client.pem"), filepath.Join(cl.Dir, "pki", "client-key.pem"))
	require.NoError(t, err)
	// Right after start the node may still be catching up (DEGRADED):
	// the health poll reports ACTIVE within a bound.
	caller := newXKSCaller(t, cl, host, &cert)
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, h := caller.health(t)
		require.Equal(t, http.StatusOK, st)
		require.Len(t, h.EKMFleetDetails, 1)
		if h.EKMFleetDetails[0].HealthStatus == xks.HealthActive {
			break
		}
		require.True(t, time.Now().Before(deadline), "the node is still %s after 30 s", h.EKMFleetDetails[0].HealthStatus)
		time.Sleep(200 * time.Millisecond)
	}
}
