package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
)

// Request is one access decision's input, as the service fills it.
type Request struct {
	Principal string // the caller's ARN, e.g. arn:aws:iam::111122223333:user/app
	Account   string // the caller's account ID
	Action    string // e.g. "kms:Encrypt"
	Resource  string // the key's ARN
	// EncryptionContext is the request's encryption context, if the
	// operation takes one. It yields kms:EncryptionContext:<key> and
	// kms:EncryptionContextKeys, and grant constraints match against it.
	EncryptionContext map[string]string
	// Context holds every other condition key's values (single-valued keys
	// have one value): kms:ViaService, kms:KeySpec, aws:SourceIp and so on.
	// Key names are case-insensitive. aws:PrincipalArn and kms:CallerAccount
	// default to Principal and Account.
	Context map[string][]string
	// NewGrant is, for kms:CreateGrant, the constraints of the grant being
	// made (nil: none). A grant that allows CreateGrant allows only grants
	// as narrow as itself: kms:GrantOperations within its operations, and
	// constraints at least as strict as its own.
	NewGrant *GrantConstraints
}

// GrantConstraints are a grant's encryption context constraints.
type GrantConstraints struct {
	EncryptionContextEquals map[string]string
	EncryptionContextSubset map[string]string
}

// Grant is one grant on the request's key.
type Grant struct {
	ID               string
	KeyARN           string // if set, the grant applies only to this key
	GranteePrincipal string
	Operations       []string // AWS grant operation names: "Encrypt", "Decrypt", ...
	Constraints      *GrantConstraints
}

// Decision is Evaluate's answer.
type Decision struct {
	Allowed bool
	Reason  string
	// Denial says which kind of policy refused (for AWS's message: an
	// explicit deny in a resource-based or an identity-based policy, or no
	// allow in one); NotDenied when Allowed.
	Denial Denial
}

// Denial is the kind of a denied Decision.
type Denial int

const (
	NotDenied              Denial = iota
	ExplicitDenyResource          // a key policy statement denies
	ExplicitDenyIdentity          // an identity policy statement denies
	NoResourcePolicyAllows        // no key policy statement (or grant) allows
	NoIdentityPolicyAllows        // the key policy delegates to the account, no identity policy allows; or an IAM-only action
)

// contextOperations are the operations that take an encryption context and
// so the ones grant constraints apply to.
var contextOperations = map[string]bool{
	"kms:encrypt": true, "kms:decrypt": true, "kms:reencryptfrom": true, "kms:reencryptto": true,
	"kms:generatedatakey": true, "kms:generatedatakeywithoutplaintext": true,
	"kms:generatedatakeypair": true, "kms:generatedatakeypairwithoutplaintext": true,
}

// evalCtx is a request prepared for matching: condition keys lower-cased.
type evalCtx struct {
	req    Request
	values map[string][]string
}

func prepare(req Request) *evalCtx {
	v := map[string][]string{}
	for k, vals := range req.Context {
		lk := strings.ToLower(k)
		v[lk] = append(v[lk], vals...)
	}
	if _, ok := v["aws:principalarn"]; !ok && req.Principal != "" {
		v["aws:principalarn"] = []string{req.Principal}
	}
	if _, ok := v["kms:calleraccount"]; !ok && req.Account != "" {
		v["kms:calleraccount"] = []string{req.Account}
	}
	if len(req.EncryptionContext) > 0 {
		keys := make([]string, 0, len(req.EncryptionContext))
		for k, val := range req.EncryptionContext {
			keys = append(keys, k)
			lk := ecPrefix + strings.ToLower(k)
			v[lk] = append(v[lk], val)
		}
		sort.Strings(keys)
		v["kms:encryptioncontextkeys"] = keys
	}
	return &evalCtx{req: req, values: v}
}

// principalMatch is how a key policy statement's Principal covers a caller.
type principalMatch int

const (
	noMatch    principalMatch = iota
	direct                    // "*", or the caller's own ARN
	viaAccount                // the caller's account: delegation to IAM
)

func matchPrincipal(s *Statement, req Request) principalMatch {
	best := noMatch
	root := "arn:aws:iam::" + req.Account + ":root"
	for _, p := range s.Principals {
		switch {
		case p == "*" || p == req.Principal:
			return direct
		case req.Account != "" && p == root:
			best = viaAccount
		}
	}
	return best
}

// applies reports whether a statement's action, resource and conditions
// cover the request (the principal is checked by the caller).
func (c *evalCtx) applies(s *Statement) bool {
	if s.Actions != nil && !anyGlob(s.Actions, c.req.Action, true) {
		return false
	}
	if s.NotActions != nil && anyGlob(s.NotActions, c.req.Action, true) {
		return false
	}
	if s.Resources != nil && !anyGlob(s.Resources, c.req.Resource, false) {
		return false
	}
	if s.NotResources != nil && anyGlob(s.NotResources, c.req.Resource, false) {
		return false
	}
	for i := range s.Conditions {
		if !c.condition(&s.Conditions[i]) {
			return false
		}
	}
	return true
}

func anyGlob(patterns []string, s string, fold bool) bool {
	for _, p := range patterns {
		if glob(p, s, fold) {
			return true
		}
	}
	return false
}

// glob matches s against a pattern with * (any run) and ? (one character),
// in time linear in len(p)*len(s) at worst.
func glob(p, s string, fold bool) bool {
	if fold {
		p, s = strings.ToLower(p), strings.ToLower(s)
	}
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// Evaluate decides req against the key policy, the caller's identity
// policies and the key's grants. See the package doc for the order.
func Evaluate(req Request, keyPolicy *Policy, identity []*Policy, grants []Grant) Decision {
	c := prepare(req)
	// 1. Explicit denies, anywhere.
	if keyPolicy != nil {
		for _, s := range keyPolicy.Statements {
			if s.Effect == Deny && matchPrincipal(s, req) != noMatch && c.applies(s) {
				return Decision{false, fmt.Sprintf("explicit deny: key policy statement %s denies %s to %s", s.Name(), req.Action, req.Principal), ExplicitDenyResource}
			}
		}
	}
	for i, p := range identity {
		if p == nil {
			continue
		}
		for _, s := range p.Statements {
			if s.Effect == Deny && c.applies(s) {
				return Decision{false, fmt.Sprintf("explicit deny: %s statement %s denies %s to %s", identityName(p, i), s.Name(), req.Action, req.Principal), ExplicitDenyIdentity}
			}
		}
	}
	// 2, 3. Key policy allows, directly or by delegation to the account.
	var delegated *Statement
	if keyPolicy != nil {
		for _, s := range keyPolicy.Statements {
			if s.Effect != Allow {
				continue
			}
			m := matchPrincipal(s, req)
			if m == noMatch || !c.applies(s) {
				continue
			}
			if m == direct {
				return Decision{true, fmt.Sprintf("allowed by key policy statement %s", s.Name()), NotDenied}
			}
			if delegated == nil {
				delegated = s
			}
		}
	}
	idAllow := ""
	for i, p := range identity {
		if p == nil || idAllow != "" {
			continue
		}
		for _, s := range p.Statements {
			if s.Effect == Allow && c.applies(s) {
				idAllow = fmt.Sprintf("%s statement %s", identityName(p, i), s.Name())
				break
			}
		}
	}
	if delegated != nil && idAllow != "" {
		return Decision{true, fmt.Sprintf("allowed by key policy statement %s (delegated to account %s) and %s", delegated.Name(), req.Account, idAllow), NotDenied}
	}
	// 4. Grants.
	for _, g := range grants {
		if why := c.grantAllows(g, idAllow != ""); why != "" {
			return Decision{true, why, NotDenied}
		}
	}
	switch {
	case delegated != nil:
		return Decision{false, fmt.Sprintf("implicit deny: key policy statement %s delegates %s to account %s, but no identity policy of %s allows it", delegated.Name(), req.Action, req.Account, req.Principal), NoIdentityPolicyAllows}
	case keyPolicy == nil:
		return Decision{false, fmt.Sprintf("implicit deny: the key has no key policy and no grant allows %s to %s", req.Action, req.Principal), NoResourcePolicyAllows}
	}
	return Decision{false, fmt.Sprintf("implicit deny: no key policy statement or grant allows %s to %s", req.Action, req.Principal), NoResourcePolicyAllows}
}

// EvaluateIdentity decides a request for an action that no key policy
// governs (AWS's "IAM policy only" operations, such as kms:CreateKey,
// kms:ListKeys, or an alias's side of kms:CreateAlias): an explicit deny
// in an identity policy denies, an allow in one allows, and otherwise the
// request is implicitly denied. req.Resource is the alias ARN, or "*" when
// the action takes no resource.
func EvaluateIdentity(req Request, identity []*Policy) Decision {
	c := prepare(req)
	for i, p := range identity {
		if p == nil {
			continue
		}
		for _, s := range p.Statements {
			if s.Effect == Deny && c.applies(s) {
				return Decision{false, fmt.Sprintf("explicit deny: %s statement %s denies %s to %s", identityName(p, i), s.Name(), req.Action, req.Principal), ExplicitDenyIdentity}
			}
		}
	}
	for i, p := range identity {
		if p == nil {
			continue
		}
		for _, s := range p.Statements {
			if s.Effect == Allow && c.applies(s) {
				return Decision{true, fmt.Sprintf("allowed by %s statement %s", identityName(p, i), s.Name()), NotDenied}
			}
		}
	}
	return Decision{false, fmt.Sprintf("implicit deny: no identity policy of %s allows %s", req.Principal, req.Action), NoIdentityPolicyAllows}
}

func identityName(p *Policy, i int) string {
	if p.Name != "" {
		return fmt.Sprintf("identity policy %q", p.Name)
	}
	return fmt.Sprintf("identity policy #%d", i)
}

// grantAllows returns why g allows the request, or "". A grant to the
// caller's account (root ARN or ID) counts only with an identity policy
// allow, as the key policy's account principal does.
func (c *evalCtx) grantAllows(g Grant, idAllow bool) string {
	req := c.req
	if g.KeyARN != "" && g.KeyARN != req.Resource {
		return ""
	}
	switch g.GranteePrincipal {
	case req.Principal:
	case "arn:aws:iam::" + req.Account + ":root", req.Account:
		if req.Account == "" || !idAllow {
			return ""
		}
	default:
		return ""
	}
	op, ok := strings.CutPrefix(req.Action, "kms:")
	if !ok || !hasOperation(g, op) {
		return ""
	}
	if !c.constraintsMatch(g.Constraints) {
		return ""
	}
	if strings.EqualFold(req.Action, "kms:CreateGrant") && !c.narrower(g) {
		return ""
	}
	name := g.ID
	if name == "" {
		name = "(no id)"
	}
	return fmt.Sprintf("allowed by grant %s", name)
}

// constraintsMatch applies a grant's constraints to operations that take an
// encryption context on a symmetric key; context keys compare without case,
// values with case.
func (c *evalCtx) constraintsMatch(gc *GrantConstraints) bool {
	if gc == nil || (len(gc.EncryptionContextEquals) == 0 && len(gc.EncryptionContextSubset) == 0) {
		return true
	}
	if !contextOperations[strings.ToLower(c.req.Action)] {
		return true
	}
	if ks := c.values["kms:keyspec"]; len(ks) > 0 && ks[0] != "SYMMETRIC_DEFAULT" {
		return true
	}
	ec := c.req.EncryptionContext
	if len(gc.EncryptionContextEquals) > 0 && !samePairs(ec, gc.EncryptionContextEquals) {
		return false
	}
	return holdsPairs(ec, gc.EncryptionContextSubset)
}

// condition evaluates one condition against the request.
func (c *evalCtx) condition(cd *Condition) bool {
	vals, present := c.values[strings.ToLower(cd.Key)]
	present = present && len(vals) > 0
	if cd.Base == "Null" {
		// "true": the key must be absent; "false": present.
		return strings.EqualFold(cd.Values[0], "true") == !present
	}
	negated := operators[strings.ToLower(cd.Base)].negated
	switch cd.Set {
	case AnyValue:
		if !present {
			return false
		}
		for _, rv := range vals {
			if c.valueMatches(cd, rv, negated) {
				return true
			}
		}
		return false
	case AllValues:
		if !present {
			return true
		}
		for _, rv := range vals {
			if !c.valueMatches(cd, rv, negated) {
				return false
			}
		}
		return true
	}
	if !present {
		return cd.IfExists || negated
	}
	if negated {
		for _, rv := range vals {
			if !c.valueMatches(cd, rv, true) {
				return false
			}
		}
		return true
	}
	for _, rv := range vals {
		if c.valueMatches(cd, rv, false) {
			return true
		}
	}
	return false
}

// valueMatches reports whether one request value satisfies the condition:
// for a positive operator, it matches some policy value; for a negated
// one, it matches none.
func (c *evalCtx) valueMatches(cd *Condition, rv string, negated bool) bool {
	hit := false
	for _, pv := range cd.Values {
		if compare(cd.Base, pv, rv) {
			hit = true
			break
		}
	}
	return hit != negated
}

// compare applies a base operator (its positive form) to a policy value
// and a request value.
func compare(base, pv, rv string) bool {
	switch base {
	case "StringEquals", "StringNotEquals":
		return pv == rv
	case "StringEqualsIgnoreCase":
		return strings.EqualFold(pv, rv)
	case "StringLike", "StringNotLike":
		return glob(pv, rv, false)
	case "Bool":
		return strings.EqualFold(pv, rv)
	case "NumericEquals", "NumericLessThan", "NumericLessThanEquals", "NumericGreaterThan", "NumericGreaterThanEquals":
		p, ok1 := parseNumber(pv)
		r, ok2 := parseNumber(rv)
		if !ok1 || !ok2 {
			return false
		}
		switch base {
		case "NumericEquals":
			return r == p
		case "NumericLessThan":
			return r < p
		case "NumericLessThanEquals":
			return r <= p
		case "NumericGreaterThan":
			return r > p
		}
		return r >= p
	case "DateLessThan", "DateGreaterThan":
		p, ok1 := parseDate(pv)
		r, ok2 := parseDate(rv)
		if !ok1 || !ok2 {
			return false
		}
		if base == "DateLessThan" {
			return r.Before(p)
		}
		return r.After(p)
	case "ArnLike", "ArnEquals", "ArnNotLike", "ArnNotEquals":
		return arnMatch(pv, rv)
	case "IpAddress", "NotIpAddress":
		pfx, ok := parsePrefix(pv)
		if !ok {
			return false
		}
		a, err := netip.ParseAddr(rv)
		return err == nil && pfx.Contains(a.Unmap())
	}
	return false
}

// arnMatch matches an ARN against a pattern part by part (the six
// colon-separated parts), so a wildcard never crosses a colon before the
// resource part.
func arnMatch(pattern, arn string) bool {
	if pattern == "*" {
		return true
	}
	pp := strings.SplitN(pattern, ":", 6)
	ap := strings.SplitN(arn, ":", 6)
	if len(pp) != 6 || len(ap) != 6 {
		return false
	}
	for i := range pp {
		if !glob(pp[i], ap[i], false) {
			return false
		}
	}
	return true
}

// LockoutMessage is AWS's message for a policy that fails LockoutCheck.
const LockoutMessage = "The new key policy will not allow you to update the key policy in the future."

// LockoutCheck is AWS's policy lockout safety check: it refuses a new key
// policy under which the caller could not call kms:PutKeyPolicy on the key
// later. A policy that delegates PutKeyPolicy to the caller's account passes,
// as in AWS (the account can always grant it through IAM). caller carries the
// caller's principal, account, the key's ARN and the request context; its
// Action is ignored.
func LockoutCheck(doc *Policy, caller Request) error {
	if doc == nil {
		return &MalformedError{Message: LockoutMessage}
	}
	caller.Action = "kms:PutKeyPolicy"
	c := prepare(caller)
	for _, s := range doc.Statements {
		if s.Effect == Deny && matchPrincipal(s, caller) != noMatch && c.applies(s) {
			return &MalformedError{Message: LockoutMessage}
		}
	}
	for _, s := range doc.Statements {
		if s.Effect == Allow && matchPrincipal(s, caller) != noMatch && c.applies(s) {
			return nil
		}
	}
	return &MalformedError{Message: LockoutMessage}
}

// DeniedMessage is AWS's AccessDeniedException message for a denied
// decision: it names the principal, the action and the resource (none for
// "*" or ""), and which kind of policy refused, never a statement, a
// condition or a value.
func DeniedMessage(req Request, d Decision) string {
	m := "User: " + req.Principal + " is not authorized to perform: " + req.Action
	if req.Resource != "" && req.Resource != "*" {
		m += " on resource: " + req.Resource
	}
	switch d.Denial {
	case ExplicitDenyResource:
		return m + " with an explicit deny in a resource-based policy"
	case ExplicitDenyIdentity:
		return m + " with an explicit deny in an identity-based policy"
	case NoIdentityPolicyAllows:
		return m + " because no identity-based policy allows the " + req.Action + " action"
	}
	return m + " because no resource-based policy allows the " + req.Action + " action"
}

// narrower says whether the grant a CreateGrant request makes is as narrow
// as g, the grant that would allow the request (AWS's grants.html: a
// grantee with CreateGrant may create grants with the same or fewer
// operations and the same or stricter constraints). Its operations
// (kms:GrantOperations) are among g's; if g has EncryptionContextEquals,
// the new grant must have the same pairs as its Equals; if g has
// EncryptionContextSubset, the new grant's Equals or Subset must hold all
// of g's pairs.
func (c *evalCtx) narrower(g Grant) bool {
	for _, op := range c.req.Context["kms:GrantOperations"] {
		if !hasOperation(g, op) {
			return false
		}
	}
	gc := g.Constraints
	if gc == nil || (len(gc.EncryptionContextEquals) == 0 && len(gc.EncryptionContextSubset) == 0) {
		return true
	}
	n := c.req.NewGrant
	if n == nil {
		return false
	}
	if len(gc.EncryptionContextEquals) > 0 {
		return len(n.EncryptionContextSubset) == 0 && samePairs(n.EncryptionContextEquals, gc.EncryptionContextEquals)
	}
	if len(n.EncryptionContextEquals) > 0 {
		return holdsPairs(n.EncryptionContextEquals, gc.EncryptionContextSubset)
	}
	return holdsPairs(n.EncryptionContextSubset, gc.EncryptionContextSubset)
}

// hasOperation says whether a grant's operations include op (without
// case).
func hasOperation(g Grant, op string) bool {
	return slices.ContainsFunc(g.Operations, func(o string) bool { return strings.EqualFold(o, op) })
}

// holdsPairs says whether every pair of want is in have (keys without
// case, values with case, as constraints compare).
func holdsPairs(have, want map[string]string) bool {
	for k, v := range want {
		found := false
		for hk, hv := range have {
			if strings.EqualFold(hk, k) && hv == v {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func samePairs(a, b map[string]string) bool {
	return len(a) == len(b) && holdsPairs(a, b)
}
