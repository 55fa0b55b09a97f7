package api

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

func TestCheckPrincipalName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"ci-deployer", true},
		{"Alice.Smith@example.com", true},
		{"x+y=z,w_v-u", true},
		{"0123456789", true},
		{strings.Repeat("p", 64), true},
		{"", false},
		{strings.Repeat("p", 65), false},
		{"has space", false},
		{"slash/name", false},
		{"colon:name", false},
		{"star*", false},
		{"tab\tname", false},
		{"nul\x00", false},
		{"é", false},
		{"ünïcode", false},
		{"new\nline", false},
		{"\xff", false}, // not UTF-8
	} {
		err := CheckPrincipalName("name", tc.name)
		if tc.ok {
			assert.NoError(t, err, "%q", tc.name)
			continue
		}
		require.Error(t, err, "%q", tc.name)
		assert.Equal(t, uint64(ck.CKR_ARGUMENTS_BAD), hsmerr.RV(err), "%q", tc.name)
		var fe *FieldError
		require.ErrorAs(t, err, &fe, "%q", tc.name)
		assert.Equal(t, "name", fe.Field)
	}
}
