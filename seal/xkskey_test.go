package seal

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The XKS metadata key is the same for the same domain key (every node
// agrees), differs between domain keys, and is none of the other purpose
// keys.
func TestXKSMetadataKey(t *testing.T) {
	dk := bytes.Repeat([]byte{9}, 32)
	a, err := NewSealer(dk)
	require.NoError(t, err)
	b, err := NewSealer(dk)
	require.NoError(t, err)
	other, err := NewSealer(bytes.Repeat([]byte{8}, 32))
	require.NoError(t, err)
	k := a.XKSMetadataKey()
	require.Len(t, k, XKSMetadataKeyLen)
	assert.Equal(t, k, b.XKSMetadataKey())
	assert.NotEqual(t, k, other.XKSMetadataKey())
	for _, p := range [][]byte{a.dk, a.macKey, a.tokKey, a.fwdKey, a.auditKey, a.recordKey, a.glassKey, a.backupKey()} {
		assert.NotEqual(t, k, p)
	}
}
