package hsmd

// The node's metrics and health (docs/operations.md): the [metrics] section
// serves Prometheus metrics, /healthz and /readyz on a port of its own, as
// [kms] serves the KMS API. The node records into its metrics whether or
// not it serves them (recording costs a few atomic adds per call). The
// standard grpc.health.v1 service is on the node's own port always,
// SERVING while the node is ready.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/openhsm/openhsm/api"
	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/cluster"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/metrics"
	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// MetricsConfig is the [metrics] section.
type MetricsConfig struct {
	// Listen is the host:port of the metrics and health endpoints (port
	// 0: chosen at start).
	Listen string `toml:"listen"`
	// TLS (default true) serves HTTPS with the node certificate; false
	// serves plain HTTP, allowed only when Listen is a loopback address.
	TLS *bool `toml:"tls"`
	// AddrFile, if set, receives the address once the port listens.
	AddrFile string `toml:"addr_file"`
	// Pprof (default false) also serves Go's runtime profiles
	// (net/http/pprof) under /debug/pprof/ on the metrics port, for
	// benchmarks (p11module/suites/bench.sh -profile). Allowed only when
	// Listen is a loopback address: a profile shows the node's code paths
	// and timings, and a CPU profile costs the node CPU while it runs.
	Pprof bool `toml:"pprof"`
}

// TLSOn says whether the metrics are served over HTTPS (the default).
func (m *MetricsConfig) TLSOn() bool { return m.TLS == nil || *m.TLS }

// check checks the section; its errors name the key without the
// "metrics." that the caller adds.
func (m *MetricsConfig) check() error {
	host, err := checkListen(m.Listen, m.TLSOn(), "metrics", "metrics")
	if err != nil {
		return err
	}
	if m.Pprof && !loopbackHost(host) {
		return fmt.Errorf("pprof: the profiles are served only on a loopback address, and %q is not one; "+
			"listen on 127.0.0.1 or leave pprof out", m.Listen)
	}
	return nil
}

// metricsMaxConns bounds the metrics port's open connections.
const metricsMaxConns = 64

// metricsStopWait bounds how long shutdown waits for scrapes in flight.
const metricsStopWait = 2 * time.Second

// readyPoll is how often the gRPC health status follows readiness.
const readyPoll = 250 * time.Millisecond

// metricsAPI is the metrics port.
type metricsAPI struct {
	cfg *MetricsConfig
	log *slog.Logger
	httpPort
}

// listenMetrics opens the metrics port, or answers nil without a [metrics]
// section.
func listenMetrics(cfg *Config, log *slog.Logger) (*metricsAPI, error) {
	mc := cfg.Metrics
	if mc == nil {
		return nil, nil
	}
	a := &metricsAPI{cfg: mc, log: log.With("api", "metrics"), httpPort: httpPort{section: "metrics", stopWait: metricsStopWait}}
	if mc.TLSOn() {
		conf, err := kmsTLSConfig(cfg.Cert, cfg.Key, cfg.CA)
		if err != nil {
			return nil, fmt.Errorf("metrics: %v", err)
		}
		a.tls = conf
	}
	ln, err := net.Listen("tcp", mc.Listen)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen: %v", err)
	}
	if !mc.TLSOn() && !onLoopback(ln) {
		ln.Close()
		return nil, fmt.Errorf("metrics.tls: plain HTTP is allowed only on loopback, and %s listens on %s", mc.Listen, ln.Addr())
	}
	if mc.Pprof && !onLoopback(ln) {
		ln.Close()
		return nil, fmt.Errorf("metrics.pprof: the profiles are served only on loopback, and %s listens on %s", mc.Listen, ln.Addr())
	}
	a.ln = netutil.LimitListener(ln, metricsMaxConns)
	return a, nil
}

// serve writes the address file and serves m until shutdown.
func (a *metricsAPI) serve(m *metrics.Metrics) (<-chan error, error) {
	h := m.Handler()
	if a.cfg.Pprof {
		h = withPprof(h)
	}
	a.srv = httpAPIServer(h, a.tls, a.log)
	return a.httpPort.serve(a.log, a.cfg.AddrFile, "serving metrics", "pprof", a.cfg.Pprof)
}

// withPprof serves net/http/pprof's handlers under /debug/pprof/ and
// everything else through h. (Importing net/http/pprof also registers them
// on http.DefaultServeMux, which no server of the node uses: each is given
// its own handler.)
func withPprof(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/", h)
	return mux
}

// Why a node is not ready.
var (
	errNoLeader   = errors.New("not ready: no leader is known")
	errNotFresh   = errors.New("not ready: not in contact with the leader, or not caught up with it")
	errSealedNode = errors.New("not ready: the domain key is sealed")
)

// ready says why the node may not serve, or nil: a leader is known, the
// node holds its lease (in contact with the leader and caught up with
// it), and its domain key is unsealed.
func (n *Node) ready() error {
	if n.Cluster == nil {
		return errNotFresh
	}
	if _, addr := n.Cluster.Leader(); addr == "" {
		return errNoLeader
	}
	if !n.Cluster.Fresh() {
		return errNotFresh
	}
	if n.domain.sealer() == nil {
		return errSealedNode
	}
	return nil
}

// metricsSources are what a scrape reads from the node's parts.
func (n *Node) metricsSources(bk *backups) metrics.Sources {
	return metrics.Sources{
		Sessions: n.Server.sessions.total,
		Raft: func() metrics.RaftStats {
			s := n.Cluster.Stats()
			return metrics.RaftStats{State: s.State, LeaderKnown: s.LeaderKnown, Term: s.Term,
				CommitIndex: s.CommitIndex, AppliedIndex: s.AppliedIndex, LastLogIndex: s.LastLogIndex}
		},
		NewestBackup: bk.newest,
		Ready:        n.ready,
	}
}

// healthServices are the services the gRPC health service reports on: the
// whole node ("") and the HSM API.
var healthServices = []string{"", hsmpb.HSM_ServiceDesc.ServiceName}

// followReadiness keeps the gRPC health status at SERVING while the node
// is ready and NOT_SERVING otherwise, until ctx ends; then it reports
// NOT_SERVING for good (the node is stopping).
func (n *Node) followReadiness(ctx context.Context, hs *health.Server) {
	set := func(st healthpb.HealthCheckResponse_ServingStatus) {
		for _, svc := range healthServices {
			hs.SetServingStatus(svc, st)
		}
	}
	t := time.NewTicker(readyPoll)
	defer t.Stop()
	for {
		if n.ready() == nil {
			set(healthpb.HealthCheckResponse_SERVING)
		} else {
			set(healthpb.HealthCheckResponse_NOT_SERVING)
		}
		select {
		case <-ctx.Done():
			hs.Shutdown()
			return
		case <-t.C:
		}
	}
}

// healthMethod says whether a full method name is one of grpc.health.v1's:
// any certificate of the cluster's CA may call them, on a node in or out
// of its lease (that is what they report).
func healthMethod(fullMethod string) bool {
	return fullMethod == healthpb.Health_Check_FullMethodName || fullMethod == healthpb.Health_Watch_FullMethodName ||
		fullMethod == healthpb.Health_List_FullMethodName
}

// mechanismOf is the mechanism a request names, or metrics.NoMechanism.
func mechanismOf(req any) uint64 {
	if r, ok := req.(interface{ GetMechanism() *hsmpb.Mechanism }); ok && r.GetMechanism() != nil {
		return r.GetMechanism().GetType()
	}
	return metrics.NoMechanism
}

// recordCall counts an answered call of the HSM API (other services are
// not counted); err is the status the interceptor answered.
func (s *Server) recordCall(fullMethod string, req any, err error, took time.Duration) {
	if s.metrics == nil {
		return
	}
	m, ok := api.MethodOf(fullMethod)
	if !ok {
		return
	}
	rv := uint64(ck.CKR_OK)
	if err != nil {
		rv = hsmerr.RV(api.FromStatus(err))
	}
	s.metrics.HSMCall(m.Name, mechanismOf(req), rv, took)
}

// cluster's timing hooks feed the metrics.
var _ cluster.Timings = (*metrics.Metrics)(nil)

// healthServer is the gRPC health service registered on g.
func healthServer(g *grpc.Server) *health.Server {
	hs := health.NewServer()
	for _, svc := range healthServices {
		hs.SetServingStatus(svc, healthpb.HealthCheckResponse_NOT_SERVING)
	}
	healthpb.RegisterHealthServer(g, hs)
	return hs
}
