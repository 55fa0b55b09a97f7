package client

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadConfig: the client's (and the PKCS#11 library's) configuration
// file is outside bytes: an error or a config with nodes, never a panic.
func FuzzLoadConfig(f *testing.F) {
	f.Add([]byte("nodes = [\"127.0.0.1:4001\"]\nca = \"ca.pem\"\ncert = \"c.pem\"\nkey = \"c-key.pem\"\n"))
	f.Add([]byte("nodes = []\ntimeout = \"-1s\"\n"))
	f.Add([]byte("[pkcs11]\nforce_helper = true\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "client.toml")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := LoadConfig(path)
		if err != nil {
			return
		}
		if len(c.Nodes) == 0 {
			t.Fatalf("accepted a config without nodes: %q", b)
		}
	})
}
