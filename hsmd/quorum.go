package hsmd

import (
	"context"
	"strings"

	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/quorum"
)

// Quorum authentication's RPCs (docs/quorum.md). The rules live in the
// state machine (state/quorum.go); these handlers check the fields and
// say who asked.

// quorumCtx checks a request's quorum token field and makes ctx carry it
// to the command the handler submits.
func quorumCtx(ctx context.Context, token string) (context.Context, error) {
	if token == "" {
		return ctx, nil
	}
	if len(token) != 32 || strings.Trim(token, "0123456789abcdef") != "" {
		return ctx, bad("quorum_token", "must be 32 lowercase hex digits")
	}
	return engine.WithQuorumToken(ctx, token), nil
}

// quorumAuthorize spends an approved token for a membership change before
// the Raft configuration changes: membership does not go through the
// state machine, so the token is consumed by a replicated command of its
// own, applied (and re-checked) on every node. With quorum off for
// membership and no token, it only records that the officer asked.
func (s *Server) quorumAuthorize(ctx context.Context, token string) error {
	if _, err := quorumCtx(ctx, token); err != nil {
		return err
	}
	return s.engine.QuorumAuthorize(ctx, callerFrom(ctx), quorum.ServiceClusterMembership, token)
}

func (s *Server) QuorumRegisterKey(ctx context.Context, r *hsmpb.QuorumRegisterKeyRequest) (*hsmpb.Empty, error) {
	if len(r.PublicKey) == 0 || len(r.PublicKey) > 256 {
		return nil, bad("public_key", "must be a PKIX public key of 1 to 256 bytes")
	}
	if len(r.Proof) == 0 || len(r.Proof) > 128 {
		return nil, bad("proof", "must be a signature of 1 to 128 bytes")
	}
	if err := s.engine.RegisterQuorumKey(ctx, callerFrom(ctx), r.PublicKey, r.Proof); err != nil {
		return nil, err
	}
	s.audit(ctx, "registered quorum approval key")
	return empty, nil
}

func (s *Server) QuorumSetPolicy(ctx context.Context, r *hsmpb.QuorumSetPolicyRequest) (*hsmpb.Empty, error) {
	if r.Service != quorum.ServiceUserManagement && r.Service != quorum.ServiceClusterMembership {
		return nil, bad("service", "must be %s or %s", quorum.ServiceUserManagement, quorum.ServiceClusterMembership)
	}
	if r.M < 1 || r.M > quorum.MaxM {
		return nil, bad("m", "must be 1 to %d", quorum.MaxM)
	}
	if _, err := quorumCtx(ctx, r.QuorumToken); err != nil {
		return nil, err
	}
	if err := s.engine.SetQuorumPolicy(ctx, callerFrom(ctx), r.Service, int(r.M), r.QuorumToken); err != nil {
		return nil, err
	}
	s.audit(ctx, "set quorum", "service", r.Service, "m", r.M)
	return empty, nil
}

func (s *Server) QuorumCreateToken(ctx context.Context, r *hsmpb.QuorumCreateTokenRequest) (*hsmpb.QuorumToken, error) {
	switch r.Service {
	case quorum.ServiceUserManagement, quorum.ServiceClusterMembership, quorum.ServiceQuorum:
	default:
		return nil, bad("service", "must be %s, %s or %s", quorum.ServiceUserManagement, quorum.ServiceClusterMembership, quorum.ServiceQuorum)
	}
	t, err := s.engine.CreateQuorumToken(ctx, callerFrom(ctx), r.Service)
	if err != nil {
		return nil, err
	}
	s.audit(ctx, "created quorum token", "service", r.Service, "token", t.ID)
	out := quorumTokenPB(t, 0)
	if info, err := s.engine.Quorum(callerFrom(ctx)); err == nil {
		out.Required = uint32(info.Policy[r.Service])
	}
	return out, nil
}

func (s *Server) QuorumApproveToken(ctx context.Context, r *hsmpb.QuorumApproveTokenRequest) (*hsmpb.Empty, error) {
	if _, err := quorumCtx(ctx, r.Id); err != nil || r.Id == "" {
		return nil, bad("id", "must be 32 lowercase hex digits")
	}
	if len(r.Signature) == 0 || len(r.Signature) > 128 {
		return nil, bad("signature", "must be 1 to 128 bytes")
	}
	if err := s.engine.ApproveQuorumToken(ctx, callerFrom(ctx), r.Id, r.Signature); err != nil {
		return nil, err
	}
	s.audit(ctx, "approved quorum token", "token", r.Id)
	return empty, nil
}

func (s *Server) QuorumStatus(ctx context.Context, _ *hsmpb.Empty) (*hsmpb.QuorumStatusResponse, error) {
	info, err := s.engine.Quorum(callerFrom(ctx))
	if err != nil {
		return nil, err
	}
	out := &hsmpb.QuorumStatusResponse{}
	for _, svc := range append(quorum.Services, quorum.ServiceQuorum) {
		out.Policies = append(out.Policies, &hsmpb.QuorumPolicy{Service: svc, M: uint32(info.Policy[svc])})
	}
	for _, k := range info.Keys {
		out.Officers = append(out.Officers, &hsmpb.QuorumOfficer{Name: k.Officer, KeyType: k.Type, Fingerprint: k.Fingerprint()})
	}
	for i := range info.Tokens {
		t := &info.Tokens[i]
		out.Tokens = append(out.Tokens, quorumTokenPB(t, info.Policy[t.Service]))
	}
	return out, nil
}

func quorumTokenPB(t *quorum.Token, required int) *hsmpb.QuorumToken {
	out := &hsmpb.QuorumToken{Id: t.ID, Service: t.Service, Requester: t.Requester, IssuedUnix: t.Issued,
		ExpiresUnix: t.Expires, Required: uint32(required)}
	for _, a := range t.Approvals {
		out.Approvals = append(out.Approvals, a.Officer)
	}
	return out
}
