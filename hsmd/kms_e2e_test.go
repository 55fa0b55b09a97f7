package hsmd_test

// The KMS API's port on real nodes started by scripts/cluster.sh: HTTPS
// with the node certificate, GET /healthz, the refusal of plain HTTP off
// loopback, and, with three nodes, haproxy in front of them.

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// caClient is an HTTPS client that trusts only the cluster CA, as the AWS
// SDKs do with AWS_CA_BUNDLE.
func caClient(t *testing.T, caFile string) *http.Client {
	pem, err := os.ReadFile(caFile)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pem))
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
}

func getStatus(c *http.Client, url string) (int, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// kmsAddr is node k's KMS address, from the file the node writes.
func kmsAddr(t *testing.T, cl *testcluster.Cluster, k int) string {
	b, err := os.ReadFile(filepath.Join(cl.Dir, fmt.Sprintf("node%d.kms.addr", k)))
	require.NoError(t, err, "node%d writes its KMS address file", k)
	return strings.TrimSpace(string(b))
}

func TestKMSPort(t *testing.T) {
	cl := testcluster.Start(t, 1)
	ca := filepath.Join(cl.Dir, "pki", "ca.pem")
	addr := kmsAddr(t, cl, 1)
	url := "https://" + addr + "/healthz"
	require.Equal(t, "https://"+addr, cl.Env["AWS_ENDPOINT_URL_KMS"], "one node: the endpoint is the node's port")
	assert.Equal(t, ca, cl.Env["AWS_CA_BUNDLE"])
	assert.Equal(t, "us-east-1", cl.Env["AWS_REGION"])

	c := caClient(t, ca)
	code, err := getStatus(c, url)
	require.NoError(t, err, "HTTPS with the cluster CA, by the address the node listens on")
	assert.Equal(t, http.StatusOK, code)
	code, err = getStatus(c, "https://localhost:"+addr[strings.LastIndexByte(addr, ':')+1:]+"/healthz")
	require.NoError(t, err, "and by the name localhost")
	assert.Equal(t, http.StatusOK, code)

	t.Run("NoPlainHTTP", func(t *testing.T) {
		// Go's TLS server answers an HTTP request with a 400 of its own.
		code, err := getStatus(&http.Client{Timeout: 5 * time.Second}, "http://"+addr+"/healthz")
		if err == nil {
			assert.Equal(t, http.StatusBadRequest, code, "plain HTTP to the HTTPS port is not served")
		}
	})
	t.Run("OtherCARefused", func(t *testing.T) {
		_, err := getStatus(&http.Client{Timeout: 5 * time.Second}, url)
		assert.ErrorContains(t, err, "certificate", "a client that trusts only the system CAs refuses the node")
	})

	t.Run("PlainHTTPOffLoopbackRefused", func(t *testing.T) {
		conf := filepath.Join(cl.Dir, "node1.toml")
		orig, err := os.ReadFile(conf)
		require.NoError(t, err)
		cl.Stop(1, false)
		listen := regexp.MustCompile(`(?m)^\[kms\]\nlisten = "[^"]*"`)
		require.Regexp(t, listen, string(orig))
		bad := listen.ReplaceAllString(string(orig), "[kms]\nlisten = \"0.0.0.0:0\"\ntls = false")
		require.NoError(t, os.WriteFile(conf, []byte(bad), 0o600))
		out, err := cl.StartNode(1)
		require.Error(t, err, "a node whose KMS API would be plain HTTP on every interface does not start")
		assert.Contains(t, string(out), "kms.tls: plain HTTP (tls = false) is allowed only on a loopback address")

		// The config put back, the node starts, on its KMS port of before.
		require.NoError(t, os.WriteFile(conf, orig, 0o600))
		out, err = cl.StartNode(1)
		require.NoError(t, err, "%s", out)
		assert.Equal(t, addr, kmsAddr(t, cl, 1), "the KMS port is kept across restarts")
		require.Eventually(t, func() bool {
			code, err := getStatus(c, url)
			return err == nil && code == http.StatusOK
		}, 15*time.Second, 100*time.Millisecond)
	})
}

// TestKMSLoadBalancer: with three nodes, the printed endpoint is haproxy in
// front of the nodes' KMS ports; it keeps answering while a node is killed,
// and cluster.sh down stops it.
func TestKMSLoadBalancer(t *testing.T) {
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Fatal("haproxy is not installed: run scripts/deps.sh")
	}
	cl := testcluster.Start(t, 3)
	ca := cl.Env["AWS_CA_BUNDLE"]
	require.Equal(t, filepath.Join(cl.Dir, "pki", "ca.pem"), ca)
	port, err := os.ReadFile(filepath.Join(cl.Dir, "haproxy.port"))
	require.NoError(t, err)
	endpoint := "https://127.0.0.1:" + strings.TrimSpace(string(port))
	require.Equal(t, endpoint, cl.Env["AWS_ENDPOINT_URL_KMS"])
	env, err := os.ReadFile(filepath.Join(cl.Dir, "kms.env"))
	require.NoError(t, err)
	assert.Contains(t, string(env), "export AWS_ENDPOINT_URL_KMS='"+endpoint+"'")

	// Each node killed in turn, the leader among them: every request still
	// reaches a live node (haproxy retries a refused connection on
	// another), which answers 200, or 503 while the cluster elects a new
	// leader (the SDKs retry that); then 200 again.
	c := caClient(t, ca)
	for k := 1; k <= 3; k++ {
		cl.Stop(k, true)
		ok := 0
		for i := range 40 {
			code, err := getStatus(c, endpoint+"/healthz")
			require.NoError(t, err, "request %d with node%d killed", i, k)
			require.Contains(t, []int{http.StatusOK, http.StatusServiceUnavailable}, code, "request %d with node%d killed", i, k)
			if code == http.StatusOK {
				ok++
			}
			time.Sleep(50 * time.Millisecond)
		}
		assert.Positive(t, ok, "node%d killed: two nodes answer healthy", k)
		out, err := cl.StartNode(k)
		require.NoError(t, err, "%s", out)
		require.Eventually(t, func() bool {
			code, err := getStatus(c, "https://"+kmsAddr(t, cl, k)+"/healthz")
			return err == nil && code == http.StatusOK
		}, 20*time.Second, 100*time.Millisecond, "node%d healthy again", k)
	}

	pid, err := os.ReadFile(filepath.Join(cl.Dir, "haproxy.pid"))
	require.NoError(t, err)
	_, err = cl.Script("down", cl.Dir)
	require.NoError(t, err)
	_, err = os.Stat(fmt.Sprintf("/proc/%s", strings.TrimSpace(string(pid))))
	assert.True(t, os.IsNotExist(err), "cluster.sh down stops haproxy")
}
