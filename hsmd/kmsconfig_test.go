package hsmd

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openhsm/openhsm/kms"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// kmsConfigBase is a node configuration that LoadConfig accepts, in a
// directory holding the files it names.
func kmsConfigBase(t *testing.T) (dir, base string) {
	dir = t.TempDir()
	for _, f := range []string{"ca.pem", "n.pem", "n-key.pem", "pass"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600))
	}
	base = "node = \"n1\"\nlisten = \"127.0.0.1:0\"\ndata_dir = \"d\"\nca = \"ca.pem\"\ncert = \"n.pem\"\nkey = \"n-key.pem\"\npassphrase_file = \"pass\"\n"
	return dir, base
}

// configLoader writes kmsConfigBase plus a section as node.toml in a
// fresh directory and loads it.
func configLoader(t *testing.T) (dir, base string, load func(t *testing.T, section string) (*Config, error)) {
	dir, base = kmsConfigBase(t)
	return dir, base, func(t *testing.T, section string) (*Config, error) {
		p := filepath.Join(dir, "node.toml")
		require.NoError(t, os.WriteFile(p, []byte(base+section), 0o600))
		return LoadConfig(p)
	}
}

func TestLoadConfigKMS(t *testing.T) {
	dir, _, load := configLoader(t)

	t.Run("absent", func(t *testing.T) {
		c, err := load(t, "")
		require.NoError(t, err)
		assert.Nil(t, c.KMS, "no [kms] section: no KMS API")
	})

	valid := []struct {
		name    string
		section string
		check   func(t *testing.T, dir string, k *KMSConfig)
	}{
		{"defaults", "[kms]\nlisten = \"127.0.0.1:0\"\n", func(t *testing.T, dir string, k *KMSConfig) {
			assert.True(t, k.TLSOn())
			assert.Equal(t, kms.DefaultAccount, k.AccountID())
			assert.Equal(t, DefaultKMSRegions, k.RegionNames())
			assert.Equal(t, DefaultKMSUpkeepInterval, k.Upkeep())
			assert.Empty(t, k.AddrFile)
			assert.Empty(t, k.ClockFile)
		}},
		{"everything", "[kms]\nlisten = \"0.0.0.0:8443\"\ntls = true\naccount = \"000011112222\"\nregions = [\"eu-west-1\", \"us-gov-west-1\"]\n" +
			"addr_file = \"kms.addr\"\nupkeep_interval = \"5s\"\nclock_file = \"/abs/clock\"\n", func(t *testing.T, dir string, k *KMSConfig) {
			assert.Equal(t, "000011112222", k.AccountID())
			assert.Equal(t, []string{"eu-west-1", "us-gov-west-1"}, k.RegionNames())
			assert.Equal(t, 5*time.Second, k.Upkeep())
			assert.Equal(t, "/abs/clock", k.ClockFile)
			assert.Equal(t, filepath.Join(dir, "kms.addr"), k.AddrFile, "addr_file is taken from the config's folder")
		}},
		{"plain HTTP on 127.0.0.1", "[kms]\nlisten = \"127.0.0.1:8080\"\ntls = false\n", func(t *testing.T, dir string, k *KMSConfig) {
			assert.False(t, k.TLSOn())
		}},
		{"HTTPS on every interface", "[kms]\nlisten = \":8443\"\n", nil},
		{"upkeep at its bounds", "[kms]\nlisten = \"127.0.0.1:0\"\nupkeep_interval = \"24h\"\n", nil},
	}
	for _, v := range valid {
		t.Run("valid/"+v.name, func(t *testing.T) {
			c, err := load(t, v.section)
			require.NoError(t, err)
			require.NotNil(t, c.KMS)
			if v.check != nil {
				v.check(t, dir, c.KMS)
			}
		})
	}

	invalid := []struct {
		name    string
		section string
		want    string // in the error
	}{
		{"no listen", "[kms]\n", "kms.listen: required"},
		{"listen not host:port", "[kms]\nlisten = \"8443\"\n", "kms.listen: \"8443\" is not host:port"},
		{"plain HTTP on every interface", "[kms]\nlisten = \"0.0.0.0:8080\"\ntls = false\n", "kms.tls: plain HTTP (tls = false) is allowed only on a loopback address"},
		{"tls not a bool", "[kms]\nlisten = \"127.0.0.1:0\"\ntls = \"no\"\n", "tls"},
		{"account short", "[kms]\nlisten = \"127.0.0.1:0\"\naccount = \"12345678901\"\n", "kms.account: \"12345678901\" is not a 12-digit account ID"},
		{"account letters", "[kms]\nlisten = \"127.0.0.1:0\"\naccount = \"12345678901a\"\n", "kms.account"},
		{"account a number", "[kms]\nlisten = \"127.0.0.1:0\"\naccount = 123456789012\n", "account"},
		{"regions empty", "[kms]\nlisten = \"127.0.0.1:0\"\nregions = []\n", "kms.regions: must name from 1 to"},
		{"region malformed", "[kms]\nlisten = \"127.0.0.1:0\"\nregions = [\"us-east-1\", \"US-EAST-1\"]\n", "kms.regions: \"US-EAST-1\" is not a region name"},
		{"region pseudo", "[kms]\nlisten = \"127.0.0.1:0\"\nregions = [\"aws-global\"]\n", "kms.regions: \"aws-global\""},
		{"region twice", "[kms]\nlisten = \"127.0.0.1:0\"\nregions = [\"us-east-1\", \"us-east-1\"]\n", "kms.regions: \"us-east-1\" is named twice"},
		{"upkeep too short", "[kms]\nlisten = \"127.0.0.1:0\"\nupkeep_interval = \"500ms\"\n", "kms.upkeep_interval: \"500ms\" must be a duration from 1s to 24h"},
		{"upkeep too long", "[kms]\nlisten = \"127.0.0.1:0\"\nupkeep_interval = \"25h\"\n", "kms.upkeep_interval"},
		{"upkeep not a duration", "[kms]\nlisten = \"127.0.0.1:0\"\nupkeep_interval = \"soon\"\n", "kms.upkeep_interval"},
		{"unknown key", "[kms]\nlisten = \"127.0.0.1:0\"\nport = 1\n", "unknown keys: kms.port"},
		{"kms not a table", "kms = true\n", "kms"},
	}
	for _, v := range invalid {
		t.Run("invalid/"+v.name, func(t *testing.T) {
			c, err := load(t, v.section)
			require.Error(t, err)
			assert.Nil(t, c)
			assert.Contains(t, err.Error(), v.want)
		})
	}
}

// TestDefaultKMSRegions: the default regions are exactly the regions of
// the "aws" partition in the partitions file of the AWS SDK this module
// builds with (its pseudo-region aws-global aside), in order.
func TestDefaultKMSRegions(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/aws/aws-sdk-go-v2").Output()
	require.NoError(t, err, "go list the SDK module")
	b, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "internal", "endpoints", "awsrulesfn", "partitions.json"))
	require.NoError(t, err)
	var f struct {
		Partitions []struct {
			ID      string                     `json:"id"`
			Regions map[string]json.RawMessage `json:"regions"`
		} `json:"partitions"`
	}
	require.NoError(t, json.Unmarshal(b, &f))
	var want []string
	for _, p := range f.Partitions {
		if p.ID != "aws" {
			continue
		}
		for r := range p.Regions {
			if r != "aws-global" {
				want = append(want, r)
			}
		}
	}
	slices.Sort(want)
	require.NotEmpty(t, want)
	assert.Equal(t, want, DefaultKMSRegions)
	for _, r := range DefaultKMSRegions {
		assert.Regexp(t, regionName, r, "the config's region check accepts every default")
	}
}
