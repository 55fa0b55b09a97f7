package hsmd

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/metrics"
)

// TestMetricsPprof: with pprof = true the metrics port also serves the
// runtime profiles; without it, /debug/pprof/ is not there.
func TestMetricsPprof(t *testing.T) {
	get := func(t *testing.T, h http.Handler, path string) (int, string) {
		srv := httptest.NewServer(h)
		defer srv.Close()
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(body)
	}
	m := metrics.New()

	code, body := get(t, withPprof(m.Handler()), "/debug/pprof/")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "goroutine")
	code, body = get(t, withPprof(m.Handler()), "/debug/pprof/cmdline")
	assert.Equal(t, http.StatusOK, code)
	assert.True(t, strings.Contains(body, "hsmd") || strings.Contains(body, ".test"), "the command line")
	code, body = get(t, withPprof(m.Handler()), "/metrics")
	assert.Equal(t, http.StatusOK, code, "the metrics are still served")
	assert.Contains(t, body, "# TYPE")

	code, _ = get(t, m.Handler(), "/debug/pprof/")
	assert.NotEqual(t, http.StatusOK, code, "no profiles without pprof = true")
}
