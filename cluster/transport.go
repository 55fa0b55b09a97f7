package cluster

import (
	"crypto/tls"
	"fmt"
	"net"
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
	// Tracked like inbound connections, so a revoked peer is cut both ways.
	tc := s.mux.track(c)
	if tc == nil {
		return nil, fmt.Errorf("cluster: %s presents a revoked certificate", addr)
	}
	return tc, nil
}
