package xks

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openhsm/openhsm/kms/sigv4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRotation: the spec's rotation procedure on one running proxy: two
// credential sets valid at once, then the old one removed and refused at
// once, then a secret replaced. Nothing restarts.
func TestRotation(t *testing.T) {
	p := newProxy(t)
	const newID, newSecret = "AKIDXKSROTATED234567C", "xksRotatedSecret2222222222222222222222222222/"
	health := func(id, secret string) int {
		return p.do("POST", pHealth, mustJSON(t, HealthRequest{RequestMetadata: healthMD()}), signing{akid: id, secret: secret}).status
	}
	require.Equal(t, 200, health(akid1, secret1))
	require.Equal(t, 401, health(newID, newSecret))

	// 1. Add the new credential: both work.
	require.NoError(t, p.creds.Set(prefix, newID, newSecret))
	assert.Equal(t, []string{newID, akid1}, p.creds.AccessKeyIDs(prefix)) // sorted
	require.Equal(t, 200, health(akid1, secret1))
	require.Equal(t, 200, health(newID, newSecret))
	// (2, 3: KMS moves to the new credential.) 4. Remove the old one.
	require.True(t, p.creds.Remove(prefix, akid1))
	assert.False(t, p.creds.Remove(prefix, akid1))
	require.Equal(t, 401, health(akid1, secret1))
	require.Equal(t, 200, health(newID, newSecret))

	// Replacing a secret refuses the old secret at once (the signing key
	// cache is keyed by the secret too).
	const replaced = "xksReplacedSecret333333333333333333333333333="
	require.NoError(t, p.creds.Set(prefix, newID, replaced))
	require.Equal(t, 401, health(newID, newSecret))
	require.Equal(t, 200, health(newID, replaced))

	// The last credential of a prefix gone, the prefix is no longer served.
	require.True(t, p.creds.Remove(prefix, newID))
	a := p.do("POST", pHealth, mustJSON(t, HealthRequest{RequestMetadata: healthMD()}), signing{akid: newID, secret: replaced})
	assert.Equal(t, InvalidURIPathException, a.errorName())
	assert.Equal(t, []string{""}, p.creds.Prefixes())
}

// TestRotationUnderLoad: credentials change while requests run (-race).
func TestRotationUnderLoad(t *testing.T) {
	p := newProxy(t)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id := fmt.Sprintf("AKIDXKSLOAD%010d", i%50)
			id = strings.NewReplacer("0", "A", "1", "B", "8", "C", "9", "D").Replace(id)
			if err := p.creds.Set(prefix, id, secret2); err != nil {
				panic(err)
			}
			p.creds.Remove(prefix, id)
		}
	})
	for range 40 {
		a := p.do("POST", pHealth, mustJSON(t, HealthRequest{RequestMetadata: healthMD()}), signing{})
		require.Equal(t, 200, a.status)
	}
	close(stop)
	wg.Wait()
}

// TestCredentialForms: Set refuses what AWS KMS could never send, and its
// errors do not hold the secret.
func TestCredentialForms(t *testing.T) {
	cases := []struct {
		name, prefix, akid, secret string
		ok                         bool
	}{
		{"no prefix", "", akid1, secret1, true},
		{"prefix", "/a/b_c-d", akid1, secret1, true},
		{"prefix without a slash", "a", akid1, secret1, false},
		{"prefix with a trailing slash", "/a/", akid1, secret1, false},
		{"prefix with a dot", "/a.b", akid1, secret1, false},
		{"prefix too long", "/" + strings.Repeat("a", 117), akid1, secret1, false},
		{"prefix at the longest", "/" + strings.Repeat("a", 116), akid1, secret1, true},
		{"access key 19 characters", "", strings.Repeat("A", 19), secret1, false},
		{"access key 20 characters", "", strings.Repeat("A", 20), secret1, true},
		{"access key 30 characters", "", strings.Repeat("2", 30), secret1, true},
		{"access key 31 characters", "", strings.Repeat("A", 31), secret1, false},
		{"access key with 8", "", "AKIDXKSTESTONE234568A", secret1, false},
		{"access key lowercase", "", strings.ToLower(akid1), secret1, false},
		{"secret 42 characters", "", akid1, strings.Repeat("s", 42), false},
		{"secret 64 characters", "", akid1, strings.Repeat("s", 64), true},
		{"secret 65 characters", "", akid1, strings.Repeat("s", 65), false},
		{"secret with a space", "", akid1, strings.Repeat("s", 42) + " x", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var cr Credentials
			err := cr.Set(c.prefix, c.akid, c.secret)
			if c.ok {
				require.NoError(t, err)
				assert.Equal(t, []string{c.akid}, cr.AccessKeyIDs(c.prefix))
				return
			}
			require.Error(t, err)
			assert.NotContains(t, err.Error(), c.secret)
			assert.Empty(t, cr.Prefixes(), "a refused Set changes nothing")
		})
	}
}

// TestMatch is the table of the authorization pattern matcher.
func TestMatch(t *testing.T) {
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"", "anything", true},
		{"*", "", true},
		{"*", "arn:aws:iam::1:user/a", true},
		{"abc", "abc", true},
		{"abc", "abcd", false},
		{"abc", "ab", false},
		{"arn:aws:iam::123456789012:user/*", "arn:aws:iam::123456789012:user/Alice", true},
		{"arn:aws:iam::123456789012:user/*", "arn:aws:iam::123456789012:role/Alice", false},
		{"*:user/Alice", "arn:aws:iam::1:user/Alice", true},
		{"*:user/Alice", "arn:aws:iam::1:user/Alice2", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "a-b-b-c", true},
		{"a*b*c", "acb", false},
		{"a*bc*bc", "abcbc", true},
		{"a*bc*bc", "abc", false},
		{"Generate*", "GenerateDataKeyWithoutPlaintext", true},
		{"*Encrypt", "ReEncrypt", true},
		{"**", "x", true},
		{"a*a", "a", false},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, Match(c.pattern, c.s), "Match(%q, %q)", c.pattern, c.s)
	}
}

// TestAuthorizer: rules change at run time; a nil or empty Authorizer
// allows everything; the matching rule is reported.
func TestAuthorizer(t *testing.T) {
	var nilAuthz *Authorizer
	ok, rule := nilAuthz.Allow("k", RequestMetadata{})
	assert.True(t, ok)
	assert.Equal(t, -1, rule)

	p := newProxy(t)
	good := encReq([]byte("x"), nil)
	assert.Equal(t, 200, p.post("/kms/xks/v1/keys/key-1/encrypt", good).status)
	require.NoError(t, p.authz.SetRules([]Rule{{Key: "key-2"}, {Key: "key-1", Principal: "*:user/Alice"}}))
	assert.Len(t, p.authz.Rules(), 2)
	<-drain(p.events)
	assert.Equal(t, 200, p.post("/kms/xks/v1/keys/key-1/encrypt", good).status)
	ev := <-p.events
	assert.Equal(t, 1, ev.Rule)
	require.NoError(t, p.authz.SetRules([]Rule{{Key: "key-2"}}))
	assert.Equal(t, 403, p.post("/kms/xks/v1/keys/key-1/encrypt", good).status)
	require.NoError(t, p.authz.SetRules(nil))
	assert.Equal(t, 200, p.post("/kms/xks/v1/keys/key-1/encrypt", good).status)

	require.Error(t, p.authz.SetRules([]Rule{{Principal: strings.Repeat("a", 2049)}}))
}

// drain empties ch and answers a closed channel.
func drain(ch chan Event) chan struct{} {
	for {
		select {
		case <-ch:
		default:
			c := make(chan struct{})
			close(c)
			return c
		}
	}
}

// TestEvents: each API request is reported once with its metadata and
// outcome, and never with plaintext.
func TestEvents(t *testing.T) {
	p := newProxy(t)
	p.encrypt("key-1", []byte("secret plaintext"), nil)
	ev := <-p.events
	assert.Equal(t, OpEncrypt, ev.Operation)
	assert.Equal(t, prefix, ev.Prefix)
	assert.Equal(t, "key-1", ev.KeyID)
	assert.Equal(t, akid1, ev.AccessKeyID)
	assert.Equal(t, "4112f4d6-db54-4af4-ae30-c55a22a8dfae", ev.Metadata.KMSRequestID)
	assert.Equal(t, 200, ev.Status)
	assert.Empty(t, ev.ErrorName)
	assert.NotContains(t, fmt.Sprintf("%+v", ev), "secret plaintext")

	p.do("POST", pEnc, []byte("{}"), signing{none: true})
	ev = <-p.events
	assert.Equal(t, AuthenticationFailedException, ev.ErrorName)
	assert.Equal(t, 401, ev.Status)
	assert.Empty(t, ev.AccessKeyID)

	p.do("GET", "/ping", nil, signing{none: true})
	select {
	case ev := <-p.events:
		t.Fatalf("a ping was reported: %+v", ev)
	default:
	}
}

// TestPing: the load balancers' path needs no signature and follows the
// nodes' health.
func TestPing(t *testing.T) {
	p := newProxy(t)
	a := p.do("GET", "/ping", nil, signing{none: true})
	assert.Equal(t, 200, a.status)
	assert.Equal(t, "OK\n", string(a.body))
	assert.Equal(t, 200, p.do("HEAD", "/ping", nil, signing{none: true}).status)
	assert.Equal(t, 405, p.do("POST", "/ping", nil, signing{none: true}).status)
	p.b.mu.Lock()
	p.b.nodes = []NodeHealth{{ID: "n", Status: HealthUnavailable}}
	p.b.mu.Unlock()
	assert.Equal(t, 503, p.do("GET", "/ping", nil, signing{none: true}).status)

	q := newProxy(t, func(c *Config) { c.PingPath = "/healthz" })
	assert.Equal(t, 200, q.do("GET", "/healthz", nil, signing{none: true}).status)
	assert.Equal(t, 404, q.do("GET", "/ping", nil, signing{none: true}).status)
}

// TestNewConfig: New refuses an incomplete configuration.
func TestNewConfig(t *testing.T) {
	ok := Config{Backend: newMemBackend(), Credentials: &Credentials{}, MetadataKey: testMetadataKey}
	_, err := New(ok)
	require.NoError(t, err)
	for name, edit := range map[string]func(*Config){
		"no backend":         func(c *Config) { c.Backend = nil },
		"no credentials":     func(c *Config) { c.Credentials = nil },
		"short metadata key": func(c *Config) { c.MetadataKey = c.MetadataKey[:16] },
		"AAD limit too big":  func(c *Config) { c.Limits.AAD = 70000 },
		"negative limit":     func(c *Config) { c.Limits.Plaintext = -1 },
		"verifier for kms":   func(c *Config) { c.Verifier = &sigv4.Verifier{Service: "kms"} },
	} {
		c := ok
		edit(&c)
		_, err := New(c)
		assert.Error(t, err, name)
	}
}

// TestVerifierGiven: a Verifier for kms-xks-proxy with its own region set
// and clock is used as given.
func TestVerifierGiven(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p := newProxy(t, func(c *Config) {
		c.Verifier = &sigv4.Verifier{Service: Service, Regions: sigv4.RegionSet("eu-west-1"), Now: func() time.Time { return at }}
	})
	body := mustJSON(t, HealthRequest{RequestMetadata: healthMD()})
	assert.Equal(t, 200, p.do("POST", pHealth, body, signing{region: "eu-west-1", at: at}).status)
	assert.Equal(t, 401, p.do("POST", pHealth, body, signing{region: "us-east-2", at: at}).status)
}

// TestInProcess: the Handler works under httptest's recorder too, with a
// request the SDK signed for the proxy's host.
func TestInProcess(t *testing.T) {
	p := newProxy(t)
	r := httptest.NewRequest("GET", "http://xks.example.com"+pEnc, nil)
	w := httptest.NewRecorder()
	p.h.ServeHTTP(w, r)
	assert.Equal(t, http.StatusMethodNotAllowed, w.Code)
}
