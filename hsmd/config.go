package hsmd

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/openhsm/openhsm/backup"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/pki"
)

// Config is a node's configuration file (TOML), documented with the
// memory ceiling in docs/hsmd-config.md. Relative paths are taken from the
// file's own directory.
type Config struct {
	Node           string `toml:"node"`
	Listen         string `toml:"listen"`
	DataDir        string `toml:"data_dir"`
	CA             string `toml:"ca"`
	Cert           string `toml:"cert"`
	Key            string `toml:"key"`
	PassphraseFile string `toml:"passphrase_file"`
	KeyFile        string `toml:"key_file"`
	LogFile        string `toml:"log_file"`
	LogLevel       string `toml:"log_level"`
	SessionTTL     string `toml:"session_ttl"`
	// SessionMaxLifetime is a login session's absolute end: refreshes
	// never carry a token past it, and a logout is remembered until then.
	SessionMaxLifetime string `toml:"session_max_lifetime"`
	// SessionSweepInterval is how often idle session objects and lapsed
	// logouts are swept.
	SessionSweepInterval string `toml:"session_sweep_interval"`
	Sync                 *bool  `toml:"sync"`
	// AddrFile, if set, receives the address the node listens on once it
	// does (useful with port 0).
	AddrFile string `toml:"addr_file"`
	// Advertise is the address other nodes and clients reach this node
	// at; by default the address it listens on.
	Advertise string `toml:"advertise"`
	// SnapshotThreshold and TrailingLogs tune Raft's log compaction.
	SnapshotThreshold uint64 `toml:"snapshot_threshold"`
	TrailingLogs      uint64 `toml:"trailing_logs"`
	// Backups: where, how often, and how long they are kept.
	BackupDir           string `toml:"backup_dir"`
	BackupInterval      string `toml:"backup_interval"`
	BackupRetentionDays int    `toml:"backup_retention_days"`
	// Quotas of what lives in this node's memory only (see
	// docs/command-authority.md): login sessions per user, and session
	// objects (CKA_TOKEN false) per login session. 0 means the default.
	// The cap on token objects per user is not here: apply enforces it,
	// so it is the same constant on every node
	// (state.MaxTokenObjectsPerUser).
	MaxSessionsPerUser int `toml:"max_sessions_per_user"`
	MaxSessionObjects  int `toml:"max_session_objects"`

	// LockMemory (default true) locks the domain key and the keys derived
	// from it in memory (mlock) so they never reach swap (see lockSealer).
	LockMemory *bool `toml:"lock_memory"`

	backupInterval time.Duration

	sessionTTL    time.Duration
	sessionMax    time.Duration
	sweepInterval time.Duration
}

// DefaultBackupInterval is how often the leader takes a backup.
const DefaultBackupInterval = 24 * time.Hour

// DefaultSessionTTL is how long a session token lives unless refreshed.
const DefaultSessionTTL = 10 * time.Minute

// DefaultSessionMaxLifetime is how long a login session may be refreshed.
const DefaultSessionMaxLifetime = 12 * time.Hour

// DefaultSweepInterval is how often the session janitor runs.
const DefaultSweepInterval = time.Minute

// LoadConfig reads and checks a node configuration file. Every problem is
// reported with the key it concerns.
func LoadConfig(path string) (*Config, error) {
	var c Config
	md, err := toml.DecodeFile(path, &c)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("config %s: unknown keys: %s", path, strings.Join(keys, ", "))
	}
	base := filepath.Dir(path)
	for _, p := range []*string{&c.DataDir, &c.CA, &c.Cert, &c.Key, &c.PassphraseFile, &c.KeyFile, &c.LogFile, &c.AddrFile, &c.BackupDir} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return &c, nil
}

func (c *Config) check() error {
	if err := pki.ValidateName(c.Node); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen: %q is not host:port", c.Listen)
	}
	if c.DataDir == "" {
		return fmt.Errorf("data_dir: required")
	}
	for _, f := range []struct{ key, path string }{{"ca", c.CA}, {"cert", c.Cert}, {"key", c.Key}} {
		if f.path == "" {
			return fmt.Errorf("%s: required", f.key)
		}
		if _, err := os.Stat(f.path); err != nil {
			return fmt.Errorf("%s: %v", f.key, err)
		}
	}
	if (c.PassphraseFile == "") == (c.KeyFile == "") {
		return fmt.Errorf("exactly one of passphrase_file and key_file is required")
	}
	switch c.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log_level: %q is not debug, info, warn or error", c.LogLevel)
	}
	if c.Advertise != "" {
		host, _, err := net.SplitHostPort(c.Advertise)
		if err != nil || host == "" {
			return fmt.Errorf("advertise: %q is not host:port", c.Advertise)
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			return fmt.Errorf("advertise: %q is not an address others can reach", c.Advertise)
		}
	}
	if c.SnapshotThreshold > 1<<30 || c.TrailingLogs > 1<<30 {
		return fmt.Errorf("snapshot_threshold and trailing_logs must be at most %d", 1<<30)
	}
	if c.BackupDir == "" {
		c.BackupDir = filepath.Join(c.DataDir, "backups")
	}
	c.backupInterval = DefaultBackupInterval
	if c.BackupInterval != "" {
		d, err := time.ParseDuration(c.BackupInterval)
		if err != nil || d < time.Minute || d > 30*24*time.Hour {
			return fmt.Errorf("backup_interval: %q must be a duration from 1m to 720h", c.BackupInterval)
		}
		c.backupInterval = d
	}
	if c.BackupRetentionDays == 0 {
		c.BackupRetentionDays = backup.DefaultRetentionDays
	}
	if err := backup.CheckRetentionDays(c.BackupRetentionDays); err != nil {
		return fmt.Errorf("backup_retention_days: %v", err)
	}
	if c.MaxSessionsPerUser == 0 {
		c.MaxSessionsPerUser = DefaultMaxSessionsPerUser
	}
	if c.MaxSessionsPerUser < 1 || c.MaxSessionsPerUser > 1<<20 {
		return fmt.Errorf("max_sessions_per_user: %d must be from 1 to %d", c.MaxSessionsPerUser, 1<<20)
	}
	if c.MaxSessionObjects == 0 {
		c.MaxSessionObjects = engine.DefaultSessionObjects
	}
	if c.MaxSessionObjects < 1 || c.MaxSessionObjects > 1<<20 {
		return fmt.Errorf("max_session_objects: %d must be from 1 to %d", c.MaxSessionObjects, 1<<20)
	}
	c.sessionTTL = DefaultSessionTTL
	if c.SessionTTL != "" {
		d, err := time.ParseDuration(c.SessionTTL)
		if err != nil || d < 10*time.Second || d > 24*time.Hour {
			return fmt.Errorf("session_ttl: %q must be a duration from 10s to 24h", c.SessionTTL)
		}
		c.sessionTTL = d
	}
	c.sessionMax = DefaultSessionMaxLifetime
	if c.SessionMaxLifetime != "" {
		d, err := time.ParseDuration(c.SessionMaxLifetime)
		if err != nil || d < 10*time.Second || d > 7*24*time.Hour {
			return fmt.Errorf("session_max_lifetime: %q must be a duration from 10s to 168h", c.SessionMaxLifetime)
		}
		c.sessionMax = d
	}
	if c.sessionMax < c.sessionTTL {
		return fmt.Errorf("session_max_lifetime (%s) must be at least session_ttl (%s)", c.sessionMax, c.sessionTTL)
	}
	c.sweepInterval = DefaultSweepInterval
	if c.SessionSweepInterval != "" {
		d, err := time.ParseDuration(c.SessionSweepInterval)
		if err != nil || d < time.Second || d > time.Hour {
			return fmt.Errorf("session_sweep_interval: %q must be a duration from 1s to 1h", c.SessionSweepInterval)
		}
		c.sweepInterval = d
	}
	return nil
}

// SyncWrites tells whether the store fsyncs every commit (the default).
func (c *Config) SyncWrites() bool { return c.Sync == nil || *c.Sync }

// MaxLifetime is a login session's absolute lifetime.
func (c *Config) MaxLifetime() time.Duration {
	if c.sessionMax == 0 {
		return max(DefaultSessionMaxLifetime, c.TTL())
	}
	return c.sessionMax
}

// SweepInterval is how often the session janitor runs.
func (c *Config) SweepInterval() time.Duration {
	if c.sweepInterval == 0 {
		return DefaultSweepInterval
	}
	return c.sweepInterval
}

// TTL is the session token lifetime.
func (c *Config) TTL() time.Duration {
	if c.sessionTTL == 0 {
		return DefaultSessionTTL
	}
	return c.sessionTTL
}
