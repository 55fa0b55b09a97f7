package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/openhsm/openhsm/api"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/cluster/peerpb"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/state"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Config is what a node needs to take part in the cluster.
type Config struct {
	ID        string // the node's name: its Raft server ID
	Dir       string // where Raft keeps its log and snapshots
	Mux       *Mux
	Advertise string      // the address other nodes reach this one at
	Peer      *tls.Config // pki.NodePeerConfig: how this node dials others
	Machine   *state.Machine
	Sync      bool // fsync the Raft log (and the store) on every commit
	Log       *slog.Logger
	RaftLog   io.Writer // Raft's own log lines; nil: discarded
	// Join makes a node with no Raft state wait to be added to a cluster
	// instead of founding one.
	Join bool
	// JoinMembers are the names of the members when the node fetched the
	// domain key to join: until it has a configuration, only they may
	// open Raft connections to it.
	JoinMembers []string
	// SnapshotThreshold and TrailingLogs tune Raft's log compaction; 0
	// keeps the defaults.
	SnapshotThreshold uint64
	TrailingLogs      uint64
	// Fatal is called when the node cannot go on without diverging (the
	// store failed while applying). It should stop the process.
	Fatal func(error)
	// Timings, if set, hears how long commits and log writes take.
	Timings Timings
}

// Timeouts for client-facing waits.
const (
	// leaderWait bounds how long a write waits for a leader to exist.
	leaderWait = 10 * time.Second
	// applyTimeout bounds enqueueing a command on the leader.
	applyTimeout = 5 * time.Second
	// localApplyWait bounds how long a node waits to apply a write it
	// forwarded, before answering.
	localApplyWait = 5 * time.Second
)

// ErrNotExecuted marks an error after which a request certainly did not
// take effect: a client may send it to another node.
var ErrNotExecuted = errors.New("not executed")

// Node is this daemon's place in the cluster.
type Node struct {
	cfg    Config
	rc     *raft.Config
	raft   *raft.Raft
	fsm    *fsm
	logs   *raftboltdb.BoltStore
	snaps  *raft.FileSnapshotStore
	trans  *raft.NetworkTransport
	stream *streamLayer
	peers  *peers
	lease  lease
	seen   seenProofs
	stop   chan struct{}
}

// Start is New and then Node.Start.
func Start(cfg Config) (*Node, error) {
	n, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := n.Start(); err != nil {
		return nil, err
	}
	return n, nil
}

// New opens Raft's stores and transport. Nothing is applied and no Raft
// traffic flows until Start, so a daemon can build everything that uses
// the node (engine, server) first, and the machine's observer only hears
// of applied commands once all of it exists.
func New(cfg Config) (*Node, error) {
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("raft dir: %v", err)
	}
	if cfg.Fatal == nil {
		cfg.Fatal = func(err error) { panic(err) }
	}
	out := cfg.RaftLog
	if out == nil {
		out = io.Discard
	}
	hl := hclog.New(&hclog.LoggerOptions{Name: "raft", Output: out, JSONFormat: true, Level: hclog.Info})
	n := &Node{cfg: cfg, peers: newPeers(cfg.Peer), stop: make(chan struct{})}
	n.lease.kick = make(chan struct{}, 1)
	var err error
	n.logs, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.Dir, "raft.db"), NoSync: !cfg.Sync})
	if err != nil {
		return nil, fmt.Errorf("raft log: %v", err)
	}
	n.snaps, err = raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, hl)
	if err != nil {
		n.logs.Close()
		return nil, fmt.Errorf("raft snapshots: %v", err)
	}
	n.fsm, err = newFSM(cfg.Machine, cfg.Log, cfg.Fatal)
	if err != nil {
		n.logs.Close()
		return nil, err
	}
	n.rc = raft.DefaultConfig()
	rc := n.rc
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = hl
	// The store is persistent: a restart replays only the log after the
	// snapshot, and the store skips what it already holds.
	rc.NoSnapshotRestoreOnStart = true
	// Tell followers of a commit within a few milliseconds rather than
	// Raft's default 50: a write through a follower waits until the
	// follower has applied it (read-your-writes there).
	rc.CommitTimeout = 5 * time.Millisecond
	// Check the threshold often: a snapshot is taken only when the log
	// has grown past it.
	rc.SnapshotInterval = 5 * time.Second
	if cfg.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = cfg.SnapshotThreshold
	}
	if cfg.TrailingLogs > 0 {
		rc.TrailingLogs = cfg.TrailingLogs
	}
	n.stream = newStreamLayer(cfg.Mux, cfg.Peer)
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  n.stream,
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  hl,
	})
	return n, nil
}

// Start catches the state machine up with the latest snapshot if it is
// behind it, and starts Raft. A node with no Raft state founds a one-voter
// cluster, unless the config's Join says to wait to be added. If Start
// fails, the node is closed.
func (n *Node) Start() error {
	cfg, rc := n.cfg, n.rc
	if err := n.catchUp(); err != nil {
		n.close()
		return err
	}
	if err := n.checkNotAhead(); err != nil {
		n.close()
		return err
	}
	existing, err := raft.HasExistingState(n.logs, n.logs, n.snaps)
	if err != nil {
		n.close()
		return err
	}
	if !existing && !cfg.Join {
		conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: rc.LocalID, Address: raft.ServerAddress(cfg.Advertise)}}}
		if err := raft.BootstrapCluster(rc, n.logs, n.logs, n.snaps, n.trans, conf); err != nil {
			n.close()
			return fmt.Errorf("raft bootstrap: %v", err)
		}
		cfg.Log.Info("founded a cluster", "addr", cfg.Advertise)
	} else if !existing {
		cfg.Log.Info("waiting to be added to a cluster (hsm cluster add-node)", "addr", cfg.Advertise)
	}
	n.raft, err = raft.NewRaft(rc, n.fsm, n.logStore(), n.logs, n.snaps, n.trans)
	if err != nil {
		n.close()
		return fmt.Errorf("raft: %v", err)
	}
	cfg.Mux.authorizeRaft(n.raftPeerAllowed)
	member := n.IsMember
	n.stream.member.Store(&member)
	go n.leaseLoop(n.stop)
	return nil
}

// catchUp restores the latest snapshot into the store if the store is
// behind it: Raft will only replay the log after the snapshot. (With
// fsync on, a store is never behind; a restored backup is, once.)
func (n *Node) catchUp() error {
	metas, err := n.snaps.List()
	if err != nil || len(metas) == 0 {
		return err
	}
	latest := metas[0]
	if !n.behind(latest.Index) {
		return nil
	}
	n.cfg.Log.Info("the store is behind the latest snapshot; restoring it", "store_index", n.fsm.Applied(), "snapshot_index", latest.Index)
	_, rc, err := n.snaps.Open(latest.ID)
	if err != nil {
		return fmt.Errorf("open snapshot: %v", err)
	}
	return n.fsm.Restore(rc)
}

// checkNotAhead refuses a store that holds commands its Raft log and
// snapshots do not: with sync = false a crash can lose the tail of the log
// while the store kept it, and a node that went on from there would hold
// changes the cluster never committed (or commit different ones at the
// same indexes). Such a node must be wiped and added again.
func (n *Node) checkNotAhead() error {
	applied := n.fsm.Applied()
	last, err := n.logs.LastIndex()
	if err != nil {
		return fmt.Errorf("raft log: %v", err)
	}
	metas, err := n.snaps.List()
	if err != nil {
		return fmt.Errorf("raft snapshots: %v", err)
	}
	known := last
	if len(metas) > 0 && metas[0].Index > known {
		known = metas[0].Index
	}
	// A store that Raft has never seen holds only what 'hsmd init' wrote
	// locally (index 1); it is not ahead of anything.
	if known == 0 && applied <= 1 {
		return nil
	}
	if applied > known {
		return fmt.Errorf("the store is ahead of its log: it has applied index %d but the Raft log and snapshots end at %d: "+
			"the log lost writes the store kept (was sync = false?); this node cannot rejoin safely: "+
			"remove its data directory, initialize it again with 'hsmd init -join', and add it again", applied, known)
	}
	return nil
}

// behind says whether a command at or below snap is missing from the
// store. The entries between the store's index and snap may all be
// configuration or no-op entries, which the store never sees.
func (n *Node) behind(snap uint64) bool {
	for i := snap; i > n.fsm.Applied(); i-- {
		var l raft.Log
		if err := n.logs.GetLog(i, &l); err != nil || l.Type == raft.LogCommand {
			return true // a command the store lacks, or a compacted log: cannot tell
		}
	}
	return false
}

func (n *Node) close() {
	if n.trans != nil {
		n.trans.Close()
	}
	n.logs.Close()
}

// Close releases the stores and transport of a node that was never
// started (a daemon that failed between New and Start).
func (n *Node) Close() { n.close() }

// Shutdown stops Raft and closes its stores.
func (n *Node) Shutdown() error {
	close(n.stop)
	err := n.raft.Shutdown().Error()
	n.peers.close()
	n.close()
	return err
}

// Applied is the last log index this node applied.
func (n *Node) Applied() uint64 { return n.fsm.Applied() }

// WaitApplied waits until this node applied idx, or ctx ends.
func (n *Node) WaitApplied(ctx context.Context, idx uint64) error { return n.fsm.WaitApplied(ctx, idx) }

// Leader returns the leader's name and address, or "" if none is known.
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// State is one of api.States.
func (n *Node) State() string {
	s := n.raft.State()
	if s == raft.Follower {
		if f := n.raft.GetConfiguration(); f.Error() == nil && len(f.Configuration().Servers) == 0 {
			return api.StateJoining
		}
	}
	switch s {
	case raft.Leader:
		return api.StateLeader
	case raft.Follower:
		return api.StateFollower
	case raft.Candidate:
		return api.StateCandidate
	}
	return api.StateShutdown
}

// IsLeader says whether this node leads.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Submit implements engine.Applier: it sends the command to the leader
// (applying it here if this node leads), waits until a majority committed
// and the leader applied it, and then until this node applied it too, so a
// client that reads here next sees its write.
func (n *Node) Submit(ctx context.Context, c *state.Command) error {
	raw, err := c.Encode()
	if err != nil {
		return err
	}
	proposed := time.Now()
	idx, refusal, err := n.Propose(ctx, raw)
	if err != nil {
		return err
	}
	applied := time.Now()
	if n.cfg.Timings != nil {
		n.cfg.Timings.RaftCommitted(applied.Sub(proposed))
	}
	if Revoking(c.Op) && refusal == nil {
		// Every node that may still serve must have applied it before
		// the client hears it is done.
		if !n.waitRevoked(ctx, idx, applied) {
			n.cfg.Log.Info("a revocation is acknowledged after the lease, not by every member", "op", string(c.Op), "index", idx)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, localApplyWait)
	defer cancel()
	if err := n.fsm.WaitApplied(wctx, idx); err != nil {
		// Committed, but this node lags: the write stands.
		n.cfg.Log.Warn("a committed write is not applied here yet", "index", idx)
	}
	return refusal
}

// Propose gets raw committed through the leader. It returns the log index
// and the command's refusal, or an error if that cannot be known; errors
// wrapping ErrNotExecuted are certain the command did not take effect.
func (n *Node) Propose(ctx context.Context, raw []byte) (uint64, error, error) {
	ctx, cancel := context.WithTimeout(ctx, leaderWait)
	defer cancel()
	for {
		if n.IsLeader() {
			idx, refusal, err := n.applyHere(raw)
			if !errors.Is(err, raft.ErrNotLeader) {
				return idx, refusal, err
			}
		} else if id, addr := n.Leader(); addr != "" {
			idx, refusal, err := n.forward(ctx, id, addr, raw)
			if !errors.Is(err, errRetry) {
				return idx, refusal, err
			}
		}
		select {
		case <-ctx.Done():
			return 0, nil, notExecuted("no cluster leader could take the change; is a majority of nodes up?")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

var errRetry = errors.New("retry")

func notExecuted(msg string) error {
	return &hsmerr.Error{RV: ck.CKR_DEVICE_ERROR, Msg: msg, Err: ErrNotExecuted}
}

func unknownOutcome(err error) error {
	return &hsmerr.Error{RV: ck.CKR_DEVICE_ERROR, Msg: "the cluster lost its leader while committing the change; its outcome is unknown", Err: err}
}

// applyHere applies raw through Raft on the leader.
func (n *Node) applyHere(raw []byte) (uint64, error, error) {
	f := n.raft.Apply(raw, applyTimeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			return 0, nil, err
		}
		if errors.Is(err, raft.ErrEnqueueTimeout) {
			return 0, nil, notExecuted("the leader is overloaded")
		}
		return 0, nil, unknownOutcome(err)
	}
	var refusal error
	if r, ok := f.Response().(error); ok && r != nil {
		refusal = r
	}
	return f.Index(), refusal, nil
}

// HandleForward is the leader's side of Forward. sender is the name in
// the certificate the request came with. A command without a valid proof
// never reaches Raft.
func (n *Node) HandleForward(ctx context.Context, req *peerpb.ForwardRequest, sender string) (*peerpb.ForwardResponse, error) {
	if !n.IsLeader() {
		return nil, status.Error(codes.FailedPrecondition, "not the leader")
	}
	if err := n.CheckProof(req.Proof, sender, ProofForward, req.Command); err != nil {
		n.cfg.Log.Warn("refused a forwarded command without a valid proof", "peer", sender, "error", err.Error())
		return nil, status.Error(codes.PermissionDenied, "forwarded command refused: "+err.Error())
	}
	idx, refusal, err := n.applyHere(req.Command)
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, ErrNotExecuted) {
		return nil, status.Error(codes.FailedPrecondition, "not the leader")
	}
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	resp := &peerpb.ForwardResponse{Index: idx}
	if refusal != nil {
		resp.Rv, resp.Message, resp.Reason = hsmerr.RV(refusal), message(refusal), string(hsmerr.ReasonOf(refusal))
	}
	return resp, nil
}

// forward sends raw to the leader, id at addr. Only an answer from a
// certificate named id counts: another node certificate at that address
// could otherwise say a write was applied.
func (n *Node) forward(ctx context.Context, id, addr string, raw []byte) (uint64, error, error) {
	api, err := n.peers.get(addr)
	if err != nil {
		return 0, nil, errRetry
	}
	proof, err := n.Prove(ProofForward, raw)
	if err != nil {
		return 0, nil, notExecuted("cannot prove the command: " + err.Error())
	}
	var p peer.Peer
	resp, err := api.Forward(ctx, &peerpb.ForwardRequest{Command: raw, Proof: proof}, grpc.Peer(&p))
	if err == nil && peerName(&p) != id {
		n.cfg.Log.Warn("the leader's address answered with another node's certificate", "leader", id, "addr", addr, "peer", peerName(&p))
		return 0, nil, unknownOutcome(errors.New("the leader's address answered with another node's certificate"))
	}
	if err != nil {
		st := status.Convert(err)
		switch {
		case st.Code() == codes.FailedPrecondition:
			return 0, nil, errRetry // it stepped down before taking it
		case st.Code() == codes.PermissionDenied:
			// It refused the proof (a clock more than ProofWindow off,
			// or a domain key it does not share): Raft never saw it.
			n.cfg.Log.Warn("the leader refused this node's proof", "leader", id, "error", st.Message())
			return 0, nil, notExecuted("the leader refused this node's proof: " + st.Message())
		case ctx.Err() != nil:
			return 0, nil, unknownOutcome(ctx.Err())
		case st.Code() == codes.Unavailable && !sent(err):
			return 0, nil, errRetry
		}
		return 0, nil, unknownOutcome(err)
	}
	var refusal error
	if resp.Rv != 0 {
		e := &hsmerr.Error{RV: resp.Rv, Msg: resp.Message}
		if r := hsmerr.Reason(resp.Reason); hsmerr.KnownReason(resp.Rv, r) {
			e.Reason = r
		}
		refusal = e
	}
	return resp.Index, refusal, nil
}

// sent guesses whether an Unavailable error came after the request left:
// gRPC reports a connection that could not be made as Unavailable with a
// "connection error" or "connection refused" message.
func sent(err error) bool {
	msg := strings.ToLower(status.Convert(err).Message())
	for _, s := range []string{"connection refused", "connection error", "no such host", "produced zero addresses"} {
		if strings.Contains(msg, s) {
			return false
		}
	}
	return true
}

// MembershipAuthorizer decides on the leader whether a membership change
// is authorized; sender is the name of the node that asked for it.
type MembershipAuthorizer func(ctx context.Context, req *peerpb.MembershipRequest, sender string) error

// MembershipProofFields are the fields of a membership request its proof
// covers.
func MembershipProofFields(req *peerpb.MembershipRequest) [][]byte {
	return [][]byte{[]byte(req.Op), []byte(req.Name), []byte(req.Addr), []byte(req.SessionToken), req.CertFingerprint}
}

// ChangeMembership adds (op "add") or removes a voter, through the leader.
// The request carries the officer's authorization; this node adds its
// proof. On the leader, authorize decides (the same check a request from
// another node gets).
func (n *Node) ChangeMembership(ctx context.Context, req *peerpb.MembershipRequest, authorize MembershipAuthorizer) error {
	ctx, cancel := context.WithTimeout(ctx, leaderWait)
	defer cancel()
	for {
		proof, err := n.Prove(ProofMembership, MembershipProofFields(req)...)
		if err != nil {
			return notExecuted("cannot prove the request: " + err.Error())
		}
		req.Proof = proof
		if n.IsLeader() {
			if err := authorize(ctx, req, n.cfg.ID); err != nil {
				return err
			}
			return n.changeHere(req.Op, req.Name, req.Addr)
		}
		if _, leader := n.Leader(); leader != "" {
			peer, err := n.peers.get(leader)
			if err != nil {
				return notExecuted("cannot reach the leader")
			}
			_, err = peer.ChangeMembership(ctx, req)
			if err == nil {
				return nil
			}
			// A leader that stepped down took nothing: ask the next.
			if !errors.Is(api.FromStatus(err), hsmerr.ErrNotLeader) {
				return &hsmerr.Error{RV: ck.CKR_FUNCTION_FAILED, Msg: status.Convert(err).Message()}
			}
		}
		select {
		case <-ctx.Done():
			return notExecuted("no cluster leader could take the change; is a majority of nodes up?")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// HandleChangeMembership is the leader's side of ChangeMembership.
func (n *Node) HandleChangeMembership(req *peerpb.MembershipRequest) error {
	if !n.IsLeader() {
		return ErrNotLeader
	}
	if err := n.changeHere(req.Op, req.Name, req.Addr); err != nil {
		return status.Error(codes.FailedPrecondition, message(err))
	}
	return nil
}

func (n *Node) changeHere(op, id, addr string) error {
	conf := n.raft.GetConfiguration()
	if err := conf.Error(); err != nil {
		return &hsmerr.Error{RV: ck.CKR_DEVICE_ERROR, Msg: "cannot read the membership", Err: err}
	}
	var f raft.IndexFuture
	switch op {
	case "add":
		for _, s := range conf.Configuration().Servers {
			if string(s.ID) == id {
				return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "node %q is already a member (at %s)", id, s.Address)
			}
			if string(s.Address) == addr {
				return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "%s is already the address of node %q", addr, s.ID)
			}
		}
		f = n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 30*time.Second)
	case "remove":
		found := false
		for _, s := range conf.Configuration().Servers {
			found = found || string(s.ID) == id
		}
		if !found {
			return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "node %q is not a member", id)
		}
		if len(conf.Configuration().Servers) == 1 {
			return hsmerr.Errorf(ck.CKR_ACTION_PROHIBITED, "cannot remove the last node")
		}
		f = n.raft.RemoveServer(raft.ServerID(id), 0, 30*time.Second)
	default:
		return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "unknown membership change %q", op)
	}
	if err := f.Error(); err != nil {
		return &hsmerr.Error{RV: ck.CKR_DEVICE_ERROR, Msg: "the membership change failed: " + err.Error()}
	}
	n.cfg.Log.Info("membership changed", "op", op, "member", id, "addr", addr)
	return nil
}

// Member is one server of the configuration.
type Member struct {
	ID, Addr string
	Voter    bool
}

// Members is the current configuration.
func (n *Node) Members() ([]Member, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	var ms []Member
	for _, s := range f.Configuration().Servers {
		ms = append(ms, Member{ID: string(s.ID), Addr: string(s.Address), Voter: s.Suffrage == raft.Voter})
	}
	return ms, nil
}

// CommitIndex is Raft's commit index as this node knows it.
func (n *Node) CommitIndex() uint64 {
	v, _ := strconv.ParseUint(n.raft.Stats()["commit_index"], 10, 64)
	return v
}

// Peer returns a client for another node's Peer service.
func (n *Node) Peer(addr string) (peerpb.PeerClient, error) { return n.peers.get(addr) }

// Self is this node's name and advertised address.
func (n *Node) Self() (id, addr string) { return n.cfg.ID, n.cfg.Advertise }

// RestoreBackup makes r (a store snapshot stream of size bytes, as a
// backup decrypts to) the whole state of the cluster: the leader installs
// it as a snapshot that followers then receive. Only the leader can do it.
func (n *Node) RestoreBackup(r io.Reader, size int64) error {
	if !n.IsLeader() {
		return hsmerr.Errorf(ck.CKR_FUNCTION_FAILED, "only the leader can restore")
	}
	// The log of this new cluster goes on from its own index: the restored
	// store records index 1, below anything the log will apply.
	body := io.MultiReader(bytes.NewReader(envelope(setIndex, 1)), r)
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Size: size + envelopeLen}
	if err := n.raft.Restore(meta, body, 0); err != nil {
		return &hsmerr.Error{RV: ck.CKR_DEVICE_ERROR, Msg: "the restore failed: " + err.Error()}
	}
	return nil
}

// peers caches connections to other nodes' Peer service.
type peers struct {
	creds credentials.TransportCredentials
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

func newPeers(conf *tls.Config) *peers {
	return &peers{creds: credentials.NewTLS(conf), conns: map[string]*grpc.ClientConn{}}
}

func (p *peers) get(addr string) (peerpb.PeerClient, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.conns[addr]; ok {
		return peerpb.NewPeerClient(c), nil
	}
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(p.creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(32<<20), grpc.MaxCallSendMsgSize(32<<20)))
	if err != nil {
		return nil, err
	}
	p.conns[addr] = c
	return peerpb.NewPeerClient(c), nil
}

func (p *peers) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = map[string]*grpc.ClientConn{}
}

// message is an error's text without its PKCS#11 code.
func message(err error) string {
	var te *hsmerr.Error
	if errors.As(err, &te) {
		return te.Msg
	}
	return err.Error()
}
