package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// isoBasicLayout is ISO 8601's basic format in UTC, the form of X-Amz-Date
// and of every timestamp in a string to sign or an error message.
const isoBasicLayout = "20060102T150405Z"

func isoBasic(t time.Time) string { return t.UTC().Format(isoBasicLayout) }

// canonicalRequest rebuilds the SigV4 canonical request of r from exactly
// the signed headers:
//
//	METHOD \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n SignedHeaders \n HexPayloadHash
//
// signed are the lowercased names from the Authorization header. It fails
// (ok false) only on a query string that is not valid percent-encoding,
// which no signer produces.
func canonicalRequest(r *http.Request, signed []string, payloadHash string) (string, bool) {
	query, ok := canonicalQuery(r.URL.RawQuery)
	if !ok {
		return "", false
	}
	names := slices.Clone(signed)
	slices.Sort(names)
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(canonicalURI(r.URL))
	b.WriteByte('\n')
	b.WriteString(query)
	b.WriteByte('\n')
	for _, name := range names {
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(canonicalHeaderValue(r, name))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(names, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String(), true
}

// canonicalURI is the request's path as sent (still percent-encoded),
// URI-encoded once more with '/' kept: every AWS service but S3 signs the
// path encoded twice. An empty path is "/". The path is not normalized
// (the AWS SDK for Go does not normalize it either); the KMS API is served
// at "/" only, where the question does not arise.
func canonicalURI(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		return "/"
	}
	return uriEncode(p, false)
}

// canonicalQuery is the query string with every name and value decoded and
// then URI-encoded the SigV4 way (space as %20, never '+'), sorted by name
// and then value after encoding. '+' in the query decodes to a space, as
// Go's and Java's query parsers read it.
func canonicalQuery(raw string) (string, bool) {
	if raw == "" {
		return "", true
	}
	type pair struct{ k, v string }
	var pairs []pair
	for piece := range strings.SplitSeq(raw, "&") {
		if piece == "" {
			continue
		}
		k, v, _ := strings.Cut(piece, "=")
		dk, err := url.QueryUnescape(k)
		if err != nil {
			return "", false
		}
		dv, err := url.QueryUnescape(v)
		if err != nil {
			return "", false
		}
		pairs = append(pairs, pair{uriEncode(dk, true), uriEncode(dv, true)})
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		if c := strings.Compare(a.k, b.k); c != 0 {
			return c
		}
		return strings.Compare(a.v, b.v)
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String(), true
}

// uriEncode is SigV4's UriEncode: every byte but A-Z a-z 0-9 - . _ ~ as
// %XX with upper-case hex; '/' too when encodeSlash.
func uriEncode(s string, encodeSlash bool) string {
	const hexUpper = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == '/' && !encodeSlash:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexUpper[c>>4])
			b.WriteByte(hexUpper[c&15])
		}
	}
	return b.String()
}

// canonicalHeaderValue is the value of the signed header name as the
// canonical request has it: every value of the header, each trimmed and
// with runs of spaces collapsed to one, joined with commas. A signed header
// the request does not have is empty (and the signature will not match).
// Go's server keeps some headers outside Header: Host in r.Host, the
// length in r.ContentLength, the transfer coding in r.TransferEncoding.
func canonicalHeaderValue(r *http.Request, name string) string {
	var values []string
	switch name {
	case "host":
		h := r.Host
		if h == "" {
			h = r.URL.Host
		}
		values = []string{h}
	default:
		values = r.Header.Values(name)
		if len(values) == 0 {
			switch name {
			case "content-length":
				if r.ContentLength > 0 {
					values = []string{strconv.FormatInt(r.ContentLength, 10)}
				}
			case "transfer-encoding":
				values = r.TransferEncoding
			}
		}
	}
	// values may be r's own slice: build anew, never write to it.
	cleaned := make([]string, len(values))
	for i, v := range values {
		cleaned[i] = collapseSpaces(strings.TrimSpace(v))
	}
	return strings.Join(cleaned, ",")
}

// collapseSpaces replaces every run of spaces with one space.
func collapseSpaces(s string) string {
	if !strings.Contains(s, "  ") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// stringToSign is SigV4's string to sign for a canonical request.
func stringToSign(amzDate string, scope credentialScope, canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	return algorithm + "\n" + amzDate + "\n" + scope.String() + "\n" + hex.EncodeToString(sum[:])
}

// signingKey derives SigV4's signing key from a secret and a scope:
// HMAC chains over the date, the region, the service and "aws4_request".
func signingKey(secret []byte, date, region, service string) [32]byte {
	k := make([]byte, 0, 4+len(secret))
	k = append(k, "AWS4"...)
	k = append(k, secret...)
	kDate := hmacSHA256(k, date)
	clear(k)
	kRegion := hmacSHA256(kDate, region)
	kService := hmacSHA256(kRegion, service)
	var key [32]byte
	copy(key[:], hmacSHA256(kService, terminator))
	clear(kDate)
	clear(kRegion)
	clear(kService)
	return key
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}
