package hsmd

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openhsm/openhsm/kms/xks"
)

// FuzzLoadConfig: a node's configuration file is outside bytes; whatever
// it holds, LoadConfig answers an error or a config, never a panic, and a
// config it accepts names its node and its data directory, and, with a
// [kms] section, a KMS listen address, an account of 12 digits, at least
// one region, and plain HTTP only on loopback; with an [xks] section, a
// listen address, a user, and valid prefixes, each with a credential.
func FuzzLoadConfig(f *testing.F) {
	f.Add([]byte("node = \"node1\"\nlisten = \"127.0.0.1:0\"\ndata_dir = \"d\"\nca = \"ca.pem\"\ncert = \"n.pem\"\nkey = \"n-key.pem\"\npassphrase_file = \"p\"\n"))
	f.Add([]byte("node = 1\nsession_ttl = \"-5s\"\n"))
	f.Add([]byte("[[x]]\n"))
	f.Add([]byte("node = \"node1\"\nlisten = \"127.0.0.1:0\"\ndata_dir = \"d\"\nca = \"ca.pem\"\ncert = \"n.pem\"\nkey = \"n-key.pem\"\npassphrase_file = \"p\"\n" +
		"[kms]\nlisten = \"127.0.0.1:0\"\ntls = false\naccount = \"123456789012\"\nregions = [\"us-east-1\"]\naddr_file = \"k\"\nupkeep_interval = \"2s\"\nclock_file = \"c\"\n"))
	f.Add([]byte("[kms]\nlisten = \"0.0.0.0:0\"\ntls = false\n"))
	f.Add([]byte("node = \"node1\"\nlisten = \"127.0.0.1:0\"\ndata_dir = \"d\"\nca = \"ca.pem\"\ncert = \"n.pem\"\nkey = \"n-key.pem\"\npassphrase_file = \"p\"\n" +
		"[xks]\nlisten = \"127.0.0.1:0\"\nuser = \"xks\"\ncredentials_file = \"creds\"\nprefixes = [\"\", \"/a\"]\nping_path = \"/ping\"\n[[xks.rule]]\nkey = \"k*\"\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		// The files the seeds name exist, so the checks after them run.
		for _, name := range []string{"ca.pem", "n.pem", "n-key.pem", "p"} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		creds := "[[credential]]\nprefix = \"\"\naccess_key_id = \"AKIA4GBY3I6JCE5M2HPM\"\nsecret_access_key = \"" + strings.Repeat("s", 43) + "\"\n"
		if err := os.WriteFile(filepath.Join(dir, "creds"), []byte(creds), 0o600); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "node.toml")
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
		if k := c.KMS; k != nil {
			host, _, err := net.SplitHostPort(k.Listen)
			if err != nil || (!k.TLSOn() && !loopbackHost(host)) {
				t.Fatalf("accepted a bad [kms] listen or plain HTTP off loopback: %q", b)
			}
			if !accountID.MatchString(k.AccountID()) || len(k.RegionNames()) == 0 || k.Upkeep() < time.Second {
				t.Fatalf("accepted a bad [kms] section: %q", b)
			}
		}
		if x := c.XKS; x != nil {
			if _, _, err := net.SplitHostPort(x.Listen); err != nil || x.User == "" || len(x.PrefixList()) == 0 || x.Poll() < time.Second {
				t.Fatalf("accepted a bad [xks] section: %q", b)
			}
			for _, p := range x.PrefixList() {
				if !xks.ValidPrefix(p) {
					t.Fatalf("accepted a bad [xks] prefix %q: %q", p, b)
				}
			}
		}
	})
}
