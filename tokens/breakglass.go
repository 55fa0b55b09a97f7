package tokens

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

// BreakGlassActor is the Actor of an unlock_user command that no officer
// sent: `hsmd unlock-user` on a node's host, by someone who holds the
// cluster passphrase. Apply accepts this actor only for unlock_user, and
// only with a BreakGlass proof that checks out under the domain key, so
// a node certificate alone (which can put commands into the log) cannot
// use it. The '!' keeps it apart from every user name (ValidUserName).
const BreakGlassActor = "!break-glass"

// BreakGlassWindow bounds, in seconds, how far a proof's time may be from
// the time of the command that carries it.
const BreakGlassWindow = 300

// BreakGlassNonceLen is the length of a proof's nonce.
const BreakGlassNonceLen = 16

// BreakGlass is the proof that whoever asked for an unlock could unseal
// the domain key: a MAC, under a key derived from the domain key, over the
// user name, the time it was made and a random nonce.
type BreakGlass struct {
	Time  int64  `json:"time"`
	Nonce []byte `json:"nonce"`
	MAC   []byte `json:"mac"`
}

func (s *Sealer) breakGlassMAC(name string, t int64, nonce []byte) []byte {
	h := hmac.New(sha256.New, s.glassKey)
	h.Write([]byte("unlock_user\x00"))
	h.Write(binary.BigEndian.AppendUint16(nil, uint16(len(name))))
	h.Write([]byte(name))
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(t)))
	h.Write(nonce)
	return h.Sum(nil)
}

// NewBreakGlass makes the proof for unlocking name at time t (Unix
// seconds) with a fresh nonce.
func (s *Sealer) NewBreakGlass(name string, t int64) (*BreakGlass, error) {
	nonce, err := Random(BreakGlassNonceLen)
	if err != nil {
		return nil, err
	}
	return &BreakGlass{Time: t, Nonce: nonce, MAC: s.breakGlassMAC(name, t, nonce)}, nil
}

// CheckBreakGlass checks a proof for unlocking name, made within
// BreakGlassWindow of now (Unix seconds). It is deterministic: apply
// calls it with the command's time.
func (s *Sealer) CheckBreakGlass(p *BreakGlass, name string, now int64) error {
	if p == nil || len(p.Nonce) != BreakGlassNonceLen || len(p.MAC) != sha256.Size {
		return hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "break-glass unlock without a valid proof")
	}
	if !hmac.Equal(p.MAC, s.breakGlassMAC(name, p.Time, p.Nonce)) {
		return hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "the break-glass proof does not check out: it was not made with this cluster's passphrase")
	}
	if d := now - p.Time; d > BreakGlassWindow || d < -BreakGlassWindow {
		return hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "the break-glass proof is too old or from the future (clocks more than %ds apart?)", BreakGlassWindow)
	}
	return nil
}

// BreakGlassUnlock unlocks a user on the authority of a break-glass
// proof instead of an officer's session: it is checked here, so a bad one
// never reaches the log, and again in apply at the command's time.
func (e *Engine) BreakGlassUnlock(ctx context.Context, name string, p *BreakGlass) error {
	if err := ValidUserName(name); err != nil {
		return err
	}
	s, err := e.sealer()
	if err != nil {
		return err
	}
	c := &Command{Op: OpUnlockUser, Actor: BreakGlassActor, Name: name, BreakGlass: p}
	c.Time = e.now().Unix()
	if err := s.CheckBreakGlass(p, name, c.Time); err != nil {
		return err
	}
	return e.applier.Submit(ctx, c)
}
