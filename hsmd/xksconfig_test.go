package hsmd

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openhsm/openhsm/kms/xks"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	xksTestID1     = "AKIA4GBY3I6JCE5M2HPM"
	xksTestID2     = "AKIA4GBY3I6JCE5M2HPN"
	xksTestSecret1 = "Y2xlYXJseS1ub3QtYS1yZWFsLXNlY3JldC1mb3ItdGVzdHM="
	xksTestSecret2 = "b3RoZXItbm90LWEtcmVhbC1zZWNyZXQtZm9yLXRlc3RzIQ=="
)

func xksCred(prefix, id, secret string) string {
	return "[[credential]]\nprefix = \"" + prefix + "\"\naccess_key_id = \"" + id + "\"\nsecret_access_key = \"" + secret + "\"\n"
}

func TestLoadConfigXKS(t *testing.T) {
	dir, base := kmsConfigBase(t)
	good := xksCred("", xksTestID1, xksTestSecret1) + xksCred("", xksTestID2, xksTestSecret2)
	load := func(t *testing.T, section, creds string, mode os.FileMode) (*Config, error) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "creds.toml"), []byte(creds), 0o600))
		require.NoError(t, os.Chmod(filepath.Join(dir, "creds.toml"), mode))
		p := filepath.Join(dir, "node.toml")
		require.NoError(t, os.WriteFile(p, []byte(base+section), 0o600))
		return LoadConfig(p)
	}
	minimal := "[xks]\nlisten = \"127.0.0.1:0\"\nuser = \"xks\"\ncredentials_file = \"creds.toml\"\n"

	t.Run("absent", func(t *testing.T) {
		c, err := load(t, "", good, 0o600)
		require.NoError(t, err)
		assert.Nil(t, c.XKS)
	})
	t.Run("defaults", func(t *testing.T) {
		c, err := load(t, minimal, good, 0o600)
		require.NoError(t, err)
		require.NotNil(t, c.XKS)
		assert.Equal(t, []string{""}, c.XKS.PrefixList())
		assert.Equal(t, DefaultXKSCredentialsPoll, c.XKS.Poll())
		assert.Equal(t, filepath.Join(dir, "creds.toml"), c.XKS.CredentialsFile)
		assert.Empty(t, c.XKS.Cert)
		assert.Empty(t, c.XKS.AuthzRules())
	})
	t.Run("everything", func(t *testing.T) {
		sec := "[xks]\nlisten = \"127.0.0.1:8444\"\nuser = \"xks\"\ncert = \"n.pem\"\nkey = \"n-key.pem\"\nclient_ca = \"ca.pem\"\n" +
			"prefixes = [\"/a\", \"/b/c\"]\ncredentials_file = \"creds.toml\"\ncredentials_poll = \"2s\"\nping_path = \"/lb-ping\"\naddr_file = \"x.addr\"\n" +
			"[[xks.rule]]\nkey = \"db-*\"\nprincipal = \"arn:aws:iam::111122223333:role/*\"\n[[xks.rule]]\noperation = \"Decrypt\"\n"
		c, err := load(t, sec, xksCred("/a", xksTestID1, xksTestSecret1)+xksCred("/b/c", xksTestID2, xksTestSecret2), 0o400)
		require.NoError(t, err)
		x := c.XKS
		assert.Equal(t, []string{"/a", "/b/c"}, x.PrefixList())
		assert.Equal(t, 2*time.Second, x.Poll())
		assert.Equal(t, filepath.Join(dir, "x.addr"), x.AddrFile)
		assert.Equal(t, filepath.Join(dir, "ca.pem"), x.ClientCA)
		assert.Equal(t, []xks.Rule{{Key: "db-*", Principal: "arn:aws:iam::111122223333:role/*"}, {Operation: "Decrypt"}}, x.AuthzRules())
	})

	invalid := []struct {
		name, section, creds string
		mode                 os.FileMode
		want                 string
	}{
		{"no listen", "[xks]\nuser = \"xks\"\ncredentials_file = \"creds.toml\"\n", good, 0o600, "xks.listen: required"},
		{"bad listen", strings.Replace(minimal, "127.0.0.1:0", "nope", 1), good, 0o600, "xks.listen: \"nope\" is not host:port"},
		{"cert without key", minimal + "cert = \"n.pem\"\n", good, 0o600, "xks.cert and key: give both"},
		{"missing client_ca", minimal + "client_ca = \"nope.pem\"\n", good, 0o600, "xks.client_ca:"},
		{"no user", "[xks]\nlisten = \"127.0.0.1:0\"\ncredentials_file = \"creds.toml\"\n", good, 0o600, "xks.user: required"},
		{"bad user", strings.Replace(minimal, "\"xks\"", "\"x:y\"", 1), good, 0o600, "xks.user: \"x:y\""},
		{"no credentials file", "[xks]\nlisten = \"127.0.0.1:0\"\nuser = \"xks\"\n", good, 0o600, "xks.credentials_file: required"},
		{"empty prefixes", minimal + "prefixes = []\n", good, 0o600, "xks.prefixes: must name from 1"},
		{"trailing slash", minimal + "prefixes = [\"/a/\"]\n", good, 0o600, "xks.prefixes: \"/a/\""},
		{"prefix twice", minimal + "prefixes = [\"/a\", \"/a\"]\n", good, 0o600, "named twice"},
		{"bad poll", minimal + "credentials_poll = \"10ms\"\n", good, 0o600, "xks.credentials_poll"},
		{"bad ping path", minimal + "ping_path = \"/kms/xks/v1/health\"\n", good, 0o600, "xks.ping_path"},
		{"ping path not absolute", minimal + "ping_path = \"ping\"\n", good, 0o600, "xks.ping_path"},
		{"unknown key", minimal + "colour = \"red\"\n", good, 0o600, "unknown keys: xks.colour"},
		{"unknown rule key", minimal + "[[xks.rule]]\nuser = \"x\"\n", good, 0o600, "unknown keys: xks.rule.user"},
		{"long rule pattern", minimal + "[[xks.rule]]\nkey = \"" + strings.Repeat("a", 2049) + "\"\n", good, 0o600, "xks.rule:"},
		{"same port as kms", "[kms]\nlisten = \"127.0.0.1:8443\"\n" + strings.Replace(minimal, "[xks]\nlisten = \"127.0.0.1:0\"", "[xks]\nlisten = \"127.0.0.1:8443\"", 1), good, 0o600, "port of its own"},
		{"creds readable by others", minimal, good, 0o644, "group and others must have no access"},
		{"creds not TOML", minimal, "access_key_id = " + xksTestSecret1, 0o600, "not TOML at line 1"},
		{"creds unknown key", minimal, good + "[[credential]]\nsecret = \"x\"\n", 0o600, "unknown key credential.secret"},
		{"creds empty", minimal, "", 0o600, "prefix \"\" has no credential"},
		{"creds other prefix", minimal, good + xksCred("/other", xksTestID1, xksTestSecret1), 0o600, "prefix \"/other\" is not one of"},
		{"creds bad id", minimal, xksCred("", "akia-lower", xksTestSecret1), 0o600, "access key ID \"akia-lower\""},
		{"creds bad secret", minimal, xksCred("", xksTestID1, "short"), 0o600, "secret access key of " + xksTestID1},
		{"creds id twice", minimal, good + xksCred("", xksTestID1, xksTestSecret2), 0o600, "given twice"},
		{"creds missing prefix", minimal + "prefixes = [\"\", \"/b\"]\n", good, 0o600, "prefix \"/b\" has no credential"},
	}
	for _, v := range invalid {
		t.Run("invalid/"+v.name, func(t *testing.T) {
			c, err := load(t, v.section, v.creds, v.mode)
			require.Error(t, err)
			assert.Nil(t, c)
			assert.Contains(t, err.Error(), v.want)
			for _, s := range []string{xksTestSecret1, xksTestSecret2, "Y2xlYXJse"} {
				assert.NotContains(t, err.Error(), s, "an error never holds a secret")
			}
		})
	}
}

// A good new file replaces the credentials (a rotation's steps); a bad one
// keeps them, and the log says why without a secret.
func TestXKSCredentialsReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "creds.toml")
	write := func(s string) { require.NoError(t, os.WriteFile(path, []byte(s), 0o600)) }
	var logs bytes.Buffer
	a := &xksAPI{cfg: &XKSConfig{CredentialsFile: path}, log: slog.New(slog.NewJSONHandler(&logs, nil)), creds: &xks.Credentials{}}

	steps := []struct {
		name string
		file string
		ok   bool
		want []string
	}{
		{"the first credential", xksCred("", xksTestID1, xksTestSecret1), true, []string{xksTestID1}},
		{"the new one added", xksCred("", xksTestID1, xksTestSecret1) + xksCred("", xksTestID2, xksTestSecret2), true, []string{xksTestID1, xksTestID2}},
		{"a bad file keeps both", xksCred("", xksTestID1, "short"), false, []string{xksTestID1, xksTestID2}},
		{"an empty file keeps both", "", false, []string{xksTestID1, xksTestID2}},
		{"the old one removed", xksCred("", xksTestID2, xksTestSecret2), true, []string{xksTestID2}},
	}
	for _, s := range steps {
		write(s.file)
		err := a.reload("test")
		if s.ok {
			require.NoError(t, err, s.name)
		} else {
			require.Error(t, err, s.name)
		}
		assert.Equal(t, s.want, a.creds.AccessKeyIDs(""), s.name)
	}
	assert.NotContains(t, logs.String(), xksTestSecret1)
	assert.NotContains(t, logs.String(), xksTestSecret2)
}
