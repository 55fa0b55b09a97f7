package cluster_test

import (
	"crypto/tls"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/openhsm/openhsm/cluster"
	"github.com/openhsm/openhsm/pki"
	"github.com/stretchr/testify/require"
)

// A revocation cuts the connections already open with that certificate,
// and only those; a new connection with it is refused.
func TestMuxCutsRevokedConnections(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.CreateCA(dir, "test")
	require.NoError(t, err)
	require.NoError(t, ca.IssueNode(dir, "n1", nil))
	require.NoError(t, ca.IssueClient(dir, "bad"))
	require.NoError(t, ca.IssueClient(dir, "good"))
	caFile := filepath.Join(dir, pki.CACertFile)
	var deny pki.DenyList
	conf, err := pki.NodeServerConfig(pki.CertPath(dir, "n1"), pki.KeyPath(dir, "n1"), caFile, &deny)
	require.NoError(t, err)
	m, err := cluster.Listen("127.0.0.1:0", conf, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	defer m.Close()
	m.SetDenyList(&deny)

	dial := func(name string) *tls.Conn {
		cfg, err := pki.ClientConfigFor(pki.CertPath(dir, name), pki.KeyPath(dir, name), caFile, "localhost")
		require.NoError(t, err)
		cfg.NextProtos = []string{"h2"}
		c, err := tls.Dial("tcp", m.Addr().String(), cfg)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	// accept takes the server side of the next connection the mux hands
	// to the API.
	accept := func() io.WriteCloser {
		c, err := m.API().Accept()
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	readOne := func(c *tls.Conn) error {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := c.Read(make([]byte, 1))
		return err
	}

	bad := dial("bad")
	badSrv := accept()
	good := dial("good")
	goodSrv := accept()
	for _, s := range []io.Writer{badSrv, goodSrv} {
		_, err := s.Write([]byte("x"))
		require.NoError(t, err)
	}
	require.NoError(t, readOne(bad))
	require.NoError(t, readOne(good))

	fp, _, err := pki.CertFileFingerprint(pki.CertPath(dir, "bad"))
	require.NoError(t, err)
	deny.Set([][32]byte{fp})
	require.Equal(t, 1, m.Cut(deny.Revoked))
	require.Error(t, readOne(bad), "the revoked certificate's connection is still open")
	_, err = goodSrv.Write([]byte("y"))
	require.NoError(t, err)
	require.NoError(t, readOne(good), "the other connection was cut too")

	// A new connection: the client's side of a TLS 1.3 handshake finishes
	// first; the node's refusal arrives on the first read.
	again := dial("bad")
	require.Error(t, readOne(again))
	// Closed connections are forgotten: cutting again finds none.
	require.Equal(t, 0, m.Cut(deny.Revoked))
}
