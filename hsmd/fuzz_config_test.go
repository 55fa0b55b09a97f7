package hsmd

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadConfig: a node's configuration file is outside bytes; whatever
// it holds, LoadConfig answers an error or a config, never a panic, and a
// config it accepts names its node and its data directory.
func FuzzLoadConfig(f *testing.F) {
	f.Add([]byte("node = \"node1\"\nlisten = \"127.0.0.1:0\"\ndata_dir = \"d\"\nca = \"ca.pem\"\ncert = \"n.pem\"\nkey = \"n-key.pem\"\npassphrase_file = \"p\"\n"))
	f.Add([]byte("node = 1\nsession_ttl = \"-5s\"\n"))
	f.Add([]byte("[[x]]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "node.toml")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := LoadConfig(path)
		if err != nil {
			return
		}
		if c.Node == "" || c.DataDir == "" {
			t.Fatalf("accepted a config without node or data_dir: %q", b)
		}
	})
}
