package hsmd

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A handler's panic becomes an internal error, logged without the panic's
// value (which may hold request contents).
func TestGuardRecovers(t *testing.T) {
	var logs bytes.Buffer
	s := NewServer(nil, ServerConfig{Node: "n1", TTL: time.Minute, Log: slog.New(slog.NewJSONHandler(&logs, nil))})
	err := s.guard("Sign", func() error { panic("request-secret-4711") })
	require.Error(t, err)
	assert.Equal(t, codes.Internal, status.Code(err))
	assert.NotContains(t, err.Error(), "request-secret-4711")
	assert.Contains(t, logs.String(), "a handler panicked")
	assert.NotContains(t, logs.String(), "request-secret-4711")
	var perr error = errors.New("plain")
	assert.Equal(t, perr, s.guard("Sign", func() error { return perr }))
}

func TestThrottleDelays(t *testing.T) {
	want := []time.Duration{0, 0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second,
		32 * time.Second, throttleCap, throttleCap}
	for n, w := range want {
		assert.Equal(t, w, throttleDelay(n), "after %d failures", n)
	}
	assert.Equal(t, throttleCap, throttleDelay(1000))

	th := newThrottle()
	now := time.Unix(1_800_000_000, 0)
	cert, acct := certKey([32]byte{1}), accountKey("alice", 1)
	other := certKey([32]byte{2})
	assert.Zero(t, th.wait(now, cert, acct))
	th.failed(now, cert, acct)
	assert.Zero(t, th.wait(now, cert, acct), "the first failure costs no wait")
	th.failed(now, cert, acct)
	assert.Equal(t, time.Second, th.wait(now, cert, acct))
	assert.Zero(t, th.wait(now, cert, accountKey("bob", 1)), "two failures do not hold up the certificate")
	assert.Equal(t, time.Second, th.wait(now, other, acct), "the account waits from any certificate")
	assert.Zero(t, th.wait(now, other, accountKey("alice", 2)), "an unlock or reset starts the account afresh")
	for i := 0; i < certFree+1; i++ {
		th.failed(now, cert, accountKey(fmt.Sprintf("spray%d", i), 0))
	}
	assert.Equal(t, 2*time.Second, th.wait(now, cert, accountKey("bob", 1)), "a certificate spraying accounts waits for any account")
	th.succeeded(acct)
	assert.Equal(t, 2*time.Second, th.wait(now, cert), "a success does not clear the certificate")
	assert.Zero(t, th.wait(now.Add(throttleForget+time.Second), cert), "failures are forgotten")
	th.failed(now, cert)
	th.sweep(now.Add(throttleForget + time.Second))
	th.mu.Lock()
	assert.Empty(t, th.keys)
	th.mu.Unlock()
}

// The janitor forgets a logout only after the session's absolute end.
func TestSweepKeepsLogoutsUntilTheSessionsEnd(t *testing.T) {
	s := NewServer(nil, ServerConfig{Node: "n1", TTL: time.Minute, Log: slog.New(slog.NewJSONHandler(&bytes.Buffer{}, nil))})
	now := time.Unix(1_800_000_000, 0)
	s.now = func() time.Time { return now }
	s.mu.Lock()
	s.revoked[7] = now.Add(time.Hour).Unix()
	s.revoked[8] = now.Add(-time.Second).Unix()
	s.mu.Unlock()
	s.sweep()
	s.mu.Lock()
	_, kept := s.revoked[7]
	_, gone := s.revoked[8]
	s.mu.Unlock()
	assert.True(t, kept)
	assert.False(t, gone)
}
