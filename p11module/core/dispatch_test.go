package core

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

// ---- a recording Backend ----

// recCall is one Backend call with its decoded arguments.
type recCall struct {
	Name string
	Args []any
}

func rc(name string, args ...any) *recCall { return &recCall{Name: name, Args: args} }

// recBackend records every call and returns set values. With err set, every
// method fails with it but still returns its non-zero values, so the tests
// see that the dispatcher does not pass them on.
type recBackend struct {
	mu    sync.Mutex
	calls []recCall
	noRec bool // do not keep calls (fuzzing, concurrency)

	err    error // returned by every method
	panicV any   // when non-nil, every method panics with it

	data     []byte     // what o methods produce; the two-call rule is applied honestly
	rawOut   *OutResult // when set, o methods return it as is
	list     []uint64   // slot, mechanism and object lists
	handle   uint64
	handle2  uint64
	info     Info
	slot     SlotInfo
	token    TokenInfo
	session  SessionInfo
	mechInfo MechanismInfo
	attrs    map[uint64][]byte // GetAttributeValue, answered honestly
	rawResps []AttrResp        // when set, GetAttributeValue returns it as is
	random   []byte            // when set, GenerateRandom returns it; else n bytes
}

func (b *recBackend) rec(name string, args ...any) error {
	b.mu.Lock()
	if !b.noRec {
		b.calls = append(b.calls, recCall{name, args})
	}
	b.mu.Unlock()
	if b.panicV != nil {
		panic(b.panicV)
	}
	return b.err
}

func (b *recBackend) ncalls() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.calls)
}

func (b *recBackend) outFor(out Out) (OutResult, error) {
	if b.rawOut != nil {
		return *b.rawOut, b.err
	}
	n := uint64(len(b.data))
	switch {
	case b.err != nil:
		return OutResult{Len: n + 1, Data: b.data}, b.err
	case !out.Present:
		return OutResult{Len: n}, nil
	case out.Cap < n:
		return OutResult{Len: n}, hsmerr.Errorf(ck.CKR_BUFFER_TOO_SMALL, "short")
	}
	return OutResult{Len: n, Data: bytes.Clone(b.data)}, nil
}

func (b *recBackend) o(name string, out Out, args ...any) (OutResult, error) {
	b.rec(name, args...)
	return b.outFor(out)
}

func (b *recBackend) Initialize(flags uint64) error { return b.rec("Initialize", flags) }
func (b *recBackend) Finalize() error               { return b.rec("Finalize") }
func (b *recBackend) GetInfo() (Info, error)        { return b.info, b.rec("GetInfo") }
func (b *recBackend) GetSlotList(tokenPresent bool) ([]uint64, error) {
	return b.list, b.rec("GetSlotList", tokenPresent)
}
func (b *recBackend) GetSlotInfo(slot uint64) (SlotInfo, error) {
	return b.slot, b.rec("GetSlotInfo", slot)
}
func (b *recBackend) GetTokenInfo(slot uint64) (TokenInfo, error) {
	return b.token, b.rec("GetTokenInfo", slot)
}
func (b *recBackend) GetMechanismList(slot uint64) ([]uint64, error) {
	return b.list, b.rec("GetMechanismList", slot)
}
func (b *recBackend) GetMechanismInfo(slot, mech uint64) (MechanismInfo, error) {
	return b.mechInfo, b.rec("GetMechanismInfo", slot, mech)
}
func (b *recBackend) InitToken(slot uint64, soPIN, label []byte) error {
	return b.rec("InitToken", slot, soPIN, label)
}
func (b *recBackend) InitPIN(sh uint64, pin []byte) error { return b.rec("InitPIN", sh, pin) }
func (b *recBackend) SetPIN(sh uint64, oldPIN, newPIN []byte) error {
	return b.rec("SetPIN", sh, oldPIN, newPIN)
}
func (b *recBackend) OpenSession(slot, flags uint64) (uint64, error) {
	return b.handle, b.rec("OpenSession", slot, flags)
}
func (b *recBackend) CloseSession(sh uint64) error       { return b.rec("CloseSession", sh) }
func (b *recBackend) CloseAllSessions(slot uint64) error { return b.rec("CloseAllSessions", slot) }
func (b *recBackend) GetSessionInfo(sh uint64) (SessionInfo, error) {
	return b.session, b.rec("GetSessionInfo", sh)
}
func (b *recBackend) GetOperationState(sh uint64, out Out) (OutResult, error) {
	return b.o("GetOperationState", out, sh, out)
}
func (b *recBackend) SetOperationState(sh uint64, state []byte, encKey, authKey uint64) error {
	return b.rec("SetOperationState", sh, state, encKey, authKey)
}
func (b *recBackend) Login(sh, userType uint64, pin []byte) error {
	return b.rec("Login", sh, userType, pin)
}
func (b *recBackend) LoginUser(sh, userType uint64, pin, username []byte) error {
	return b.rec("LoginUser", sh, userType, pin, username)
}
func (b *recBackend) Logout(sh uint64) error               { return b.rec("Logout", sh) }
func (b *recBackend) SessionCancel(sh, flags uint64) error { return b.rec("SessionCancel", sh, flags) }
func (b *recBackend) WaitForSlotEvent(flags, waitMs uint64) (uint64, error) {
	return b.handle, b.rec("WaitForSlotEvent", flags, waitMs)
}
func (b *recBackend) CreateObject(sh uint64, t []Attr) (uint64, error) {
	return b.handle, b.rec("CreateObject", sh, t)
}
func (b *recBackend) CopyObject(sh, obj uint64, t []Attr) (uint64, error) {
	return b.handle, b.rec("CopyObject", sh, obj, t)
}
func (b *recBackend) DestroyObject(sh, obj uint64) error { return b.rec("DestroyObject", sh, obj) }
func (b *recBackend) GetObjectSize(sh, obj uint64) (uint64, error) {
	return b.handle, b.rec("GetObjectSize", sh, obj)
}
func (b *recBackend) GetAttributeValue(sh, obj uint64, req []AttrReq) ([]AttrResp, error) {
	err := b.rec("GetAttributeValue", sh, obj, req)
	if b.rawResps != nil {
		return b.rawResps, err
	}
	resps := make([]AttrResp, len(req))
	for i, r := range req {
		v, ok := b.attrs[r.Type]
		switch {
		case !ok:
			resps[i].Len = ckUnavailableInformation
			if err == nil {
				err = hsmerr.Errorf(ck.CKR_ATTRIBUTE_TYPE_INVALID, "no %#x", r.Type)
			}
		case !r.Present:
			resps[i].Len = uint64(len(v))
		case r.Cap < uint64(len(v)):
			resps[i].Len = uint64(len(v))
			if err == nil {
				err = hsmerr.Errorf(ck.CKR_BUFFER_TOO_SMALL, "short")
			}
		default:
			resps[i] = AttrResp{Len: uint64(len(v)), Data: bytes.Clone(v)}
		}
	}
	return resps, err
}
func (b *recBackend) SetAttributeValue(sh, obj uint64, t []Attr) error {
	return b.rec("SetAttributeValue", sh, obj, t)
}
func (b *recBackend) FindObjectsInit(sh uint64, t []Attr) error {
	return b.rec("FindObjectsInit", sh, t)
}
func (b *recBackend) FindObjects(sh uint64, max uint64) ([]uint64, error) {
	return b.list, b.rec("FindObjects", sh, max)
}
func (b *recBackend) FindObjectsFinal(sh uint64) error { return b.rec("FindObjectsFinal", sh) }
func (b *recBackend) EncryptInit(sh uint64, m Mechanism, key uint64) error {
	return b.rec("EncryptInit", sh, m, key)
}
func (b *recBackend) DecryptInit(sh uint64, m Mechanism, key uint64) error {
	return b.rec("DecryptInit", sh, m, key)
}
func (b *recBackend) DigestInit(sh uint64, m Mechanism) error { return b.rec("DigestInit", sh, m) }
func (b *recBackend) SignInit(sh uint64, m Mechanism, key uint64) error {
	return b.rec("SignInit", sh, m, key)
}
func (b *recBackend) VerifyInit(sh uint64, m Mechanism, key uint64) error {
	return b.rec("VerifyInit", sh, m, key)
}
func (b *recBackend) SignRecoverInit(sh uint64, m Mechanism, key uint64) error {
	return b.rec("SignRecoverInit", sh, m, key)
}
func (b *recBackend) VerifyRecoverInit(sh uint64, m Mechanism, key uint64) error {
	return b.rec("VerifyRecoverInit", sh, m, key)
}
func (b *recBackend) Encrypt(sh uint64, data []byte, out Out) (OutResult, error) {
	return b.o("Encrypt", out, sh, data, out)
}
func (b *recBackend) EncryptUpdate(sh uint64, part []byte, out Out) (OutResult, error) {
	return b.o("EncryptUpdate", out, sh, part, out)
}
func (b *recBackend) EncryptFinal(sh uint64, out Out) (OutResult, error) {
	return b.o("EncryptFinal", out, sh, out)
}
func (b *recBackend) Decrypt(sh uint64, data []byte, out Out) (OutResult, error) {
	return b.o("Decrypt", out, sh, data, out)
}
func (b *recBackend) DecryptUpdate(sh uint64, part []byte, out Out) (OutResult, error) {
	return b.o("DecryptUpdate", out, sh, part, out)
}
func (b *recBackend) DecryptFinal(sh uint64, out Out) (OutResult, error) {
	return b.o("DecryptFinal", out, sh, out)
}
func (b *recBackend) Digest(sh uint64, data []byte, out Out) (OutResult, error) {
	return b.o("Digest", out, sh, data, out)
}
func (b *recBackend) DigestUpdate(sh uint64, part []byte) error {
	return b.rec("DigestUpdate", sh, part)
}
func (b *recBackend) DigestKey(sh uint64, key uint64) error { return b.rec("DigestKey", sh, key) }
func (b *recBackend) DigestFinal(sh uint64, out Out) (OutResult, error) {
	return b.o("DigestFinal", out, sh, out)
}
func (b *recBackend) Sign(sh uint64, data []byte, out Out) (OutResult, error) {
	return b.o("Sign", out, sh, data, out)
}
func (b *recBackend) SignUpdate(sh uint64, part []byte) error { return b.rec("SignUpdate", sh, part) }
func (b *recBackend) SignFinal(sh uint64, out Out) (OutResult, error) {
	return b.o("SignFinal", out, sh, out)
}
func (b *recBackend) SignRecover(sh uint64, data []byte, out Out) (OutResult, error) {
	return b.o("SignRecover", out, sh, data, out)
}
func (b *recBackend) Verify(sh uint64, data, sig []byte) error {
	return b.rec("Verify", sh, data, sig)
}
func (b *recBackend) VerifyUpdate(sh uint64, part []byte) error {
	return b.rec("VerifyUpdate", sh, part)
}
func (b *recBackend) VerifyFinal(sh uint64, sig []byte) error { return b.rec("VerifyFinal", sh, sig) }
func (b *recBackend) VerifyRecover(sh uint64, sig []byte, out Out) (OutResult, error) {
	return b.o("VerifyRecover", out, sh, sig, out)
}
func (b *recBackend) DigestEncryptUpdate(sh uint64, part []byte, out Out) (OutResult, error) {
	return b.o("DigestEncryptUpdate", out, sh, part, out)
}
func (b *recBackend) DecryptDigestUpdate(sh uint64, part []byte, out Out) (OutResult, error) {
	return b.o("DecryptDigestUpdate", out, sh, part, out)
}
func (b *recBackend) SignEncryptUpdate(sh uint64, part []byte, out Out) (OutResult, error) {
	return b.o("SignEncryptUpdate", out, sh, part, out)
}
func (b *recBackend) DecryptVerifyUpdate(sh uint64, part []byte, out Out) (OutResult, error) {
	return b.o("DecryptVerifyUpdate", out, sh, part, out)
}
func (b *recBackend) GenerateKey(sh uint64, m Mechanism, t []Attr) (uint64, error) {
	return b.handle, b.rec("GenerateKey", sh, m, t)
}
func (b *recBackend) GenerateKeyPair(sh uint64, m Mechanism, pub, priv []Attr) (uint64, uint64, error) {
	return b.handle, b.handle2, b.rec("GenerateKeyPair", sh, m, pub, priv)
}
func (b *recBackend) WrapKey(sh uint64, m Mechanism, wrapping, key uint64, out Out) (OutResult, error) {
	return b.o("WrapKey", out, sh, m, wrapping, key, out)
}
func (b *recBackend) UnwrapKey(sh uint64, m Mechanism, unwrapping uint64, wrapped []byte, t []Attr) (uint64, error) {
	return b.handle, b.rec("UnwrapKey", sh, m, unwrapping, wrapped, t)
}
func (b *recBackend) DeriveKey(sh uint64, m Mechanism, base uint64, t []Attr) (uint64, error) {
	return b.handle, b.rec("DeriveKey", sh, m, base, t)
}
func (b *recBackend) SeedRandom(sh uint64, seed []byte) error { return b.rec("SeedRandom", sh, seed) }
func (b *recBackend) GenerateRandom(sh uint64, n uint64) ([]byte, error) {
	err := b.rec("GenerateRandom", sh, n)
	if b.random != nil {
		return b.random, err
	}
	if n > 1<<20 {
		return nil, hsmerr.Errorf(ck.CKR_DATA_LEN_RANGE, "test backend: too much")
	}
	r := make([]byte, n)
	for i := range r {
		r[i] = byte(i*7 + 1)
	}
	return r, err
}

var _ Backend = (*recBackend)(nil)

// Values with a distinct byte in every position, so that a field read at
// the wrong offset or with the wrong width shows.
const (
	tSH   = 0x0102030405060708
	tObj  = 0x1112131415161718
	tKey  = 0x2122232425262728
	tKey2 = 0x3132333435363738
	tSlot = 0x4142434445464748
)

func fixed(s string, n int) (b []byte) {
	b = make([]byte, n)
	copy(b, s)
	return b
}

func newRecBackend() *recBackend {
	b := &recBackend{
		data:    []byte("ciphertext"),
		list:    []uint64{0x51, 0x5152535455565758, 0x53},
		handle:  0x6162636465666768,
		handle2: 0x7172737475767778,
		session: SessionInfo{SlotID: tSlot, State: 3, Flags: 6, DeviceError: 0x8182838485868788},
		mechInfo: MechanismInfo{
			MinKeySize: 2048, MaxKeySize: 0x9192939495969798, Flags: 0xA1A2A3A4A5A6A7A8,
		},
		attrs: map[uint64][]byte{
			ck.CKA_LABEL:     []byte("my key"),
			ck.CKA_ID:        {1, 2, 3, 4, 5, 6, 7, 8, 9},
			ck.CKA_VALUE_LEN: binary.LittleEndian.AppendUint64(nil, 32),
			ck.CKA_TOKEN:     {},
		},
	}
	b.info = Info{CryptokiVersion: [2]byte{3, 1}, Flags: 0xB1B2B3B4B5B6B7B8, LibraryVersion: [2]byte{0, 9}}
	copy(b.info.ManufacturerID[:], fixed("OpenHSM", 32))
	copy(b.info.LibraryDescription[:], fixed("OpenHSM PKCS#11 library", 32))
	b.slot = SlotInfo{Flags: 5, HardwareVersion: [2]byte{1, 2}, FirmwareVersion: [2]byte{3, 4}}
	copy(b.slot.SlotDescription[:], fixed("slot description", 64))
	copy(b.slot.ManufacturerID[:], fixed("manufacturer", 32))
	b.token = TokenInfo{
		Flags: 1, MaxSessionCount: 2, SessionCount: 3, MaxRwSessionCount: 4, RwSessionCount: 5,
		MaxPinLen: 6, MinPinLen: 7, TotalPublicMemory: 8, FreePublicMemory: 9, TotalPrivateMemory: 10,
		FreePrivateMemory: 0xC1C2C3C4C5C6C7C8, HardwareVersion: [2]byte{5, 6}, FirmwareVersion: [2]byte{7, 8},
	}
	copy(b.token.Label[:], fixed("alice", 32))
	copy(b.token.ManufacturerID[:], fixed("OpenHSM", 32))
	copy(b.token.Model[:], fixed("model", 16))
	copy(b.token.SerialNumber[:], fixed("0123456789abcdef", 16))
	copy(b.token.UTCTime[:], fixed("2026010112000000", 16))
	return b
}

// ---- the C side's encoding, from wire.h ----

// appendReqBytes appends a request b item as C writes it: wireNull for a
// NULL pointer, else u32 n and n bytes.
func appendReqBytes(w, v []byte) []byte {
	if v == nil {
		return binary.LittleEndian.AppendUint32(w, wireNull)
	}
	w = binary.LittleEndian.AppendUint32(w, uint32(len(v)))
	return append(w, v...)
}

// appendFlag appends a u8 flag.
func appendFlag(w []byte, v bool) []byte {
	if v {
		return append(w, 1)
	}
	return append(w, 0)
}

// encodeRequest encodes a request as the C side does: the items must follow
// wire.h's request items for id, in order. uint64 (or int) is a u, []byte a
// b (nil is NULL), Out an o or h, []Attr a t (Null for a NULL pValue),
// []AttrReq a g, Mechanism an m.
func encodeRequest(t testing.TB, id uint32, items ...any) []byte {
	t.Helper()
	spec, _ := wireHSpec(t, id)
	if len(items) != len(spec) {
		t.Fatalf("encodeRequest %d: %d items, wire.h has %q", id, len(items), spec)
	}
	w := binary.LittleEndian.AppendUint32(nil, id)
	want := func(i int, kinds string) {
		if !strings.Contains(kinds, spec[i]) {
			t.Fatalf("encodeRequest %d: item %d is a %T, wire.h says %s", id, i, items[i], spec[i])
		}
	}
	putB := func(v []byte) { w = appendReqBytes(w, v) }
	putFlag := func(v bool) { w = appendFlag(w, v) }
	for i, it := range items {
		switch v := it.(type) {
		case uint64:
			want(i, "u")
			w = binary.LittleEndian.AppendUint64(w, v)
		case int:
			want(i, "u")
			w = binary.LittleEndian.AppendUint64(w, uint64(v))
		case []byte:
			want(i, "b")
			putB(v)
		case Out:
			want(i, "oh")
			putFlag(v.Present)
			w = binary.LittleEndian.AppendUint64(w, v.Cap)
		case []Attr:
			want(i, "t")
			w = binary.LittleEndian.AppendUint32(w, uint32(len(v)))
			for _, a := range v {
				w = binary.LittleEndian.AppendUint64(w, a.Type)
				if a.Null {
					putB(nil)
				} else {
					putB(append([]byte{}, a.Value...))
				}
			}
		case MsgParam:
			want(i, "x")
			w = appendMsgParam(w, v)
		case []AttrReq:
			want(i, "g")
			w = binary.LittleEndian.AppendUint32(w, uint32(len(v)))
			for _, a := range v {
				w = binary.LittleEndian.AppendUint64(w, a.Type)
				putFlag(a.Present)
				w = binary.LittleEndian.AppendUint64(w, a.Cap)
			}
		case Mechanism:
			want(i, "m")
			w = binary.LittleEndian.AppendUint64(w, v.Type)
			w = append(w, v.Kind)
			u := func(x uint64) { w = binary.LittleEndian.AppendUint64(w, x) }
			switch v.Kind {
			case 1:
				putB(v.Raw)
			case 2:
				putB(v.IV)
				u(v.IVBits)
				putB(v.AAD)
				u(v.TagBits)
			case 3:
				u(v.Hash)
				u(v.MGF)
				u(v.Source)
				putB(v.SourceData)
			case 4:
				u(v.KDF)
				putB(v.SharedData)
				putB(v.PublicData)
			case 5:
				putFlag(v.PHFlag)
				putB(v.Context)
			case mkSignContext:
				u(v.Hedge)
				putB(v.Context)
			}
		default:
			t.Fatalf("encodeRequest: cannot encode %T", it)
		}
	}
	return w
}

// Decoded reply items. Empty byte strings and lists decode as nil; Copied
// tells whether they were there.
type (
	oRep struct {
		Len    uint64
		Copied bool
		Data   []byte
	}
	hRep struct {
		Count  uint64
		Copied bool
		List   []uint64
	}
	gRep struct {
		Len    uint64
		Copied bool
		Data   []byte
	}
	sRep []byte
)

// sSize is the size of each function's s item, as C reads it.
var sSize = map[uint32]int{fnGetInfo: 76, fnGetSlotInfo: 108, fnGetTokenInfo: 204, fnGetSessionInfo: 32, fnGetMechanismInfo: 24}

// decodeReply decodes a reply as the C side does, following wire.h's reply
// items for id; gCount is the request's g count. The reply must be used
// exactly.
func decodeReply(t testing.TB, id uint32, reply []byte, gCount int) (rv uint64, items []any, err error) {
	t.Helper()
	_, spec := wireHSpec(t, id)
	p := reply
	short := errors.New("reply too short")
	take := func(n uint64) []byte {
		if err != nil || n > uint64(len(p)) {
			if err == nil {
				err = short
			}
			return nil
		}
		b := p[:n]
		p = p[n:]
		return b
	}
	u64 := func() uint64 {
		if b := take(8); b != nil {
			return binary.LittleEndian.Uint64(b)
		}
		return 0
	}
	u32 := func() uint32 {
		if b := take(4); b != nil {
			return binary.LittleEndian.Uint32(b)
		}
		return 0
	}
	flag := func() bool {
		b := take(1)
		if b != nil && b[0] > 1 {
			err = fmt.Errorf("flag %d", b[0])
		}
		return b != nil && b[0] == 1
	}
	bstr := func() []byte {
		n := u32()
		b := take(uint64(n))
		if len(b) == 0 {
			return nil
		}
		return bytes.Clone(b)
	}
	rv = u64()
	for _, it := range spec {
		switch it {
		case "y":
			items = append(items, yRep{IV: bstr(), Tag: bstr()})
		case "o":
			var o oRep
			o.Len = u64()
			if o.Copied = flag(); o.Copied {
				o.Data = bstr()
			}
			items = append(items, o)
		case "h":
			var h hRep
			h.Count = u64()
			if h.Copied = flag(); h.Copied {
				if h.Count > uint64(len(p))/8 {
					err = short
				}
				for i := uint64(0); i < h.Count && err == nil; i++ {
					h.List = append(h.List, u64())
				}
			}
			items = append(items, h)
		case "p":
			items = append(items, u64())
		case "s":
			n, ok := sSize[id]
			if !ok {
				t.Fatalf("no s size for %d", id)
			}
			items = append(items, sRep(bytes.Clone(take(uint64(n)))))
		case "g":
			var g []gRep
			for i := 0; i < gCount; i++ {
				var e gRep
				e.Len = u64()
				if e.Copied = flag(); e.Copied {
					e.Data = bstr()
				}
				g = append(g, e)
			}
			items = append(items, g)
		case "b":
			items = append(items, bstr())
		case "e":
			items = append(items, string(bstr()))
		default:
			t.Fatalf("decodeReply: item %q", it)
		}
	}
	if err == nil && len(p) != 0 {
		err = fmt.Errorf("%d bytes after the reply items", len(p))
	}
	return rv, items, err
}

// zeroReply is the reply items a failed call must carry.
func zeroReply(t testing.TB, id uint32, gCount int) []any {
	_, spec := wireHSpec(t, id)
	var items []any
	for _, it := range spec {
		switch it {
		case "o":
			items = append(items, oRep{})
		case "h":
			items = append(items, hRep{})
		case "p":
			items = append(items, uint64(0))
		case "s":
			items = append(items, sRep(make([]byte, sSize[id])))
		case "g":
			var g []gRep
			for range gCount {
				g = append(g, gRep{Len: ckUnavailableInformation})
			}
			items = append(items, g)
		case "b":
			items = append(items, []byte(nil))
		case "e":
			items = append(items, "")
		case "y":
			items = append(items, yRep{})
		}
	}
	return items
}

// structBytes encodes an info structure by reflection, field by field in
// declaration order: the reference the dispatcher's s encoding must match.
func structBytes(v any) sRep {
	var b []byte
	rv := reflect.ValueOf(v)
	for i := range rv.NumField() {
		f := rv.Field(i)
		switch f.Kind() {
		case reflect.Uint64:
			b = binary.LittleEndian.AppendUint64(b, f.Uint())
		case reflect.Array:
			for j := range f.Len() {
				b = append(b, byte(f.Index(j).Uint()))
			}
		default:
			panic("structBytes: " + f.Kind().String())
		}
	}
	return b
}

func gCountOf(items []any) int {
	for _, it := range items {
		if g, ok := it.([]AttrReq); ok {
			return len(g)
		}
	}
	return 0
}

// ---- the table: every function, the arguments the Backend must get and the
// reply C must get ----

type callCase struct {
	name  string
	id    uint32
	req   []any
	setup func(*recBackend)
	want  *recCall // nil: the Backend is not called
	rv    uint64
	reply []any // nil: zeroReply
}

var (
	mechNone  = Mechanism{Type: ck.CKM_SHA256}
	mechRaw   = Mechanism{Type: ck.CKM_AES_CBC_PAD, Kind: 1, Raw: bytes.Repeat([]byte{0xEE}, 16)}
	mechRawE  = Mechanism{Type: ck.CKM_AES_CBC_PAD, Kind: 1, Raw: []byte{}}
	mechRawN  = Mechanism{Type: ck.CKM_AES_CBC_PAD, Kind: 1}
	mechGCM   = Mechanism{Type: ck.CKM_AES_GCM, Kind: 2, IV: fixed("twelve bytes", 12), IVBits: 96, AAD: []byte("aad"), TagBits: 128}
	mechGCMN  = Mechanism{Type: ck.CKM_AES_GCM, Kind: 2, IV: []byte{}, IVBits: 0, AAD: nil, TagBits: 0x8877665544332211}
	mechOAEP  = Mechanism{Type: ck.CKM_RSA_PKCS_OAEP, Kind: 3, Hash: ck.CKM_SHA256, MGF: 2, Source: 1, SourceData: []byte("label")}
	mechOAEPN = Mechanism{Type: ck.CKM_RSA_PKCS_OAEP, Kind: 3, Hash: ck.CKM_SHA_1, MGF: 1, Source: 0}
	mechECDH  = Mechanism{Type: ck.CKM_ECDH1_DERIVE, Kind: 4, KDF: 1, SharedData: []byte{}, PublicData: bytes.Repeat([]byte{4}, 65)}
	mechEdDSA = Mechanism{Type: ck.CKM_EDDSA, Kind: 5, PHFlag: true, Context: []byte("ctx")}
	mechEdN   = Mechanism{Type: ck.CKM_EDDSA, Kind: 5}
	allMechs  = []Mechanism{mechNone, mechRaw, mechRawE, mechRawN, mechGCM, mechGCMN, mechOAEP, mechOAEPN, mechECDH, mechEdDSA, mechEdN,
		mechSignCtx, mechSignCtxN}

	// CK_SIGN_ADDITIONAL_CONTEXT (PKCS#11 v3.2, CKM_ML_DSA) and ML-KEM.
	mechSignCtx  = Mechanism{Type: ck.CKM_ML_DSA, Kind: mkSignContext, Hedge: ck.CKH_DETERMINISTIC_REQUIRED, Context: []byte("ctx")}
	mechSignCtxN = Mechanism{Type: ck.CKM_ML_DSA, Kind: mkSignContext, Context: []byte{}}
	mechMLKEM    = Mechanism{Type: ck.CKM_ML_KEM}

	tmplA = []Attr{
		{Type: ck.CKA_CLASS, Value: binary.LittleEndian.AppendUint64(nil, ck.CKO_SECRET_KEY)},
		{Type: ck.CKA_LABEL, Value: []byte("label")},
		{Type: ck.CKA_ID, Value: []byte{}},
		{Type: ck.CKA_VALUE, Null: true},
	}
	tmplB = []Attr{{Type: ck.CKA_TOKEN, Value: []byte{1}}}
	tmpl0 = []Attr{}
)

var okBuf = Out{Present: true, Cap: 64}

// cipher is "ciphertext", what recBackend's o methods produce.
var cipher = oRep{Len: 10, Copied: true, Data: []byte("ciphertext")}

func callCases() []callCase {
	list3 := []uint64{0x51, 0x5152535455565758, 0x53}
	cs := append(messageCallCases(), []callCase{
		{name: "Initialize", id: fnInitialize, req: []any{uint64(ck.CKF_OS_LOCKING_OK), []byte(nil)}, want: rc("Initialize", uint64(ck.CKF_OS_LOCKING_OK))},
		{name: "Initialize/0", id: fnInitialize, req: []any{0, []byte(nil)}, want: rc("Initialize", uint64(0))},
		// A Backend that takes no handoff ignores one.
		{name: "Initialize/handoff ignored", id: fnInitialize, req: []any{0, []byte("handoff")}, want: rc("Initialize", uint64(0))},
		{name: "Initialize/error", id: fnInitialize, req: []any{0, []byte(nil)},
			setup: func(b *recBackend) { b.err = hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "cannot reach the cluster") },
			want:  rc("Initialize", uint64(0)), rv: ck.CKR_DEVICE_ERROR, reply: []any{"C_Initialize: cannot reach the cluster"}},
		{name: "Finalize", id: fnFinalize, want: rc("Finalize")},
		{name: "GetInfo", id: fnGetInfo, want: rc("GetInfo"), reply: []any{structBytes(newRecBackend().info)}},

		{name: "GetSlotList/count", id: fnGetSlotList, req: []any{1, Out{Cap: 99}}, want: rc("GetSlotList", true), reply: []any{hRep{Count: 3}}},
		{name: "GetSlotList/any slot", id: fnGetSlotList, req: []any{0, Out{}}, want: rc("GetSlotList", false), reply: []any{hRep{Count: 3}}},
		{name: "GetSlotList/tokenPresent 0x100", id: fnGetSlotList, req: []any{0x100, Out{}}, want: rc("GetSlotList", true), reply: []any{hRep{Count: 3}}},
		{name: "GetSlotList/short", id: fnGetSlotList, req: []any{1, Out{Present: true, Cap: 2}}, want: rc("GetSlotList", true),
			rv: ck.CKR_BUFFER_TOO_SMALL, reply: []any{hRep{Count: 3}}},
		{name: "GetSlotList/zero capacity", id: fnGetSlotList, req: []any{1, Out{Present: true}}, want: rc("GetSlotList", true),
			rv: ck.CKR_BUFFER_TOO_SMALL, reply: []any{hRep{Count: 3}}},
		{name: "GetSlotList/exact", id: fnGetSlotList, req: []any{1, Out{Present: true, Cap: 3}}, want: rc("GetSlotList", true),
			reply: []any{hRep{Count: 3, Copied: true, List: list3}}},
		{name: "GetSlotList/huge capacity", id: fnGetSlotList, req: []any{1, Out{Present: true, Cap: ^uint64(0)}}, want: rc("GetSlotList", true),
			reply: []any{hRep{Count: 3, Copied: true, List: list3}}},
		{name: "GetSlotList/empty", id: fnGetSlotList, req: []any{1, Out{Present: true, Cap: 4}}, setup: func(b *recBackend) { b.list = nil },
			want: rc("GetSlotList", true), reply: []any{hRep{Count: 0, Copied: true}}},
		{name: "GetSlotList/error", id: fnGetSlotList, req: []any{1, Out{Present: true, Cap: 4}},
			setup: func(b *recBackend) { b.err = hsmerr.Errorf(ck.CKR_CRYPTOKI_NOT_INITIALIZED, "") },
			want:  rc("GetSlotList", true), rv: ck.CKR_CRYPTOKI_NOT_INITIALIZED},
		{name: "GetSlotInfo", id: fnGetSlotInfo, req: []any{uint64(tSlot)}, want: rc("GetSlotInfo", uint64(tSlot)), reply: []any{structBytes(newRecBackend().slot)}},
		{name: "GetTokenInfo", id: fnGetTokenInfo, req: []any{uint64(tSlot)}, want: rc("GetTokenInfo", uint64(tSlot)), reply: []any{structBytes(newRecBackend().token)}},
		{name: "GetTokenInfo/error", id: fnGetTokenInfo, req: []any{uint64(7)},
			setup: func(b *recBackend) { b.err = hsmerr.Errorf(ck.CKR_SLOT_ID_INVALID, "") },
			want:  rc("GetTokenInfo", uint64(7)), rv: ck.CKR_SLOT_ID_INVALID},
		{name: "GetMechanismList/count", id: fnGetMechanismList, req: []any{uint64(tSlot), Out{}}, want: rc("GetMechanismList", uint64(tSlot)), reply: []any{hRep{Count: 3}}},
		{name: "GetMechanismList/short", id: fnGetMechanismList, req: []any{uint64(tSlot), Out{Present: true, Cap: 1}}, want: rc("GetMechanismList", uint64(tSlot)),
			rv: ck.CKR_BUFFER_TOO_SMALL, reply: []any{hRep{Count: 3}}},
		{name: "GetMechanismList/copied", id: fnGetMechanismList, req: []any{uint64(tSlot), Out{Present: true, Cap: 5}}, want: rc("GetMechanismList", uint64(tSlot)),
			reply: []any{hRep{Count: 3, Copied: true, List: list3}}},
		{name: "GetMechanismInfo", id: fnGetMechanismInfo, req: []any{uint64(tSlot), uint64(ck.CKM_AES_GCM)}, want: rc("GetMechanismInfo", uint64(tSlot), uint64(ck.CKM_AES_GCM)),
			reply: []any{structBytes(newRecBackend().mechInfo)}},

		{name: "InitToken", id: fnInitToken, req: []any{uint64(tSlot), []byte("so:pw"), fixed("label", 32)}, want: rc("InitToken", uint64(tSlot), []byte("so:pw"), fixed("label", 32))},
		{name: "InitToken/NULL PIN", id: fnInitToken, req: []any{uint64(tSlot), []byte(nil), []byte{}}, want: rc("InitToken", uint64(tSlot), []byte(nil), []byte{})},
		{name: "InitPIN", id: fnInitPIN, req: []any{uint64(tSH), []byte("pw")}, want: rc("InitPIN", uint64(tSH), []byte("pw"))},
		{name: "InitPIN/NULL", id: fnInitPIN, req: []any{uint64(tSH), []byte(nil)}, want: rc("InitPIN", uint64(tSH), []byte(nil))},
		{name: "InitPIN/empty", id: fnInitPIN, req: []any{uint64(tSH), []byte{}}, want: rc("InitPIN", uint64(tSH), []byte{})},
		{name: "SetPIN", id: fnSetPIN, req: []any{uint64(tSH), []byte("old"), []byte("new")}, want: rc("SetPIN", uint64(tSH), []byte("old"), []byte("new"))},
		{name: "OpenSession", id: fnOpenSession, req: []any{uint64(tSlot), uint64(ck.CKF_SERIAL_SESSION | ck.CKF_RW_SESSION)},
			want: rc("OpenSession", uint64(tSlot), uint64(ck.CKF_SERIAL_SESSION|ck.CKF_RW_SESSION)), reply: []any{uint64(0x6162636465666768)}},
		{name: "OpenSession/error", id: fnOpenSession, req: []any{uint64(tSlot), 0},
			setup: func(b *recBackend) { b.err = hsmerr.Errorf(ck.CKR_SESSION_PARALLEL_NOT_SUPPORTED, "") },
			want:  rc("OpenSession", uint64(tSlot), uint64(0)), rv: ck.CKR_SESSION_PARALLEL_NOT_SUPPORTED},
		{name: "CloseSession", id: fnCloseSession, req: []any{uint64(tSH)}, want: rc("CloseSession", uint64(tSH))},
		{name: "CloseAllSessions", id: fnCloseAllSessions, req: []any{uint64(tSlot)}, want: rc("CloseAllSessions", uint64(tSlot))},
		{name: "GetSessionInfo", id: fnGetSessionInfo, req: []any{uint64(tSH)}, want: rc("GetSessionInfo", uint64(tSH)), reply: []any{structBytes(newRecBackend().session)}},
		{name: "GetOperationState/length", id: fnGetOperationState, req: []any{uint64(tSH), Out{Cap: 5}},
			want: rc("GetOperationState", uint64(tSH), Out{Cap: 5}), reply: []any{oRep{Len: 10}}},
		{name: "GetOperationState/unsupported", id: fnGetOperationState, req: []any{uint64(tSH), okBuf},
			setup: func(b *recBackend) { b.err = hsmerr.Errorf(ck.CKR_STATE_UNSAVEABLE, "") },
			want:  rc("GetOperationState", uint64(tSH), okBuf), rv: ck.CKR_STATE_UNSAVEABLE},
		{name: "SetOperationState", id: fnSetOperationState, req: []any{uint64(tSH), []byte("state"), uint64(tKey), uint64(tKey2)},
			want: rc("SetOperationState", uint64(tSH), []byte("state"), uint64(tKey), uint64(tKey2))},
		{name: "Login", id: fnLogin, req: []any{uint64(tSH), uint64(ck.CKU_USER), []byte("alice:pw")}, want: rc("Login", uint64(tSH), uint64(ck.CKU_USER), []byte("alice:pw"))},
		{name: "Login/NULL PIN", id: fnLogin, req: []any{uint64(tSH), uint64(ck.CKU_SO), []byte(nil)}, want: rc("Login", uint64(tSH), uint64(ck.CKU_SO), []byte(nil))},
		{name: "Login/wrong", id: fnLogin, req: []any{uint64(tSH), uint64(ck.CKU_USER), []byte("x")},
			setup: func(b *recBackend) { b.err = hsmerr.Errorf(ck.CKR_PIN_INCORRECT, "") },
			want:  rc("Login", uint64(tSH), uint64(ck.CKU_USER), []byte("x")), rv: ck.CKR_PIN_INCORRECT},
		{name: "Logout", id: fnLogout, req: []any{uint64(tSH)}, want: rc("Logout", uint64(tSH))},

		{name: "CreateObject", id: fnCreateObject, req: []any{uint64(tSH), tmplA}, want: rc("CreateObject", uint64(tSH), tmplA), reply: []any{uint64(0x6162636465666768)}},
		{name: "CreateObject/empty template", id: fnCreateObject, req: []any{uint64(tSH), tmpl0}, want: rc("CreateObject", uint64(tSH), tmpl0), reply: []any{uint64(0x6162636465666768)}},
		{name: "CreateObject/error", id: fnCreateObject, req: []any{uint64(tSH), tmplB},
			setup: func(b *recBackend) { b.err = hsmerr.Errorf(ck.CKR_TEMPLATE_INCOMPLETE, "") },
			want:  rc("CreateObject", uint64(tSH), tmplB), rv: ck.CKR_TEMPLATE_INCOMPLETE},
		{name: "CopyObject", id: fnCopyObject, req: []any{uint64(tSH), uint64(tObj), tmplB}, want: rc("CopyObject", uint64(tSH), uint64(tObj), tmplB), reply: []any{uint64(0x6162636465666768)}},
		{name: "DestroyObject", id: fnDestroyObject, req: []any{uint64(tSH), uint64(tObj)}, want: rc("DestroyObject", uint64(tSH), uint64(tObj))},
		{name: "GetObjectSize", id: fnGetObjectSize, req: []any{uint64(tSH), uint64(tObj)}, want: rc("GetObjectSize", uint64(tSH), uint64(tObj)), reply: []any{uint64(0x6162636465666768)}},
		{name: "SetAttributeValue", id: fnSetAttributeValue, req: []any{uint64(tSH), uint64(tObj), tmplA}, want: rc("SetAttributeValue", uint64(tSH), uint64(tObj), tmplA)},
		{name: "FindObjectsInit", id: fnFindObjectsInit, req: []any{uint64(tSH), tmplA}, want: rc("FindObjectsInit", uint64(tSH), tmplA)},
		{name: "FindObjectsInit/all", id: fnFindObjectsInit, req: []any{uint64(tSH), tmpl0}, want: rc("FindObjectsInit", uint64(tSH), tmpl0)},
		{name: "FindObjects/room", id: fnFindObjects, req: []any{uint64(tSH), Out{Present: true, Cap: 10}}, want: rc("FindObjects", uint64(tSH), uint64(10)),
			reply: []any{hRep{Count: 3, Copied: true, List: list3}}},
		{name: "FindObjects/truncated", id: fnFindObjects, req: []any{uint64(tSH), Out{Present: true, Cap: 2}}, want: rc("FindObjects", uint64(tSH), uint64(2)),
			reply: []any{hRep{Count: 2, Copied: true, List: list3[:2]}}},
		{name: "FindObjects/zero", id: fnFindObjects, req: []any{uint64(tSH), Out{Present: true}}, want: rc("FindObjects", uint64(tSH), uint64(0)),
			reply: []any{hRep{Count: 0, Copied: true}}},
		{name: "FindObjects/none left", id: fnFindObjects, req: []any{uint64(tSH), Out{Present: true, Cap: 8}}, setup: func(b *recBackend) { b.list = nil },
			want: rc("FindObjects", uint64(tSH), uint64(8)), reply: []any{hRep{Count: 0, Copied: true}}},
		{name: "FindObjects/NULL array", id: fnFindObjects, req: []any{uint64(tSH), Out{Cap: 8}}, rv: ck.CKR_ARGUMENTS_BAD},
		{name: "FindObjects/not active", id: fnFindObjects, req: []any{uint64(tSH), Out{Present: true, Cap: 8}},
			setup: func(b *recBackend) { b.err = hsmerr.Errorf(ck.CKR_OPERATION_NOT_INITIALIZED, "") },
			want:  rc("FindObjects", uint64(tSH), uint64(8)), rv: ck.CKR_OPERATION_NOT_INITIALIZED},
		{name: "FindObjectsFinal", id: fnFindObjectsFinal, req: []any{uint64(tSH)}, want: rc("FindObjectsFinal", uint64(tSH))},

		{name: "DigestInit", id: fnDigestInit, req: []any{uint64(tSH), mechNone}, want: rc("DigestInit", uint64(tSH), mechNone)},
		{name: "DigestUpdate", id: fnDigestUpdate, req: []any{uint64(tSH), []byte("part")}, want: rc("DigestUpdate", uint64(tSH), []byte("part"))},
		{name: "DigestUpdate/empty", id: fnDigestUpdate, req: []any{uint64(tSH), []byte{}}, want: rc("DigestUpdate", uint64(tSH), []byte{})},
		{name: "DigestKey", id: fnDigestKey, req: []any{uint64(tSH), uint64(tKey)}, want: rc("DigestKey", uint64(tSH), uint64(tKey))},
		{name: "SignUpdate", id: fnSignUpdate, req: []any{uint64(tSH), []byte("part")}, want: rc("SignUpdate", uint64(tSH), []byte("part"))},
		{name: "Verify", id: fnVerify, req: []any{uint64(tSH), []byte("data"), []byte("sig")}, want: rc("Verify", uint64(tSH), []byte("data"), []byte("sig"))},
		{name: "Verify/NULL signature", id: fnVerify, req: []any{uint64(tSH), []byte{}, []byte(nil)}, want: rc("Verify", uint64(tSH), []byte{}, []byte(nil))},
		{name: "Verify/invalid", id: fnVerify, req: []any{uint64(tSH), []byte("d"), []byte("s")},
			setup: func(b *recBackend) { b.err = hsmerr.Errorf(ck.CKR_SIGNATURE_INVALID, "") },
			want:  rc("Verify", uint64(tSH), []byte("d"), []byte("s")), rv: ck.CKR_SIGNATURE_INVALID},
		{name: "VerifyUpdate", id: fnVerifyUpdate, req: []any{uint64(tSH), []byte("part")}, want: rc("VerifyUpdate", uint64(tSH), []byte("part"))},
		{name: "VerifyFinal", id: fnVerifyFinal, req: []any{uint64(tSH), []byte("sig")}, want: rc("VerifyFinal", uint64(tSH), []byte("sig"))},

		{name: "GenerateKey", id: fnGenerateKey, req: []any{uint64(tSH), Mechanism{Type: ck.CKM_AES_KEY_GEN}, tmplA},
			want: rc("GenerateKey", uint64(tSH), Mechanism{Type: ck.CKM_AES_KEY_GEN}, tmplA), reply: []any{uint64(0x6162636465666768)}},
		{name: "GenerateKeyPair", id: fnGenerateKeyPair, req: []any{uint64(tSH), Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN}, tmplB, tmplA},
			want:  rc("GenerateKeyPair", uint64(tSH), Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN}, tmplB, tmplA),
			reply: []any{uint64(0x6162636465666768), uint64(0x7172737475767778)}},
		{name: "GenerateKeyPair/error", id: fnGenerateKeyPair, req: []any{uint64(tSH), Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN}, tmpl0, tmpl0},
			setup: func(b *recBackend) { b.err = hsmerr.Errorf(ck.CKR_TEMPLATE_INCOMPLETE, "") },
			want:  rc("GenerateKeyPair", uint64(tSH), Mechanism{Type: ck.CKM_EC_KEY_PAIR_GEN}, tmpl0, tmpl0), rv: ck.CKR_TEMPLATE_INCOMPLETE},
		{name: "WrapKey", id: fnWrapKey, req: []any{uint64(tSH), mechRaw, uint64(tKey), uint64(tKey2), okBuf},
			want: rc("WrapKey", uint64(tSH), mechRaw, uint64(tKey), uint64(tKey2), okBuf), reply: []any{cipher}},
		{name: "WrapKey/length", id: fnWrapKey, req: []any{uint64(tSH), mechOAEP, uint64(tKey), uint64(tKey2), Out{}},
			want: rc("WrapKey", uint64(tSH), mechOAEP, uint64(tKey), uint64(tKey2), Out{}), reply: []any{oRep{Len: 10}}},
		{name: "UnwrapKey", id: fnUnwrapKey, req: []any{uint64(tSH), mechGCM, uint64(tKey), []byte("wrapped"), tmplA},
			want: rc("UnwrapKey", uint64(tSH), mechGCM, uint64(tKey), []byte("wrapped"), tmplA), reply: []any{uint64(0x6162636465666768)}},
		{name: "DeriveKey", id: fnDeriveKey, req: []any{uint64(tSH), mechECDH, uint64(tKey), tmplB},
			want: rc("DeriveKey", uint64(tSH), mechECDH, uint64(tKey), tmplB), reply: []any{uint64(0x6162636465666768)}},
		{name: "SeedRandom", id: fnSeedRandom, req: []any{uint64(tSH), []byte("seed")}, want: rc("SeedRandom", uint64(tSH), []byte("seed"))},
		{name: "GenerateRandom", id: fnGenerateRandom, req: []any{uint64(tSH), 16}, want: rc("GenerateRandom", uint64(tSH), uint64(16)),
			reply: []any{[]byte{1, 8, 15, 22, 29, 36, 43, 50, 57, 64, 71, 78, 85, 92, 99, 106}}},
		{name: "GenerateRandom/0", id: fnGenerateRandom, req: []any{uint64(tSH), 0}, want: rc("GenerateRandom", uint64(tSH), uint64(0)), reply: []any{[]byte(nil)}},
		{name: "GenerateRandom/over 64 MiB", id: fnGenerateRandom, req: []any{uint64(tSH), wireMaxBytes + 1}, rv: ck.CKR_ARGUMENTS_BAD},
		{name: "GenerateRandom/short answer", id: fnGenerateRandom, req: []any{uint64(tSH), 16}, setup: func(b *recBackend) { b.random = []byte{1, 2} },
			want: rc("GenerateRandom", uint64(tSH), uint64(16)), rv: ck.CKR_GENERAL_ERROR},
		{name: "LoginUser", id: fnLoginUser, req: []any{uint64(tSH), uint64(ck.CKU_USER), []byte("pw"), []byte("alice")},
			want: rc("LoginUser", uint64(tSH), uint64(ck.CKU_USER), []byte("pw"), []byte("alice"))},
		{name: "SessionCancel", id: fnSessionCancel, req: []any{uint64(tSH), uint64(ck.CKF_SIGN)}, want: rc("SessionCancel", uint64(tSH), uint64(ck.CKF_SIGN))},
		// Operation life cycle and slot events.
		{name: "WaitForSlotEvent", id: fnWaitForSlotEvent, req: []any{uint64(ck.CKF_DONT_BLOCK), uint64(0)},
			want: rc("WaitForSlotEvent", uint64(ck.CKF_DONT_BLOCK), uint64(0)), reply: []any{uint64(0x6162636465666768)}},
		{name: "EncryptInit/NULL mechanism", id: fnEncryptInit, req: []any{uint64(tSH), Mechanism{Kind: mechKindNull}, uint64(0)},
			want: rc("EncryptInit", uint64(tSH), Mechanism{Kind: mechKindNull, Null: true}, uint64(0))},
		{name: "EncryptInit/NULL mechanism with a type", id: fnEncryptInit, req: []any{uint64(tSH), Mechanism{Type: 1, Kind: mechKindNull}, uint64(0)},
			rv: ck.CKR_ARGUMENTS_BAD},
		{name: "EncapsulateKey", id: fnEncapsulateKey, req: []any{uint64(tSH), mechMLKEM, uint64(tKey), tmplB, okBuf},
			want: rc("EncapsulateKey", uint64(tSH), mechMLKEM, uint64(tKey), tmplB, okBuf), reply: []any{cipher, uint64(0x6162636465666768)}},
		{name: "EncapsulateKey/length", id: fnEncapsulateKey, req: []any{uint64(tSH), mechMLKEM, uint64(tKey), tmpl0, Out{}},
			want: rc("EncapsulateKey", uint64(tSH), mechMLKEM, uint64(tKey), tmpl0, Out{}), reply: []any{oRep{Len: 10}, uint64(0x6162636465666768)}},
		{name: "DecapsulateKey", id: fnDecapsulateKey, req: []any{uint64(tSH), mechMLKEM, uint64(tKey), tmplA, []byte("ciphertext")},
			want: rc("DecapsulateKey", uint64(tSH), mechMLKEM, uint64(tKey), tmplA, []byte("ciphertext")), reply: []any{uint64(0x6162636465666768)}},
	}...)

	// C_GetAttributeValue.
	gReq := []AttrReq{
		{Type: ck.CKA_LABEL, Present: true, Cap: 64},
		{Type: ck.CKA_ID}, // length only
		{Type: ck.CKA_VALUE_LEN, Present: true, Cap: 8}, // exact
		{Type: ck.CKA_TOKEN, Present: true, Cap: 0},     // empty value
		{Type: 0x80000001, Present: true, Cap: 16},      // unknown
		{Type: ck.CKA_ID, Present: true, Cap: 8},        // short
	}
	gResp := []gRep{
		{Len: 6, Copied: true, Data: []byte("my key")},
		{Len: 9},
		{Len: 8, Copied: true, Data: binary.LittleEndian.AppendUint64(nil, 32)},
		{Len: 0, Copied: true},
		{Len: ckUnavailableInformation},
		{Len: 9},
	}
	cs = append(cs,
		callCase{name: "GetAttributeValue/ok", id: fnGetAttributeValue, req: []any{uint64(tSH), uint64(tObj), gReq[:4]},
			want: rc("GetAttributeValue", uint64(tSH), uint64(tObj), gReq[:4]), reply: []any{gResp[:4]}},
		callCase{name: "GetAttributeValue/mixed", id: fnGetAttributeValue, req: []any{uint64(tSH), uint64(tObj), gReq},
			want: rc("GetAttributeValue", uint64(tSH), uint64(tObj), gReq), rv: ck.CKR_ATTRIBUTE_TYPE_INVALID, reply: []any{gResp}},
		callCase{name: "GetAttributeValue/short", id: fnGetAttributeValue, req: []any{uint64(tSH), uint64(tObj), gReq[5:]},
			want: rc("GetAttributeValue", uint64(tSH), uint64(tObj), gReq[5:]), rv: ck.CKR_BUFFER_TOO_SMALL, reply: []any{gResp[5:]}},
		callCase{name: "GetAttributeValue/sensitive", id: fnGetAttributeValue, req: []any{uint64(tSH), uint64(tObj), gReq[:2]},
			setup: func(b *recBackend) {
				b.err = hsmerr.Errorf(ck.CKR_ATTRIBUTE_SENSITIVE, "")
				b.rawResps = []AttrResp{{Len: 6, Data: []byte("my key")}, {Len: ckUnavailableInformation}}
			},
			want: rc("GetAttributeValue", uint64(tSH), uint64(tObj), gReq[:2]), rv: ck.CKR_ATTRIBUTE_SENSITIVE,
			reply: []any{[]gRep{{Len: 6, Copied: true, Data: []byte("my key")}, {Len: ckUnavailableInformation}}}},
		callCase{name: "GetAttributeValue/none", id: fnGetAttributeValue, req: []any{uint64(tSH), uint64(tObj), []AttrReq{}},
			want: rc("GetAttributeValue", uint64(tSH), uint64(tObj), []AttrReq{}), reply: []any{[]gRep(nil)}},
		callCase{name: "GetAttributeValue/bad object", id: fnGetAttributeValue, req: []any{uint64(tSH), uint64(tObj), gReq[:3]},
			setup: func(b *recBackend) {
				b.err = hsmerr.Errorf(ck.CKR_OBJECT_HANDLE_INVALID, "")
				b.rawResps = []AttrResp{}
			},
			want: rc("GetAttributeValue", uint64(tSH), uint64(tObj), gReq[:3]), rv: ck.CKR_OBJECT_HANDLE_INVALID},
	)

	// Every Init with every mechanism kind.
	for _, f := range []struct {
		id   uint32
		name string
	}{{fnEncryptInit, "EncryptInit"}, {fnDecryptInit, "DecryptInit"}, {fnSignInit, "SignInit"}, {fnVerifyInit, "VerifyInit"},
		{fnSignRecoverInit, "SignRecoverInit"}, {fnVerifyRecoverInit, "VerifyRecoverInit"}} {
		for i, m := range allMechs {
			cs = append(cs, callCase{name: fmt.Sprintf("%s/mech %d kind %d", f.name, i, m.Kind), id: f.id,
				req: []any{uint64(tSH), m, uint64(tKey)}, want: rc(f.name, uint64(tSH), m, uint64(tKey))})
		}
	}
	for i, m := range allMechs {
		cs = append(cs, callCase{name: fmt.Sprintf("DigestInit/mech %d", i), id: fnDigestInit,
			req: []any{uint64(tSH), m}, want: rc("DigestInit", uint64(tSH), m)})
	}

	// Every o function through the two-call rule.
	type ofn struct {
		id   uint32
		name string
		data bool // has a data b before the o
	}
	for _, f := range []ofn{
		{fnEncrypt, "Encrypt", true}, {fnEncryptUpdate, "EncryptUpdate", true}, {fnEncryptFinal, "EncryptFinal", false},
		{fnDecrypt, "Decrypt", true}, {fnDecryptUpdate, "DecryptUpdate", true}, {fnDecryptFinal, "DecryptFinal", false},
		{fnDigest, "Digest", true}, {fnDigestFinal, "DigestFinal", false},
		{fnSign, "Sign", true}, {fnSignFinal, "SignFinal", false}, {fnSignRecover, "SignRecover", true},
		{fnVerifyRecover, "VerifyRecover", true},
		{fnDigestEncryptUpdate, "DigestEncryptUpdate", true}, {fnDecryptDigestUpdate, "DecryptDigestUpdate", true},
		{fnSignEncryptUpdate, "SignEncryptUpdate", true}, {fnDecryptVerifyUpdate, "DecryptVerifyUpdate", true},
		{fnGetOperationState, "GetOperationState", false},
	} {
		mk := func(sub string, data []byte, out Out, setup func(*recBackend), rv uint64, reply any) callCase {
			c := callCase{name: f.name + "/" + sub, id: f.id, setup: setup, rv: rv, reply: []any{reply}}
			if f.data {
				c.req = []any{uint64(tSH), data, out}
				c.want = rc(f.name, uint64(tSH), data, out)
			} else {
				c.req = []any{uint64(tSH), out}
				c.want = rc(f.name, uint64(tSH), out)
			}
			return c
		}
		cs = append(cs,
			mk("copied", []byte("plaintext"), okBuf, nil, ck.CKR_OK, cipher),
			mk("exact", []byte{}, Out{Present: true, Cap: 10}, nil, ck.CKR_OK, cipher),
			mk("NULL data", nil, okBuf, nil, ck.CKR_OK, cipher),
			mk("length", []byte("x"), Out{Cap: 1}, nil, ck.CKR_OK, oRep{Len: 10}),
			mk("short", []byte("x"), Out{Present: true, Cap: 9}, nil, ck.CKR_BUFFER_TOO_SMALL, oRep{Len: 10}),
			mk("nothing out", []byte("x"), okBuf, func(b *recBackend) { b.data = nil }, ck.CKR_OK, oRep{}),
			mk("empty out", []byte("x"), okBuf, func(b *recBackend) { b.data = []byte{} }, ck.CKR_OK, oRep{Copied: true}),
			mk("error", []byte("x"), okBuf, func(b *recBackend) { b.err = hsmerr.Errorf(ck.CKR_KEY_HANDLE_INVALID, "") },
				ck.CKR_KEY_HANDLE_INVALID, oRep{}),
			mk("plain error", []byte("x"), okBuf, func(b *recBackend) { b.err = io.ErrUnexpectedEOF }, ck.CKR_GENERAL_ERROR, oRep{}),
			mk("data past buffer", []byte("x"), Out{Present: true, Cap: 4},
				func(b *recBackend) { b.rawOut = &OutResult{Len: 10, Data: []byte("ciphertext")} }, ck.CKR_GENERAL_ERROR, oRep{}),
			mk("data for NULL", []byte("x"), Out{Cap: 40},
				func(b *recBackend) { b.rawOut = &OutResult{Len: 10, Data: []byte("ciphertext")} }, ck.CKR_GENERAL_ERROR, oRep{}),
			mk("length lies", []byte("x"), okBuf,
				func(b *recBackend) { b.rawOut = &OutResult{Len: 3, Data: []byte("ciphertext")} }, ck.CKR_GENERAL_ERROR, oRep{}),
			mk("no data", []byte("x"), okBuf,
				func(b *recBackend) { b.rawOut = &OutResult{Len: 3} }, ck.CKR_GENERAL_ERROR, oRep{}),
			mk("too small keeps data", []byte("x"), okBuf, func(b *recBackend) {
				b.rawOut = &OutResult{Len: 99, Data: []byte("leak")}
				b.err = hsmerr.Errorf(ck.CKR_BUFFER_TOO_SMALL, "")
			}, ck.CKR_BUFFER_TOO_SMALL, oRep{Len: 99}),
		)
	}
	return cs
}

// runCase calls one case on a fresh Backend and returns it and the reply.
func runCase(t *testing.T, c callCase, edit func(*recBackend)) (*recBackend, []byte) {
	t.Helper()
	b := newRecBackend()
	if c.setup != nil {
		c.setup(b)
	}
	if edit != nil {
		edit(b)
	}
	d := &Dispatcher{B: b}
	return b, d.Call(encodeRequest(t, c.id, c.req...))
}

func TestCallEveryFunction(t *testing.T) {
	covered := map[uint32]bool{}
	for _, c := range callCases() {
		covered[c.id] = true
		t.Run(c.name, func(t *testing.T) {
			b, reply := runCase(t, c, nil)
			rv, items, err := decodeReply(t, c.id, reply, gCountOf(c.req))
			if err != nil {
				t.Fatalf("reply %x: %v", reply, err)
			}
			if rv != c.rv {
				t.Errorf("rv = %s, want %s", ck.RVName(rv), ck.RVName(c.rv))
			}
			want := c.reply
			if want == nil {
				want = zeroReply(t, c.id, gCountOf(c.req))
			}
			if !reflect.DeepEqual(items, want) {
				t.Errorf("reply items\n got %#v\nwant %#v", items, want)
			}
			switch {
			case c.want == nil && len(b.calls) != 0:
				t.Errorf("Backend called: %+v", b.calls)
			case c.want != nil && (len(b.calls) != 1 || !reflect.DeepEqual(b.calls[0], *c.want)):
				t.Errorf("Backend calls\n got %#v\nwant %#v", b.calls, *c.want)
			}
		})
	}
	for id := 1; id < len(functions); id++ {
		if !covered[uint32(id)] && functions[id].name != "" {
			t.Errorf("no case for %d %s", id, functions[id].name)
		}
	}
}

// Every Backend error is answered with its CK_RV and zeroed items (an
// attribute template keeps what the Backend said of each attribute).
func TestCallBackendError(t *testing.T) {
	for _, c := range callCases() {
		if c.want == nil || c.rv != ck.CKR_OK || c.id == fnGetAttributeValue {
			continue
		}
		_, reply := runCase(t, c, func(b *recBackend) { b.err = hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "") })
		rv, items, err := decodeReply(t, c.id, reply, gCountOf(c.req))
		if err != nil || rv != ck.CKR_DEVICE_ERROR {
			t.Errorf("%s: rv %s, err %v", c.name, ck.RVName(rv), err)
			continue
		}
		want := zeroReply(t, c.id, 0)
		if c.id == fnInitialize {
			// C_Initialize says why, for the host's log.
			want = []any{"C_Initialize: "}
		}
		if !reflect.DeepEqual(items, want) {
			t.Errorf("%s: items %#v, want %#v", c.name, items, want)
		}
	}
}

// countHandler counts log records.
type countHandler struct {
	mu   sync.Mutex
	msgs []string
}

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Message)
	return nil
}
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countHandler) WithGroup(string) slog.Handler      { return h }

func (h *countHandler) count(sub string) (n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.msgs {
		if strings.Contains(m, sub) {
			n++
		}
	}
	return n
}

func TestCallBackendPanics(t *testing.T) {
	for _, pv := range []any{"boom", errors.New("boom"), 42} {
		for _, c := range callCases() {
			if c.want == nil {
				continue
			}
			h := &countHandler{}
			b := newRecBackend()
			if c.setup != nil {
				c.setup(b)
			}
			b.panicV = pv
			d := &Dispatcher{B: b, Log: slog.New(h)}
			reply := d.Call(encodeRequest(t, c.id, c.req...))
			rv, items, err := decodeReply(t, c.id, reply, gCountOf(c.req))
			if err != nil || rv != ck.CKR_GENERAL_ERROR {
				t.Fatalf("%s: rv %s, err %v", c.name, ck.RVName(rv), err)
			}
			if want := zeroReply(t, c.id, gCountOf(c.req)); !reflect.DeepEqual(items, want) {
				t.Errorf("%s: items %#v, want zeros", c.name, items)
			}
			if n := h.count("panic"); n != 1 || len(h.msgs) != 1 {
				t.Errorf("%s: log %q, want one panic record", c.name, h.msgs)
			}
		}
	}
	// Without a logger, and without a Backend at all.
	for _, d := range []*Dispatcher{{B: &recBackend{panicV: "x"}}, {}} {
		reply := d.Call(encodeRequest(t, fnFinalize))
		if rv, _, err := decodeReply(t, fnFinalize, reply, 0); err != nil || rv != ck.CKR_GENERAL_ERROR {
			t.Errorf("rv %s, err %v", ck.RVName(rv), err)
		}
	}
}

// A panic in the codec itself (here a reply item the function cannot have)
// is answered with the CK_RV alone.
func TestCallCodecPanic(t *testing.T) {
	defer func(s wireSpec) { specs[fnFinalize] = s }(specs[fnFinalize])
	specs[fnFinalize].reply = []byte("ps") // Finalize has no s structure
	h := &countHandler{}
	d := &Dispatcher{B: newRecBackend(), Log: slog.New(h)}
	reply := d.Call(encodeRequest(t, fnFinalize))
	if !bytes.Equal(reply, binary.LittleEndian.AppendUint64(nil, ck.CKR_GENERAL_ERROR)) {
		t.Errorf("reply %x", reply)
	}
	if h.count("panic") != 1 {
		t.Errorf("log %q", h.msgs)
	}
}

// Backends that break the output rules are refused, and logged.
func TestCallBackendBroken(t *testing.T) {
	gReq := []AttrReq{{Type: ck.CKA_LABEL, Present: true, Cap: 4}, {Type: ck.CKA_ID, Cap: 8}}
	cases := []struct {
		name  string
		resps []AttrResp
		err   error
		rv    uint64
	}{
		{"too few", []AttrResp{{Len: 1, Data: []byte{1}}}, nil, ck.CKR_GENERAL_ERROR},
		{"too many", []AttrResp{{}, {}, {}}, nil, ck.CKR_GENERAL_ERROR},
		{"past buffer", []AttrResp{{Len: 5, Data: []byte("12345")}, {Len: 1}}, nil, ck.CKR_GENERAL_ERROR},
		{"into NULL", []AttrResp{{Len: 1, Data: []byte("1")}, {Len: 1, Data: []byte("1")}}, nil, ck.CKR_GENERAL_ERROR}, // req[1] has Cap 8 but no buffer
		{"length lies", []AttrResp{{Len: 2, Data: []byte("1")}, {Len: 1}}, nil, ck.CKR_GENERAL_ERROR},
		{"past buffer with an error", []AttrResp{{Len: 5, Data: []byte("12345")}, {Len: 1}},
			hsmerr.Errorf(ck.CKR_ATTRIBUTE_SENSITIVE, ""), ck.CKR_GENERAL_ERROR},
		{"too few with an error", []AttrResp{{Len: 1}}, hsmerr.Errorf(ck.CKR_OBJECT_HANDLE_INVALID, ""), ck.CKR_OBJECT_HANDLE_INVALID},
	}
	for _, c := range cases {
		h := &countHandler{}
		b := newRecBackend()
		b.rawResps, b.err = c.resps, c.err
		d := &Dispatcher{B: b, Log: slog.New(h)}
		reply := d.Call(encodeRequest(t, fnGetAttributeValue, uint64(tSH), uint64(tObj), gReq))
		rv, items, err := decodeReply(t, fnGetAttributeValue, reply, 2)
		if err != nil || rv != c.rv {
			t.Errorf("%s: rv %s, err %v", c.name, ck.RVName(rv), err)
			continue
		}
		if want := zeroReply(t, fnGetAttributeValue, 2); !reflect.DeepEqual(items, want) {
			t.Errorf("%s: items %#v", c.name, items)
		}
		if c.rv == ck.CKR_GENERAL_ERROR && h.count("refused") != 1 {
			t.Errorf("%s: log %q", c.name, h.msgs)
		}
	}
}

func TestRVOf(t *testing.T) {
	var nilErr *hsmerr.Error
	cases := []struct {
		err  error
		want uint64
	}{
		{nil, ck.CKR_OK},
		{hsmerr.Errorf(ck.CKR_PIN_INCORRECT, "x"), ck.CKR_PIN_INCORRECT},
		{fmt.Errorf("wrapped: %w", hsmerr.Errorf(ck.CKR_KEY_HANDLE_INVALID, "")), ck.CKR_KEY_HANDLE_INVALID},
		{errors.New("plain"), ck.CKR_GENERAL_ERROR},
		{io.EOF, ck.CKR_GENERAL_ERROR},
		{nilErr, ck.CKR_GENERAL_ERROR},
		{&hsmerr.Error{RV: ck.CKR_OK}, ck.CKR_GENERAL_ERROR},
		{&hsmerr.Error{RV: ck.CKR_FUNCTION_FAILED}, ck.CKR_FUNCTION_FAILED},
	}
	for i, c := range cases {
		if got := rvOf(c.err); got != c.want {
			t.Errorf("%d %v: %s, want %s", i, c.err, ck.RVName(got), ck.RVName(c.want))
		}
	}
}

// Every strict prefix of every valid frame is refused: CKR_ARGUMENTS_BAD,
// zeroed items when the id was read, the Backend never called.
func TestCallTruncated(t *testing.T) {
	h := &countHandler{}
	for _, c := range callCases() {
		b := newRecBackend()
		d := &Dispatcher{B: b, Log: slog.New(h)}
		frame := encodeRequest(t, c.id, c.req...)
		for n := 0; n < len(frame); n++ {
			reply := d.Call(bytes.Clone(frame[:n]))
			if n < 4 {
				if len(reply) != 8 || binary.LittleEndian.Uint64(reply) != ck.CKR_ARGUMENTS_BAD {
					t.Fatalf("%s[:%d]: reply %x", c.name, n, reply)
				}
				continue
			}
			// The g count sits after "u u", at offset 20.
			gc := 0
			if g := gCountOf(c.req); g > 0 && n >= 24 {
				gc = g
			}
			rv, items, err := decodeReply(t, c.id, reply, gc)
			if err != nil || rv != ck.CKR_ARGUMENTS_BAD {
				t.Fatalf("%s[:%d]: rv %s, err %v", c.name, n, ck.RVName(rv), err)
			}
			if want := zeroReply(t, c.id, gc); !reflect.DeepEqual(items, want) {
				t.Fatalf("%s[:%d]: items %#v", c.name, n, items)
			}
		}
		if b.ncalls() != 0 {
			t.Fatalf("%s: Backend called with a truncated frame: %+v", c.name, b.calls)
		}
	}
	if h.count("refused") == 0 {
		t.Errorf("refused frames not logged")
	}
}

func TestCallTrailingBytes(t *testing.T) {
	for _, c := range callCases() {
		b := newRecBackend()
		d := &Dispatcher{B: b}
		for _, extra := range [][]byte{{0}, {1, 2, 3, 4, 5, 6, 7, 8}} {
			frame := append(encodeRequest(t, c.id, c.req...), extra...)
			reply := d.Call(frame)
			rv, items, err := decodeReply(t, c.id, reply, gCountOf(c.req))
			if err != nil || rv != ck.CKR_ARGUMENTS_BAD {
				t.Fatalf("%s+%d: rv %s, err %v", c.name, len(extra), ck.RVName(rv), err)
			}
			if want := zeroReply(t, c.id, gCountOf(c.req)); !reflect.DeepEqual(items, want) {
				t.Fatalf("%s+%d: items %#v", c.name, len(extra), items)
			}
		}
		if b.ncalls() != 0 {
			t.Fatalf("%s: Backend called: %+v", c.name, b.calls)
		}
	}
}

func TestCallUnknownFunction(t *testing.T) {
	b := newRecBackend()
	d := &Dispatcher{B: b}
	for _, id := range []uint32{0, uint32(len(functions)), 67, 100, 0x100 | fnFinalize, 0xFFFFFFFF} {
		for _, tail := range [][]byte{nil, make([]byte, 40)} {
			frame := append(binary.LittleEndian.AppendUint32(nil, id), tail...)
			reply := d.Call(frame)
			if !bytes.Equal(reply, binary.LittleEndian.AppendUint64(nil, ck.CKR_ARGUMENTS_BAD)) {
				t.Errorf("id %#x: reply %x", id, reply)
			}
		}
	}
	if b.ncalls() != 0 {
		t.Errorf("Backend called: %+v", b.calls)
	}
}

// Malformed frames that are long enough: bad flags, bad kinds, bounds.
func TestCallMalformed(t *testing.T) {
	u := func(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
	u32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	big := cat(u32(wireMaxAttrs + 1))
	for range wireMaxAttrs + 1 {
		big = append(big, cat(u(1), u32(0))...)
	}
	ok4096 := cat(u32(wireMaxAttrs))
	for range wireMaxAttrs {
		ok4096 = append(ok4096, cat(u(1), u32(0))...)
	}
	cases := []struct {
		name  string
		frame []byte
		ok    bool
	}{
		{"o present 2", cat(u32(fnEncrypt), u(1), u32(0), []byte{2}, u(5)), false},
		{"h present 9", cat(u32(fnGetSlotList), u(1), []byte{9}, u(5)), false},
		{"g present 2", cat(u32(fnGetAttributeValue), u(1), u(2), u32(1), u(3), []byte{2}, u(4)), false},
		{"mechanism kind 6", cat(u32(fnSignInit), u(1), u(2), []byte{6}, u(3)), false},
		{"mechanism kind 255", cat(u32(fnSignInit), u(1), u(2), []byte{255}, u(3)), false},
		{"EdDSA flag 7 is true", cat(u32(fnSignInit), u(1), u(2), []byte{5, 7}, u32(0), u(3)), true},
		{"b over 64 MiB", cat(u32(fnDigestUpdate), u(1), u32(wireMaxBytes+1)), false},
		{"b of 64 MiB missing", cat(u32(fnDigestUpdate), u(1), u32(wireMaxBytes)), false},
		{"template of 4097", cat(u32(fnFindObjectsInit), u(1), big), false},
		{"template of 4096", cat(u32(fnFindObjectsInit), u(1), ok4096), true},
		{"template count without entries", cat(u32(fnFindObjectsInit), u(1), u32(100)), false},
		{"g of 4097", cat(u32(fnGetAttributeValue), u(1), u(2), u32(wireMaxAttrs+1)), false},
		{"empty frame", nil, false},
	}
	for _, c := range cases {
		b := newRecBackend()
		b.rawResps = []AttrResp{}
		d := &Dispatcher{B: b}
		reply := d.Call(c.frame)
		if len(reply) < 8 {
			t.Fatalf("%s: reply %x", c.name, reply)
		}
		rv := binary.LittleEndian.Uint64(reply)
		if c.ok != (rv != ck.CKR_ARGUMENTS_BAD) || c.ok != (b.ncalls() == 1) {
			t.Errorf("%s: rv %s, %d calls", c.name, ck.RVName(rv), b.ncalls())
		}
	}
}

// A reply over the frame limit is replaced by CKR_GENERAL_ERROR.
func TestCallReplyTooBig(t *testing.T) {
	defer func(n int) { wireMaxReply = n }(wireMaxReply)
	wireMaxReply = 8 + 8 + 1 + 8*100
	h := &countHandler{}
	b := newRecBackend()
	d := &Dispatcher{B: b, Log: slog.New(h)}
	for _, n := range []int{100, 101} {
		b.list = make([]uint64, n)
		reply := d.Call(encodeRequest(t, fnFindObjects, uint64(tSH), Out{Present: true, Cap: 1000}))
		rv, items, err := decodeReply(t, fnFindObjects, reply, 0)
		if err != nil {
			t.Fatalf("%d handles: %v", n, err)
		}
		if n == 100 && (rv != ck.CKR_OK || items[0].(hRep).Count != 100) {
			t.Errorf("%d handles: rv %s, %+v", n, ck.RVName(rv), items)
		}
		if n == 101 && (rv != ck.CKR_GENERAL_ERROR || !reflect.DeepEqual(items, zeroReply(t, fnFindObjects, 0))) {
			t.Errorf("%d handles: rv %s, %+v", n, ck.RVName(rv), items)
		}
	}
	if h.count("refused") != 1 {
		t.Errorf("log %q", h.msgs)
	}
}

// The Backend's byte strings do not alias the caller's frame.
func TestCallCopiesArguments(t *testing.T) {
	b := newRecBackend()
	d := &Dispatcher{B: b}
	frame := encodeRequest(t, fnCreateObject, uint64(tSH), []Attr{{Type: 3, Value: []byte("abc")}})
	d.Call(frame)
	for i := range frame {
		frame[i] = 0xFF
	}
	if got := b.calls[0].Args[1].([]Attr)[0].Value; string(got) != "abc" {
		t.Errorf("template value changed with the frame: %q", got)
	}
}

func TestCallConcurrent(t *testing.T) {
	b := newRecBackend()
	b.noRec = true
	d := &Dispatcher{B: b}
	cases := callCases()
	frames := make([][]byte, len(cases))
	want := make([][]byte, len(cases))
	for i, c := range cases {
		if c.setup != nil {
			continue
		}
		frames[i] = encodeRequest(t, c.id, c.req...)
		want[i] = d.Call(frames[i])
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for k := range 200 {
				i := (g*31 + k) % len(frames)
				if frames[i] == nil {
					continue
				}
				if got := d.Call(frames[i]); !bytes.Equal(got, want[i]) {
					t.Errorf("%s: reply differs under concurrency", cases[i].name)
					return
				}
			}
		})
	}
	wg.Wait()
}

func FuzzCall(f *testing.F) {
	for _, c := range callCases() {
		f.Add(encodeRequest(f, c.id, c.req...))
	}
	f.Add([]byte{})
	f.Add([]byte{0xFF, 0xFF, 0xFF, 0xFF})
	f.Fuzz(func(t *testing.T, frame []byte) {
		b := newRecBackend()
		b.noRec = true
		d := &Dispatcher{B: b}
		reply := d.Call(frame)
		if len(reply) < 8 {
			t.Fatalf("reply %x has no CK_RV", reply)
		}
		if len(frame) < 4 {
			if len(reply) != 8 || binary.LittleEndian.Uint64(reply) != ck.CKR_ARGUMENTS_BAD {
				t.Fatalf("short frame: reply %x", reply)
			}
			return
		}
		id := binary.LittleEndian.Uint32(frame)
		if functionName(id) == "" {
			if len(reply) != 8 || binary.LittleEndian.Uint64(reply) != ck.CKR_ARGUMENTS_BAD {
				t.Fatalf("unknown id %d: reply %x", id, reply)
			}
			return
		}
		if strings.Contains(functions[id].items, "g") {
			return // the entry count depends on the request; covered above
		}
		if _, _, err := decodeReply(t, id, reply, 0); err != nil {
			t.Fatalf("%s: reply %x: %v", functions[id].name, reply, err)
		}
	})
}

// ---- Serve ----

func frameOf(b []byte) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, uint32(len(b))), b...)
}

func TestServePipe(t *testing.T) {
	b := newRecBackend()
	b.noRec = true
	d := &Dispatcher{B: b}
	reqR, reqW := io.Pipe()
	repR, repW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- d.Serve(reqR, repW)
		repW.Close()
	}()
	var frames [][]byte
	for _, c := range callCases() {
		if c.setup == nil {
			frames = append(frames, encodeRequest(t, c.id, c.req...))
		}
	}
	frames = append(frames, nil, []byte{1, 2}, binary.LittleEndian.AppendUint32(nil, 999))
	for i, fr := range frames {
		want := d.Call(fr)
		go func() { reqW.Write(frameOf(fr)) }()
		var hdr [4]byte
		if _, err := io.ReadFull(repR, hdr[:]); err != nil {
			t.Fatalf("frame %d: reading the reply length: %v", i, err)
		}
		got := make([]byte, binary.LittleEndian.Uint32(hdr[:]))
		if _, err := io.ReadFull(repR, got); err != nil {
			t.Fatalf("frame %d: reading the reply: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("frame %d: Serve replied %x, Call %x", i, got, want)
		}
	}
	reqW.Close()
	if err := <-done; err != nil {
		t.Fatalf("Serve after a clean EOF: %v", err)
	}
}

func TestServeErrors(t *testing.T) {
	fin := encodeRequest(t, fnFinalize)
	finReply := frameOf(binary.LittleEndian.AppendUint64(nil, ck.CKR_OK))
	cases := []struct {
		name    string
		in      []byte
		out     []byte // the replies written before the end
		wantErr bool
	}{
		{"empty", nil, nil, false},
		{"two frames", append(frameOf(fin), frameOf(fin)...), append(bytes.Clone(finReply), finReply...), false},
		{"cut in the length", append(frameOf(fin), 1, 0), finReply, true},
		{"cut in the frame", append(frameOf(fin), 8, 0, 0, 0, 1, 2), finReply, true},
		{"length without a frame", []byte{4, 0, 0, 0}, nil, true},
		{"over 80 MiB", binary.LittleEndian.AppendUint32(nil, wireMaxFrame+1), nil, true},
		{"0xFFFFFFFF", []byte{0xFF, 0xFF, 0xFF, 0xFF, 0}, nil, true},
	}
	for _, c := range cases {
		var out bytes.Buffer
		d := &Dispatcher{B: newRecBackend()}
		err := d.Serve(bytes.NewReader(c.in), &out)
		if (err != nil) != c.wantErr {
			t.Errorf("%s: err %v", c.name, err)
		}
		if !bytes.Equal(out.Bytes(), c.out) {
			t.Errorf("%s: wrote %x, want %x", c.name, out.Bytes(), c.out)
		}
	}
	// A frame of exactly 80 MiB is read (and refused by Call, since it
	// does not decode).
	var out bytes.Buffer
	d := &Dispatcher{B: newRecBackend()}
	hdr := binary.LittleEndian.AppendUint32(nil, wireMaxFrame)
	hdr = binary.LittleEndian.AppendUint32(hdr, fnDigestUpdate)
	big := io.MultiReader(bytes.NewReader(hdr), io.LimitReader(zeroReader{}, wireMaxFrame-4))
	if err := d.Serve(big, &out); err != nil {
		t.Fatalf("80 MiB frame: %v", err)
	}
	if !bytes.Equal(out.Bytes(), frameOf(binary.LittleEndian.AppendUint64(nil, ck.CKR_ARGUMENTS_BAD))) {
		t.Errorf("80 MiB frame: reply %x", out.Bytes())
	}
	// A frame over the limit is refused before it is read.
	out.Reset()
	over := io.MultiReader(bytes.NewReader(binary.LittleEndian.AppendUint32(nil, wireMaxFrame+1)), io.LimitReader(zeroReader{}, wireMaxFrame+1))
	if err := d.Serve(over, &out); err == nil || out.Len() != 0 {
		t.Errorf("frame of 80 MiB + 1: err %v, wrote %d bytes", err, out.Len())
	}
	// A failed write ends Serve with an error.
	if err := d.Serve(bytes.NewReader(frameOf(fin)), failWriter{}); err == nil {
		t.Errorf("Serve ignored a failed write")
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func (b *recBackend) EncapsulateKey(sh uint64, m Mechanism, pub uint64, t []Attr, out Out) (OutResult, uint64, error) {
	r, err := b.o("EncapsulateKey", out, sh, m, pub, t, out)
	return r, b.handle, err
}
func (b *recBackend) DecapsulateKey(sh uint64, m Mechanism, priv uint64, t []Attr, ct []byte) (uint64, error) {
	return b.handle, b.rec("DecapsulateKey", sh, m, priv, t, ct)
}
