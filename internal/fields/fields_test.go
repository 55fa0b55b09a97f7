package fields

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRoundTrip(t *testing.T) {
	var b []byte
	b = AppendStr(b, "alice")
	b = AppendNullable(b, nil)
	b = AppendNullable(b, []byte{})
	b = AppendI64(b, -7)
	b = append(b, 9)
	r := NewReader(b)
	assert.Equal(t, "alice", r.Str())
	assert.Nil(t, r.Nullable())
	v := r.Nullable()
	assert.NotNil(t, v, "an empty value is not NULL")
	assert.Empty(t, v)
	assert.Equal(t, int64(-7), r.I64())
	assert.Equal(t, byte(9), r.Byte())
	assert.True(t, r.Done())
}

// Every way a hostile body can be short or wrong marks the reader bad; no
// read panics or reads past the end.
func TestBadInput(t *testing.T) {
	null := AppendNullable(nil, nil)
	cases := []struct {
		name string
		body []byte
		read func(*Reader)
	}{
		{"short integer", []byte{1, 2, 3}, func(r *Reader) { r.I64() }},
		{"short length", []byte{0, 0}, func(r *Reader) { r.Str() }},
		{"length past the end", []byte{0, 0, 0, 9, 'a'}, func(r *Reader) { r.Bytes() }},
		{"NULL where a string must be", null, func(r *Reader) { r.Str() }},
		{"NULL where bytes must be", null, func(r *Reader) { r.Bytes() }},
		{"empty byte", nil, func(r *Reader) { r.Byte() }},
		{"negative take", []byte{1}, func(r *Reader) { r.Take(-1) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := NewReader(c.body)
			c.read(r)
			assert.True(t, r.Bad())
			assert.False(t, r.Done())
			assert.Zero(t, r.I64(), "reads after a failure give zero values")
		})
	}
	r := NewReader([]byte{1, 2})
	r.Byte()
	assert.False(t, r.Done(), "bytes left unread are not done")
	r.Skip()
	assert.True(t, r.Done())
	r.Fail()
	assert.True(t, r.Bad())
}

// FuzzReader: what the encoder writes reads back the same, and any bytes
// appended after it are reported, never read as part of it.
func FuzzReader(f *testing.F) {
	f.Add("x", []byte{1}, int64(1), []byte{})
	f.Add("", []byte(nil), int64(-1), []byte{0xFF, 0xFF, 0xFF, 0xFF})
	f.Fuzz(func(t *testing.T, s string, v []byte, i int64, tail []byte) {
		b := AppendNullable(AppendI64(AppendStr(nil, s), i), v)
		r := NewReader(append(b, tail...))
		require.Equal(t, s, r.Str())
		require.Equal(t, i, r.I64())
		got := r.Nullable()
		require.Equal(t, v == nil, got == nil)
		require.Equal(t, string(v), string(got))
		require.Equal(t, len(tail) == 0, r.Done())
	})
}
