package core

import (
	"math/big"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/mech"
)

// Multi-part encryption and decryption. Block modes stream: each update
// returns the whole blocks it can, chaining the IV (or the counter) from
// call to call, so callers that size their buffers block by block (Go's
// cipher.BlockMode over crypto11, Java's Cipher.update) get what they
// expect. Other mechanisms (GCM, key wrap, RSA) collect their input and
// answer at the final call.

// streamMode is how a mechanism chains.
type streamMode int

const (
	streamECB streamMode = iota + 1
	streamCBC
	streamCBCPad
	streamCTR
)

// streamModes is the table of mechanisms that stream.
var streamModes = map[uint64]streamMode{
	ck.CKM_AES_ECB:     streamECB,
	ck.CKM_AES_CBC:     streamCBC,
	ck.CKM_AES_CBC_PAD: streamCBCPad,
	ck.CKM_AES_CTR:     streamCTR,
}

const blockSize = 16

// stream is the chaining state of a streaming operation.
type stream struct {
	mode    streamMode
	encrypt bool
	pending []byte // input not yet processed
	iv      []byte // CBC: the next IV
	ctr     mech.CTRParams
}

func newStream(m mech.Mech, encrypt bool) *stream {
	mode, ok := streamModes[m.Type]
	if !ok {
		return nil
	}
	st := &stream{mode: mode, encrypt: encrypt}
	switch p := m.Param.(type) {
	case *mech.IVParams:
		st.iv = append([]byte{}, p.IV...)
	case *mech.CTRParams:
		st.ctr = *p
	}
	return st
}

// updateLen is how many bytes an update with n more input bytes returns.
func (st *stream) updateLen(n int) int {
	total := len(st.pending) + n
	if st.mode == streamCBCPad && !st.encrypt {
		// Keep the last block back: it holds the padding.
		if total == 0 {
			return 0
		}
		return (total - 1) / blockSize * blockSize
	}
	return total - total%blockSize
}

// chunk is the mechanism that processes whole blocks in the middle of the
// stream.
func (st *stream) chunk(key uint64) mech.Mech {
	switch st.mode {
	case streamCBC, streamCBCPad:
		return mech.Mech{Type: ck.CKM_AES_CBC, Param: &mech.IVParams{IV: append([]byte{}, st.iv...)}}
	case streamCTR:
		p := st.ctr
		return mech.Mech{Type: ck.CKM_AES_CTR, Param: &p}
	}
	return mech.Mech{Type: ck.CKM_AES_ECB}
}

// advance moves the chaining state past in (plaintext or ciphertext as
// given) and out.
func (st *stream) advance(in, out []byte) {
	switch st.mode {
	case streamCBC, streamCBCPad:
		ct := out
		if !st.encrypt {
			ct = in
		}
		if len(ct) >= blockSize {
			st.iv = append([]byte{}, ct[len(ct)-blockSize:]...)
		}
	case streamCTR:
		bits := uint(st.ctr.CounterBits)
		cb := new(big.Int).SetBytes(st.ctr.CB[:])
		mask := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), bits), big.NewInt(1))
		c := new(big.Int).And(cb, mask)
		c.Add(c, big.NewInt(int64(len(in)/blockSize)))
		c.And(c, mask)
		cb.AndNot(cb, mask).Or(cb, c)
		b := cb.FillBytes(make([]byte, blockSize))
		copy(st.ctr.CB[:], b)
	}
}

func (m *Module) crypt(c *client.Client, encrypt bool, key uint64, mech mech.Mech, in []byte) ([]byte, error) {
	ctx, cancel := m.ctx()
	defer cancel()
	if encrypt {
		return c.Encrypt(ctx, key, mech, in)
	}
	return c.Decrypt(ctx, key, mech, in)
}

// cryptUpdate is C_EncryptUpdate and C_DecryptUpdate.
func (m *Module) cryptUpdate(h uint64, kind opKind, part []byte, out Out) (OutResult, error) {
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
	if op.haveRes {
		delete(s.ops, kind)
		return OutResult{}, errMixed(kind)
	}
	encrypt := kind == opEncrypt
	if op.stream == nil && !op.multi {
		op.stream = newStream(op.mech, encrypt)
	}
	op.multi = true
	if op.stream == nil {
		// Collecting: nothing comes out until the final call. A length
		// query takes nothing in.
		if !out.Present {
			return OutResult{Len: 0}, nil
		}
		if err := op.collect(part); err != nil {
			delete(s.ops, kind)
			return OutResult{}, err
		}
		return OutResult{Len: 0, Data: []byte{}}, nil
	}
	st := op.stream
	n := st.updateLen(len(part))
	switch {
	case !out.Present:
		return OutResult{Len: uint64(n)}, nil
	case out.Cap < uint64(n):
		return OutResult{Len: uint64(n)}, errorf(ck.CKR_BUFFER_TOO_SMALL, "the output needs %d bytes", n)
	}
	all := append(st.pending, part...)
	if n == 0 {
		st.pending = all
		return OutResult{Len: 0, Data: []byte{}}, nil
	}
	c, err := m.clientFor(s, op.key)
	if err != nil {
		delete(s.ops, kind)
		return OutResult{}, err
	}
	in := all[:n]
	res, err := m.crypt(c, encrypt, op.key, st.chunk(op.key), in)
	if err != nil {
		delete(s.ops, kind)
		return OutResult{}, err
	}
	if len(res) != n {
		delete(s.ops, kind)
		return OutResult{}, errorf(ck.CKR_DEVICE_ERROR, "the daemon answered %d bytes for %d", len(res), n)
	}
	st.advance(in, res)
	st.pending = append([]byte{}, all[n:]...)
	return OutResult{Len: uint64(n), Data: res}, nil
}

// streamFinal finishes a streaming operation: what is pending, with the
// padding for CBC_PAD.
func (m *Module) streamFinal(c *client.Client, op *operation, encrypt bool) ([]byte, error) {
	st := op.stream
	rest := st.pending
	switch st.mode {
	case streamECB, streamCBC:
		if len(rest) != 0 {
			if encrypt {
				return nil, errorf(ck.CKR_DATA_LEN_RANGE, "the input is not a whole number of blocks")
			}
			return nil, errorf(ck.CKR_ENCRYPTED_DATA_LEN_RANGE, "the input is not a whole number of blocks")
		}
		return []byte{}, nil
	case streamCTR:
		if len(rest) == 0 {
			return []byte{}, nil
		}
		return m.crypt(c, encrypt, op.key, st.chunk(op.key), rest)
	}
	// CBC_PAD.
	if !encrypt && len(rest) != blockSize {
		return nil, errorf(ck.CKR_ENCRYPTED_DATA_LEN_RANGE, "the input is not a whole number of blocks")
	}
	mech := mech.Mech{Type: ck.CKM_AES_CBC_PAD, Param: &mech.IVParams{IV: append([]byte{}, st.iv...)}}
	return m.crypt(c, encrypt, op.key, mech, rest)
}
