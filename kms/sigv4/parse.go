package sigv4

import (
	"strings"
)

// algorithm is the only SigV4 algorithm this service takes (SigV4a,
// "AWS4-ECDSA-P256-SHA256", is for multi-region endpoints KMS does not have).
const algorithm = "AWS4-HMAC-SHA256"

// terminator ends every SigV4 credential scope.
const terminator = "aws4_request"

// authorization is a parsed Authorization header, before any of its
// values is checked against the request.
type authorization struct {
	Algorithm  string
	Credential string
	// SignedHeaders are the signed header names, lowercased, in the order
	// the header gave them.
	SignedHeaders []string
	Signature     string
}

// isSeparator tells the bytes that separate the parts of an Authorization
// header: AWS takes commas, spaces or both ("Credential=a, SignedHeaders=b"
// and "Credential=a,SignedHeaders=b" alike).
func isSeparator(r rune) bool { return r == ',' || r == ' ' || r == '\t' }

// parseAuthorization reads an Authorization header that starts with "AWS4-"
// (Verify answers MissingAuthenticationToken to every other one). haveDate
// tells whether the request has an X-Amz-Date or Date header, because AWS
// reports a missing date in the same message as missing parameters.
//
// The header is an algorithm and then key=value parameters; Credential,
// SignedHeaders and Signature are required, each at most once, and others
// are ignored. A part without '=' is refused first, then every missing
// parameter at once. The values are not checked here: the algorithm, the
// credential scope and the signature are, in AWS's order, by Verify.
func parseAuthorization(header string, haveDate bool) (*authorization, *Error) {
	fields := strings.FieldsFunc(header, isSeparator)
	a := &authorization{}
	if len(fields) > 0 {
		a.Algorithm = fields[0]
		fields = fields[1:]
	}
	var signedHeaders string
	seen := map[string]bool{}
	for _, f := range fields {
		key, value, ok := strings.Cut(f, "=")
		if !ok {
			return nil, errMissingEqual(f, header)
		}
		var dst *string
		switch key {
		case "Credential":
			dst = &a.Credential
		case "SignedHeaders":
			dst = &signedHeaders
		case "Signature":
			dst = &a.Signature
		default:
			continue
		}
		if seen[key] {
			return nil, errDuplicateParam(key)
		}
		seen[key] = true
		*dst = value
	}
	var missing []string
	if a.Credential == "" {
		missing = append(missing, "Credential")
	}
	if a.Signature == "" {
		missing = append(missing, "Signature")
	}
	if signedHeaders == "" {
		missing = append(missing, "SignedHeaders")
	}
	if len(missing) > 0 || !haveDate {
		return nil, errMissingParts(missing, !haveDate, header)
	}
	for _, name := range strings.Split(signedHeaders, ";") {
		a.SignedHeaders = append(a.SignedHeaders, strings.ToLower(name))
	}
	return a, nil
}

// credentialScope is the Credential parameter's five parts.
type credentialScope struct {
	AccessKeyID, Date, Region, Service, Terminator string
}

// String is the scope as the string to sign has it: the credential without
// the access key ID.
func (s credentialScope) String() string {
	return s.Date + "/" + s.Region + "/" + s.Service + "/" + s.Terminator
}

// parseCredential splits "AKID/YYYYMMDD/region/service/aws4_request" into
// its parts (trailing slashes ignored, as AWS does); anything but five
// parts is IncompleteSignature. The parts' values are checked by Verify.
func parseCredential(credential string) (credentialScope, *Error) {
	parts := strings.Split(strings.TrimRight(credential, "/"), "/")
	if len(parts) != 5 {
		return credentialScope{}, errCredentialParts(credential)
	}
	return credentialScope{parts[0], parts[1], parts[2], parts[3], parts[4]}, nil
}
