package mech

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/ck"
)

// TestMechRecoverFlags: C_GetMechanismInfo advertises signing and verifying
// with recovery for CKM_RSA_PKCS and CKM_RSA_X_509, and for no other row.
func TestMechRecoverFlags(t *testing.T) {
	want := map[uint64]bool{ck.CKM_RSA_PKCS: true, ck.CKM_RSA_X_509: true}
	seen := 0
	for _, row := range Mechanisms() {
		mt := row.Type
		got := row.Flags & fRecover
		if want[mt] {
			seen++
			assert.Equal(t, uint64(fRecover), got, "%s", ck.MechName(mt))
		} else {
			assert.Zero(t, got, "%s", ck.MechName(mt))
		}
	}
	require.Equal(t, len(want), seen)
}
