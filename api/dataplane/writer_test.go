package dataplane

import (
	"bufio"
	"bytes"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
)

// TestWriterFrames: many goroutines queue small and large frames (those
// above largeFrame go in buffers of their own) on one Writer at once, with
// and without gathering; the other end reads every frame exactly once and
// whole. A large request the encoder refuses queues nothing.
func TestWriterFrames(t *testing.T) {
	for _, gather := range []bool{true, false} {
		ours, theirs := net.Pipe()
		w := NewWriter(ours, 10*time.Second, gather)
		const n = 40
		sizes := func(id uint64) int {
			switch id % 4 {
			case 0:
				return largeFrame + 1 + int(id)
			case 1:
				return 3 * largeFrame
			default:
				return int(id) * 10
			}
		}
		data := func(id uint64) []byte { return bytes.Repeat([]byte{byte(id)}, sizes(id)) }
		got := make(chan map[uint64][]byte)
		go func() {
			seen := map[uint64][]byte{}
			br := bufio.NewReader(theirs)
			for range 2 * n {
				h, body, err := ReadFrame(br, nil)
				if !assert.NoError(t, err) {
					break
				}
				switch h.Kind {
				case KindRequest:
					r, err := DecodeRequest(h, body)
					if assert.NoError(t, err) {
						assert.NotContains(t, seen, r.ID, "request %d twice", r.ID)
						seen[r.ID] = r.Data
					}
				default:
					resp, _, err := DecodeAnswer(h, body)
					if assert.NoError(t, err) {
						assert.NotContains(t, seen, h.ID+1000, "answer %d twice", h.ID)
						seen[h.ID+1000] = resp.Data
					}
				}
			}
			got <- seen
		}()
		var wg sync.WaitGroup
		for id := uint64(1); id <= n; id++ {
			wg.Go(func() {
				assert.NoError(t, w.Request(&Request{Op: OpEncrypt, ID: id, Token: "t", Key: 1,
					Mech: &hsmpb.Mechanism{Type: ck.CKM_AES_CBC_PAD}, Data: data(id)}))
				assert.NoError(t, w.Response(OpEncrypt, id, 5, data(id)))
			})
		}
		wg.Wait()
		err := w.Request(&Request{Op: OpEncrypt, ID: 99, Token: "t", Key: 1, Data: make([]byte, 2*largeFrame)})
		require.Error(t, err, "no mechanism")
		seen := <-got
		require.Len(t, seen, 2*n, "gather %v", gather)
		for id := uint64(1); id <= n; id++ {
			assert.Equal(t, data(id), seen[id], "request %d", id)
			assert.Equal(t, data(id), seen[id+1000], "answer %d", id)
		}
		w.mu.Lock()
		assert.Empty(t, w.out)
		assert.Empty(t, w.large)
		w.mu.Unlock()
		ours.Close()
		theirs.Close()
	}
}

// TestWriterAfterError: once a write failed, frames queued later are
// dropped, small or large, and each call gets the connection's error.
func TestWriterAfterError(t *testing.T) {
	ours, theirs := net.Pipe()
	theirs.Close()
	w := NewWriter(ours, time.Second, false)
	first := w.Response(OpSign, 1, 0, []byte("x"))
	require.Error(t, first)
	assert.Equal(t, first, w.Response(OpSign, 2, 0, make([]byte, 2*largeFrame)))
	assert.Equal(t, first, w.Response(OpSign, 3, 0, []byte("y")))
	w.mu.Lock()
	defer w.mu.Unlock()
	assert.Empty(t, w.out)
	assert.Empty(t, w.large)
}
