package httpapi

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestHealth: GET and HEAD /healthz answer without authentication, with
// Ready's verdict, and leave nothing in the trail.
func TestHealth(t *testing.T) {
	cases := []struct {
		name   string
		method string
		ready  func() error
		status int
		body   string
	}{
		{"no Ready is ready", http.MethodGet, nil, 200, "ok\n"},
		{"ready", http.MethodGet, func() error { return nil }, 200, "ok\n"},
		{"not ready", http.MethodGet, func() error { return errors.New("no quorum: 1 of 3 nodes") }, 503, "no quorum: 1 of 3 nodes\n"},
		{"HEAD", http.MethodHead, nil, 200, "ok\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, Config{Ready: c.ready})
			r := httptest.NewRequest(c.method, HealthPath, nil)
			w := f.serve(r)
			assert.Equal(t, c.status, w.Code)
			assert.Equal(t, c.body, w.Body.String())
			assert.Equal(t, "text/plain; charset=utf-8", w.Header().Get("Content-Type"))
			assert.Regexp(t, uuidV4, w.Header().Get("x-amzn-RequestId"))
			assert.Empty(t, f.trail.all())
			assert.Zero(t, f.svc.calls.Load())
		})
	}
}

// TestHealthOverHTTP: an HTTP client (as haproxy's check is) gets the
// answer from a real listener on 127.0.0.1.
func TestHealthOverHTTP(t *testing.T) {
	f := newFixture(t, Config{})
	srv := httptest.NewServer(f.h)
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + HealthPath)
	if !assert.NoError(t, err) {
		return
	}
	defer resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "ok\n", readAll(t, resp.Body))
}
