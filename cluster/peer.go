package cluster

import (
	"strings"

	"github.com/openhsm/openhsm/api"
	"github.com/openhsm/openhsm/cluster/peerpb"
	"github.com/openhsm/openhsm/hsmerr"
)

// The node-to-node service (cluster/peerpb/peer.proto): only node
// certificates of the cluster's CA may call it. hsmd serves it on the
// node's port next to the HSM API, and checks callers with this table.

// PeerMethod is one method of the Peer service.
type PeerMethod struct {
	Name string
	// Joiner: a node certificate whose name is not a member may call it.
	// A node about to join fetches the domain key (sealed under the
	// passphrase, which it must already have), and the node adding it asks
	// its status before it is a member. Neither reveals more than a node
	// certificate's holder could learn from the key's seal and a status
	// line. Every other method needs a member's name.
	Joiner bool
}

// peerMethods is every method of service Peer, in peer.proto's order.
var peerMethods = []PeerMethod{
	{Name: "Forward"},
	{Name: "ChangeMembership"},
	{Name: "NodeStatus", Joiner: true},
	{Name: "DomainKey", Joiner: true},
	{Name: "LocalBackups"},
	{Name: "ReadBackup"},
	{Name: "BreakGlassUnlock"},
}

// PeerServicePrefix starts the full name of every method of the Peer
// service: "/openhsm.v1.Peer/".
var PeerServicePrefix = "/" + peerpb.Peer_ServiceDesc.ServiceName + "/"

// PeerMethods returns the table, in peer.proto's order.
func PeerMethods() []PeerMethod { return append([]PeerMethod(nil), peerMethods...) }

// PeerMethodOf returns the Peer method a full gRPC method name names; ok is
// false for anything else.
func PeerMethodOf(fullMethod string) (PeerMethod, bool) {
	name, ok := strings.CutPrefix(fullMethod, PeerServicePrefix)
	if !ok {
		return PeerMethod{}, false
	}
	for _, m := range peerMethods {
		if m.Name == name {
			return m, true
		}
	}
	return PeerMethod{}, false
}

// ErrNotLeader is how a node that does not lead refuses a Peer request for
// the leader: hsmerr.ErrNotLeader as a status, so the asker tells it apart
// by its reason, not its text.
var ErrNotLeader = api.ToStatus(hsmerr.ErrNotLeader).Err()
