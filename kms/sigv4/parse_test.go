package sigv4

import (
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestParseAuthorization: the header parser alone, as a table: how AWS
// separates parts, what it requires, and its messages.
func TestParseAuthorization(t *testing.T) {
	const cred = "AKID/20260301/us-east-1/kms/aws4_request"
	cases := []struct {
		name     string
		header   string
		haveDate bool
		want     *authorization
		errMsg   string
	}{
		{name: "the SDKs' form",
			header: "AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=host;x-amz-date, Signature=abc", haveDate: true,
			want: &authorization{"AWS4-HMAC-SHA256", cred, []string{"host", "x-amz-date"}, "abc"}},
		{name: "commas only",
			header: "AWS4-HMAC-SHA256,Credential=" + cred + ",SignedHeaders=host,Signature=abc", haveDate: true,
			want: &authorization{"AWS4-HMAC-SHA256", cred, []string{"host"}, "abc"}},
		{name: "spaces only, other order, unknown parameter ignored",
			header: "  AWS4-HMAC-SHA256 Signature=abc  Extra=1 SignedHeaders=Host;X-Amz-Date\tCredential=" + cred + " ", haveDate: true,
			want: &authorization{"AWS4-HMAC-SHA256", cred, []string{"host", "x-amz-date"}, "abc"}},
		{name: "part without '='",
			header: "AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders, Signature=abc", haveDate: true,
			errMsg: "'SignedHeaders' not a valid key=value pair (missing equal-sign) in Authorization header: 'AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders, Signature=abc'."},
		{name: "everything missing, no date",
			header: "AWS4-HMAC-SHA256", haveDate: false,
			errMsg: "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256"},
		{name: "only the date missing",
			header: "AWS4-HMAC-SHA256 Credential=a, SignedHeaders=host, Signature=abc", haveDate: false,
			errMsg: "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256 Credential=a, SignedHeaders=host, Signature=abc"},
		{name: "empty values are missing",
			header: "AWS4-HMAC-SHA256 Credential=, SignedHeaders=host, Signature=abc", haveDate: true,
			errMsg: "Authorization header requires 'Credential' parameter. Authorization=AWS4-HMAC-SHA256 Credential=, SignedHeaders=host, Signature=abc"},
		{name: "duplicate parameter",
			header: "AWS4-HMAC-SHA256 Credential=a, Credential=b, SignedHeaders=host, Signature=abc", haveDate: true,
			errMsg: "Authorization header has more than one 'Credential' parameter."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := parseAuthorization(c.header, c.haveDate)
			if c.errMsg != "" {
				require.NotNil(t, err)
				assert.Nil(t, a)
				assert.Equal(t, CodeIncompleteSignature, err.Code)
				assert.Equal(t, c.errMsg, err.Message)
				return
			}
			require.Nil(t, err)
			assert.Equal(t, c.want, a)
		})
	}
}

// TestParseCredential: the credential's five parts.
func TestParseCredential(t *testing.T) {
	cases := []struct {
		in   string
		want *credentialScope
	}{
		{"AKID/20260301/us-east-1/kms/aws4_request", &credentialScope{"AKID", "20260301", "us-east-1", "kms", "aws4_request"}},
		{"AKID/20260301/us-east-1/kms/aws4_request//", &credentialScope{"AKID", "20260301", "us-east-1", "kms", "aws4_request"}},
		{"/20260301/us-east-1/kms/aws4_request", &credentialScope{"", "20260301", "us-east-1", "kms", "aws4_request"}},
		{"AKID/20260301/us-east-1/kms", nil},
		{"AKID/20260301/us-east-1/kms/aws4_request/x", nil},
		{"AKID", nil},
	}
	for _, c := range cases {
		s, err := parseCredential(c.in)
		if c.want == nil {
			require.NotNil(t, err, c.in)
			assert.Equal(t, "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '"+c.in+"'", err.Message)
			continue
		}
		require.Nil(t, err, c.in)
		assert.Equal(t, *c.want, s)
	}
}

// TestCanonicalQuery: SigV4's canonical query string, as a table.
func TestCanonicalQuery(t *testing.T) {
	cases := []struct{ raw, want string }{
		{"", ""},
		{"b=2&a=1", "a=1&b=2"},
		{"a=2&a=1&a=10", "a=1&a=10&a=2"},
		{"flag&x=", "flag=&x="},
		{"s=a%20b&p=a+b&q=a%2Bb", "p=a%20b&q=a%2Bb&s=a%20b"},
		{"k=a-b&k=a/b", "k=a%2Fb&k=a-b"}, // sorted after encoding: % is before -
		{"%7Etilde=%7e&&", "~tilde=~"},
		{"u=%C3%A9", "u=%C3%A9"},
	}
	for _, c := range cases {
		got, ok := canonicalQuery(c.raw)
		require.True(t, ok, c.raw)
		assert.Equal(t, c.want, got, c.raw)
	}
	_, ok := canonicalQuery("a=%zz")
	assert.False(t, ok, "a query that is not percent-encoding cannot be canonical")
}

// FuzzParseAuthorization: the Authorization header parser never panics, a
// refusal is always IncompleteSignature with a message, and what it
// accepts, written back in the SDKs' form, parses to the same thing.
func FuzzParseAuthorization(f *testing.F) {
	for _, seed := range []string{
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260301/us-east-1/kms/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
		"AWS4-HMAC-SHA256,Credential=a/b/c/d/e,SignedHeaders=host,Signature=0",
		"AWS4-HMAC-SHA256 Credential= AKID/x, SignedHeaders=host, Signature=0",
		"AWS4-HMAC-SHA256",
		"AWS4-X Credential=a Credential=b",
		"AWS4-HMAC-SHA256 SignedHeaders=;;; Signature==",
		"",
		",,, \t",
	} {
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, header string, haveDate bool) {
		a, err := parseAuthorization(header, haveDate)
		if err != nil {
			if a != nil || err.Code != CodeIncompleteSignature || err.Message == "" {
				t.Fatalf("refusal %+v with %+v", err, a)
			}
			return
		}
		if a.Credential == "" || a.Signature == "" || len(a.SignedHeaders) == 0 || !haveDate {
			t.Fatalf("accepted an incomplete header: %+v", a)
		}
		for _, h := range a.SignedHeaders {
			if h != strings.ToLower(h) {
				t.Fatalf("signed header %q not lowercased", h)
			}
		}
		again, err := parseAuthorization(a.Algorithm+" Credential="+a.Credential+", SignedHeaders="+
			strings.Join(a.SignedHeaders, ";")+", Signature="+a.Signature, true)
		if err != nil {
			t.Fatalf("written back, refused: %v", err)
		}
		if again.Algorithm != a.Algorithm || again.Credential != a.Credential || again.Signature != a.Signature ||
			strings.Join(again.SignedHeaders, ";") != strings.Join(a.SignedHeaders, ";") {
			t.Fatalf("written back, %+v became %+v", a, again)
		}
		if s, err := parseCredential(a.Credential); err == nil {
			if s.AccessKeyID+"/"+s.String() != strings.TrimRight(a.Credential, "/") {
				t.Fatalf("credential %q split as %+v", a.Credential, s)
			}
		} else if err.Code != CodeIncompleteSignature {
			t.Fatalf("credential refusal %+v", err)
		}
	})
}

// FuzzVerify: Verify on requests whose Authorization header, X-Amz-Date,
// query string and body come from outside never panics; it answers an
// *Error with one of the four codes and a message without the secret, or
// verifies, which only the seed's untouched request does.
func FuzzVerify(f *testing.F) {
	seed := kmsRequest()
	sdkSign(f, seed, refusalBody, testAKID, testSecret, "", "kms", "us-east-1", signTime)
	f.Add(seed.Header.Get("Authorization"), seed.Header.Get("X-Amz-Date"), "", refusalBody)
	f.Add(seed.Header.Get("Authorization"), "20260301T120000Z", "a=%zz&b", []byte{})
	f.Add("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260301/us-east-1/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
		"20260301T120000Z", "X-Amz-Algorithm=x", []byte("{}"))
	codes := map[string]bool{CodeMissingAuthenticationToken: true, CodeIncompleteSignature: true,
		CodeInvalidSignature: true, CodeUnrecognizedClient: true}
	v := testVerifier(signTime)
	f.Fuzz(func(t *testing.T, authorization, amzDate, query string, body []byte) {
		r := kmsRequest()
		r.Header.Set("Authorization", authorization)
		r.Header.Set("X-Amz-Date", amzDate)
		r.URL.RawQuery = query
		id, err := v.Verify(r, body, testKeys())
		if err == nil {
			// The Authorization header is not signed itself: other
			// separators may verify, but not other values.
			a, _ := parseAuthorization(authorization, true)
			want, _ := parseAuthorization(seed.Header.Get("Authorization"), true)
			cq, _ := canonicalQuery(query)
			if !reflect.DeepEqual(a, want) || cq != "" || string(body) != string(refusalBody) || id.Principal != testPrincipal {
				t.Fatalf("verified a request that was not signed: %q %q %q", authorization, query, body)
			}
			return
		}
		e, ok := err.(*Error)
		if !ok || !codes[e.Code] || e.Message == "" || strings.Contains(e.Message, testSecret) {
			t.Fatalf("answer %#v", err)
		}
	})
}
