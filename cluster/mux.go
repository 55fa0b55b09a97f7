// Package cluster replicates the HSM's state machine with Raft
// (github.com/hashicorp/raft): every change to the store is a log entry that
// a majority commits before state.Machine.Apply runs it, in the same order,
// on every node. It also carries the node-to-node traffic: one TLS port per
// node serves both the client API (gRPC, ALPN "h2") and Raft (ALPN
// "openhsm-raft/1"), and only the node certificates of members may speak
// Raft.
// docs/cluster.md describes the design.
package cluster

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openhsm/openhsm/pki"
	"google.golang.org/grpc/credentials"
)

// ALPNRaft is the TLS application protocol of Raft connections.
const ALPNRaft = "openhsm-raft/1"

// alpnGRPC is gRPC's (HTTP/2).
const alpnGRPC = "h2"

// ALPNData is the client data path's (package api/dataplane); the mux
// names it here, so that cluster does not import the API.
const ALPNData = "openhsm-data/1"

// handshakeTimeout bounds a TLS handshake on the shared port.
const handshakeTimeout = 10 * time.Second

// Mux accepts TLS connections on one port and hands each, after its
// handshake, to the API or to Raft by its negotiated protocol.
type Mux struct {
	ln   net.Listener
	log  *slog.Logger
	api  *chanListener
	raft *chanListener
	data *chanListener

	once sync.Once
	done chan struct{}

	// Every open connection, inbound and dialled, by its peer's certificate
	// fingerprint, so that a revocation can cut the ones already open
	// (Cut): a TLS check at the handshake alone would leave them running.
	connMu sync.Mutex
	conns  map[*trackedConn]struct{}
	deny   *pki.DenyList
	// raftOK says which node names may open Raft connections; until
	// the node sets it, none may.
	raftOK atomic.Pointer[func(name string) bool]
}

// SetDenyList makes the mux refuse, right after the handshake, a
// connection whose certificate was revoked while it was handshaking (the
// handshake itself checks the same list; see pki.NodeServerConfig).
func (m *Mux) SetDenyList(d *pki.DenyList) {
	m.connMu.Lock()
	m.deny = d
	m.connMu.Unlock()
}

// trackedConn is a TLS connection the mux can cut.
type trackedConn struct {
	*tls.Conn
	m    *Mux
	fp   [32]byte
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.m.connMu.Lock()
		delete(c.m.conns, c)
		c.m.connMu.Unlock()
	})
	return c.Conn.Close()
}

// track registers an established connection by its peer's leaf. It returns
// nil, having closed c, if that certificate is already revoked.
func (m *Mux) track(c *tls.Conn) *trackedConn {
	cs := c.ConnectionState()
	if len(cs.PeerCertificates) == 0 {
		c.Close()
		return nil
	}
	tc := &trackedConn{Conn: c, m: m, fp: sha256.Sum256(cs.PeerCertificates[0].Raw)}
	m.connMu.Lock()
	if m.deny.Revoked(tc.fp) {
		m.connMu.Unlock()
		c.Close()
		return nil
	}
	if m.conns == nil {
		m.conns = map[*trackedConn]struct{}{}
	}
	m.conns[tc] = struct{}{}
	m.connMu.Unlock()
	return tc
}

// Cut closes every open connection whose peer certificate revoked reports
// as revoked, and returns how many it closed. Call it after the deny-list
// changed.
func (m *Mux) Cut(revoked func(fp [32]byte) bool) int {
	var cut []*trackedConn
	m.connMu.Lock()
	for c := range m.conns {
		if revoked(c.fp) {
			cut = append(cut, c)
		}
	}
	m.connMu.Unlock()
	for _, c := range cut {
		c.Close()
	}
	return len(cut)
}

func (m *Mux) authorizeRaft(f func(name string) bool) { m.raftOK.Store(&f) }

// Listen opens the shared port. conf is the node's server configuration
// (pki.ServerConfig); Listen sets its protocols.
func Listen(addr string, conf *tls.Config, log *slog.Logger) (*Mux, error) {
	conf = conf.Clone()
	// The data path first: a client that offers it and "h2" gets it from
	// a node that has it, and "h2" from one that does not.
	conf.NextProtos = []string{ALPNData, alpnGRPC, ALPNRaft}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	m := &Mux{ln: ln, log: log, done: make(chan struct{})}
	m.api = newChanListener(ln.Addr(), m.done)
	m.raft = newChanListener(ln.Addr(), m.done)
	m.data = newChanListener(ln.Addr(), m.done)
	go m.serve(conf)
	return m, nil
}

// Addr is the address the port listens on.
func (m *Mux) Addr() net.Addr { return m.ln.Addr() }

// API is the listener for gRPC; give it to a grpc.Server with Creds().
func (m *Mux) API() net.Listener { return m.api }

// Data is the listener for the client data path (ALPNData): connections
// with a verified certificate of the cluster's CA, not yet told apart by
// kind. Whoever takes it must Accept, or such connections wait.
func (m *Mux) Data() net.Listener { return m.data }

// Close stops accepting; connections already handed over stay open.
func (m *Mux) Close() error {
	var err error
	m.once.Do(func() {
		close(m.done)
		err = m.ln.Close()
	})
	return err
}

func (m *Mux) serve(conf *tls.Config) {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			m.log.Error("cluster port: accept failed", "error", err)
			m.Close()
			return
		}
		go m.handshake(tls.Server(c, conf))
	}
}

func (m *Mux) handshake(c *tls.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	if err := c.HandshakeContext(ctx); err != nil {
		m.log.Debug("cluster port: handshake failed", "remote", c.RemoteAddr().String(), "error", err)
		c.Close()
		return
	}
	cs := c.ConnectionState()
	switch cs.NegotiatedProtocol {
	case ALPNRaft:
		id, err := pki.PeerIdentity(cs)
		if err != nil || id.Kind != pki.KindNode {
			m.log.Warn("cluster port: refused a replication connection from a non-node certificate", "remote", c.RemoteAddr().String())
			c.Close()
			return
		}
		if ok := m.raftOK.Load(); ok == nil || !(*ok)(id.CommonName) {
			m.log.Warn("cluster port: refused a replication connection from a node that is not a member", "peer", id.CommonName, "remote", c.RemoteAddr().String())
			c.Close()
			return
		}
		if tc := m.track(c); tc != nil {
			m.raft.deliver(tc)
		}
	case alpnGRPC:
		if tc := m.track(c); tc != nil {
			m.api.deliver(tc)
		}
	case ALPNData:
		if tc := m.track(c); tc != nil {
			m.data.deliver(tc)
		}
	default:
		c.Close()
	}
}

// chanListener is a net.Listener fed by the mux. Closing it (or the mux)
// ends Accept.
type chanListener struct {
	addr   net.Addr
	conns  chan net.Conn
	done   <-chan struct{} // the mux's
	once   sync.Once
	closed chan struct{}
}

func newChanListener(addr net.Addr, done <-chan struct{}) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), done: done, closed: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	case <-l.closed:
		c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}
func (l *chanListener) Addr() net.Addr { return l.addr }

// Creds are gRPC server credentials for connections the mux has already
// authenticated: they report the TLS state so the server can see the
// peer's certificate, and do not handshake again.
func Creds() credentials.TransportCredentials { return handshaken{} }

type handshaken struct{}

func (handshaken) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	tc, ok := c.(interface{ ConnectionState() tls.ConnectionState })
	if !ok {
		return nil, nil, errors.New("cluster: not a TLS connection")
	}
	return c, credentials.TLSInfo{
		State:          tc.ConnectionState(),
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity},
	}, nil
}

func (handshaken) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("cluster: server-side credentials only")
}

func (handshaken) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls", SecurityVersion: "1.3"}
}
func (h handshaken) Clone() credentials.TransportCredentials { return h }
func (handshaken) OverrideServerName(string) error           { return nil }
