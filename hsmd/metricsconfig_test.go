package hsmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadConfigMetrics(t *testing.T) {
	dir, base, load := configLoader(t)

	t.Run("absent", func(t *testing.T) {
		c, err := load(t, "")
		require.NoError(t, err)
		assert.Nil(t, c.Metrics, "no [metrics] section: no metrics port")
	})

	valid := []struct {
		name     string
		section  string
		tls      bool
		addrFile string
	}{
		{"defaults", "[metrics]\nlisten = \"0.0.0.0:9100\"\n", true, ""},
		{"plain on loopback", "[metrics]\nlisten = \"127.0.0.1:0\"\ntls = false\naddr_file = \"m.addr\"\n", false, filepath.Join(dir, "m.addr")},
		{"plain on localhost", "[metrics]\nlisten = \"localhost:9100\"\ntls = false\n", false, ""},
		{"plain on ::1", "[metrics]\nlisten = \"[::1]:9100\"\ntls = false\naddr_file = \"/abs/m.addr\"\n", false, "/abs/m.addr"},
		{"HTTPS anywhere", "[metrics]\nlisten = \":9100\"\ntls = true\n", true, ""},
		{"beside kms", "[metrics]\nlisten = \"127.0.0.1:9100\"\n[kms]\nlisten = \"127.0.0.1:8443\"\n", true, ""},
		{"both port 0", "[metrics]\nlisten = \"127.0.0.1:0\"\n[kms]\nlisten = \"127.0.0.1:0\"\n", true, ""},
		{"pprof on loopback", "[metrics]\nlisten = \"127.0.0.1:0\"\ntls = false\npprof = true\n", false, ""},
		{"pprof on localhost over HTTPS", "[metrics]\nlisten = \"localhost:9100\"\npprof = true\n", true, ""},
	}
	for _, tc := range valid {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(t, tc.section)
			require.NoError(t, err)
			require.NotNil(t, c.Metrics)
			assert.Equal(t, tc.tls, c.Metrics.TLSOn())
			assert.Equal(t, tc.addrFile, c.Metrics.AddrFile, "relative to the file's directory")
		})
	}

	invalid := []struct {
		name    string
		listen  string // the node's own listen; "" keeps the base's
		section string
		want    string
	}{
		{"no listen", "", "[metrics]\n", "metrics.listen: required"},
		{"plain off loopback", "", "[metrics]\nlisten = \"0.0.0.0:9100\"\ntls = false\n", "metrics.tls: plain HTTP (tls = false) is allowed only on a loopback address"},
		{"unknown key", "", "[metrics]\nlisten = \"127.0.0.1:0\"\npath = \"/m\"\n", "unknown keys: metrics.path"},
		{"pprof off loopback", "", "[metrics]\nlisten = \"0.0.0.0:9100\"\npprof = true\n", "metrics.pprof: the profiles are served only on a loopback address"},
		{"pprof on every interface", "", "[metrics]\nlisten = \":9100\"\npprof = true\n", "metrics.pprof:"},
		{"pprof not a bool", "", "[metrics]\nlisten = \"127.0.0.1:0\"\npprof = \"yes\"\n", "pprof"},
		{"tls not a bool", "", "[metrics]\nlisten = \"127.0.0.1:0\"\ntls = \"no\"\n", "tls"},
		{"the node's port", "127.0.0.1:7000", "[metrics]\nlisten = \"127.0.0.1:7000\"\n", `metrics.listen: "127.0.0.1:7000" is also listen`},
		{"the kms port", "", "[metrics]\nlisten = \"127.0.0.1:8443\"\n[kms]\nlisten = \"127.0.0.1:8443\"\n", `metrics.listen: "127.0.0.1:8443" is also kms.listen`},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			b := base
			if tc.listen != "" {
				b = strings.Replace(base, "listen = \"127.0.0.1:0\"", "listen = \""+tc.listen+"\"", 1)
			}
			p := filepath.Join(dir, "node.toml")
			require.NoError(t, os.WriteFile(p, []byte(b+tc.section), 0o600))
			_, err := LoadConfig(p)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}
