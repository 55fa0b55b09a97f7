package hsmd

// The node's XKS proxy (docs/xks.md): the [xks] section turns it on. Serve
// builds it as it builds the KMS API: the listener right after the node's
// own port (a taken port, an unusable certificate or a bad credentials
// file stops the node before anything else starts), the handler once the
// engine exists, the HTTP server once Raft runs; it stops first on
// shutdown.
//
// What the node adds to package kms/xks:
//   - TLS: the node's certificate or the section's own, TLS 1.2 or later,
//     HTTP/1.1, and mTLS (a verified client certificate required) when
//     client_ca is set.
//   - Credentials from credentials_file, read again on SIGHUP and when the
//     file's modification time or size changes; a bad file keeps the
//     credentials in use, and the log says why (never a secret).
//   - The ciphertextMetadata key, derived from the domain key
//     (seal.Sealer.XKSMetadataKey): the same on every node, never stored;
//     derived again if a restored backup brings another domain key.
//   - Deep health: one entry per cluster member, as this node sees it
//     (xksHealth), refreshed every xksHealthEvery.
//   - Freshness: a key operation first waits, at most xksFreshWait, for
//     this node to be in contact with the leader and caught up, else
//     DependencyTimeoutException (KMS retries it, on another node behind a
//     load balancer).

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/cluster"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/kms/xks"
	"github.com/openhsm/openhsm/seal"
	"golang.org/x/net/netutil"
)

// xksFreshWait bounds how long an XKS key operation waits for this node
// to be fresh: AWS KMS waits 250 ms for the whole call.
const xksFreshWait = 150 * time.Millisecond

// xksHealthEvery is how often the health of every member is checked;
// GetHealthStatus answers the last check (the spec allows an answer from
// a check up to a minute old, and KMS waits 250 ms).
const xksHealthEvery = time.Second

// xksHealthTimeout bounds one member's check.
const xksHealthTimeout = time.Second

// xksMaxConns bounds the proxy's open connections.
const xksMaxConns = 1024

// xksAPI is the node's XKS proxy.
type xksAPI struct {
	cfg *XKSConfig
	log *slog.Logger
	httpPort
	creds *xks.Credentials
	authz *xks.Authorizer

	stampMu sync.Mutex
	stamp   fileStamp // of the credentials file last read well (or tried)

	backend *xksBackend
	handler atomic.Pointer[xks.Handler]
	health  *xksHealth
	keyFP   string // fingerprint of the domain key the metadata key is from
}

// fileStamp tells a file's versions apart without reading it.
type fileStamp struct {
	mod  time.Time
	size int64
	ino  uint64
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	st := fileStamp{mod: fi.ModTime(), size: fi.Size()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st, nil
}

// listenXKS opens the proxy's port, or answers nil when the config has no
// [xks] section.
func listenXKS(cfg *Config, log *slog.Logger) (*xksAPI, error) {
	x := cfg.XKS
	if x == nil {
		return nil, nil
	}
	a := &xksAPI{cfg: x, log: log.With("api", "xks"), creds: &xks.Credentials{}, authz: &xks.Authorizer{},
		httpPort: httpPort{section: "xks", stopWait: kmsStopWait}}
	certFile, keyFile := x.Cert, x.Key
	if certFile == "" {
		certFile, keyFile = cfg.Cert, cfg.Key
	}
	conf, err := xksTLSConfig(certFile, keyFile, x.ClientCA)
	if err != nil {
		return nil, fmt.Errorf("xks: %v", err)
	}
	a.tls = conf
	if err := a.authz.SetRules(x.AuthzRules()); err != nil {
		return nil, fmt.Errorf("xks.rule: %v", err)
	}
	if err := a.reload("start"); err != nil {
		return nil, fmt.Errorf("xks.credentials_file: %v", err)
	}
	ln, err := net.Listen("tcp", x.Listen)
	if err != nil {
		return nil, fmt.Errorf("xks.listen: %v", err)
	}
	a.ln = netutil.LimitListener(ln, xksMaxConns)
	return a, nil
}

// xksTLSConfig is the proxy's server side: the certificate (AWS KMS, as
// a client, wants one a public CA issued for the proxy's host name), TLS
// 1.2 or later, HTTP/1.1 (as the KMS API, see kmsTLSConfig), and, with
// clientCA, mTLS: a client certificate chained to clientCA is required.
func xksTLSConfig(certFile, keyFile, clientCA string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("the TLS certificate and key: %v", err)
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}
	if clientCA != "" {
		pem, err := os.ReadFile(clientCA)
		if err != nil {
			return nil, fmt.Errorf("client_ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client_ca: %s holds no PEM certificate", clientCA)
		}
		conf.ClientCAs = pool
		conf.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return conf, nil
}

// reload reads the credentials file and, if it is good, makes the
// credentials exactly its own; a bad file changes nothing. why says what
// asked ("start", "SIGHUP", "change").
func (a *xksAPI) reload(why string) error {
	a.stampMu.Lock()
	defer a.stampMu.Unlock()
	path := a.cfg.CredentialsFile
	st, _ := stampOf(path)
	a.stamp = st
	list, err := readXKSCredentials(path, a.cfg.PrefixList())
	if err != nil {
		return err
	}
	keep := map[[2]string]bool{}
	for _, c := range list {
		// readXKSCredentials checked every credential with Set already.
		if err := a.creds.Set(c.Prefix, c.AccessKeyID, c.SecretAccessKey); err != nil {
			return err
		}
		keep[[2]string{c.Prefix, c.AccessKeyID}] = true
	}
	var removed []string
	for _, p := range a.creds.Prefixes() {
		for _, id := range a.creds.AccessKeyIDs(p) {
			if !keep[[2]string{p, id}] {
				a.creds.Remove(p, id)
				removed = append(removed, p+" "+id)
			}
		}
	}
	var ids []string
	for _, p := range a.creds.Prefixes() {
		for _, id := range a.creds.AccessKeyIDs(p) {
			ids = append(ids, p+" "+id)
		}
	}
	a.log.Info("XKS credentials loaded", "reason", why, "file", path, "credentials", ids, "removed", removed)
	return nil
}

// watch reloads the credentials on SIGHUP and when the file changes,
// until ctx ends.
func (a *xksAPI) watch(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	t := time.NewTicker(a.cfg.Poll())
	defer t.Stop()
	for {
		why := ""
		select {
		case <-ctx.Done():
			return
		case <-hup:
			why = "SIGHUP"
		case <-t.C:
			st, err := stampOf(a.cfg.CredentialsFile)
			a.stampMu.Lock()
			same := err == nil && st == a.stamp
			a.stampMu.Unlock()
			if same {
				continue
			}
			if err != nil {
				a.stampMu.Lock()
				changed := a.stamp != (fileStamp{})
				a.stamp = fileStamp{}
				a.stampMu.Unlock()
				if changed {
					a.log.Warn("the XKS credentials file is unreadable; keeping the credentials in use", "error", err.Error())
				}
				continue
			}
			why = "change"
		}
		if err := a.reload(why); err != nil {
			a.log.Warn("the XKS credentials file is bad; keeping the credentials in use", "reason", why, "error", err.Error())
		}
	}
}

// build makes the Backend, the health checker and the handler; the engine
// and the cluster node exist by now, Raft does not run yet.
func (a *xksAPI) build(e *engine.Engine, cn *cluster.Node, sealer func() *seal.Sealer) error {
	a.health = &xksHealth{cn: cn, sealer: sealer, model: "openhsm hsmd " + Version}
	a.backend = &xksBackend{
		HSMBackend: xks.HSMBackend{Engine: e, User: a.cfg.User, Nodes: a.health.nodes},
		cn:         cn,
	}
	if err := a.rekey(sealer()); err != nil {
		return err
	}
	a.srv = httpAPIServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.handler.Load().ServeHTTP(w, r) }), a.tls, a.log)
	return nil
}

// rekey makes the handler with the metadata key of the domain key s, if
// that is not the key in use already: at build, and after a restored
// backup brought another domain key.
func (a *xksAPI) rekey(s *seal.Sealer) error {
	if s == nil {
		return errors.New("the domain key is sealed")
	}
	if a.handler.Load() != nil && s.Fingerprint() == a.keyFP {
		return nil
	}
	key := s.XKSMetadataKey()
	h, err := xks.New(xks.Config{
		Backend:     a.backend,
		Credentials: a.creds,
		MetadataKey: key,
		Authorizer:  a.authz,
		PingPath:    a.cfg.PingPath,
		Model:       "openhsm hsmd " + Version + " XKS proxy (API v1)",
		Observe:     a.observe,
	})
	clear(key) // New keeps its own copy
	if err != nil {
		return err
	}
	a.keyFP = s.Fingerprint()
	a.handler.Store(h)
	return nil
}

// observe logs one answered request: never plaintext or a secret (Event
// holds neither).
func (a *xksAPI) observe(ev xks.Event) {
	md := ev.Metadata
	attrs := []any{"operation", ev.Operation, "prefix", ev.Prefix, "key_id", ev.KeyID, "access_key_id", ev.AccessKeyID,
		"status", ev.Status, "error", ev.ErrorName, "rule", ev.Rule, "ms", ev.Duration.Milliseconds(),
		"kms_request_id", md.KMSRequestID, "kms_operation", md.KMSOperation, "principal", md.AWSPrincipalARN, "kms_key_arn", md.KMSKeyARN}
	if ev.Status >= 500 {
		a.log.Warn("xks request", attrs...)
	} else {
		a.log.Info("xks request", attrs...)
	}
}

// serve writes the address file and serves until shutdown; the channel
// receives the server's error, nil after shutdown.
func (a *xksAPI) serve() (<-chan error, error) {
	return a.httpPort.serve(a.log, a.cfg.AddrFile, "serving the XKS proxy", "user", a.cfg.User,
		"prefixes", a.cfg.PrefixList(), "mtls", a.tls.ClientAuth == tls.RequireAndVerifyClientCert)
}

// run checks health and watches the credentials until ctx ends.
func (a *xksAPI) run(ctx context.Context) {
	go a.watch(ctx)
	a.health.run(ctx)
}

// xksBackend is the HSMBackend whose key operations wait for this node to
// be fresh first.
type xksBackend struct {
	xks.HSMBackend
	cn *cluster.Node
}

func (b *xksBackend) fresh(ctx context.Context) error {
	if !b.cn.WaitFresh(ctx, xksFreshWait) {
		return xks.ErrDependencyTimeout
	}
	return nil
}

// KeyMetadata implements xks.Backend.
func (b *xksBackend) KeyMetadata(ctx context.Context, keyID string) (xks.Metadata, error) {
	if err := b.fresh(ctx); err != nil {
		return xks.Metadata{}, err
	}
	return b.HSMBackend.KeyMetadata(ctx, keyID)
}

// Encrypt implements xks.Backend.
func (b *xksBackend) Encrypt(ctx context.Context, keyID string, plaintext, aad, iv []byte) ([]byte, []byte, uint32, error) {
	if err := b.fresh(ctx); err != nil {
		return nil, nil, 0, err
	}
	return b.HSMBackend.Encrypt(ctx, keyID, plaintext, aad, iv)
}

// Decrypt implements xks.Backend.
func (b *xksBackend) Decrypt(ctx context.Context, keyID string, v uint32, ciphertext, aad, iv, tag []byte) ([]byte, error) {
	if err := b.fresh(ctx); err != nil {
		return nil, err
	}
	return b.HSMBackend.Decrypt(ctx, keyID, v, ciphertext, aad, iv, tag)
}

// xksHealth is the deep health of GetHealthStatus: one entry per member of
// the cluster's configuration, as this node sees it.
//
//	ACTIVE       serving: this node, or a member that answered, is the
//	             leader holding its lease, or a follower in contact with
//	             the leader and caught up
//	DEGRADED     running but not serving now (an election, catching up,
//	             cut off from the leader)
//	UNAVAILABLE  did not answer within xksHealthTimeout, answered with
//	             another name, or (this node) its domain key is sealed
type xksHealth struct {
	cn     *cluster.Node
	sealer func() *seal.Sealer
	model  string

	mu   sync.Mutex
	last []xks.NodeHealth
}

// nodes is the last check, or a check now if none ran yet.
func (h *xksHealth) nodes(ctx context.Context) []xks.NodeHealth {
	h.mu.Lock()
	last := h.last
	h.mu.Unlock()
	if last != nil {
		return slices.Clone(last)
	}
	return h.check(ctx)
}

func (h *xksHealth) run(ctx context.Context) {
	t := time.NewTicker(xksHealthEvery)
	defer t.Stop()
	for {
		h.check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// check asks every member at once and keeps the answer.
func (h *xksHealth) check(ctx context.Context) []xks.NodeHealth {
	self, _ := h.cn.Self()
	members, err := h.cn.Members()
	if err != nil || len(members) == 0 {
		members = []cluster.Member{{ID: self}}
	}
	out := make([]xks.NodeHealth, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		out[i] = xks.NodeHealth{ID: m.ID, Model: h.model, Status: xks.HealthUnavailable}
		if m.ID == self {
			out[i].Status = h.selfStatus()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			api, err := h.cn.Peer(m.Addr)
			if err != nil {
				return
			}
			pctx, cancel := context.WithTimeout(ctx, xksHealthTimeout)
			defer cancel()
			st, err := api.NodeStatus(pctx, &hsmpb.Empty{})
			switch {
			case err != nil || st.Name != m.ID:
			case st.Serving:
				out[i].Status = xks.HealthActive
			default:
				out[i].Status = xks.HealthDegraded
			}
		}()
	}
	wg.Wait()
	h.mu.Lock()
	h.last = out
	h.mu.Unlock()
	return slices.Clone(out)
}

// selfStatus is this node's state, judged as localStatus judges Serving.
func (h *xksHealth) selfStatus() string {
	if h.sealer() == nil {
		return xks.HealthUnavailable
	}
	serving := h.cn.Fresh()
	if h.cn.IsLeader() {
		_, serving = h.cn.LeaseGrant()
	}
	if serving {
		return xks.HealthActive
	}
	return xks.HealthDegraded
}
