package dataplane

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/openhsm/openhsm/api"
	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

func gcm() *hsmpb.Mechanism {
	return &hsmpb.Mechanism{Type: ck.CKM_AES_GCM, Param: &hsmpb.Mechanism_Gcm{Gcm: &hsmpb.GcmParams{Iv: make([]byte, 12), Aad: []byte("aad"), TagBits: 128}}}
}

func TestRequestRoundTrip(t *testing.T) {
	for _, r := range []*Request{
		{Op: OpSign, ID: 1, Token: "v2.tok", MinIndex: 7, Key: 42, Mech: &hsmpb.Mechanism{Type: ck.CKM_ECDSA_SHA256}, Data: []byte("hello")},
		{Op: OpVerify, ID: 2, Token: "t", Key: 3, Mech: &hsmpb.Mechanism{Type: ck.CKM_ECDSA}, Data: []byte{1}, Sig: []byte{2, 3}},
		{Op: OpEncrypt, ID: 3, Token: "t", Key: 9, Mech: gcm(), Data: bytes.Repeat([]byte{7}, 5000)},
		{Op: OpDecrypt, ID: 4, Token: "t", Key: 9, Mech: gcm(), Data: []byte{}},
		{Op: OpDigest, ID: 1 << 60, Token: "t", Mech: &hsmpb.Mechanism{Type: ck.CKM_SHA256}, Data: []byte("x")},
	} {
		b, err := AppendRequest(nil, r)
		require.NoError(t, err)
		h, err := ParseHeader(b)
		require.NoError(t, err)
		require.Equal(t, int(h.Len), len(b)-HeaderSize)
		got, err := DecodeRequest(h, b[HeaderSize:])
		require.NoError(t, err, r.Op)
		assert.Equal(t, r.Op, got.Op)
		assert.Equal(t, r.ID, got.ID)
		assert.Equal(t, r.Token, got.Token)
		assert.Equal(t, r.MinIndex, got.MinIndex)
		assert.Equal(t, r.Key, got.Key)
		assert.True(t, proto.Equal(r.Mech, got.Mech), "%v != %v", r.Mech, got.Mech)
		assert.Equal(t, r.Data, got.Data)
		assert.Equal(t, len(r.Sig), len(got.Sig))
		tok, n, err := ReadToken(b[HeaderSize:])
		require.NoError(t, err)
		assert.Equal(t, r.Token, tok)
		assert.Equal(t, 2+len(r.Token), n)
	}
}

func TestAnswerRoundTrip(t *testing.T) {
	b := AppendResponse(nil, OpSign, 5, 99, []byte("sig"))
	b = AppendError(b, &Error{ID: 6, Op: OpVerify, Index: 100, RV: ck.CKR_USER_NOT_LOGGED_IN, Reason: hsmerr.ReasonNoSession,
		NotExecuted: true, Msg: "CKR_USER_NOT_LOGGED_IN: log in"})
	r := bytes.NewReader(b)
	h, body, err := ReadFrame(r, nil)
	require.NoError(t, err)
	resp, e, err := DecodeAnswer(h, body)
	require.NoError(t, err)
	require.Nil(t, e)
	assert.Equal(t, &Response{ID: 5, Op: OpSign, Index: 99, Data: []byte("sig")}, resp)
	h, body, err = ReadFrame(r, nil)
	require.NoError(t, err)
	resp, e, err = DecodeAnswer(h, body)
	require.NoError(t, err)
	require.Nil(t, resp)
	assert.Equal(t, &Error{ID: 6, Op: OpVerify, Index: 100, RV: ck.CKR_USER_NOT_LOGGED_IN, Reason: hsmerr.ReasonNoSession,
		NotExecuted: true, Msg: "CKR_USER_NOT_LOGGED_IN: log in"}, e)
}

func TestParseHeaderRefuses(t *testing.T) {
	good := AppendHeader(nil, Header{Len: 10, Kind: KindRequest, Op: OpSign, ID: 1})
	_, err := ParseHeader(good)
	require.NoError(t, err)
	for name, mut := range map[string]func(b []byte){
		"kind 0":       func(b []byte) { b[4] = 0 },
		"kind 9":       func(b []byte) { b[4] = 9 },
		"reserved":     func(b []byte) { b[7] = 1 },
		"oversized":    func(b []byte) { binary.BigEndian.PutUint32(b, MaxBody+1) },
		"id 0":         func(b []byte) { binary.BigEndian.PutUint64(b[8:], 0) },
		"unknown op":   func(b []byte) { b[5] = 200 },
		"op 0 request": func(b []byte) { b[5] = 0 },
	} {
		b := bytes.Clone(good)
		mut(b)
		_, err := ParseHeader(b)
		var pe *ProtocolError
		require.ErrorAs(t, err, &pe, name)
		assert.NotEmpty(t, pe.Msg)
	}
	_, err = ParseHeader(good[:5])
	require.Error(t, err)
}

func TestDecodeRequestRefuses(t *testing.T) {
	b, err := AppendRequest(nil, &Request{Op: OpSign, ID: 1, Token: "t", Key: 4, Mech: gcm(), Data: []byte("abc")})
	require.NoError(t, err)
	h, _ := ParseHeader(b)
	body := b[HeaderSize:]
	// Every truncation names a field and is CKR_ARGUMENTS_BAD.
	for n := 0; n < len(body); n++ {
		_, err := DecodeRequest(h, body[:n])
		require.Error(t, err, n)
		assert.EqualValues(t, ck.CKR_ARGUMENTS_BAD, hsmerr.RV(err), n)
		var fe *api.FieldError
		require.ErrorAs(t, err, &fe)
	}
	_, err = DecodeRequest(h, append(bytes.Clone(body), 0))
	require.ErrorContains(t, err, "after the last field")
	// A parameter that is not a mechanism parameter.
	bad := bytes.Clone(body)
	off := 2 + 1 + 8 + 8 + 8 // token, min index, key, mechanism type
	plen := int(binary.BigEndian.Uint32(bad[off:]))
	for i := 0; i < plen; i++ {
		bad[off+4+i] = 0xff
	}
	_, err = DecodeRequest(h, bad)
	require.ErrorContains(t, err, "mechanism.param")
	// Fields past their bounds, before their bytes are needed.
	big := bytes.Clone(body)
	binary.BigEndian.PutUint16(big, MaxToken+1)
	_, err = DecodeRequest(h, big)
	require.ErrorContains(t, err, "token")
}

func TestAppendRequestRefuses(t *testing.T) {
	m := &hsmpb.Mechanism{Type: ck.CKM_SHA256}
	for name, r := range map[string]*Request{
		"no id":       {Op: OpDigest, Mech: m},
		"no op":       {ID: 1, Mech: m},
		"no mech":     {Op: OpDigest, ID: 1},
		"long token":  {Op: OpDigest, ID: 1, Mech: m, Token: string(make([]byte, MaxToken+1))},
		"long sig":    {Op: OpVerify, ID: 1, Mech: m, Sig: make([]byte, MaxSignature+1)},
		"sig on sign": {Op: OpSign, ID: 1, Mech: m, Sig: []byte{1}},
	} {
		out, err := AppendRequest([]byte("keep"), r)
		require.Error(t, err, name)
		assert.EqualValues(t, ck.CKR_ARGUMENTS_BAD, hsmerr.RV(err), name)
		assert.Equal(t, []byte("keep"), out, name)
	}
}

func TestOpsAreIdempotentSessionMethods(t *testing.T) {
	for op := OpSign; op < opEnd; op++ {
		m := op.Method()
		assert.Equal(t, op.String(), m.Name)
		assert.Equal(t, api.Session, m.Access, op)
		assert.True(t, m.Idempotent(), op)
	}
	assert.False(t, Op(0).Valid())
	assert.False(t, opEnd.Valid())
}

func TestErrorFor(t *testing.T) {
	e := ErrorFor(hsmerr.Reasonf(hsmerr.ReasonNoSession, "gone"))
	assert.EqualValues(t, ck.CKR_USER_NOT_LOGGED_IN, e.RV)
	assert.Equal(t, hsmerr.ReasonNoSession, e.Reason)
	e = ErrorFor(bytes.ErrTooLarge)
	assert.EqualValues(t, hsmerr.DefaultRV, e.RV)
	assert.Equal(t, api.InternalMessage, e.Msg)
}

// FuzzDecode feeds arbitrary frames to the decoders: they refuse or
// decode, never panic, and what decodes encodes back to the same bytes.
func FuzzDecode(f *testing.F) {
	for _, r := range []*Request{
		{Op: OpSign, ID: 1, Token: "tok", Key: 42, Mech: &hsmpb.Mechanism{Type: ck.CKM_ECDSA_SHA256}, Data: []byte("hello")},
		{Op: OpVerify, ID: 2, Token: "t", Key: 3, Mech: gcm(), Data: []byte{1}, Sig: []byte{2, 3}},
		{Op: OpDigest, ID: 3, Mech: &hsmpb.Mechanism{Type: ck.CKM_SHA256}},
	} {
		b, _ := AppendRequest(nil, r)
		f.Add(b)
	}
	f.Add(AppendResponse(nil, OpSign, 5, 9, []byte("x")))
	f.Add(AppendError(nil, &Error{ID: 6, RV: 0x101, Reason: hsmerr.ReasonNoSession, Msg: "m"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			return
		}
		body := b[HeaderSize:]
		if int(h.Len) < len(body) {
			body = body[:h.Len]
		}
		switch h.Kind {
		case KindRequest:
			ReadToken(body)
			r, err := DecodeRequest(h, body)
			if err != nil {
				return
			}
			if _, err := api.MechFromPB("mechanism", r.Mech); err != nil {
				return
			}
			out, err := AppendRequest(nil, r)
			require.NoError(t, err)
			again, err := DecodeRequest(h, out[HeaderSize:])
			require.NoError(t, err)
			require.Equal(t, r.Token, again.Token)
			require.Equal(t, r.Data, again.Data)
		default:
			DecodeAnswer(h, body)
		}
	})
}

// TestLargestAnswer: encrypting the largest data adds a tag or padding, and
// the answer still decodes (over gRPC it fits in the message limit too).
func TestLargestAnswer(t *testing.T) {
	out := make([]byte, MaxData+16)
	b := AppendResponse(nil, OpEncrypt, 7, 1, out)
	h, body, err := ReadFrame(bytes.NewReader(b), nil)
	require.NoError(t, err)
	resp, _, err := DecodeAnswer(h, body)
	require.NoError(t, err)
	assert.Len(t, resp.Data, MaxData+16)
	b = AppendResponse(nil, OpEncrypt, 8, 1, make([]byte, MaxResult+1))
	h, body, err = ReadFrame(bytes.NewReader(b), nil)
	require.NoError(t, err)
	_, _, err = DecodeAnswer(h, body)
	require.Error(t, err)
}
