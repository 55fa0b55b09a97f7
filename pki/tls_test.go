package pki

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"io/fs"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cluster is a CA with a node and a client, all in one directory.
type cluster struct {
	dir string
	ca  *CA
}

func newCluster(t *testing.T, caName string) *cluster {
	t.Helper()
	dir := t.TempDir()
	ca := mustCA(t, dir, caName)
	if err := ca.IssueNode(dir, "node1", []string{"hsm.test"}); err != nil {
		t.Fatal(err)
	}
	if err := ca.IssueClient(dir, "app"); err != nil {
		t.Fatal(err)
	}
	return &cluster{dir: dir, ca: ca}
}

func (c *cluster) caFile() string { return filepath.Join(c.dir, CACertFile) }

func (c *cluster) server(t *testing.T) *tls.Config {
	t.Helper()
	cfg, err := ServerConfig(CertPath(c.dir, "node1"), KeyPath(c.dir, "node1"), c.caFile())
	if err != nil {
		t.Fatalf("ServerConfig: %v", err)
	}
	return cfg
}

func (c *cluster) client(t *testing.T, name string) *tls.Config {
	t.Helper()
	cfg, err := ClientConfigFor(CertPath(c.dir, name), KeyPath(c.dir, name), c.caFile(), "")
	if err != nil {
		t.Fatalf("ClientConfigFor: %v", err)
	}
	return cfg
}

type outcome struct {
	serverID    Identity
	serverErr   error // handshake or PeerIdentity error on the server
	serverHSErr error // handshake error on the server (nil if the handshake completed)
	clientID    Identity
	clientErr   error // dial, PeerIdentity or read error on the client
}

// handshake runs one real TLS connection over loopback TCP. On success the
// server writes "ok" and the client reads it, so that in TLS 1.3 (where the
// client finishes before the server has checked its certificate) a refusal
// by the server shows up on the client too.
func handshake(t *testing.T, server, client *tls.Config) outcome {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deadline := time.Now().Add(5 * time.Second)

	type res struct {
		id         Identity
		err, hsErr error
	}
	done := make(chan res, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- res{err: err}
			return
		}
		defer conn.Close()
		conn.SetDeadline(deadline)
		tc := tls.Server(conn, server)
		if err := tc.Handshake(); err != nil {
			done <- res{err: err, hsErr: err}
			return
		}
		id, err := PeerIdentity(tc.ConnectionState())
		if err == nil {
			_, err = tc.Write([]byte("ok"))
		}
		tc.Close()
		done <- res{id: id, err: err}
	}()

	var out outcome
	dialer := &net.Dialer{Deadline: deadline}
	conn, err := tls.DialWithDialer(dialer, "tcp", ln.Addr().String(), client)
	if err == nil {
		conn.SetDeadline(deadline)
		out.clientID, err = PeerIdentity(conn.ConnectionState())
		if err == nil {
			buf := make([]byte, 2)
			if _, err = io.ReadFull(conn, buf); err == nil && string(buf) != "ok" {
				err = errors.New("unexpected reply " + string(buf))
			}
		}
		conn.Close()
	}
	out.clientErr = err
	r := <-done
	out.serverID, out.serverErr, out.serverHSErr = r.id, r.err, r.hsErr
	return out
}

func TestHandshakeGoodClient(t *testing.T) {
	c := newCluster(t, "cluster")
	out := handshake(t, c.server(t), c.client(t, "app"))
	if out.serverErr != nil || out.clientErr != nil {
		t.Fatalf("server: %v; client: %v", out.serverErr, out.clientErr)
	}
	leaf := readCert(t, CertPath(c.dir, "app"))
	want := Identity{CommonName: "app", Kind: KindClient, ClusterID: c.ca.ClusterID(), Fingerprint: sha256.Sum256(leaf.Raw)}
	if out.serverID != want {
		t.Errorf("server saw %v, want %v", out.serverID, want)
	}
	node := readCert(t, CertPath(c.dir, "node1"))
	if want := (Identity{"node1", KindNode, c.ca.ClusterID(), sha256.Sum256(node.Raw)}); out.clientID != want {
		t.Errorf("client saw %v, want %v", out.clientID, want)
	}
}

func TestHandshakeNodeToNode(t *testing.T) {
	c := newCluster(t, "cluster")
	if err := c.ca.IssueNode(c.dir, "node2", nil); err != nil {
		t.Fatal(err)
	}
	cfg, err := ClientConfig(CertPath(c.dir, "node2"), KeyPath(c.dir, "node2"), c.caFile())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ServerName != "" {
		t.Errorf("ClientConfig set ServerName %q", cfg.ServerName)
	}
	cfg.ServerName = "hsm.test" // a host from the node's SANs
	out := handshake(t, c.server(t), cfg)
	if out.serverErr != nil || out.clientErr != nil {
		t.Fatalf("server: %v; client: %v", out.serverErr, out.clientErr)
	}
	if out.serverID.CommonName != "node2" || out.serverID.Kind != KindNode {
		t.Errorf("server saw %v", out.serverID)
	}
}

func TestHandshakeForeignClientRefused(t *testing.T) {
	c := newCluster(t, "cluster")
	foreign := newCluster(t, "cluster") // same CA name, different key
	cfg := foreign.client(t, "app")     // same client name too
	cfg.RootCAs = c.ca.CertPool()       // trust our server so it gets to client auth
	cfg.VerifyConnection = nil          // and its cluster, which is not the foreign client's
	out := handshake(t, c.server(t), cfg)
	if out.serverHSErr == nil || out.clientErr == nil {
		t.Fatalf("foreign client accepted: server %v, client %v", out.serverErr, out.clientErr)
	}
	var unknown x509.UnknownAuthorityError
	if !errors.As(out.serverHSErr, &unknown) {
		t.Errorf("server error %v, want unknown authority", out.serverHSErr)
	}
}

func TestHandshakeForeignServerRefused(t *testing.T) {
	c := newCluster(t, "cluster")
	foreign := newCluster(t, "cluster")
	out := handshake(t, foreign.server(t), c.client(t, "app"))
	var unknown x509.UnknownAuthorityError
	if !errors.As(out.clientErr, &unknown) {
		t.Errorf("client error %v, want unknown authority", out.clientErr)
	}
	if out.serverHSErr == nil {
		t.Error("server completed a handshake with a client that refused it")
	}
}

func TestHandshakeTLS12Refused(t *testing.T) {
	c := newCluster(t, "cluster")
	cfg := c.client(t, "app")
	cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	out := handshake(t, c.server(t), cfg)
	if out.serverHSErr == nil || out.clientErr == nil {
		t.Fatalf("TLS 1.2 client accepted: server %v, client %v", out.serverErr, out.clientErr)
	}
	if !strings.Contains(out.serverHSErr.Error(), "version") {
		t.Errorf("server error %v, want a protocol version error", out.serverHSErr)
	}
}

func TestHandshakeNoClientCertRefused(t *testing.T) {
	c := newCluster(t, "cluster")
	cfg := c.client(t, "app")
	cfg.Certificates = nil
	out := handshake(t, c.server(t), cfg)
	if out.serverHSErr == nil || out.clientErr == nil {
		t.Fatalf("client without certificate accepted: server %v, client %v", out.serverErr, out.clientErr)
	}
	if !strings.Contains(out.serverHSErr.Error(), "didn't provide a certificate") {
		t.Errorf("server error %v", out.serverHSErr)
	}
}

func TestConfigs(t *testing.T) {
	c := newCluster(t, "cluster")
	s := c.server(t)
	if s.MinVersion != tls.VersionTLS13 || s.ClientAuth != tls.RequireAndVerifyClientCert || s.ClientCAs == nil || len(s.Certificates) != 1 {
		t.Errorf("server config %+v", s)
	}
	cl := c.client(t, "app")
	if cl.MinVersion != tls.VersionTLS13 || cl.RootCAs == nil || len(cl.Certificates) != 1 || cl.ServerName != "localhost" {
		t.Errorf("client config %+v", cl)
	}
	if cfg, err := ClientConfigFor(CertPath(c.dir, "app"), KeyPath(c.dir, "app"), c.caFile(), "hsm.test"); err != nil || cfg.ServerName != "hsm.test" {
		t.Errorf("ClientConfigFor(hsm.test): %v", err)
	}

	node, nodeKey, app, appKey, ca := CertPath(c.dir, "node1"), KeyPath(c.dir, "node1"), CertPath(c.dir, "app"), KeyPath(c.dir, "app"), c.caFile()
	missing := filepath.Join(c.dir, "missing.pem")
	foreign := newCluster(t, "cluster")
	type call func() error
	server := func(cert, key, caf string) call {
		return func() error { _, err := ServerConfig(cert, key, caf); return err }
	}
	client := func(cert, key, caf string) call {
		return func() error { _, err := ClientConfig(cert, key, caf); return err }
	}
	cases := []struct {
		name string
		call call
		file string
		want string
	}{
		{"server missing cert", server(missing, nodeKey, ca), missing, "no such file"},
		{"server missing key", server(node, missing, ca), missing, "no such file"},
		{"server missing CA", server(node, nodeKey, missing), missing, "no such file"},
		{"client missing key", client(app, missing, ca), missing, "no such file"},
		{"swapped cert and key", server(nodeKey, node, ca), nodeKey, `unexpected PEM block "PRIVATE KEY"`},
		{"key of another cert", server(node, appKey, ca), appKey, "does not match"},
		{"leaf as CA", server(node, nodeKey, app), app, "not a CA"},
		{"client cert as server", server(app, appKey, ca), app, "server authentication"},
		{"foreign CA", client(app, appKey, foreign.caFile()), foreign.caFile(), "unknown authority"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil {
				t.Fatal("succeeded")
			}
			if !strings.Contains(err.Error(), tc.file) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q should name %s and say %q", err, tc.file, tc.want)
			}
			if tc.want == "no such file" && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("error %v does not wrap fs.ErrNotExist", err)
			}
			noKeyBytes(t, err, nodeKey, appKey)
		})
	}
}

// TestClientConfigFromCredentials: the credentials read into memory make
// the same client as the files (a good handshake), keep none of the bytes,
// and a bad one is refused with the file it came from named.
func TestClientConfigFromCredentials(t *testing.T) {
	c := newCluster(t, "cluster")
	cr := ClientCredentials{
		CAFile: c.caFile(), CertFile: CertPath(c.dir, "app"), KeyFile: KeyPath(c.dir, "app"),
		CA: mustRead(t, c.caFile()), Cert: mustRead(t, CertPath(c.dir, "app")), Key: mustRead(t, KeyPath(c.dir, "app")),
	}
	keyCopy := append([]byte(nil), cr.Key...)
	cfg, err := ClientConfigFromCredentials(cr, "")
	if err != nil {
		t.Fatalf("ClientConfigFromCredentials: %v", err)
	}
	if cfg.ServerName != "localhost" || cfg.MinVersion != tls.VersionTLS13 {
		t.Errorf("ServerName %q, MinVersion %x", cfg.ServerName, cfg.MinVersion)
	}
	if string(cr.Key) != string(keyCopy) {
		t.Error("the key bytes were changed")
	}
	o := handshake(t, c.server(t), cfg)
	if o.serverErr != nil || o.clientErr != nil {
		t.Fatalf("handshake: server %v, client %v", o.serverErr, o.clientErr)
	}
	if o.serverID.CommonName != "app" || o.serverID.Kind != KindClient {
		t.Errorf("server saw %+v", o.serverID)
	}

	bad := cr
	bad.Key = mustRead(t, KeyPath(c.dir, "node1"))
	if _, err := ClientConfigFromCredentials(bad, "hsm.test"); err == nil || !strings.Contains(err.Error(), cr.KeyFile) {
		t.Errorf("a key of another certificate: %v", err)
	}
	bad = cr
	bad.CA = []byte("not PEM")
	if _, err := ClientConfigFromCredentials(bad, "hsm.test"); err == nil || !strings.Contains(err.Error(), cr.CAFile) {
		t.Errorf("a CA that is not PEM: %v", err)
	}
}
