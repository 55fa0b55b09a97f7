package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/quorum"
	"github.com/openhsm/openhsm/state"
)

// QuorumInfo is what `hsm quorum token list` shows.
type QuorumInfo struct {
	Policy map[string]int // every service, with its M (1: off)
	Keys   []quorum.Key
	Tokens []quorum.Token // live at the time of the call
}

// Quorum reads the quorum state. Any logged-in officer may.
func (e *Engine) Quorum(c Caller) (*QuorumInfo, error) {
	if c.Role != object.RoleCO {
		return nil, hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "only a crypto officer may read the quorum state")
	}
	s, err := e.sealer()
	if err != nil {
		return nil, err
	}
	q, err := state.LoadQuorum(e.store.Meta, s)
	if err != nil {
		return nil, err
	}
	q.PruneTokens(e.now().Unix())
	info := &QuorumInfo{Policy: map[string]int{}, Keys: q.Keys, Tokens: q.Tokens}
	for _, svc := range append(quorum.Services, quorum.ServiceQuorum) {
		info.Policy[svc] = q.M(svc)
	}
	return info, nil
}

// RegisterQuorumKey registers (or replaces) the caller's approval key; sig
// is the key's signature over QuorumRegistrationBytes.
func (e *Engine) RegisterQuorumKey(ctx context.Context, c Caller, publicDER, sig []byte) error {
	if c.Role != object.RoleCO {
		return hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "only a crypto officer may register an approval key")
	}
	if _, _, err := quorum.ParseKey(publicDER); err != nil {
		return err
	}
	return e.submit(ctx, &state.Command{Op: state.OpQuorumRegisterKey, Actor: c.User, QuorumKey: publicDER, Signature: sig})
}

// SetQuorumPolicy sets a service's M; token is needed once any M is above 1.
func (e *Engine) SetQuorumPolicy(ctx context.Context, c Caller, service string, m int, token string) error {
	if c.Role != object.RoleCO {
		return hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "only a crypto officer may set quorum")
	}
	return e.submit(ctx, &state.Command{Op: state.OpQuorumSetPolicy, Actor: c.User, Service: service, QuorumM: m, QuorumToken: token})
}

// CreateQuorumToken makes a token for the caller and returns it.
func (e *Engine) CreateQuorumToken(ctx context.Context, c Caller, service string) (*quorum.Token, error) {
	if c.Role != object.RoleCO {
		return nil, hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "only a crypto officer may request quorum")
	}
	if err := quorum.ValidService(service); err != nil {
		return nil, err
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	id := hex.EncodeToString(b[:])
	cmd := &state.Command{Op: state.OpQuorumCreateToken, Actor: c.User, Service: service, TokenID: id}
	if err := e.submit(ctx, cmd); err != nil {
		return nil, err
	}
	return &quorum.Token{ID: id, Service: service, Requester: c.User, Issued: cmd.Time, Expires: cmd.Time + quorum.TokenLifetime}, nil
}

// ApproveQuorumToken adds the caller's signature to a token.
func (e *Engine) ApproveQuorumToken(ctx context.Context, c Caller, id string, sig []byte) error {
	if c.Role != object.RoleCO {
		return hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "only a crypto officer may approve")
	}
	if err := quorum.ValidTokenID(id); err != nil {
		return err
	}
	if len(sig) == 0 || len(sig) > quorum.MaxSig {
		return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "a signature is 1 to %d bytes", quorum.MaxSig)
	}
	return e.submit(ctx, &state.Command{Op: state.OpQuorumApprove, Actor: c.User, TokenID: id, Signature: sig})
}

// QuorumAuthorize spends a token for an operation that does not go through
// the state machine (a membership change). It always goes through the log,
// so a node with a stale copy of the policy cannot wave the change
// through; with M = 1 and no token it changes nothing.
func (e *Engine) QuorumAuthorize(ctx context.Context, c Caller, service, token string) error {
	if c.Role != object.RoleCO {
		return hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "only a crypto officer may change the cluster")
	}
	return e.submit(ctx, &state.Command{Op: state.OpQuorumUse, Actor: c.User, Service: service, QuorumToken: token})
}

type quorumCtxKey struct{}

// WithQuorumToken makes ctx carry the ID of the approved token that the
// protected command submitted under it spends.
func WithQuorumToken(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return context.WithValue(ctx, quorumCtxKey{}, id)
}

func quorumTokenFrom(ctx context.Context) string {
	id, _ := ctx.Value(quorumCtxKey{}).(string)
	return id
}
