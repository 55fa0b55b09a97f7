package client

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// EnvConfig is the environment variable that names the client
// configuration file; ConfigFromEnv reads it.
const EnvConfig = "HSM_CONFIG"

// DefaultConfigPath is the configuration file used when HSM_CONFIG is unset
// or empty.
const DefaultConfigPath = "/etc/openhsm/client.toml"

// Defaults for the optional settings.
const (
	DefaultServerName = "localhost"
	DefaultLogLevel   = "info"
	DefaultTimeout    = 30 * time.Second
	// DefaultHealthInterval is how often the client checks every node.
	DefaultHealthInterval = 2 * time.Second
)

// The bounds of health_interval.
const (
	MinHealthInterval = 200 * time.Millisecond
	MaxHealthInterval = time.Minute
)

// Config is the client configuration, normally loaded from a TOML file:
//
//	nodes       = ["127.0.0.1:4001", "10.0.0.2:4001"]  # required, host:port each
//	ca          = "ca.pem"           # required: the cluster CA certificate
//	cert        = "client.pem"       # required: this client's certificate
//	key         = "client-key.pem"   # required: its private key
//	server_name = "localhost"        # name checked in the nodes' certificates
//	log_file    = "/var/log/openhsm/client.log"  # empty: standard error
//	log_level   = "info"             # debug, info, warn or error
//	timeout     = "30s"              # per call, and per node when connecting
//	health_interval = "2s"           # how often every node is checked (200ms to 1m)
//	transport   = "auto"             # "auto": the data path where a node offers it; "grpc": gRPC only
//
// Relative file paths in the file are taken relative to the directory of
// the configuration file; LoadConfig makes them absolute.
type Config struct {
	Nodes      []string
	CA         string
	Cert       string
	Key        string
	ServerName string
	LogFile    string
	LogLevel   string
	Timeout    time.Duration
	// HealthInterval is how often the client asks every node for Info to
	// know which ones are up (see the package documentation).
	HealthInterval time.Duration
	// Transport is how Sign, Verify, Encrypt, Decrypt and Digest travel:
	// TransportAuto ("" too) over the data path (docs/dataplane.md) to
	// every node that offers it and gRPC to the others, TransportGRPC over
	// gRPC only (to compare, or to rule the data path out).
	Transport string
	// HostThreads says the calls come from a C host's threads through cgo
	// (the PKCS#11 library sets it; not in the file). Such a caller's
	// goroutine is locked to its thread, so the data path writes its
	// request at once instead of yielding first to gather other callers'
	// (dataplane.Writer): the yield would cost a hand-over between threads.
	HostThreads bool
	// PKCS11 holds the settings only the PKCS#11 library reads.
	PKCS11 PKCS11Config
	// Creds, when set, holds the CA, certificate and key files already
	// read (ReadCredentials): Dial uses these bytes and opens no file. The
	// PKCS#11 library hands them from a privileged process to its
	// unprivileged children this way. It is never written to a file.
	Creds *Credentials
}

// Credentials are the bytes of the CA, certificate and key files that a
// Config names.
type Credentials struct {
	CA, Cert, Key []byte
}

// FileError is a file named by the configuration (or the configuration
// file itself) that cannot be read.
type FileError struct {
	Path string
	Err  error
}

func (e *FileError) Error() string { return fmt.Sprintf("file %q: %v", e.Path, e.Err) }

func (e *FileError) Unwrap() error { return e.Err }

// ReadCredentials reads the CA, certificate and key files into memory. An
// error is a *ConfigError (for the key "ca", "cert" or "key") around a
// *FileError naming the file.
func (c *Config) ReadCredentials() (*Credentials, error) {
	var cr Credentials
	for _, f := range []struct {
		key, path string
		dst       *[]byte
	}{{"ca", c.CA, &cr.CA}, {"cert", c.Cert, &cr.Cert}, {"key", c.Key, &cr.Key}} {
		if f.path == "" {
			return nil, &ConfigError{Key: f.key, Msg: "is required"}
		}
		b, err := os.ReadFile(f.path)
		if err != nil {
			clear(cr.Key)
			return nil, &ConfigError{Key: f.key, Err: &FileError{Path: f.path, Err: unwrapPathError(err)}}
		}
		*f.dst = b
	}
	return &cr, nil
}

// PKCS11Config is the [pkcs11] table.
type PKCS11Config struct {
	// ForceHelper makes every process use the fork helper (for tests).
	ForceHelper bool `toml:"force_helper,omitempty"`
	// Helper is the helper program's path; by default it sits beside the
	// library.
	Helper string `toml:"helper,omitempty"`
	// CPUProfile, when set, is a file the library writes a Go CPU profile
	// of its own runtime to, from C_Initialize to C_Finalize (to measure
	// it: a host program's own profiler does not see inside the
	// library). Not in the fork helper.
	CPUProfile string `toml:"cpu_profile,omitempty"`
}

// fileConfig is the TOML layout. The durations are decoded by hand so that a
// bare integer (which the TOML library would read as nanoseconds) is refused.
type fileConfig struct {
	Nodes      []string `toml:"nodes"`
	CA         string   `toml:"ca"`
	Cert       string   `toml:"cert"`
	Key        string   `toml:"key"`
	ServerName string   `toml:"server_name,omitempty"`
	LogFile    string   `toml:"log_file,omitempty"`
	LogLevel   string   `toml:"log_level,omitempty"`
	Timeout    any      `toml:"timeout,omitempty"`
	// HealthInterval: see Timeout.
	HealthInterval any           `toml:"health_interval,omitempty"`
	Transport      string        `toml:"transport,omitempty"`
	PKCS11         *PKCS11Config `toml:"pkcs11,omitempty"`
}

// The values of Config.Transport.
const (
	TransportAuto = "auto"
	TransportGRPC = "grpc"
)

// ConfigError is a problem with a configuration file or value. Path is the
// configuration file ("" for a Config built in code) and Key the TOML key
// at fault ("" when the problem is not about one key).
type ConfigError struct {
	Path string
	Key  string
	Msg  string
	Err  error
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("client config")
	if e.Path != "" {
		b.WriteString(" " + strconv.Quote(e.Path))
	}
	if e.Key != "" {
		b.WriteString(": key " + strconv.Quote(e.Key))
	}
	if e.Msg != "" {
		b.WriteString(": " + e.Msg)
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

func (e *ConfigError) Unwrap() error { return e.Err }

// LoadConfig reads and validates a TOML configuration file. Unknown keys
// are refused (they are usually typos), defaults are filled in, relative
// paths are resolved against the file's directory, and the CA, certificate
// and key files must exist and be readable. Errors are *ConfigError and
// name the file and the key.
func LoadConfig(path string) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &ConfigError{Path: path, Err: err}
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return nil, &ConfigError{Path: abs, Msg: "cannot read the file", Err: unwrapPathError(err)}
	}
	var fc fileConfig
	md, err := toml.Decode(string(data), &fc)
	if err != nil {
		return nil, &ConfigError{Path: abs, Msg: "bad TOML", Err: err}
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		sort.Strings(keys)
		return nil, &ConfigError{Path: abs, Key: keys[0],
			Msg: fmt.Sprintf("unknown key (unknown: %s; known: nodes, ca, cert, key, server_name, log_file, log_level, timeout, health_interval, transport, pkcs11.force_helper, pkcs11.helper, pkcs11.cpu_profile)", strings.Join(keys, ", "))}
	}
	cfg := &Config{
		Nodes:      fc.Nodes,
		CA:         fc.CA,
		Cert:       fc.Cert,
		Key:        fc.Key,
		ServerName: fc.ServerName,
		LogFile:    fc.LogFile,
		LogLevel:   fc.LogLevel,
		Transport:  fc.Transport,
	}
	if fc.PKCS11 != nil {
		cfg.PKCS11 = *fc.PKCS11
	}
	var err2 error
	if cfg.Timeout, err2 = fileDuration(abs, "timeout", fc.Timeout, "30s"); err2 != nil {
		return nil, err2
	}
	if cfg.HealthInterval, err2 = fileDuration(abs, "health_interval", fc.HealthInterval, "2s"); err2 != nil {
		return nil, err2
	}
	dir := filepath.Dir(abs)
	for _, p := range []*string{&cfg.CA, &cfg.Cert, &cfg.Key, &cfg.LogFile, &cfg.PKCS11.Helper, &cfg.PKCS11.CPUProfile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	cfg.setDefaults()
	if err := cfg.validate(abs); err != nil {
		return nil, err
	}
	return cfg, nil
}

// fileDuration decodes a duration key of the file: absent (0), or a string
// like example; a bare number is refused since its unit would be a guess.
func fileDuration(path, key string, v any, example string) (time.Duration, error) {
	switch t := v.(type) {
	case nil:
		return 0, nil
	case string:
		d, err := time.ParseDuration(t)
		if err != nil {
			return 0, &ConfigError{Path: path, Key: key, Msg: fmt.Sprintf("%q is not a duration like %q", t, example)}
		}
		if d <= 0 {
			return 0, &ConfigError{Path: path, Key: key, Msg: "must be positive"}
		}
		return d, nil
	}
	return 0, &ConfigError{Path: path, Key: key, Msg: fmt.Sprintf("must be a string like %q, not %T", example, v)}
}

// ConfigFromEnv loads the configuration file named by the environment
// variable HSM_CONFIG, or /etc/openhsm/client.toml (DefaultConfigPath) when
// HSM_CONFIG is unset or empty.
func ConfigFromEnv() (*Config, error) {
	return LoadConfig(ConfigPathFromEnv())
}

// ConfigPathFromEnv returns $HSM_CONFIG, or DefaultConfigPath when it is
// unset or empty.
func ConfigPathFromEnv() string {
	if p := os.Getenv(EnvConfig); p != "" {
		return p
	}
	return DefaultConfigPath
}

func (c *Config) setDefaults() {
	if c.ServerName == "" {
		c.ServerName = DefaultServerName
	}
	if c.LogLevel == "" {
		c.LogLevel = DefaultLogLevel
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.HealthInterval == 0 {
		c.HealthInterval = DefaultHealthInterval
	}
}

// Validate checks a configuration as LoadConfig does (empty optional
// settings count as their defaults). Paths are used as they are.
func (c *Config) Validate() error {
	cp := *c
	cp.setDefaults()
	return cp.validate("")
}

func (c *Config) validate(path string) error {
	if err := checkTransport(c.Transport); err != nil {
		return &ConfigError{Path: path, Key: "transport", Msg: err.Error()}
	}
	if len(c.Nodes) == 0 {
		return &ConfigError{Path: path, Key: "nodes", Msg: "at least one node address (host:port) is required"}
	}
	seen := map[string]bool{}
	for i, n := range c.Nodes {
		if err := CheckNodeAddr(n); err != nil {
			return &ConfigError{Path: path, Key: fmt.Sprintf("nodes[%d]", i), Err: err}
		}
		if seen[n] {
			return &ConfigError{Path: path, Key: fmt.Sprintf("nodes[%d]", i), Msg: fmt.Sprintf("%q is listed twice", n)}
		}
		seen[n] = true
	}
	for _, f := range []struct{ key, path string }{{"ca", c.CA}, {"cert", c.Cert}, {"key", c.Key}} {
		if f.path == "" {
			return &ConfigError{Path: path, Key: f.key, Msg: "is required"}
		}
		if err := checkReadable(f.path); err != nil {
			return &ConfigError{Path: path, Key: f.key, Err: err}
		}
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return &ConfigError{Path: path, Key: "log_level", Err: err}
	}
	if c.Timeout <= 0 {
		return &ConfigError{Path: path, Key: "timeout", Msg: "must be positive"}
	}
	if err := c.checkHealthInterval(path); err != nil {
		return err
	}
	if c.LogFile != "" {
		if fi, err := os.Stat(c.LogFile); err == nil && fi.IsDir() {
			return &ConfigError{Path: path, Key: "log_file", Msg: fmt.Sprintf("%q is a directory", c.LogFile)}
		}
	}
	return nil
}

// checkHealthInterval checks HealthInterval (after setDefaults).
func (c *Config) checkHealthInterval(path string) error {
	if c.HealthInterval < MinHealthInterval || c.HealthInterval > MaxHealthInterval {
		return &ConfigError{Path: path, Key: "health_interval",
			Msg: fmt.Sprintf("%v is out of range: it must be from %v to %v", c.HealthInterval, MinHealthInterval, MaxHealthInterval)}
	}
	return nil
}

// CheckNodeAddr checks that addr is host:port with a non-empty host and a
// port from 1 to 65535.
func CheckNodeAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("bad node address %q (want host:port): %v", addr, strings.TrimPrefix(err.Error(), "address "+addr+": "))
	}
	if host == "" || strings.ContainsAny(host, " \t/") {
		return fmt.Errorf("bad node address %q: bad or missing host", addr)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return fmt.Errorf("bad node address %q: port must be a number from 1 to 65535", addr)
	}
	return nil
}

// checkReadable returns nil or a *FileError.
func checkReadable(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return &FileError{Path: p, Err: unwrapPathError(err)}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return &FileError{Path: p, Err: unwrapPathError(err)}
	}
	if fi.IsDir() {
		return &FileError{Path: p, Err: errors.New("is a directory")}
	}
	var b [1]byte
	if _, err := f.Read(b[:]); err != nil && !errors.Is(err, io.EOF) {
		return &FileError{Path: p, Err: unwrapPathError(err)}
	}
	return nil
}

// unwrapPathError drops the *fs.PathError wrapper, whose text repeats the
// path the caller already names.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func parseLevel(s string) (slog.Level, error) {
	switch s {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown level %q (want debug, info, warn or error)", s)
}

// Write writes the configuration to path as TOML, replacing any file there
// (atomically, through a temporary file in the same directory). The file
// gets mode 0644: it holds file names, never keys. Paths are written as they
// are, so relative ones stay relative to the file's directory. Empty
// optional settings are left out, so they take their defaults.
func (c *Config) Write(path string) error {
	data, err := c.Marshal()
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".client.toml.*")
	if err != nil {
		return fmt.Errorf("client config %q: %w", path, err)
	}
	tmpName := tmp.Name()
	fail := func(err error) error {
		tmp.Close()
		os.Remove(tmpName)
		return fmt.Errorf("client config %q: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fail(err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmpName, path); err != nil {
		os.Remove(tmpName)
		return fmt.Errorf("client config %q: %w", path, err)
	}
	return nil
}

// Marshal returns the configuration as the TOML text Write writes.
func (c *Config) Marshal() ([]byte, error) {
	fc := fileConfig{
		Nodes:      c.Nodes,
		CA:         c.CA,
		Cert:       c.Cert,
		Key:        c.Key,
		ServerName: c.ServerName,
		LogFile:    c.LogFile,
		LogLevel:   c.LogLevel,
		Transport:  c.Transport,
	}
	if c.PKCS11 != (PKCS11Config{}) {
		p := c.PKCS11
		fc.PKCS11 = &p
	}
	if fc.Nodes == nil {
		fc.Nodes = []string{}
	}
	if c.Timeout != 0 {
		fc.Timeout = c.Timeout.String()
	}
	if c.HealthInterval != 0 {
		fc.HealthInterval = c.HealthInterval.String()
	}
	var buf bytes.Buffer
	buf.WriteString("# openhsm client configuration. Relative paths are relative to this file's directory.\n")
	if err := toml.NewEncoder(&buf).Encode(fc); err != nil {
		return nil, fmt.Errorf("client config: encode: %w", err)
	}
	return buf.Bytes(), nil
}

// NewLogger opens the configured log: LogFile (created with mode 0600 if
// needed, appended to) or standard error when LogFile is empty, with
// records at LogLevel and above. Close the returned io.Closer when done
// (closing the standard error logger does nothing).
func (c *Config) NewLogger() (*slog.Logger, io.Closer, error) {
	level, err := parseLevel(c.LogLevel)
	if err != nil {
		return nil, nil, &ConfigError{Key: "log_level", Err: err}
	}
	var w io.Writer = os.Stderr
	var closer io.Closer = nopCloser{}
	if c.LogFile != "" {
		f, err := os.OpenFile(c.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, nil, &ConfigError{Key: "log_file", Err: err}
		}
		w, closer = f, f
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), closer, nil
}

// LoggerTo is NewLogger writing to w, a log already open, instead of
// opening LogFile.
func (c *Config) LoggerTo(w io.Writer) (*slog.Logger, error) {
	level, err := parseLevel(c.LogLevel)
	if err != nil {
		return nil, &ConfigError{Key: "log_level", Err: err}
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// checkTransport checks a Config.Transport value.
func checkTransport(t string) error {
	switch t {
	case "", TransportAuto, TransportGRPC:
		return nil
	}
	return fmt.Errorf("%q is not %q or %q", t, TransportAuto, TransportGRPC)
}
