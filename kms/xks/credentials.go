package xks

import (
	"fmt"
	"regexp"
	"slices"
	"sync"

	"github.com/openhsm/openhsm/kms/sigv4"
)

// The forms the spec (Appendix A) and AWS KMS's CreateCustomKeyStore give
// an XKS credential and URI path; AWS KMS refuses others, so a credential
// outside them could never be used and is refused here too.
var (
	accessKeyIDForm = regexp.MustCompile(`^[A-Z2-7]{20,30}$`)
	secretForm      = regexp.MustCompile(`^[A-Za-z0-9+/=]{43,64}$`)
	// prefixForm is the optional path prefix before /kms/xks/v1: the
	// XksProxyUriPath characters, "" for none. The whole XksProxyUriPath is
	// at most 128 characters, of which /kms/xks/v1 takes 11.
	prefixForm = regexp.MustCompile(`^(/[a-zA-Z0-9/_-]{1,116})?$`)
)

// Credentials holds the SigV4 credentials of each URI path prefix: any
// number of access keys per prefix, all valid at once, so that a
// credential can be rotated as the spec's "SigV4 credentials rotation"
// describes: Set the new one, move AWS KMS to it (UpdateCustomKeyStore),
// then Remove the old one. Changes apply to the next request; nothing
// restarts. An access key ID names one secret within its prefix.
//
// A prefix is served while it has at least one credential: requests under
// any other prefix are InvalidUriPathException. The zero value is empty
// and ready; a Credentials is safe for concurrent use.
type Credentials struct {
	mu   sync.RWMutex
	sets map[string]map[string][]byte // prefix -> access key ID -> secret
}

// Set adds the credential akid/secret to prefix, or replaces akid's
// secret. prefix is "" or "/" followed by the XksProxyUriPath characters,
// without a trailing slash; akid and secret must have the forms AWS KMS
// accepts (20-30 of A-Z and 2-7; 43-64 of A-Za-z0-9+/=). The error never
// holds the secret.
func (c *Credentials) Set(prefix, akid, secret string) error {
	if !validPrefix(prefix) {
		return fmt.Errorf("xks: URI path prefix %q is not \"\" or /<letters, digits, /, _ or -> without a trailing slash", prefix)
	}
	if !accessKeyIDForm.MatchString(akid) {
		return fmt.Errorf("xks: access key ID %q is not 20 to 30 characters of A-Z and 2-7", akid)
	}
	if !secretForm.MatchString(secret) {
		return fmt.Errorf("xks: the secret access key of %s is not 43 to 64 characters of A-Z, a-z, 0-9, +, / and =", akid)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sets == nil {
		c.sets = map[string]map[string][]byte{}
	}
	if c.sets[prefix] == nil {
		c.sets[prefix] = map[string][]byte{}
	}
	c.sets[prefix][akid] = []byte(secret)
	return nil
}

// Remove takes akid's credential out of prefix, and answers whether it was
// there. Requests signed with it are refused from then on.
func (c *Credentials) Remove(prefix, akid string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	set, ok := c.sets[prefix]
	if !ok {
		return false
	}
	if _, ok := set[akid]; !ok {
		return false
	}
	delete(set, akid)
	if len(set) == 0 {
		delete(c.sets, prefix)
	}
	return true
}

// AccessKeyIDs lists prefix's access key IDs, sorted.
func (c *Credentials) AccessKeyIDs(prefix string) []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var ids []string
	for id := range c.sets[prefix] {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Prefixes lists the prefixes served, sorted.
func (c *Credentials) Prefixes() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var ps []string
	for p := range c.sets {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// has answers whether prefix is served.
func (c *Credentials) has(prefix string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, ok := c.sets[prefix]
	return ok
}

// secrets is the sigv4.Secrets of one prefix, read at each request. The
// principal it names is the access key ID.
func (c *Credentials) secrets(prefix string) sigv4.Secrets {
	return sigv4.SecretsFunc(func(akid string) ([]byte, string, error) {
		c.mu.RLock()
		defer c.mu.RUnlock()
		s, ok := c.sets[prefix][akid]
		if !ok {
			return nil, "", sigv4.ErrUnknownAccessKey
		}
		return slices.Clone(s), akid, nil
	})
}

func validPrefix(p string) bool {
	return prefixForm.MatchString(p) && (p == "" || p[len(p)-1] != '/')
}

// ValidPrefix says whether p is a URI path prefix Credentials.Set takes:
// "" or "/" followed by up to 116 of XksProxyUriPath's characters
// (letters, digits, /, _ and -), without a trailing slash.
func ValidPrefix(p string) bool { return validPrefix(p) }
