package core

// The message-based functions (PKCS#11 v3.0) on the wire: the x and y
// items (docs/pkcs11-library.md, "Message-based functions") and the
// Backend methods they reach.

import (
	"fmt"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

// Message parameter kinds, as the C layer flattens pParameter (by its
// size: it does not know the operation's mechanism).
const (
	msgParamNone   = 0 // pParameter NULL
	msgParamRaw    = 1 // bytes as given (a structure Go does not take)
	msgParamGCM    = 2 // CK_GCM_MESSAGE_PARAMS
	msgParamChaCha = 3 // CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS
)

// MsgParam is a message parameter as C flattened it.
type MsgParam struct {
	Kind uint8
	Raw  []byte // kind 1
	// Kinds 2 and 3: pIv or pNonce (nil for NULL), and the tag: Tag holds
	// the bytes of pTag for a decryption (nil otherwise), HasTag says
	// whether pTag is set.
	IV     []byte
	Tag    []byte
	HasTag bool
	// Kind 2.
	FixedBits, Generator, TagBits uint64
	// Kind 3.
	NonceBits uint64
}

// MsgParamOut is what goes back into the caller's parameter structure on
// CKR_OK: a generated IV (exactly as long as pIv) and the tag.
type MsgParamOut struct {
	IV, Tag []byte
}

// msgParam reads an x item.
func (r *wireReader) msgParam() MsgParam {
	var p MsgParam
	p.Kind = r.u8()
	switch p.Kind {
	case msgParamNone:
	case msgParamRaw:
		p.Raw = r.bytesNoNull()
	case msgParamGCM:
		p.IV = r.bytesNoNull()
		p.FixedBits = r.u64()
		p.Generator = r.u64()
		p.TagBits = r.u64()
		p.Tag = r.bytesNoNull()
		p.HasTag = r.flag()
	case msgParamChaCha:
		p.IV = r.bytesNoNull()
		p.NonceBits = r.u64()
		p.Tag = r.bytesNoNull()
		p.HasTag = r.flag()
	default:
		r.fail("message parameter kind %d", p.Kind)
	}
	return p
}

// encode writes a y item: the outputs for CKR_OK, two empty strings
// otherwise.
func (y MsgParamOut) encode(w *wireWriter, ok bool) {
	if !ok {
		w.u32(0)
		w.u32(0)
		return
	}
	w.bytes(y.IV)
	w.bytes(y.Tag)
}

// checkMsgOut refuses parameter outputs C could not write back: an IV of
// another length than the caller's, a tag over 16 bytes or for no pTag.
func checkMsgOut(a *wireArgs, y MsgParamOut) error {
	if len(y.IV) != 0 && len(y.IV) != len(a.x.IV) {
		return fmt.Errorf("%w: a generated IV of %d bytes for %d", errBackendBroke, len(y.IV), len(a.x.IV))
	}
	if len(y.Tag) > 16 || (len(y.Tag) != 0 && !a.x.HasTag) {
		return fmt.Errorf("%w: a tag of %d bytes (pTag set: %v)", errBackendBroke, len(y.Tag), a.x.HasTag)
	}
	return nil
}

// MessageBackend is the message-based functions (PKCS#11 v3.0, base
// specification sections 5.9, 5.11, 5.14 and 5.16). A Backend without it
// answers them CKR_FUNCTION_NOT_SUPPORTED. Module implements it
// (message.go).
type MessageBackend interface {
	MessageEncryptInit(sh, mech uint64, p MsgParam, key uint64) error
	EncryptMessage(sh uint64, p MsgParam, aad, data []byte, out Out) (OutResult, MsgParamOut, error)
	EncryptMessageBegin(sh uint64, p MsgParam, aad []byte) (MsgParamOut, error)
	EncryptMessageNext(sh uint64, p MsgParam, part []byte, out Out, flags uint64) (OutResult, MsgParamOut, error)
	MessageEncryptFinal(sh uint64) error
	MessageDecryptInit(sh, mech uint64, p MsgParam, key uint64) error
	DecryptMessage(sh uint64, p MsgParam, aad, data []byte, out Out) (OutResult, error)
	DecryptMessageBegin(sh uint64, p MsgParam, aad []byte) error
	DecryptMessageNext(sh uint64, p MsgParam, part []byte, out Out, flags uint64) (OutResult, error)
	MessageDecryptFinal(sh uint64) error
	MessageSignInit(sh uint64, m Mechanism, key uint64) error
	SignMessage(sh uint64, p MsgParam, data []byte, out Out) (OutResult, error)
	SignMessageBegin(sh uint64, p MsgParam) error
	// SignMessageNext: last is false while more parts follow
	// (pulSignatureLen NULL).
	SignMessageNext(sh uint64, p MsgParam, part []byte, out Out, last bool) (OutResult, error)
	MessageSignFinal(sh uint64) error
	MessageVerifyInit(sh uint64, m Mechanism, key uint64) error
	VerifyMessage(sh uint64, p MsgParam, data, sig []byte) error
	VerifyMessageBegin(sh uint64, p MsgParam) error
	// VerifyMessageNext: sig nil while more parts follow.
	VerifyMessageNext(sh uint64, p MsgParam, part, sig []byte) error
	MessageVerifyFinal(sh uint64) error
}

// invokeMessage is the dispatcher's part for the message-based functions.
func invokeMessage(b Backend, id int, a *wireArgs, res *wireResult) error {
	mb, ok := b.(MessageBackend)
	if !ok {
		return hsmerr.Errorf(ck.CKR_FUNCTION_NOT_SUPPORTED, "%s is not supported", functions[id].name)
	}
	u, x := a.u, a.x
	var err error
	switch id {
	case fnMessageEncryptInit:
		return mb.MessageEncryptInit(u[0], u[1], x, u[2])
	case fnEncryptMessage:
		res.o, res.y, err = mb.EncryptMessage(u[0], x, a.b[0], a.b[1], a.o)
	case fnEncryptMessageBegin:
		res.y, err = mb.EncryptMessageBegin(u[0], x, a.b[0])
	case fnEncryptMessageNext:
		res.o, res.y, err = mb.EncryptMessageNext(u[0], x, a.b[0], a.o, u[1])
	case fnMessageEncryptFinal:
		return mb.MessageEncryptFinal(u[0])
	case fnMessageDecryptInit:
		return mb.MessageDecryptInit(u[0], u[1], x, u[2])
	case fnDecryptMessage:
		res.o, err = mb.DecryptMessage(u[0], x, a.b[0], a.b[1], a.o)
	case fnDecryptMessageBegin:
		return mb.DecryptMessageBegin(u[0], x, a.b[0])
	case fnDecryptMessageNext:
		res.o, err = mb.DecryptMessageNext(u[0], x, a.b[0], a.o, u[1])
	case fnMessageDecryptFinal:
		return mb.MessageDecryptFinal(u[0])
	case fnMessageSignInit:
		return mb.MessageSignInit(u[0], a.m, u[1])
	case fnSignMessage:
		res.o, err = mb.SignMessage(u[0], x, a.b[0], a.o)
	case fnSignMessageBegin:
		return mb.SignMessageBegin(u[0], x)
	case fnSignMessageNext:
		res.o, err = mb.SignMessageNext(u[0], x, a.b[0], a.o, u[1] != 0)
	case fnMessageSignFinal:
		return mb.MessageSignFinal(u[0])
	case fnMessageVerifyInit:
		return mb.MessageVerifyInit(u[0], a.m, u[1])
	case fnVerifyMessage:
		return mb.VerifyMessage(u[0], x, a.b[0], a.b[1])
	case fnVerifyMessageBegin:
		return mb.VerifyMessageBegin(u[0], x)
	case fnVerifyMessageNext:
		return mb.VerifyMessageNext(u[0], x, a.b[0], a.b[1])
	case fnMessageVerifyFinal:
		return mb.MessageVerifyFinal(u[0])
	default:
		return fmt.Errorf("no dispatcher for function %d", id)
	}
	return err
}
