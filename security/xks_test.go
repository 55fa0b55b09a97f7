package security

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/openhsm/openhsm/kms/xks"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
)

// The XKS proxy credential row of docs/security-model.md: the access key
// ID and secret of one URI prefix in hsmd's [xks] credentials file, what
// AWS KMS (or our KMS's external key store) signs its calls to the proxy
// with. The tampering and rotation attacks are hsmd TestXKSProxy's
// ("tampering", "SigV4 refusals", "credential rotation without restart").

// xksCred is one credential of the proxy's credentials file.
type xksCred struct{ prefix, akid, secret string }

// xksPost sends one signed XKS request to node 1's proxy and answers the
// status and the error name ("" for a success) and the body.
func xksPost(t *testing.T, c *testcluster.Cluster, cr xksCred, path string, body any) (int, string, []byte) {
	t.Helper()
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	host, err := os.ReadFile(filepath.Join(c.Dir, "node1.xks.addr"))
	require.NoError(t, err, "node1 serves no XKS proxy")
	req, err := http.NewRequest(http.MethodPost, "https://"+strings.TrimSpace(string(host))+cr.prefix+"/kms/xks/v1/"+path, bytes.NewReader(raw))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(raw)
	require.NoError(t, v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: cr.akid, SecretAccessKey: cr.secret},
		req, hex.EncodeToString(sum[:]), xks.Service, "us-east-1", time.Now()))
	pem, err := os.ReadFile(filepath.Join(c.Dir, "pki", "ca.pem"))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pem))
	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var e xks.ErrorResponse
	if resp.StatusCode != http.StatusOK {
		_ = json.Unmarshal(b, &e)
	}
	return resp.StatusCode, e.ErrorName, b
}

func xksMeta(op string) *xks.RequestMetadata {
	return &xks.RequestMetadata{KMSRequestID: "0b8e9d64-5c1c-4d0e-9a3e-1f2a3b4c5d6e", KMSOperation: op,
		AWSPrincipalARN: "arn:aws:iam::123456789012:user/attacker",
		KMSKeyARN:       "arn:aws:kms:us-east-1:123456789012:key/0b8e9d64-5c1c-4d0e-9a3e-1f2a3b4c5d6e"}
}

// xksEncrypt asks the proxy to encrypt pt under keyID.
func xksEncrypt(t *testing.T, c *testcluster.Cluster, cr xksCred, keyID string, pt []byte) (int, string, xks.EncryptResponse) {
	t.Helper()
	st, name, b := xksPost(t, c, cr, "keys/"+keyID+"/encrypt",
		xks.EncryptRequest{RequestMetadata: xksMeta("Encrypt"), Plaintext: &pt, EncryptionAlgorithm: "AES_GCM"})
	var r xks.EncryptResponse
	if st == http.StatusOK {
		require.NoError(t, json.Unmarshal(b, &r))
	}
	return st, name, r
}

// xksDecrypt asks the proxy to decrypt e under keyID.
func xksDecrypt(t *testing.T, c *testcluster.Cluster, cr xksCred, keyID string, e xks.EncryptResponse) (int, string, []byte) {
	t.Helper()
	ct := e.Ciphertext
	st, name, b := xksPost(t, c, cr, "keys/"+keyID+"/decrypt",
		xks.DecryptRequest{RequestMetadata: xksMeta("Decrypt"), Ciphertext: &ct, CiphertextMetadata: e.CiphertextMetadata,
			EncryptionAlgorithm: "AES_GCM", InitializationVector: e.InitializationVector, AuthenticationTag: e.AuthenticationTag})
	var r xks.DecryptResponse
	if st == http.StatusOK {
		require.NoError(t, json.Unmarshal(b, &r))
	}
	return st, name, r.Plaintext
}

// TestAttackXKSProxyCredential: the proxy's credential alone encrypts and
// decrypts with the [xks] crypto user's AES-256 keys through the proxy,
// as AWS KMS does, and nothing more. It cannot reach another crypto user's
// AES-256 key (unshared; a shared one: TestAttackXKSPlantedSharedKey); the
// proxy's user's own
// keys that are not AES-256 (RSA, EC, generic secret, AES-128); a key by
// its handle or by another spelling of its label; the other URI prefix
// (the credential of one prefix is refused on the other); or the HSM API:
// a login as the proxy's user, or as the access key ID, with the secret or
// the access key ID fails like any wrong password, and the proxy goes on
// serving (it uses the keys inside the daemon, without a login).
func TestAttackXKSProxyCredential(t *testing.T) {
	t.Setenv("HSM_XKS", "1")
	c := testcluster.Start(t, 1)
	for _, k := range []string{"XKS_URI_PREFIX", "XKS_ACCESS_KEY_ID", "XKS_SECRET_ACCESS_KEY", "XKS_KEY_ID"} {
		require.NotEmpty(t, c.Env[k], "cluster.sh up --xks prints %s", k)
	}
	cr := xksCred{prefix: c.Env["XKS_URI_PREFIX"], akid: c.Env["XKS_ACCESS_KEY_ID"], secret: c.Env["XKS_SECRET_ACCESS_KEY"]}
	key := c.Env["XKS_KEY_ID"]
	pt := []byte("data the external key protects 41c2")

	// What the credential is for.
	st, name, enc := xksEncrypt(t, c, cr, key, pt)
	require.Equal(t, http.StatusOK, st, "the credential encrypts with the proxy user's key: %s", name)
	st, name, got := xksDecrypt(t, c, cr, key, enc)
	require.Equal(t, http.StatusOK, st, "%s", name)
	require.Equal(t, pt, got)

	// Keys the proxy must not reach.
	xksPW := secret(t, c, "xks.password")
	proxyUser := pinned(t, c, 1, "xks", xksPW)
	cu1 := pinned(t, c, 1, "cu1", c.Env["P11_PIN"])
	genAES := func(who string, label, version string, n uint64) uint64 {
		cl := proxyUser
		if who == "cu1" {
			cl = cu1
		}
		tmpl := object.Template{objectsUlong(ck.CKA_CLASS, ck.CKO_SECRET_KEY), objectsUlong(ck.CKA_KEY_TYPE, ck.CKK_AES),
			objectsUlong(ck.CKA_VALUE_LEN, n), objectsBool(ck.CKA_TOKEN, true), objectsBool(ck.CKA_ENCRYPT, true),
			objectsBool(ck.CKA_DECRYPT, true), {Type: ck.CKA_LABEL, Value: []byte(label)}}
		if version != "" {
			tmpl = append(tmpl, object.Attribute{Type: ck.CKA_ID, Value: []byte(version)})
		}
		h, err := cl.GenerateKey(ctx, mech.Mech{Type: ck.CKM_AES_KEY_GEN}, tmpl)
		require.NoError(t, err, "%s makes %s", who, label)
		return h
	}
	genAES("cu1", "cu1-aes-256", "", 32)
	genAES("xks", "xks-aes-128", "", 16)
	_, err := proxyUser.GenerateKey(ctx, mech.Mech{Type: ck.CKM_GENERIC_SECRET_KEY_GEN}, object.Template{
		objectsUlong(ck.CKA_VALUE_LEN, 32), objectsBool(ck.CKA_TOKEN, true), objectsBool(ck.CKA_SIGN, true),
		{Type: ck.CKA_LABEL, Value: []byte("xks-generic")}})
	require.NoError(t, err)
	_, _, err = proxyUser.GenerateKeyPair(ctx, mech.Mech{Type: ck.CKM_EC_KEY_PAIR_GEN},
		object.Template{{Type: ck.CKA_EC_PARAMS, Value: auditP256}, objectsBool(ck.CKA_TOKEN, true), {Type: ck.CKA_LABEL, Value: []byte("xks-ec")}},
		object.Template{objectsBool(ck.CKA_TOKEN, true), {Type: ck.CKA_LABEL, Value: []byte("xks-ec")}})
	require.NoError(t, err)
	_, _, err = proxyUser.GenerateKeyPair(ctx, mech.Mech{Type: ck.CKM_RSA_PKCS_KEY_PAIR_GEN},
		object.Template{objectsUlong(ck.CKA_MODULUS_BITS, 2048), objectsBool(ck.CKA_TOKEN, true), objectsBool(ck.CKA_ENCRYPT, true), {Type: ck.CKA_LABEL, Value: []byte("xks-rsa")}},
		object.Template{objectsBool(ck.CKA_TOKEN, true), objectsBool(ck.CKA_DECRYPT, true), {Type: ck.CKA_LABEL, Value: []byte("xks-rsa")}})
	require.NoError(t, err)
	handles, err := proxyUser.FindObjects(ctx, object.Template{{Type: ck.CKA_LABEL, Value: []byte(key)}}, 10)
	require.NoError(t, err)
	require.NotEmpty(t, handles)

	for _, id := range []string{"cu1-aes-256", "xks-aes-128", "xks-generic", "xks-ec", "xks-rsa",
		fmt.Sprint(handles[0]), strings.ToUpper(key), key + "-", "x" + key} {
		st, name, _ := xksEncrypt(t, c, cr, id, pt)
		require.Equal(t, http.StatusNotFound, st, "encrypt with %q: %s", id, name)
		require.Equal(t, "KeyNotFoundException", name, "encrypt with %q", id)
		st, name, _ = xksDecrypt(t, c, cr, id, enc)
		require.Contains(t, []int{http.StatusNotFound, http.StatusBadRequest}, st, "decrypt with %q: %s", id, name)
		require.NotEmpty(t, name)
	}
	for _, id := range []string{"../" + key, key + "%2f..", "%2e%2e"} {
		st, name, _ := xksEncrypt(t, c, cr, id, pt)
		require.NotEqual(t, http.StatusOK, st, "encrypt with %q: %s", id, name)
	}

	// No HSM login from the credential.
	for _, tc := range []struct{ user, password string }{
		{"xks", cr.secret}, {"xks", cr.akid}, {cr.akid, cr.secret},
	} {
		rv := kmsLoginRefused(t, c, tc.user, tc.password, "log in as "+tc.user+" with the XKS credential")
		require.Equal(t, uint64(ck.CKR_PIN_INCORRECT), rv, "log in as %s with the XKS credential", tc.user)
	}
	st, name, _ = xksEncrypt(t, c, cr, key, pt)
	require.Equal(t, http.StatusOK, st, "the proxy goes on after the failed logins: %s", name)

	// Two prefixes, a credential each: neither credential works on the
	// other's prefix.
	other := xksCred{prefix: "/keystores/other", akid: "OTHERPREFIXAKIDABCDEF", secret: "b3RoZXItcHJlZml4LXNlY3JldC1mb3ItdGhlLWF0dGFjay10ZXN0"}
	c.Stop(1, false)
	conf := filepath.Join(c.Dir, "node1.toml")
	toml, err := os.ReadFile(conf)
	require.NoError(t, err)
	line := regexp.MustCompile(`(?m)^prefixes = .*$`)
	require.True(t, line.Match(toml))
	toml = line.ReplaceAll(toml, []byte(fmt.Sprintf("prefixes = [%q, %q]", cr.prefix, other.prefix)))
	require.NoError(t, os.WriteFile(conf, toml, 0o600))
	credFile := filepath.Join(c.Dir, "xks-credentials.toml")
	creds, err := os.ReadFile(credFile)
	require.NoError(t, err)
	creds = append(creds, fmt.Sprintf("\n[[credential]]\nprefix = %q\naccess_key_id = %q\nsecret_access_key = %q\n", other.prefix, other.akid, other.secret)...)
	require.NoError(t, os.WriteFile(credFile, creds, 0o600))
	out2, err := c.StartNode(1)
	require.NoError(t, err, "%s", out2)
	require.Eventually(t, func() bool {
		st, _, _ := xksEncrypt(t, c, other, key, pt)
		return st == http.StatusOK
	}, time.Minute, 300*time.Millisecond, "the second prefix's credential works on its prefix")
	st, name, _ = xksEncrypt(t, c, cr, key, pt)
	require.Equal(t, http.StatusOK, st, "the first prefix's credential works on its prefix: %s", name)
	for _, tc := range []xksCred{
		{other.prefix, cr.akid, cr.secret},
		{cr.prefix, other.akid, other.secret},
		{"", cr.akid, cr.secret},
		{"/keystores", cr.akid, cr.secret},
	} {
		st, name, b := xksEncrypt(t, c, tc, key, pt)
		require.Contains(t, []int{http.StatusUnauthorized, http.StatusNotFound}, st, "%s's credential on prefix %q: %s", tc.akid, tc.prefix, name)
		require.NotContains(t, string(b.Ciphertext), string(pt))
	}
	st, name, _ = xksDecrypt(t, c, xksCred{other.prefix, cr.akid, cr.secret}, key, enc)
	require.Equal(t, http.StatusUnauthorized, st, "decrypt with the first prefix's credential on the second prefix: %s", name)
	require.Equal(t, "AuthenticationFailedException", name)
}

// TestAttackXKSPlantedSharedKey: another crypto user of the proxy's
// cluster (cu1) makes an AES-256 key labelled with an external key ID,
// with CKA_ID "99" (a newer version than the proxy user's own key), and
// shares it with the proxy's user. The proxy must go on encrypting under
// its own user's key: if it took the planted key, cu1 could decrypt, with
// its own login, the proxy's layer of every ciphertext made from then on.
func TestAttackXKSPlantedSharedKey(t *testing.T) {
	t.Setenv("HSM_XKS", "1")
	c := testcluster.Start(t, 1)
	cr := xksCred{prefix: c.Env["XKS_URI_PREFIX"], akid: c.Env["XKS_ACCESS_KEY_ID"], secret: c.Env["XKS_SECRET_ACCESS_KEY"]}
	key := c.Env["XKS_KEY_ID"]
	require.NotEmpty(t, key)
	pt := []byte("data the external key protects 41c2")
	cu1 := pinned(t, c, 1, "cu1", c.Env["P11_PIN"])
	planted, err := cu1.GenerateKey(ctx, mech.Mech{Type: ck.CKM_AES_KEY_GEN}, object.Template{
		objectsUlong(ck.CKA_CLASS, ck.CKO_SECRET_KEY), objectsUlong(ck.CKA_KEY_TYPE, ck.CKK_AES),
		objectsUlong(ck.CKA_VALUE_LEN, 32), objectsBool(ck.CKA_TOKEN, true), objectsBool(ck.CKA_ENCRYPT, true),
		objectsBool(ck.CKA_DECRYPT, true), {Type: ck.CKA_LABEL, Value: []byte(key)}, {Type: ck.CKA_ID, Value: []byte("99")}})
	require.NoError(t, err)
	require.NoError(t, cu1.Share(ctx, planted, "xks"), "cu1 shares its key with the proxy's user")

	st, name, enc := xksEncrypt(t, c, cr, key, pt)
	require.Equal(t, http.StatusOK, st, "%s", name)
	// The proxy's AES-GCM additional data for an empty AAD (docs/xks.md):
	// 2-byte length 0 || 1-byte metadata length 0.
	out, err := cu1.Decrypt(ctx, planted, mech.Mech{Type: ck.CKM_AES_GCM, Param: &mech.GCMParams{IV: enc.InitializationVector, AAD: []byte{0, 0, 0}, TagBits: 128}},
		append(append([]byte{}, enc.Ciphertext...), enc.AuthenticationTag...))
	require.False(t, err == nil && bytes.Equal(out, pt),
		"ATTACK SUCCEEDED: cu1 decrypted the proxy's ciphertext with its own planted key (the proxy encrypted under key version %d, cu1's)",
		enc.CiphertextMetadata[4])
	require.Equal(t, []byte{1, 0, 0, 0, 1}, enc.CiphertextMetadata[:5], "the proxy encrypted under a version other than its own user's key")
}
