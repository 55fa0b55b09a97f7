package core

// The frame codec (docs/pkcs11-library.md, "Frames"): a bounds-checked
// reader for requests, a writer for replies, and the table of functions with
// their items. p11module/wire.h holds the same ids for C; TestWireHMatches
// checks that the two agree.

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/openhsm/openhsm/object"
)

// Limits on what a frame may hold. The reader checks them before it
// allocates anything, so a frame never makes us allocate more than its own
// length (plus a bounded slice header per attribute).
const (
	wireMaxBytes = 64 << 20 // one b item
	wireMaxAttrs = 4096     // one t or g template
	wireMaxFrame = 80 << 20 // one frame on the helper's socket, either way
	wireNull     = 0xFFFFFFFF
	// wireMaxReport bounds an e item (a line for the host's log).
	wireMaxReport = 1024

	// ckUnavailableInformation is CK_UNAVAILABLE_INFORMATION (~0UL on LP64).
	ckUnavailableInformation = ^uint64(0)
)

// Function ids, as in wire.h.
const (
	fnInitialize          = 1
	fnFinalize            = 2
	fnGetInfo             = 3
	fnGetSlotList         = 4
	fnGetSlotInfo         = 5
	fnGetTokenInfo        = 6
	fnGetMechanismList    = 7
	fnGetMechanismInfo    = 8
	fnInitToken           = 9
	fnInitPIN             = 10
	fnSetPIN              = 11
	fnOpenSession         = 12
	fnCloseSession        = 13
	fnCloseAllSessions    = 14
	fnGetSessionInfo      = 15
	fnGetOperationState   = 16
	fnSetOperationState   = 17
	fnLogin               = 18
	fnLogout              = 19
	fnCreateObject        = 20
	fnCopyObject          = 21
	fnDestroyObject       = 22
	fnGetObjectSize       = 23
	fnGetAttributeValue   = 24
	fnSetAttributeValue   = 25
	fnFindObjectsInit     = 26
	fnFindObjects         = 27
	fnFindObjectsFinal    = 28
	fnEncryptInit         = 29
	fnEncrypt             = 30
	fnEncryptUpdate       = 31
	fnEncryptFinal        = 32
	fnDecryptInit         = 33
	fnDecrypt             = 34
	fnDecryptUpdate       = 35
	fnDecryptFinal        = 36
	fnDigestInit          = 37
	fnDigest              = 38
	fnDigestUpdate        = 39
	fnDigestKey           = 40
	fnDigestFinal         = 41
	fnSignInit            = 42
	fnSign                = 43
	fnSignUpdate          = 44
	fnSignFinal           = 45
	fnSignRecoverInit     = 46
	fnSignRecover         = 47
	fnVerifyInit          = 48
	fnVerify              = 49
	fnVerifyUpdate        = 50
	fnVerifyFinal         = 51
	fnVerifyRecoverInit   = 52
	fnVerifyRecover       = 53
	fnDigestEncryptUpdate = 54
	fnDecryptDigestUpdate = 55
	fnSignEncryptUpdate   = 56
	fnDecryptVerifyUpdate = 57
	fnGenerateKey         = 58
	fnGenerateKeyPair     = 59
	fnWrapKey             = 60
	fnUnwrapKey           = 61
	fnDeriveKey           = 62
	fnSeedRandom          = 63
	fnGenerateRandom      = 64
	fnLoginUser           = 65
	fnSessionCancel       = 66

	// The message-based functions (v3.0): message.go.
	fnMessageEncryptInit  = 70
	fnEncryptMessage      = 71
	fnEncryptMessageBegin = 72
	fnEncryptMessageNext  = 73
	fnMessageEncryptFinal = 74
	fnMessageDecryptInit  = 75
	fnDecryptMessage      = 76
	fnDecryptMessageBegin = 77
	fnDecryptMessageNext  = 78
	fnMessageDecryptFinal = 79
	fnMessageSignInit     = 80
	fnSignMessage         = 81
	fnSignMessageBegin    = 82
	fnSignMessageNext     = 83
	fnMessageSignFinal    = 84
	fnMessageVerifyInit   = 85
	fnVerifyMessage       = 86
	fnVerifyMessageBegin  = 87
	fnVerifyMessageNext   = 88
	fnMessageVerifyFinal  = 89
	// Operation life cycle and slot events: ids 96-99.
	fnWaitForSlotEvent = 96
	// PKCS#11 v3.2 key encapsulation (ids 90-95 are the post-quantum
	// block).
	fnEncapsulateKey = 90
	fnDecapsulateKey = 91
)

// wireFunc is one function that crosses in a frame: its C name and its items
// exactly as wire.h writes them (request items, "->", reply items; "-" for
// none).
type wireFunc struct {
	name  string
	items string
}

// functions is indexed by function id; entry 0 is unused.
var functions = [...]wireFunc{
	fnInitialize:          {"C_Initialize", "u b -> e"},
	fnFinalize:            {"C_Finalize", "-"},
	fnGetInfo:             {"C_GetInfo", "-> s"},
	fnGetSlotList:         {"C_GetSlotList", "u h -> h"},
	fnGetSlotInfo:         {"C_GetSlotInfo", "u -> s"},
	fnGetTokenInfo:        {"C_GetTokenInfo", "u -> s"},
	fnGetMechanismList:    {"C_GetMechanismList", "u h -> h"},
	fnGetMechanismInfo:    {"C_GetMechanismInfo", "u u -> s"},
	fnInitToken:           {"C_InitToken", "u b b"},
	fnInitPIN:             {"C_InitPIN", "u b"},
	fnSetPIN:              {"C_SetPIN", "u b b"},
	fnOpenSession:         {"C_OpenSession", "u u -> p"},
	fnCloseSession:        {"C_CloseSession", "u"},
	fnCloseAllSessions:    {"C_CloseAllSessions", "u"},
	fnGetSessionInfo:      {"C_GetSessionInfo", "u -> s"},
	fnGetOperationState:   {"C_GetOperationState", "u o -> o"},
	fnSetOperationState:   {"C_SetOperationState", "u b u u"},
	fnLogin:               {"C_Login", "u u b"},
	fnLogout:              {"C_Logout", "u"},
	fnCreateObject:        {"C_CreateObject", "u t -> p"},
	fnCopyObject:          {"C_CopyObject", "u u t -> p"},
	fnDestroyObject:       {"C_DestroyObject", "u u"},
	fnGetObjectSize:       {"C_GetObjectSize", "u u -> p"},
	fnGetAttributeValue:   {"C_GetAttributeValue", "u u g -> g"},
	fnSetAttributeValue:   {"C_SetAttributeValue", "u u t"},
	fnFindObjectsInit:     {"C_FindObjectsInit", "u t"},
	fnFindObjects:         {"C_FindObjects", "u h -> h"},
	fnFindObjectsFinal:    {"C_FindObjectsFinal", "u"},
	fnEncryptInit:         {"C_EncryptInit", "u m u"},
	fnEncrypt:             {"C_Encrypt", "u b o -> o"},
	fnEncryptUpdate:       {"C_EncryptUpdate", "u b o -> o"},
	fnEncryptFinal:        {"C_EncryptFinal", "u o -> o"},
	fnDecryptInit:         {"C_DecryptInit", "u m u"},
	fnDecrypt:             {"C_Decrypt", "u b o -> o"},
	fnDecryptUpdate:       {"C_DecryptUpdate", "u b o -> o"},
	fnDecryptFinal:        {"C_DecryptFinal", "u o -> o"},
	fnDigestInit:          {"C_DigestInit", "u m"},
	fnDigest:              {"C_Digest", "u b o -> o"},
	fnDigestUpdate:        {"C_DigestUpdate", "u b"},
	fnDigestKey:           {"C_DigestKey", "u u"},
	fnDigestFinal:         {"C_DigestFinal", "u o -> o"},
	fnSignInit:            {"C_SignInit", "u m u"},
	fnSign:                {"C_Sign", "u b o -> o"},
	fnSignUpdate:          {"C_SignUpdate", "u b"},
	fnSignFinal:           {"C_SignFinal", "u o -> o"},
	fnSignRecoverInit:     {"C_SignRecoverInit", "u m u"},
	fnSignRecover:         {"C_SignRecover", "u b o -> o"},
	fnVerifyInit:          {"C_VerifyInit", "u m u"},
	fnVerify:              {"C_Verify", "u b b"},
	fnVerifyUpdate:        {"C_VerifyUpdate", "u b"},
	fnVerifyFinal:         {"C_VerifyFinal", "u b"},
	fnVerifyRecoverInit:   {"C_VerifyRecoverInit", "u m u"},
	fnVerifyRecover:       {"C_VerifyRecover", "u b o -> o"},
	fnDigestEncryptUpdate: {"C_DigestEncryptUpdate", "u b o -> o"},
	fnDecryptDigestUpdate: {"C_DecryptDigestUpdate", "u b o -> o"},
	fnSignEncryptUpdate:   {"C_SignEncryptUpdate", "u b o -> o"},
	fnDecryptVerifyUpdate: {"C_DecryptVerifyUpdate", "u b o -> o"},
	fnGenerateKey:         {"C_GenerateKey", "u m t -> p"},
	fnGenerateKeyPair:     {"C_GenerateKeyPair", "u m t t -> p p"},
	fnWrapKey:             {"C_WrapKey", "u m u u o -> o"},
	fnUnwrapKey:           {"C_UnwrapKey", "u m u b t -> p"},
	fnDeriveKey:           {"C_DeriveKey", "u m u t -> p"},
	fnSeedRandom:          {"C_SeedRandom", "u b"},
	fnGenerateRandom:      {"C_GenerateRandom", "u u -> b"},
	fnLoginUser:           {"C_LoginUser", "u u b b"},
	fnSessionCancel:       {"C_SessionCancel", "u u"},

	fnMessageEncryptInit:  {"C_MessageEncryptInit", "u u x u"},
	fnEncryptMessage:      {"C_EncryptMessage", "u x b b o -> o y"},
	fnEncryptMessageBegin: {"C_EncryptMessageBegin", "u x b -> y"},
	fnEncryptMessageNext:  {"C_EncryptMessageNext", "u x b o u -> o y"},
	fnMessageEncryptFinal: {"C_MessageEncryptFinal", "u"},
	fnMessageDecryptInit:  {"C_MessageDecryptInit", "u u x u"},
	fnDecryptMessage:      {"C_DecryptMessage", "u x b b o -> o"},
	fnDecryptMessageBegin: {"C_DecryptMessageBegin", "u x b"},
	fnDecryptMessageNext:  {"C_DecryptMessageNext", "u x b o u -> o"},
	fnMessageDecryptFinal: {"C_MessageDecryptFinal", "u"},
	fnMessageSignInit:     {"C_MessageSignInit", "u m u"},
	fnSignMessage:         {"C_SignMessage", "u x b o -> o"},
	fnSignMessageBegin:    {"C_SignMessageBegin", "u x"},
	fnSignMessageNext:     {"C_SignMessageNext", "u x b o u -> o"},
	fnMessageSignFinal:    {"C_MessageSignFinal", "u"},
	fnMessageVerifyInit:   {"C_MessageVerifyInit", "u m u"},
	fnVerifyMessage:       {"C_VerifyMessage", "u x b b"},
	fnVerifyMessageBegin:  {"C_VerifyMessageBegin", "u x"},
	fnVerifyMessageNext:   {"C_VerifyMessageNext", "u x b b"},
	fnMessageVerifyFinal:  {"C_MessageVerifyFinal", "u"},
	// C_WaitForSlotEvent: flags and how long to wait at most (ms) -> the
	// slot (slotevents.go).
	fnWaitForSlotEvent: {"C_WaitForSlotEvent", "u u -> p"},
	fnEncapsulateKey:   {"C_EncapsulateKey", "u m u t o -> o p"},
	fnDecapsulateKey:   {"C_DecapsulateKey", "u m u t b -> p"},
}

// wireSpec is a function's items, parsed: one byte per item.
type wireSpec struct {
	req, reply []byte
}

// specs is functions parsed once; the codec is driven by it, so the item
// strings above are what the dispatcher really reads and writes.
var specs = func() (s [len(functions)]wireSpec) {
	for id, f := range functions {
		if f.name == "" {
			continue
		}
		sp, err := parseItems(f.items)
		if err != nil {
			panic(fmt.Sprintf("core: functions[%d] %s: %v", id, f.name, err))
		}
		s[id] = sp
	}
	return s
}()

// parseItems parses an item string such as "u b o -> o". A request holds at
// most one o, g, h and m (the dispatcher keeps one of each), and a reply o,
// g or h answers the request's.
func parseItems(items string) (wireSpec, error) {
	var sp wireSpec
	reqPart, replyPart, hasReply := strings.Cut(items, "->")
	parse := func(part, allowed string) ([]byte, error) {
		f := strings.Fields(part)
		if len(f) == 1 && f[0] == "-" {
			return nil, nil
		}
		var out []byte
		for _, it := range f {
			if len(it) != 1 || !strings.Contains(allowed, it) {
				return nil, fmt.Errorf("bad item %q", it)
			}
			out = append(out, it[0])
		}
		return out, nil
	}
	var err error
	if sp.req, err = parse(reqPart, "ubotgmhx"); err != nil {
		return sp, err
	}
	if hasReply {
		if sp.reply, err = parse(replyPart, "oghpsbey"); err != nil {
			return sp, err
		}
		if len(sp.reply) == 0 {
			return sp, fmt.Errorf("empty reply after ->")
		}
	}
	for _, c := range []byte("ogmhx") {
		if strings.Count(string(sp.req), string(c)) > 1 {
			return sp, fmt.Errorf("more than one %c in the request", c)
		}
	}
	for _, c := range []byte("ogh") {
		in := strings.Count(string(sp.req), string(c))
		out := strings.Count(string(sp.reply), string(c))
		if out > in {
			return sp, fmt.Errorf("reply %c without a request %c", c, c)
		}
	}
	if strings.Count(string(sp.reply), "s") > 1 || strings.Count(string(sp.reply), "b") > 1 || strings.Count(string(sp.reply), "e") > 1 {
		return sp, fmt.Errorf("more than one s, b or e in the reply")
	}
	if strings.Count(string(sp.reply), "y") > strings.Count(string(sp.req), "x") {
		return sp, fmt.Errorf("reply y without a request x")
	}
	return sp, nil
}

// functionName is the C name of a function id, or "" when it is unknown.
func functionName(id uint32) string {
	if id < uint32(len(functions)) {
		return functions[id].name
	}
	return ""
}

// wireReader reads a frame. It never panics: a read past the end, or a value
// out of bounds, sets err, and every later read returns zero values.
type wireReader struct {
	buf []byte // what is left
	off int    // how much was read, for error messages
	err error
}

func (r *wireReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("frame offset %d: %s", r.off, fmt.Sprintf(format, args...))
	}
}

// take returns the next n bytes (a view of the frame), or nil and an error.
func (r *wireReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.buf) {
		r.fail("%d bytes wanted, %d left", n, len(r.buf))
		return nil
	}
	b := r.buf[:n:n]
	r.buf = r.buf[n:]
	r.off += n
	return b
}

func (r *wireReader) u8() uint8 {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *wireReader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *wireReader) u64() uint64 {
	if b := r.take(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

// flag reads a u8 that C writes as 0 or 1 (present, copied).
func (r *wireReader) flag() bool {
	v := r.u8()
	if v > 1 {
		r.fail("flag %d is neither 0 nor 1", v)
	}
	return v == 1
}

// bytes reads a b item into a fresh slice: nil with null set for a NULL
// pointer, a non-nil (possibly empty) slice otherwise. The copy means
// nothing the Backend keeps refers to the caller's frame.
func (r *wireReader) bytes() (b []byte, null bool) {
	n := r.u32()
	if r.err != nil {
		return nil, false
	}
	if n == wireNull {
		return nil, true
	}
	if n > wireMaxBytes {
		r.fail("byte string of %d bytes, more than %d", n, wireMaxBytes)
		return nil, false
	}
	src := r.take(int(n))
	if src == nil {
		return nil, false
	}
	b = make([]byte, n)
	copy(b, src)
	return b, false
}

// bytesNoNull reads a b item where the Go side has no NULL flag: NULL is nil,
// an empty string is a non-nil empty slice.
func (r *wireReader) bytesNoNull() []byte {
	b, _ := r.bytes()
	return b
}

// out reads an o item (or an h item, whose capacity counts elements). The
// capacity is only a number: nothing is allocated for it.
func (r *wireReader) out() Out {
	present := r.flag()
	c := r.u64()
	return Out{Present: present, Cap: c}
}

// count reads a template's u32 count and checks it against the limit and
// against what is left of the frame (each entry is at least minEntry bytes).
// It returns -1 when the count could not be read or is over the limit, and
// otherwise the count, even when the entries are short (err is then set).
func (r *wireReader) count(minEntry int) int {
	c := r.u32()
	if r.err != nil {
		return -1
	}
	if c > wireMaxAttrs {
		r.fail("template of %d attributes, more than %d", c, wireMaxAttrs)
		return -1
	}
	if int(c)*minEntry > len(r.buf) {
		r.fail("template of %d attributes in %d bytes", c, len(r.buf))
	}
	return int(c)
}

// template reads a t item.
func (r *wireReader) template() []Attr {
	n := r.count(8 + 4)
	if r.err != nil {
		return nil
	}
	t := make([]Attr, n)
	for i := range t {
		t[i].Type = r.u64()
		t[i].Value, t[i].Null = r.bytes()
		if r.err != nil {
			return nil
		}
	}
	return t
}

// getTemplate reads a g item; n is its count (see count), which the reply
// needs even when the entries do not decode.
func (r *wireReader) getTemplate() (req []AttrReq, n int) {
	n = r.count(8 + 1 + 8)
	if r.err != nil {
		return nil, n
	}
	req = make([]AttrReq, n)
	for i := range req {
		req[i].Type = r.u64()
		req[i].Present = r.flag()
		req[i].Cap = r.u64()
		if req[i].Present && object.IsTemplateAttr(req[i].Type) {
			req[i].Inner = r.arrayReq()
		}
	}
	if r.err != nil {
		return nil, n
	}
	return req, n
}

// mechanism reads an m item.
func (r *wireReader) mechanism() Mechanism {
	var m Mechanism
	m.Type = r.u64()
	m.Kind = r.u8()
	switch m.Kind {
	case 0:
	case 1:
		m.Raw = r.bytesNoNull()
	case 2:
		m.IV = r.bytesNoNull()
		m.IVBits = r.u64()
		m.AAD = r.bytesNoNull()
		m.TagBits = r.u64()
	case 3:
		m.Hash = r.u64()
		m.MGF = r.u64()
		m.Source = r.u64()
		m.SourceData = r.bytesNoNull()
	case 4:
		m.KDF = r.u64()
		m.SharedData = r.bytesNoNull()
		m.PublicData = r.bytesNoNull()
	case 5:
		// A CK_BBOOL straight from the caller's structure: any non-zero
		// byte is true.
		m.PHFlag = r.u8() != 0
		m.Context = r.bytesNoNull()
	case mechKindNull:
		// No CK_MECHANISM at all; the type is written as 0.
		m.Null = true
		if m.Type != 0 {
			r.fail("NULL mechanism with type %#x", m.Type)
		}
	case 6:
		m.Fields = r.layoutFields()
	case mkSignContext:
		m.Hedge = r.u64()
		m.Context = r.bytesNoNull()
	default:
		r.fail("mechanism kind %d", m.Kind)
	}
	return m
}

// wireArgs is a decoded request: the items in order, by kind.
type wireArgs struct {
	u      []uint64
	b      [][]byte // nil for NULL
	t      [][]Attr
	o      Out
	h      Out // capacity in elements
	m      Mechanism
	g      []AttrReq
	gCount int // the g count when it was read, else -1 (or 0 without g)
	x      MsgParam
}

// decodeArgs reads a request's items after the function id; the whole frame
// must be used.
func decodeArgs(r *wireReader, req []byte) (*wireArgs, error) {
	a := &wireArgs{}
	for _, it := range req {
		switch it {
		case 'u':
			a.u = append(a.u, r.u64())
		case 'b':
			a.b = append(a.b, r.bytesNoNull())
		case 't':
			a.t = append(a.t, r.template())
		case 'o':
			a.o = r.out()
		case 'h':
			a.h = r.out()
		case 'm':
			a.m = r.mechanism()
		case 'g':
			a.g, a.gCount = r.getTemplate()
		case 'x':
			a.x = r.msgParam()
		}
		if r.err != nil {
			return a, r.err
		}
	}
	if len(r.buf) != 0 {
		r.fail("%d bytes after the last item", len(r.buf))
		return a, r.err
	}
	return a, nil
}

// wireWriter builds a reply.
type wireWriter struct {
	buf []byte
}

func (w *wireWriter) u8(v uint8)   { w.buf = append(w.buf, v) }
func (w *wireWriter) u32(v uint32) { w.buf = binary.LittleEndian.AppendUint32(w.buf, v) }
func (w *wireWriter) u64(v uint64) { w.buf = binary.LittleEndian.AppendUint64(w.buf, v) }
func (w *wireWriter) raw(b []byte) { w.buf = append(w.buf, b...) }

// bytes writes a reply b: u32 n and n bytes. The caller has checked that n
// is at most wireMaxBytes.
func (w *wireWriter) bytes(b []byte) {
	w.u32(uint32(len(b)))
	w.raw(b)
}

// copied writes the "u8 copied, and if copied u32 n + n bytes" tail of an o
// or g reply.
func (w *wireWriter) copied(b []byte) {
	if b == nil {
		w.u8(0)
		return
	}
	w.u8(1)
	w.bytes(b)
}

// info writes an s item: the fields in declaration order, fixed arrays as
// their bytes, CK_ULONG and CK_FLAGS as u64, CK_VERSION as 2 bytes. Sizes:
// CK_INFO 76, CK_SLOT_INFO 108, CK_TOKEN_INFO 204, CK_SESSION_INFO 32,
// CK_MECHANISM_INFO 24.
func (w *wireWriter) info(v any) {
	switch v := v.(type) {
	case Info:
		w.raw(v.CryptokiVersion[:])
		w.raw(v.ManufacturerID[:])
		w.u64(v.Flags)
		w.raw(v.LibraryDescription[:])
		w.raw(v.LibraryVersion[:])
	case SlotInfo:
		w.raw(v.SlotDescription[:])
		w.raw(v.ManufacturerID[:])
		w.u64(v.Flags)
		w.raw(v.HardwareVersion[:])
		w.raw(v.FirmwareVersion[:])
	case TokenInfo:
		w.raw(v.Label[:])
		w.raw(v.ManufacturerID[:])
		w.raw(v.Model[:])
		w.raw(v.SerialNumber[:])
		w.u64(v.Flags)
		w.u64(v.MaxSessionCount)
		w.u64(v.SessionCount)
		w.u64(v.MaxRwSessionCount)
		w.u64(v.RwSessionCount)
		w.u64(v.MaxPinLen)
		w.u64(v.MinPinLen)
		w.u64(v.TotalPublicMemory)
		w.u64(v.FreePublicMemory)
		w.u64(v.TotalPrivateMemory)
		w.u64(v.FreePrivateMemory)
		w.raw(v.HardwareVersion[:])
		w.raw(v.FirmwareVersion[:])
		w.raw(v.UTCTime[:])
	case SessionInfo:
		w.u64(v.SlotID)
		w.u64(v.State)
		w.u64(v.Flags)
		w.u64(v.DeviceError)
	case MechanismInfo:
		w.u64(v.MinKeySize)
		w.u64(v.MaxKeySize)
		w.u64(v.Flags)
	default:
		panic(fmt.Sprintf("core: no s encoding for %T", v))
	}
}

// zeroInfo is the zero structure that function id answers with.
func zeroInfo(id int) any {
	switch id {
	case fnGetInfo:
		return Info{}
	case fnGetSlotInfo:
		return SlotInfo{}
	case fnGetTokenInfo:
		return TokenInfo{}
	case fnGetSessionInfo:
		return SessionInfo{}
	case fnGetMechanismInfo:
		return MechanismInfo{}
	}
	return nil
}

// ---- operation life cycle (docs/pkcs11-library.md, "Operation life cycle") ----

// mechKindNull is the m item of a NULL CK_MECHANISM_PTR (MK_NULL in
// frame.c), which C_*Init sends to cancel an operation.
const mechKindNull = 0xFF

// Limits of a kind 6 mechanism parameter, as C's layout table has them.
const (
	wireMaxLayoutFields = 8
	wireMaxPRFData      = 64
)

// layoutFields reads the fields of a kind 6 mechanism parameter.
func (r *wireReader) layoutFields() []LayoutField {
	n := int(r.u8())
	if r.err != nil {
		return nil
	}
	if n > wireMaxLayoutFields {
		r.fail("%d parameter fields, more than %d", n, wireMaxLayoutFields)
		return nil
	}
	out := make([]LayoutField, n)
	for i := range out {
		f := &out[i]
		f.Tag = r.u8()
		switch f.Tag {
		case 1:
			f.U = r.u64()
		case 2:
			f.U = uint64(r.u8())
		case 3:
			f.B = r.bytesNoNull()
		case 4:
			c := r.u32()
			if r.err != nil {
				return nil
			}
			if c > wireMaxPRFData || int(c)*(8+4) > len(r.buf) {
				r.fail("%d data parameters", c)
				return nil
			}
			f.List = make([]PRFData, c)
			for j := range f.List {
				f.List[j].Type = r.u64()
				f.List[j].Value = r.bytesNoNull()
			}
		default:
			r.fail("parameter field tag %d", f.Tag)
		}
		if r.err != nil {
			return nil
		}
	}
	return out
}

// wireMaxArray bounds an array attribute's entries in a g item, as C's
// G_ARRAY_MAX does.
const wireMaxArray = 64

// arrayReq reads the entries of an array attribute asked for with room:
// u32 count, then per entry u8 present and u64 capacity.
func (r *wireReader) arrayReq() []AttrReq {
	n := r.u32()
	if r.err != nil {
		return nil
	}
	if n > wireMaxArray || int(n)*9 > len(r.buf) {
		r.fail("array attribute of %d entries", n)
		return nil
	}
	out := make([]AttrReq, n)
	for i := range out {
		out[i].Present = r.flag()
		out[i].Cap = r.u64()
	}
	return out
}

// attrResp writes one g reply entry: for an array attribute whose entries
// are answered, copied 1 then its entries; otherwise the copied tail.
func (w *wireWriter) attrResp(r AttrResp) {
	w.u64(r.Len)
	if r.Inner == nil {
		w.copied(r.Data)
		return
	}
	w.u8(1)
	w.u32(uint32(len(r.Inner)))
	for _, in := range r.Inner {
		w.u64(in.Type)
		w.u64(in.Len)
		w.copied(in.Data)
	}
}
