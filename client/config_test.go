package client

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// writeFiles creates dummy ca/cert/key files in dir. LoadConfig only checks
// that they are readable; their contents matter to Dial.
func writeFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func writeConfig(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

const goodConfig = `
nodes = ["127.0.0.1:4001", "hsm2.example.com:4001", "[::1]:4002"]
ca = "ca.pem"
cert = "client.pem"
key = "client-key.pem"
`

func TestLoadConfigGood(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, "ca.pem", "client.pem", "client-key.pem")
	path := filepath.Join(dir, "client.toml")
	writeConfig(t, path, goodConfig)

	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Nodes:      []string{"127.0.0.1:4001", "hsm2.example.com:4001", "[::1]:4002"},
		CA:         filepath.Join(dir, "ca.pem"),
		Cert:       filepath.Join(dir, "client.pem"),
		Key:        filepath.Join(dir, "client-key.pem"),
		ServerName: "localhost",
		LogLevel:   "info",
		Timeout:    30 * time.Second,
		// The default.
		HealthInterval: 2 * time.Second,
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got  %+v\nwant %+v", cfg, want)
	}
}

func TestLoadConfigAllKeys(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, "ca.pem", "c.pem", "k.pem")
	path := filepath.Join(dir, "client.toml")
	writeConfig(t, path, `
nodes = ["10.0.0.1:4001"]
ca = "`+filepath.Join(dir, "ca.pem")+`"
cert = "c.pem"
key = "k.pem"
server_name = "hsm.internal"
log_file = "logs/client.log"
log_level = "debug"
timeout = "1m30s"
health_interval = "750ms"
`)
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ServerName != "hsm.internal" || cfg.LogLevel != "debug" || cfg.Timeout != 90*time.Second || cfg.HealthInterval != 750*time.Millisecond {
		t.Errorf("got %+v", cfg)
	}
	if cfg.CA != filepath.Join(dir, "ca.pem") {
		t.Errorf("absolute CA path changed: %q", cfg.CA)
	}
	if cfg.LogFile != filepath.Join(dir, "logs", "client.log") {
		t.Errorf("log_file %q not resolved against the config directory", cfg.LogFile)
	}
}

func TestLoadConfigRelativePaths(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, filepath.Join(root, "pki"), "ca.pem", "client.pem", "client-key.pem")
	path := filepath.Join(root, "etc", "client.toml")
	writeConfig(t, path, `
nodes = ["127.0.0.1:4001"]
ca = "../pki/ca.pem"
cert = "../pki/client.pem"
key = "../pki/client-key.pem"
`)
	// Load through a relative path from another working directory: the
	// files are found relative to the config file, not the cwd.
	t.Chdir(filepath.Join(root, "pki"))
	cfg, err := LoadConfig("../etc/client.toml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Key != filepath.Join(root, "pki", "client-key.pem") {
		t.Errorf("key = %q", cfg.Key)
	}
	if !filepath.IsAbs(cfg.CA) || !filepath.IsAbs(cfg.Cert) {
		t.Errorf("paths not made absolute: %+v", cfg)
	}
}

func loadErr(t *testing.T, text string, wants ...string) {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, "ca.pem", "client.pem", "client-key.pem")
	path := filepath.Join(dir, "client.toml")
	writeConfig(t, path, text)
	_, err := LoadConfig(path)
	if err == nil {
		t.Fatalf("LoadConfig(%s) succeeded", text)
	}
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Errorf("error %T is not a *ConfigError", err)
	}
	msg := err.Error()
	for _, w := range append(wants, path) {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not mention %q", msg, w)
		}
	}
}

func TestLoadConfigUnknownKey(t *testing.T) {
	loadErr(t, goodConfig+"\nnode_name = \"x\"\n", `"node_name"`, "unknown key")
	loadErr(t, goodConfig+"\n[tls]\nca = \"x\"\n", "tls.ca", "unknown key")
	// The message lists the known keys.
	loadErr(t, goodConfig+"\nhealth = \"2s\"\n", `"health"`, "known: ", "timeout, health_interval,")
}

func TestLoadConfigMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.toml")
	_, err := LoadConfig(path)
	if err == nil || !strings.Contains(err.Error(), path) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v", err)
	}
}

func TestLoadConfigMissingCert(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, "ca.pem", "client-key.pem")
	path := filepath.Join(dir, "client.toml")
	writeConfig(t, path, goodConfig)
	_, err := LoadConfig(path)
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{path, `key "cert"`, filepath.Join(dir, "client.pem"), "no such file"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

func TestLoadConfigUnreadableKey(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads any file")
	}
	dir := t.TempDir()
	writeFiles(t, dir, "ca.pem", "client.pem", "client-key.pem")
	os.Chmod(filepath.Join(dir, "client-key.pem"), 0)
	path := filepath.Join(dir, "client.toml")
	writeConfig(t, path, goodConfig)
	_, err := LoadConfig(path)
	if err == nil || !strings.Contains(err.Error(), `key "key"`) || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("err = %v", err)
	}
}

func TestLoadConfigBadValues(t *testing.T) {
	files := "\nca = \"ca.pem\"\ncert = \"client.pem\"\nkey = \"client-key.pem\"\n"
	for _, tc := range []struct {
		text  string
		wants []string
	}{
		{"nodes = []" + files, []string{`key "nodes"`, "at least one"}},
		{files, []string{`key "nodes"`}},
		{`nodes = ["localhost"]` + files, []string{`key "nodes[0]"`, `"localhost"`, "host:port"}},
		{`nodes = ["127.0.0.1:4001", "h:0"]` + files, []string{`key "nodes[1]"`, "port"}},
		{`nodes = ["h:http"]` + files, []string{`key "nodes[0]"`, "port"}},
		{`nodes = [":4001"]` + files, []string{`key "nodes[0]"`, "host"}},
		{`nodes = ["h:1", "h:1"]` + files, []string{`key "nodes[1]"`, "twice"}},
		{`nodes = "h:1"` + files, []string{"nodes"}},
		{goodConfig + `timeout = 30`, []string{`key "timeout"`, `"30s"`}},
		{goodConfig + `timeout = "soon"`, []string{`key "timeout"`, `"soon"`}},
		{goodConfig + `timeout = "-1s"`, []string{`key "timeout"`, "positive"}},
		{goodConfig + `health_interval = 2`, []string{`key "health_interval"`, `"2s"`}},
		{goodConfig + `health_interval = "often"`, []string{`key "health_interval"`, `"often"`}},
		{goodConfig + `health_interval = "0s"`, []string{`key "health_interval"`, "positive"}},
		{goodConfig + `health_interval = "100ms"`, []string{`key "health_interval"`, "100ms", "200ms to 1m0s"}},
		{goodConfig + `health_interval = "2m"`, []string{`key "health_interval"`, "2m0s", "out of range"}},
		{goodConfig + `log_level = "verbose"`, []string{`key "log_level"`, "verbose"}},
		{`nodes = ["h:1"]` + "\ncert = \"client.pem\"\nkey = \"client-key.pem\"\n", []string{`key "ca"`, "required"}},
		{goodConfig + `nodes = ["h:2"]`, []string{"bad TOML"}},
	} {
		t.Run(tc.text, func(t *testing.T) { loadErr(t, tc.text, tc.wants...) })
	}
}

func TestConfigWriteRoundTrip(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, "ca.pem", "client.pem", "client-key.pem")
	in := &Config{
		Nodes:    []string{"127.0.0.1:4001", "127.0.0.1:4002"},
		CA:       "ca.pem",
		Cert:     "client.pem",
		Key:      filepath.Join(dir, "client-key.pem"),
		LogLevel: "warn",
		Timeout:  5 * time.Second,
		// health_interval is written, and read back.
		HealthInterval: 1500 * time.Millisecond,
	}
	path := filepath.Join(dir, "client.toml")
	if err := in.Write(path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %o", fi.Mode().Perm())
	}
	out, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Nodes:          in.Nodes,
		CA:             filepath.Join(dir, "ca.pem"),
		Cert:           filepath.Join(dir, "client.pem"),
		Key:            in.Key,
		ServerName:     "localhost",
		LogLevel:       "warn",
		Timeout:        5 * time.Second,
		HealthInterval: 1500 * time.Millisecond,
	}
	if !reflect.DeepEqual(out, want) {
		t.Errorf("got  %+v\nwant %+v", out, want)
	}
	// Write replaces.
	in.Nodes = []string{"10.1.1.1:4001"}
	if err := in.Write(path); err != nil {
		t.Fatal(err)
	}
	if out, err := LoadConfig(path); err != nil || out.Nodes[0] != "10.1.1.1:4001" {
		t.Errorf("after rewrite: %+v, %v", out, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 4 {
		t.Errorf("temporary files left behind: %v", ents)
	}
}

func TestConfigFromEnv(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, "ca.pem", "client.pem", "client-key.pem")
	path := filepath.Join(dir, "c.toml")
	writeConfig(t, path, goodConfig)
	t.Setenv(EnvConfig, path)
	if cfg, err := ConfigFromEnv(); err != nil || len(cfg.Nodes) != 3 {
		t.Errorf("ConfigFromEnv: %+v, %v", cfg, err)
	}
	t.Setenv(EnvConfig, "")
	if p := ConfigPathFromEnv(); p != DefaultConfigPath {
		t.Errorf("default path %q", p)
	}
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, "ca.pem", "client.pem", "client-key.pem")
	cfg := &Config{Nodes: []string{"127.0.0.1:1"}, CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "client.pem"), Key: filepath.Join(dir, "client-key.pem")}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
	cfg.HealthInterval = 30 * time.Millisecond
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), `key "health_interval"`) {
		t.Errorf("health_interval 30ms: %v", err)
	}
	cfg.HealthInterval = 0 // the default
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
	cfg.Nodes = nil
	if err := cfg.Validate(); err == nil {
		t.Error("no nodes accepted")
	}
}

func TestNewLogger(t *testing.T) {
	path := filepath.Join(t.TempDir(), "client.log")
	cfg := &Config{LogFile: path, LogLevel: "warn"}
	l, c, err := cfg.NewLogger()
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hidden")
	l.Warn("shown")
	c.Close()
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), "hidden") || !strings.Contains(string(b), "shown") {
		t.Errorf("log: %q", b)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("log mode %o", fi.Mode().Perm())
	}
}

// TestReadCredentials: the three files' bytes, and a file that cannot be
// read is a *FileError naming it, under its key.
func TestReadCredentials(t *testing.T) {
	dir := t.TempDir()
	for n, body := range map[string]string{"ca.pem": "ca", "client.pem": "cert", "client-key.pem": "key"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "client.toml")
	writeConfig(t, path, goodConfig)
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	cr, err := cfg.ReadCredentials()
	if err != nil {
		t.Fatal(err)
	}
	if want := (&Credentials{CA: []byte("ca"), Cert: []byte("cert"), Key: []byte("key")}); !reflect.DeepEqual(cr, want) {
		t.Errorf("credentials %q, want %q", cr, want)
	}
	os.Remove(cfg.Cert)
	_, err = cfg.ReadCredentials()
	var fe *FileError
	var ce *ConfigError
	if !errors.As(err, &fe) || fe.Path != cfg.Cert || !errors.Is(err, os.ErrNotExist) || !errors.As(err, &ce) || ce.Key != "cert" {
		t.Errorf("err = %v", err)
	}
	// LoadConfig's own check names the file the same way.
	_, err = LoadConfig(path)
	if !errors.As(err, &fe) || fe.Path != cfg.Cert {
		t.Errorf("LoadConfig: err = %v", err)
	}
}
