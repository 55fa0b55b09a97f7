package hsmd

import (
	"context"
	"errors"
	"time"

	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/seal"
	"github.com/openhsm/openhsm/state"
)

// rotateFailDelay slows down guessing the current passphrase through
// RotatePassphrase: a wrong one is answered after this long.
const rotateFailDelay = time.Second

// RotatePassphrase re-seals the domain key under a new passphrase (or key
// file, if the cluster uses one). It needs a crypto officer AND the current
// passphrase: an officer alone must not be able to choose the secret that
// opens the backups. The new record reaches every node through the log;
// each node reads its passphrase file only when it starts, so the operator
// replaces every node's file before its next start.
func (s *Server) RotatePassphrase(ctx context.Context, r *hsmpb.RotatePassphraseRequest) (*hsmpb.Empty, error) {
	if err := s.requireCO(ctx); err != nil {
		return nil, err
	}
	if s.domain == nil {
		return nil, hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "this node cannot rotate the passphrase")
	}
	if !s.rotating.CompareAndSwap(false, true) {
		return nil, hsmerr.Errorf(ck.CKR_FUNCTION_FAILED, "a rotation is already in progress on this node")
	}
	defer s.rotating.Store(false)
	raw, err := s.engine.Store().Meta(state.MetaDomainKey)
	if err != nil {
		return nil, &hsmerr.Error{RV: ck.CKR_DEVICE_ERROR, Msg: "cannot read the sealed domain key", Err: err}
	}
	rec, err := seal.UnmarshalSealedDomainKey(raw)
	if err != nil {
		return nil, &hsmerr.Error{RV: ck.CKR_DEVICE_ERROR, Msg: "the sealed domain key is malformed", Err: err}
	}
	passphrase := rec.KDF == "argon2id"
	what := "key file"
	if passphrase {
		what = "passphrase"
	}
	oldSrc, err := parseKEK(passphrase, r.OldSecret)
	if err != nil {
		return nil, bad("old_secret", "the current %s: %v", what, err)
	}
	newSrc, err := parseKEK(passphrase, r.NewSecret)
	if err != nil {
		return nil, bad("new_secret", "the new %s: %v", what, err)
	}
	sealer := s.domain.sealer()
	if sealer == nil {
		return nil, hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "the domain key is not unsealed")
	}
	got, err := rec.Unseal(oldSrc)
	if errors.Is(err, seal.ErrWrongKEK) || err == nil && !got.Holds(sealer) {
		time.Sleep(rotateFailDelay)
		return nil, hsmerr.Errorf(ck.CKR_PIN_INCORRECT, "the current %s does not unseal the domain key", what)
	}
	if err != nil {
		return nil, bad("old_secret", "%v", err)
	}
	nrec, err := sealer.Reseal(rec.ClusterID, newSrc)
	if err != nil {
		return nil, &hsmerr.Error{RV: ck.CKR_FUNCTION_FAILED, Msg: "cannot seal the domain key", Err: err}
	}
	nraw := nrec.Marshal()
	if err := s.engine.SetDomainKey(ctx, callerFrom(ctx), nraw, sealer.RecordMAC(nraw)); err != nil {
		return nil, err
	}
	s.audit(ctx, "rotated the "+what)
	return empty, nil
}
