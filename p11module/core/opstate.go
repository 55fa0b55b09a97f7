package core

// C_GetOperationState and C_SetOperationState (docs/pkcs11-library.md,
// "Operation life cycle"). A digest's state is saved: its mechanism, where
// it is in the life cycle, and the running hash's own state (Go's hashes
// implement encoding.BinaryMarshaler). An operation that holds a key runs
// partly in the HSM and cannot be saved (CKR_STATE_UNSAVEABLE).
//
// The blob is authenticated with HMAC-SHA256 under a key drawn at random
// for each Module (one per process in the library, one per fork helper),
// kept only in memory: a blob that was changed, or that another process
// made, is refused with CKR_SAVED_STATE_INVALID. Sessions do not outlive
// the process, so neither need their states; and a key that never leaves
// memory cannot be read from a file or guessed.

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding"
	"encoding/binary"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/mech"
)

const (
	stateMagic = "OHSMOPS1"
	stateTag   = sha256.Size
	// state flags
	stMulti    = 1
	stHaveRes  = 2
	stResFinal = 4
)

// opStateKey returns the module's state key, drawing it the first time.
func (m *Module) opStateKey() []byte {
	m.stateKeyOnce.Do(func() {
		m.stateKey = make([]byte, 32)
		if _, err := rand.Read(m.stateKey); err != nil {
			panic("core: no randomness for the operation state key: " + err.Error())
		}
	})
	return m.stateKey
}

func (m *Module) stateMAC(body []byte) []byte {
	mac := hmac.New(sha256.New, m.opStateKey())
	mac.Write(body)
	return mac.Sum(nil)
}

// GetOperationState saves the session's digest operation.
func (m *Module) GetOperationState(h uint64, out Out) (OutResult, error) {
	s, err := m.session(h)
	if err != nil {
		return OutResult{}, err
	}
	s.mu.Lock()
	if len(s.ops) == 0 {
		s.mu.Unlock()
		return OutResult{}, errorf(ck.CKR_OPERATION_NOT_INITIALIZED, "no operation is active")
	}
	op, ok := s.ops[opDigest]
	if !ok || len(s.ops) != 1 {
		s.mu.Unlock()
		return OutResult{}, errorf(ck.CKR_STATE_UNSAVEABLE, "only a digest operation's state can be saved")
	}
	if op.sealed != nil {
		s.mu.Unlock()
		return OutResult{}, errorf(ck.CKR_STATE_UNSAVEABLE, "a digest that took a key runs in the HSM; its state cannot be saved")
	}
	mh, ok := op.hash.(encoding.BinaryMarshaler)
	if !ok {
		s.mu.Unlock()
		return OutResult{}, errorf(ck.CKR_STATE_UNSAVEABLE, "%s cannot save its state", ck.MechName(op.mech.Type))
	}
	hs, err := mh.MarshalBinary()
	var flags byte
	if op.multi {
		flags |= stMulti
	}
	if op.haveRes {
		flags |= stHaveRes
	}
	if op.resFinal {
		flags |= stResFinal
	}
	body := []byte(stateMagic)
	body = binary.BigEndian.AppendUint64(body, op.mech.Type)
	body = append(body, flags)
	body = binary.BigEndian.AppendUint32(body, uint32(len(op.result)))
	body = append(body, op.result...)
	body = binary.BigEndian.AppendUint32(body, uint32(len(hs)))
	body = append(body, hs...)
	s.mu.Unlock()
	if err != nil {
		return OutResult{}, errorf(ck.CKR_STATE_UNSAVEABLE, "the hash state: %v", err)
	}
	blob := append(body, m.stateMAC(body)...)
	if r, err, done := outLen(len(blob), out); !done {
		return r, err
	}
	return OutResult{Len: uint64(len(blob)), Data: blob}, nil
}

// parseState checks a saved state's tag and reads it into a digest
// operation.
func (m *Module) parseState(blob []byte) (*operation, error) {
	bad := errorf(ck.CKR_SAVED_STATE_INVALID, "the saved state is not one this library made, or it was changed")
	if len(blob) < len(stateMagic)+8+1+4+4+stateTag {
		return nil, bad
	}
	body, tag := blob[:len(blob)-stateTag], blob[len(blob)-stateTag:]
	if !hmac.Equal(tag, m.stateMAC(body)) || string(body[:len(stateMagic)]) != stateMagic {
		return nil, bad
	}
	r := body[len(stateMagic):]
	mt := binary.BigEndian.Uint64(r)
	flags := r[8]
	r = r[9:]
	take := func() ([]byte, bool) {
		if len(r) < 4 {
			return nil, false
		}
		n := binary.BigEndian.Uint32(r)
		if uint64(len(r)-4) < uint64(n) {
			return nil, false
		}
		v := r[4 : 4+n]
		r = r[4+n:]
		return v, true
	}
	res, ok1 := take()
	hs, ok2 := take()
	if !ok1 || !ok2 || len(r) != 0 {
		return nil, bad
	}
	tm, row, err := toMech(Mechanism{Type: mt})
	hh, _ := mech.RunningHash(mt)
	uh, ok := hh.(encoding.BinaryUnmarshaler)
	if err != nil || !ok {
		return nil, bad
	}
	if err := uh.UnmarshalBinary(hs); err != nil {
		return nil, bad
	}
	op := &operation{mech: tm, row: row, hash: hh, multi: flags&stMulti != 0,
		haveRes: flags&stHaveRes != 0, resFinal: flags&stResFinal != 0}
	if op.haveRes {
		op.result = append([]byte{}, res...)
	}
	return op, nil
}

// SetOperationState restores a saved digest operation: it becomes the
// session's only active operation. A digest holds no key, so both key
// handles must be 0 (CKR_KEY_NOT_NEEDED otherwise).
func (m *Module) SetOperationState(h uint64, state []byte, encKey, authKey uint64) error {
	s, err := m.session(h)
	if err != nil {
		return err
	}
	if state == nil {
		return errorf(ck.CKR_ARGUMENTS_BAD, "no state")
	}
	op, err := m.parseState(state)
	if err != nil {
		return err
	}
	if encKey != 0 || authKey != 0 {
		return errorf(ck.CKR_KEY_NOT_NEEDED, "a digest's state needs no key")
	}
	s.mu.Lock()
	s.ops = map[opKind]*operation{opDigest: op}
	s.mu.Unlock()
	return nil
}
