package core

// The message-based functions of PKCS#11 v3.0 (base specification 5.9,
// 5.11, 5.14, 5.16) as session state: a session may have one message
// process of each kind (encrypt, decrypt, sign, verify), apart from its
// single- and multi-part operations of the same kind. A process lives from
// C_Message*Init to C_Message*Final (or logout, session close,
// C_SessionCancel); within it, messages go one at a time, in one call
// (C_EncryptMessage) or as Begin and Next calls. An error ends the message
// it happens in, never the process; CKR_BUFFER_TOO_SMALL and a length query
// end nothing. The crypto runs in the daemon through the single-part
// encrypt, decrypt and sign paths (a public key verifies here).

import (
	"bytes"
	"crypto/rand"
	"math/big"
	"sync"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/mech"
)

// msgKind names a message process.
type msgKind int

const (
	msgEncrypt msgKind = iota
	msgDecrypt
	msgSign
	msgVerify
)

// msgKinds is the table of message processes: the name, the CKF_ the
// mechanism's row must have, the usage attribute the key must have set and
// the C_SessionCancel flag that ends it.
var msgKinds = map[msgKind]struct {
	name   string
	flag   uint64
	usage  uint64
	cancel uint64
}{
	msgEncrypt: {"message encrypt", ck.CKF_ENCRYPT, ck.CKA_ENCRYPT, ck.CKF_MESSAGE_ENCRYPT},
	msgDecrypt: {"message decrypt", ck.CKF_DECRYPT, ck.CKA_DECRYPT, ck.CKF_MESSAGE_DECRYPT},
	msgSign:    {"message sign", ck.CKF_SIGN, ck.CKA_SIGN, ck.CKF_MESSAGE_SIGN},
	msgVerify:  {"message verify", ck.CKF_VERIFY, ck.CKA_VERIFY, ck.CKF_MESSAGE_VERIFY},
}

// msgAEAD is how a mechanism encrypts messages: the parameter kind it
// takes, whether the token may generate its IV, its tag length, and the
// single-part mechanism that does one message (its output is the
// ciphertext followed by the tag).
type msgAEAD struct {
	param     uint8
	generates bool
	tagLen    func(p MsgParam) int
	classic   func(iv, aad []byte, p MsgParam) (mech.Mech, error)
}

// msgAEADs is the table of message encryption mechanisms. A mechanism must
// also be in the mechanism table (mech) to be used.
var msgAEADs = map[uint64]msgAEAD{
	ck.CKM_AES_GCM: {
		param:     msgParamGCM,
		generates: true,
		tagLen:    func(p MsgParam) int { return int(p.TagBits / 8) },
		classic: func(iv, aad []byte, p MsgParam) (mech.Mech, error) {
			return mech.Mech{Type: ck.CKM_AES_GCM, Param: &mech.GCMParams{IV: iv, AAD: aad, TagBits: p.TagBits}}, nil
		},
	},
	ck.CKM_CHACHA20_POLY1305: {
		param:  msgParamChaCha,
		tagLen: func(MsgParam) int { return 16 },
		classic: func(nonce, aad []byte, p MsgParam) (mech.Mech, error) {
			if p.NonceBits != uint64(len(nonce))*8 {
				return mech.Mech{}, errorf(ck.CKR_MECHANISM_PARAM_INVALID, "ulNonceBits is not a whole number of bytes")
			}
			return mech.Mech{Type: ck.CKM_CHACHA20_POLY1305, Param: &mech.ChaChaParams{Nonce: nonce, AAD: aad}}, nil
		},
	},
}

// msgProcess is an active message process.
type msgProcess struct {
	key   uint64
	row   *mech.Mechanism
	mech  mech.Mech // sign and verify: the mechanism as C_Message*Init gave it
	aead  *msgAEAD  // encrypt and decrypt
	local *mech.Key // verify: a public key to verify with here

	// The message under way between Begin and its last Next.
	active bool
	param  MsgParam
	iv     []byte
	aad    []byte
	buf    []byte

	// A signature made but not yet fetched (the two-call rule), and the
	// data it is for.
	sig, sigFor []byte
}

// endMessage ends the message under way, keeping the process.
func (p *msgProcess) endMessage() {
	p.active, p.param, p.iv, p.aad, p.buf = false, MsgParam{}, nil, nil, nil
}

// collect adds a part to the message under way.
func (p *msgProcess) collect(part []byte) error {
	if len(p.buf)+len(part) > maxOpData {
		return errorf(ck.CKR_DATA_LEN_RANGE, "more than %d bytes in one message", maxOpData)
	}
	p.buf = append(p.buf, part...)
	return nil
}

// cancelMessages ends the message processes flags name (C_SessionCancel's
// CKF_MESSAGE_*). The caller holds s.mu.
func (s *session) cancelMessages(flags uint64) {
	for kind, k := range msgKinds {
		if flags&k.cancel != 0 {
			delete(s.msgs, kind)
		}
	}
}

// msgInit starts a message process.
func (m *Module) msgInit(h uint64, kind msgKind, mt mech.Mech, row *mech.Mechanism, aead *msgAEAD, key uint64) error {
	s, err := m.session(h)
	if err != nil {
		return err
	}
	c, err := s.loggedIn()
	if err != nil {
		return err
	}
	info := msgKinds[kind]
	if row.Flags&info.flag == 0 {
		return errorf(ck.CKR_MECHANISM_INVALID, "%s cannot %s", ck.MechName(mt.Type), info.name)
	}
	if _, ut := s.slot.client(); ut == ck.CKU_SO {
		return errorf(ck.CKR_USER_NOT_LOGGED_IN, "crypto officers cannot use keys")
	}
	if key == 0 {
		return errorf(ck.CKR_KEY_HANDLE_INVALID, "no key")
	}
	s.mu.Lock()
	_, active := s.msgs[kind]
	s.mu.Unlock()
	if active {
		return errorf(ck.CKR_OPERATION_ACTIVE, "a %s process is active", info.name)
	}
	if err := m.checkKey(s.slot, c, key, row, mt.Type, info.usage); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, active := s.msgs[kind]; active {
		return errorf(ck.CKR_OPERATION_ACTIVE, "a %s process is active", info.name)
	}
	p := &msgProcess{key: key, row: row, mech: mt, aead: aead}
	if kind == msgVerify {
		p.local = m.localKey(s.slot, key)
	}
	if s.msgs == nil {
		s.msgs = map[msgKind]*msgProcess{}
	}
	s.msgs[kind] = p
	return nil
}

// aeadInit is C_MessageEncryptInit and C_MessageDecryptInit. The
// mechanism's parameter may be NULL or a message parameter of the
// mechanism's kind; its values are not used (each message brings its own).
func (m *Module) aeadInit(h uint64, kind msgKind, mt uint64, p MsgParam, key uint64) error {
	if _, err := m.session(h); err != nil {
		return err
	}
	aead, ok := msgAEADs[mt]
	row, inTable := mech.LookupMechanism(mt)
	if !ok || !inTable {
		return errorf(ck.CKR_MECHANISM_INVALID, "%s cannot %s", ck.MechName(mt), msgKinds[kind].name)
	}
	if p.Kind != msgParamNone && p.Kind != aead.param {
		return errorf(ck.CKR_MECHANISM_PARAM_INVALID, "%s takes no such parameter", ck.MechName(mt))
	}
	return m.msgInit(h, kind, mech.Mech{Type: mt}, row, &aead, key)
}

// process returns the session's message process of a kind, with s.mu held
// (the caller unlocks).
func (m *Module) process(h uint64, kind msgKind) (*session, *msgProcess, error) {
	s, err := m.session(h)
	if err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	p, ok := s.msgs[kind]
	if !ok {
		s.mu.Unlock()
		return nil, nil, errorf(ck.CKR_OPERATION_NOT_INITIALIZED, "no %s process is active", msgKinds[kind].name)
	}
	return s, p, nil
}

// newMessage is process for a call that starts a message (a single-part
// call or a Begin): none may be under way, and mp must be the parameter of
// the process's mechanism. s.mu is held when err is nil.
func (m *Module) newMessage(h uint64, kind msgKind, mp MsgParam) (*session, *msgProcess, error) {
	s, p, err := m.process(h, kind)
	if err != nil {
		return nil, nil, err
	}
	if p.active {
		err = errorf(ck.CKR_OPERATION_ACTIVE, "a multi-part message is under way")
	} else if p.aead != nil {
		err = p.aeadParam(mp)
	} else {
		err = sigParam(mp)
	}
	if err != nil {
		s.mu.Unlock()
		return nil, nil, err
	}
	return s, p, nil
}

// msgFinal is C_Message*Final: it ends the process and any message under
// way.
func (m *Module) msgFinal(h uint64, kind msgKind) error {
	s, _, err := m.process(h, kind)
	if err != nil {
		return err
	}
	delete(s.msgs, kind)
	s.mu.Unlock()
	return nil
}

// aeadParam checks a message parameter for an AEAD message.
func (p *msgProcess) aeadParam(mp MsgParam) error {
	if mp.Kind != p.aead.param {
		return errorf(ck.CKR_MECHANISM_PARAM_INVALID, "%s needs its message parameter structure", ck.MechName(p.mech.Type))
	}
	if mp.IV == nil {
		return errorf(ck.CKR_MECHANISM_PARAM_INVALID, "no IV")
	}
	return nil
}

// classic builds and checks the single-part mechanism for one message.
func (p *msgProcess) classic(iv, aad []byte, mp MsgParam) (mech.Mech, error) {
	mt, err := p.aead.classic(iv, aad, mp)
	if err != nil {
		return mech.Mech{}, err
	}
	if err := mech.CheckParam(p.row, mt); err != nil {
		return mech.Mech{}, err
	}
	return mt, nil
}

// sealOne encrypts one message; it returns the ciphertext and the tag.
func (m *Module) sealOne(c *client.Client, p *msgProcess, iv, aad, data []byte, mp MsgParam) ([]byte, []byte, error) {
	if !mp.HasTag {
		return nil, nil, errorf(ck.CKR_MECHANISM_PARAM_INVALID, "no tag buffer (pTag)")
	}
	mt, err := p.classic(iv, aad, mp)
	if err != nil {
		return nil, nil, err
	}
	out, err := m.crypt(c, true, p.key, mt, data)
	if err != nil {
		return nil, nil, err
	}
	n := p.aead.tagLen(mp)
	if len(out) != len(data)+n {
		return nil, nil, errorf(ck.CKR_DEVICE_ERROR, "the daemon answered %d bytes for %d and a tag", len(out), len(data))
	}
	return out[:len(data)], out[len(data):], nil
}

// openOne decrypts one message with the tag the parameter brings.
func (m *Module) openOne(c *client.Client, p *msgProcess, iv, aad, data []byte, mp MsgParam) ([]byte, error) {
	n := p.aead.tagLen(mp)
	if !mp.HasTag || len(mp.Tag) != n {
		return nil, errorf(ck.CKR_MECHANISM_PARAM_INVALID, "no tag of %d bytes (pTag)", n)
	}
	mt, err := p.classic(iv, aad, mp)
	if err != nil {
		return nil, err
	}
	in := make([]byte, 0, len(data)+n)
	in = append(append(in, data...), mp.Tag...)
	return m.crypt(c, false, p.key, mt, in)
}

// ---- encryption ----

func (m *Module) MessageEncryptInit(h, mt uint64, p MsgParam, key uint64) error {
	return m.aeadInit(h, msgEncrypt, mt, p, key)
}

func (m *Module) EncryptMessage(h uint64, mp MsgParam, aad, data []byte, out Out) (OutResult, MsgParamOut, error) {
	s, p, err := m.newMessage(h, msgEncrypt, mp)
	if err != nil {
		return OutResult{}, MsgParamOut{}, err
	}
	defer s.mu.Unlock()
	// The ciphertext is as long as the plaintext: a length query costs
	// nothing and generates no IV.
	if res, err, done := outLen(len(data), out); !done {
		return res, MsgParamOut{}, err
	}
	c, err := s.loggedIn()
	if err != nil {
		return OutResult{}, MsgParamOut{}, err
	}
	iv, generated, err := p.messageIV(mp)
	if err != nil {
		return OutResult{}, MsgParamOut{}, err
	}
	ct, tag, err := m.sealOne(c, p, iv, aad, data, mp)
	if err != nil {
		return OutResult{}, MsgParamOut{}, err
	}
	y := MsgParamOut{Tag: tag}
	if generated {
		y.IV = iv
	}
	return OutResult{Len: uint64(len(ct)), Data: ct}, y, nil
}

func (m *Module) EncryptMessageBegin(h uint64, mp MsgParam, aad []byte) (MsgParamOut, error) {
	s, p, err := m.newMessage(h, msgEncrypt, mp)
	if err != nil {
		return MsgParamOut{}, err
	}
	defer s.mu.Unlock()
	// The parameter's values are checked now, not at the last part.
	if _, err := p.classic(mp.IV, aad, mp); err != nil {
		return MsgParamOut{}, err
	}
	iv, generated, err := p.messageIV(mp)
	if err != nil {
		return MsgParamOut{}, err
	}
	p.active, p.param, p.iv, p.aad = true, mp, iv, bytes.Clone(aad)
	if generated {
		return MsgParamOut{IV: iv}, nil
	}
	return MsgParamOut{}, nil
}

func (m *Module) EncryptMessageNext(h uint64, mp MsgParam, part []byte, out Out, flags uint64) (OutResult, MsgParamOut, error) {
	s, p, err := m.process(h, msgEncrypt)
	if err != nil {
		return OutResult{}, MsgParamOut{}, err
	}
	defer s.mu.Unlock()
	res, tag, err := m.aeadNext(s, p, true, mp, part, out, flags)
	return res, MsgParamOut{Tag: tag}, err
}

// aeadNext is C_EncryptMessageNext and C_DecryptMessageNext. Parts collect
// in the library; the last one (CKF_END_OF_MESSAGE) gets the whole output:
// GCM's tag covers the whole message, and a decryption releases no
// plaintext before the tag is checked.
func (m *Module) aeadNext(s *session, p *msgProcess, encrypt bool, mp MsgParam, part []byte, out Out, flags uint64) (res OutResult, tag []byte, err error) {
	if !p.active {
		return OutResult{}, nil, errorf(ck.CKR_OPERATION_NOT_INITIALIZED, "no message is under way: call Begin first")
	}
	// Any error but CKR_BUFFER_TOO_SMALL ends the message.
	defer func() {
		if err != nil && !isBufferTooSmall(err) {
			p.endMessage()
		}
	}()
	if flags != 0 && flags != ck.CKF_END_OF_MESSAGE {
		return OutResult{}, nil, errorf(ck.CKR_ARGUMENTS_BAD, "flags must be 0 or CKF_END_OF_MESSAGE")
	}
	if err := p.aeadParam(mp); err != nil {
		return OutResult{}, nil, err
	}
	if flags == 0 {
		// A length query takes nothing in.
		if !out.Present {
			return OutResult{}, nil, nil
		}
		if err := p.collect(part); err != nil {
			return OutResult{}, nil, err
		}
		return OutResult{Data: []byte{}}, nil, nil
	}
	n := len(p.buf) + len(part)
	if n > maxOpData {
		return OutResult{}, nil, errorf(ck.CKR_DATA_LEN_RANGE, "more than %d bytes in one message", maxOpData)
	}
	if r, err, done := outLen(n, out); !done {
		return r, nil, err
	}
	defer p.endMessage()
	c, err := s.loggedIn()
	if err != nil {
		return OutResult{}, nil, err
	}
	all := append(p.buf, part...)
	// The IV, tag length and AAD are the Begin call's; a decryption takes
	// the tag from the last part's parameter.
	given := p.param
	if encrypt {
		given.HasTag = mp.HasTag
		ct, t, err := m.sealOne(c, p, p.iv, p.aad, all, given)
		if err != nil {
			return OutResult{}, nil, err
		}
		return OutResult{Len: uint64(len(ct)), Data: ct}, t, nil
	}
	if mp.Tag != nil {
		given.Tag, given.HasTag = mp.Tag, true
	}
	pt, err := m.openOne(c, p, p.iv, p.aad, all, given)
	if err != nil {
		return OutResult{}, nil, err
	}
	if len(pt) != n {
		return OutResult{}, nil, errorf(ck.CKR_DEVICE_ERROR, "the daemon answered %d bytes for %d", len(pt), n)
	}
	return OutResult{Len: uint64(len(pt)), Data: pt}, nil, nil
}

func isBufferTooSmall(err error) bool { return rvOf(err) == ck.CKR_BUFFER_TOO_SMALL }

func (m *Module) MessageEncryptFinal(h uint64) error { return m.msgFinal(h, msgEncrypt) }

// ---- decryption ----

func (m *Module) MessageDecryptInit(h, mt uint64, p MsgParam, key uint64) error {
	return m.aeadInit(h, msgDecrypt, mt, p, key)
}

// DecryptMessage: the IV is always the caller's (ivGenerator and
// ulIvFixedBits are not used in a decryption).
func (m *Module) DecryptMessage(h uint64, mp MsgParam, aad, data []byte, out Out) (OutResult, error) {
	s, p, err := m.newMessage(h, msgDecrypt, mp)
	if err != nil {
		return OutResult{}, err
	}
	defer s.mu.Unlock()
	if res, err, done := outLen(len(data), out); !done {
		return res, err
	}
	c, err := s.loggedIn()
	if err != nil {
		return OutResult{}, err
	}
	pt, err := m.openOne(c, p, mp.IV, aad, data, mp)
	if err != nil {
		return OutResult{}, err
	}
	if len(pt) != len(data) {
		return OutResult{}, errorf(ck.CKR_DEVICE_ERROR, "the daemon answered %d bytes for %d", len(pt), len(data))
	}
	return OutResult{Len: uint64(len(pt)), Data: pt}, nil
}

func (m *Module) DecryptMessageBegin(h uint64, mp MsgParam, aad []byte) error {
	s, p, err := m.newMessage(h, msgDecrypt, mp)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, err := p.classic(mp.IV, aad, mp); err != nil {
		return err
	}
	p.active, p.param, p.iv, p.aad = true, mp, bytes.Clone(mp.IV), bytes.Clone(aad)
	return nil
}

func (m *Module) DecryptMessageNext(h uint64, mp MsgParam, part []byte, out Out, flags uint64) (OutResult, error) {
	s, p, err := m.process(h, msgDecrypt)
	if err != nil {
		return OutResult{}, err
	}
	defer s.mu.Unlock()
	res, _, err := m.aeadNext(s, p, false, mp, part, out, flags)
	return res, err
}

func (m *Module) MessageDecryptFinal(h uint64) error { return m.msgFinal(h, msgDecrypt) }

// ---- signatures ----

// sigInit is C_MessageSignInit and C_MessageVerifyInit: any signature or
// MAC mechanism, with the parameter C_SignInit would take.
func (m *Module) sigInit(h uint64, kind msgKind, mm Mechanism, key uint64) error {
	if _, err := m.session(h); err != nil {
		return err
	}
	mt, row, err := toMech(mm)
	if err != nil {
		return err
	}
	return m.msgInit(h, kind, mt, row, nil, key)
}

// sigParam: the signature mechanisms take no per-message parameter.
func sigParam(mp MsgParam) error {
	if mp.Kind != msgParamNone {
		return errorf(ck.CKR_MECHANISM_PARAM_INVALID, "signature mechanisms take no message parameter")
	}
	return nil
}

// signOut signs data (once, keeping the signature for the call that
// fetches it) and applies the two-call rule; done is true when the
// signature went out or the signing failed.
func (m *Module) signOut(s *session, p *msgProcess, data []byte, out Out) (res OutResult, done bool, err error) {
	if p.sig == nil || !bytes.Equal(p.sigFor, data) {
		c, err := s.loggedIn()
		if err != nil {
			return OutResult{}, true, err
		}
		ctx, cancel := m.ctx()
		sig, err := c.Sign(ctx, p.key, p.mech, data)
		cancel()
		if err != nil {
			p.sig, p.sigFor = nil, nil
			return OutResult{}, true, err
		}
		p.sig, p.sigFor = sig, bytes.Clone(data)
	}
	if r, err, fetched := outLen(len(p.sig), out); !fetched {
		return r, false, err
	}
	sig := p.sig
	p.sig, p.sigFor = nil, nil
	return OutResult{Len: uint64(len(sig)), Data: sig}, true, nil
}

func (m *Module) MessageSignInit(h uint64, mm Mechanism, key uint64) error {
	return m.sigInit(h, msgSign, mm, key)
}

func (m *Module) SignMessage(h uint64, mp MsgParam, data []byte, out Out) (OutResult, error) {
	s, p, err := m.newMessage(h, msgSign, mp)
	if err != nil {
		return OutResult{}, err
	}
	defer s.mu.Unlock()
	res, _, err := m.signOut(s, p, data, out)
	return res, err
}

func (m *Module) SignMessageBegin(h uint64, mp MsgParam) error {
	return m.sigBegin(h, msgSign, mp)
}

func (m *Module) sigBegin(h uint64, kind msgKind, mp MsgParam) error {
	s, p, err := m.newMessage(h, kind, mp)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	p.endMessage()
	p.active = true
	p.sig, p.sigFor = nil, nil
	return nil
}

func (m *Module) SignMessageNext(h uint64, mp MsgParam, part []byte, out Out, last bool) (OutResult, error) {
	s, p, err := m.process(h, msgSign)
	if err != nil {
		return OutResult{}, err
	}
	defer s.mu.Unlock()
	if !p.active {
		return OutResult{}, errorf(ck.CKR_OPERATION_NOT_INITIALIZED, "no message is under way: call Begin first")
	}
	if err := sigParam(mp); err != nil {
		p.endMessage()
		return OutResult{}, err
	}
	if !last {
		if err := p.collect(part); err != nil {
			p.endMessage()
			return OutResult{}, err
		}
		return OutResult{}, nil
	}
	if len(p.buf)+len(part) > maxOpData {
		p.endMessage()
		return OutResult{}, errorf(ck.CKR_DATA_LEN_RANGE, "more than %d bytes in one message", maxOpData)
	}
	all := append(bytes.Clone(p.buf), part...)
	res, done, err := m.signOut(s, p, all, out)
	if done {
		p.endMessage()
	}
	return res, err
}

func (m *Module) MessageSignFinal(h uint64) error { return m.msgFinal(h, msgSign) }

// ---- verification ----

func (m *Module) MessageVerifyInit(h uint64, mm Mechanism, key uint64) error {
	return m.sigInit(h, msgVerify, mm, key)
}

// verifyOne checks one message's signature, here with a public key the
// library has, else in the daemon.
func (m *Module) verifyOne(s *session, p *msgProcess, data, sig []byte) error {
	if p.local != nil && p.row.Verify != nil {
		return p.row.Verify(p.local, p.mech, data, sig)
	}
	c, err := s.loggedIn()
	if err != nil {
		return err
	}
	ctx, cancel := m.ctx()
	defer cancel()
	return c.Verify(ctx, p.key, p.mech, data, sig)
}

func (m *Module) VerifyMessage(h uint64, mp MsgParam, data, sig []byte) error {
	s, p, err := m.newMessage(h, msgVerify, mp)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if sig == nil {
		return errorf(ck.CKR_ARGUMENTS_BAD, "no signature")
	}
	return m.verifyOne(s, p, data, sig)
}

func (m *Module) VerifyMessageBegin(h uint64, mp MsgParam) error {
	return m.sigBegin(h, msgVerify, mp)
}

func (m *Module) VerifyMessageNext(h uint64, mp MsgParam, part, sig []byte) error {
	s, p, err := m.process(h, msgVerify)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if !p.active {
		return errorf(ck.CKR_OPERATION_NOT_INITIALIZED, "no message is under way: call Begin first")
	}
	if err := sigParam(mp); err != nil {
		p.endMessage()
		return err
	}
	if err := p.collect(part); err != nil {
		p.endMessage()
		return err
	}
	if sig == nil {
		return nil
	}
	defer p.endMessage()
	return m.verifyOne(s, p, p.buf, sig)
}

func (m *Module) MessageVerifyFinal(h uint64) error { return m.msgFinal(h, msgVerify) }

// ---- IVs made by the token ----

// messageIV returns the IV of one message: the caller's (CKG_NO_GENERATE)
// or one generated into its bits after the first ulIvFixedBits; generated
// says which.
func (p *msgProcess) messageIV(mp MsgParam) (iv []byte, generated bool, err error) {
	if !p.aead.generates || mp.Generator == ck.CKG_NO_GENERATE {
		return bytes.Clone(mp.IV), false, nil
	}
	bits := uint64(len(mp.IV)) * 8
	if mp.FixedBits >= bits {
		return nil, false, errorf(ck.CKR_MECHANISM_PARAM_INVALID, "ulIvFixedBits leaves no bits of the IV to generate")
	}
	switch mp.Generator {
	case ck.CKG_GENERATE, ck.CKG_GENERATE_COUNTER:
		iv, err = ivCounters.next(p.key, mp.IV, mp.FixedBits)
	case ck.CKG_GENERATE_RANDOM:
		iv, err = randomIV(mp.IV, mp.FixedBits)
	default:
		return nil, false, errorf(ck.CKR_MECHANISM_PARAM_INVALID, "unknown IV generator %#x", mp.Generator)
	}
	return iv, err == nil, err
}

// fixedMask returns, for each byte of an IV of n bytes, the mask of its
// generated bits: the bits after the first fixed, counted from the most
// significant bit of the first byte.
func fixedMask(n int, fixed uint64) []byte {
	mask := make([]byte, n)
	for i := range mask {
		lo := uint64(i) * 8
		switch {
		case lo+8 <= fixed:
		case lo >= fixed:
			mask[i] = 0xff
		default:
			mask[i] = 0xff >> (fixed - lo)
		}
	}
	return mask
}

// merge returns iv with its generated bits (mask) taken from gen.
func merge(iv, gen, mask []byte) []byte {
	out := make([]byte, len(iv))
	for i := range out {
		out[i] = iv[i]&^mask[i] | gen[i]&mask[i]
	}
	return out
}

// randomIV is CKG_GENERATE_RANDOM: fresh random generated bits.
func randomIV(iv []byte, fixed uint64) ([]byte, error) {
	r := make([]byte, len(iv))
	if _, err := rand.Read(r); err != nil {
		return nil, errorf(ck.CKR_FUNCTION_FAILED, "random: %v", err)
	}
	return merge(iv, r, fixedMask(len(iv), fixed)), nil
}

// ivCounterLimit bounds how many counters (key, IV length, fixed field) a
// process keeps; past it, counter generation answers
// CKR_TOKEN_RESOURCE_EXCEEDED rather than forget one (forgetting could
// repeat an IV).
const ivCounterLimit = 1 << 16

// counterKey names one counter: a key, an IV length and fixed field.
type counterKey struct {
	key   uint64
	n     int
	fixed uint64
	field string // the IV with its generated bits zeroed
}

// ivCounter is the invocation field of one counterKey: g bits, starting at
// a random value, never issuing a value twice.
type ivCounter struct {
	start, issued, size *big.Int
}

// counters is the process's IV counters. They are kept per process, not
// per message process or session: every message process of the library
// on one key and fixed field shares one counter, so no counter IV repeats
// in a process. Another process (another library instance on the same
// key) starts its counter at its own random point: two processes with n
// messages each collide with probability about 2n/2^g for g generated
// bits; callers that need certainty across processes give each its own
// fixed field (ulIvFixedBits), as SP 800-38D 8.2.1 intends.
type counters struct {
	mu sync.Mutex
	m  map[counterKey]*ivCounter
}

var ivCounters = &counters{m: map[counterKey]*ivCounter{}}

// next returns the next counter IV for key and the caller's IV (its first
// fixed bits kept).
func (cs *counters) next(key uint64, iv []byte, fixed uint64) ([]byte, error) {
	mask := fixedMask(len(iv), fixed)
	field := merge(iv, make([]byte, len(iv)), mask)
	k := counterKey{key: key, n: len(iv), fixed: fixed, field: string(field)}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c, ok := cs.m[k]
	if !ok {
		if len(cs.m) >= ivCounterLimit {
			return nil, errorf(ck.CKR_TOKEN_RESOURCE_EXCEEDED, "too many IV counters in this process")
		}
		g := uint(uint64(len(iv))*8 - fixed)
		size := new(big.Int).Lsh(big.NewInt(1), g)
		start, err := rand.Int(rand.Reader, size)
		if err != nil {
			return nil, errorf(ck.CKR_FUNCTION_FAILED, "random: %v", err)
		}
		c = &ivCounter{start: start, issued: new(big.Int), size: size}
		cs.m[k] = c
	}
	if c.issued.Cmp(c.size) >= 0 {
		return nil, errorf(ck.CKR_TOKEN_RESOURCE_EXCEEDED, "the IV counter is used up: change the fixed field or the key")
	}
	v := new(big.Int).Add(c.start, c.issued)
	v.Mod(v, c.size)
	c.issued.Add(c.issued, big.NewInt(1))
	return merge(iv, v.FillBytes(make([]byte, len(iv))), mask), nil
}

// msgFlags is what the message-based functions add to a mechanism's
// CK_MECHANISM_INFO flags (PKCS#11 3.0): message encryption and decryption
// for the mechanisms of msgAEADs, message signing and verifying for every
// mechanism that signs or verifies.
func msgFlags(mt, flags uint64) uint64 {
	var f uint64
	if _, ok := msgAEADs[mt]; ok {
		if flags&ck.CKF_ENCRYPT != 0 {
			f |= ck.CKF_MESSAGE_ENCRYPT
		}
		if flags&ck.CKF_DECRYPT != 0 {
			f |= ck.CKF_MESSAGE_DECRYPT
		}
	}
	if flags&ck.CKF_SIGN != 0 {
		f |= ck.CKF_MESSAGE_SIGN
	}
	if flags&ck.CKF_VERIFY != 0 {
		f |= ck.CKF_MESSAGE_VERIFY
	}
	return f
}
