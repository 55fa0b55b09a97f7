package hsmd

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/openhsm/openhsm/pki"
	"github.com/openhsm/openhsm/tokens"
	"github.com/openhsm/openhsm/tokens/sqlite"
	"google.golang.org/grpc"
)

// StoreFile is the store's file name inside data_dir.
const StoreFile = "hsm.db"

// MinPassphraseLen is the shortest passphrase that may seal a domain key.
const MinPassphraseLen = 12

// KEKSource reads the passphrase or key file the config names.
func (c *Config) KEKSource() (tokens.KEKSource, error) {
	if c.PassphraseFile != "" {
		b, err := os.ReadFile(c.PassphraseFile)
		if err != nil {
			return tokens.KEKSource{}, fmt.Errorf("passphrase_file: %v", err)
		}
		b = bytes.TrimRight(b, "\r\n")
		if len(b) < MinPassphraseLen {
			return tokens.KEKSource{}, fmt.Errorf("passphrase_file: the passphrase must be at least %d bytes", MinPassphraseLen)
		}
		return tokens.KEKSource{Passphrase: b}, nil
	}
	b, err := os.ReadFile(c.KeyFile)
	if err != nil {
		return tokens.KEKSource{}, fmt.Errorf("key_file: %v", err)
	}
	if t := bytes.TrimSpace(b); len(t) == 64 {
		if k, err := hex.DecodeString(string(t)); err == nil {
			return tokens.KEKSource{KeyFile: k}, nil
		}
	}
	if len(b) != 32 {
		return tokens.KEKSource{}, fmt.Errorf("key_file: must hold 32 raw bytes or 64 hex digits")
	}
	return tokens.KEKSource{KeyFile: b}, nil
}

func (c *Config) storePath() string { return filepath.Join(c.DataDir, StoreFile) }

// Logger makes the node's logger: JSON lines to log_file, or to stderr.
func (c *Config) Logger() (*slog.Logger, io.Closer, error) {
	var w io.Writer = os.Stderr
	var closer io.Closer = io.NopCloser(nil)
	if c.LogFile != "" {
		f, err := os.OpenFile(c.LogFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("log_file: %v", err)
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
	return l, closer, nil
}

// Init creates a node's store with a fresh domain key sealed under the
// configured passphrase or key file. It refuses to touch an existing store.
func Init(cfg *Config, clusterID string) error {
	if clusterID == "" {
		return errors.New("a cluster id is required")
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
	_, rec, err := tokens.NewDomainKey(clusterID, src)
	if err != nil {
		return err
	}
	st, err := sqlite.Open(cfg.storePath(), sqlite.Options{Sync: true})
	if err != nil {
		return err
	}
	defer st.Close()
	m := tokens.NewMachine(st, nil)
	return (&tokens.LocalApplier{M: m}).Submit(context.Background(), &tokens.Command{Op: tokens.OpInit, Domain: rec.Marshal()})
}

// Node is one running daemon.
type Node struct {
	Config    *Config
	Store     *sqlite.Store
	Machine   *tokens.Machine
	Engine    *tokens.Engine
	Server    *Server
	ClusterID string
	Log       *slog.Logger
	grpc      *grpc.Server
	closer    io.Closer
}

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
	raw, err := st.Meta(tokens.MetaDomainKey)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("the store has no domain key (was 'hsmd init' interrupted?): %v", err)
	}
	rec, err := tokens.UnmarshalSealedDomainKey(raw)
	if err != nil {
		st.Close()
		return nil, err
	}
	sealer, err := rec.Unseal(src)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("cannot start: %w", err)
	}
	log, closer, err := cfg.Logger()
	if err != nil {
		st.Close()
		return nil, err
	}
	m := tokens.NewMachine(st, sealer)
	e := tokens.NewEngine(m, nil)
	n := &Node{Config: cfg, Store: st, Machine: m, Engine: e, ClusterID: rec.ClusterID, Log: log, closer: closer}
	n.Server = NewServer(e, cfg.Node, rec.ClusterID, cfg.TTL(), log)
	return n, nil
}

// Serve listens and serves until ctx ends, then stops gracefully.
func (n *Node) Serve(ctx context.Context) error {
	tlsConf, err := pki.ServerConfig(n.Config.Cert, n.Config.Key, n.Config.CA)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", n.Config.Listen)
	if err != nil {
		return fmt.Errorf("listen: %v", err)
	}
	n.grpc = n.Server.GRPCServer(tlsConf)
	if n.Config.AddrFile != "" {
		tmp := n.Config.AddrFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(l.Addr().String()+"\n"), 0o644); err != nil {
			l.Close()
			return fmt.Errorf("addr_file: %v", err)
		}
		if err := os.Rename(tmp, n.Config.AddrFile); err != nil {
			l.Close()
			return fmt.Errorf("addr_file: %v", err)
		}
	}
	n.Log.Info("serving", "addr", l.Addr().String(), "cluster", n.ClusterID, "version", Version)
	jctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go n.Server.Janitor(jctx)
	done := make(chan error, 1)
	go func() { done <- n.grpc.Serve(l) }()
	select {
	case <-ctx.Done():
		n.grpc.GracefulStop()
		<-done
		return nil
	case err := <-done:
		return err
	}
}

// Close releases the store and the log.
func (n *Node) Close() error {
	err := n.Store.Close()
	n.closer.Close()
	return err
}
