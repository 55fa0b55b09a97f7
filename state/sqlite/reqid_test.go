package sqlite

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/state"
)

// The meta operations request IDs need: keys by prefix in byte order,
// deletes, and a savepoint that undoes only its own writes.
func TestMetaKeysDeleteAndSavepoint(t *testing.T) {
	s := openTest(t)
	update(t, s, 1, func(tx state.Tx) error {
		for _, k := range []string{"q/2", "q/10", "q/1", "q0", "p/9", "q/"} {
			require.NoError(t, tx.PutMeta(k, []byte(k)))
		}
		keys, err := tx.MetaKeys("q/", 10)
		require.NoError(t, err)
		assert.Equal(t, []string{"q/", "q/1", "q/10", "q/2"}, keys, "byte order, prefix only")
		keys, err = tx.MetaKeys("q/", 2)
		require.NoError(t, err)
		assert.Equal(t, []string{"q/", "q/1"}, keys)
		_, err = tx.MetaKeys("", 1)
		assert.Error(t, err)
		require.NoError(t, tx.DeleteMeta("q/1"))
		require.NoError(t, tx.DeleteMeta("absent"))

		refusal := errors.New("refused")
		err = tx.Savepoint(func() error {
			require.NoError(t, tx.PutMeta("inner", []byte("x")))
			require.NoError(t, tx.DeleteMeta("q/2"))
			return refusal
		})
		assert.Same(t, refusal, err)
		// The transaction goes on after the rollback.
		require.NoError(t, tx.PutMeta("after", []byte("y")))
		require.NoError(t, tx.Savepoint(func() error { return tx.PutMeta("kept", []byte("z")) }))
		return nil
	})
	for k, want := range map[string]bool{"q/1": false, "q/2": true, "inner": false, "after": true, "kept": true} {
		_, err := s.Meta(k)
		assert.Equal(t, want, err == nil, "meta %q present", k)
	}
}
