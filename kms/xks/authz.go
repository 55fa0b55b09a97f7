package xks

import (
	"fmt"
	"strings"
	"sync"
)

// Rule is one grant of the optional secondary authorization (the spec's
// "Authorization" section): the requests it allows are those on a key
// matching Key whose requestMetadata matches Principal (awsPrincipalArn),
// KeyARN (kmsKeyArn) and Operation (kmsOperation). Each is a pattern in
// which * matches any run of characters (":" and "/" included) and every
// other character matches itself; "" is the same as "*".
type Rule struct {
	Key       string // the external key ID; "" or "*": every key (a global rule)
	Principal string
	KeyARN    string
	Operation string
}

// Authorizer is the secondary authorization. With no rules it allows
// everything (authorization off); with rules it allows a request only if
// some rule matches it (an allow list: a key that no rule names is
// refused). GetHealthStatus is never checked, as the spec requires. Rules
// change at run time with SetRules; an Authorizer is safe for concurrent
// use, and its zero value has no rules.
type Authorizer struct {
	mu    sync.RWMutex
	rules []Rule
}

// maxPattern bounds a pattern (ARNs are at most 2048 characters).
const maxPattern = 2048

// SetRules replaces the rules.
func (a *Authorizer) SetRules(rules []Rule) error {
	for i, r := range rules {
		for _, p := range []string{r.Key, r.Principal, r.KeyARN, r.Operation} {
			if len(p) > maxPattern {
				return fmt.Errorf("xks: authorization rule %d: a pattern is longer than %d characters", i, maxPattern)
			}
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rules = append([]Rule(nil), rules...)
	return nil
}

// Rules returns a copy of the rules.
func (a *Authorizer) Rules() []Rule {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return append([]Rule(nil), a.rules...)
}

// Allow answers whether the request on keyID with md is allowed, and the
// index of the rule that allowed it (-1 when there are no rules, or none
// matched).
func (a *Authorizer) Allow(keyID string, md RequestMetadata) (bool, int) {
	if a == nil {
		return true, -1
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	if len(a.rules) == 0 {
		return true, -1
	}
	for i, r := range a.rules {
		if Match(r.Key, keyID) && Match(r.Principal, md.AWSPrincipalARN) &&
			Match(r.KeyARN, md.KMSKeyARN) && Match(r.Operation, md.KMSOperation) {
			return true, i
		}
	}
	return false, -1
}

// Match reports whether s matches pattern, in which * is any run of
// characters and "" is the same as "*".
func Match(pattern, s string) bool {
	if pattern == "" {
		return true
	}
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, last)
}
