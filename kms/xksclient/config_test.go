package xksclient

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/kms/xks"
)

func TestNewChecksConfig(t *testing.T) {
	good := Config{Endpoint: "https://xks.example.com", Path: "/kms/xks/v1", AccessKeyID: akid1, SecretAccessKey: secret1, Region: region}
	cases := []struct {
		name string
		edit func(*Config)
		bad  string // "" when accepted; else a part of the error
	}{
		{"good", func(*Config) {}, ""},
		{"port", func(c *Config) { c.Endpoint = "https://127.0.0.1:8443" }, ""},
		{"prefix", func(c *Config) { c.Path = "/keystores/4a0d79d6-1d1b_x/kms/xks/v1" }, ""},
		{"30-char key ID, 64-char secret", func(c *Config) {
			c.AccessKeyID = strings.Repeat("A", 30)
			c.SecretAccessKey = strings.Repeat("a/+=", 16)
		}, ""},
		{"timeout", func(c *Config) { c.Timeout = time.Second }, ""},
		{"http", func(c *Config) { c.Endpoint = "http://xks.example.com" }, "https://host"},
		{"no scheme", func(c *Config) { c.Endpoint = "xks.example.com:443" }, "Endpoint"},
		{"endpoint path", func(c *Config) { c.Endpoint = "https://xks.example.com/kms" }, "no path"},
		{"endpoint slash", func(c *Config) { c.Endpoint = "https://xks.example.com/" }, "no path"},
		{"endpoint query", func(c *Config) { c.Endpoint = "https://xks.example.com?a=b" }, "no path"},
		{"user info", func(c *Config) { c.Endpoint = "https://u:p@xks.example.com" }, "https://host"},
		{"bad host", func(c *Config) { c.Endpoint = "https://xks_example.com" }, "host"},
		{"bad port", func(c *Config) { c.Endpoint = "https://xks.example.com:99999" }, "port"},
		{"empty port", func(c *Config) { c.Endpoint = "https://xks.example.com:" }, "port"},
		{"endpoint too long", func(c *Config) { c.Endpoint = "https://" + strings.Repeat("a", 121) }, "128"},
		{"no path", func(c *Config) { c.Path = "" }, "Path"},
		{"v2", func(c *Config) { c.Path = "/kms/xks/v2" }, "Path"},
		{"trailing slash", func(c *Config) { c.Path = "/kms/xks/v1/" }, "Path"},
		{"bad character", func(c *Config) { c.Path = "/a.b/kms/xks/v1" }, "Path"},
		{"double slash", func(c *Config) { c.Path = "/a//kms/xks/v1" }, "Path"},
		{"path too long", func(c *Config) { c.Path = "/" + strings.Repeat("a", 117) + "/kms/xks/v1" }, "128"},
		{"short key ID", func(c *Config) { c.AccessKeyID = strings.Repeat("A", 19) }, "AccessKeyID"},
		{"key ID with 8", func(c *Config) { c.AccessKeyID = "AKIDXKSCLIENTONE2345" + "8" }, "AccessKeyID"},
		{"short secret", func(c *Config) { c.SecretAccessKey = strings.Repeat("a", 42) }, "SecretAccessKey"},
		{"long secret", func(c *Config) { c.SecretAccessKey = strings.Repeat("a", 65) }, "SecretAccessKey"},
		{"secret with -", func(c *Config) { c.SecretAccessKey = secret1[:43] + "-" }, "SecretAccessKey"},
		{"no region", func(c *Config) { c.Region = "" }, "Region"},
		{"negative timeout", func(c *Config) { c.Timeout = -1 }, "Timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.edit(&c)
			cl, err := New(c)
			if tc.bad == "" {
				require.NoError(t, err)
				cl.Close()
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.bad)
			assert.NotContains(t, err.Error(), c.SecretAccessKey)
		})
	}
}

func TestCheckKeyMetadata(t *testing.T) {
	cases := []struct {
		spec, status string
		usage        []string
		want         error
	}{
		{"AES_256", "ENABLED", []string{"ENCRYPT", "DECRYPT"}, nil},
		{"AES_256", "ENABLED", []string{"DECRYPT", "WRAP", "ENCRYPT"}, nil},
		{"AES_128", "ENABLED", []string{"ENCRYPT", "DECRYPT"}, ErrKeyInvalidConfiguration},
		{"AES_256", "ENABLED", []string{"ENCRYPT"}, ErrKeyInvalidConfiguration},
		{"AES_256", "DISABLED", []string{"ENCRYPT", "DECRYPT"}, ErrKeyNotEnabled},
	}
	for _, tc := range cases {
		err := CheckKeyMetadata(&xks.MetadataResponse{KeySpec: tc.spec, KeyUsage: tc.usage, KeyStatus: tc.status})
		if tc.want == nil {
			assert.NoError(t, err)
		} else {
			assert.ErrorIs(t, err, tc.want)
		}
	}
}
