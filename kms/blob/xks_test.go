package blob

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestXKSEnvelopeRoundTrip(t *testing.T) {
	for _, iv := range []int{12, 16} {
		for _, md := range []int{0, 1, 20} {
			e := &XKSEnvelope{IV: bytes.Repeat([]byte{1}, iv), Tag: bytes.Repeat([]byte{2}, 16),
				Metadata: bytes.Repeat([]byte{3}, md), Ciphertext: []byte("outer")}
			b := e.Marshal()
			require.NotNil(t, b)
			got, err := ParseXKSEnvelope(b)
			require.NoError(t, err)
			assert.Equal(t, e, got)
		}
	}
}

// TestXKSEnvelopeOverhead pins what docs/kms.md says the envelope adds to
// the proxy's ciphertext: 32 to 56 bytes.
func TestXKSEnvelopeOverhead(t *testing.T) {
	ct := []byte("outer")
	least := (&XKSEnvelope{IV: make([]byte, 12), Tag: make([]byte, 16), Ciphertext: ct}).Marshal()
	most := (&XKSEnvelope{IV: make([]byte, 16), Tag: make([]byte, 16), Metadata: make([]byte, 20), Ciphertext: ct}).Marshal()
	assert.Equal(t, 32, len(least)-len(ct))
	assert.Equal(t, 56, len(most)-len(ct))
}

func TestXKSEnvelopeRefuses(t *testing.T) {
	good := (&XKSEnvelope{IV: make([]byte, 12), Tag: make([]byte, 16), Metadata: []byte{9}, Ciphertext: []byte{7}}).Marshal()
	cases := map[string][]byte{
		"empty":         nil,
		"version":       append([]byte{2}, good[1:]...),
		"iv length":     append([]byte{1, 13}, good[2:]...),
		"short iv":      good[:5],
		"tag length":    func() []byte { b := bytes.Clone(good); b[2+12] = 15; return b }(),
		"metadata long": func() []byte { b := bytes.Clone(good); b[2+12+1+16] = 21; return b }(),
		"no ciphertext": good[:len(good)-1],
	}
	for name, b := range cases {
		_, err := ParseXKSEnvelope(b)
		assert.ErrorIs(t, err, ErrInvalid, name)
	}
	for name, e := range map[string]*XKSEnvelope{
		"iv":         {IV: make([]byte, 8), Tag: make([]byte, 16), Ciphertext: []byte{1}},
		"tag":        {IV: make([]byte, 12), Tag: make([]byte, 12), Ciphertext: []byte{1}},
		"metadata":   {IV: make([]byte, 12), Tag: make([]byte, 16), Metadata: make([]byte, 21), Ciphertext: []byte{1}},
		"ciphertext": {IV: make([]byte, 12), Tag: make([]byte, 16)},
	} {
		assert.Nil(t, e.Marshal(), name)
	}
}

func TestXKSAADBindsInner(t *testing.T) {
	a, b := XKSAAD([]byte("x")), XKSAAD([]byte("y"))
	assert.Len(t, a, 32)
	assert.NotEqual(t, a, b)
	assert.Equal(t, a, XKSAAD([]byte("x")))
}

func FuzzXKSEnvelope(f *testing.F) {
	f.Add((&XKSEnvelope{IV: make([]byte, 12), Tag: make([]byte, 16), Ciphertext: []byte{1}}).Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseXKSEnvelope(b)
		if err != nil {
			return
		}
		if !bytes.Equal(e.Marshal(), b) {
			t.Fatal("a parsed envelope does not marshal back to its bytes")
		}
	})
}
