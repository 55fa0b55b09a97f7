// Command fakehelper stands in for openhsm-p11-helper in the ABI tests: it
// speaks the helper's protocol on fd 0 with the real frame codec
// (core.Dispatcher) over a scripted Backend, so the tests reach the C layer's
// marshalling and copying-out without a cluster. Each Backend call is
// appended to $FAKE_LOG as one line, which the tests compare with what the C
// caller passed.
//
// Some session handles are traps, answered by hand instead of by the
// dispatcher: 666 a reply whose o item claims more data than the buffer
// holds, 667 a reply cut short, 668 no reply (the helper exits), 669 a reply
// with a byte too many, 670 a bare CKR_GENERAL_ERROR, 671 random bytes one
// short of what was asked. With FAKE_FAIL=1, C_Initialize fails.
package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/p11module/core"
)

const (
	ckrOK                 = 0x0
	ckrGeneralError       = 0x5
	ckrSlotIDInvalid      = 0x3
	ckrAttributeSensitive = 0x11
	ckrAttributeTypeInval = 0x12
	ckrBufferTooSmall     = 0x150
	ckaLabel              = 0x3
	ckaValue              = 0x11
	ckaKeyType            = 0x100
	unavailable           = ^uint64(0)
	fnEncrypt             = 30
	fnGenerateRandom      = 64
	trapOverflow          = 666
	trapShort             = 667
	trapExit              = 668
	trapTrailing          = 669
	trapBare              = 670
	trapShortRandom       = 671
)

var (
	logMu   sync.Mutex
	logFile *os.File
)

func logf(format string, args ...any) {
	if logFile == nil {
		return
	}
	logMu.Lock()
	defer logMu.Unlock()
	fmt.Fprintf(logFile, format+"\n", args...)
}

func rv(code uint64) error { return hsmerr.Errorf(code, "fake") }

// out follows the two-call rule for data.
func out(o core.Out, data []byte) (core.OutResult, error) {
	n := uint64(len(data))
	if !o.Present {
		return core.OutResult{Len: n}, nil
	}
	if o.Cap < n {
		return core.OutResult{Len: n}, rv(ckrBufferTooSmall)
	}
	return core.OutResult{Len: n, Data: data}, nil
}

func pad(s string, n int) []byte {
	b := []byte(s + strings.Repeat(" ", n))
	return b[:n]
}

func reverse(b []byte) []byte {
	r := make([]byte, len(b))
	for i := range b {
		r[len(b)-1-i] = b[i]
	}
	return r
}

func mech(m core.Mechanism) string {
	s := fmt.Sprintf("type=%#x kind=%d", m.Type, m.Kind)
	switch m.Kind {
	case 1:
		s += fmt.Sprintf(" raw=%x", m.Raw)
	case 2:
		s += fmt.Sprintf(" iv=%x ivbits=%d aad=%x tagbits=%d", m.IV, m.IVBits, m.AAD, m.TagBits)
	case 3:
		s += fmt.Sprintf(" hash=%#x mgf=%#x source=%#x data=%x", m.Hash, m.MGF, m.Source, m.SourceData)
	case 4:
		s += fmt.Sprintf(" kdf=%#x shared=%x public=%x", m.KDF, m.SharedData, m.PublicData)
	case 5:
		s += fmt.Sprintf(" ph=%v context=%x", m.PHFlag, m.Context)
	}
	return s
}

func tmpl(t []core.Attr) string {
	var parts []string
	for _, a := range t {
		if a.Null {
			parts = append(parts, fmt.Sprintf("%#x=NULL", a.Type))
		} else {
			parts = append(parts, fmt.Sprintf("%#x=%x", a.Type, a.Value))
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// fake is the scripted Backend. Methods it does not have panic on the nil
// embedded interface, which the dispatcher answers CKR_GENERAL_ERROR.
type fake struct{ core.Backend }

// Initialize fails when FAKE_FAIL=1, as a helper that cannot read its
// configuration does.
func (fake) Initialize(flags uint64) error {
	logf("Initialize flags=%#x", flags)
	if os.Getenv("FAKE_FAIL") == "1" {
		return hsmerr.Errorf(ckrGeneralError, "fake failure")
	}
	return nil
}
func (fake) Finalize() error { logf("Finalize"); return nil }

func (fake) GetInfo() (core.Info, error) {
	logf("GetInfo")
	var v core.Info
	v.CryptokiVersion = [2]byte{3, 0}
	copy(v.ManufacturerID[:], pad("fake maker", 32))
	v.Flags = 0x5
	copy(v.LibraryDescription[:], pad("fake helper", 32))
	v.LibraryVersion = [2]byte{1, 2}
	return v, nil
}

func (fake) GetSlotList(tokenPresent bool) ([]uint64, error) {
	logf("GetSlotList present=%v", tokenPresent)
	return []uint64{1, 17}, nil
}

func (fake) GetMechanismList(slot uint64) ([]uint64, error) {
	logf("GetMechanismList slot=%d", slot)
	return []uint64{0x1, 0x1087, 0x1057}, nil
}

func (fake) GetSlotInfo(slot uint64) (core.SlotInfo, error) {
	logf("GetSlotInfo slot=%d", slot)
	var v core.SlotInfo
	if slot != 1 {
		return v, rv(ckrSlotIDInvalid)
	}
	copy(v.SlotDescription[:], pad("fake slot", 64))
	copy(v.ManufacturerID[:], pad("fake maker", 32))
	v.Flags = 0x1
	v.HardwareVersion = [2]byte{4, 5}
	v.FirmwareVersion = [2]byte{6, 7}
	return v, nil
}

func (fake) GetTokenInfo(slot uint64) (core.TokenInfo, error) {
	logf("GetTokenInfo slot=%d", slot)
	var v core.TokenInfo
	copy(v.Label[:], pad("fake token", 32))
	copy(v.ManufacturerID[:], pad("fake maker", 32))
	copy(v.Model[:], pad("model", 16))
	copy(v.SerialNumber[:], pad("0042", 16))
	v.Flags = 0x40d
	v.MaxSessionCount, v.SessionCount = 11, 12
	v.MaxRwSessionCount, v.RwSessionCount = 13, 14
	v.MaxPinLen, v.MinPinLen = 15, 16
	v.TotalPublicMemory, v.FreePublicMemory = 17, 18
	v.TotalPrivateMemory, v.FreePrivateMemory = 19, 20
	v.HardwareVersion = [2]byte{1, 1}
	v.FirmwareVersion = [2]byte{2, 2}
	copy(v.UTCTime[:], "2025112312000000")
	return v, nil
}

func (fake) GetMechanismInfo(slot, m uint64) (core.MechanismInfo, error) {
	logf("GetMechanismInfo slot=%d mech=%#x", slot, m)
	return core.MechanismInfo{MinKeySize: 128, MaxKeySize: 256, Flags: 0x300}, nil
}

func (fake) InitToken(slot uint64, so, label []byte) error {
	logf("InitToken slot=%d so=%q label=%q", slot, so, label)
	return nil
}

func (fake) OpenSession(slot, flags uint64) (uint64, error) {
	logf("OpenSession slot=%d flags=%#x", slot, flags)
	return 0x1234, nil
}

func (fake) CloseSession(sh uint64) error { logf("CloseSession sh=%#x", sh); return nil }

func (fake) GetSessionInfo(sh uint64) (core.SessionInfo, error) {
	logf("GetSessionInfo sh=%#x", sh)
	return core.SessionInfo{SlotID: 1, State: 3, Flags: 6, DeviceError: 7}, nil
}

func (fake) Login(sh, ut uint64, pin []byte) error {
	logf("Login sh=%#x ut=%d pin=%q null=%v", sh, ut, pin, pin == nil)
	return nil
}

func (fake) LoginUser(sh, ut uint64, pin, user []byte) error {
	logf("LoginUser sh=%#x ut=%d pin=%q user=%q", sh, ut, pin, user)
	return nil
}

func (fake) SessionCancel(sh, flags uint64) error {
	logf("SessionCancel sh=%#x flags=%#x", sh, flags)
	return nil
}

func (fake) CreateObject(sh uint64, t []core.Attr) (uint64, error) {
	logf("CreateObject sh=%#x t=%s", sh, tmpl(t))
	return 0xabcdef, nil
}

func (fake) GetAttributeValue(sh, obj uint64, req []core.AttrReq) ([]core.AttrResp, error) {
	logf("GetAttributeValue sh=%#x obj=%#x n=%d", sh, obj, len(req))
	resp := make([]core.AttrResp, len(req))
	var err error
	for i, r := range req {
		var val []byte
		switch r.Type {
		case ckaLabel:
			val = []byte("fake-label")
		case ckaKeyType:
			val = binary.LittleEndian.AppendUint64(nil, 0x1f)
		case ckaValue:
			resp[i].Len = unavailable
			err = rv(ckrAttributeSensitive)
			continue
		default:
			resp[i].Len = unavailable
			if err == nil {
				err = rv(ckrAttributeTypeInval)
			}
			continue
		}
		switch {
		case !r.Present:
			resp[i].Len = uint64(len(val))
		case r.Cap < uint64(len(val)):
			resp[i].Len = unavailable
			if err == nil {
				err = rv(ckrBufferTooSmall)
			}
		default:
			resp[i] = core.AttrResp{Len: uint64(len(val)), Data: val}
		}
	}
	return resp, err
}

func (fake) FindObjectsInit(sh uint64, t []core.Attr) error {
	logf("FindObjectsInit sh=%#x t=%s", sh, tmpl(t))
	return nil
}

func (fake) FindObjects(sh, max uint64) ([]uint64, error) {
	logf("FindObjects sh=%#x max=%d", sh, max)
	all := []uint64{10, 20, 30}
	if max < uint64(len(all)) {
		all = all[:max]
	}
	return all, nil
}

func (fake) EncryptInit(sh uint64, m core.Mechanism, key uint64) error {
	logf("EncryptInit sh=%#x %s key=%#x", sh, mech(m), key)
	return nil
}

func (fake) Encrypt(sh uint64, data []byte, o core.Out) (core.OutResult, error) {
	logf("Encrypt sh=%#x data=%x present=%v cap=%d", sh, data, o.Present, o.Cap)
	return out(o, reverse(data))
}

func (fake) DecryptInit(sh uint64, m core.Mechanism, key uint64) error {
	logf("DecryptInit sh=%#x %s key=%#x", sh, mech(m), key)
	return nil
}

func (fake) DigestInit(sh uint64, m core.Mechanism) error {
	logf("DigestInit sh=%#x %s", sh, mech(m))
	return nil
}

func (fake) SignInit(sh uint64, m core.Mechanism, key uint64) error {
	logf("SignInit sh=%#x %s key=%#x", sh, mech(m), key)
	return nil
}

func (fake) SignFinal(sh uint64, o core.Out) (core.OutResult, error) {
	logf("SignFinal sh=%#x present=%v cap=%d", sh, o.Present, o.Cap)
	return out(o, []byte("signature"))
}

func (fake) Verify(sh uint64, data, sig []byte) error {
	logf("Verify sh=%#x data=%q sig=%q", sh, data, sig)
	return nil
}

func (fake) GenerateKeyPair(sh uint64, m core.Mechanism, pub, priv []core.Attr) (uint64, uint64, error) {
	logf("GenerateKeyPair sh=%#x %s pub=%s priv=%s", sh, mech(m), tmpl(pub), tmpl(priv))
	return 0x1111, 0x2222, nil
}

func (fake) WrapKey(sh uint64, m core.Mechanism, wrapping, key uint64, o core.Out) (core.OutResult, error) {
	logf("WrapKey sh=%#x %s wrapping=%#x key=%#x present=%v cap=%d", sh, mech(m), wrapping, key, o.Present, o.Cap)
	return out(o, []byte("wrapped-key-bytes"))
}

func (fake) UnwrapKey(sh uint64, m core.Mechanism, unwrapping uint64, wrapped []byte, t []core.Attr) (uint64, error) {
	logf("UnwrapKey sh=%#x %s unwrapping=%#x wrapped=%x t=%s", sh, mech(m), unwrapping, wrapped, tmpl(t))
	return 0x3333, nil
}

func (fake) DeriveKey(sh uint64, m core.Mechanism, base uint64, t []core.Attr) (uint64, error) {
	logf("DeriveKey sh=%#x %s base=%#x t=%s", sh, mech(m), base, tmpl(t))
	return 0x4444, nil
}

func (fake) SeedRandom(sh uint64, seed []byte) error {
	logf("SeedRandom sh=%#x seed=%q", sh, seed)
	return nil
}

func (fake) GenerateRandom(sh uint64, n uint64) ([]byte, error) {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(sh)
	}
	return b, nil
}

// trap answers a trap handle by hand; it returns nil for a normal frame.
func trap(req []byte) []byte {
	if len(req) < 12 {
		return nil
	}
	fn := binary.LittleEndian.Uint32(req)
	sh := binary.LittleEndian.Uint64(req[4:])
	le := binary.LittleEndian
	switch {
	case fn == fnEncrypt && sh == trapOverflow:
		// rv OK, o: length 100, copied, 100 bytes, for a buffer of less.
		r := le.AppendUint64(nil, ckrOK)
		r = le.AppendUint64(r, 100)
		r = append(r, 1)
		r = le.AppendUint32(r, 100)
		return append(r, make([]byte, 100)...)
	case fn == fnEncrypt && sh == trapShort:
		r := le.AppendUint64(nil, ckrOK)
		return le.AppendUint64(r, 4) // no copied byte
	case fn == fnEncrypt && sh == trapExit:
		logf("exit")
		os.Exit(0)
	case fn == fnEncrypt && sh == trapTrailing:
		r := le.AppendUint64(nil, ckrOK)
		r = le.AppendUint64(r, 0)
		r = append(r, 0)
		return append(r, 0xee)
	case fn == fnEncrypt && sh == trapBare:
		return le.AppendUint64(nil, ckrGeneralError)
	case fn == fnGenerateRandom && sh == trapShortRandom && len(req) >= 20:
		n := le.Uint64(req[12:])
		r := le.AppendUint64(nil, ckrOK)
		r = le.AppendUint32(r, uint32(n-1))
		return append(r, make([]byte, n-1)...)
	}
	return nil
}

func main() {
	if p := os.Getenv("FAKE_LOG"); p != "" {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fakehelper:", err)
			os.Exit(2)
		}
		logFile = f
	}
	sock := os.NewFile(0, "socket")
	d := &core.Dispatcher{B: fake{}}
	br := bufio.NewReader(sock)
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			os.Exit(0)
		}
		req := make([]byte, binary.LittleEndian.Uint32(hdr[:]))
		if _, err := io.ReadFull(br, req); err != nil {
			fmt.Fprintln(os.Stderr, "fakehelper: short frame:", err)
			os.Exit(1)
		}
		reply := trap(req)
		if reply == nil {
			reply = d.Call(req)
		}
		msg := binary.LittleEndian.AppendUint32(nil, uint32(len(reply)))
		if _, err := sock.Write(append(msg, reply...)); err != nil {
			fmt.Fprintln(os.Stderr, "fakehelper: write:", err)
			os.Exit(1)
		}
	}
}

func (fake) EncapsulateKey(sh uint64, m core.Mechanism, pub uint64, t []core.Attr, out core.Out) (core.OutResult, uint64, error) {
	logf("EncapsulateKey sh=%#x %s pub=%#x t=%s", sh, mech(m), pub, tmpl(t))
	ct := []byte("ciphertext")
	if !out.Present {
		return core.OutResult{Len: uint64(len(ct))}, 0, nil
	}
	if out.Cap < uint64(len(ct)) {
		return core.OutResult{Len: uint64(len(ct))}, 0, rv(ckrBufferTooSmall)
	}
	return core.OutResult{Len: uint64(len(ct)), Data: ct}, 0x5555, nil
}

func (fake) DecapsulateKey(sh uint64, m core.Mechanism, priv uint64, t []core.Attr, ct []byte) (uint64, error) {
	logf("DecapsulateKey sh=%#x %s priv=%#x t=%s ct=%q", sh, mech(m), priv, tmpl(t), ct)
	return 0x6666, nil
}
