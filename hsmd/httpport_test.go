package hsmd

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The listen address of [kms], [xks] and [metrics]: each section's test
// (TestLoadConfigKMS, TestLoadConfigXKS, TestLoadConfigMetrics) shows that
// it is checked, with its section's name; the forms are here.
func TestCheckListen(t *testing.T) {
	valid := []struct {
		listen string
		tlsOn  bool
		host   string
	}{
		{"127.0.0.1:0", false, "127.0.0.1"},
		{"127.9.9.9:8080", false, "127.9.9.9"},
		{"[::1]:0", false, "::1"},
		{"localhost:65535", false, "localhost"},
		{":8443", true, ""},
		{"0.0.0.0:8443", true, "0.0.0.0"},
		{"kms.example.com:443", true, "kms.example.com"},
	}
	for _, v := range valid {
		host, err := checkListen(v.listen, v.tlsOn, "kms", "KMS API")
		require.NoError(t, err, v.listen)
		assert.Equal(t, v.host, host, v.listen)
	}

	invalid := []struct {
		listen string
		tlsOn  bool
		want   string
	}{
		{"", true, "listen: required (leave out the [kms] section to serve no KMS API)"},
		{"8443", true, `listen: "8443" is not host:port`},
		{"127.0.0.1:65536", true, `listen: "127.0.0.1:65536" has no port number from 0 to 65535`},
		{"127.0.0.1:https", true, "has no port number"},
		{"127.0.0.1:08443", true, "has no port number"},
		{"127.0.0.1:-1", true, "has no port number"},
		{"0.0.0.0:8080", false, "tls: plain HTTP (tls = false) is allowed only on a loopback address"},
		{":8080", false, "is allowed only on a loopback address"},
		{"192.168.1.5:8080", false, "is allowed only on a loopback address"},
		{"kms.example.com:8080", false, "is allowed only on a loopback address"},
	}
	for _, v := range invalid {
		_, err := checkListen(v.listen, v.tlsOn, "kms", "KMS API")
		assert.ErrorContains(t, err, v.want, v.listen)
	}
}

// No two of the node's ports share an address, whichever two they are;
// port 0 is a new port each.
func TestCheckPorts(t *testing.T) {
	cfg := func(node, kms, xks, metrics string) *Config {
		c := &Config{Listen: node}
		if kms != "" {
			c.KMS = &KMSConfig{Listen: kms}
		}
		if xks != "" {
			c.XKS = &XKSConfig{Listen: xks}
		}
		if metrics != "" {
			c.Metrics = &MetricsConfig{Listen: metrics}
		}
		return c
	}
	const a, b, c, d = "127.0.0.1:7000", "127.0.0.1:8443", "127.0.0.1:8444", "127.0.0.1:9100"
	require.NoError(t, cfg(a, b, c, d).checkPorts())
	require.NoError(t, cfg(a, "", "", "").checkPorts())
	require.NoError(t, cfg("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0").checkPorts())

	for _, v := range []struct {
		c    *Config
		want string
	}{
		{cfg(a, a, "", ""), `kms.listen: "127.0.0.1:7000" is also listen; each needs a port of its own`},
		{cfg(a, "", a, ""), `xks.listen: "127.0.0.1:7000" is also listen`},
		{cfg(a, b, b, ""), `xks.listen: "127.0.0.1:8443" is also kms.listen`},
		{cfg(a, b, c, a), `metrics.listen: "127.0.0.1:7000" is also listen`},
		{cfg(a, b, c, b), `metrics.listen: "127.0.0.1:8443" is also kms.listen`},
		{cfg(a, "", c, c), `metrics.listen: "127.0.0.1:8444" is also xks.listen`},
	} {
		assert.ErrorContains(t, v.c.checkPorts(), v.want)
	}
}
