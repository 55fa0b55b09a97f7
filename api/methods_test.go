package api

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/api/hsmpb"
)

// The table names every method of the generated HSM service, once, and
// nothing else.
func TestMethodsMatchService(t *testing.T) {
	service := ServiceMethodNames(&hsmpb.HSM_ServiceDesc)
	var table []string
	for _, m := range Methods() {
		table = append(table, m.Name)
		assert.Contains(t, []Access{Certificate, Session}, m.Access, m.Name)
		assert.Contains(t, []Retry{RetryNotRun, RetryIdempotent, RetryWithID}, m.Retry, m.Name)
	}
	assert.ElementsMatch(t, service, table)
}

func TestMethodOf(t *testing.T) {
	m, ok := MethodOf(hsmpb.HSM_Sign_FullMethodName)
	require.True(t, ok)
	assert.Equal(t, Session, m.Access)
	assert.True(t, m.Idempotent())
	assert.False(t, m.Deduped())

	m, ok = MethodOf(hsmpb.HSM_CreateObject_FullMethodName)
	require.True(t, ok)
	assert.True(t, m.Deduped())
	assert.False(t, m.Idempotent())

	m, ok = MethodOf(hsmpb.HSM_Login_FullMethodName)
	require.True(t, ok)
	assert.Equal(t, Certificate, m.Access)
	assert.False(t, m.OutOfLease)

	m, ok = MethodOf(hsmpb.HSM_ClusterStatus_FullMethodName)
	require.True(t, ok)
	assert.True(t, m.OutOfLease)

	for _, bad := range []string{"/openhsm.v1.Peer/Sign", "Sign", "/openhsm.v1.HSM/", "/openhsm.v1.HSM/Nope", "/x.HSM/Sign"} {
		_, ok := MethodOf(bad)
		assert.False(t, ok, bad)
	}
	assert.Equal(t, "/openhsm.v1.HSM/", ServicePrefix, "the wire's method names do not change")

	// The KMS principal writes answer with a one-try secret: never retried blindly.
	for name, want := range map[string]Retry{
		"KMSCreatePrincipal": RetryNotRun, "KMSDeletePrincipal": RetryNotRun,
		"KMSRotatePrincipalKey": RetryNotRun, "KMSListPrincipals": RetryIdempotent,
		"KMSAddHSMCluster": RetryNotRun, "KMSRemoveHSMCluster": RetryNotRun, "KMSListHSMClusters": RetryIdempotent,
	} {
		m, ok := MethodOf(ServicePrefix + name)
		require.True(t, ok, name)
		assert.Equal(t, Session, m.Access, name)
		assert.Equal(t, want, m.Retry, name)
	}
}
