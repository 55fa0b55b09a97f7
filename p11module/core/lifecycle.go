package core

// The operation life cycle (docs/pkcs11-library.md, "Operation life
// cycle"): when an operation stays active and when it ends, for every kind
// (encrypt, decrypt, digest, sign, verify, sign-recover, verify-recover)
// and every call (single-part, update, final, the dual-function updates).
//
//   - Only CKR_BUFFER_TOO_SMALL and a successful length query (no output
//     buffer) keep an operation active after a single-part or final call;
//     CKR_OK with the output ends it, and so does any other error.
//   - An update that fails ends the operation.
//   - Single-part and multi-part calls do not mix: a single-part call after
//     an update, an update or a final call after a single-part length
//     query, or a single-part call after a final length query, answers
//     CKR_OPERATION_ACTIVE and ends the operation.
//   - Errors found before the session's operation is looked at (a bad
//     session handle, no operation of that kind) change nothing.

import (
	"crypto/rsa"
	"math/big"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/mech"
)

// workFunc computes an operation's output: for the single-part call from
// in, for the final call (final true) from what the updates left in op.
type workFunc func(c *client.Client, op *operation, in []byte, final bool) ([]byte, error)

// errMixed is the answer to a call that would mix single-part and
// multi-part calls in one operation.
func errMixed(kind opKind) error {
	return errorf(ck.CKR_OPERATION_ACTIVE, "single-part and multi-part calls cannot be mixed in one %s operation", opKinds[kind].name)
}

// outLen applies the two-call rule to an output of n bytes: done is false
// (with the result to return) for a length query or a short buffer.
func outLen(n int, out Out) (OutResult, error, bool) {
	switch {
	case !out.Present:
		return OutResult{Len: uint64(n)}, nil, false
	case out.Cap < uint64(n):
		return OutResult{Len: uint64(n)}, errorf(ck.CKR_BUFFER_TOO_SMALL, "the output needs %d bytes", n), false
	}
	return OutResult{}, nil, true
}

// run is a single-part call (final false) or a final call: it does the
// work once, keeping the result for a caller that asked for the length
// first, and applies the two-call rule.
func (m *Module) run(h uint64, kind opKind, data []byte, final bool, out Out, work workFunc) (OutResult, error) {
	s, err := m.session(h)
	if err != nil {
		return OutResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	op, ok := s.ops[kind]
	if !ok {
		return OutResult{}, errorf(ck.CKR_OPERATION_NOT_INITIALIZED, "no %s operation is active", opKinds[kind].name)
	}
	end := func(err error) (OutResult, error) {
		delete(s.ops, kind)
		return OutResult{}, err
	}
	if (!final && op.multi) || (op.haveRes && op.resFinal != final) {
		return end(errMixed(kind))
	}
	if !op.haveRes {
		in := data
		if final {
			in = op.buf
		}
		var c *client.Client
		switch {
		case opKinds[kind].login:
			var cerr error
			if c, cerr = m.clientFor(s, op.key); cerr != nil {
				return end(cerr)
			}
		case op.sealed != nil:
			// A digest that took a key goes on in the HSM, under the
			// login that fed it the key (digestkey.go).
			c, _ = s.slot.client()
		}
		// The session lock is held over the call: a session's operations
		// run one at a time, as PKCS#11 has them.
		res, err := work(c, op, in, final)
		if err != nil {
			return end(err)
		}
		op.result, op.haveRes, op.resFinal = res, true, final
	}
	res := op.result
	if r, err, done := outLen(len(res), out); !done {
		return r, err
	}
	delete(s.ops, kind)
	return OutResult{Len: uint64(len(res)), Data: res}, nil
}

// update is C_DigestUpdate, C_SignUpdate and C_VerifyUpdate.
func (m *Module) update(h uint64, kind opKind, part []byte) error {
	s, err := m.session(h)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	op, ok := s.ops[kind]
	if !ok {
		return errorf(ck.CKR_OPERATION_NOT_INITIALIZED, "no %s operation is active", opKinds[kind].name)
	}
	if op.sealed != nil {
		// A digest that took a key runs in the HSM (digestkey.go).
		c, _ := s.slot.client()
		if err := op.canFeed(kind, len(part)); err != nil {
			delete(s.ops, kind)
			return err
		}
		if _, err := m.sealedDigest(c, op, part, false); err != nil {
			delete(s.ops, kind)
			return err
		}
		return nil
	}
	if err := op.feed(kind, part); err != nil {
		delete(s.ops, kind)
		return err
	}
	return nil
}

// feed adds a part to a digest, sign or verify operation (the session's
// lock is held).
func (op *operation) feed(kind opKind, part []byte) error {
	if err := op.canFeed(kind, len(part)); err != nil {
		return err
	}
	if op.hash != nil {
		op.multi = true
		op.hash.Write(part)
		return nil
	}
	return op.collect(part)
}

// canFeed says whether feed would take n more bytes.
func (op *operation) canFeed(kind opKind, n int) error {
	switch {
	case op.haveRes:
		return errMixed(kind)
	case op.hash == nil && len(op.buf)+n > maxOpData:
		return errorf(ck.CKR_DATA_LEN_RANGE, "more than %d bytes in one operation", maxOpData)
	}
	return nil
}

// dualUpdate is a dual-function update: the encrypt or decrypt update
// (crypt) composed with the digest, sign or verify update (other). The
// other operation is fed only when the crypt update produced its output
// (PKCS#11: no output, no input to the other operation): with the
// plaintext, which is the input for an encrypt and the output for a
// decrypt. Both operations must be active; if either is not, nothing
// changes. An error ends the operation it came from.
func (m *Module) dualUpdate(h uint64, crypt, other opKind, part []byte, out Out) (OutResult, error) {
	s, err := m.session(h)
	if err != nil {
		return OutResult{}, err
	}
	s.mu.Lock()
	_, okCrypt := s.ops[crypt]
	oo, okOther := s.ops[other]
	if !okCrypt || !okOther {
		s.mu.Unlock()
		return OutResult{}, errorf(ck.CKR_OPERATION_NOT_INITIALIZED, "both the %s and the %s operation must be active",
			opKinds[crypt].name, opKinds[other].name)
	}
	// Checked before the crypt update runs: once its output is given out,
	// the other operation must take the plaintext. A decrypt gives out at
	// most its input and one block it kept back.
	if err := oo.canFeed(other, len(part)+blockSize); err != nil {
		delete(s.ops, other)
		s.mu.Unlock()
		return OutResult{}, err
	}
	s.mu.Unlock()
	res, err := m.cryptUpdate(h, crypt, part, out)
	if err != nil || !out.Present {
		return res, err
	}
	plain := part
	if crypt == opDecrypt {
		plain = res.Data
	}
	if err := m.update(h, other, plain); err != nil {
		return OutResult{}, err
	}
	return res, nil
}

func (m *Module) DigestEncryptUpdate(h uint64, part []byte, out Out) (OutResult, error) {
	return m.dualUpdate(h, opEncrypt, opDigest, part, out)
}
func (m *Module) DecryptDigestUpdate(h uint64, part []byte, out Out) (OutResult, error) {
	return m.dualUpdate(h, opDecrypt, opDigest, part, out)
}
func (m *Module) SignEncryptUpdate(h uint64, part []byte, out Out) (OutResult, error) {
	return m.dualUpdate(h, opEncrypt, opSign, part, out)
}
func (m *Module) DecryptVerifyUpdate(h uint64, part []byte, out Out) (OutResult, error) {
	return m.dualUpdate(h, opDecrypt, opVerify, part, out)
}

// verifyRecover opens an RSA signature with the public key: CKM_RSA_X_509
// gives the whole block (s^e mod n, modulus-long), CKM_RSA_PKCS the data
// under a well-formed PKCS #1 v1.5 block type 1.
func verifyRecover(k *mech.Key, mt uint64, sig []byte) ([]byte, error) {
	var pub *rsa.PublicKey
	if k != nil {
		pub, _ = k.Public.(*rsa.PublicKey)
	}
	if pub == nil {
		return nil, errorf(ck.CKR_KEY_TYPE_INCONSISTENT, "verify-recover needs an RSA public key")
	}
	n := pub.Size()
	if sig == nil {
		return nil, errorf(ck.CKR_ARGUMENTS_BAD, "no signature")
	}
	if len(sig) != n {
		return nil, errorf(ck.CKR_SIGNATURE_LEN_RANGE, "the signature must be %d bytes", n)
	}
	s := new(big.Int).SetBytes(sig)
	if s.Cmp(pub.N) >= 0 {
		return nil, errorf(ck.CKR_SIGNATURE_INVALID, "the signature is not less than the modulus")
	}
	em := new(big.Int).Exp(s, big.NewInt(int64(pub.E)), pub.N).FillBytes(make([]byte, n))
	if mt == ck.CKM_RSA_X_509 {
		return em, nil
	}
	// 00 01 FF..FF (at least 8) 00 data
	if em[0] != 0 || em[1] != 1 {
		return nil, errorf(ck.CKR_SIGNATURE_INVALID, "the signature does not open to a PKCS #1 block")
	}
	i := 2
	for i < n && em[i] == 0xFF {
		i++
	}
	if i-2 < 8 || i >= n || em[i] != 0 {
		return nil, errorf(ck.CKR_SIGNATURE_INVALID, "the signature does not open to a PKCS #1 block")
	}
	return em[i+1:], nil
}
