package sigv4

import (
	"fmt"
	"strings"
	"time"
)

// The exception names Verify answers with. The KMS handler writes each as
// {"__type": Code, "message": Message} with HTTP 400, as AWS's JSON
// services do for every authentication failure.
const (
	// CodeMissingAuthenticationToken: no Authorization header, or one that
	// is not AWS SigV4 at all (it does not start with "AWS4-").
	CodeMissingAuthenticationToken = "MissingAuthenticationTokenException"
	// CodeIncompleteSignature: an Authorization header that claims SigV4
	// but cannot be read: a parameter missing, no date, a date that is not
	// ISO 8601, an algorithm other than AWS4-HMAC-SHA256, a credential that
	// is not five slash-separated parts.
	CodeIncompleteSignature = "IncompleteSignatureException"
	// CodeInvalidSignature: a readable signature that is wrong: it does
	// not match, it is outside the time window, or its credential scope
	// names another region, service, date or terminator.
	CodeInvalidSignature = "InvalidSignatureException"
	// CodeUnrecognizedClient: the access key ID is not one of ours (or the
	// request carries a session token, which this service never issues).
	CodeUnrecognizedClient = "UnrecognizedClientException"
)

// HTTPStatus is the status of every Error: AWS's JSON services answer
// authentication failures with 400.
const HTTPStatus = 400

// Error is a refused request: an AWS exception name and AWS's message. Its
// message never holds a secret access key, a signing key or the signature
// this service computed; it may echo what the client sent (its
// Authorization header, the canonical request rebuilt from its signed
// headers), as AWS does.
type Error struct {
	Code    string // one of the Code* constants
	Message string
	// AccessKeyID is the access key the request named, when the refusal
	// came after the Authorization header was read ("" before), for the
	// audit trail. It is not a secret.
	AccessKeyID string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// HTTPStatus is the HTTP status to answer e with (always 400).
func (e *Error) HTTPStatus() int { return HTTPStatus }

// The messages. Where AWS's text is known it is reproduced exactly, with
// the source it was checked against:
//
//   - [D] mhart/dynalite index.js: responses recorded from DynamoDB, whose
//     front end (and SigV4 checks) KMS shares; the order of the checks in
//     Verify follows the order recorded there.
//   - [T] AWS IAM user guide, "Troubleshoot Signature Version 4 signing for
//     AWS API requests"
//     (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-troubleshooting.html).
//   - [I] AWS answers quoted in public issues: aws/aws-sdk-js#573 and
//     #254 (the expired form with its timestamps), aws/aws-sdk-js-v3#5576
//     and aws/aws-sdk-ruby#508 (region), cllunsford/aws-signing-proxy#25
//     (service), iann0036/cloud9-sync#10 (missing equal-sign),
//     brendanhay/amazonka#316 and aws/chalice#828 (missing parameters),
//     aws/aws-encryption-sdk-java#9 and localstack/localstack#4329 (KMS's
//     unknown-key answer), dacut/scratchstack-aws-signature (the catalogue
//     of AWS's messages it reproduces, incl. the ':authority' form).
//
// Messages marked "ours" have no AWS counterpart (AWS accepts what this
// service refuses, or the case is this service's own rule).
const (
	// [D], [I] scratchstack. (API Gateway says "Missing Authentication
	// Token"; the JSON services, KMS among them, say this.)
	msgMissingToken = "Request is missing Authentication Token"
	// [I] KMS, and [D].
	msgUnknownKey = "The security token included in the request is invalid."
	// [D], [T], [I] scratchstack. AWS follows it with the canonical
	// request and the string to sign it computed; so does mismatch().
	msgMismatch = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	// [D].
	msgBothAuth = "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."
	// [I] scratchstack (the HTTP/2-aware form of [D]'s "'Host' must be a
	// 'SignedHeader' in the AWS Authorization.").
	msgHostUnsigned = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
	// S3's answer for the same fault (XAmzContentSHA256Mismatch), under
	// this service's exception name.
	msgContentSHA256 = "The provided 'x-amz-content-sha256' header does not match what was computed."

	// Ours: KMS does not need presigned URLs, so this service takes none.
	msgPresigned = "Query-string authentication (a presigned URL) is not supported by this service; sign the request with an Authorization header (AWS4-HMAC-SHA256)."
	// Ours.
	msgManyAuthorization = "The request has more than one Authorization header."
)

func newError(code, msg string) *Error { return &Error{Code: code, Message: msg} }

// [I] cloud9-sync#10: "'<token>' not a valid key=value pair (missing
// equal-sign) in Authorization header: '<header>'."
func errMissingEqual(token, header string) *Error {
	return newError(CodeIncompleteSignature, fmt.Sprintf(
		"'%s' not a valid key=value pair (missing equal-sign) in Authorization header: '%s'.", token, header))
}

// [D], [I] amazonka#316, chalice#828: one sentence per missing part, in
// this order, then "Authorization=<header>".
func errMissingParts(missing []string, noDate bool, header string) *Error {
	var b strings.Builder
	for _, p := range missing {
		fmt.Fprintf(&b, "Authorization header requires '%s' parameter. ", p)
	}
	if noDate {
		b.WriteString("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ")
	}
	b.WriteString("Authorization=")
	b.WriteString(header)
	return newError(CodeIncompleteSignature, b.String())
}

// Ours: the parameter named twice.
func errDuplicateParam(name string) *Error {
	return newError(CodeIncompleteSignature, fmt.Sprintf(
		"Authorization header has more than one '%s' parameter.", name))
}

// [D]: "Date must be in ISO-8601 'basic format'. Got '201'. See
// http://en.wikipedia.org/wiki/ISO_8601".
func errDateFormat(got string) *Error {
	return newError(CodeIncompleteSignature, fmt.Sprintf(
		"Date must be in ISO-8601 'basic format'. Got '%s'. See http://en.wikipedia.org/wiki/ISO_8601", got))
}

// [D], [I] aws-sdk-js#573: "Signature expired: 20150411T064107Z is now
// earlier than 20150411T064135Z (20150411T064635Z - 5 min.)": the request
// time, the oldest time accepted, now.
func errExpired(t, now time.Time, window time.Duration) *Error {
	return newError(CodeInvalidSignature, fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - %s)",
		isoBasic(t), isoBasic(now.Add(-window)), isoBasic(now), windowText(window)))
}

// [T], [I] (e.g. "Signature not yet current: 20170424T013926Z is still
// later than 20170424T013832Z (20170424T013332Z + 5 min.)"): the request
// time, the latest time accepted, now.
func errNotYetCurrent(t, now time.Time, window time.Duration) *Error {
	return newError(CodeInvalidSignature, fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + %s)",
		isoBasic(t), isoBasic(now.Add(window)), isoBasic(now), windowText(window)))
}

// "5 min.", as AWS writes its window; a window that is not whole minutes
// (only in tests) is written as a Go duration.
func windowText(w time.Duration) string {
	if w%time.Minute == 0 {
		return fmt.Sprintf("%d min.", int64(w/time.Minute))
	}
	return w.String() + "."
}

// Ours, in the form of msgHostUnsigned: the date the signature is checked
// against must itself be signed, or anyone could move it.
func errDateUnsigned(header string) *Error {
	return newError(CodeInvalidSignature, fmt.Sprintf("'%s' must be a 'SignedHeader' in the AWS Authorization.", header))
}

// [D], [I] scratchstack: "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA25'
// (only AWS4-HMAC-SHA256 for now). "
func errAlgorithm(alg string) *Error {
	return newError(CodeIncompleteSignature, fmt.Sprintf(
		"Unsupported AWS 'algorithm': '%s' (only AWS4-HMAC-SHA256 for now). ", alg))
}

// [D], [I] mhart/aws4#97: "Credential must have exactly 5 slash-delimited
// elements, e.g. keyid/date/region/service/term, got 'a/b/c/d'".
func errCredentialParts(credential string) *Error {
	return newError(CodeIncompleteSignature, fmt.Sprintf(
		"Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '%s'", credential))
}

// The credential scope sentences, [D] and [T]; AWS joins every one that
// applies, in this order, into one message.
func scopeRegion(region string) string {
	return fmt.Sprintf("Credential should be scoped to a valid region, not '%s'.", region)
}

func scopeService(service string) string {
	return fmt.Sprintf("Credential should be scoped to correct service: '%s'.", service)
}

func scopeTerminator(term string) string {
	return fmt.Sprintf("Credential should be scoped with a valid terminator: 'aws4_request', not '%s'.", term)
}

func scopeDate(scopeDate, want, amzDate string) string {
	return fmt.Sprintf("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
		scopeDate, want, amzDate)
}

// mismatch is msgMismatch with the canonical request and the string to
// sign this service computed, as AWS's JSON services answer ([D]). Neither
// holds a secret: both are built from the request and its scope only.
func mismatch(canonicalRequest, stringToSign string) *Error {
	return newError(CodeInvalidSignature, msgMismatch+
		"\n\nThe Canonical String for this request should have been\n'"+canonicalRequest+
		"'\n\nThe String-to-Sign should have been\n'"+stringToSign+"'\n")
}
