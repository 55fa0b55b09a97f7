package hsmd

import (
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/openhsm/openhsm/backup"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/kms"
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

	// KMS, when the [kms] section is present, serves the KMS API
	// (docs/kms.md) on a port of its own; nil serves none.
	KMS *KMSConfig `toml:"kms"`
	// XKS, when the [xks] section is present, serves the XKS proxy
	// (docs/xks.md) on a port of its own; nil serves none.
	XKS *XKSConfig `toml:"xks"`
	// Metrics, when the [metrics] section is present, serves Prometheus
	// metrics and the health endpoints (docs/operations.md) on a port of
	// its own; nil serves none.
	Metrics *MetricsConfig `toml:"metrics"`

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
	paths := []*string{&c.DataDir, &c.CA, &c.Cert, &c.Key, &c.PassphraseFile, &c.KeyFile, &c.LogFile, &c.AddrFile, &c.BackupDir}
	if c.KMS != nil {
		paths = append(paths, &c.KMS.AddrFile, &c.KMS.ClockFile)
	}
	if c.XKS != nil {
		paths = append(paths, &c.XKS.Cert, &c.XKS.Key, &c.XKS.ClientCA, &c.XKS.CredentialsFile, &c.XKS.AddrFile)
	}
	if c.Metrics != nil {
		paths = append(paths, &c.Metrics.AddrFile)
	}
	for _, p := range paths {
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
	if c.KMS != nil {
		if err := c.KMS.check(); err != nil {
			return fmt.Errorf("kms.%w", err)
		}
	}
	if c.XKS != nil {
		if err := c.XKS.check(); err != nil {
			return fmt.Errorf("xks.%w", err)
		}
	}
	if c.Metrics != nil {
		if err := c.Metrics.check(); err != nil {
			return fmt.Errorf("metrics.%w", err)
		}
	}
	return c.checkPorts()
}

// checkPorts checks that the node's own port and the ports of [kms], [xks]
// and [metrics] are not one address (port 0 is a port chosen at start, a
// new one each).
func (c *Config) checkPorts() error {
	type port struct{ key, at string }
	ports := []port{{"listen", c.Listen}}
	if c.KMS != nil {
		ports = append(ports, port{"kms.listen", c.KMS.Listen})
	}
	if c.XKS != nil {
		ports = append(ports, port{"xks.listen", c.XKS.Listen})
	}
	if c.Metrics != nil {
		ports = append(ports, port{"metrics.listen", c.Metrics.Listen})
	}
	for i, p := range ports {
		for _, q := range ports[:i] {
			if p.at == q.at && !strings.HasSuffix(p.at, ":0") {
				return fmt.Errorf("%s: %q is also %s; each needs a port of its own", p.key, p.at, q.key)
			}
		}
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

// KMSConfig is the [kms] section: the KMS API this node serves
// (docs/kms.md, "Running it"). Without the section the node serves none.
type KMSConfig struct {
	// Listen is the host:port of the KMS API (port 0: chosen at start).
	Listen string `toml:"listen"`
	// TLS (default true) serves HTTPS with the node certificate, which the
	// cluster CA issued; false serves plain HTTP, allowed only when Listen
	// is a loopback address.
	TLS *bool `toml:"tls"`
	// Account is the 12-digit account ID of the ARNs (default
	// kms.DefaultAccount).
	Account string `toml:"account"`
	// Regions are the region names a request's credential scope may name
	// (default: DefaultKMSRegions, every AWS commercial region).
	Regions []string `toml:"regions"`
	// AddrFile, if set, receives the address the KMS API listens on once
	// it does.
	AddrFile string `toml:"addr_file"`
	// UpkeepInterval is how often the leader runs the KMS upkeep
	// (deletions, rotations, expiries due); default 1m.
	UpkeepInterval string `toml:"upkeep_interval"`
	// ClockFile is a test hook: a file holding a whole number of seconds
	// added to the KMS clock (key life cycles only), re-read at most every
	// kmsClockReread. A missing file is 0.
	ClockFile string `toml:"clock_file"`
	// XKSCAFile, if set, is a PEM file of CA certificates that external
	// key store proxies' TLS certificates may chain to, besides the
	// system's roots (an XKS proxy with a private CA, such as another
	// openhsm cluster's).
	XKSCAFile string `toml:"xks_ca_file"`

	upkeep  time.Duration
	xksRoot *x509.CertPool
}

// DefaultKMSUpkeepInterval is how often the leader runs the KMS upkeep.
const DefaultKMSUpkeepInterval = time.Minute

// MaxKMSRegions bounds the regions list of the [kms] section.
const MaxKMSRegions = 256

// regionName is the form of an AWS region name: a two-letter prefix, one
// or more words, and a number ("us-east-1", "us-gov-west-1",
// "ap-southeast-5").
var regionName = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)

// accountID is the form of an AWS account ID.
var accountID = regexp.MustCompile(`^[0-9]{12}$`)

// TLSOn says whether the KMS API is served over HTTPS (the default).
func (k *KMSConfig) TLSOn() bool { return k.TLS == nil || *k.TLS }

// Upkeep is how often the leader runs the KMS upkeep.
func (k *KMSConfig) Upkeep() time.Duration {
	if k.upkeep == 0 {
		return DefaultKMSUpkeepInterval
	}
	return k.upkeep
}

// AccountID is the account of the ARNs.
func (k *KMSConfig) AccountID() string {
	if k.Account == "" {
		return kms.DefaultAccount
	}
	return k.Account
}

// RegionNames are the regions served.
func (k *KMSConfig) RegionNames() []string {
	if k.Regions == nil {
		return slices.Clone(DefaultKMSRegions)
	}
	return slices.Clone(k.Regions)
}

// check checks the section; its errors name the key without the "kms."
// that the caller adds.
func (k *KMSConfig) check() error {
	if _, err := checkListen(k.Listen, k.TLSOn(), "kms", "KMS API"); err != nil {
		return err
	}
	if k.XKSCAFile != "" {
		pem, err := os.ReadFile(k.XKSCAFile)
		if err != nil {
			return fmt.Errorf("xks_ca_file: %v", err)
		}
		if k.xksRoot, err = x509.SystemCertPool(); err != nil || k.xksRoot == nil {
			k.xksRoot = x509.NewCertPool()
		}
		if !k.xksRoot.AppendCertsFromPEM(pem) {
			return fmt.Errorf("xks_ca_file: %s holds no PEM certificate", k.XKSCAFile)
		}
	}
	if k.Account != "" && !accountID.MatchString(k.Account) {
		return fmt.Errorf("account: %q is not a 12-digit account ID", k.Account)
	}
	if k.Regions != nil {
		if len(k.Regions) == 0 || len(k.Regions) > MaxKMSRegions {
			return fmt.Errorf("regions: must name from 1 to %d regions (leave it out for every AWS commercial region)", MaxKMSRegions)
		}
		seen := make(map[string]bool, len(k.Regions))
		for _, r := range k.Regions {
			if !regionName.MatchString(r) {
				return fmt.Errorf("regions: %q is not a region name like \"us-east-1\"", r)
			}
			if seen[r] {
				return fmt.Errorf("regions: %q is named twice", r)
			}
			seen[r] = true
		}
	}
	k.upkeep = DefaultKMSUpkeepInterval
	if k.UpkeepInterval != "" {
		d, err := time.ParseDuration(k.UpkeepInterval)
		if err != nil || d < time.Second || d > 24*time.Hour {
			return fmt.Errorf("upkeep_interval: %q must be a duration from 1s to 24h", k.UpkeepInterval)
		}
		k.upkeep = d
	}
	return nil
}

// loopbackHost says whether a listen address's host is only reachable from
// this machine: "localhost" or a loopback IP. An empty host (every
// interface) is not.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
