package core

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

// yRep is a decoded y item.
type yRep struct{ IV, Tag []byte }

// appendMsgParam encodes an x item as C does (frame.c, fr_item_x).
func appendMsgParam(w []byte, p MsgParam) []byte {
	putB := func(v []byte) { w = appendReqBytes(w, v) }
	flag := func(v bool) { w = appendFlag(w, v) }
	w = append(w, p.Kind)
	switch p.Kind {
	case msgParamRaw:
		putB(p.Raw)
	case msgParamGCM:
		putB(p.IV)
		w = binary.LittleEndian.AppendUint64(w, p.FixedBits)
		w = binary.LittleEndian.AppendUint64(w, p.Generator)
		w = binary.LittleEndian.AppendUint64(w, p.TagBits)
		putB(p.Tag)
		flag(p.HasTag)
	case msgParamChaCha:
		putB(p.IV)
		w = binary.LittleEndian.AppendUint64(w, p.NonceBits)
		putB(p.Tag)
		flag(p.HasTag)
	}
	return w
}

// The recording Backend's message-based methods: y answers carry a
// generated IV as long as the caller's and a 16-byte tag, even for a NULL
// pTag (which the dispatcher must refuse).
func (b *recBackend) yFor(p MsgParam) MsgParamOut {
	if b.err != nil || p.Kind == msgParamNone || p.Kind == msgParamRaw {
		return MsgParamOut{}
	}
	return MsgParamOut{IV: make([]byte, len(p.IV)), Tag: []byte("0123456789abcdef")}
}

func (b *recBackend) MessageEncryptInit(sh, m uint64, p MsgParam, key uint64) error {
	return b.rec("MessageEncryptInit", sh, m, p, key)
}
func (b *recBackend) EncryptMessage(sh uint64, p MsgParam, aad, data []byte, out Out) (OutResult, MsgParamOut, error) {
	o, err := b.o("EncryptMessage", out, sh, p, aad, data)
	return o, b.yFor(p), err
}
func (b *recBackend) EncryptMessageBegin(sh uint64, p MsgParam, aad []byte) (MsgParamOut, error) {
	err := b.rec("EncryptMessageBegin", sh, p, aad)
	return b.yFor(p), err
}
func (b *recBackend) EncryptMessageNext(sh uint64, p MsgParam, part []byte, out Out, flags uint64) (OutResult, MsgParamOut, error) {
	o, err := b.o("EncryptMessageNext", out, sh, p, part, flags)
	return o, b.yFor(p), err
}
func (b *recBackend) MessageEncryptFinal(sh uint64) error { return b.rec("MessageEncryptFinal", sh) }
func (b *recBackend) MessageDecryptInit(sh, m uint64, p MsgParam, key uint64) error {
	return b.rec("MessageDecryptInit", sh, m, p, key)
}
func (b *recBackend) DecryptMessage(sh uint64, p MsgParam, aad, data []byte, out Out) (OutResult, error) {
	return b.o("DecryptMessage", out, sh, p, aad, data)
}
func (b *recBackend) DecryptMessageBegin(sh uint64, p MsgParam, aad []byte) error {
	return b.rec("DecryptMessageBegin", sh, p, aad)
}
func (b *recBackend) DecryptMessageNext(sh uint64, p MsgParam, part []byte, out Out, flags uint64) (OutResult, error) {
	return b.o("DecryptMessageNext", out, sh, p, part, flags)
}
func (b *recBackend) MessageDecryptFinal(sh uint64) error { return b.rec("MessageDecryptFinal", sh) }
func (b *recBackend) MessageSignInit(sh uint64, m Mechanism, key uint64) error {
	return b.rec("MessageSignInit", sh, m, key)
}
func (b *recBackend) SignMessage(sh uint64, p MsgParam, data []byte, out Out) (OutResult, error) {
	return b.o("SignMessage", out, sh, p, data)
}
func (b *recBackend) SignMessageBegin(sh uint64, p MsgParam) error {
	return b.rec("SignMessageBegin", sh, p)
}
func (b *recBackend) SignMessageNext(sh uint64, p MsgParam, part []byte, out Out, last bool) (OutResult, error) {
	if !last {
		return OutResult{}, b.rec("SignMessageNext", sh, p, part, last)
	}
	return b.o("SignMessageNext", out, sh, p, part, last)
}
func (b *recBackend) MessageSignFinal(sh uint64) error { return b.rec("MessageSignFinal", sh) }
func (b *recBackend) MessageVerifyInit(sh uint64, m Mechanism, key uint64) error {
	return b.rec("MessageVerifyInit", sh, m, key)
}
func (b *recBackend) VerifyMessage(sh uint64, p MsgParam, data, sig []byte) error {
	return b.rec("VerifyMessage", sh, p, data, sig)
}
func (b *recBackend) VerifyMessageBegin(sh uint64, p MsgParam) error {
	return b.rec("VerifyMessageBegin", sh, p)
}
func (b *recBackend) VerifyMessageNext(sh uint64, p MsgParam, part, sig []byte) error {
	return b.rec("VerifyMessageNext", sh, p, part, sig)
}
func (b *recBackend) MessageVerifyFinal(sh uint64) error { return b.rec("MessageVerifyFinal", sh) }

var (
	xNone    = MsgParam{}
	xGCMEnc  = MsgParam{Kind: msgParamGCM, IV: fixed("twelve bytes", 12), FixedBits: 32, Generator: ck.CKG_GENERATE_COUNTER, TagBits: 128, HasTag: true}
	xGCMDec  = MsgParam{Kind: msgParamGCM, IV: fixed("twelve bytes", 12), TagBits: 128, Tag: []byte("0123456789abcdef"), HasTag: true}
	xChaCha  = MsgParam{Kind: msgParamChaCha, IV: fixed("twelve bytes", 12), NonceBits: 96, HasTag: true}
	xRaw     = MsgParam{Kind: msgParamRaw, Raw: []byte{1, 2, 3}}
	xNoTag   = MsgParam{Kind: msgParamGCM, IV: fixed("twelve bytes", 12), TagBits: 128}
	tagBytes = []byte("0123456789abcdef")
)

// messageCallCases are the message-based rows of TestCallEveryFunction.
func messageCallCases() []callCase {
	sh := uint64(tSH)
	okBuf := Out{Present: true, Cap: 64}
	cipher := oRep{Len: 10, Copied: true, Data: []byte("ciphertext")}
	ivTag := yRep{IV: make([]byte, 12), Tag: tagBytes}
	return []callCase{
		{name: "MessageEncryptInit", id: fnMessageEncryptInit, req: []any{sh, uint64(ck.CKM_AES_GCM), xNone, uint64(tKey)},
			want: rc("MessageEncryptInit", sh, uint64(ck.CKM_AES_GCM), xNone, uint64(tKey))},
		{name: "MessageEncryptInit/raw", id: fnMessageEncryptInit, req: []any{sh, uint64(ck.CKM_AES_GCM), xRaw, uint64(tKey)},
			want: rc("MessageEncryptInit", sh, uint64(ck.CKM_AES_GCM), xRaw, uint64(tKey))},
		{name: "EncryptMessage", id: fnEncryptMessage, req: []any{sh, xGCMEnc, []byte("aad"), []byte("plain"), okBuf},
			want: rc("EncryptMessage", sh, xGCMEnc, []byte("aad"), []byte("plain")), reply: []any{cipher, ivTag}},
		{name: "EncryptMessage/ChaCha", id: fnEncryptMessage, req: []any{sh, xChaCha, []byte(nil), []byte("plain"), okBuf},
			want: rc("EncryptMessage", sh, xChaCha, []byte(nil), []byte("plain")), reply: []any{cipher, ivTag}},
		{name: "EncryptMessage/length", id: fnEncryptMessage, req: []any{sh, xGCMEnc, []byte("aad"), []byte("plain"), Out{}},
			want: rc("EncryptMessage", sh, xGCMEnc, []byte("aad"), []byte("plain")), reply: []any{oRep{Len: 10}, ivTag}},
		{name: "EncryptMessage/error", id: fnEncryptMessage, req: []any{sh, xGCMEnc, []byte("aad"), []byte("plain"), okBuf},
			setup: func(b *recBackend) { b.err = hsmerr.Errorf(ck.CKR_MECHANISM_PARAM_INVALID, "") },
			want:  rc("EncryptMessage", sh, xGCMEnc, []byte("aad"), []byte("plain")), rv: ck.CKR_MECHANISM_PARAM_INVALID},
		// A tag for a NULL pTag could not be written: refused.
		{name: "EncryptMessage/tag without pTag", id: fnEncryptMessage, req: []any{sh, xNoTag, []byte(nil), []byte("plain"), okBuf},
			setup: func(b *recBackend) { b.data = []byte("ciphertext") },
			want:  rc("EncryptMessage", sh, xNoTag, []byte(nil), []byte("plain")), rv: ck.CKR_GENERAL_ERROR},
		{name: "EncryptMessageBegin", id: fnEncryptMessageBegin, req: []any{sh, xGCMEnc, []byte("aad")},
			want: rc("EncryptMessageBegin", sh, xGCMEnc, []byte("aad")), reply: []any{ivTag}},
		{name: "EncryptMessageNext", id: fnEncryptMessageNext, req: []any{sh, xGCMEnc, []byte("part"), okBuf, uint64(ck.CKF_END_OF_MESSAGE)},
			want: rc("EncryptMessageNext", sh, xGCMEnc, []byte("part"), uint64(ck.CKF_END_OF_MESSAGE)), reply: []any{cipher, ivTag}},
		{name: "MessageEncryptFinal", id: fnMessageEncryptFinal, req: []any{sh}, want: rc("MessageEncryptFinal", sh)},
		{name: "MessageDecryptInit", id: fnMessageDecryptInit, req: []any{sh, uint64(ck.CKM_AES_GCM), xNone, uint64(tKey)},
			want: rc("MessageDecryptInit", sh, uint64(ck.CKM_AES_GCM), xNone, uint64(tKey))},
		{name: "DecryptMessage", id: fnDecryptMessage, req: []any{sh, xGCMDec, []byte("aad"), []byte("ct"), okBuf},
			want: rc("DecryptMessage", sh, xGCMDec, []byte("aad"), []byte("ct")), reply: []any{cipher}},
		{name: "DecryptMessageBegin", id: fnDecryptMessageBegin, req: []any{sh, xGCMDec, []byte(nil)},
			want: rc("DecryptMessageBegin", sh, xGCMDec, []byte(nil))},
		{name: "DecryptMessageNext", id: fnDecryptMessageNext, req: []any{sh, xGCMDec, []byte("ct"), Out{}, uint64(0)},
			want: rc("DecryptMessageNext", sh, xGCMDec, []byte("ct"), uint64(0)), reply: []any{oRep{Len: 10}}},
		{name: "MessageDecryptFinal", id: fnMessageDecryptFinal, req: []any{sh}, want: rc("MessageDecryptFinal", sh)},
		{name: "MessageSignInit", id: fnMessageSignInit, req: []any{sh, mechNone, uint64(tKey)}, want: rc("MessageSignInit", sh, mechNone, uint64(tKey))},
		{name: "SignMessage", id: fnSignMessage, req: []any{sh, xNone, []byte("data"), okBuf},
			want: rc("SignMessage", sh, xNone, []byte("data")), reply: []any{cipher}},
		{name: "SignMessageBegin", id: fnSignMessageBegin, req: []any{sh, xNone}, want: rc("SignMessageBegin", sh, xNone)},
		{name: "SignMessageNext/more", id: fnSignMessageNext, req: []any{sh, xNone, []byte("part"), Out{}, 0},
			want: rc("SignMessageNext", sh, xNone, []byte("part"), false)},
		{name: "SignMessageNext/last", id: fnSignMessageNext, req: []any{sh, xNone, []byte("part"), okBuf, 1},
			want: rc("SignMessageNext", sh, xNone, []byte("part"), true), reply: []any{cipher}},
		{name: "MessageSignFinal", id: fnMessageSignFinal, req: []any{sh}, want: rc("MessageSignFinal", sh)},
		{name: "MessageVerifyInit", id: fnMessageVerifyInit, req: []any{sh, mechNone, uint64(tKey)}, want: rc("MessageVerifyInit", sh, mechNone, uint64(tKey))},
		{name: "VerifyMessage", id: fnVerifyMessage, req: []any{sh, xNone, []byte("data"), []byte("sig")},
			want: rc("VerifyMessage", sh, xNone, []byte("data"), []byte("sig"))},
		{name: "VerifyMessageBegin", id: fnVerifyMessageBegin, req: []any{sh, xNone}, want: rc("VerifyMessageBegin", sh, xNone)},
		{name: "VerifyMessageNext/more", id: fnVerifyMessageNext, req: []any{sh, xNone, []byte("part"), []byte(nil)},
			want: rc("VerifyMessageNext", sh, xNone, []byte("part"), []byte(nil))},
		{name: "MessageVerifyFinal", id: fnMessageVerifyFinal, req: []any{sh}, want: rc("MessageVerifyFinal", sh)},
	}
}

// A Backend without the message-based methods answers them
// CKR_FUNCTION_NOT_SUPPORTED.
type plainBackend struct{ Backend }

func TestMessageNotSupported(t *testing.T) {
	d := &Dispatcher{B: plainBackend{newRecBackend()}}
	reply := d.Call(encodeRequest(t, fnMessageEncryptFinal, uint64(tSH)))
	rv, _, err := decodeReply(t, fnMessageEncryptFinal, reply, 0)
	require.NoError(t, err)
	require.Equal(t, uint64(ck.CKR_FUNCTION_NOT_SUPPORTED), rv)
}

// The x item's reader refuses what C never sends.
func TestReaderMsgParam(t *testing.T) {
	for _, p := range []MsgParam{xNone, xGCMEnc, xGCMDec, xChaCha, xRaw, xNoTag} {
		r := wireReader{buf: appendMsgParam(nil, p)}
		got := r.msgParam()
		require.NoError(t, r.err)
		require.Empty(t, r.buf)
		require.Equal(t, p, got)
	}
	for name, b := range map[string][]byte{
		"kind 4":     {4},
		"short GCM":  {msgParamGCM, 12, 0, 0, 0},
		"flag 2":     append(appendMsgParam(nil, xChaCha)[:len(appendMsgParam(nil, xChaCha))-1], 2),
		"empty":      {},
		"raw length": {msgParamRaw, 0xff, 0xff, 0xff, 0x7f},
	} {
		r := wireReader{buf: b}
		r.msgParam()
		require.Error(t, r.err, name)
	}
}
