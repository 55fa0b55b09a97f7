package core

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
)

// Dispatcher decodes frames, calls the Backend and encodes the replies. It
// holds no state of its own: Call is safe for concurrent use when B is.
type Dispatcher struct {
	B   Backend
	Log *slog.Logger // optional: refused frames, Backend panics and broken results
}

// wireResult is what a Backend call gave, for the reply items.
type wireResult struct {
	o       OutResult
	hCount  uint64
	h       []uint64 // copied out when hCopied
	hCopied bool
	p       []uint64
	s       any // Info, SlotInfo, TokenInfo, SessionInfo or MechanismInfo
	g       []AttrResp
	b       []byte
	e       string // C_Initialize: the line for the host's log on failure
	y       MsgParamOut
}

// wireMaxReply bounds a reply as the helper's frames are bounded, so that C
// can use the same limit reading them. A variable for the tests.
var wireMaxReply = wireMaxFrame

// errBackendBroke marks a Backend result that breaks the output rules (data
// bigger than the caller's buffer, a wrong number of attributes, ...). It
// is answered with CKR_GENERAL_ERROR rather than passed on to C.
var errBackendBroke = errors.New("backend result breaks the output rules")

// rvOf maps a Backend error to a CK_RV: nil is CKR_OK, a *hsmerr.Error its
// RV, anything else (or a *hsmerr.Error claiming CKR_OK) CKR_GENERAL_ERROR.
func rvOf(err error) uint64 {
	if err == nil {
		return ck.CKR_OK
	}
	var e *hsmerr.Error
	if errors.As(err, &e) && e != nil && e.RV != ck.CKR_OK {
		return hsmerr.RV(err)
	}
	return ck.CKR_GENERAL_ERROR
}

// Call answers one request frame with one reply frame (neither with the
// length prefix of the socket). It never panics and never keeps req: the
// Backend gets copies of the byte strings.
//
// A frame that does not decode (short, out of bounds, bytes left over) is
// answered CKR_ARGUMENTS_BAD with zeroed reply items, or with the CK_RV
// alone when the function id is unknown; the Backend is not called. A panic
// in the Backend is answered CKR_GENERAL_ERROR.
func (d *Dispatcher) Call(req []byte) []byte {
	var w wireWriter
	d.call(req, &w)
	return w.buf
}

// call appends the reply for req to w.
func (d *Dispatcher) call(req []byte, w *wireWriter) {
	start := len(w.buf)
	defer func() {
		// Last line of defence: the codec itself is not meant to panic.
		if v := recover(); v != nil {
			d.logPanic("dispatcher", v)
			w.buf = binary.LittleEndian.AppendUint64(w.buf[:start], ck.CKR_GENERAL_ERROR)
		}
	}()

	r := wireReader{buf: req}
	id32 := r.u32()
	name := functionName(id32)
	if r.err != nil || name == "" {
		if d.Log != nil {
			d.Log.Warn("p11: frame refused: unknown function", "id", id32, "len", len(req))
		}
		w.u64(ck.CKR_ARGUMENTS_BAD)
		return
	}
	id := int(id32)
	a, err := decodeArgs(&r, specs[id].req)
	if err != nil {
		if d.Log != nil {
			d.Log.Warn("p11: frame refused", "function", name, "err", err)
		}
		encodeReply(w, id, ck.CKR_ARGUMENTS_BAD, a, &wireResult{})
		return
	}
	res, rv := d.run(id, a)
	encodeReply(w, id, rv, a, res)
	if len(w.buf)-start > wireMaxReply {
		d.logBroke(id, fmt.Errorf("reply of %d bytes, more than %d", len(w.buf)-start, wireMaxReply))
		w.buf = w.buf[:start]
		encodeReply(w, id, ck.CKR_GENERAL_ERROR, a, &wireResult{})
	}
}

// run calls the Backend and checks what it gave. A panic is recovered and
// answered CKR_GENERAL_ERROR.
func (d *Dispatcher) run(id int, a *wireArgs) (res *wireResult, rv uint64) {
	res = &wireResult{}
	defer func() {
		if v := recover(); v != nil {
			d.logPanic(functions[id].name, v)
			res, rv = &wireResult{}, ck.CKR_GENERAL_ERROR
		}
	}()
	rv = rvOf(d.invoke(id, a, res))
	if err := check(id, a, res, rv); err != nil {
		d.logBroke(id, err)
		return &wireResult{}, ck.CKR_GENERAL_ERROR
	}
	return res, rv
}

func (d *Dispatcher) logPanic(where string, v any) {
	if d != nil && d.Log != nil {
		d.Log.Error("p11: panic recovered", "function", where, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	}
}

func (d *Dispatcher) logBroke(id int, err error) {
	if d != nil && d.Log != nil {
		d.Log.Error("p11: backend result refused", "function", functions[id].name, "err", err)
	}
}

// invoke calls the Backend method for id with the decoded arguments and puts
// its results in res.
func (d *Dispatcher) invoke(id int, a *wireArgs, res *wireResult) error {
	b, u := d.B, a.u
	var err error
	var h uint64
	switch id {
	case fnInitialize:
		// a.b[0]: the credentials a privileged parent handed over
		// (handoff.go), or NULL. A Backend that cannot take them reads
		// its own configuration.
		if a.b[0] != nil {
			if h, ok := b.(interface{ Handoff([]byte) error }); ok {
				if err = h.Handoff(a.b[0]); err != nil {
					err = hsmerr.Errorf(ck.CKR_GENERAL_ERROR, "%v", err)
				}
			}
		}
		if err == nil {
			err = b.Initialize(u[0])
		}
		if err != nil && rvOf(err) != rvUseHelper {
			res.e = initReport(err)
		}
		return err
	case fnFinalize:
		return b.Finalize()
	case fnGetInfo:
		res.s, err = b.GetInfo()
	case fnGetSlotList:
		var l []uint64
		if l, err = b.GetSlotList(u[0] != 0); err == nil {
			err = res.list(l, a.h)
		}
	case fnGetSlotInfo:
		res.s, err = b.GetSlotInfo(u[0])
	case fnGetTokenInfo:
		res.s, err = b.GetTokenInfo(u[0])
	case fnGetMechanismList:
		var l []uint64
		if l, err = b.GetMechanismList(u[0]); err == nil {
			err = res.list(l, a.h)
		}
	case fnGetMechanismInfo:
		res.s, err = b.GetMechanismInfo(u[0], u[1])
	case fnInitToken:
		return b.InitToken(u[0], a.b[0], a.b[1])
	case fnInitPIN:
		return b.InitPIN(u[0], a.b[0])
	case fnSetPIN:
		return b.SetPIN(u[0], a.b[0], a.b[1])
	case fnOpenSession:
		h, err = b.OpenSession(u[0], u[1])
		res.p = []uint64{h}
	case fnCloseSession:
		return b.CloseSession(u[0])
	case fnCloseAllSessions:
		return b.CloseAllSessions(u[0])
	case fnGetSessionInfo:
		res.s, err = b.GetSessionInfo(u[0])
	case fnGetOperationState:
		res.o, err = b.GetOperationState(u[0], a.o)
	case fnSetOperationState:
		return b.SetOperationState(u[0], a.b[0], u[1], u[2])
	case fnLogin:
		return b.Login(u[0], u[1], a.b[0])
	case fnLogout:
		return b.Logout(u[0])
	case fnCreateObject:
		h, err = b.CreateObject(u[0], a.t[0])
		res.p = []uint64{h}
	case fnCopyObject:
		h, err = b.CopyObject(u[0], u[1], a.t[0])
		res.p = []uint64{h}
	case fnDestroyObject:
		return b.DestroyObject(u[0], u[1])
	case fnGetObjectSize:
		h, err = b.GetObjectSize(u[0], u[1])
		res.p = []uint64{h}
	case fnGetAttributeValue:
		res.g, err = b.GetAttributeValue(u[0], u[1], a.g)
	case fnSetAttributeValue:
		return b.SetAttributeValue(u[0], u[1], a.t[0])
	case fnFindObjectsInit:
		return b.FindObjectsInit(u[0], a.t[0])
	case fnFindObjects:
		if !a.h.Present {
			return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "C_FindObjects without a handle array")
		}
		var l []uint64
		if l, err = b.FindObjects(u[0], a.h.Cap); err == nil {
			if uint64(len(l)) > a.h.Cap {
				l = l[:a.h.Cap]
			}
			res.hCount, res.h, res.hCopied = uint64(len(l)), l, true
		}
	case fnFindObjectsFinal:
		return b.FindObjectsFinal(u[0])
	case fnEncryptInit:
		return b.EncryptInit(u[0], a.m, u[1])
	case fnEncrypt:
		res.o, err = b.Encrypt(u[0], a.b[0], a.o)
	case fnEncryptUpdate:
		res.o, err = b.EncryptUpdate(u[0], a.b[0], a.o)
	case fnEncryptFinal:
		res.o, err = b.EncryptFinal(u[0], a.o)
	case fnDecryptInit:
		return b.DecryptInit(u[0], a.m, u[1])
	case fnDecrypt:
		res.o, err = b.Decrypt(u[0], a.b[0], a.o)
	case fnDecryptUpdate:
		res.o, err = b.DecryptUpdate(u[0], a.b[0], a.o)
	case fnDecryptFinal:
		res.o, err = b.DecryptFinal(u[0], a.o)
	case fnDigestInit:
		return b.DigestInit(u[0], a.m)
	case fnDigest:
		res.o, err = b.Digest(u[0], a.b[0], a.o)
	case fnDigestUpdate:
		return b.DigestUpdate(u[0], a.b[0])
	case fnDigestKey:
		return b.DigestKey(u[0], u[1])
	case fnDigestFinal:
		res.o, err = b.DigestFinal(u[0], a.o)
	case fnSignInit:
		return b.SignInit(u[0], a.m, u[1])
	case fnSign:
		res.o, err = b.Sign(u[0], a.b[0], a.o)
	case fnSignUpdate:
		return b.SignUpdate(u[0], a.b[0])
	case fnSignFinal:
		res.o, err = b.SignFinal(u[0], a.o)
	case fnSignRecoverInit:
		return b.SignRecoverInit(u[0], a.m, u[1])
	case fnSignRecover:
		res.o, err = b.SignRecover(u[0], a.b[0], a.o)
	case fnVerifyInit:
		return b.VerifyInit(u[0], a.m, u[1])
	case fnVerify:
		return b.Verify(u[0], a.b[0], a.b[1])
	case fnVerifyUpdate:
		return b.VerifyUpdate(u[0], a.b[0])
	case fnVerifyFinal:
		return b.VerifyFinal(u[0], a.b[0])
	case fnVerifyRecoverInit:
		return b.VerifyRecoverInit(u[0], a.m, u[1])
	case fnVerifyRecover:
		res.o, err = b.VerifyRecover(u[0], a.b[0], a.o)
	case fnDigestEncryptUpdate:
		res.o, err = b.DigestEncryptUpdate(u[0], a.b[0], a.o)
	case fnDecryptDigestUpdate:
		res.o, err = b.DecryptDigestUpdate(u[0], a.b[0], a.o)
	case fnSignEncryptUpdate:
		res.o, err = b.SignEncryptUpdate(u[0], a.b[0], a.o)
	case fnDecryptVerifyUpdate:
		res.o, err = b.DecryptVerifyUpdate(u[0], a.b[0], a.o)
	case fnGenerateKey:
		h, err = b.GenerateKey(u[0], a.m, a.t[0])
		res.p = []uint64{h}
	case fnGenerateKeyPair:
		var pub, priv uint64
		pub, priv, err = b.GenerateKeyPair(u[0], a.m, a.t[0], a.t[1])
		res.p = []uint64{pub, priv}
	case fnWrapKey:
		res.o, err = b.WrapKey(u[0], a.m, u[1], u[2], a.o)
	case fnUnwrapKey:
		h, err = b.UnwrapKey(u[0], a.m, u[1], a.b[0], a.t[0])
		res.p = []uint64{h}
	case fnDeriveKey:
		h, err = b.DeriveKey(u[0], a.m, u[1], a.t[0])
		res.p = []uint64{h}
	case fnSeedRandom:
		return b.SeedRandom(u[0], a.b[0])
	case fnGenerateRandom:
		if u[1] > wireMaxBytes {
			// The reply could not carry it (a b is at most 64 MiB).
			return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "C_GenerateRandom of %d bytes, more than %d", u[1], wireMaxBytes)
		}
		res.b, err = b.GenerateRandom(u[0], u[1])
	case fnLoginUser:
		return b.LoginUser(u[0], u[1], a.b[0], a.b[1])
	case fnSessionCancel:
		return b.SessionCancel(u[0], u[1])
	case fnMessageEncryptInit, fnEncryptMessage, fnEncryptMessageBegin, fnEncryptMessageNext,
		fnMessageEncryptFinal, fnMessageDecryptInit, fnDecryptMessage, fnDecryptMessageBegin,
		fnDecryptMessageNext, fnMessageDecryptFinal, fnMessageSignInit, fnSignMessage,
		fnSignMessageBegin, fnSignMessageNext, fnMessageSignFinal, fnMessageVerifyInit,
		fnVerifyMessage, fnVerifyMessageBegin, fnVerifyMessageNext, fnMessageVerifyFinal:
		return invokeMessage(b, id, a, res)
	case fnWaitForSlotEvent:
		h, err = b.WaitForSlotEvent(u[0], u[1])
		res.p = []uint64{h}
	case fnEncapsulateKey:
		res.o, h, err = b.EncapsulateKey(u[0], a.m, u[1], a.t[0], a.o)
		res.p = []uint64{h}
	case fnDecapsulateKey:
		h, err = b.DecapsulateKey(u[0], a.m, u[1], a.t[0], a.b[0])
		res.p = []uint64{h}
	default:
		return fmt.Errorf("no dispatcher for function %d", id)
	}
	return err
}

// list applies the two-call rule to a CK_ULONG array (C_GetSlotList,
// C_GetMechanismList): no array gets the count; a short one gets the count
// and CKR_BUFFER_TOO_SMALL.
func (res *wireResult) list(l []uint64, h Out) error {
	res.hCount = uint64(len(l))
	if !h.Present {
		return nil
	}
	if h.Cap < res.hCount {
		return hsmerr.Errorf(ck.CKR_BUFFER_TOO_SMALL, "%d elements, room for %d", res.hCount, h.Cap)
	}
	res.h, res.hCopied = l, true
	return nil
}

// check refuses Backend results that C could not copy out safely or that
// would lie to the caller. Only what will be encoded (see encodeReply) is
// checked.
func check(id int, a *wireArgs, res *wireResult, rv uint64) error {
	ok := rv == ck.CKR_OK
	for _, it := range specs[id].reply {
		switch it {
		case 'o':
			if !ok {
				continue
			}
			o, n := res.o, uint64(len(res.o.Data))
			switch {
			case !a.o.Present && o.Data != nil:
				return fmt.Errorf("%w: data for a NULL buffer", errBackendBroke)
			case a.o.Present && o.Len > a.o.Cap:
				return fmt.Errorf("%w: length %d with CKR_OK in a buffer of %d", errBackendBroke, o.Len, a.o.Cap)
			case a.o.Present && n != o.Len:
				return fmt.Errorf("%w: length %d but %d bytes of data", errBackendBroke, o.Len, n)
			case n > wireMaxBytes:
				return fmt.Errorf("%w: %d bytes of data", errBackendBroke, n)
			}
		case 'g':
			if len(res.g) != a.gCount {
				if ok {
					return fmt.Errorf("%w: %d attributes for %d asked", errBackendBroke, len(res.g), a.gCount)
				}
				continue // encoded as unavailable
			}
			for i, r := range res.g {
				if r.Inner != nil {
					if err := checkArrayResp(a.g[i], r); err != nil {
						return fmt.Errorf("%w: attribute %d: %v", errBackendBroke, i, err)
					}
					continue
				}
				if r.Data == nil {
					continue
				}
				n := uint64(len(r.Data))
				if !a.g[i].Present || n > a.g[i].Cap || n != r.Len || n > wireMaxBytes {
					return fmt.Errorf("%w: attribute %d: %d bytes of data, length %d, buffer present %v of %d",
						errBackendBroke, i, n, r.Len, a.g[i].Present, a.g[i].Cap)
				}
			}
		case 'y':
			if ok {
				if err := checkMsgOut(a, res.y); err != nil {
					return err
				}
			}
		case 'b':
			if ok && uint64(len(res.b)) != a.u[1] {
				return fmt.Errorf("%w: %d random bytes for %d asked", errBackendBroke, len(res.b), a.u[1])
			}
		}
	}
	return nil
}

// encodeReply writes the CK_RV and every reply item of function id. Items
// are written as PKCS#11 has C use them for rv: lengths for CKR_OK and
// CKR_BUFFER_TOO_SMALL, data, handles and structures for CKR_OK only, the
// attributes whatever rv; zeros otherwise. An attribute the Backend did not
// answer is CK_UNAVAILABLE_INFORMATION.
func encodeReply(w *wireWriter, id int, rv uint64, a *wireArgs, res *wireResult) {
	w.u64(rv)
	ok := rv == ck.CKR_OK
	lenOK := ok || rv == ck.CKR_BUFFER_TOO_SMALL
	np := 0
	for _, it := range specs[id].reply {
		switch it {
		case 'o':
			if lenOK {
				w.u64(res.o.Len)
			} else {
				w.u64(0)
			}
			if ok {
				w.copied(res.o.Data)
			} else {
				w.u8(0)
			}
		case 'h':
			if lenOK {
				w.u64(res.hCount)
			} else {
				w.u64(0)
			}
			if ok && res.hCopied {
				w.u8(1)
				for _, v := range res.h {
					w.u64(v)
				}
			} else {
				w.u8(0)
			}
		case 'p':
			var v uint64
			if ok && np < len(res.p) {
				v = res.p[np]
			}
			np++
			w.u64(v)
		case 's':
			s := res.s
			if !ok || s == nil {
				s = zeroInfo(id)
			}
			w.info(s)
		case 'g':
			for i := 0; i < a.gCount; i++ {
				if len(res.g) == a.gCount {
					w.attrResp(res.g[i])
				} else {
					w.u64(ckUnavailableInformation)
					w.u8(0)
				}
			}
		case 'b':
			if ok {
				w.bytes(res.b)
			} else {
				w.u32(0)
			}
		case 'y':
			res.y.encode(w, ok)
		case 'e':
			e := res.e
			if ok {
				e = ""
			}
			if len(e) > wireMaxReport {
				e = e[:wireMaxReport]
			}
			w.bytes([]byte(e))
		}
	}
}

// Serve is the fork helper's loop: it reads u32-length-prefixed request
// frames from r and writes each reply, length-prefixed, to w, until r ends.
// A clean end of input (between frames) returns nil; a frame over 80 MiB, a
// frame cut short or a failed write returns an error.
func (d *Dispatcher) Serve(r io.Reader, w io.Writer) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var hdr [4]byte
	var small []byte // request buffer reused for frames up to 1 MiB
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if err == io.EOF {
				return nil
			}
			return fmt.Errorf("p11 helper: reading a frame length: %w", err)
		}
		n := binary.LittleEndian.Uint32(hdr[:])
		if n > wireMaxFrame {
			return fmt.Errorf("p11 helper: frame of %d bytes, more than %d", n, wireMaxFrame)
		}
		var req []byte
		if n <= 1<<20 {
			if cap(small) < int(n) {
				small = make([]byte, n, max(int(n), 4<<10))
			}
			req = small[:n]
		} else {
			req = make([]byte, n)
		}
		if _, err := io.ReadFull(br, req); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("p11 helper: reading a frame of %d bytes: %w", n, err)
		}
		reply := wireWriter{buf: make([]byte, 4, 256)}
		d.call(req, &reply)
		binary.LittleEndian.PutUint32(reply.buf, uint32(len(reply.buf)-4))
		if _, err := w.Write(reply.buf); err != nil {
			return fmt.Errorf("p11 helper: writing a reply: %w", err)
		}
	}
}

// checkArrayResp checks an array attribute's answer against what C asked:
// an array asked for with room, no more entries than it has, each copied
// entry within its buffer.
func checkArrayResp(q AttrReq, r AttrResp) error {
	if !q.Present || !object.IsTemplateAttr(q.Type) || len(r.Inner) > len(q.Inner) || uint64(len(r.Inner)) != r.Len || r.Data != nil {
		return fmt.Errorf("array of %d entries for %d asked", len(r.Inner), len(q.Inner))
	}
	for j, in := range r.Inner {
		if in.Data == nil {
			continue
		}
		n := uint64(len(in.Data))
		if !q.Inner[j].Present || n > q.Inner[j].Cap || n != in.Len || n > wireMaxBytes {
			return fmt.Errorf("entry %d: %d bytes for a buffer of %d", j, n, q.Inner[j].Cap)
		}
	}
	return nil
}
