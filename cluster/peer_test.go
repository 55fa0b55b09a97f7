package cluster

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/api"
	"github.com/openhsm/openhsm/cluster/peerpb"
)

// The table names every method of the generated Peer service, and only
// those.
func TestPeerMethodsMatchService(t *testing.T) {
	names := api.ServiceMethodNames(&peerpb.Peer_ServiceDesc)
	var table []string
	for _, m := range PeerMethods() {
		table = append(table, m.Name)
	}
	assert.ElementsMatch(t, names, table)

	m, ok := PeerMethodOf("/openhsm.v1.Peer/DomainKey")
	require.True(t, ok)
	assert.True(t, m.Joiner)
	m, ok = PeerMethodOf("/openhsm.v1.Peer/Forward")
	require.True(t, ok)
	assert.False(t, m.Joiner)
	_, ok = PeerMethodOf("/openhsm.v1.HSM/Forward")
	assert.False(t, ok, "a method of another service")
	_, ok = PeerMethodOf("/openhsm.v1.Peer/Nope")
	assert.False(t, ok)
}
