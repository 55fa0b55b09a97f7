package hsmd

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/cluster"
	"github.com/openhsm/openhsm/cluster/peerpb"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/kms"
	"github.com/openhsm/openhsm/metrics"
	"github.com/openhsm/openhsm/seal"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/openhsm/openhsm/pki"
	"github.com/openhsm/openhsm/state"
	"github.com/openhsm/openhsm/state/sqlite"
	"google.golang.org/grpc"
)

// StoreFile is the store's file name inside data_dir.
const StoreFile = "hsm.db"

// MinPassphraseLen is the shortest passphrase that may seal a domain key.
const MinPassphraseLen = 12

// KEKSource reads the passphrase or key file the config names.
func (c *Config) KEKSource() (seal.KEKSource, error) {
	setting, path := "key_file", c.KeyFile
	if c.PassphraseFile != "" {
		setting, path = "passphrase_file", c.PassphraseFile
	}
	if err := privateFile(setting, path); err != nil {
		return seal.KEKSource{}, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return seal.KEKSource{}, fmt.Errorf("%s: %v", setting, err)
	}
	src, err := parseKEK(c.PassphraseFile != "", b)
	if err != nil {
		return seal.KEKSource{}, fmt.Errorf("%s: %v", setting, err)
	}
	return src, nil
}

// parseKEK reads the contents of a passphrase file (trailing newline
// dropped, at least MinPassphraseLen bytes) or of a key file (32 raw bytes
// or 64 hex digits).
func parseKEK(passphrase bool, b []byte) (seal.KEKSource, error) {
	if passphrase {
		b = bytes.TrimRight(b, "\r\n")
		if len(b) < MinPassphraseLen {
			return seal.KEKSource{}, fmt.Errorf("the passphrase must be at least %d bytes", MinPassphraseLen)
		}
		return seal.KEKSource{Passphrase: b}, nil
	}
	if t := bytes.TrimSpace(b); len(t) == 64 {
		if k, err := hex.DecodeString(string(t)); err == nil {
			return seal.KEKSource{KeyFile: k}, nil
		}
	}
	if len(b) != 32 {
		return seal.KEKSource{}, fmt.Errorf("must hold 32 raw bytes or 64 hex digits")
	}
	return seal.KEKSource{KeyFile: b}, nil
}

// privateFile refuses a secret file that group or others may read or
// write, or that is not a regular file: the passphrase or key file alone
// opens every backup, so it must be the node's own.
func privateFile(setting, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s: %v", setting, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: %s is not a regular file", setting, path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s: %s has mode %#o; group and others must have no access (chmod 600 %s)", setting, path, perm, path)
	}
	return nil
}

func (c *Config) storePath() string { return filepath.Join(c.DataDir, StoreFile) }

// logger makes the node's logger, JSON lines to log_file (or stderr), and
// returns the writer too, for Raft's own log lines.
func (c *Config) logger() (*slog.Logger, io.Writer, io.Closer, error) {
	var w io.Writer = os.Stderr
	var closer io.Closer = io.NopCloser(nil)
	if c.LogFile != "" {
		f, err := os.OpenFile(c.LogFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("log_file: %v", err)
		}
		w, closer = f, f
	}
	level := slog.LevelInfo
	switch c.LogLevel {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	l := slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})).With("node", c.Node)
	return l, w, closer, nil
}

// Init creates a node's store with a fresh domain key sealed under the
// configured passphrase or key file. It refuses to touch an existing store.
// The cluster ID is the one the node's certificate is bound to (chosen by
// `hsm cluster init`); clusterID, if not empty, must be that same ID.
func Init(cfg *Config, clusterID string) error {
	certID, err := pki.CertFileClusterID(cfg.Cert)
	if err != nil {
		return fmt.Errorf("cert: %w", err)
	}
	if clusterID == "" {
		clusterID = certID
	}
	if clusterID != certID {
		return fmt.Errorf("the cluster id %q is not the one the node certificate is bound to (%q)", clusterID, certID)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data_dir: %v", err)
	}
	if sqlite.Exists(cfg.storePath()) {
		return fmt.Errorf("%s already holds a store; refusing to initialize it again", cfg.DataDir)
	}
	src, err := cfg.KEKSource()
	if err != nil {
		return err
	}
	_, rec, err := seal.NewDomainKey(clusterID, src)
	if err != nil {
		return err
	}
	st, err := sqlite.Open(cfg.storePath(), sqlite.Options{Sync: true})
	if err != nil {
		return err
	}
	defer st.Close()
	m := state.NewMachine(st, nil, nil)
	return (&engine.LocalApplier{M: m}).Submit(context.Background(), &state.Command{Op: state.OpInit, Domain: rec.Marshal()})
}

// joinMarker, in data_dir, says the node was made to join a cluster: with
// no Raft state yet, it waits to be added rather than founding a cluster.
// Its first line is the address it joined from; its second, the names of
// the members then, from whom alone it takes Raft connections until it has
// a configuration.
const joinMarker = "JOINING"

// joinMembers reads the member names from the join marker.
func joinMembers(b []byte) []string {
	lines := strings.SplitN(string(b), "\n", 3)
	if len(lines) < 2 {
		return nil
	}
	return strings.Fields(lines[1])
}

// dialPeer opens a Peer client to the node at addr as this node (its node
// certificate), for the calls a node makes before it serves: joining, and
// `hsmd unlock-user`.
func dialPeer(cfg *Config, addr string) (peerpb.PeerClient, func() error, error) {
	peerConf, err := pki.NodePeerConfig(cfg.Cert, cfg.Key, cfg.CA, nil)
	if err != nil {
		return nil, nil, err
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(peerConf)))
	if err != nil {
		return nil, nil, err
	}
	return peerpb.NewPeerClient(conn), conn.Close, nil
}

// InitJoin prepares a node that will join the cluster another node at addr
// belongs to: it fetches the cluster's sealed domain key from that node
// (over mutual TLS, as a node), checks that this node's passphrase or key
// file unseals it, and creates the store with it. A crypto officer then
// adds the node with 'hsm cluster add-node' while it runs.
func InitJoin(cfg *Config, addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("join: %q is not host:port", addr)
	}
	if sqlite.Exists(cfg.storePath()) {
		return fmt.Errorf("%s already holds a store; refusing to initialize it again", cfg.DataDir)
	}
	src, err := cfg.KEKSource()
	if err != nil {
		return err
	}
	peer, closePeer, err := dialPeer(cfg, addr)
	if err != nil {
		return fmt.Errorf("join: %v", err)
	}
	defer closePeer()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := peer.DomainKey(ctx, &hsmpb.Empty{})
	if err != nil {
		return fmt.Errorf("join: cannot get the domain key from %s: %s", addr, status.Convert(err).Message())
	}
	rec, err := seal.UnmarshalSealedDomainKey(resp.Sealed)
	if err != nil {
		return fmt.Errorf("join: %v", err)
	}
	if _, err := rec.Unseal(src); err != nil {
		return fmt.Errorf("join: %w (every node of a cluster needs the same passphrase or key file)", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data_dir: %v", err)
	}
	if len(resp.Members) == 0 {
		return fmt.Errorf("join: %s named no members", addr)
	}
	for _, m := range resp.Members {
		if err := pki.ValidateName(m); err != nil {
			return fmt.Errorf("join: %s named a bad member: %v", addr, err)
		}
	}
	marker := addr + "\n" + strings.Join(resp.Members, " ") + "\n"
	if err := os.WriteFile(filepath.Join(cfg.DataDir, joinMarker), []byte(marker), 0o600); err != nil {
		return fmt.Errorf("data_dir: %v", err)
	}
	st, err := sqlite.Open(cfg.storePath(), sqlite.Options{Sync: true})
	if err != nil {
		return err
	}
	defer st.Close()
	m := state.NewMachine(st, nil, nil)
	return (&engine.LocalApplier{M: m}).Submit(context.Background(), &state.Command{Op: state.OpInit, Domain: resp.Sealed})
}

// Node is one running daemon. Open builds what needs no network (the store,
// the domain key, the state machine); Serve builds the rest in dependency
// order, listeners (the node's port, then the KMS API's), cluster, engine,
// backups, key-use counter, KMS service, server, and only then starts
// Raft, so the first applied command finds every part in place; the KMS
// API serves once Raft runs and stops first. News from apply reaches the
// parts through one interface: the Node is the machine's state.Observer.
type Node struct {
	Config  *Config
	Store   *sqlite.Store
	Machine *state.Machine
	Log     *slog.Logger
	// Set by Serve, before Raft starts.
	Engine  *engine.Engine
	Server  *Server
	Cluster *cluster.Node
	// KMS is the KMS service, nil without a [kms] section.
	KMS *kms.Service
	// Metrics are the node's metrics, recorded whether or not [metrics]
	// serves them.
	Metrics *metrics.Metrics

	xks *xksAPI // the XKS proxy, nil without an [xks] section

	domain *domainKey
	grpc   *grpc.Server
	logw   io.Writer
	closer io.Closer
	// deny is the certificate deny-list every handshake and call checks,
	// loaded from the store and refreshed after each revocation applies.
	deny pki.DenyList
	mux  *cluster.Mux
}

// ClusterID is the ID of the cluster whose domain key the node serves.
func (n *Node) ClusterID() string { return n.domain.cluster() }

// Open opens an initialized store and unseals its domain key. A wrong
// passphrase is an error, and nothing is written.
func Open(cfg *Config) (*Node, error) {
	if !sqlite.Exists(cfg.storePath()) {
		return nil, fmt.Errorf("%s holds no store: run 'hsmd init' first", cfg.DataDir)
	}
	src, err := cfg.KEKSource()
	if err != nil {
		return nil, err
	}
	st, err := sqlite.Open(cfg.storePath(), sqlite.Options{Sync: cfg.SyncWrites()})
	if err != nil {
		return nil, err
	}
	raw, err := st.Meta(state.MetaDomainKey)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("the store has no domain key (was 'hsmd init' interrupted?): %v", err)
	}
	rec, err := seal.UnmarshalSealedDomainKey(raw)
	if err != nil {
		st.Close()
		return nil, err
	}
	sealer, err := rec.Unseal(src)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("cannot start: %w", err)
	}
	// Unsealing took 64 MiB for argon2id: give it back to the system now
	// rather than keep it as the daemon's floor.
	debug.FreeOSMemory()
	log, logw, closer, err := cfg.logger()
	if err != nil {
		st.Close()
		return nil, err
	}
	cfg.lockSealer(log, sealer)
	n := &Node{Config: cfg, Store: st, Log: log, logw: logw, closer: closer}
	// n observes the machine; the parts it passes news to are built in
	// Serve before Raft starts, and nothing applies before then.
	n.Machine = state.NewMachine(st, sealer, n)
	n.domain = &domainKey{machine: n.Machine, store: st, kek: src, lock: cfg.lockSealer, fatal: n.fatal, log: log,
		sealed: raw, clusterID: rec.ClusterID}
	if err := n.loadDenyList(); err != nil {
		st.Close()
		return nil, err
	}
	return n, nil
}

// The Node's side of state.Observer: it passes apply's news to the engine
// (caches, session objects), the server (logged-out sessions) and its own
// deny-list and domain key.

// ObjectChanged implements state.Observer.
func (n *Node) ObjectChanged(id uint64) { n.Engine.ObjectChanged(id) }

// UsersChanged implements state.Observer.
func (n *Node) UsersChanged() { n.Engine.UsersChanged() }

// LoggedOut implements state.Observer.
func (n *Node) LoggedOut(session uint64, expires int64) { n.Server.revoke(session, expires) }

// CertRevoked implements state.Observer: the revocation is in the store
// already; failing to read it back means this node would go on honouring a
// revoked certificate, so it stops.
func (n *Node) CertRevoked() {
	if err := n.loadDenyList(); err != nil {
		n.fatal(fmt.Errorf("reading the certificate deny-list: %w", err))
	}
}

// KMSChanged implements state.Observer: the KMS service's row caches are
// stale.
func (n *Node) KMSChanged() {
	if n.KMS != nil {
		n.KMS.KMSChanged()
	}
}

// Restored implements state.Observer: a snapshot or restored backup brings
// its own logouts, deny-list and perhaps another domain key, which this
// node's passphrase or key file must unseal, or it stops.
func (n *Node) Restored() error {
	if err := n.Engine.Restored(); err != nil {
		return err
	}
	n.KMSChanged()
	if err := n.Server.loadLoggedOut(); err != nil {
		return err
	}
	if err := n.loadDenyList(); err != nil {
		return err
	}
	if err := n.domain.reload(); err != nil {
		return err
	}
	if n.xks != nil {
		// Another domain key: the ciphertextMetadata key derives from it.
		if err := n.xks.rekey(n.Machine.Sealer()); err != nil {
			n.Log.Error("the XKS proxy cannot follow the restored domain key", "error", err.Error())
		}
	}
	return nil
}

var _ state.Observer = (*Node)(nil)

// loadDenyList reads the certificate deny-list from the store into the set
// the handshakes check, and cuts the open connections of any certificate on
// it.
func (n *Node) loadDenyList() error {
	fps, err := state.RevokedFingerprints(n.Store.Meta)
	if err != nil {
		return err
	}
	n.deny.Set(fps)
	if mux := n.mux; mux != nil {
		// Closing a TLS connection may wait for its peer (close_notify);
		// apply must not. Calls are refused at once anyway: authorize
		// checks the set just swapped in.
		go func() {
			if cut := mux.Cut(n.deny.Revoked); cut > 0 {
				n.Log.Info("closed the connections of revoked certificates", "connections", cut)
			}
		}()
	}
	return nil
}

// fatal stops the process: the node cannot go on without its state
// differing from the other nodes'.
func (n *Node) fatal(err error) {
	n.Log.Error("stopping: this node cannot go on safely", "error", err.Error())
	os.Exit(70)
}

// Serve listens on the node's one port (client API and replication),
// builds the parts that need the cluster, starts Raft, and serves until ctx
// ends, then stops gracefully.
func (n *Node) Serve(ctx context.Context) error {
	cfg := n.Config
	tlsConf, err := pki.NodeServerConfig(cfg.Cert, cfg.Key, cfg.CA, &n.deny)
	if err != nil {
		return err
	}
	peerConf, err := pki.NodePeerConfig(cfg.Cert, cfg.Key, cfg.CA, &n.deny)
	if err != nil {
		return err
	}
	// The other nodes know this one by its certificate's name: it must
	// be the Raft name, or they would refuse it as a non-member.
	if cn := peerConf.Certificates[0].Leaf.Subject.CommonName; cn != cfg.Node {
		return fmt.Errorf("cert: the node certificate is for %q, but node is %q; they must be the same", cn, cfg.Node)
	}
	mux, err := cluster.Listen(cfg.Listen, tlsConf, n.Log)
	if err != nil {
		return fmt.Errorf("listen: %v", err)
	}
	defer mux.Close()
	mux.SetDenyList(&n.deny)
	n.mux = mux
	kapi, err := listenKMS(cfg, n.Log)
	if err != nil {
		return err
	}
	if kapi != nil {
		defer kapi.shutdown()
	}
	xapi, err := listenXKS(cfg, n.Log)
	if err != nil {
		return err
	}
	if xapi != nil {
		defer xapi.shutdown()
	}
	mapi, err := listenMetrics(cfg, n.Log)
	if err != nil {
		return err
	}
	if mapi != nil {
		defer mapi.shutdown()
	}
	n.Metrics = metrics.New()
	n.Store.ObserveCommits(n.Metrics.StoreCommitted)
	defer n.Store.ObserveCommits(nil)
	advertise := cfg.Advertise
	if advertise == "" {
		advertise = mux.Addr().String()
		if ta, ok := mux.Addr().(*net.TCPAddr); !ok || ta.IP.IsUnspecified() {
			return fmt.Errorf("advertise: required when listen is %s", cfg.Listen)
		}
	}
	lastBatch, err := state.LastAuditBatch(n.Store.Meta, cfg.Node)
	if err != nil {
		return err
	}
	marker, joinErr := os.ReadFile(filepath.Join(cfg.DataDir, joinMarker))
	cn, err := cluster.New(cluster.Config{
		ID: cfg.Node, Dir: filepath.Join(cfg.DataDir, "raft"), Mux: mux, Advertise: advertise,
		Peer: peerConf, Machine: n.Machine, Sync: cfg.SyncWrites(), Log: n.Log, RaftLog: n.logw,
		Join: joinErr == nil, JoinMembers: joinMembers(marker), SnapshotThreshold: cfg.SnapshotThreshold, TrailingLogs: cfg.TrailingLogs,
		Fatal: n.fatal, Timings: n.Metrics,
	})
	if err != nil {
		return err
	}
	n.Cluster = cn
	n.Engine = engine.NewEngine(n.Machine, &stampApplier{next: cn, node: cfg.Node},
		engine.Options{SessionObjects: cfg.MaxSessionObjects})
	bk := newBackups(cfg, n.Store, n.domain, cn, n.Log)
	uses := newUseCounter(cfg.Node, n.Machine.Sealer, cn, lastBatch, n.Log)
	if kapi != nil {
		lastKMS, err := state.LastKMSAuditBatch(n.Store.Meta, cfg.Node)
		if err != nil {
			cn.Close()
			return err
		}
		kapi.audit = newKMSAuditor(cfg.Node, n.Machine.Sealer, cn, lastKMS, n.Log)
		if err := kapi.build(n.Engine, cn, n.domain, n.Metrics); err != nil {
			cn.Close()
			return fmt.Errorf("kms: %v", err)
		}
		n.KMS = kapi.svc
	}
	if xapi != nil {
		if err := xapi.build(n.Engine, cn, n.Machine.Sealer); err != nil {
			cn.Close()
			return fmt.Errorf("xks: %v", err)
		}
		n.xks = xapi
	}
	n.Server = NewServer(n.Engine, ServerConfig{
		Node: cfg.Node, TTL: cfg.TTL(), MaxLifetime: cfg.MaxLifetime(), SweepEvery: cfg.SweepInterval(),
		MaxSessionsPerUser: cfg.MaxSessionsPerUser, Log: n.Log,
		Replica: cn, Domain: n.domain, Backups: bk, Uses: uses, Deny: &n.deny, KMS: n.KMS,
		Metrics: n.Metrics,
	})
	n.Metrics.SetSources(n.metricsSources(bk))
	if err := n.Server.loadLoggedOut(); err != nil {
		cn.Close()
		return err
	}
	if err := cn.Start(); err != nil {
		return err
	}
	n.grpc = n.Server.GRPCServer(cluster.Creds(), &peerServer{s: n.Server})
	hs := healthServer(n.grpc)
	// The KMS API serves before the node's address file is written, so
	// whoever waits for that file (cluster.sh) finds both ports open.
	var kmsDone <-chan error
	if kapi != nil {
		if kmsDone, err = kapi.serve(); err != nil {
			cn.Shutdown()
			return err
		}
	}
	var xksDone <-chan error
	if xapi != nil {
		if xksDone, err = xapi.serve(); err != nil {
			cn.Shutdown()
			return err
		}
	}
	var metricsDone <-chan error
	if mapi != nil {
		if metricsDone, err = mapi.serve(n.Metrics); err != nil {
			cn.Shutdown()
			return err
		}
	}
	if cfg.AddrFile != "" {
		if err := writeAddrFile(cfg.AddrFile, mux.Addr().String()); err != nil {
			cn.Shutdown()
			return fmt.Errorf("addr_file: %v", err)
		}
	}
	clusterID := n.ClusterID()
	n.Log.Info("serving", "addr", mux.Addr().String(), "advertise", advertise, "cluster", clusterID, "version", Version)
	if certID, err := pki.CertFileClusterID(cfg.Cert); err == nil && certID != clusterID {
		// A backup of another cluster was restored into this one: the
		// certificates stay bound to the ID they were issued for.
		n.Log.Warn("the store's cluster id differs from the certificates'", "certificates", certID)
	}
	jctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go n.Server.Janitor(jctx)
	go bk.schedule(jctx)
	go uses.run(jctx)
	go n.followReadiness(jctx, hs)
	if kapi != nil {
		go kapi.upkeep(jctx, cn)
		go kapi.audit.run(jctx)
	}
	if xapi != nil {
		go xapi.run(jctx)
	}
	done := make(chan error, 1)
	go func() { done <- n.grpc.Serve(mux.API()) }()
	// The data path (docs/dataplane.md) beside gRPC on the same port.
	dctx, dstop := context.WithCancel(context.Background())
	dataDone := make(chan struct{})
	go func() { n.Server.ServeData(dctx, mux.Data()); close(dataDone) }()
	select {
	case <-ctx.Done():
		if kapi != nil {
			kapi.shutdown()
		}
		if xapi != nil {
			xapi.shutdown()
		}
		n.grpc.GracefulStop()
		<-done
		err = nil
	case err = <-done:
	case err = <-kmsDone:
		err = fmt.Errorf("kms: %v", err)
		n.grpc.GracefulStop()
	case err = <-xksDone:
		err = fmt.Errorf("xks: %v", err)
		n.grpc.GracefulStop()
	case err = <-metricsDone:
		err = fmt.Errorf("metrics: %v", err)
		n.grpc.GracefulStop()
	}
	dstop()
	<-dataDone
	// No request runs any more: send the last counts before leaving the
	// cluster, so a normal stop loses none.
	fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
	if ferr := uses.flush(fctx, true); ferr != nil {
		n.Log.Error("key-use counts of the last second not recorded", "error", ferr.Error())
	}
	if kapi != nil {
		if ferr := kapi.audit.flush(fctx); ferr != nil {
			n.Log.Error("KMS requests of the last second not recorded", "error", ferr.Error())
		}
	}
	if kapi != nil {
		if ferr := kapi.audit.flush(fctx); ferr != nil {
			n.Log.Error("KMS requests of the last second not recorded", "error", ferr.Error())
		}
	}
	fcancel()
	if serr := cn.Shutdown(); serr != nil && err == nil {
		err = serr
	}
	return err
}

// Close releases the store and the log.
func (n *Node) Close() error {
	err := n.Store.Close()
	n.closer.Close()
	return err
}
