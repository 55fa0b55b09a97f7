package client

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/api/dataplane"
	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

// TestDataMalformedAnswer: a node's answer that does not decode ends the
// connection for every call on it as a lost connection, never as a
// refusal of the caller's own request (which the failover would not retry).
func TestDataMalformedAnswer(t *testing.T) {
	ours, theirs := net.Pipe()
	defer theirs.Close()
	dc := &dataConn{c: ours, slot: make(chan struct{}, dataplane.MaxInFlight), pending: map[uint64]chan dataAnswer{},
		done: make(chan struct{})}
	dc.w = dataplane.NewWriter(ours, time.Second, true)
	go dc.readLoop()
	defer dc.fail(errClosed)

	type result struct {
		sent bool
		err  error
	}
	got := make(chan result, 1)
	go func() {
		_, sent, err := dc.roundTrip(context.Background(), &dataplane.Request{Op: dataplane.OpDigest,
			Mech: &hsmpb.Mechanism{Type: ck.CKM_SHA256}, Data: []byte("x")})
		got <- result{sent, err}
	}()
	theirs.SetDeadline(time.Now().Add(10 * time.Second))
	h, _, err := dataplane.ReadFrame(bufio.NewReader(theirs), nil)
	require.NoError(t, err)
	// A response whose data length runs past the body.
	b := dataplane.AppendResponse(nil, h.Op, h.ID, 1, []byte("digest"))
	binary.BigEndian.PutUint32(b[dataplane.HeaderSize+8:], 100)
	_, err = theirs.Write(b)
	require.NoError(t, err)

	r := <-got
	require.Error(t, r.err)
	assert.True(t, r.sent)
	var he *hsmerr.Error
	assert.False(t, errors.As(r.err, &he), "%v", r.err)
	assert.Contains(t, r.err.Error(), "malformed answer")
}
