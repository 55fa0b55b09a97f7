package hsmd_test

// The [metrics] port on real nodes started by scripts/cluster.sh (which
// gives every node one, plain HTTP on loopback): a known workload shows up
// in /metrics with the right counts, /readyz and grpc.health.v1 follow a
// node's contact with its leader.

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/pki"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// metricsAddr is node k's metrics address, from the file the node writes.
func metricsAddr(t *testing.T, cl *testcluster.Cluster, k int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(cl.Dir, fmt.Sprintf("node%d.metrics.addr", k)))
	require.NoError(t, err, "node%d writes its metrics address file", k)
	return strings.TrimSpace(string(b))
}

// scrape reads node k's /metrics, parsed, and its text.
func scrape(t *testing.T, cl *testcluster.Cluster, k int) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	resp, err := http.Get("http://" + metricsAddr(t, cl, k) + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	require.NoError(t, err)
	return fams, string(body)
}

// value is the value of the series of family name with exactly these
// labels (a histogram's sample count), or 0 when there is none.
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	for _, m := range f.Metric {
		if len(m.Label) != len(labels) {
			continue
		}
		match := true
		for _, l := range m.Label {
			if labels[l.GetName()] != l.GetValue() {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return 0
}

func TestMetricsAfterWorkload(t *testing.T) {
	cl := testcluster.Start(t, 1)
	before, _ := scrape(t, cl, 1)

	const logins, encrypts, listKeys = 3, 5, 4
	var cu *client.Client
	for range logins {
		cu = dial(t, cl, cl.Env["P11_TOKEN_LABEL"], cl.Env["P11_PIN"])
	}
	key := make([]byte, 32)
	rand.Read(key)
	id := importSecret(t, cu, ck.CKK_AES, key)
	gcm := mech.Mech{Type: ck.CKM_AES_GCM, Param: &mech.GCMParams{IV: make([]byte, 12), TagBits: 128}}
	for range encrypts {
		must(cu.Encrypt(ctx, id, gcm, []byte("metrics")))(t)
	}
	_, err := cu.Encrypt(ctx, id+1000, gcm, []byte("no such key"))
	require.Error(t, err, "encrypting with a key that does not exist fails")
	failedRV := ck.RVName(client.RV(err))

	kc := sdkClient(t, cl.Env)
	for range listKeys {
		_, err := kc.ListKeys(ctx, &awskms.ListKeysInput{})
		require.NoError(t, err)
	}
	_, err = kc.DescribeKey(ctx, &awskms.DescribeKeyInput{KeyId: aws.String("11111111-2222-3333-4444-555555555555")})
	require.ErrorContains(t, err, "NotFoundException")

	after, text := scrape(t, cl, 1)
	delta := func(name string, labels map[string]string) float64 {
		return value(after, name, labels) - value(before, name, labels)
	}
	gcmLabels := map[string]string{"method": "Encrypt", "mechanism": "CKM_AES_GCM"}
	assert.Equal(t, float64(logins), delta("openhsm_hsm_calls_total", map[string]string{"method": "Login", "mechanism": ""}))
	assert.Equal(t, float64(encrypts+1), delta("openhsm_hsm_calls_total", gcmLabels), "every encrypt, the failed one too")
	assert.Equal(t, float64(encrypts+1), delta("openhsm_hsm_call_duration_seconds", gcmLabels), "one latency per call")
	assert.Equal(t, 1.0, delta("openhsm_hsm_errors_total",
		map[string]string{"method": "Encrypt", "mechanism": "CKM_AES_GCM", "rv": failedRV}), "counted under the CKR the client got")
	assert.Equal(t, 1.0, delta("openhsm_hsm_calls_total", map[string]string{"method": "CreateObject", "mechanism": ""}))
	assert.Equal(t, float64(listKeys), delta("openhsm_kms_requests_total", map[string]string{"operation": "ListKeys"}))
	assert.Equal(t, 1.0, delta("openhsm_kms_requests_total", map[string]string{"operation": "DescribeKey"}))
	assert.Equal(t, 1.0, delta("openhsm_kms_errors_total", map[string]string{"operation": "DescribeKey", "exception": "NotFoundException"}))
	assert.Equal(t, 0.0, delta("openhsm_kms_errors_total", map[string]string{"operation": "ListKeys", "exception": "NotFoundException"}))

	// The import committed through Raft and the store, with fsync.
	assert.GreaterOrEqual(t, delta("openhsm_raft_commit_duration_seconds", nil), 1.0)
	assert.GreaterOrEqual(t, delta("openhsm_raft_log_store_duration_seconds", nil), 1.0)
	assert.GreaterOrEqual(t, delta("openhsm_store_commit_duration_seconds", nil), 1.0)
	// The state a scrape reads.
	assert.Equal(t, 1.0, value(after, "openhsm_raft_state", map[string]string{"state": "leader"}))
	assert.Equal(t, 0.0, value(after, "openhsm_raft_state", map[string]string{"state": "follower"}))
	assert.Equal(t, 1.0, value(after, "openhsm_raft_leader_known", nil))
	assert.Equal(t, 1.0, value(after, "openhsm_node_ready", nil))
	assert.GreaterOrEqual(t, value(after, "openhsm_raft_term", nil), 1.0)
	assert.GreaterOrEqual(t, value(after, "openhsm_raft_applied_index", nil), value(before, "openhsm_raft_applied_index", nil)+1)
	assert.GreaterOrEqual(t, value(after, "openhsm_sessions", nil), float64(logins))
	assert.Contains(t, after, "openhsm_backup_last_timestamp_seconds")

	// Nothing secret, nor a user's name, is in a label.
	for _, k := range []string{"P11_PIN", "HSM_PASSWORD", "HSM_PASSWORD2", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "P11_TOKEN_LABEL", "HSM_USER"} {
		require.NotEmpty(t, cl.Env[k])
		assert.NotContains(t, text, `"`+cl.Env[k]+`"`, "%s appears in /metrics", k)
	}
}

// sdkClient is the AWS SDK's KMS client with the principal the cluster
// script made.
func sdkClient(t *testing.T, env map[string]string) *awskms.Client {
	t.Helper()
	hc := caClient(t, env["AWS_CA_BUNDLE"])
	cfg := aws.Config{
		Region: env["AWS_REGION"],
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: env["AWS_ACCESS_KEY_ID"], SecretAccessKey: env["AWS_SECRET_ACCESS_KEY"]}, nil
		}),
		HTTPClient:       hc,
		RetryMaxAttempts: 1,
	}
	return awskms.NewFromConfig(cfg, func(o *awskms.Options) { o.BaseEndpoint = aws.String(env["AWS_ENDPOINT_URL_KMS"]) })
}

// healthClient is a grpc.health.v1 client of node k with the cluster's
// client certificate.
func healthClient(t *testing.T, cl *testcluster.Cluster, k int) healthpb.HealthClient {
	t.Helper()
	cfg, err := client.LoadConfig(cl.Env["HSM_CONFIG"])
	require.NoError(t, err)
	tc, err := pki.ClientConfigFor(cfg.Cert, cfg.Key, cfg.CA, cfg.ServerName)
	require.NoError(t, err)
	conn, err := grpc.NewClient(cl.Addr(k), grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return healthpb.NewHealthClient(conn)
}

func servingStatus(h healthpb.HealthClient, service string) healthpb.HealthCheckResponse_ServingStatus {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	r, err := h.Check(cctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return healthpb.HealthCheckResponse_UNKNOWN
	}
	return r.Status
}

func TestReadyzFollowsTheLeader(t *testing.T) {
	cl := testcluster.Start(t, 3)
	base := "http://" + metricsAddr(t, cl, 1)
	h := healthClient(t, cl, 1)
	get := func(path string) int {
		code, err := getStatus(&http.Client{Timeout: 2 * time.Second}, base+path)
		if err != nil {
			return 0
		}
		return code
	}
	ready := func() bool {
		return get("/readyz") == http.StatusOK && servingStatus(h, "") == healthpb.HealthCheckResponse_SERVING &&
			servingStatus(h, "openhsm.v1.HSM") == healthpb.HealthCheckResponse_SERVING
	}
	notReady := func() bool {
		return get("/readyz") == http.StatusServiceUnavailable && servingStatus(h, "") == healthpb.HealthCheckResponse_NOT_SERVING
	}
	require.Eventually(t, ready, 10*time.Second, 100*time.Millisecond, "a node of a whole cluster is ready")
	assert.Equal(t, http.StatusOK, get("/healthz"))
	assert.Equal(t, http.StatusNotFound, get("/nothing"))

	// Cut node1 off: the other two stop, so it has no leader (or, leading,
	// loses its majority).
	cl.Stop(2, false)
	cl.Stop(3, false)
	require.Eventually(t, notReady, 15*time.Second, 100*time.Millisecond, "a node cut off from its leader is not ready")
	assert.Equal(t, http.StatusOK, get("/healthz"), "but alive")
	fams, _ := scrape(t, cl, 1)
	assert.Equal(t, 0.0, value(fams, "openhsm_node_ready", nil))

	for _, k := range []int{2, 3} {
		out, err := cl.StartNode(k)
		require.NoError(t, err, "%s", out)
	}
	require.Eventually(t, ready, 20*time.Second, 100*time.Millisecond, "ready again once the others are back")
	fams, _ = scrape(t, cl, 1)
	assert.Equal(t, 1.0, value(fams, "openhsm_node_ready", nil))
	assert.Equal(t, 1.0, value(fams, "openhsm_raft_leader_known", nil))
}
