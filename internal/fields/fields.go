// Package fields is the length-prefixed binary encoding the snapshot stream
// and the audit records share: big-endian integers, and byte strings as a
// 4-byte length and the bytes, where the length 0xFFFFFFFF (Null) stands for
// a NULL value. A Reader never panics on short or hostile input: the first
// bad read marks it bad and every later read returns a zero value.
package fields

import "encoding/binary"

// Null is the length that encodes a NULL byte string.
const Null = 0xFFFFFFFF

// AppendStr appends s with its length.
func AppendStr(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// AppendNullable appends v with its length, or Null for a nil v.
func AppendNullable(b, v []byte) []byte {
	if v == nil {
		return binary.BigEndian.AppendUint32(b, Null)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

// AppendI64 appends v as 8 big-endian bytes.
func AppendI64(b []byte, v int64) []byte { return binary.BigEndian.AppendUint64(b, uint64(v)) }

// Reader parses a record body.
type Reader struct {
	b   []byte
	bad bool
}

// NewReader reads b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Bad reports whether a read failed.
func (f *Reader) Bad() bool { return f.bad }

// Fail marks the reader bad, for a value the caller finds invalid.
func (f *Reader) Fail() { f.bad = true }

// Done reports whether every byte was read and no read failed.
func (f *Reader) Done() bool { return !f.bad && len(f.b) == 0 }

// Skip drops what is left unread.
func (f *Reader) Skip() { f.b = nil }

// Take returns the next n bytes, uncopied.
func (f *Reader) Take(n int) []byte {
	if f.bad || n < 0 || n > len(f.b) {
		f.bad = true
		return nil
	}
	v := f.b[:n:n]
	f.b = f.b[n:]
	return v
}

// Byte reads one byte.
func (f *Reader) Byte() byte {
	v := f.Take(1)
	if v == nil {
		return 0
	}
	return v[0]
}

// I64 reads 8 big-endian bytes.
func (f *Reader) I64() int64 {
	v := f.Take(8)
	if v == nil {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

// raw reads a length and that many bytes, uncopied; null reports the Null
// length, which only Nullable accepts.
func (f *Reader) raw() (v []byte, null bool) {
	l := f.Take(4)
	if l == nil {
		return nil, false
	}
	n := binary.BigEndian.Uint32(l)
	if n == Null {
		return nil, true
	}
	if uint64(n) > uint64(len(f.b)) {
		f.bad = true
		return nil, false
	}
	return f.Take(int(n)), false
}

// Nullable returns nil for NULL, else a copy (never nil).
func (f *Reader) Nullable() []byte {
	v, null := f.raw()
	if null || f.bad {
		return nil
	}
	return append([]byte{}, v...)
}

// Bytes returns a copy, never nil; NULL is malformed.
func (f *Reader) Bytes() []byte {
	v, null := f.raw()
	if null {
		f.bad = true
	}
	if f.bad {
		return nil
	}
	return append([]byte{}, v...)
}

// Str reads a string; NULL is malformed.
func (f *Reader) Str() string {
	v, null := f.raw()
	if null {
		f.bad = true
	}
	return string(v)
}
