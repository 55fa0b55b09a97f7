package cluster

import (
	"context"
	"crypto/tls"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/state"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// The lease (docs/cluster.md). A node serves the HSM API only while it is
// "fresh": it learned, from a request it sent less than Lease ago, an index
// the leader had applied, and it has applied up to that index itself. A
// leader is fresh for Lease after a round in which a majority still
// followed it, once it applied every entry of earlier terms. A revocation
// is acknowledged only when every member applied it or Lease has passed
// since the leader applied it: by then a member that did not is no longer
// fresh, and before it is fresh again it must apply it. This assumes the
// nodes' clocks run at about the same rate (not that they agree); the
// revocation wait adds LeaseMargin for the difference.
const (
	Lease = 2 * time.Second
	// LeaseMargin is added to Lease where a node waits for another's
	// lease to run out.
	LeaseMargin = 500 * time.Millisecond
	// leaseRenew is how often a node renews its lease.
	leaseRenew = 250 * time.Millisecond
	// leaseCall bounds one renewal's request.
	leaseCall = time.Second
)

// revokingOps are the commands that take away a right someone may hold a
// token or a session for: a client must not hear "done" while a node that
// has not applied one still serves. Submit waits for them (waitRevoked).
var revokingOps = map[state.Op]bool{
	state.OpLogout:      true,
	state.OpLoginFailed: true, // the failure that locks the account
	state.OpSetPassword: true,
	state.OpDeleteUser:  true,
	state.OpUnlockUser:  true, // a new generation ends the old sessions
	state.OpUnshare:     true,
	state.OpLoginWrong:  true, // the wrong password that locks the account
	state.OpRevokeCert:  true, // a certificate on the deny-list
}

// Revoking says whether a client must not hear "done" for op until every
// serving node applied it: the ops of revokingOps, and every KMS write, so
// that a KMS client reads its own writes on whichever node it reaches
// next (docs/kms.md).
func Revoking(op state.Op) bool { return revokingOps[op] || state.IsKMSWrite(op) }

type lease struct {
	mu       sync.Mutex
	start    time.Time // when the request of the last renewal was sent
	need     uint64    // the index to have applied, from that renewal
	barrier  uint64    // the leader term whose earlier entries are applied
	kick     chan struct{}
	renewing bool
}

// Fresh says whether this node may serve the HSM API now.
func (n *Node) Fresh() bool {
	n.lease.mu.Lock()
	start, need := n.lease.start, n.lease.need
	n.lease.mu.Unlock()
	return !start.IsZero() && time.Since(start) < Lease && n.fsm.Applied() >= need
}

// WaitFresh waits up to max for this node to become fresh, renewing at
// once, and says whether it is.
func (n *Node) WaitFresh(ctx context.Context, max time.Duration) bool {
	if n.Fresh() {
		return true
	}
	select {
	case n.lease.kick <- struct{}{}:
	default:
	}
	ctx, cancel := context.WithTimeout(ctx, max)
	defer cancel()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return n.Fresh()
		case <-t.C:
			if n.Fresh() {
				return true
			}
		}
	}
}

// LeaseGrant is the leader's answer to a renewal: the index it has
// applied, if it leads, applied every entry of earlier terms, and a
// majority follows it now (after the request arrived). Whatever was
// acknowledged before the request was sent is then at or below the index:
// a revocation is acknowledged only after the leader applied it, and a
// later leader's commits need a majority that no longer follows this one.
func (n *Node) LeaseGrant() (uint64, bool) {
	if n.raft.State() != raft.Leader {
		return 0, false
	}
	n.lease.mu.Lock()
	b := n.lease.barrier
	n.lease.mu.Unlock()
	if b != n.raft.CurrentTerm() {
		return 0, false
	}
	if n.raft.VerifyLeader().Error() != nil {
		return 0, false
	}
	return n.fsm.Applied(), true
}

// leaseLoop renews the lease every leaseRenew, or at once when kicked,
// until Raft shuts down.
func (n *Node) leaseLoop(done <-chan struct{}) {
	t := time.NewTicker(leaseRenew)
	defer t.Stop()
	for {
		n.renew()
		select {
		case <-done:
			return
		case <-t.C:
		case <-n.lease.kick:
		}
	}
}

func (n *Node) renew() {
	start := time.Now()
	if n.raft.State() == raft.Leader {
		term := n.raft.CurrentTerm()
		n.lease.mu.Lock()
		b := n.lease.barrier
		n.lease.mu.Unlock()
		if b != term {
			// A new leader may not have applied what earlier leaders
			// committed; the barrier's entry commits after all of it.
			if n.raft.Barrier(Lease).Error() != nil {
				return
			}
			n.lease.mu.Lock()
			n.lease.barrier = term
			n.lease.mu.Unlock()
		}
		if _, ok := n.LeaseGrant(); ok {
			n.setLease(start, 0)
		}
		return
	}
	id, addr := n.Leader()
	if addr == "" || id == n.cfg.ID {
		return
	}
	api, err := n.peers.get(addr)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), leaseCall)
	defer cancel()
	var p peer.Peer
	st, err := api.NodeStatus(ctx, &hsmpb.Empty{}, grpc.Peer(&p))
	if err != nil || !st.Leader || !st.Serving || st.Name != id || peerName(&p) != id {
		return
	}
	n.setLease(start, st.AppliedIndex)
}

// peerName is the name in the certificate a node answered with: what it
// says of itself counts only from the node its certificate names.
func peerName(p *peer.Peer) string {
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return ""
	}
	return answeringName(ti.State)
}

// answeringName is the name in the certificate a node answered a dial
// with. The dialing configuration (pki.NodePeerConfig) has already
// checked that it is a node certificate of the cluster's CA, in
// VerifyConnection, so Go leaves VerifiedChains empty.
func answeringName(cs tls.ConnectionState) string {
	if len(cs.PeerCertificates) == 0 {
		return ""
	}
	return cs.PeerCertificates[0].Subject.CommonName
}

func (n *Node) setLease(start time.Time, need uint64) {
	n.lease.mu.Lock()
	if start.After(n.lease.start) {
		n.lease.start, n.lease.need = start, need
	}
	n.lease.mu.Unlock()
}

// waitRevoked waits, after a revoking command was applied at idx (at or
// after start), until every member has applied it or Lease+LeaseMargin has
// passed since start. It reports whether every member applied it.
func (n *Node) waitRevoked(ctx context.Context, idx uint64, start time.Time) bool {
	ctx, cancel := context.WithDeadline(ctx, start.Add(Lease+LeaseMargin))
	defer cancel()
	members, err := n.Members()
	if err != nil {
		<-ctx.Done()
		return false
	}
	var wg sync.WaitGroup
	all := true
	var mu sync.Mutex
	for _, m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !n.memberApplied(ctx, m, idx) {
				mu.Lock()
				all = false
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return all
}

// memberApplied polls m until it reports idx applied, or ctx ends.
func (n *Node) memberApplied(ctx context.Context, m Member, idx uint64) bool {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if m.ID == n.cfg.ID {
			if n.fsm.Applied() >= idx {
				return true
			}
		} else if api, err := n.peers.get(m.Addr); err == nil {
			var p peer.Peer
			st, err := api.NodeStatus(ctx, &hsmpb.Empty{}, grpc.Peer(&p))
			if err == nil && st.Name == m.ID && peerName(&p) == m.ID && st.AppliedIndex >= idx {
				return true
			}
		}
		select {
		case <-ctx.Done():
			// The lease has passed: m, had it not applied idx, is
			// no longer fresh.
			return false
		case <-t.C:
		}
	}
}
