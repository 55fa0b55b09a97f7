package hsmd_test

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/openhsm/openhsm/api"
	"github.com/openhsm/openhsm/api/dataplane"
	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/cluster"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/pki"
)

// rawData is a data-path connection driven frame by frame.
type rawData struct {
	t  *testing.T
	c  *tls.Conn
	br *bufio.Reader
}

func dataTLS(t *testing.T, cl *testcluster.Cluster, withCert bool) *tls.Config {
	cfg, err := client.LoadConfig(cl.Env["HSM_CONFIG"])
	require.NoError(t, err)
	var conf *tls.Config
	if withCert {
		conf, err = pki.ClientConfigFor(cfg.Cert, cfg.Key, cfg.CA, cfg.ServerName)
		require.NoError(t, err)
	} else {
		pem, err := os.ReadFile(cfg.CA)
		require.NoError(t, err)
		pool := x509.NewCertPool()
		require.True(t, pool.AppendCertsFromPEM(pem))
		conf = &tls.Config{RootCAs: pool, ServerName: cfg.ServerName, MinVersion: tls.VersionTLS13}
	}
	conf = conf.Clone()
	conf.NextProtos = []string{dataplane.ALPN}
	return conf
}

func dialData(t *testing.T, cl *testcluster.Cluster, conf *tls.Config) *rawData {
	c, err := tls.Dial("tcp", cl.Addr(1), conf)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.Equal(t, dataplane.ALPN, c.ConnectionState().NegotiatedProtocol)
	return &rawData{t: t, c: c, br: bufio.NewReader(c)}
}

func (r *rawData) write(b []byte) {
	_, err := r.c.Write(b)
	require.NoError(r.t, err)
}

func (r *rawData) read() (dataplane.Header, *dataplane.Response, *dataplane.Error, error) {
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	h, body, err := dataplane.ReadFrame(r.br, nil)
	if err != nil {
		return h, nil, nil, err
	}
	resp, e, err := dataplane.DecodeAnswer(h, body)
	require.NoError(r.t, err)
	return h, resp, e, nil
}

func (r *rawData) call(req *dataplane.Request) (*dataplane.Response, *dataplane.Error) {
	b, err := dataplane.AppendRequest(nil, req)
	require.NoError(r.t, err)
	r.write(b)
	h, resp, e, err := r.read()
	require.NoError(r.t, err)
	require.Equal(r.t, req.ID, h.ID)
	return resp, e
}

// loginToken logs in over gRPC and returns the session token.
func loginToken(t *testing.T, cl *testcluster.Cluster) (string, hsmpb.HSMClient) {
	return loginAs(t, cl, cl.Env["P11_TOKEN_LABEL"], cl.Env["P11_PIN"])
}

// loginAs logs user in over gRPC and returns the session token.
func loginAs(t *testing.T, cl *testcluster.Cluster, user, password string) (string, hsmpb.HSMClient) {
	conf := dataTLS(t, cl, true)
	conf.NextProtos = nil
	conn, err := grpc.NewClient(cl.Addr(1), grpc.WithTransportCredentials(credentials.NewTLS(conf)))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	hc := hsmpb.NewHSMClient(conn)
	r, err := hc.Login(ctx, &hsmpb.LoginRequest{User: user, Password: password})
	require.NoError(t, err)
	return r.Token, hc
}

func digestReq(id uint64, tok string, data []byte) *dataplane.Request {
	return &dataplane.Request{Op: dataplane.OpDigest, ID: id, Token: tok, Mech: &hsmpb.Mechanism{Type: ck.CKM_SHA256}, Data: data}
}

// TestDataPathProtocol drives the data path with raw frames: what it
// refuses, how, and what survives.
func TestDataPathProtocol(t *testing.T) {
	require.Equal(t, cluster.ALPNData, dataplane.ALPN)
	cl := testcluster.Start(t, 1)
	tok, hc := loginToken(t, cl)

	t.Run("no client certificate", func(t *testing.T) {
		c, err := tls.Dial("tcp", cl.Addr(1), dataTLS(t, cl, false))
		if err == nil {
			// TLS 1.3: the server's refusal of the missing certificate
			// arrives after the client's side of the handshake.
			defer c.Close()
			b, _ := dataplane.AppendRequest(nil, digestReq(1, tok, []byte("x")))
			c.Write(b)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = c.Read(make([]byte, 64))
		}
		require.Error(t, err)
		assert.Contains(t, err.Error(), "certificate")
	})

	t.Run("node certificate", func(t *testing.T) {
		conf := dataTLS(t, cl, true)
		cert, err := tls.LoadX509KeyPair(filepath.Join(cl.Dir, "pki", "node1.pem"), filepath.Join(cl.Dir, "pki", "node1-key.pem"))
		require.NoError(t, err)
		conf.Certificates = []tls.Certificate{cert}
		r := dialData(t, cl, conf)
		h, _, e, err := r.read()
		require.NoError(t, err)
		require.Zero(t, h.ID)
		require.NotNil(t, e)
		assert.Contains(t, e.Msg, "only client certificates")
		_, _, _, err = r.read()
		require.ErrorIs(t, err, io.EOF)
	})

	r := dialData(t, cl, dataTLS(t, cl, true))
	want := sha256.Sum256([]byte("abc"))

	t.Run("a call", func(t *testing.T) {
		resp, e := r.call(digestReq(1, tok, []byte("abc")))
		require.Nil(t, e)
		assert.Equal(t, want[:], resp.Data)
		assert.NotZero(t, resp.Index)
	})

	t.Run("no valid session", func(t *testing.T) {
		for name, bad := range map[string]string{"none": "", "garbage": "v2.garbage.x", "tampered": tok[:len(tok)-2] + "AA"} {
			_, e := r.call(digestReq(2, bad, []byte("abc")))
			require.NotNil(t, e, name)
			assert.EqualValues(t, ck.CKR_USER_NOT_LOGGED_IN, e.RV, name)
			assert.Equal(t, hsmerr.ReasonNoSession, e.Reason, name)
			assert.NotContains(t, e.Msg, tok, name)
		}
		// The connection goes on.
		resp, e := r.call(digestReq(3, tok, []byte("abc")))
		require.Nil(t, e)
		assert.Equal(t, want[:], resp.Data)
	})

	t.Run("malformed body", func(t *testing.T) {
		b, err := dataplane.AppendRequest(nil, digestReq(4, tok, []byte("abc")))
		require.NoError(t, err)
		// One byte more than the fields take, counted in the header.
		b = append(b, 0)
		binary.BigEndian.PutUint32(b, binary.BigEndian.Uint32(b)+1)
		r.write(b)
		h, _, e, err := r.read()
		require.NoError(t, err)
		require.EqualValues(t, 4, h.ID)
		require.NotNil(t, e)
		assert.EqualValues(t, ck.CKR_ARGUMENTS_BAD, e.RV)
		assert.Contains(t, e.Msg, "after the last field")
		// A bad mechanism: the handler's own check, as over gRPC.
		_, e = r.call(&dataplane.Request{Op: dataplane.OpDigest, ID: 5, Token: tok, Mech: &hsmpb.Mechanism{Type: ck.CKM_AES_GCM}, Data: []byte("x")})
		require.NotNil(t, e)
		assert.EqualValues(t, ck.CKR_MECHANISM_INVALID, e.RV)
		resp, e := r.call(digestReq(6, tok, []byte("abc")))
		require.Nil(t, e)
		assert.Equal(t, want[:], resp.Data)
	})

	t.Run("concurrent calls on one connection", func(t *testing.T) {
		c := dialData(t, cl, dataTLS(t, cl, true))
		const n = 200
		var batch []byte
		for i := 1; i <= n; i++ {
			var err error
			batch, err = dataplane.AppendRequest(batch, digestReq(uint64(i), tok, []byte(fmt.Sprint("msg", i))))
			require.NoError(t, err)
		}
		c.write(batch) // all pipelined at once; answers in any order
		seen := map[uint64]bool{}
		for range n {
			h, resp, e, err := c.read()
			require.NoError(t, err)
			require.Nil(t, e)
			require.False(t, seen[h.ID])
			seen[h.ID] = true
			sum := sha256.Sum256([]byte(fmt.Sprint("msg", h.ID)))
			require.Equal(t, sum[:], resp.Data, h.ID)
		}
		// Through the Go client too, with real keys, many goroutines.
		cc := dial(t, cl, cl.Env["P11_TOKEN_LABEL"], cl.Env["P11_PIN"])
		_, priv := must2(t)(cc.GenerateKeyPair(ctx, mech.Mech{Type: ck.CKM_EC_KEY_PAIR_GEN},
			object.Template{by(ck.CKA_EC_PARAMS, curveParams["P-256"])}, object.Template{}))
		pub := must(cc.FindObjects(ctx, object.Template{ul(ck.CKA_CLASS, ck.CKO_PUBLIC_KEY)}, 10))(t)
		require.NotEmpty(t, pub)
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		for g := range 32 {
			wg.Go(func() {
				for i := range 10 {
					msg := []byte(fmt.Sprint("g", g, "i", i))
					sig, err := cc.Sign(ctx, priv, mech.Mech{Type: ck.CKM_ECDSA_SHA256}, msg)
					if err == nil {
						err = cc.Verify(ctx, pub[0], mech.Mech{Type: ck.CKM_ECDSA_SHA256}, msg, sig)
					}
					if err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		assert.Equal(t, "data", cc.Nodes()[0].Transport)
	})

	t.Run("the largest data", func(t *testing.T) {
		// Encrypting the most data a request holds answers a little more
		// (the GCM tag): the answer must reach the caller, as over gRPC.
		cc := dial(t, cl, cl.Env["P11_TOKEN_LABEL"], cl.Env["P11_PIN"])
		aes := must(cc.GenerateKey(ctx, mech.Mech{Type: ck.CKM_AES_KEY_GEN}, object.Template{ul(ck.CKA_VALUE_LEN, 32)}))(t)
		gcm := mech.Mech{Type: ck.CKM_AES_GCM, Param: &mech.GCMParams{IV: make([]byte, 12), TagBits: 128}}
		ct := must(cc.Encrypt(ctx, aes, gcm, make([]byte, dataplane.MaxData)))(t)
		assert.Len(t, ct, dataplane.MaxData+16)
		assert.Equal(t, "data", cc.Nodes()[0].Transport)
	})

	t.Run("logout ends the cached session", func(t *testing.T) {
		_, e := r.call(digestReq(7, tok, []byte("abc")))
		require.Nil(t, e)
		_, err := hc.Logout(metadata.AppendToOutgoingContext(ctx, api.HeaderSession, tok), &hsmpb.Empty{})
		require.NoError(t, err)
		_, e = r.call(digestReq(8, tok, []byte("abc")))
		require.NotNil(t, e)
		assert.Equal(t, hsmerr.ReasonNoSession, e.Reason)
		assert.Contains(t, e.Msg, "logged out")
	})

	t.Run("oversized frame", func(t *testing.T) {
		b := dataplane.AppendHeader(nil, dataplane.Header{Len: dataplane.MaxBody + 1, Kind: dataplane.KindRequest, Op: dataplane.OpSign, ID: 9})
		r.write(b)
		h, _, e, err := r.read()
		require.NoError(t, err)
		require.EqualValues(t, 9, h.ID)
		require.NotNil(t, e)
		assert.EqualValues(t, ck.CKR_ARGUMENTS_BAD, e.RV)
		assert.Contains(t, e.Msg, "larger than")
		// The framing is lost: the node closes the connection ...
		_, _, _, err = r.read()
		require.Error(t, err)
		// ... and serves the next one.
		r2 := dialData(t, cl, dataTLS(t, cl, true))
		tok2, _ := loginToken(t, cl)
		resp, e := r2.call(digestReq(1, tok2, []byte("abc")))
		require.Nil(t, e)
		assert.Equal(t, want[:], resp.Data)
	})

	t.Run("unknown frame kind", func(t *testing.T) {
		r3 := dialData(t, cl, dataTLS(t, cl, true))
		r3.write(dataplane.AppendHeader(nil, dataplane.Header{Kind: dataplane.KindResponse, Op: dataplane.OpSign, ID: 1}))
		_, _, e, err := r3.read()
		require.NoError(t, err)
		require.NotNil(t, e)
		assert.Contains(t, e.Msg, "only requests")
		_, _, _, err = r3.read()
		require.Error(t, err)
	})
}

// TestAttackDataPathCachedSession: a session the data path cached on a
// connection ends there at once when its user's password is changed, the
// user is locked, or the user is deleted (and a user of the same name
// created again): the next call on the same connection is refused, as
// over gRPC.
func TestAttackDataPathCachedSession(t *testing.T) {
	cl := testcluster.Start(t, 1)
	co := dial(t, cl, cl.Env["HSM_USER"], cl.Env["HSM_PASSWORD"])
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, user string)
	}{
		{"password changed", func(t *testing.T, user string) {
			require.NoError(t, co.SetPassword(ctx, user, "another-password"))
		}},
		{"locked", func(t *testing.T, user string) {
			c := dial(t, cl, "", "")
			for range object.MaxFailedLogins {
				wantRV(t, "wrong password", throttledLogin(t, c, user, "not-the-password"), ck.CKR_PIN_INCORRECT)
			}
			wantRV(t, "right password", throttledLogin(t, c, user, "the-password"), ck.CKR_PIN_LOCKED)
		}},
		{"deleted and created again", func(t *testing.T, user string) {
			require.NoError(t, co.DeleteUser(ctx, user))
			require.NoError(t, co.CreateUser(ctx, user, "CU", "the-password"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			user := fmt.Sprintf("cached%d", time.Now().UnixNano()%1e9)
			require.NoError(t, co.CreateUser(ctx, user, "CU", "the-password"))
			tok, _ := loginAs(t, cl, user, "the-password")
			r := dialData(t, cl, dataTLS(t, cl, true))
			_, e := r.call(digestReq(1, tok, []byte("abc")))
			require.Nil(t, e)
			_, e = r.call(digestReq(2, tok, []byte("abc"))) // from the cache
			require.Nil(t, e)
			tc.change(t, user)
			_, e = r.call(digestReq(3, tok, []byte("abc")))
			require.NotNil(t, e)
			assert.EqualValues(t, ck.CKR_USER_NOT_LOGGED_IN, e.RV)
			assert.Equal(t, hsmerr.ReasonNoSession, e.Reason)
			// And stays refused: the cache dropped it, the full check
			// refuses it too.
			_, e = r.call(digestReq(4, tok, []byte("abc")))
			require.NotNil(t, e)
			assert.EqualValues(t, ck.CKR_USER_NOT_LOGGED_IN, e.RV)
		})
	}
}

// TestDataPathReconnect: the client's data-path connection dies with its
// node; once the node is back, the next call opens a new one.
func TestDataPathReconnect(t *testing.T) {
	cl := testcluster.Start(t, 1)
	c := dial(t, cl, cl.Env["P11_TOKEN_LABEL"], cl.Env["P11_PIN"])
	priv := ecKey(t, c)
	sign := func() error {
		_, err := c.Sign(ctx, priv, mech.Mech{Type: ck.CKM_ECDSA_SHA256}, []byte("m"))
		return err
	}
	require.NoError(t, sign())
	require.Equal(t, "data", c.Nodes()[0].Transport)
	cl.Stop(1, false)
	err := sign()
	require.Error(t, err)
	assert.EqualValues(t, ck.CKR_DEVICE_ERROR, client.RV(err))
	out, err := cl.StartNode(1)
	require.NoError(t, err, "%s", out)
	require.Eventually(t, func() bool { return sign() == nil }, 30*time.Second, 200*time.Millisecond)
	require.Equal(t, "data", c.Nodes()[0].Transport)
}

// TestDataPathForcedGRPC: transport = "grpc" keeps every call on gRPC.
func TestDataPathForcedGRPC(t *testing.T) {
	cl := testcluster.Start(t, 1)
	cfg, err := client.LoadConfig(cl.Env["HSM_CONFIG"])
	require.NoError(t, err)
	cfg.Transport = client.TransportGRPC
	c, err := client.Dial(ctx, cfg)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Login(ctx, cl.Env["P11_TOKEN_LABEL"], cl.Env["P11_PIN"]))
	priv := ecKey(t, c)
	_, err = c.Sign(ctx, priv, mech.Mech{Type: ck.CKM_ECDSA_SHA256}, []byte("m"))
	require.NoError(t, err)
	assert.Equal(t, "grpc", c.Nodes()[0].Transport)
	cfg.Transport = "carrier-pigeon"
	_, err = client.Dial(ctx, cfg)
	require.Error(t, err)
	assert.EqualValues(t, ck.CKR_ARGUMENTS_BAD, client.RV(err))
}

func ecKey(t testing.TB, c *client.Client) uint64 {
	_, priv, err := c.GenerateKeyPair(ctx, mech.Mech{Type: ck.CKM_EC_KEY_PAIR_GEN},
		object.Template{by(ck.CKA_EC_PARAMS, curveParams["P-256"]), bo(ck.CKA_TOKEN, true)}, object.Template{bo(ck.CKA_TOKEN, true)})
	if err != nil {
		t.Fatal(err)
	}
	return priv
}
