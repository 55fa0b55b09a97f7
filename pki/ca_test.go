package pki

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// New cluster IDs take the form AWS SDKs accept as a CloudHSM cluster ID.
func TestNewClusterIDForm(t *testing.T) {
	re := regexp.MustCompile(`^cluster-[2-7a-zA-Z]{11,16}$`)
	seen := map[string]bool{}
	for range 100 {
		id, err := NewClusterID()
		require.NoError(t, err)
		require.Regexp(t, re, id)
		require.NoError(t, ValidateClusterID(id))
		require.False(t, seen[id])
		seen[id] = true
	}
	require.NoError(t, ValidateClusterID("c-23ed955daeecb376"), "an earlier cluster's ID stays valid")
}
