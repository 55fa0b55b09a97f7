package metrics

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/openhsm/openhsm/ck"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHSMCallLabels(t *testing.T) {
	cases := []struct {
		name            string
		method          string
		mechanism, rv   uint64
		wantMethod      string
		wantMech, wantR string // wantR "" : no error counted
	}{
		{"no mechanism", "Login", NoMechanism, ck.CKR_OK, "Login", "", ""},
		{"crypto call", "Sign", ck.CKM_ECDSA, ck.CKR_OK, "Sign", "CKM_ECDSA", ""},
		{"error", "Encrypt", ck.CKM_AES_GCM, ck.CKR_KEY_HANDLE_INVALID, "Encrypt", "CKM_AES_GCM", "CKR_KEY_HANDLE_INVALID"},
		{"mechanism outside the table", "Sign", 0x8000_1234, ck.CKR_MECHANISM_INVALID, "Sign", Other, "CKR_MECHANISM_INVALID"},
		{"method outside the table", "NoSuchMethod", NoMechanism, ck.CKR_OK, Other, "", ""},
		{"CKR outside the table", "Login", NoMechanism, 0x7777_7777, "Login", "", Other},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := New()
			m.HSMCall(tc.method, tc.mechanism, tc.rv, time.Millisecond)
			m.HSMCall(tc.method, tc.mechanism, tc.rv, time.Millisecond)
			assert.Equal(t, 2.0, testutil.ToFloat64(m.hsmCalls.WithLabelValues(tc.wantMethod, tc.wantMech)))
			errs := 0.0
			if tc.wantR != "" {
				errs = 2
				assert.Equal(t, 2.0, testutil.ToFloat64(m.hsmErrors.WithLabelValues(tc.wantMethod, tc.wantMech, tc.wantR)))
			}
			assert.Equal(t, int(errs/2), testutil.CollectAndCount(m.hsmErrors), "one error series or none")
			assert.Equal(t, 1, testutil.CollectAndCount(m.hsmLatency))
		})
	}
}

func TestKMSRequestLabels(t *testing.T) {
	cases := []struct {
		name, op, exception string
		wantOp, wantEx      string // wantEx "": no error counted
	}{
		{"success", "Encrypt", "", "Encrypt", ""},
		{"exception", "DescribeKey", "NotFoundException", "DescribeKey", "NotFoundException"},
		{"unknown operation", "", "UnknownOperationException", Unknown, "UnknownOperationException"},
		{"operation outside the model", "StealKeys", "", Unknown, ""},
		{"not an exception's name", "Decrypt", "secret value 123", "Decrypt", Other},
		{"too long", "Decrypt", fmt.Sprintf("%060dException", 0), "Decrypt", Other},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := New()
			m.KMSRequest(tc.op, tc.exception, time.Millisecond)
			assert.Equal(t, 1.0, testutil.ToFloat64(m.kmsOps[opKey(tc.wantOp)].calls))
			if tc.wantEx != "" {
				assert.Equal(t, 1.0, testutil.ToFloat64(m.kmsErrors.WithLabelValues(tc.wantOp, tc.wantEx)))
			} else {
				assert.Equal(t, 0, testutil.CollectAndCount(m.kmsErrors))
			}
		})
	}
}

func opKey(label string) string {
	if label == Unknown {
		return ""
	}
	return label
}

func TestExceptionsBounded(t *testing.T) {
	m := New()
	for i := range MaxExceptions + 10 {
		m.KMSRequest("Encrypt", fmt.Sprintf("Made%sException", string(rune('A'+i%26))+string(rune('a'+i/26))), 0)
	}
	assert.Equal(t, MaxExceptions+1, testutil.CollectAndCount(m.kmsErrors), "the first MaxExceptions names, then Other")
	assert.Equal(t, 10.0, testutil.ToFloat64(m.kmsErrors.WithLabelValues("Encrypt", Other)))
}

func TestNilRecordsNothing(t *testing.T) {
	var m *Metrics
	m.HSMCall("Sign", ck.CKM_ECDSA, ck.CKR_OK, 0)
	m.KMSRequest("Encrypt", "", 0)
	m.RaftCommitted(0)
	m.RaftLogStored(0)
	m.StoreCommitted(0)
	m.SetSources(Sources{})
	assert.NoError(t, m.Ready())
}

func TestRecordingAllocatesNothing(t *testing.T) {
	m := New()
	m.HSMCall("Sign", ck.CKM_ECDSA, ck.CKR_OK, time.Microsecond) // makes the series
	allocs := testing.AllocsPerRun(1000, func() {
		m.HSMCall("Sign", ck.CKM_ECDSA, ck.CKR_OK, time.Microsecond)
		m.HSMCall("Login", NoMechanism, ck.CKR_OK, time.Microsecond)
		m.KMSRequest("Encrypt", "", time.Microsecond)
		m.StoreCommitted(time.Microsecond)
	})
	assert.Zero(t, allocs)
}

func BenchmarkHSMCall(b *testing.B) {
	m := New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.HSMCall("Sign", ck.CKM_ECDSA, ck.CKR_OK, time.Microsecond)
		}
	})
}

func TestScrapedAndHealth(t *testing.T) {
	m := New()
	var ready error
	backup := time.Now().Add(-time.Hour)
	m.SetSources(Sources{
		Sessions: func() int { return 3 },
		Raft: func() RaftStats {
			return RaftStats{State: "follower", LeaderKnown: true, Term: 4, CommitIndex: 10, AppliedIndex: 7, LastLogIndex: 11}
		},
		NewestBackup: func() time.Time { return backup },
		Ready:        func() error { return ready },
	})
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/metrics")
	require.Equal(t, http.StatusOK, code)
	for _, line := range []string{
		"openhsm_sessions 3", "openhsm_raft_state{state=\"follower\"} 1", "openhsm_raft_state{state=\"leader\"} 0",
		"openhsm_raft_leader_known 1", "openhsm_raft_term 4", "openhsm_raft_commit_index 10", "openhsm_raft_applied_index 7",
		"openhsm_raft_last_log_index 11", "openhsm_raft_apply_lag 3", "openhsm_node_ready 1",
		"openhsm_hsm_calls_total{mechanism=\"\",method=\"Login\"} 0", "openhsm_kms_requests_total{operation=\"Encrypt\"} 0",
		"go_goroutines", "process_resident_memory_bytes",
	} {
		assert.Contains(t, body, line+"")
	}
	assert.Contains(t, body, "openhsm_backup_age_seconds 3600")

	code, body = get("/readyz")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ready\n", body)
	ready = errors.New("not ready: no leader is known")
	code, body = get("/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "not ready: no leader is known\n", body)
	code, _ = get("/healthz")
	assert.Equal(t, http.StatusOK, code, "alive while not ready")
	code, _ = get("/other")
	assert.Equal(t, http.StatusNotFound, code)

	backup = time.Time{}
	_, body = get("/metrics")
	assert.Contains(t, body, "openhsm_backup_last_timestamp_seconds 0")
	assert.NotContains(t, body, "openhsm_backup_age_seconds")
	assert.Contains(t, body, "openhsm_node_ready 0")
}
