// Package dataplane is the HSM's data path: a small binary protocol for the
// calls an application makes most often and that change nothing (Sign,
// Verify, Encrypt, Decrypt, Digest), on the node's one mutual-TLS port,
// chosen by the TLS application protocol (ALPN) ALPN beside gRPC's "h2".
// Everything else (login, administration, replication) stays gRPC.
//
// Many calls share one connection: each request carries an ID the caller
// picks, and its answer carries the same ID, in any order. Both ends write
// what is pending in one go, so a burst of concurrent calls costs one TLS
// record and one system call.
//
// This package holds, once, what the client (package client) and the
// daemon (package hsmd) share: the frame layout, the method table and the
// codecs, strict in both directions. It holds no policy: the daemon
// decides who may do what (with the same checks as the gRPC handlers), the
// client decides where to retry (with the same rules as for gRPC, from
// api.Methods). docs/dataplane.md describes the protocol.
//
// A frame is a 16-byte header, then its body:
//
//	length  uint32  bytes of body that follow the header (<= MaxBody)
//	kind    uint8   KindRequest, KindResponse or KindError
//	op      uint8   the method (OpSign ...); 0 in a connection-level error
//	zero    uint16  must be 0
//	id      uint64  the request's ID (not 0), echoed by its answer
//
// All integers are big-endian. Variable fields are a length then bytes.
package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	"github.com/openhsm/openhsm/api"
	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/mech"
)

// ALPN is the TLS application protocol of data-path connections.
const ALPN = "openhsm-data/1"

// Limits.
const (
	// HeaderSize is the size of a frame header.
	HeaderSize = 16
	// MaxData is the most bytes a data field holds (as over gRPC).
	MaxData = mech.MaxDataLen
	// MaxSignature is the most bytes a signature to verify holds.
	MaxSignature = 16 << 10
	// MaxToken is the longest session token.
	MaxToken = 1024
	// MaxParam is the longest encoded mechanism parameter.
	MaxParam = 256 << 10
	// MaxResult is the most bytes an answer's data holds: the largest
	// data plus what encrypting it adds (an AEAD tag, a block of padding),
	// or an RSA block, with room to spare.
	MaxResult = MaxData + 16<<10
	// MaxMessage is the longest error message in an answer.
	MaxMessage = 4096
	// MaxBody is the largest frame body: a request with the largest data,
	// signature, token and parameter fits, and so does the largest answer.
	MaxBody = MaxData + MaxSignature + MaxToken + MaxParam + 64
	// MaxInFlight is how many requests one connection may have running on
	// the daemon at once; a client keeps to it, and the daemon stops
	// reading a connection that reaches it until one is answered.
	MaxInFlight = 64
)

// Kind is the kind of a frame.
type Kind uint8

const (
	KindRequest  Kind = 1 // client to daemon
	KindResponse Kind = 2 // daemon to client: success
	KindError    Kind = 3 // daemon to client: refusal (or, with ID 0, the connection's end)
)

// Op is a method of the data path.
type Op uint8

const (
	OpSign Op = iota + 1
	OpVerify
	OpEncrypt
	OpDecrypt
	OpDigest
	opEnd
)

var opNames = [...]string{OpSign: "Sign", OpVerify: "Verify", OpEncrypt: "Encrypt", OpDecrypt: "Decrypt", OpDigest: "Digest"}

// Valid reports whether o is a method of the protocol.
func (o Op) Valid() bool { return o >= OpSign && o < opEnd }

// String is the method's name, as in api.Methods and hsm.proto.
func (o Op) String() string {
	if o.Valid() {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Method is the method's row in the HSM API's method table: access and
// retry class are the same on both transports.
func (o Op) Method() api.Method {
	m, _ := api.MethodOf(api.ServicePrefix + o.String())
	return m
}

// keyed reports whether the method takes a key.
func (o Op) keyed() bool { return o != OpDigest }

// Header is a frame header.
type Header struct {
	Len  uint32
	Kind Kind
	Op   Op
	ID   uint64
}

// AppendHeader appends h's encoding.
func AppendHeader(b []byte, h Header) []byte {
	b = binary.BigEndian.AppendUint32(b, h.Len)
	b = append(b, byte(h.Kind), byte(h.Op), 0, 0)
	return binary.BigEndian.AppendUint64(b, h.ID)
}

// ProtocolError is a frame that breaks the framing itself: the connection
// cannot go on after it. Its message is safe to send.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "data path protocol error: " + e.Msg }

// ParseHeader reads a header from its HeaderSize bytes and checks it: a
// known kind, the zero field zero, a body of at most MaxBody, an ID other
// than 0 (a connection-level error, KindError with op 0, has ID 0), and for
// a request a known method. Any failure is a *ProtocolError; the header
// fields read so far are returned with it, so the refusal can name the ID.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, &ProtocolError{"short header"}
	}
	h := Header{Len: binary.BigEndian.Uint32(b), Kind: Kind(b[4]), Op: Op(b[5]), ID: binary.BigEndian.Uint64(b[8:])}
	switch {
	case h.Kind < KindRequest || h.Kind > KindError:
		return h, &ProtocolError{fmt.Sprintf("unknown frame kind %d", b[4])}
	case b[6] != 0 || b[7] != 0:
		return h, &ProtocolError{"the header's reserved bytes must be zero"}
	case h.Len > MaxBody:
		return h, &ProtocolError{fmt.Sprintf("frame body of %d bytes is larger than %d", h.Len, MaxBody)}
	case h.ID == 0 && !(h.Kind == KindError && h.Op == 0):
		return h, &ProtocolError{"request ID 0"}
	case h.Kind == KindRequest && !h.Op.Valid():
		return h, &ProtocolError{fmt.Sprintf("unknown method %d", b[5])}
	}
	return h, nil
}

// Request is one call.
type Request struct {
	Op       Op
	ID       uint64
	Token    string // the session token (api.HeaderSession's value over gRPC)
	MinIndex uint64 // read-your-writes: api.HeaderMinIndex (0: none)
	Key      uint64 // not for Digest
	Mech     *hsmpb.Mechanism
	Data     []byte
	Sig      []byte // Verify only
}

// AppendRequest appends r's frame. It refuses, as the daemon would, a
// field out of its bounds.
func AppendRequest(b []byte, r *Request) ([]byte, error) {
	if !r.Op.Valid() || r.ID == 0 {
		return b, api.BadField("frame", "bad method or request ID")
	}
	if len(r.Token) > MaxToken {
		return b, api.BadField("token", "longer than %d bytes", MaxToken)
	}
	if len(r.Data) > MaxData {
		return b, api.BadField("data", "longer than %d bytes", MaxData)
	}
	if len(r.Sig) > MaxSignature || r.Op != OpVerify && len(r.Sig) > 0 {
		return b, api.BadField("signature", "longer than %d bytes", MaxSignature)
	}
	if r.Mech == nil {
		return b, api.BadField("mechanism", "required")
	}
	var param []byte
	if r.Mech.Param != nil {
		var err error
		param, err = proto.MarshalOptions{Deterministic: true}.Marshal(&hsmpb.Mechanism{Param: r.Mech.Param})
		if err != nil || len(param) > MaxParam {
			return b, api.BadField("mechanism", "parameter cannot be encoded")
		}
	}
	n := 2 + len(r.Token) + 8 + 8 + 4 + len(param) + 4 + len(r.Data)
	if r.Op.keyed() {
		n += 8
	}
	if r.Op == OpVerify {
		n += 4 + len(r.Sig)
	}
	b = AppendHeader(b, Header{Len: uint32(n), Kind: KindRequest, Op: r.Op, ID: r.ID})
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.Token)))
	b = append(b, r.Token...)
	b = binary.BigEndian.AppendUint64(b, r.MinIndex)
	if r.Op.keyed() {
		b = binary.BigEndian.AppendUint64(b, r.Key)
	}
	b = binary.BigEndian.AppendUint64(b, r.Mech.Type)
	b = binary.BigEndian.AppendUint32(b, uint32(len(param)))
	b = append(b, param...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(r.Data)))
	b = append(b, r.Data...)
	if r.Op == OpVerify {
		b = binary.BigEndian.AppendUint32(b, uint32(len(r.Sig)))
		b = append(b, r.Sig...)
	}
	return b, nil
}

// reader takes fields off a body; the first failure sticks.
type reader struct {
	b     []byte
	field string // the field that did not fit, or ""
}

func (r *reader) take(field string, n int) []byte {
	if r.field != "" {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.field = field
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u16(field string) int {
	if b := r.take(field, 2); b != nil {
		return int(binary.BigEndian.Uint16(b))
	}
	return 0
}

func (r *reader) u32(field string) int {
	if b := r.take(field, 4); b != nil {
		return int(binary.BigEndian.Uint32(b))
	}
	return 0
}

func (r *reader) u64(field string) uint64 {
	if b := r.take(field, 8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

// bytes reads a length of lenSize bytes, checks it against max, then the
// bytes.
func (r *reader) bytes(field string, lenSize, max int) ([]byte, error) {
	var n int
	if lenSize == 2 {
		n = r.u16(field)
	} else {
		n = r.u32(field)
	}
	if r.field == "" && n > max {
		return nil, api.BadField(field, "longer than %d bytes", max)
	}
	return r.take(field, n), nil
}

func (r *reader) err() error {
	if r.field != "" {
		return api.BadField(r.field, "the frame ends inside it")
	}
	return nil
}

// ReadToken reads the session token at the start of a request body, so the
// daemon can check the session before it reads the rest. n is how many
// bytes of the body the token took.
func ReadToken(body []byte) (tok string, n int, err error) {
	r := reader{b: body}
	t, err := r.bytes("token", 2, MaxToken)
	if err != nil {
		return "", 0, err
	}
	if err := r.err(); err != nil {
		return "", 0, err
	}
	return string(t), 2 + len(t), nil
}

// DecodeRequest reads a request's body (after its header h). Byte fields
// share body's memory. A malformed body is CKR_ARGUMENTS_BAD naming the
// field; the mechanism's parameter gets api.MechFromPB's checks later, in
// the daemon's handler, as over gRPC.
func DecodeRequest(h Header, body []byte) (*Request, error) {
	if h.Kind != KindRequest || !h.Op.Valid() {
		return nil, api.BadField("frame", "not a request")
	}
	req := &Request{Op: h.Op, ID: h.ID}
	r := reader{b: body}
	tok, err := r.bytes("token", 2, MaxToken)
	if err != nil {
		return nil, err
	}
	req.Token = string(tok)
	req.MinIndex = r.u64("min_index")
	if h.Op.keyed() {
		req.Key = r.u64("key")
	}
	m := &hsmpb.Mechanism{Type: r.u64("mechanism.type")}
	param, err := r.bytes("mechanism.param", 4, MaxParam)
	if err != nil {
		return nil, err
	}
	if req.Data, err = r.bytes("data", 4, MaxData); err != nil {
		return nil, err
	}
	if h.Op == OpVerify {
		if req.Sig, err = r.bytes("signature", 4, MaxSignature); err != nil {
			return nil, err
		}
	}
	if err := r.err(); err != nil {
		return nil, err
	}
	if len(r.b) != 0 {
		return nil, api.BadField("frame", "%d bytes after the last field", len(r.b))
	}
	if len(param) > 0 {
		var p hsmpb.Mechanism
		if err := proto.Unmarshal(param, &p); err != nil || p.Type != 0 || p.Param == nil {
			return nil, api.BadField("mechanism.param", "not a mechanism parameter")
		}
		m.Param = p.Param
	}
	req.Mech = m
	if req.Data == nil {
		req.Data = []byte{}
	}
	return req, nil
}

// Response is a successful answer.
type Response struct {
	ID    uint64
	Op    Op
	Index uint64 // the node's applied index (api.HeaderIndex)
	Data  []byte // empty for Verify
}

// AppendResponse appends a success frame.
func AppendResponse(b []byte, op Op, id, index uint64, data []byte) []byte {
	b = AppendHeader(b, Header{Len: uint32(8 + 4 + len(data)), Kind: KindResponse, Op: op, ID: id})
	b = binary.BigEndian.AppendUint64(b, index)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

// Error is a refusal: what the daemon would have put in a gRPC status and
// its ErrorDetail.
type Error struct {
	ID     uint64
	Op     Op
	Index  uint64
	RV     uint64        // the CKR
	Reason hsmerr.Reason // "" or a reason hsmerr knows for RV
	// NotExecuted: the call did not run (api.TrailerRetry over gRPC): the
	// client may send it to another node.
	NotExecuted bool
	Msg         string // as the gRPC status message: "CKR_NAME: what"
}

// ErrorFor makes the refusal for err the way api.ToStatus does: an
// *hsmerr.Error's return value, known reason and message; anything else
// hsmerr.DefaultRV and api.InternalMessage.
func ErrorFor(err error) Error {
	e := Error{RV: hsmerr.DefaultRV, Msg: api.InternalMessage}
	var te *hsmerr.Error
	if errors.As(err, &te) {
		e.RV, e.Reason, e.Msg = hsmerr.RV(te), te.Reason, te.Error()
		if !hsmerr.KnownReason(e.RV, e.Reason) {
			e.Reason = ""
		}
	}
	return e
}

const flagNotExecuted = 1

// AppendError appends a refusal frame. The message is cut to MaxMessage.
func AppendError(b []byte, e *Error) []byte {
	msg := e.Msg
	if len(msg) > MaxMessage {
		msg = msg[:MaxMessage]
	}
	reason := string(e.Reason)
	if len(reason) > 255 {
		reason = ""
	}
	b = AppendHeader(b, Header{Len: uint32(8 + 8 + 1 + 1 + len(reason) + 2 + len(msg)), Kind: KindError, Op: e.Op, ID: e.ID})
	b = binary.BigEndian.AppendUint64(b, e.Index)
	b = binary.BigEndian.AppendUint64(b, e.RV)
	var flags byte
	if e.NotExecuted {
		flags |= flagNotExecuted
	}
	b = append(b, flags, byte(len(reason)))
	b = append(b, reason...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(msg)))
	return append(b, msg...)
}

// DecodeAnswer reads an answer's body: a *Response for KindResponse, an
// *Error for KindError. Byte fields share body's memory.
func DecodeAnswer(h Header, body []byte) (*Response, *Error, error) {
	r := reader{b: body}
	switch h.Kind {
	case KindResponse:
		resp := &Response{ID: h.ID, Op: h.Op, Index: r.u64("index")}
		d, err := r.bytes("data", 4, MaxResult)
		if err != nil {
			return nil, nil, err
		}
		resp.Data = d
		if err := r.err(); err != nil {
			return nil, nil, err
		}
		if len(r.b) != 0 {
			return nil, nil, api.BadField("frame", "%d bytes after the last field", len(r.b))
		}
		return resp, nil, nil
	case KindError:
		e := &Error{ID: h.ID, Op: h.Op, Index: r.u64("index"), RV: r.u64("ckr")}
		fl := r.take("flags", 1)
		if fl != nil {
			if fl[0]&^flagNotExecuted != 0 {
				return nil, nil, api.BadField("flags", "unknown flags %#x", fl[0])
			}
			e.NotExecuted = fl[0]&flagNotExecuted != 0
		}
		var reason []byte
		if rl := r.take("reason", 1); rl != nil {
			reason = r.take("reason", int(rl[0]))
		}
		msg, err := r.bytes("message", 2, MaxMessage)
		if err != nil {
			return nil, nil, err
		}
		if err := r.err(); err != nil {
			return nil, nil, err
		}
		if len(r.b) != 0 {
			return nil, nil, api.BadField("frame", "%d bytes after the last field", len(r.b))
		}
		e.Reason, e.Msg = hsmerr.Reason(reason), string(msg)
		if !hsmerr.KnownReason(e.RV, e.Reason) {
			e.Reason = ""
		}
		return nil, e, nil
	}
	return nil, nil, api.BadField("frame", "not an answer")
}

// ReadFrame reads one frame from r into buf (grown as needed) and returns
// its header and body. A *ProtocolError means the stream is broken.
func ReadFrame(r io.Reader, buf []byte) (Header, []byte, error) {
	var hb [HeaderSize]byte
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		return Header{}, buf, err
	}
	h, err := ParseHeader(hb[:])
	if err != nil {
		return h, buf, err
	}
	if cap(buf) < int(h.Len) {
		buf = make([]byte, h.Len)
	}
	buf = buf[:h.Len]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return h, buf, err
	}
	return h, buf, nil
}
