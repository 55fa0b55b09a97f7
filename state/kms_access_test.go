package state_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/state"
)

// TestKMSKeyPolicyParsedOnce: keys with the same policy document share one
// parse; a document that does not parse is no policy.
func TestKMSKeyPolicyParsedOnce(t *testing.T) {
	doc := `{"Version":"2012-10-17","Statement":[{"Sid":"Root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`
	a := state.KMSKeyPolicy(&state.KMSKey{ID: "a", Policy: doc})
	require.NotNil(t, a)
	require.Len(t, a.Statements, 1)
	assert.Equal(t, `"Root"`, a.Statements[0].Name())
	assert.Same(t, a, state.KMSKeyPolicy(&state.KMSKey{ID: "b", Policy: doc}), "the same document is parsed once")

	other := state.KMSKeyPolicy(&state.KMSKey{ID: "c", Policy: `{"Statement":[{"Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*"}]}`})
	require.NotNil(t, other)
	assert.NotSame(t, a, other)
	assert.Equal(t, "Deny", string(other.Statements[0].Effect))

	assert.Nil(t, state.KMSKeyPolicy(&state.KMSKey{ID: "d", Policy: `{"anything":"else"}`}), "twice: once parsed, once cached")
	assert.Nil(t, state.KMSKeyPolicy(&state.KMSKey{ID: "d", Policy: `{"anything":"else"}`}))
}
