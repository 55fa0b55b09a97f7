package security

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/internal/p11build"
	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/openhsm/openhsm/seal"
	"github.com/openhsm/openhsm/state"
	"github.com/openhsm/openhsm/state/sqlite"
)

// The KMS attacks (kms_test.go) reach the KMS API of real nodes with the
// unchanged aws-sdk-go-v2 KMS client, or with requests signed by its SigV4
// signer where the attack is a request the client would not send.

// kmsNotWired says what a cluster that serves no KMS API lacks.
const kmsNotWired = "these nodes serve no KMS API: scripts/cluster.sh writes a [kms] section into every node's config " +
	"unless HSM_NO_KMS is set, and hsmd serves it; without one, `hsm kms principal create` is refused too"

const kmsRegion = "us-east-1"

// kmsCreds is a principal's access key.
type kmsCreds struct {
	Name, AccessKeyID, Secret string
}

// kmsNodeURL is the KMS API of node k alone (https://127.0.0.1:port). The
// test fails, saying why, when the node serves none.
func kmsNodeURL(t *testing.T, c *testcluster.Cluster, k int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.Dir, fmt.Sprintf("node%d.kms.addr", k)))
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		t.Fatalf("node%d has no KMS address (node%d.kms.addr): %s", k, k, kmsNotWired)
	}
	return "https://" + strings.TrimSpace(string(b))
}

// kmsPrincipal makes a principal through a crypto officer's session, with
// the identity policy of `hsm kms principal create --admin` (every KMS
// action on every key whose policy delegates to the account, as keys made
// without a policy do), and returns its access key. The attacks on key
// policies (kms_access_test.go) make their principals themselves.
func kmsPrincipal(t *testing.T, c *testcluster.Cluster, name string) kmsCreds {
	t.Helper()
	co := pinned(t, c, 1, c.Env["HSM_USER"], c.Env["HSM_PASSWORD"])
	cr, err := co.CreateKMSPrincipalWithPolicy(ctx, name, kmsAccessAdmin)
	if hsmerr.IsRV(err, ck.CKR_FUNCTION_NOT_SUPPORTED) {
		t.Fatalf("the node refused to make a KMS principal (%v): %s", err, kmsNotWired)
	}
	require.NoError(t, err, "make the KMS principal %s", name)
	return kmsCreds{Name: name, AccessKeyID: cr.AccessKeyID, Secret: cr.SecretAccessKey}
}

// kmsCLIPrincipal runs `hsm kms principal create|rotate-key NAME --json` as
// the crypto officer (create with --admin, as kmsPrincipal) and returns the
// access key it printed.
func kmsCLIPrincipal(t *testing.T, c *testcluster.Cluster, verb, name string) kmsCreds {
	t.Helper()
	args := []string{"kms", "principal", verb, name, "--json"}
	if verb == "create" {
		args = append(args, "--admin")
	}
	out, err := c.HSM(kmsOfficerEnv(c), args...)
	if err != nil && strings.Contains(string(out), "not enabled") {
		t.Fatalf("hsm kms principal %s: %s", verb, kmsNotWired)
	}
	require.NoError(t, err, "hsm kms principal %s %s failed", verb, name)
	var j struct{ Name, AccessKeyId, SecretAccessKey string }
	require.NoError(t, json.Unmarshal(out, &j), "hsm kms principal %s --json printed no JSON", verb)
	require.Equal(t, name, j.Name)
	require.NotEmpty(t, j.AccessKeyId)
	require.NotEmpty(t, j.SecretAccessKey)
	return kmsCreds{Name: name, AccessKeyID: j.AccessKeyId, Secret: j.SecretAccessKey}
}

func kmsOfficerEnv(c *testcluster.Cluster) []string {
	return []string{"HSM_USER=" + c.Env["HSM_USER"], "HSM_PASSWORD=" + c.Env["HSM_PASSWORD"]}
}

// kmsHTTP is an HTTPS client that trusts the cluster's CA, as AWS_CA_BUNDLE
// makes the SDKs do.
func kmsHTTP(t *testing.T, c *testcluster.Cluster) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(c.Dir, "pki", "ca.pem"))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pem))
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

// kmsRecorder keeps every response body the SDK receives.
type kmsRecorder struct {
	next   kms.HTTPClient
	mu     sync.Mutex
	bodies [][]byte
}

func (r *kmsRecorder) Do(req *http.Request) (*http.Response, error) {
	resp, err := r.next.Do(req)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.bodies = append(r.bodies, b)
	r.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

func (r *kmsRecorder) all() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies...)
}

// kmsOpts are the SDK client's settings beyond endpoint and credentials.
type kmsOpts struct {
	region   string       // "" is kmsRegion
	noRetry  bool         // one attempt: the answer of the node asked, now
	recorder *kmsRecorder // keeps the response bodies
	anon     bool         // no credentials: an unsigned request
}

// kmsSDK is the unchanged aws-sdk-go-v2 KMS client for url with cr's
// access key.
func kmsSDK(t *testing.T, c *testcluster.Cluster, url string, cr kmsCreds, o kmsOpts) *kms.Client {
	t.Helper()
	region := o.region
	if region == "" {
		region = kmsRegion
	}
	var hc kms.HTTPClient = kmsHTTP(t, c)
	if o.recorder != nil {
		o.recorder.next = hc
		hc = o.recorder
	}
	var retryer aws.Retryer = retry.NewStandard(func(s *retry.StandardOptions) {
		s.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 200 * time.Millisecond, nil })
	})
	if o.noRetry {
		retryer = aws.NopRetryer{}
	}
	var creds aws.CredentialsProvider = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: cr.AccessKeyID, SecretAccessKey: cr.Secret, Source: "test"}, nil
	})
	if o.anon {
		creds = aws.AnonymousCredentials{}
	}
	return kms.New(kms.Options{Region: region, BaseEndpoint: aws.String(url), Credentials: creds, HTTPClient: hc, Retryer: retryer})
}

// kmsCode is the AWS exception of an SDK error ("" for nil), and its message.
func kmsCode(err error) (code, msg string) {
	if err == nil {
		return "", ""
	}
	var ae interface {
		ErrorCode() string
		ErrorMessage() string
	}
	if errors.As(err, &ae) {
		return ae.ErrorCode(), ae.ErrorMessage()
	}
	return "not an AWS exception: " + err.Error(), ""
}

// kmsWant requires err to be the AWS exception code, and its message to
// hold none of the secrets.
func kmsWant(t *testing.T, err error, code, what string, secrets ...string) {
	t.Helper()
	got, msg := kmsCode(err)
	require.Equal(t, code, got, "%s: %v", what, err)
	for _, s := range secrets {
		require.NotContains(t, msg, s, "%s: the answer holds a secret", what)
	}
}

// kmsWaitReady polls GenerateRandom on cl until the node answers (after a
// start or restart), within a minute.
func kmsWaitReady(t *testing.T, cl *kms.Client) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := cl.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(8)})
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the KMS API did not answer within a minute: %v", err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// kmsSigned sends one KMS request of op with body, signed by the SDK's
// SigV4 signer as of when, and returns the HTTP status and the answer's
// __type.
func kmsSigned(t *testing.T, c *testcluster.Cluster, url, op string, body []byte, cr kmsCreds, when time.Time) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "TrentService."+op)
	sum := sha256.Sum256(body)
	err = v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: cr.AccessKeyID, SecretAccessKey: cr.Secret}, req,
		hex.EncodeToString(sum[:]), "kms", kmsRegion, when)
	require.NoError(t, err)
	resp, err := kmsHTTP(t, c).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var e struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(b, &e)
	return resp.StatusCode, e.Type, e.Message
}

// kmsObject is one of kmsuser's HSM objects, with its clear material.
type kmsObject struct {
	ID       uint64
	Label    string
	Class    uint64
	Material []byte   // the clear secret value or PKCS#8 private key; nil for public keys
	Needles  [][]byte // Material and, for private keys, the private scalars
}

// kmsMaterial reads kmsuser's objects from node k's store file (the node
// stopped) and unseals their material with the cluster's passphrase: what
// only the holder of both could do, done here to know what must never
// appear anywhere else.
func kmsMaterial(t *testing.T, c *testcluster.Cluster, k int) []kmsObject {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(c.Dir, fmt.Sprintf("node%d", k), "hsm.db"), sqlite.Options{})
	require.NoError(t, err)
	defer st.Close()
	raw, err := st.Meta(state.MetaDomainKey)
	require.NoError(t, err)
	rec, err := seal.UnmarshalSealedDomainKey(raw)
	require.NoError(t, err)
	sl, err := rec.Unseal(seal.KEKSource{Passphrase: []byte(secret(t, c, "passphrase"))})
	require.NoError(t, err)
	objs, err := st.Find(state.Query{Owner: state.KMSUser})
	require.NoError(t, err)
	var out []kmsObject
	for _, o := range objs {
		ko := kmsObject{ID: o.ID, Label: string(o.Attrs[ck.CKA_LABEL]), Class: o.Class()}
		if o.Sealed != nil {
			m, err := sl.Open(o.ID, state.KMSUser, o.Sealed)
			require.NoError(t, err, "object %d's material does not open", o.ID)
			ko.Material = m
			ko.Needles = [][]byte{m}
			if ko.Class == ck.CKO_PRIVATE_KEY {
				ko.Needles = append(ko.Needles, kmsScalars(t, m)...)
			}
		}
		out = append(out, ko)
	}
	return out
}

// kmsScalars are the private numbers of a PKCS#8 private key.
func kmsScalars(t *testing.T, der []byte) [][]byte {
	t.Helper()
	k, err := x509.ParsePKCS8PrivateKey(der)
	require.NoError(t, err)
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return [][]byte{k.D.Bytes(), k.Primes[0].Bytes(), k.Primes[1].Bytes()}
	case *ecdsa.PrivateKey:
		b, err := k.Bytes()
		require.NoError(t, err)
		return [][]byte{b}
	}
	t.Fatalf("unexpected private key type %T", k)
	return nil
}

// kmsFind says which of needles (in any of the forms objectsNeedles
// lists) b holds, by index; -1 for none.
func kmsFind(b []byte, needles [][]byte) int {
	for i, n := range needles {
		if len(n) < 8 {
			continue
		}
		for _, form := range objectsNeedles(n) {
			if len(form) > 0 && bytes.Contains(b, form) {
				return i
			}
		}
	}
	return -1
}

// kmsP11Login logs in to the token label through the PKCS#11 library
// (built once per test) with pin, and returns what C_Login answered
// (the CK_RV's name, or "no token"). An attempt the node throttles
// (CKR_FUNCTION_REJECTED) is tried again once the wait is over.
func kmsP11Login(t *testing.T, c *testcluster.Cluster, prog, lib, label, pin string) string {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		cmd := exec.Command(prog, lib, label)
		cmd.Env = append(os.Environ(), "HSM_CONFIG="+c.Env["HSM_CONFIG"], "P11LOGIN_PIN="+pin)
		out, err := cmd.Output()
		require.NoError(t, err, "p11login failed before C_Login")
		got := strings.TrimSpace(string(out))
		if got != "CKR_FUNCTION_REJECTED" || time.Now().After(deadline) {
			return got
		}
		time.Sleep(time.Second)
	}
}

// kmsBuildP11 builds the PKCS#11 library and the p11login program into a
// folder removed when the test ends.
func kmsBuildP11(t *testing.T) (prog, lib string) {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Fatal("no gcc: the PKCS#11 library cannot be built (scripts/deps.sh installs gcc)")
	}
	work, lib, _, err := p11build.Library("openhsm-security-")
	if work != "" {
		t.Cleanup(func() { os.RemoveAll(work) })
	}
	require.NoError(t, err)
	prog = filepath.Join(work, "p11login")
	cmd := exec.Command("go", "build", "-o", prog, "./security/testdata/p11login")
	cmd.Dir = testcluster.Root()
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "build p11login: %s", out)
	return prog, lib
}

// kmsLoginRefused tries to log in to the HSM API of node 1 as user with
// password and returns the refusal's CK_RV; a throttled attempt is tried
// again once the wait is over, so the answer is the password check's.
func kmsLoginRefused(t *testing.T, c *testcluster.Cluster, user, password, what string) uint64 {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		cl := pinned(t, c, 1, "", "")
		err := cl.Login(ctx, user, password)
		cl.Close()
		require.Error(t, err, "%s: the login succeeded", what)
		require.NotContains(t, err.Error(), password, "%s: the refusal holds the password tried", what)
		if !hsmerr.IsRV(err, ck.CKR_FUNCTION_REJECTED) || time.Now().After(deadline) {
			return hsmerr.RV(err)
		}
		time.Sleep(time.Second)
	}
}

// kmsKeyBytes is a key ID (a UUID) as the 16 bytes a ciphertext blob holds.
func kmsKeyBytes(t *testing.T, id string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(id, "-", ""))
	require.NoError(t, err)
	require.Len(t, b, 16)
	return b
}

// kmsClient is the HSM API of node 1 as the crypto officer.
func kmsOfficer(t *testing.T, c *testcluster.Cluster) *client.Client {
	t.Helper()
	return pinned(t, c, 1, c.Env["HSM_USER"], c.Env["HSM_PASSWORD"])
}
