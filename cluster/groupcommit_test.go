package cluster_test

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/openhsm/openhsm/mech"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Group commit on real daemons: many concurrent writes through one node
// share Raft appends and store transactions, yet each writer gets its own
// answer; destroys of one key racing each other inside the same batches are
// refused for all but one, without touching the writes around them; and
// after every node is killed and started again, each node holds exactly
// the state the writers were told about.
func TestGroupCommitConcurrentWriters(t *testing.T) {
	c := testcluster.Start(t, 3)
	user, pin := c.Env["P11_TOKEN_LABEL"], c.Env["P11_PIN"]
	cl := pinned(t, c, 1, user, pin)
	aes := mech.Mech{Type: ck.CKM_AES_KEY_GEN}

	const writers, perWriter, racers = 16, 8, 6
	victims := make([]uint64, perWriter)
	for i := range victims {
		id, err := cl.GenerateKey(ctx, aes, aesTemplate(fmt.Sprintf("victim-%d", i)))
		require.NoError(t, err)
		victims[i] = id
	}

	type made struct {
		label string
		id    uint64
	}
	var mu sync.Mutex
	var keys []made
	destroyed := make([]int, perWriter)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				label := fmt.Sprintf("w%02d-%d", w, i)
				id, err := cl.GenerateKey(ctx, aes, aesTemplate(label))
				if !assert.NoError(t, err, label) {
					return
				}
				// The handle this writer got is its own key.
				vals, err := cl.GetAttributes(ctx, id, []uint64{ck.CKA_LABEL})
				if assert.NoError(t, err) {
					assert.Equal(t, label, string(vals[0].Value), "writer %d got another writer's key", w)
				}
				mu.Lock()
				keys = append(keys, made{label, id})
				mu.Unlock()
			}
		}()
	}
	for r := 0; r < racers; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, v := range victims {
				err := cl.DestroyObject(ctx, v)
				if err == nil {
					mu.Lock()
					destroyed[i]++
					mu.Unlock()
					continue
				}
				assert.Equal(t, uint64(ck.CKR_OBJECT_HANDLE_INVALID), client.RV(err), "racer %d, victim %d: %v", r, i, err)
			}
		}()
	}
	wg.Wait()
	require.Len(t, keys, writers*perWriter)
	for i, n := range destroyed {
		assert.Equal(t, 1, n, "victim %d destroyed by exactly one racer", i)
	}
	ids := map[uint64]bool{}
	for _, k := range keys {
		assert.False(t, ids[k.id], "handle %d given twice", k.id)
		ids[k.id] = true
	}

	want := objectsOn(t, cl)
	require.Len(t, want, writers*perWriter, "exactly the keys the writers were told of: no victim left")
	index := cl.Index()

	// Kill every node (no clean shutdown) and start them again: what each
	// store committed, with the log, is what was acknowledged.
	for k := 1; k <= 3; k++ {
		c.Stop(k, true)
	}
	for k := 1; k <= 3; k++ {
		out, err := c.StartNode(k)
		require.NoError(t, err, "%s", out)
	}
	for k := 1; k <= 3; k++ {
		ck := pinnedRetry(t, c, k, user, pin)
		ck.AdvanceIndex(index)
		assert.Equal(t, want, objectsOn(t, ck), "node%d after the restart", k)
	}
}

// objectsOn lists the user's objects as handle=label, sorted.
func objectsOn(t *testing.T, cl *client.Client) []string {
	t.Helper()
	ids, err := cl.FindObjects(ctx, nil, 0)
	require.NoError(t, err)
	var out []string
	for _, id := range ids {
		vals, err := cl.GetAttributes(ctx, id, []uint64{ck.CKA_LABEL})
		require.NoError(t, err)
		out = append(out, fmt.Sprintf("%d=%s", id, vals[0].Value))
	}
	sort.Strings(out)
	return out
}

// pinnedRetry is pinned, retried while the restarted cluster elects a
// leader and the node catches up.
func pinnedRetry(t *testing.T, c *testcluster.Cluster, k int, user, password string) *client.Client {
	t.Helper()
	cfg, err := client.LoadConfig(c.Env["HSM_CONFIG"])
	require.NoError(t, err)
	cfg.Nodes = []string{c.Addr(k)}
	cl, err := client.Dial(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { cl.Close() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := cl.Login(ctx, user, password)
		if err == nil {
			return cl
		}
		if time.Now().After(deadline) {
			t.Fatalf("login on node%d after the restart: %v", k, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
