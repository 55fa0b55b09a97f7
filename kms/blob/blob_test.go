package blob

import (
	"bytes"
	"testing"

	"github.com/openhsm/openhsm/kms/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sample() *Header {
	h := &Header{KeyVersion: 3}
	for i := range h.KeyID {
		h.KeyID[i] = byte(i + 1)
	}
	for i := range h.Nonce {
		h.Nonce[i] = byte(0xA0 + i)
	}
	return h
}

func TestHeaderRoundTrip(t *testing.T) {
	h := sample()
	b := h.Marshal()
	require.Len(t, b, HeaderLen)
	body := bytes.Repeat([]byte{7}, TagLen+5)
	got, rest, err := Parse(append(b, body...))
	require.NoError(t, err)
	assert.Equal(t, h, got)
	assert.Equal(t, body, rest)
	pt, ok := model.LookupShape("PlaintextType")
	require.True(t, ok)
	ct, ok := model.LookupShape("CiphertextType")
	require.True(t, ok)
	assert.LessOrEqual(t, *pt.Max+Overhead, *ct.Max, "the largest plaintext the model allows makes a blob the model allows")
}

func TestParseRefuses(t *testing.T) {
	good := append(sample().Marshal(), make([]byte, TagLen)...)
	zeroVersion := append([]byte{}, good...)
	copy(zeroVersion[1+KeyIDLen:], []byte{0, 0, 0, 0})
	otherFormat := append([]byte{}, good...)
	otherFormat[0] = 2
	for name, b := range map[string][]byte{
		"empty":             nil,
		"header only":       good[:HeaderLen],
		"one byte short":    good[:len(good)-1],
		"another format":    otherFormat,
		"key version 0":     zeroVersion,
		"not a blob at all": []byte("AQICAHh..."),
	} {
		_, _, err := Parse(b)
		assert.ErrorIs(t, err, ErrInvalid, name)
	}
	_, _, err := Parse(good)
	assert.NoError(t, err, "a header and an empty ciphertext's tag")
}

func TestContextEncoding(t *testing.T) {
	assert.Equal(t, []byte{0, 0, 0, 0}, EncodeContext(nil))
	assert.Equal(t, EncodeContext(nil), EncodeContext(map[string]string{}))
	a := EncodeContext(map[string]string{"b": "2", "a": "1"})
	assert.Equal(t, []byte{0, 0, 0, 2, 0, 0, 0, 1, 'a', 0, 0, 0, 1, '1', 0, 0, 0, 1, 'b', 0, 0, 0, 1, '2'}, a, "sorted by key, length-prefixed")
	// Contexts a naive "k=v,k=v" join would confuse stay apart.
	distinct := []map[string]string{
		{"a": "b,c=d"},
		{"a": "b", "c": "d"},
		{"a=b": ""},
		{"a": "=b"},
		{"": ""},
		{},
		{"a": ""},
		{"a\x00": ""},
	}
	seen := map[string]int{}
	for i, c := range distinct {
		e := string(EncodeContext(c))
		if j, ok := seen[e]; ok {
			t.Errorf("contexts %d and %d encode alike", j, i)
		}
		seen[e] = i
		back, err := DecodeContext([]byte(e))
		require.NoError(t, err)
		assert.Equal(t, len(c), len(back))
		for k, v := range c {
			assert.Equal(t, v, back[k])
		}
	}
}

func TestDecodeContextRefuses(t *testing.T) {
	good := EncodeContext(map[string]string{"a": "1", "b": "2"})
	swapped := []byte{0, 0, 0, 2, 0, 0, 0, 1, 'b', 0, 0, 0, 1, '2', 0, 0, 0, 1, 'a', 0, 0, 0, 1, '1'}
	repeated := []byte{0, 0, 0, 2, 0, 0, 0, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 1, 'a', 0, 0, 0, 0}
	for name, b := range map[string][]byte{
		"empty":          nil,
		"short count":    {0, 0},
		"trailing bytes": append(append([]byte{}, good...), 0),
		"truncated":      good[:len(good)-1],
		"huge count":     {0xFF, 0xFF, 0xFF, 0xFF},
		"huge length":    {0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF},
		"out of order":   swapped,
		"repeated key":   repeated,
	} {
		_, err := DecodeContext(b)
		assert.Error(t, err, name)
	}
}

func TestAADBindsEverything(t *testing.T) {
	s := Scope{Partition: "aws", Region: "eu-west-1", Account: "123456789012"}
	h := sample().Marshal()
	ec := map[string]string{"purpose": "test"}
	base := AAD(s, h, ec)
	other := sample()
	other.KeyVersion = 4
	for name, aad := range map[string][]byte{
		"region":      AAD(Scope{Partition: "aws", Region: "eu-west-2", Account: s.Account}, h, ec),
		"account":     AAD(Scope{Partition: "aws", Region: s.Region, Account: "210987654321"}, h, ec),
		"partition":   AAD(Scope{Partition: "aws-cn", Region: s.Region, Account: s.Account}, h, ec),
		"key version": AAD(s, other.Marshal(), ec),
		"context":     AAD(s, h, map[string]string{"purpose": "Test"}),
		"no context":  AAD(s, h, nil),
		"shifted":     AAD(Scope{Partition: "aws", Region: "eu-west-11", Account: "23456789012"}, h, ec),
	} {
		assert.NotEqual(t, base, aad, name)
	}
}

// FuzzDecodeContext: whatever DecodeContext accepts encodes back to the
// same bytes (the encoding is one-to-one), and any map round-trips.
func FuzzDecodeContext(f *testing.F) {
	f.Add(EncodeContext(map[string]string{"a": "1", "b": "2"}))
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeContext(b)
		if err != nil {
			return
		}
		require.Equal(t, b, EncodeContext(m))
	})
}

// FuzzParse: Parse never panics, and what it accepts marshals back.
func FuzzParse(f *testing.F) {
	f.Add(append(sample().Marshal(), make([]byte, TagLen)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, rest, err := Parse(b)
		if err != nil {
			return
		}
		require.Equal(t, b, append(h.Marshal(), rest...))
	})
}
