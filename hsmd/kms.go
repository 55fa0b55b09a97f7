package hsmd

// The node's KMS API (docs/kms.md, "Running it"): the [kms] section turns
// it on. Serve builds it in its one pass: the listener right after the
// node's own port (a taken port or an unusable certificate stops the node
// before anything else starts), the service once the engine exists (the
// server's principal RPCs use it), and the HTTP server once Raft runs. It
// stops first on shutdown, so requests in flight finish while the cluster
// is still up.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/openhsm/openhsm/audit"
	"github.com/openhsm/openhsm/cluster"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/kms"
	"github.com/openhsm/openhsm/kms/call"
	"github.com/openhsm/openhsm/kms/kmserr"
	"github.com/openhsm/openhsm/kms/model"
	"github.com/openhsm/openhsm/kms/sigv4"
	"github.com/openhsm/openhsm/metrics"
	"github.com/openhsm/openhsm/pki"
	"golang.org/x/net/netutil"
)

// kmsFreshWait bounds how long a KMS request waits for its node to be
// fresh (in contact with the leader and caught up) before it is answered
// DependencyTimeoutException, which the SDKs retry.
const kmsFreshWait = 3 * time.Second

// kmsMaxConns bounds the KMS API's open connections: no client
// certificate guards this port, so whoever reaches it could otherwise
// hold any number.
const kmsMaxConns = 1024

// kmsStopWait bounds how long shutdown waits for KMS requests in flight.
const kmsStopWait = 10 * time.Second

// msgDependencyTimeout is DependencyTimeoutException's text in the AWS API
// model (the exception's documentation, kms/model/service-2.json.gz).
const msgDependencyTimeout = "The system timed out while trying to fulfill the request. You can retry the request."

// kmsAPI is the node's KMS API.
type kmsAPI struct {
	cfg   *KMSConfig
	log   *slog.Logger
	clock *kmsClock // nil without clock_file
	httpPort

	svc   *kms.Service
	audit *kmsAuditor // set by Serve before build
}

// listenKMS opens the KMS API's port, or answers nil when the config has no
// [kms] section.
func listenKMS(cfg *Config, log *slog.Logger) (*kmsAPI, error) {
	k := cfg.KMS
	if k == nil {
		return nil, nil
	}
	a := &kmsAPI{cfg: k, log: log.With("api", "kms"), httpPort: httpPort{section: "kms", stopWait: kmsStopWait}}
	if k.ClockFile != "" {
		c, err := newKMSClock(k.ClockFile, a.log)
		if err != nil {
			return nil, fmt.Errorf("kms.clock_file: %v", err)
		}
		a.clock = c
	}
	if k.TLSOn() {
		conf, err := kmsTLSConfig(cfg.Cert, cfg.Key, cfg.CA)
		if err != nil {
			return nil, fmt.Errorf("kms: %v", err)
		}
		a.tls = conf
		if host, _, _ := net.SplitHostPort(k.Listen); host != "" {
			if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
				if err := conf.Certificates[0].Leaf.VerifyHostname(host); err != nil {
					a.log.Warn("the node certificate is not valid for the KMS listen address; clients must reach the API by a name it holds",
						"listen", k.Listen, "dns_names", conf.Certificates[0].Leaf.DNSNames, "ips", fmt.Sprint(conf.Certificates[0].Leaf.IPAddresses))
				}
			}
		}
	}
	ln, err := net.Listen("tcp", k.Listen)
	if err != nil {
		return nil, fmt.Errorf("kms.listen: %v", err)
	}
	if !k.TLSOn() && !onLoopback(ln) {
		// "localhost" resolved to something else: plain HTTP stays on
		// loopback whatever the resolver says.
		ln.Close()
		return nil, fmt.Errorf("kms.tls: plain HTTP is allowed only on loopback, and %s listens on %s", k.Listen, ln.Addr())
	}
	a.ln = netutil.LimitListener(ln, kmsMaxConns)
	return a, nil
}

// kmsTLSConfig is the KMS API's server side: the node certificate (which
// the cluster CA issued for server authentication, checked here as the
// node's own port checks it), TLS 1.2 or later as AWS KMS requires of its
// clients, and no client certificate: SigV4 authenticates KMS callers.
func kmsTLSConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	node, err := pki.ServerConfig(certFile, keyFile, caFile)
	if err != nil {
		return nil, err
	}
	// HTTP/1.1 only: a response is then written whole, in one TLS
	// record, so a node that dies mid-answer leaves its client a broken
	// connection (which the SDKs retry) and never a 200 with half a body
	// (an HTTP/2 HEADERS frame goes out before its DATA frame); and a TCP
	// load balancer spreads a client's connections over the nodes, where
	// HTTP/2 would put every request of the client on one.
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: node.Certificates, NextProtos: []string{"http/1.1"}}, nil
}

// build makes the service and its HTTP server; the engine and the cluster
// node exist by now, Raft does not run yet.
func (a *kmsAPI) build(e *engine.Engine, cn *cluster.Node, d *domainKey, m *metrics.Metrics) error {
	kc := kms.Config{Engine: e, Account: a.cfg.AccountID(), Log: a.log, XKSRootCAs: a.cfg.xksRoot}
	if a.clock != nil {
		kc.Clock = a.clock.Now
	}
	svc, err := kms.New(kc)
	if err != nil {
		return err
	}
	a.svc = svc
	h, err := newKMSHandler(kmsHandlerParts{
		// SigV4's window is real time: the test clock moves key life
		// cycles only.
		Verifier: &sigv4.Verifier{Regions: sigv4.RegionSet(a.cfg.RegionNames()...), Now: time.Now},
		Secrets:  svc,
		Service:  &freshService{next: svc, node: cn, wait: kmsFreshWait},
		Audit:    a.audit.Record,
		Ready:    func() bool { return cn.Fresh() && d.sealer() != nil },
		Log:      a.log,
		Metrics:  m,
	})
	if err != nil {
		return err
	}
	a.srv = httpAPIServer(h, a.tls, a.log)
	return nil
}

// serve writes the address file and serves until shutdown; the channel
// receives the server's error, nil after shutdown.
func (a *kmsAPI) serve() (<-chan error, error) {
	return a.httpPort.serve(a.log, a.cfg.AddrFile, "serving the KMS API", "account", a.cfg.AccountID())
}

// upkeep runs the service's upkeep every upkeep_interval on the leader
// (any node could: apply decides from the command's time; one is enough).
func (a *kmsAPI) upkeep(ctx context.Context, cn *cluster.Node) {
	every := a.cfg.Upkeep()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !cn.IsLeader() {
			continue
		}
		uctx, cancel := context.WithTimeout(ctx, max(every, 30*time.Second))
		err := a.svc.Upkeep(uctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			a.log.Warn("KMS upkeep failed; it runs again in an interval", "error", err.Error(), "interval", every.String())
		}
	}
}

// kmsHandlerParts is what the KMS API's HTTP handler (kms/httpapi) is made
// of; newKMSHandler passes them to httpapi.New (MaxBody is the handler's
// default).
type kmsHandlerParts struct {
	Verifier *sigv4.Verifier
	Secrets  sigv4.Secrets
	Service  call.Service
	// Ready says whether this node may serve: fresh, and the domain key
	// unsealed. GET /healthz answers it (the load balancer's check).
	Ready func() bool
	Log   *slog.Logger
	// Audit takes one event per request for the trail (hsmd/kmsaudit.go).
	Audit func(audit.KMSEvent)
	// Metrics counts the requests; nil counts none.
	Metrics *metrics.Metrics
}

// errNotReady is /healthz's answer while the node may not serve.
var errNotReady = errors.New("not ready: the node is not in contact with the leader and caught up, or its domain key is sealed")

// freshService makes every KMS call wait, first, until this node is fresh,
// so that a node cut off from the leader or behind it answers
// DependencyTimeoutException (a 503 the SDKs retry, on another node behind
// a load balancer) instead of old state.
type freshService struct {
	next call.Service
	node *cluster.Node
	wait time.Duration
}

// Call implements call.Service.
func (f *freshService) Call(ctx context.Context, r *call.Request) (model.Object, error) {
	if !f.node.WaitFresh(ctx, f.wait) {
		return nil, &kmserr.Error{Type: kmserr.DependencyTimeout, Message: msgDependencyTimeout}
	}
	return f.next.Call(ctx, r)
}

// writeAddrFile writes an address file atomically.
func writeAddrFile(path, addr string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(addr+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// kmsClockReread is how often, at most, the clock file is read again.
const kmsClockReread = 200 * time.Millisecond

// maxKMSClockOffset bounds the clock file's offset: 100 years.
const maxKMSClockOffset = 100 * 365 * 24 * 3600

// kmsClock is the KMS service's clock with the test hook clock_file: real
// time plus the whole number of seconds the file holds (a missing file is
// 0). It moves key life-cycle time only (deletion windows, rotation,
// import expiry); TLS, sessions and SigV4's window keep real time. A file
// that stops reading well keeps the last good offset and is logged once
// per different fault.
type kmsClock struct {
	path string
	log  *slog.Logger

	mu       sync.Mutex
	offset   time.Duration
	readAt   time.Time // when the file was last read (monotonic)
	lastWarn string
}

func newKMSClock(path string, log *slog.Logger) (*kmsClock, error) {
	d, err := readKMSClockOffset(path)
	if err != nil {
		return nil, err
	}
	log.Warn("the KMS clock is moved by a test hook (clock_file); never set it in production", "file", path, "offset_seconds", int64(d/time.Second))
	return &kmsClock{path: path, log: log, offset: d, readAt: time.Now()}, nil
}

// Now is the KMS service's time.
func (c *kmsClock) Now() time.Time {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.readAt) >= kmsClockReread {
		c.readAt = now
		d, err := readKMSClockOffset(c.path)
		switch {
		case err == nil:
			if d != c.offset {
				c.log.Info("the KMS clock offset changed", "offset_seconds", int64(d/time.Second))
			}
			c.offset, c.lastWarn = d, ""
		case err.Error() != c.lastWarn:
			c.lastWarn = err.Error()
			c.log.Warn("the KMS clock file is unreadable; keeping the last offset", "error", err.Error(), "offset_seconds", int64(c.offset/time.Second))
		}
	}
	return now.Add(c.offset)
}

// readKMSClockOffset reads a clock file: a whole number of seconds from 0
// to maxKMSClockOffset, surrounded by white space or not, in at most 64
// bytes. A missing file is 0.
func readKMSClockOffset(path string) (time.Duration, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 65))
	if err != nil {
		return 0, fmt.Errorf("%s: %v", path, err)
	}
	if len(b) > 64 {
		return 0, fmt.Errorf("%s holds more than 64 bytes, not a whole number of seconds from 0 to %d", path, maxKMSClockOffset)
	}
	s := strings.TrimSpace(string(b))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > maxKMSClockOffset {
		return 0, fmt.Errorf("%s holds %.20q, not a whole number of seconds from 0 to %d", path, s, maxKMSClockOffset)
	}
	return time.Duration(n) * time.Second, nil
}
