package client

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
)

// labelled lists the caller's token objects with the label.
func labelled(t *testing.T, c *Client, label string) []uint64 {
	t.Helper()
	ids, err := c.FindObjects(context.Background(), object.Template{{Type: ck.CKA_LABEL, Value: []byte(label)}}, 0)
	require.NoError(t, err)
	return ids
}

func labelledPair(label string, bits uint64) (pub, priv object.Template) {
	l := object.Attribute{Type: ck.CKA_LABEL, Value: []byte(label)}
	tok := object.Attribute{Type: ck.CKA_TOKEN, Value: object.EncodeBool(true)}
	return object.Template{l, tok, {Type: ck.CKA_MODULUS_BITS, Value: object.EncodeUlong(bits)}},
		object.Template{l, tok, {Type: ck.CKA_SIGN, Value: object.EncodeBool(true)}}
}

func TestDaemonRequestIDs(t *testing.T) {
	tc := startCluster(t, 3)
	t.Run("SameIDTwice", func(t *testing.T) {
		// A write sent again with its request ID (what the client does
		// after an unknown outcome) gets the first one's handles, on any
		// node, and makes nothing new.
		c, _ := daemonClient(t, tc)
		ctx := WithRequestID(context.Background(), "00112233445566778899aabbccddeeff")
		pubT, privT := labelledPair("same-id", 2048)
		rsa := mech.Mech{Type: ck.CKM_RSA_PKCS_KEY_PAIR_GEN}
		pub1, priv1, err := c.GenerateKeyPair(ctx, rsa, pubT, privT)
		require.NoError(t, err)
		for range 3 { // the calls spread over the nodes
			pub2, priv2, err := c.GenerateKeyPair(ctx, rsa, pubT, privT)
			require.NoError(t, err)
			assert.Equal(t, []uint64{pub1, priv1}, []uint64{pub2, priv2})
		}
		assert.ElementsMatch(t, []uint64{pub1, priv1}, labelled(t, c, "same-id"))
		// A new call (a new ID) makes a new pair.
		_, _, err = c.GenerateKeyPair(context.Background(), rsa, pubT, privT)
		require.NoError(t, err)
		assert.Len(t, labelled(t, c, "same-id"), 4)
		// A destroy retried after it went through answers OK.
		dctx := WithRequestID(context.Background(), "ffeeddccbbaa99887766554433221100")
		require.NoError(t, c.DestroyObject(dctx, pub1))
		require.NoError(t, c.DestroyObject(dctx, pub1))
		assert.Equal(t, uint64(ck.CKR_OBJECT_HANDLE_INVALID), RV(c.DestroyObject(context.Background(), pub1)))
	})
	t.Run("LeaderKilledDuringWrite", func(t *testing.T) {
		// The leader dies while key generations are in flight on it: each
		// call is retried with its ID until it has an answer, so every
		// one succeeds and makes exactly one key pair.
		c, logs := daemonClient(t, tc)
		st, err := c.ClusterStatus(context.Background())
		require.NoError(t, err)
		leader, err := strconv.Atoi(strings.TrimPrefix(st.Leader, "node"))
		require.NoError(t, err, "leader %q", st.Leader)
		for _, n := range c.nodes {
			if nodeOf(t, tc, n.addr) == leader {
				c.home.Store(n) // the calls go to the leader first
			}
		}
		rsa := mech.Mech{Type: ck.CKM_RSA_PKCS_KEY_PAIR_GEN}
		const calls = 6
		type result struct {
			pub, priv uint64
			err       error
		}
		results := make(chan result, calls)
		for i := range calls {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				pubT, privT := labelledPair("in-flight-"+strconv.Itoa(i), 3072)
				pub, priv, err := c.GenerateKeyPair(ctx, rsa, pubT, privT)
				results <- result{pub, priv, err}
			}()
		}
		time.Sleep(300 * time.Millisecond) // RSA-3072 takes longer: the calls are in flight
		killNow(t, tc, leader)
		got := map[uint64]bool{}
		for range calls {
			r := <-results
			require.NoError(t, r.err)
			got[r.pub], got[r.priv] = true, true
		}
		for i := range calls {
			ids := labelled(t, c, "in-flight-"+strconv.Itoa(i))
			require.Len(t, ids, 2, "call %d made %d objects", i, len(ids))
			for _, id := range ids {
				assert.True(t, got[id], "call %d: object %d is not what the call returned", i, id)
			}
		}
		t.Logf("retries logged: %d", strings.Count(logs.String(), "trying another node"))
	})
}
