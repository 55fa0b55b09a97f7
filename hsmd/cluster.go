package hsmd

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/openhsm/openhsm/api"
	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/cluster"
	"github.com/openhsm/openhsm/cluster/peerpb"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/pki"
	"github.com/openhsm/openhsm/state"
	"google.golang.org/grpc/metadata"
)

// statusTimeout bounds how long ClusterStatus waits for each node.
const statusTimeout = 2 * time.Second

func (s *Server) requireCO(ctx context.Context) error {
	if callerFrom(ctx).Role != object.RoleCO {
		return hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "only a crypto officer may change the cluster")
	}
	return nil
}

// membershipChange checks what AddNode and RemoveNode both need: a crypto
// officer, a running cluster, a valid node name.
func (s *Server) membershipChange(ctx context.Context, name string) (*cluster.Node, error) {
	if err := s.requireCO(ctx); err != nil {
		return nil, err
	}
	if err := pki.ValidateName(name); err != nil {
		return nil, bad("name", "%v", err)
	}
	return s.clusterNode()
}

func (s *Server) clusterNode() (*cluster.Node, error) {
	if s.replica == nil {
		return nil, hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "the node is not part of a running cluster")
	}
	return s.replica, nil
}

// localStatus is this node's own line of the cluster status.
func (s *Server) localStatus() *hsmpb.ClusterNode {
	id, addr := s.replica.Self()
	leader, _ := s.replica.Leader()
	st := &hsmpb.ClusterNode{Name: id, Addr: addr, Reachable: true, Leader: leader == id,
		State: s.replica.State(), AppliedIndex: s.replica.Applied(), Domain: s.domainFingerprint()}
	if s.replica.IsLeader() {
		// What a follower renews its lease with: checked now, and the
		// applied index read after the check.
		st.AppliedIndex, st.Serving = s.replica.LeaseGrant()
		if !st.Serving {
			st.AppliedIndex = s.replica.Applied()
		}
	} else {
		st.Serving = s.replica.Fresh()
	}
	return st
}

// domainFingerprint names the domain key in use (not its sealed form, which
// a passphrase rotation changes).
func (s *Server) domainFingerprint() string {
	if s.domain == nil {
		return ""
	}
	return s.domain.fingerprint()
}

func (s *Server) ClusterStatus(ctx context.Context, _ *hsmpb.Empty) (*hsmpb.ClusterStatusResponse, error) {
	cn, err := s.clusterNode()
	if err != nil {
		return nil, err
	}
	members, err := cn.Members()
	if err != nil {
		return nil, hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "cannot read the membership: %v", err)
	}
	leader, _ := cn.Leader()
	out := &hsmpb.ClusterStatusResponse{ClusterId: s.cluster(), Leader: leader, CommitIndex: cn.CommitIndex()}
	self, _ := cn.Self()
	out.Nodes = make([]*hsmpb.ClusterNode, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		if m.ID == self {
			out.Nodes[i] = s.localStatus()
			out.Nodes[i].Voter = m.Voter
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			line := &hsmpb.ClusterNode{Name: m.ID, Addr: m.Addr, Voter: m.Voter, Leader: m.ID == leader}
			out.Nodes[i] = line
			api, err := cn.Peer(m.Addr)
			if err == nil {
				pctx, cancel := context.WithTimeout(ctx, statusTimeout)
				var st *hsmpb.ClusterNode
				st, err = api.NodeStatus(pctx, &hsmpb.Empty{})
				cancel()
				if err == nil {
					line.Reachable, line.State, line.AppliedIndex, line.Domain = true, st.State, st.AppliedIndex, st.Domain
					return
				}
			}
			line.Error = "unreachable"
		}()
	}
	wg.Wait()
	return out, nil
}

func (s *Server) AddNode(ctx context.Context, req *hsmpb.AddNodeRequest) (*hsmpb.Empty, error) {
	cn, err := s.membershipChange(ctx, req.Name)
	if err != nil {
		return nil, err
	}
	if _, _, err := net.SplitHostPort(req.Addr); err != nil {
		return nil, bad("addr", "must be host:port")
	}
	// The new node must be waiting to join and hold this cluster's domain
	// key: adding anything else would mix two clusters' states.
	pc, err := cn.Peer(req.Addr)
	if err != nil {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "cannot reach %s", req.Addr)
	}
	pctx, cancel := context.WithTimeout(ctx, statusTimeout)
	st, err := pc.NodeStatus(pctx, &hsmpb.Empty{})
	cancel()
	if err != nil {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "node at %s did not answer: is it running (hsmd init -join, then hsmd serve)?", req.Addr)
	}
	if st.Name != req.Name {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "the node at %s is named %q, not %q", req.Addr, st.Name, req.Name)
	}
	if st.Domain != s.domainFingerprint() {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "the node at %s holds another cluster's domain key", req.Addr)
	}
	if st.State != api.StateJoining {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "the node at %s is not waiting to join (state %s)", req.Addr, st.State)
	}
	if err := s.quorumAuthorize(ctx, req.QuorumToken); err != nil {
		return nil, err
	}
	if err := cn.ChangeMembership(ctx, s.membershipRequest(ctx, "add", req.Name, req.Addr), s.authorizeMembership); err != nil {
		return nil, err
	}
	s.log.Info("node added", "member", req.Name, "addr", req.Addr, "user", callerFrom(ctx).User)
	s.membershipChanged()
	return &hsmpb.Empty{}, nil
}

func (s *Server) RemoveNode(ctx context.Context, req *hsmpb.RemoveNodeRequest) (*hsmpb.Empty, error) {
	cn, err := s.membershipChange(ctx, req.Name)
	if err != nil {
		return nil, err
	}
	if err := s.quorumAuthorize(ctx, req.QuorumToken); err != nil {
		return nil, err
	}
	if err := cn.ChangeMembership(ctx, s.membershipRequest(ctx, "remove", req.Name, ""), s.authorizeMembership); err != nil {
		return nil, err
	}
	s.log.Info("node removed", "member", req.Name, "user", callerFrom(ctx).User)
	s.membershipChanged()
	return &hsmpb.Empty{}, nil
}

// membershipRequest is a membership change with the authorization of the
// officer whose call asked for it: the session token it came with (already
// checked here) and the client certificate it is bound to.
func (s *Server) membershipRequest(ctx context.Context, op, name, addr string) *peerpb.MembershipRequest {
	req := &peerpb.MembershipRequest{Op: op, Name: name, Addr: addr}
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(api.HeaderSession); len(v) == 1 {
		req.SessionToken = v[0]
	}
	fp := identityFrom(ctx).Fingerprint
	req.CertFingerprint = fp[:]
	return req
}

// authorizeMembership is where the leader decides whether a membership
// change is authorized, whichever node the officer called: the asking
// node's proof must be valid (so a node holding the domain key sent it),
// and the session token must be a crypto officer's, bound to the
// certificate named, not logged out, of a user who exists now with the
// same credentials and is not locked. The quorum rules (M of N officers)
// belong here too.
func (s *Server) authorizeMembership(ctx context.Context, req *peerpb.MembershipRequest, sender string) error {
	cn, err := s.clusterNode()
	if err != nil {
		return err
	}
	if err := cn.CheckProof(req.Proof, sender, cluster.ProofMembership, cluster.MembershipProofFields(req)...); err != nil {
		s.log.Warn("refused a membership change without a valid proof", "peer", sender, "op", req.Op, "member", req.Name, "error", err.Error())
		return refuse(ck.CKR_USER_NOT_LOGGED_IN, "membership change refused: "+err.Error())
	}
	var fp [32]byte
	if len(req.CertFingerprint) != len(fp) {
		return refuse(ck.CKR_USER_NOT_LOGGED_IN, "membership change refused: no client certificate")
	}
	copy(fp[:], req.CertFingerprint)
	_, u, err := s.checkSession(req.SessionToken, fp)
	if err != nil {
		s.log.Warn("refused a membership change without an officer's session", "peer", sender, "op", req.Op, "member", req.Name)
		return refuse(ck.CKR_USER_NOT_LOGGED_IN, "membership change refused: no valid crypto officer session")
	}
	if u.Role != object.RoleCO {
		s.log.Warn("refused a membership change not by an officer", "peer", sender, "op", req.Op, "member", req.Name, "user", u.Name)
		return refuse(ck.CKR_USER_NOT_LOGGED_IN, "membership change refused: only a crypto officer may change the cluster")
	}
	return nil
}

// membershipChanged asks for a backup after a membership change; the
// backup scheduler, when there is one, takes it.
func (s *Server) membershipChanged() {
	if s.backups != nil {
		s.backups.request()
	}
}

// peerServer is the node-to-node service.
type peerServer struct {
	peerpb.UnimplementedPeerServer
	s *Server
}

func (p *peerServer) Forward(ctx context.Context, req *peerpb.ForwardRequest) (*peerpb.ForwardResponse, error) {
	cn, err := p.s.clusterNode()
	if err != nil {
		return nil, err
	}
	if len(req.Command) == 0 || len(req.Command) > state.MaxCommandSize {
		return nil, bad("command", "must be 1 to %d bytes", state.MaxCommandSize)
	}
	return cn.HandleForward(ctx, req, identityFrom(ctx).CommonName)
}

func (p *peerServer) ChangeMembership(ctx context.Context, req *peerpb.MembershipRequest) (*hsmpb.Empty, error) {
	cn, err := p.s.clusterNode()
	if err != nil {
		return nil, err
	}
	if !cn.IsLeader() {
		return nil, cluster.ErrNotLeader
	}
	if err := p.s.authorizeMembership(ctx, req, identityFrom(ctx).CommonName); err != nil {
		return nil, err
	}
	if err := cn.HandleChangeMembership(req); err != nil {
		return nil, err
	}
	p.s.membershipChanged()
	return &hsmpb.Empty{}, nil
}

func (p *peerServer) NodeStatus(ctx context.Context, _ *hsmpb.Empty) (*hsmpb.ClusterNode, error) {
	if _, err := p.s.clusterNode(); err != nil {
		return nil, err
	}
	return p.s.localStatus(), nil
}

func (p *peerServer) DomainKey(ctx context.Context, _ *hsmpb.Empty) (*peerpb.DomainKeyResponse, error) {
	raw, err := p.s.engine.Store().Meta(state.MetaDomainKey)
	if err != nil {
		return nil, hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "this node holds no domain key")
	}
	resp := &peerpb.DomainKeyResponse{Sealed: raw, ClusterId: p.s.cluster()}
	if cn, err := p.s.clusterNode(); err == nil {
		ms, _ := cn.Members()
		for _, m := range ms {
			resp.Members = append(resp.Members, m.ID)
		}
	}
	return resp, nil
}
