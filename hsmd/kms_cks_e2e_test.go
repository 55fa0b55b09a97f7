package hsmd_test

// Custom key stores of type AWS_CLOUDHSM across two real clusters
// (docs/kms.md, "Custom key stores"): B is the store, run without the KMS;
// A runs the KMS. The operator's procedure is the one the docs give: on B
// a crypto officer makes kmsuser and the operator issues a client
// certificate with B's CA (`hsm cluster issue-client`); on A a crypto
// officer runs `hsm kms cluster add`; then a principal manages the store
// through the unchanged AWS CLI against A's KMS port.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/openhsm/openhsm/object"
)

// cksPair is the two clusters of a custom key store and what the test
// made on them.
type cksPair struct {
	a, b *testcluster.Cluster
	// kmsuserPW is the password B's officer gave kmsuser: the store's
	// KeyStorePassword. The connector rotates it on B.
	kmsuserPW string
	// certFile and keyFile are the client certificate B's CA issued for
	// A's KMS.
	certFile, keyFile string
	// secrets must appear in no output.
	secrets []string
	// clock is A's KMS clock file (seconds added to key life cycles).
	clock string
}

// startCKSPair starts B (2 nodes, no KMS) and A (1 node, with the KMS),
// makes kmsuser on B through the hsm CLI and issues A's KMS a client
// certificate with B's CA.
func startCKSPair(t *testing.T) *cksPair {
	t.Helper()
	b := testcluster.StartOpts(t, 2, testcluster.Options{NoKMS: true})
	clock := filepath.Join(t.TempDir(), "kms-clock")
	t.Setenv("HSM_KMS_CONFIG", "clock_file = \""+clock+"\"\nupkeep_interval = \"1s\"")
	a := testcluster.Start(t, 1)
	require.NotEmpty(t, b.Env["HSM_CLUSTER_ID"])
	require.NotEmpty(t, b.Env["HSM_CA_CERT"])
	require.NotEqual(t, a.Env["HSM_CLUSTER_ID"], b.Env["HSM_CLUSTER_ID"])
	_, err := os.Stat(filepath.Join(b.Dir, "node1.kms.addr"))
	require.True(t, os.IsNotExist(err), "B must run without the KMS")

	p := &cksPair{a: a, b: b, kmsuserPW: "kmsuser-" + randomWord(t), clock: clock}
	p.secrets = []string{p.kmsuserPW, a.Env["HSM_PASSWORD"], b.Env["HSM_PASSWORD"], a.Env["AWS_SECRET_ACCESS_KEY"]}

	// On B: the crypto officer makes kmsuser, a crypto user.
	pwFile := filepath.Join(t.TempDir(), "kmsuser.pw")
	require.NoError(t, os.WriteFile(pwFile, []byte(p.kmsuserPW+"\n"), 0o600))
	r := hsmCLI(t, b, b.Env["HSM_USER"], b.Env["HSM_PASSWORD"], "user", "create", "kmsuser", "--role", "CU", "--new-password-file", pwFile)
	require.Equal(t, 0, r.code, r.stderr)

	// On B: the operator issues a client certificate for A's KMS (no
	// login, the CA's directory).
	r = hsmCLI(t, b, "", "", "--json", "cluster", "issue-client", "--dir", filepath.Join(b.Dir, "pki"), "kms-a")
	require.Equal(t, 0, r.code, r.stderr)
	var issued struct{ Name, Cert, Key, Cluster_ID string }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &issued), r.stdout)
	assert.Equal(t, b.Env["HSM_CLUSTER_ID"], issued.Cluster_ID)
	p.certFile, p.keyFile = issued.Cert, issued.Key
	key, err := os.ReadFile(p.keyFile)
	require.NoError(t, err)
	p.secrets = append(p.secrets, strings.TrimSpace(string(key)))
	r = hsmCLI(t, b, "", "", "cluster", "issue-client", "--dir", filepath.Join(b.Dir, "pki"), "kms-a")
	assert.Equal(t, 1, r.code, "issuing over existing files")
	assert.Contains(t, r.stderr, "refusing to overwrite")
	return p
}

func randomWord(t *testing.T) string {
	t.Helper()
	b := make([]byte, 12)
	f, err := os.Open("/dev/urandom")
	require.NoError(t, err)
	defer f.Close()
	_, err = f.Read(b)
	require.NoError(t, err)
	const abc = "abcdefghijkmnpqrstuvwxyz23456789"
	for i := range b {
		b[i] = abc[int(b[i])%len(abc)]
	}
	return string(b)
}

// bNodes is B's node addresses, as `hsm kms cluster add` takes them.
func (p *cksPair) bNodes() []string { return []string{p.b.Addr(1), p.b.Addr(2)} }

// kmsPrincipalEnv is the environment of A's KMS principal for the AWS
// CLI: the principal cluster.sh made and printed. If principals need an
// identity policy to manage custom key stores, give it here: every AWS
// CLI call of these tests goes through this function.
func kmsPrincipalEnv(t *testing.T, a *testcluster.Cluster) []string {
	t.Helper()
	env := []string{}
	for _, k := range []string{"AWS_ENDPOINT_URL_KMS", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_CA_BUNDLE"} {
		require.NotEmpty(t, a.Env[k], "cluster.sh printed no %s", k)
		env = append(env, k+"="+a.Env[k])
	}
	dir := t.TempDir()
	// Nothing of the user's AWS setup: no profile, no other endpoint.
	return append(env, "AWS_CONFIG_FILE="+filepath.Join(dir, "no-config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "no-credentials"),
		"AWS_PAGER=")
}

// withoutAWS is the process environment without its AWS_* settings (a
// profile, a session token or another endpoint of the user's would change
// what the CLI does).
func withoutAWS() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			out = append(out, kv)
		}
	}
	return out
}

// awsKMS runs `aws kms ARGS... --output text` as A's principal and
// answers its standard output, trimmed, and standard error; err is the
// exit's. No secret may be in either.
func (p *cksPair) awsKMS(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command("aws", append(append([]string{"kms"}, args...), "--output", "text")...)
	cmd.Env = append(withoutAWS(), kmsPrincipalEnv(t, p.a)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	for _, s := range p.secrets {
		if s != "" {
			require.NotContains(t, out.String()+errb.String(), s, "aws kms %s printed a secret", args[0])
		}
	}
	return strings.TrimSpace(out.String()), errb.String(), err
}

// mustAWS is awsKMS that must succeed.
func (p *cksPair) mustAWS(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, err := p.awsKMS(t, args...)
	require.NoError(t, err, "aws kms %s: %s", args[0], stderr)
	return out
}

// storeState is a store's ConnectionState and ConnectionErrorCode
// ("None" when it has none, as the CLI prints a missing field).
func (p *cksPair) storeState(t *testing.T, id string) (string, string) {
	t.Helper()
	out := p.mustAWS(t, "describe-custom-key-stores", "--custom-key-store-id", id,
		"--query", "CustomKeyStores[0].[ConnectionState,ConnectionErrorCode]")
	f := strings.Fields(out)
	require.Len(t, f, 2, out)
	return f[0], f[1]
}

// waitState polls describe-custom-key-stores until the store is in one of
// the final states, within a bound, and answers the state and error code.
func (p *cksPair) waitState(t *testing.T, id string, final ...string) (string, string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		st, code := p.storeState(t, id)
		for _, f := range final {
			if st == f {
				return st, code
			}
		}
		require.True(t, time.Now().Before(deadline), "store %s is still %s (%s) after 90s, want %v", id, st, code, final)
		time.Sleep(300 * time.Millisecond)
	}
}

// cksKeyMaterialSteps runs with the store CONNECTED: a key in the store
// through the AWS CLI on A, its material on B (kmsuser's only), B down and
// back, and the key's deletion at the end of its window (A's KMS clock
// moved forward), which destroys the key on B and leaves the store
// without keys.
func cksKeyMaterialSteps(t *testing.T, p *cksPair, storeID string) {
	t.Helper()
	keyID := p.mustAWS(t, "create-key", "--origin", "AWS_CLOUDHSM", "--custom-key-store-id", storeID, "--query", "KeyMetadata.KeyId")
	require.Regexp(t, `^[0-9a-f-]{36}$`, keyID)
	md := p.mustAWS(t, "describe-key", "--key-id", keyID, "--query", "KeyMetadata.[Origin,CustomKeyStoreId,CloudHsmClusterId,KeyState]")
	assert.Equal(t, "AWS_CLOUDHSM\t"+storeID+"\t"+p.b.Env["HSM_CLUSTER_ID"]+"\tEnabled", md)

	dir := t.TempDir()
	pt := []byte("kept by the other cluster")
	ptFile, ctFile := filepath.Join(dir, "pt"), filepath.Join(dir, "ct")
	require.NoError(t, os.WriteFile(ptFile, pt, 0o600))
	ct64 := p.mustAWS(t, "encrypt", "--key-id", keyID, "--plaintext", "fileb://"+ptFile, "--encryption-context", "app=cks",
		"--query", "CiphertextBlob")
	ct, err := base64.StdEncoding.DecodeString(ct64)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(ctFile, ct, 0o600))
	decrypt := func() (string, string, error) {
		return p.awsKMS(t, "decrypt", "--ciphertext-blob", "fileb://"+ctFile, "--encryption-context", "app=cks", "--query", "Plaintext")
	}
	out, stderr, err := decrypt()
	require.NoError(t, err, stderr)
	assert.Equal(t, base64.StdEncoding.EncodeToString(pt), out)

	// Only kmsuser has the key on B: B's crypto user does not see it.
	r := hsmCLI(t, p.b, "cu1", p.b.Env["P11_PIN"], "key", "list")
	require.Equal(t, 0, r.code, r.stderr)
	assert.NotContains(t, r.stdout, keyID, "another crypto user of B sees the store's key")

	// B down: the key is unavailable; B back: it works again.
	p.b.Stop(1, false)
	p.b.Stop(2, false)
	_, stderr, err = decrypt()
	require.Error(t, err, "B is down")
	assert.Contains(t, stderr, "KMSInvalidStateException")
	for k := 1; k <= 2; k++ {
		o, err := p.b.StartNode(k)
		require.NoError(t, err, "%s", o)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		out, stderr, err = decrypt()
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	require.NoError(t, err, "B is back: %s", stderr)
	assert.Equal(t, base64.StdEncoding.EncodeToString(pt), out)

	// B's crypto officer deletes the backing key: in openhsm an officer
	// cannot use or destroy a crypto user's key, so it resets kmsuser's
	// password (quorum off, as in CloudHSM) and destroys the key as
	// kmsuser. A's key is then unavailable: KMSInvalidStateException.
	pwFile := filepath.Join(dir, "reset.pw")
	resetPW := "reset-" + randomWord(t)
	p.secrets = append(p.secrets, resetPW)
	require.NoError(t, os.WriteFile(pwFile, []byte(resetPW+"\n"), 0o600))
	r = hsmCLI(t, p.b, p.b.Env["HSM_USER"], p.b.Env["HSM_PASSWORD"], "user", "reset", "kmsuser", "--new-password-file", pwFile)
	require.Equal(t, 0, r.code, r.stderr)
	destroyAsKMSUser(t, p.b, resetPW, keyID)
	_, stderr, err = decrypt()
	require.Error(t, err, "the backing key is gone")
	assert.Contains(t, stderr, "KMSInvalidStateException")

	// A store with a key is not deleted; a key past its window is gone,
	// on A and on B.
	p.mustAWS(t, "schedule-key-deletion", "--key-id", keyID, "--pending-window-in-days", "7")
	require.NoError(t, os.WriteFile(p.clock, []byte("691200"), 0o600)) // 8 days on
	deadline = time.Now().Add(90 * time.Second)
	for {
		_, stderr, err = p.awsKMS(t, "describe-key", "--key-id", keyID)
		if err != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	require.Error(t, err, "the key outlived its deletion window")
	assert.Contains(t, stderr, "NotFoundException")
}

// The whole operator's procedure and a store's life cycle through the
// AWS CLI, and a wrong kmsuser password.
func TestCustomKeyStoreTwoClusters(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two clusters")
	}
	if _, err := exec.LookPath("aws"); err != nil {
		t.Fatal("the AWS CLI is not installed (scripts/deps.sh installs it)")
	}
	p := startCKSPair(t)
	a, b := p.a, p.b
	bID := b.Env["HSM_CLUSTER_ID"]
	co, coPW := a.Env["HSM_USER"], a.Env["HSM_PASSWORD"]
	add := append([]string{"kms", "cluster", "add", bID}, p.bNodes()...)
	add = append(add, "--cert", p.certFile, "--key", p.keyFile)

	// Refusals first: each changes nothing.
	r := hsmCLI(t, a, "cu1", a.Env["P11_PIN"], add...)
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Contains(t, r.stderr, "only a crypto officer")
	aClient := filepath.Join(a.Dir, "pki", "client.pem")
	aClientKey := filepath.Join(a.Dir, "pki", "client-key.pem")
	wrong := append([]string{"kms", "cluster", "add", bID}, p.bNodes()...)
	r = hsmCLI(t, a, co, coPW, append(wrong, "--cert", aClient, "--key", aClientKey)...)
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Contains(t, r.stderr, "is bound to cluster "+a.Env["HSM_CLUSTER_ID"]+", not "+bID)
	r = hsmCLI(t, a, co, coPW, append(wrong, "--cert", p.certFile, "--key", aClientKey)...)
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Contains(t, r.stderr, "are not a certificate and its key")
	r = hsmCLI(t, a, co, coPW, "kms", "cluster", "add", bID, "not-an-address", "--cert", p.certFile, "--key", p.keyFile)
	assert.Equal(t, 2, r.code, r.stderr)
	r = hsmCLI(t, a, co, coPW, "--json", "kms", "cluster", "list")
	require.Equal(t, 0, r.code, r.stderr)
	assert.JSONEq(t, "[]", r.stdout)

	// B has no KMS: its officer cannot add clusters there.
	r = hsmCLI(t, b, b.Env["HSM_USER"], b.Env["HSM_PASSWORD"], "kms", "cluster", "list")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, noKMS)

	// A's officer tells the KMS where B is.
	r = hsmCLI(t, a, co, coPW, add...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "added HSM cluster "+bID)
	r = hsmCLI(t, a, co, coPW, "--json", "kms", "cluster", "list")
	require.Equal(t, 0, r.code, r.stderr)
	var listed []struct {
		ClusterId   string
		Nodes       []string
		Certificate string
		Added       string
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &listed))
	require.Len(t, listed, 1)
	assert.Equal(t, bID, listed[0].ClusterId)
	assert.Equal(t, p.bNodes(), listed[0].Nodes)
	cert, err := os.ReadFile(p.certFile)
	require.NoError(t, err)
	assert.Equal(t, string(cert), listed[0].Certificate)
	assert.NotEmpty(t, listed[0].Added)
	assert.NotContains(t, r.stdout, "PRIVATE KEY")
	r = hsmCLI(t, a, co, coPW, "kms", "cluster", "list")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, bID)
	assert.Contains(t, r.stdout, "kms-a (until ")

	// A principal manages the store through the AWS CLI.
	caFile := b.Env["HSM_CA_CERT"]
	id := p.mustAWS(t, "create-custom-key-store", "--custom-key-store-name", "cks-e2e", "--cloud-hsm-cluster-id", bID,
		"--trust-anchor-certificate", "file://"+caFile, "--key-store-password", p.kmsuserPW, "--query", "CustomKeyStoreId")
	require.Regexp(t, `^cks-[0-9a-f]{17}$`, id)
	out := p.mustAWS(t, "describe-custom-key-stores", "--custom-key-store-id", id,
		"--query", "CustomKeyStores[0].[CustomKeyStoreName,CloudHsmClusterId,CustomKeyStoreType,ConnectionState]")
	assert.Equal(t, "cks-e2e\t"+bID+"\tAWS_CLOUDHSM\tDISCONNECTED", out)
	anchor := p.mustAWS(t, "describe-custom-key-stores", "--custom-key-store-name", "cks-e2e", "--query", "CustomKeyStores[0].TrustAnchorCertificate")
	caPEM, err := os.ReadFile(caFile)
	require.NoError(t, err)
	assert.Equal(t, strings.TrimSpace(string(caPEM)), anchor)

	// The cluster is in use now.
	r = hsmCLI(t, a, co, coPW, "kms", "cluster", "remove", bID)
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Contains(t, r.stderr, "The custom key store "+id+" uses the HSM cluster "+bID+": delete it first")

	p.mustAWS(t, "update-custom-key-store", "--custom-key-store-id", id, "--new-custom-key-store-name", "cks-e2e-renamed")
	out = p.mustAWS(t, "describe-custom-key-stores", "--custom-key-store-name", "cks-e2e-renamed", "--query", "CustomKeyStores[0].CustomKeyStoreId")
	assert.Equal(t, id, out)
	_, stderr, err := p.awsKMS(t, "describe-custom-key-stores", "--custom-key-store-name", "cks-e2e")
	require.Error(t, err)
	assert.Contains(t, stderr, "CustomKeyStoreNotFoundException")

	p.mustAWS(t, "connect-custom-key-store", "--custom-key-store-id", id)
	st, code := p.waitState(t, id, "CONNECTED", "FAILED")
	require.Equal(t, "CONNECTED", st, "ConnectionErrorCode %s", code)

	// Connect rotated kmsuser's password on B: the old one no longer logs in.
	r = hsmCLI(t, b, "kmsuser", p.kmsuserPW, "key", "list")
	assert.Equal(t, 1, r.code, "kmsuser's first password still works after connect")

	cksKeyMaterialSteps(t, p, id)

	_, stderr, err = p.awsKMS(t, "delete-custom-key-store", "--custom-key-store-id", id)
	require.Error(t, err, "a connected store is not deleted")
	assert.Contains(t, stderr, "CustomKeyStoreInvalidStateException")
	p.mustAWS(t, "disconnect-custom-key-store", "--custom-key-store-id", id)
	st, _ = p.waitState(t, id, "DISCONNECTED")
	assert.Equal(t, "DISCONNECTED", st)
	p.mustAWS(t, "delete-custom-key-store", "--custom-key-store-id", id)
	_, stderr, err = p.awsKMS(t, "describe-custom-key-stores", "--custom-key-store-id", id)
	require.Error(t, err)
	assert.Contains(t, stderr, "CustomKeyStoreNotFoundException")

	// A wrong kmsuser password: FAILED with INVALID_CREDENTIALS.
	id2 := p.mustAWS(t, "create-custom-key-store", "--custom-key-store-name", "cks-wrong-pw", "--cloud-hsm-cluster-id", bID,
		"--trust-anchor-certificate", "file://"+caFile, "--key-store-password", "not-"+p.kmsuserPW, "--query", "CustomKeyStoreId")
	p.mustAWS(t, "connect-custom-key-store", "--custom-key-store-id", id2)
	st, code = p.waitState(t, id2, "CONNECTED", "FAILED")
	assert.Equal(t, "FAILED", st)
	assert.Equal(t, "INVALID_CREDENTIALS", code)
	p.mustAWS(t, "disconnect-custom-key-store", "--custom-key-store-id", id2)
	p.waitState(t, id2, "DISCONNECTED")
	p.mustAWS(t, "delete-custom-key-store", "--custom-key-store-id", id2)

	// No store names B now: the officer removes it.
	r = hsmCLI(t, a, co, coPW, "kms", "cluster", "remove", bID)
	require.Equal(t, 0, r.code, r.stderr)
	r = hsmCLI(t, a, co, coPW, "kms", "cluster", "remove", bID)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "The HSM cluster "+bID+" is not known to this KMS")
	for _, f := range []string{a.LogFile(1), b.LogFile(1), b.LogFile(2)} {
		log, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, s := range p.secrets {
			assert.NotContains(t, string(log), s, "%s holds a secret", f)
		}
	}
}

// destroyAsKMSUser logs in to B as kmsuser and destroys its keys labelled
// with the KMS key ID.
func destroyAsKMSUser(t *testing.T, b *testcluster.Cluster, password, keyID string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg, err := client.LoadConfig(b.Env["HSM_CONFIG"])
	require.NoError(t, err)
	cl, err := client.Dial(ctx, cfg)
	require.NoError(t, err)
	defer cl.Close()
	require.NoError(t, cl.Login(ctx, "kmsuser", password))
	ids, err := cl.FindObjects(ctx, object.Template{{Type: ck.CKA_LABEL, Value: []byte(keyID)}}, 4)
	require.NoError(t, err)
	require.Len(t, ids, 1, "kmsuser's backing key on B")
	require.NoError(t, cl.DestroyObject(ctx, ids[0]))
}
