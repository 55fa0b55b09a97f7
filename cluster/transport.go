package cluster

import (
	"crypto/tls"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// streamLayer is Raft's transport over the shared port: it accepts the
// connections the mux negotiated as Raft, and dials other nodes with the
// node certificate.
type streamLayer struct {
	*chanListener
	mux  *Mux
	dial *tls.Config
	// member says which names this node may replicate with; until the
	// node sets it, it dials no one. The CA's signature alone would let
	// any node certificate answer for a member's address.
	member atomic.Pointer[func(name string) bool]
}

func newStreamLayer(m *Mux, peer *tls.Config) *streamLayer {
	peer = peer.Clone()
	peer.NextProtos = []string{ALPNRaft}
	return &streamLayer{chanListener: m.raft, mux: m, dial: peer}
}

// Dial implements raft.StreamLayer.
func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	c, err := tls.DialWithDialer(d, "tcp", string(addr), s.dial)
	if err != nil {
		return nil, err
	}
	if p := c.ConnectionState().NegotiatedProtocol; p != ALPNRaft {
		c.Close()
		return nil, fmt.Errorf("cluster: %s does not speak replication (protocol %q)", addr, p)
	}
	if ok := s.member.Load(); ok == nil || !(*ok)(answeringName(c.ConnectionState())) {
		c.Close()
		return nil, fmt.Errorf("cluster: %s answered with a certificate that is not a member's", addr)
	}
	// Tracked like inbound connections, so a revoked peer is cut both ways.
	tc := s.mux.track(c)
	if tc == nil {
		return nil, fmt.Errorf("cluster: %s presents a revoked certificate", addr)
	}
	return tc, nil
}
