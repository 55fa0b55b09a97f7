package core

// C_DigestKey (docs/pkcs11-library.md, "C_DigestKey"). Digests run in the
// library, but a key's value never reaches it: the library sends the
// running hash's state (only data the application gave) and the key's
// handle, and the daemon feeds the key's value into the hash. Its answer
// is a state sealed under a cluster key, because a hash's state holds its
// last partial block as it is, which would be key bytes. From then on the
// digest runs in the HSM: every C_DigestUpdate sends the sealed state and
// the part, and C_DigestFinal gets the digest. Which keys may be digested
// the daemon decides (object.Digestible); a refused C_DigestKey ends the
// digest, as every failed update does.

import (
	"encoding"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
)

// DigestKey feeds a secret key's value into the session's digest.
func (m *Module) DigestKey(h uint64, key uint64) error {
	s, err := m.session(h)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	op, ok := s.ops[opDigest]
	if !ok {
		return errorf(ck.CKR_OPERATION_NOT_INITIALIZED, "no digest operation is active")
	}
	end := func(err error) error {
		delete(s.ops, opDigest)
		return err
	}
	if err := op.canFeed(opDigest, 0); err != nil {
		return end(err)
	}
	c, _ := s.slot.client()
	if c == nil {
		return end(errorf(ck.CKR_KEY_HANDLE_INVALID, "no key is visible before login"))
	}
	if key == 0 {
		return end(errorf(ck.CKR_KEY_HANDLE_INVALID, "no key handle"))
	}
	step := client.DigestStep{Mech: op.mech, Key: key, Sealed: op.sealed}
	if op.sealed == nil {
		mh, ok := op.hash.(encoding.BinaryMarshaler)
		if !ok {
			return end(errorf(ck.CKR_KEY_INDIGESTIBLE, "%s cannot take a key", ck.MechName(op.mech.Type)))
		}
		st, err := mh.MarshalBinary()
		if err != nil {
			return end(errorf(ck.CKR_KEY_INDIGESTIBLE, "the hash's state: %v", err))
		}
		step.State = st
	}
	ctx, cancel := m.ctx()
	defer cancel()
	sealed, err := c.DigestKey(ctx, step)
	if err != nil {
		return end(err)
	}
	op.sealed, op.hash, op.multi = sealed, nil, true
	return nil
}

// sealedDigest runs a step of a digest that took a key: an update with
// part, or the final call (the session's lock is held).
func (m *Module) sealedDigest(c *client.Client, op *operation, part []byte, final bool) ([]byte, error) {
	if c == nil {
		return nil, errorf(ck.CKR_USER_NOT_LOGGED_IN, "the digest took a key: it needs the login it was made under")
	}
	ctx, cancel := m.ctx()
	defer cancel()
	out, err := c.DigestKey(ctx, client.DigestStep{Mech: op.mech, Sealed: op.sealed, Data: part, Final: final})
	if err != nil {
		return nil, err
	}
	if !final {
		op.sealed, op.multi = out, true
	}
	return out, nil
}
