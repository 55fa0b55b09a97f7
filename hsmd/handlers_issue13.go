package hsmd

import (
	"context"

	"github.com/openhsm/openhsm/api"
	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/hsmerr"
)

// WipeToken is C_InitToken on a crypto user's token slot: a crypto officer
// destroys the user's objects (engine.WipeToken, state/wipe.go).
func (s *Server) WipeToken(ctx context.Context, r *hsmpb.UserRequest) (*hsmpb.Empty, error) {
	ctx, err := quorumCtx(ctx, r.QuorumToken)
	if err != nil {
		return nil, err
	}
	if err := userName("user", r.User); err != nil {
		return nil, err
	}
	if err := s.engine.WipeToken(ctx, callerFrom(ctx), r.User); err != nil {
		s.audit(ctx, "wipe token refused", "target", r.User, "ckr", ck.RVName(hsmerr.RV(err)))
		return nil, err
	}
	s.audit(ctx, "wiped token", "target", r.User)
	return empty, nil
}

// DigestKey is one step of a digest that has taken a key's value
// (C_DigestKey; engine.DigestKey). A step that feeds a key is audited,
// refused or not; the steps that only carry data are not.
func (s *Server) DigestKey(ctx context.Context, r *hsmpb.DigestKeyRequest) (*hsmpb.DigestKeyResponse, error) {
	m, err := api.MechFromPB("mechanism", r.Mechanism)
	if err != nil {
		return nil, err
	}
	if r.Key != 0 {
		if err := objectID("key", r.Key); err != nil {
			return nil, err
		}
	}
	if err := dataField("data", r.Data); err != nil {
		return nil, err
	}
	out, err := s.engine.DigestKey(callerFrom(ctx), engine.DigestKeyRequest{Mech: m, State: r.State,
		Sealed: r.SealedState, Key: r.Key, Data: r.Data, Final: r.Final})
	if r.Key != 0 {
		if err != nil {
			s.audit(ctx, "digest key refused", "mechanism", ck.MechName(m.Type), "object", r.Key, "ckr", ck.RVName(hsmerr.RV(err)))
		} else {
			s.audit(ctx, "digested key", "mechanism", ck.MechName(m.Type), "object", r.Key)
		}
	}
	if err != nil {
		return nil, err
	}
	if r.Final {
		return &hsmpb.DigestKeyResponse{Digest: out}, nil
	}
	return &hsmpb.DigestKeyResponse{SealedState: out}, nil
}
