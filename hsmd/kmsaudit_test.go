package hsmd

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/audit"
	"github.com/openhsm/openhsm/backup"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/cluster"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/pki"
	"github.com/openhsm/openhsm/seal"
	"github.com/openhsm/openhsm/state"
	"github.com/openhsm/openhsm/state/sqlite"
)

const testKeyARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"

// kmsTestEvent is the i-th of a run of KMS requests: every third refused.
func kmsTestEvent(i int) audit.KMSEvent {
	e := audit.KMSEvent{Time: 2_000_000_000, Principal: "arn:aws:iam::123456789012:user/alice", Op: "Encrypt",
		Key: testKeyARN, ContextKeys: []string{"purpose"}, Source: "127.0.0.1:50000", RequestID: fmt.Sprintf("req-%06d", i)}
	if i%3 == 2 {
		e.Op, e.Error = "Decrypt", "InvalidCiphertextException"
	}
	return e
}

// kmsRecords reads the KMS records, by sequence number.
func kmsRecords(t *testing.T, st state.Store) []*audit.Record {
	t.Helper()
	recs, err := st.AuditRecords(state.AuditQuery{Kinds: []string{audit.KindKMS}})
	require.NoError(t, err)
	return recs
}

// requestIDs are the request IDs of records, in order.
func requestIDs(t *testing.T, recs []*audit.Record) []string {
	t.Helper()
	var ids []string
	for _, r := range recs {
		var d audit.KMSDetail
		require.NoError(t, json.Unmarshal([]byte(r.Detail), &d))
		ids = append(ids, d.RequestID)
	}
	return ids
}

func wantIDs(from, to int) []string {
	var ids []string
	for i := from; i < to; i++ {
		ids = append(ids, fmt.Sprintf("req-%06d", i))
	}
	return ids
}

// TestKMSAuditorRecordsExactlyOnce: a batch whose answer was lost is
// resent as it is and recorded once; events queued meanwhile follow it, in
// order.
func TestKMSAuditorRecordsExactlyOnce(t *testing.T) {
	m, st := newAuditMachine(t)
	a := &lossyApplier{next: &engine.LocalApplier{M: m}}
	k := newKMSAuditor("n1", m.Sealer, a, 0, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	for i := range 10 {
		k.Record(kmsTestEvent(i))
	}
	a.lose = true
	require.Error(t, k.flush(ctx))
	require.NotNil(t, k.pending)
	assert.Len(t, kmsRecords(t, st), 10, "applied, though the answer was lost")
	a.lose = false
	for i := 10; i < 15; i++ {
		k.Record(kmsTestEvent(i))
	}
	require.NoError(t, k.flush(ctx))
	assert.Nil(t, k.pending)
	recs := kmsRecords(t, st)
	assert.Equal(t, wantIDs(0, 15), requestIDs(t, recs), "each once, in order")
	assert.Equal(t, 3, a.sent, "the lost batch, its resend, the next")
	assert.Zero(t, k.Dropped())
	rep, err := state.VerifyAudit(st, m.Sealer())
	require.NoError(t, err)
	assert.True(t, rep.OK, "%+v", rep)
}

// TestKMSAuditorKeepsEventsWhenTheClusterIsDown: events that could not be
// sent stay queued and go with a later flush; so do they while the domain
// key is not unsealed.
func TestKMSAuditorKeepsEventsWhenTheClusterIsDown(t *testing.T) {
	m, st := newAuditMachine(t)
	var sealer *seal.Sealer
	k := newKMSAuditor("n1", func() *seal.Sealer { return sealer }, downApplier{}, 0, slog.New(slog.DiscardHandler))
	for i := range 4 {
		k.Record(kmsTestEvent(i))
	}
	require.ErrorContains(t, k.flush(context.Background()), "not unsealed")
	sealer = m.Sealer()
	require.Error(t, k.flush(context.Background()))
	require.NotNil(t, k.pending)
	k.Record(kmsTestEvent(4))
	k.applier = &engine.LocalApplier{M: m}
	require.NoError(t, k.flush(context.Background()))
	assert.Equal(t, wantIDs(0, 5), requestIDs(t, kmsRecords(t, st)))
}

// TestKMSAuditorIsBounded: past the backlog's bound events are dropped,
// counted, and the next flush says so in the log; what was queued is
// recorded.
func TestKMSAuditorIsBounded(t *testing.T) {
	m, st := newAuditMachine(t)
	var logs bytes.Buffer
	k := newKMSAuditor("n1", m.Sealer, downApplier{}, 0, slog.New(slog.NewJSONHandler(&logs, nil)))
	for i := range maxKMSBacklog + 25 {
		k.Record(kmsTestEvent(i))
	}
	assert.Equal(t, uint64(25), k.Dropped())
	k.mu.Lock()
	assert.Len(t, k.queue, maxKMSBacklog)
	k.mu.Unlock()
	require.Error(t, k.flush(context.Background()))
	assert.Contains(t, logs.String(), "KMS audit events dropped")
	assert.Contains(t, logs.String(), `"dropped":25`)
	// The backlog, its pending batch included, stays within the bound.
	k.Record(kmsTestEvent(0))
	assert.Equal(t, uint64(25), k.Dropped(), "the pending batch left room")

	// The byte bound: big events fill it before the count does.
	k2 := newKMSAuditor("n1", m.Sealer, &engine.LocalApplier{M: m}, 0, slog.New(slog.DiscardHandler))
	big := kmsTestEvent(0)
	big.Principal = strings.Repeat("&", audit.MaxKMSPrincipal) // escaped 6 bytes a character
	n := 0
	for k2.Dropped() == 0 {
		k2.Record(big)
		n++
	}
	assert.Less(t, n, maxKMSBacklog)
	assert.LessOrEqual(t, n*kmsEventSize(&big), maxKMSBacklogBytes+kmsEventSize(&big))

	// A small run is sent whole, in batches that fit a command.
	k3 := newKMSAuditor("n1", m.Sealer, &engine.LocalApplier{M: m}, 0, slog.New(slog.DiscardHandler))
	for i := range kmsEventsPerBatch + 3 {
		k3.Record(kmsTestEvent(i))
	}
	require.NoError(t, k3.flush(context.Background()))
	assert.Len(t, kmsRecords(t, st), kmsEventsPerBatch+3)
}

func TestBatchLen(t *testing.T) {
	sizes := func(n, each int) []int {
		s := make([]int, n)
		for i := range s {
			s[i] = each
		}
		return s
	}
	assert.Equal(t, 3, batchLen(sizes(3, 100)))
	assert.Equal(t, kmsEventsPerBatch, batchLen(sizes(kmsEventsPerBatch+1, 100)))
	assert.Equal(t, 2, batchLen(sizes(5, kmsBatchBytes/2)))
	assert.Equal(t, 1, batchLen(sizes(5, kmsBatchBytes+1)), "one event always goes")
}

// TestKMSAuditorSanitizes: an event apply would refuse is fitted, not
// lost with its batch.
func TestKMSAuditorSanitizes(t *testing.T) {
	m, st := newAuditMachine(t)
	k := newKMSAuditor("n1", m.Sealer, &engine.LocalApplier{M: m}, 0, slog.New(slog.DiscardHandler))
	now := time.Unix(2_000_000_500, 0)
	k.now = func() time.Time { return now }
	k.Record(audit.KMSEvent{Principal: "AKIA\x00\xff" + strings.Repeat("x", 5000), Op: "Frobnicate",
		ContextKeys: []string{"b", "a", "b"}, RequestID: "r-1", Error: "Bad Thing!"})
	k.Record(kmsTestEvent(1))
	require.NoError(t, k.flush(context.Background()))
	recs := kmsRecords(t, st)
	require.Len(t, recs, 2)
	r := recs[0]
	assert.Equal(t, now.Unix(), r.Time, "a missing time is the node's")
	assert.Equal(t, "", r.Op, "not a KMS operation")
	assert.True(t, strings.HasPrefix(r.User, "AKIA\uFFFD\uFFFDxx"))
	assert.LessOrEqual(t, len(r.User), audit.MaxKMSPrincipal)
	assert.Equal(t, uint64(1), r.Result)
	assert.Equal(t, `{"context_keys":["a","b"],"context_keys_omitted":1,"request_id":"r-1","error":"BadThing"}`, r.Detail)
	assert.Zero(t, k.Dropped())
}

// TestKMSAuditorRefusedBatchIsCounted: a batch apply refuses (here: a
// proof under another domain key) is not resent; its events are counted
// as dropped and logged.
func TestKMSAuditorRefusedBatchIsCounted(t *testing.T) {
	m, st := newAuditMachine(t)
	other, _, err := seal.NewDomainKey("other", seal.KEKSource{KeyFile: make([]byte, 32)})
	require.NoError(t, err)
	var logs bytes.Buffer
	k := newKMSAuditor("n1", func() *seal.Sealer { return other }, &engine.LocalApplier{M: m}, 0,
		slog.New(slog.NewJSONHandler(&logs, nil)))
	for i := range 3 {
		k.Record(kmsTestEvent(i))
	}
	require.NoError(t, k.flush(context.Background()))
	assert.Nil(t, k.pending)
	assert.Equal(t, uint64(3), k.Dropped())
	assert.Empty(t, kmsRecords(t, st))
	assert.Contains(t, logs.String(), "refused")
	assert.Contains(t, logs.String(), `"dropped_total":3`)
}

// blockingApplier holds every Submit until released.
type blockingApplier struct {
	next    engine.Applier
	entered chan struct{}
	release chan struct{}
}

func (b *blockingApplier) Submit(ctx context.Context, c *state.Command) error {
	b.entered <- struct{}{}
	<-b.release
	return b.next.Submit(ctx, c)
}

// TestKMSAuditorRecordDoesNotWait: while a flush waits for the cluster,
// Record still returns at once.
func TestKMSAuditorRecordDoesNotWait(t *testing.T) {
	m, st := newAuditMachine(t)
	b := &blockingApplier{next: &engine.LocalApplier{M: m}, entered: make(chan struct{}), release: make(chan struct{})}
	k := newKMSAuditor("n1", m.Sealer, b, 0, slog.New(slog.DiscardHandler))
	k.Record(kmsTestEvent(0))
	done := make(chan error)
	go func() { done <- k.flush(context.Background()) }()
	<-b.entered
	start := time.Now()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 250 {
				k.Record(kmsTestEvent(1 + g*250 + i))
			}
		}()
	}
	wg.Wait()
	assert.Less(t, time.Since(start), 2*time.Second)
	close(b.release)
	require.NoError(t, <-done)
	go func() {
		for range b.entered {
		}
	}()
	require.NoError(t, k.flush(context.Background()))
	close(b.entered)
	assert.Len(t, kmsRecords(t, st), 1001)
}

// testNode is one real node in this process: its store and domain key
// (Open), Raft over its own port, and the engine and server on top, as
// Serve builds them, without the gRPC listener.
type testNode struct {
	cfg *Config
	n   *Node
	cn  *cluster.Node
	mux *cluster.Mux
}

func startTestNode(t *testing.T) *testNode {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.CreateCA(filepath.Join(dir, "ca"), "kms audit test")
	require.NoError(t, err)
	certs := filepath.Join(dir, "certs")
	require.NoError(t, ca.IssueNode(certs, "n1", nil))
	kek := make([]byte, 32)
	rand.Read(kek)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "kek"), kek, 0o600))
	no := false
	cfg := &Config{Node: "n1", Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "data"),
		CA: filepath.Join(dir, "ca", "ca.pem"), Cert: pki.CertPath(certs, "n1"), Key: pki.KeyPath(certs, "n1"),
		KeyFile: filepath.Join(dir, "kek"), LogFile: filepath.Join(dir, "node.log"), Sync: &no, LockMemory: &no}
	require.NoError(t, Init(cfg, ""))
	return openTestNode(t, cfg)
}

func openTestNode(t *testing.T, cfg *Config) *testNode {
	t.Helper()
	n, err := Open(cfg)
	require.NoError(t, err)
	tlsConf, err := pki.NodeServerConfig(cfg.Cert, cfg.Key, cfg.CA, &n.deny)
	require.NoError(t, err)
	peerConf, err := pki.NodePeerConfig(cfg.Cert, cfg.Key, cfg.CA, &n.deny)
	require.NoError(t, err)
	mux, err := cluster.Listen(cfg.Listen, tlsConf, n.Log)
	require.NoError(t, err)
	mux.SetDenyList(&n.deny)
	cn, err := cluster.New(cluster.Config{ID: cfg.Node, Dir: filepath.Join(cfg.DataDir, "raft"), Mux: mux,
		Advertise: mux.Addr().String(), Peer: peerConf, Machine: n.Machine, Log: n.Log,
		Fatal: func(err error) { t.Errorf("node stopped: %v", err) }})
	require.NoError(t, err)
	n.Cluster = cn
	n.Engine = engine.NewEngine(n.Machine, &stampApplier{next: cn, node: cfg.Node}, engine.Options{})
	n.Server = NewServer(n.Engine, ServerConfig{Node: cfg.Node, TTL: time.Minute, Log: n.Log, Replica: cn, Deny: &n.deny})
	require.NoError(t, cn.Start())
	deadline := time.Now().Add(20 * time.Second)
	for !cn.IsLeader() {
		require.True(t, time.Now().Before(deadline), "the node did not become leader")
		time.Sleep(20 * time.Millisecond)
	}
	return &testNode{cfg: cfg, n: n, cn: cn, mux: mux}
}

func (tn *testNode) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, tn.cn.Shutdown())
	tn.mux.Close()
	require.NoError(t, tn.n.Close())
}

// officer is the context of a crypto officer's call, as the interceptor
// makes it.
func officer() context.Context {
	return context.WithValue(context.Background(), keyCaller, engine.Caller{User: "admin", Role: object.RoleCO, Session: 1})
}

// TestKMSAuditorOnRealNode drives the auditor against a real single node
// (Raft, the store on disk): requests recorded through Record reach the
// trail by run's ticks, ListAudit reads them with their detail and
// filters, a backup restores them, and flipping one byte of a stored KMS
// record in the SQLite file makes VerifyAudit fail and name the record.
func TestKMSAuditorOnRealNode(t *testing.T) {
	tn := startTestNode(t)
	last, err := state.LastKMSAuditBatch(tn.n.Store.Meta, "n1")
	require.NoError(t, err)
	k := newKMSAuditor("n1", tn.n.Machine.Sealer, tn.cn, last, tn.n.Log)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { k.run(ctx); close(ran) }()

	events := []audit.KMSEvent{
		{Time: time.Now().Unix(), Principal: "arn:aws:iam::123456789012:user/alice", Op: "Encrypt", Key: testKeyARN,
			ContextKeys: []string{"department", "purpose"}, Source: "127.0.0.1:40001", RequestID: "req-a"},
		{Time: time.Now().Unix(), Principal: "arn:aws:iam::123456789012:user/bob", Op: "Decrypt", Key: testKeyARN,
			Source: "127.0.0.1:40002", RequestID: "req-b", Error: "IncorrectKeyException"},
		{Time: time.Now().Unix(), Principal: "AKIAIOSFODNN7EXAMPLE", Op: "GenerateDataKey", Source: "127.0.0.1:40003",
			RequestID: "req-c", Error: "UnrecognizedClientException"},
	}
	for _, e := range events {
		k.Record(e)
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(kmsRecords(t, tn.n.Store)) < len(events) {
		require.True(t, time.Now().Before(deadline), "the events did not reach the trail")
		time.Sleep(50 * time.Millisecond)
	}
	// One more, sent by the shutdown flush.
	cancel()
	<-ran
	k.Record(audit.KMSEvent{Principal: "arn:aws:iam::123456789012:user/alice", Op: "ListKeys", RequestID: "req-d"})
	require.NoError(t, k.flush(context.Background()))
	recs := kmsRecords(t, tn.n.Store)
	require.Len(t, recs, 4)
	assert.Equal(t, []string{"req-a", "req-b", "req-c", "req-d"}, requestIDs(t, recs))
	assert.Equal(t, "n1", recs[0].Node)
	assert.Equal(t, testKeyARN, recs[0].Subject)
	assert.Equal(t, uint64(0), recs[0].Result)
	assert.Equal(t, uint64(1), recs[1].Result)
	assert.Equal(t, `{"context_keys":["department","purpose"],"source":"127.0.0.1:40001","request_id":"req-a"}`, recs[0].Detail)

	// ListAudit, as hsm audit list calls it.
	s := tn.n.Server
	for _, tc := range []struct {
		name string
		req  *hsmpb.ListAuditRequest
		ids  []string
	}{
		{"kind", &hsmpb.ListAuditRequest{Kind: audit.KindKMS}, []string{"req-a", "req-b", "req-c", "req-d"}},
		{"key ARN", &hsmpb.ListAuditRequest{Key: testKeyARN}, []string{"req-a", "req-b"}},
		{"key ID", &hsmpb.ListAuditRequest{Key: "1234abcd-12ab-34cd-56ef-1234567890ab"}, []string{"req-a", "req-b"}},
		{"principal", &hsmpb.ListAuditRequest{User: "arn:aws:iam::123456789012:user/alice"}, []string{"req-a", "req-d"}},
		{"principal and key", &hsmpb.ListAuditRequest{User: "arn:aws:iam::123456789012:user/bob", Key: testKeyARN}, []string{"req-b"}},
		{"since", &hsmpb.ListAuditRequest{Kind: audit.KindKMS, Since: time.Now().Add(time.Hour).Unix()}, nil},
	} {
		resp, err := s.ListAudit(officer(), tc.req)
		require.NoError(t, err, tc.name)
		var ids []string
		for _, r := range resp.Records {
			var d audit.KMSDetail
			require.NoError(t, json.Unmarshal([]byte(r.Detail), &d), tc.name)
			ids = append(ids, d.RequestID)
		}
		assert.Equal(t, tc.ids, ids, tc.name)
	}
	for _, req := range []*hsmpb.ListAuditRequest{{Kind: "secret"}, {Key: "alias/x"}, {Key: "arn:" + strings.Repeat("a", 3000)}} {
		_, err := s.ListAudit(officer(), req)
		assert.Equal(t, uint64(ck.CKR_ARGUMENTS_BAD), hsmerr.RV(err), "%+v: %v", req, err)
	}
	cu := context.WithValue(context.Background(), keyCaller, engine.Caller{User: "cu1", Role: object.RoleCU, Session: 2})
	_, err = s.ListAudit(cu, &hsmpb.ListAuditRequest{Kind: audit.KindKMS})
	assert.Equal(t, uint64(ck.CKR_USER_NOT_LOGGED_IN), hsmerr.RV(err), "a crypto user reads no KMS records")
	resp, err := s.ListAudit(cu, &hsmpb.ListAuditRequest{})
	require.NoError(t, err)
	assert.Empty(t, resp.Records)
	ver, err := s.VerifyAudit(officer(), &hsmpb.Empty{})
	require.NoError(t, err)
	assert.True(t, ver.Ok, "%+v", ver)

	// A backup restores the records, detail and all.
	raw, err := tn.n.Store.Meta(state.MetaDomainKey)
	require.NoError(t, err)
	snap, err := tn.n.Store.Snapshot()
	require.NoError(t, err)
	var bk bytes.Buffer
	require.NoError(t, backup.Write(&bk, tn.n.Machine.Sealer(), backup.Header{ClusterID: tn.n.ClusterID(), Node: "n1",
		SealedDomainKey: raw}, snap, nil))
	snap.Close()
	var stream bytes.Buffer
	_, err = backup.Decrypt(bytes.NewReader(bk.Bytes()), tn.n.Machine.Sealer(), &stream, nil)
	require.NoError(t, err)
	restored, err := sqlite.Open(filepath.Join(t.TempDir(), "restored.db"), sqlite.Options{})
	require.NoError(t, err)
	defer restored.Close()
	require.NoError(t, restored.Restore(&stream, 0))
	assert.Equal(t, recs, kmsRecords(t, restored))
	rep, err := state.VerifyAudit(restored, tn.n.Machine.Sealer())
	require.NoError(t, err)
	assert.True(t, rep.OK, "%+v", rep)

	// Stopped, one byte of the refused Decrypt's record is flipped in the
	// file; the restarted node's VerifyAudit names the record.
	target := recs[1].Seq
	tn.stop(t)
	db, err := sql.Open("sqlite", "file:"+tn.cfg.storePath())
	require.NoError(t, err)
	var detail []byte
	require.NoError(t, db.QueryRow(`SELECT detail FROM audit WHERE seq = ?`, target).Scan(&detail))
	i := bytes.Index(detail, []byte("IncorrectKey"))
	require.Positive(t, i)
	detail[i] ^= 0x20 // 'I' becomes 'i'
	_, err = db.Exec(`UPDATE audit SET detail = ? WHERE seq = ?`, string(detail), target)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	tn = openTestNode(t, tn.cfg)
	defer tn.stop(t)
	ver, err = tn.n.Server.VerifyAudit(officer(), &hsmpb.Empty{})
	require.NoError(t, err)
	assert.False(t, ver.Ok)
	assert.Equal(t, target, ver.FirstBad)
	assert.Equal(t, state.AuditEdited, ver.Problem)
	assert.Contains(t, ver.Detail, fmt.Sprintf("record %d", target))
}
