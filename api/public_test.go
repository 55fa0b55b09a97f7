package api_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/api"
	"github.com/openhsm/openhsm/api/dataplane"
)

// A public session's token may call exactly the Public rows: session
// methods only, and every data-path method (whose connection does not
// look the method up again for the role).
func TestPublicMethods(t *testing.T) {
	var public []string
	for _, m := range api.Methods() {
		if m.Public {
			require.Equal(t, api.Session, m.Access, "%s: a Public method needs a session", m.Name)
			public = append(public, m.Name)
		}
	}
	assert.ElementsMatch(t, []string{"Refresh", "Logout", "CreateObject", "CopyObject", "DestroyObject", "FindObjects",
		"GetAttributes", "SetAttributes", "GenerateKey", "GenerateKeyPair", "WrapKey", "UnwrapKey", "DeriveKey",
		"Sign", "Verify", "Encrypt", "Decrypt", "Digest", "GenerateRandom"}, public)
	for op := dataplane.OpSign; op.Valid(); op++ {
		m, ok := api.MethodOf(api.ServicePrefix + op.String())
		require.True(t, ok, "%s", op)
		assert.True(t, m.Public, "data-path method %s is not Public", op)
	}
}
