package core

import (
	"bytes"
	"encoding/binary"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// wireHFunc is one #define of ../wire.h.
type wireHFunc struct {
	macro string // "SIGN" for WIRE_SIGN
	items string // the comment, "u b o -> o"
}

var (
	wireHOnce  sync.Once
	wireHFuncs map[uint32]wireHFunc
	wireHMax   int
	wireHErr   error
)

var wireHDefine = regexp.MustCompile(`^#define\s+WIRE_([A-Z_]+)\s+(\d+)\s*(?:/\*\s*(.*?)\s*\*/)?\s*$`)

// loadWireH parses ../wire.h: the C side's list, which the tests treat as the
// reference (encodeRequest and decodeReply follow it, not the Go table).
func loadWireH(t testing.TB) map[uint32]wireHFunc {
	t.Helper()
	wireHOnce.Do(func() {
		src, err := os.ReadFile("../wire.h")
		if err != nil {
			wireHErr = err
			return
		}
		wireHFuncs = map[uint32]wireHFunc{}
		for line := range strings.SplitSeq(string(src), "\n") {
			m := wireHDefine.FindStringSubmatch(strings.TrimSpace(line))
			if m == nil {
				continue
			}
			n, err := strconv.Atoi(m[2])
			if err != nil {
				wireHErr = err
				return
			}
			if m[1] == "MAX_FUNCTION" {
				wireHMax = n
				continue
			}
			if _, dup := wireHFuncs[uint32(n)]; dup {
				wireHErr = &strconv.NumError{Func: "duplicate id", Num: m[2]}
				return
			}
			wireHFuncs[uint32(n)] = wireHFunc{macro: m[1], items: m[3]}
		}
	})
	if wireHErr != nil {
		t.Fatalf("../wire.h: %v", wireHErr)
	}
	return wireHFuncs
}

// wireHSpec is a function's request and reply items as wire.h has them.
func wireHSpec(t testing.TB, id uint32) (req, reply []string) {
	t.Helper()
	f, ok := loadWireH(t)[id]
	if !ok {
		t.Fatalf("function %d is not in wire.h", id)
	}
	l, r, _ := strings.Cut(f.items, "->")
	req, reply = strings.Fields(l), strings.Fields(r)
	if len(req) == 1 && req[0] == "-" {
		req = nil
	}
	return req, reply
}

func TestWireHMatches(t *testing.T) {
	h := loadWireH(t)
	if len(h) == 0 {
		t.Fatal("no WIRE_ ids found in wire.h")
	}
	if wireHMax != len(functions)-1 {
		t.Errorf("WIRE_MAX_FUNCTION = %d, Go table ends at %d", wireHMax, len(functions)-1)
	}
	for id, f := range functions {
		if id == 0 {
			if f.name != "" {
				t.Errorf("functions[0] = %q, want unused", f.name)
			}
			continue
		}
		if f.name == "" {
			continue // an id between blocks, unused
		}
		c, ok := h[uint32(id)]
		if !ok {
			t.Errorf("%d %s: not in wire.h", id, f.name)
			continue
		}
		if !strings.HasPrefix(f.name, "C_") || strings.ToUpper(strings.TrimPrefix(f.name, "C_")) != c.macro {
			t.Errorf("%d: Go name %s does not match WIRE_%s", id, f.name, c.macro)
		}
		if f.items != c.items {
			t.Errorf("%d %s: Go items %q, wire.h %q", id, f.name, f.items, c.items)
		}
	}
	for id, c := range h {
		if int(id) >= len(functions) || functions[id].name == "" {
			t.Errorf("WIRE_%s = %d is not in the Go table", c.macro, id)
		}
	}
}

func TestParseItems(t *testing.T) {
	good := map[string]wireSpec{
		"-":              {},
		"u":              {req: []byte("u")},
		"-> s":           {reply: []byte("s")},
		"u m t t -> p p": {req: []byte("umtt"), reply: []byte("pp")},
		"u u g -> g":     {req: []byte("uug"), reply: []byte("g")},
		"u m u u o -> o": {req: []byte("umuuo"), reply: []byte("o")},
		"u h -> h":       {req: []byte("uh"), reply: []byte("h")},
		"u u -> b":       {req: []byte("uu"), reply: []byte("b")},
		"u b b":          {req: []byte("ubb")},
		" u  o  ->  o ":  {req: []byte("uo"), reply: []byte("o")},
	}
	for in, want := range good {
		got, err := parseItems(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if !bytes.Equal(got.req, want.req) || !bytes.Equal(got.reply, want.reply) {
			t.Errorf("%q: got %q -> %q, want %q -> %q", in, got.req, got.reply, want.req, want.reply)
		}
	}
	for _, in := range []string{"x", "u ->", "u uu", "u -> u", "p", "o o", "m m", "u -> g", "u -> s s", "u h -> h h", "u b -> o", "u -> b b", "u b -> p q"} {
		if _, err := parseItems(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

// le builds little-endian byte strings for the reader tests.
func le(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch v := p.(type) {
		case uint8:
			b = append(b, v)
		case uint32:
			b = binary.LittleEndian.AppendUint32(b, v)
		case uint64:
			b = binary.LittleEndian.AppendUint64(b, v)
		case []byte:
			b = append(b, v...)
		default:
			panic("le: bad part")
		}
	}
	return b
}

func TestReaderBytes(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		want []byte
		null bool
		err  bool
	}{
		{"null", le(uint32(wireNull)), nil, true, false},
		{"empty", le(uint32(0)), []byte{}, false, false},
		{"three", le(uint32(3), []byte("abc")), []byte("abc"), false, false},
		{"short", le(uint32(4), []byte("abc")), nil, false, true},
		{"no length", []byte{1, 0}, nil, false, true},
		{"over 64 MiB", le(uint32(wireMaxBytes + 1)), nil, false, true},
		{"4 GiB - 2", le(uint32(0xFFFFFFFE)), nil, false, true},
	}
	for _, c := range cases {
		r := wireReader{buf: c.in}
		got, null := r.bytes()
		if (r.err != nil) != c.err {
			t.Errorf("%s: err = %v", c.name, r.err)
			continue
		}
		if c.err {
			continue
		}
		if null != c.null || (got == nil) != (c.want == nil) || !bytes.Equal(got, c.want) {
			t.Errorf("%s: got %v (nil %v) null %v, want %v (nil %v) null %v", c.name, got, got == nil, null, c.want, c.want == nil, c.null)
		}
		if len(r.buf) != 0 {
			t.Errorf("%s: %d bytes left", c.name, len(r.buf))
		}
	}
	// The 64 MiB bound: over it is refused even with the bytes there; at it,
	// only the missing bytes fail the read.
	big := make([]byte, 4+wireMaxBytes+1)
	binary.LittleEndian.PutUint32(big, wireMaxBytes+1)
	r0 := wireReader{buf: big}
	if _, _ = r0.bytes(); r0.err == nil || !strings.Contains(r0.err.Error(), "more than") {
		t.Errorf("b of 64 MiB + 1: %v", r0.err)
	}
	r0 = wireReader{buf: le(uint32(wireMaxBytes), []byte("abc"))}
	if _, _ = r0.bytes(); r0.err == nil || !strings.Contains(r0.err.Error(), "wanted") {
		t.Errorf("b of 64 MiB: %v", r0.err)
	}

	// The copy does not alias the frame.
	in := le(uint32(2), []byte("xy"))
	r := wireReader{buf: in}
	got, _ := r.bytes()
	in[4] = 'z'
	if string(got) != "xy" {
		t.Errorf("bytes alias the frame: %q", got)
	}
}

func TestReaderStickyError(t *testing.T) {
	r := wireReader{buf: []byte{1, 2, 3}}
	if v := r.u32(); v != 0 || r.err == nil {
		t.Fatalf("u32 of 3 bytes = %d, err %v", v, r.err)
	}
	if v := r.u8(); v != 0 {
		t.Errorf("u8 after an error = %d", v)
	}
	if len(r.buf) != 3 {
		t.Errorf("a failed read consumed input")
	}
}

func TestReaderTemplateBounds(t *testing.T) {
	full := func(n int) []byte {
		b := le(uint32(n))
		for i := 0; i < n; i++ {
			b = append(b, le(uint64(i), uint32(0))...)
		}
		return b
	}
	r := wireReader{buf: full(wireMaxAttrs)}
	if tt := r.template(); r.err != nil || len(tt) != wireMaxAttrs {
		t.Fatalf("template of %d: %d attrs, %v", wireMaxAttrs, len(tt), r.err)
	}
	r = wireReader{buf: full(wireMaxAttrs + 1)}
	if r.template(); r.err == nil {
		t.Errorf("template of %d accepted", wireMaxAttrs+1)
	}
	// A large count with nothing behind it fails before allocating.
	r = wireReader{buf: le(uint32(4000))}
	if r.template(); r.err == nil {
		t.Errorf("template count without entries accepted")
	}
	r = wireReader{buf: le(uint32(0xFFFFFFFF))}
	if _, n := r.getTemplate(); r.err == nil || n != -1 {
		t.Errorf("g count 0xFFFFFFFF: n %d, err %v", n, r.err)
	}
	// g entries cut short: the count is known.
	r = wireReader{buf: le(uint32(2), uint64(1), uint8(1), uint64(8))}
	if _, n := r.getTemplate(); r.err == nil || n != 2 {
		// refused by the size check (2 × 17 > 17), the count is known
		t.Errorf("short g: n %d, err %v", n, r.err)
	}
	r = wireReader{buf: le(uint32(2), uint64(1), uint8(1), uint64(8), uint64(2), uint8(7), uint64(0))}
	if _, n := r.getTemplate(); r.err == nil || n != 2 {
		t.Errorf("g with a bad flag: n %d, err %v", n, r.err)
	}
}

func TestReaderMechanism(t *testing.T) {
	cases := []struct {
		in   []byte
		want Mechanism
	}{
		{le(uint64(0x1082), uint8(0)), Mechanism{Type: 0x1082}},
		{le(uint64(0x1082), uint8(1), uint32(16), bytes.Repeat([]byte{7}, 16)), Mechanism{Type: 0x1082, Kind: 1, Raw: bytes.Repeat([]byte{7}, 16)}},
		{le(uint64(0x1087), uint8(2), uint32(12), make([]byte, 12), uint64(96), uint32(wireNull), uint64(128)),
			Mechanism{Type: 0x1087, Kind: 2, IV: make([]byte, 12), IVBits: 96, TagBits: 128}},
		{le(uint64(9), uint8(3), uint64(0x250), uint64(2), uint64(1), uint32(0)),
			Mechanism{Type: 9, Kind: 3, Hash: 0x250, MGF: 2, Source: 1, SourceData: []byte{}}},
		{le(uint64(0x1050), uint8(4), uint64(1), uint32(wireNull), uint32(2), []byte{4, 5}),
			Mechanism{Type: 0x1050, Kind: 4, KDF: 1, PublicData: []byte{4, 5}}},
		{le(uint64(0x1057), uint8(5), uint8(2), uint32(1), []byte{'c'}),
			Mechanism{Type: 0x1057, Kind: 5, PHFlag: true, Context: []byte("c")}},
	}
	for i, c := range cases {
		r := wireReader{buf: c.in}
		got := r.mechanism()
		if r.err != nil || len(r.buf) != 0 {
			t.Errorf("%d: err %v, %d left", i, r.err, len(r.buf))
			continue
		}
		if !mechEqual(got, c.want) {
			t.Errorf("%d: got %+v, want %+v", i, got, c.want)
		}
	}
	for kind := 6; kind < 256; kind += 50 {
		// Followed by enough bytes for any kind's fields.
		r := wireReader{buf: le(uint64(1), uint8(kind), make([]byte, 64))}
		if r.mechanism(); r.err == nil {
			t.Errorf("kind %d accepted", kind)
		}
	}
}

// mechEqual compares mechanisms, telling nil from empty byte strings.
func mechEqual(a, b Mechanism) bool {
	eq := func(x, y []byte) bool { return (x == nil) == (y == nil) && bytes.Equal(x, y) }
	return a.Type == b.Type && a.Kind == b.Kind && eq(a.Raw, b.Raw) && eq(a.IV, b.IV) && eq(a.AAD, b.AAD) &&
		a.IVBits == b.IVBits && a.TagBits == b.TagBits && a.Hash == b.Hash && a.MGF == b.MGF &&
		a.Source == b.Source && eq(a.SourceData, b.SourceData) && a.KDF == b.KDF &&
		eq(a.SharedData, b.SharedData) && eq(a.PublicData, b.PublicData) && a.PHFlag == b.PHFlag &&
		eq(a.Context, b.Context)
}

func TestReaderFlags(t *testing.T) {
	for v, ok := range map[uint8]bool{0: true, 1: true, 2: false, 0xFF: false} {
		r := wireReader{buf: le(v, uint64(5))}
		o := r.out()
		if (r.err == nil) != ok {
			t.Errorf("present=%d: err %v", v, r.err)
		}
		if ok && (o.Present != (v == 1) || o.Cap != 5) {
			t.Errorf("present=%d: %+v", v, o)
		}
	}
	// A capacity is only a number.
	r := wireReader{buf: le(uint8(1), ^uint64(0))}
	if o := r.out(); r.err != nil || o.Cap != ^uint64(0) {
		t.Errorf("huge capacity: %+v %v", o, r.err)
	}
}

func TestInfoSizes(t *testing.T) {
	for _, c := range []struct {
		v    any
		size int
	}{{Info{}, 76}, {SlotInfo{}, 108}, {TokenInfo{}, 204}, {SessionInfo{}, 32}, {MechanismInfo{}, 24}} {
		var w wireWriter
		w.info(c.v)
		if len(w.buf) != c.size {
			t.Errorf("%T: %d bytes, want %d", c.v, len(w.buf), c.size)
		}
		if !bytes.Equal(w.buf, structBytes(c.v)) {
			t.Errorf("%T: encoding differs from the field-order encoding", c.v)
		}
	}
}
