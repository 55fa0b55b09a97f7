package suite

import (
	"bytes"
	"context"
	"crypto/rand"
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
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/internal/kmstest"
	"github.com/openhsm/openhsm/internal/testcluster"
	okms "github.com/openhsm/openhsm/kms"
)

// The regions the suite uses: the happy paths and state rules run in
// mainRegion; the table of invalid inputs runs in tableRegion, whose keys
// are its own, so that its before-and-after comparison of the whole
// region's state stays small. Both targets serve both.
const (
	mainRegion  = "us-east-1"
	tableRegion = "eu-west-1"
	account     = okms.DefaultAccount
	// rootPolicy is a key policy that delegates every action to the
	// account (the principals' identity policies decide).
	rootPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:root"},"Action":"kms:*","Resource":"*"}]}`
)

// target is one KMS endpoint the suite runs against.
type target struct {
	name       string
	endpoint   string       // https://host:port
	httpClient *http.Client // trusts the endpoint's certificate
	akid       string
	secret     string

	// setOffset moves the key life-cycle clock to total ahead of real
	// time and returns once every node's service sees it.
	setOffset func(t *testing.T, total time.Duration)
	// upkeep runs the service's upkeep (deletions, expiries, scheduled
	// rotations); nil where the nodes run it on their own.
	upkeep func(ctx context.Context) error

	mu      sync.Mutex
	offset  time.Duration
	clients map[string]*kms.Client
}

// client is the unchanged SDK client for a region. Its only settings are
// the endpoint, the region, the credentials and an HTTP client that trusts
// the endpoint's CA: what AWS_ENDPOINT_URL_KMS, AWS_REGION,
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_CA_BUNDLE give a
// program.
func (tg *target) client(region string) *kms.Client {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if c := tg.clients[region]; c != nil {
		return c
	}
	c := kms.New(kms.Options{
		Region:       region,
		BaseEndpoint: aws.String(tg.endpoint),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: tg.akid, SecretAccessKey: tg.secret, Source: "suite"}, nil
		}),
		HTTPClient: tg.httpClient,
	})
	if tg.clients == nil {
		tg.clients = map[string]*kms.Client{}
	}
	tg.clients[region] = c
	return c
}

// kms is the client of the main region.
func (tg *target) kms() *kms.Client { return tg.client(mainRegion) }

// now is the service's life-cycle clock as the suite moved it.
func (tg *target) now() time.Time {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return time.Now().Add(tg.offset)
}

// advance moves the life-cycle clock forward by d.
func (tg *target) advance(t *testing.T, d time.Duration) {
	t.Helper()
	tg.mu.Lock()
	tg.offset += d
	total := tg.offset
	tg.mu.Unlock()
	tg.setOffset(t, total)
}

// eventually waits (up to a minute) until cond holds, running the upkeep
// first where the suite runs it; on a cluster the leader runs it every
// upkeep_interval.
func (tg *target) eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if tg.upkeep != nil {
			require.NoError(t, tg.upkeep(t.Context()))
		}
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a minute, still not: %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// inProcessTarget is internal/kmstest's server.
func inProcessTarget(t *testing.T) *target {
	srv := kmstest.Start(t)
	require.Equal(t, mainRegion, srv.Region)
	tg := &target{name: "in-process", endpoint: srv.URL, httpClient: srv.Client,
		akid: srv.AccessKeyID, secret: srv.SecretAccessKey}
	var moved time.Duration
	tg.setOffset = func(t *testing.T, total time.Duration) {
		srv.Advance(total - moved)
		moved = total
	}
	tg.upkeep = srv.Service.Upkeep
	return tg
}

// clockReread is how long a node may keep an old clock_file offset: it
// reads the file again at most every 200 ms; twice that, and a margin.
const clockReread = 600 * time.Millisecond

// clusterTarget starts a 3-node cluster with scripts/cluster.sh and
// reaches it through the endpoint the script prints (with more than one
// node, haproxy in front of the nodes). The nodes' [kms] sections get
// HSM_KMS_CONFIG's lines: the clock file and a 1 s upkeep interval, so
// that deletions and expiries the clock makes due happen within the test.
func clusterTarget(t *testing.T) *target {
	clock := filepath.Join(t.TempDir(), "kms-clock")
	require.NoError(t, os.WriteFile(clock, []byte("0\n"), 0o600))
	t.Setenv("HSM_KMS_CONFIG", fmt.Sprintf("clock_file = %q\nupkeep_interval = \"1s\"", clock))
	c := testcluster.Start(t, 3)
	for _, k := range []string{"AWS_ENDPOINT_URL_KMS", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"} {
		if c.Env[k] == "" {
			t.Fatalf("scripts/cluster.sh up -n 3 printed no %s, so the Go SDK suite has no KMS endpoint to run against "+
				"(hsmd serves the KMS API only once the [kms] listener is wired into hsmd and cluster.sh); it printed: %v",
				k, envNames(c.Env))
		}
	}
	tg := &target{name: "cluster", endpoint: c.Env["AWS_ENDPOINT_URL_KMS"], akid: c.Env["AWS_ACCESS_KEY_ID"],
		secret: c.Env["AWS_SECRET_ACCESS_KEY"]}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if strings.HasPrefix(tg.endpoint, "https://") {
		ca := c.Env["AWS_CA_BUNDLE"]
		require.NotEmpty(t, ca, "an https endpoint comes with AWS_CA_BUNDLE")
		pem, err := os.ReadFile(ca)
		require.NoError(t, err)
		pool := x509.NewCertPool()
		require.True(t, pool.AppendCertsFromPEM(pem), "AWS_CA_BUNDLE holds a certificate")
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	tg.httpClient = &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	tg.setOffset = func(t *testing.T, total time.Duration) {
		t.Helper()
		tmp := clock + ".tmp"
		require.NoError(t, os.WriteFile(tmp, fmt.Appendf(nil, "%d\n", int64(total/time.Second)), 0o600))
		require.NoError(t, os.Rename(tmp, clock))
		time.Sleep(clockReread)
	}
	return tg
}

func envNames(env map[string]string) []string {
	var out []string
	for k := range env {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// ---- raw requests ----

// rawAnswer is the HTTP answer to a request the suite framed itself.
type rawAnswer struct {
	Status  int
	Type    string // __type
	Message string
	Body    []byte
}

// err is the answer as the SDK's generic API error, so table cases
// compare alike whichever way they were sent; nil for a 200.
func (a rawAnswer) err() error {
	if a.Status == http.StatusOK {
		return nil
	}
	return &rawError{status: a.Status, GenericAPIError: smithy.GenericAPIError{Code: a.Type, Message: a.Message}}
}

type rawError struct {
	status int
	smithy.GenericAPIError
}

func (e *rawError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.status, e.GenericAPIError.Error())
}

// rawRequest is a request of the suite's own framing: the target header,
// the content type and the body as given, signed with the SDK's SigV4
// signer (unless unsigned).
type rawRequest struct {
	Region      string
	Target      string // the X-Amz-Target header; "" sends none
	ContentType string // "" sends none
	Body        []byte
	Unsigned    bool
}

func (tg *target) raw(t *testing.T, r rawRequest) rawAnswer {
	t.Helper()
	if r.Region == "" {
		r.Region = mainRegion
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, tg.endpoint+"/", bytes.NewReader(r.Body))
	require.NoError(t, err)
	if r.Target != "" {
		req.Header.Set("X-Amz-Target", r.Target)
	}
	if r.ContentType != "" {
		req.Header.Set("Content-Type", r.ContentType)
	}
	if !r.Unsigned {
		sum := sha256.Sum256(r.Body)
		creds := aws.Credentials{AccessKeyID: tg.akid, SecretAccessKey: tg.secret}
		require.NoError(t, v4.NewSigner().SignHTTP(t.Context(), creds, req, hex.EncodeToString(sum[:]), "kms", r.Region, time.Now()))
	}
	resp, err := tg.httpClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	a := rawAnswer{Status: resp.StatusCode, Body: body}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		require.NoError(t, json.Unmarshal(body, &e), "an error answer is JSON: %q", body)
		a.Type, a.Message = e.Type, e.Message
	}
	return a
}

// call sends one operation's JSON body, framed as the SDKs frame it.
func (tg *target) call(t *testing.T, region, op string, body []byte) rawAnswer {
	t.Helper()
	return tg.raw(t, rawRequest{Region: region, Target: "TrentService." + op,
		ContentType: "application/x-amz-json-1.1", Body: body})
}

// ---- errors ----

// anyMessage, as an expected message, asserts none.
const anyMessage = "\x00any"

// requireErr asserts that err is the SDK's typed exception E (say,
// *types.NotFoundException) with the message, and returns it.
func requireErr[E smithy.APIError](t *testing.T, err error, message string) E {
	t.Helper()
	var e E
	require.Error(t, err, "want %T", e)
	require.ErrorAs(t, err, &e, "want %T, got %v", e, err)
	if message != anyMessage {
		assert.Equal(t, message, e.ErrorMessage(), "the message of %s", e.ErrorCode())
	}
	return e
}

// requireCode asserts an exception by its name, for the exceptions the
// SDK has no type for (ValidationException, NotAuthorizedException, ...).
func requireCode(t *testing.T, err error, code, message string) smithy.APIError {
	t.Helper()
	require.Error(t, err, "want %s", code)
	var e smithy.APIError
	require.ErrorAs(t, err, &e, "want %s, got %v", code, err)
	require.Equal(t, code, e.ErrorCode(), "the exception (message %q)", e.ErrorMessage())
	if message != anyMessage {
		assert.Equal(t, message, e.ErrorMessage(), "the message of %s", code)
	}
	return e
}

// ---- keys ----

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newAlias() string { return "alias/suite-" + randHex(6) }

func keyARN(region, id string) string {
	return "arn:aws:kms:" + region + ":" + account + ":key/" + id
}

func aliasARN(region, name string) string {
	return "arn:aws:kms:" + region + ":" + account + ":" + name
}

// createKey makes a key and returns its metadata.
func createKey(t *testing.T, c *kms.Client, in *kms.CreateKeyInput) *types.KeyMetadata {
	t.Helper()
	if in == nil {
		in = &kms.CreateKeyInput{}
	}
	out, err := c.CreateKey(t.Context(), in)
	require.NoError(t, err, "CreateKey %s %s", in.KeySpec, in.KeyUsage)
	require.NotNil(t, out.KeyMetadata)
	return out.KeyMetadata
}

// newKey makes a key of a spec and usage and returns its ARN.
func newKey(t *testing.T, c *kms.Client, spec types.KeySpec, usage types.KeyUsageType) string {
	t.Helper()
	return aws.ToString(createKey(t, c, &kms.CreateKeyInput{KeySpec: spec, KeyUsage: usage}).Arn)
}

func newSymmetric(t *testing.T, c *kms.Client) string {
	t.Helper()
	return newKey(t, c, types.KeySpecSymmetricDefault, types.KeyUsageTypeEncryptDecrypt)
}

func describe(t *testing.T, c *kms.Client, keyID string) *types.KeyMetadata {
	t.Helper()
	out, err := c.DescribeKey(t.Context(), &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
	require.NoError(t, err, "DescribeKey %s", keyID)
	return out.KeyMetadata
}

func keyIDOf(arn string) string { return arn[strings.LastIndexByte(arn, '/')+1:] }

// ---- the state of a region ----

// regionState is everything a client can read of a region: its keys with
// their metadata, tags, policies and rotations, and its aliases. A refused
// request must leave it as it was.
type regionState struct {
	Keys      []string
	Metadata  map[string]types.KeyMetadata
	Tags      map[string][]types.Tag
	Policies  map[string]string
	Rotation  map[string]string // GetKeyRotationStatus and ListKeyRotations, or the refusal
	Aliases   []types.AliasListEntry
	PolicyLst map[string][]string
}

// readRegion reads the whole region.
func readRegion(t *testing.T, c *kms.Client) regionState {
	t.Helper()
	return readKeys(t, c, listKeyARNs(t, c))
}

// readKeys reads the given keys of a region, and all its aliases.
func readKeys(t *testing.T, c *kms.Client, keys []string) regionState {
	t.Helper()
	ctx := t.Context()
	s := regionState{Keys: keys, Metadata: map[string]types.KeyMetadata{}, Tags: map[string][]types.Tag{},
		Policies: map[string]string{}, Rotation: map[string]string{}, PolicyLst: map[string][]string{}}
	for _, arn := range s.Keys {
		s.Metadata[arn] = *describe(t, c, arn)
		tags := kms.NewListResourceTagsPaginator(c, &kms.ListResourceTagsInput{KeyId: aws.String(arn)})
		for tags.HasMorePages() {
			page, err := tags.NextPage(ctx)
			require.NoError(t, err)
			s.Tags[arn] = append(s.Tags[arn], page.Tags...)
		}
		pol, err := c.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(arn), PolicyName: aws.String("default")})
		require.NoError(t, err)
		s.Policies[arn] = aws.ToString(pol.Policy)
		names, err := c.ListKeyPolicies(ctx, &kms.ListKeyPoliciesInput{KeyId: aws.String(arn)})
		require.NoError(t, err)
		s.PolicyLst[arn] = names.PolicyNames
		st, err := c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(arn)})
		if err != nil {
			s.Rotation[arn] = "GetKeyRotationStatus: " + errorCode(err)
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "enabled=%v period=%d next=%v;", st.KeyRotationEnabled, aws.ToInt32(st.RotationPeriodInDays), st.NextRotationDate)
		rots := kms.NewListKeyRotationsPaginator(c, &kms.ListKeyRotationsInput{KeyId: aws.String(arn)})
		for rots.HasMorePages() {
			page, err := rots.NextPage(ctx)
			require.NoError(t, err)
			for _, r := range page.Rotations {
				fmt.Fprintf(&b, " %s@%v", r.RotationType, r.RotationDate)
			}
		}
		s.Rotation[arn] = b.String()
	}
	aliases := kms.NewListAliasesPaginator(c, &kms.ListAliasesInput{Limit: aws.Int32(1000)})
	for aliases.HasMorePages() {
		page, err := aliases.NextPage(ctx)
		require.NoError(t, err)
		s.Aliases = append(s.Aliases, page.Aliases...)
	}
	return s
}

func errorCode(err error) string {
	var e smithy.APIError
	if errors.As(err, &e) {
		return e.ErrorCode()
	}
	return err.Error()
}
