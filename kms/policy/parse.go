package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// MaxPolicySize is the largest policy document AWS KMS accepts (32 KB).
const MaxPolicySize = 32768

// MalformedError is a policy document that does not parse or uses something
// this package does not support. The service answers it as
// MalformedPolicyDocumentException with Message as the message.
type MalformedError struct{ Message string }

func (e *MalformedError) Error() string { return e.Message }

func malformed(format string, a ...any) error {
	return &MalformedError{Message: fmt.Sprintf(format, a...)}
}

// AWS's message forms for the commonest faults; the detail that follows
// names the element.
const (
	msgPrincipal = "Policy contains a statement with one or more invalid principals."
	msgSyntax    = "MalformedPolicyDocument: Syntax errors in policy."
)

// Effect is a statement's effect.
type Effect string

const (
	Allow Effect = "Allow"
	Deny  Effect = "Deny"
)

// Policy is a parsed key policy or identity policy.
type Policy struct {
	// Name labels an identity policy in decisions; the caller sets it (the
	// parser leaves it empty).
	Name       string
	Version    string
	ID         string
	Statements []*Statement
}

// Statement is one parsed statement. Exactly one of Actions/NotActions and
// at most one of Resources/NotResources is set.
type Statement struct {
	Index  int // 0-based position in the document
	Sid    string
	Effect Effect
	// HasPrincipal says whether the statement had a Principal element.
	// Principals holds its AWS principals: "*", "arn:aws:iam::<acct>:root",
	// the bare account ID normalised to the root ARN, or user ARNs.
	HasPrincipal bool
	Principals   []string
	Actions      []string
	NotActions   []string
	Resources    []string
	NotResources []string
	Conditions   []Condition
}

// HasConditionKey says whether a statement of p has a condition on key
// (compared without case); false for a nil p.
func (p *Policy) HasConditionKey(key string) bool {
	if p == nil {
		return false
	}
	for _, s := range p.Statements {
		for _, c := range s.Conditions {
			if strings.EqualFold(c.Key, key) {
				return true
			}
		}
	}
	return false
}

// Name is how a decision names the statement: its Sid or its index.
func (s *Statement) Name() string {
	if s.Sid != "" {
		return fmt.Sprintf("%q", s.Sid)
	}
	return fmt.Sprintf("#%d", s.Index)
}

// SetOp is a condition's set operator prefix.
type SetOp int

const (
	Single    SetOp = iota // no prefix
	AnyValue               // ForAnyValue:
	AllValues              // ForAllValues:
)

// Condition is one (operator, key, values) triple of a Condition block.
type Condition struct {
	Operator string // as written, e.g. "ForAnyValue:StringLikeIfExists"
	Base     string // the operator without prefix and suffix, e.g. "StringLike"
	Set      SetOp
	IfExists bool
	Key      string // as written
	Values   []string
}

var (
	accountRe  = regexp.MustCompile(`^[0-9]{12}$`)
	rootRe     = regexp.MustCompile(`^arn:aws:iam::([0-9]{12}):root$`)
	userRe     = regexp.MustCompile(`^arn:aws:iam::([0-9]{12}):user/[A-Za-z0-9+=,.@_/-]{1,512}$`)
	actionRe   = regexp.MustCompile(`^[A-Za-z0-9-]+:[A-Za-z0-9*?]+$`)
	ctxKeyName = regexp.MustCompile(`^[\x21-\x7e]{1,256}$`)
)

// operators maps each supported base operator (lower case) to its canonical
// name and whether it is negated.
var operators = map[string]struct {
	name    string
	negated bool
}{
	"stringequals":             {"StringEquals", false},
	"stringnotequals":          {"StringNotEquals", true},
	"stringequalsignorecase":   {"StringEqualsIgnoreCase", false},
	"stringlike":               {"StringLike", false},
	"stringnotlike":            {"StringNotLike", true},
	"bool":                     {"Bool", false},
	"numericequals":            {"NumericEquals", false},
	"numericlessthan":          {"NumericLessThan", false},
	"numericlessthanequals":    {"NumericLessThanEquals", false},
	"numericgreaterthan":       {"NumericGreaterThan", false},
	"numericgreaterthanequals": {"NumericGreaterThanEquals", false},
	"datelessthan":             {"DateLessThan", false},
	"dategreaterthan":          {"DateGreaterThan", false},
	"arnlike":                  {"ArnLike", false},
	"arnequals":                {"ArnEquals", false},
	"arnnotlike":               {"ArnNotLike", true},
	"arnnotequals":             {"ArnNotEquals", true},
	"ipaddress":                {"IpAddress", false},
	"notipaddress":             {"NotIpAddress", true},
	"null":                     {"Null", false},
}

// conditionKeys are the supported condition keys (lower case; condition key
// names are case-insensitive) besides kms:EncryptionContext:<key>.
var conditionKeys = map[string]bool{
	"kms:encryptioncontextkeys": true,
	"kms:calleraccount":         true,
	"kms:viaservice":            true,
	"kms:grantoperations":       true,
	"kms:grantisforawsresource": true,
	"kms:keyspec":               true,
	"kms:keyusage":              true,
	"kms:encryptionalgorithm":   true,
	"kms:signingalgorithm":      true,
	"kms:requestalias":          true,
	"kms:resourcealiases":       true,
	"aws:principalarn":          true,
	"aws:sourceip":              true,
}

const ecPrefix = "kms:encryptioncontext:"

// ParseKeyPolicy parses a key policy: every statement must have a Principal.
func ParseKeyPolicy(doc string) (*Policy, error) {
	p, err := Parse(doc)
	if err != nil {
		return nil, err
	}
	for _, s := range p.Statements {
		if !s.HasPrincipal {
			return nil, malformed("%s Statement %s has no Principal; every key policy statement needs one.", msgPrincipal, s.Name())
		}
	}
	return p, nil
}

// ParseIdentityPolicy parses an identity (IAM) policy: no statement may have
// a Principal, since the policy applies to the principal it is attached to.
func ParseIdentityPolicy(doc string) (*Policy, error) {
	p, err := Parse(doc)
	if err != nil {
		return nil, err
	}
	for _, s := range p.Statements {
		if s.HasPrincipal {
			return nil, malformed("Has prohibited field Principal: statement %s of an identity policy names a principal.", s.Name())
		}
	}
	return p, nil
}

// Parse parses a policy document. It accepts what the key and identity
// policies share; ParseKeyPolicy and ParseIdentityPolicy add the Principal
// rule of each.
func Parse(doc string) (*Policy, error) {
	if len(doc) > MaxPolicySize {
		return nil, malformed("Policy document is %d bytes; the limit is %d.", len(doc), MaxPolicySize)
	}
	if strings.TrimSpace(doc) == "" {
		return nil, malformed("%s The policy document is empty.", msgSyntax)
	}
	top, err := decodeObject([]byte(doc))
	if err != nil {
		return nil, malformed("%s %v", msgSyntax, err)
	}
	p := &Policy{}
	var stmts []any
	for _, k := range sortedKeys(top) {
		v := top[k]
		switch k {
		case "Version":
			s, ok := v.(string)
			if !ok || (s != "2012-10-17" && s != "2008-10-17") {
				return nil, malformed("The policy Version must be \"2012-10-17\" or \"2008-10-17\".")
			}
			p.Version = s
		case "Id":
			s, ok := v.(string)
			if !ok {
				return nil, malformed("%s Id must be a string.", msgSyntax)
			}
			p.ID = s
		case "Statement":
			switch t := v.(type) {
			case map[string]any:
				stmts = []any{t}
			case []any:
				stmts = t
			default:
				return nil, malformed("%s Statement must be an object or a list of objects.", msgSyntax)
			}
		default:
			return nil, malformed("%s Unknown policy element %q.", msgSyntax, k)
		}
	}
	if p.Version == "" {
		p.Version = "2008-10-17" // AWS's default when Version is absent
	}
	if stmts == nil {
		return nil, malformed("%s The policy has no Statement.", msgSyntax)
	}
	if len(stmts) == 0 {
		return nil, malformed("%s Statement is an empty list.", msgSyntax)
	}
	sids := map[string]bool{}
	for i, raw := range stmts {
		m, ok := raw.(map[string]any)
		if !ok {
			return nil, malformed("%s Statement #%d is not an object.", msgSyntax, i)
		}
		s, err := parseStatement(i, m)
		if err != nil {
			return nil, err
		}
		if s.Sid != "" {
			if sids[s.Sid] {
				return nil, malformed("Statement IDs (SID) in a single policy must be unique: %q repeats.", s.Sid)
			}
			sids[s.Sid] = true
		}
		p.Statements = append(p.Statements, s)
	}
	return p, nil
}

// decodeObject decodes a JSON object, keeping numbers as text and refusing
// trailing data and duplicate keys.
func decodeObject(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	v, err := decodeValue(d, 0)
	if err != nil {
		return nil, err
	}
	if _, err := d.Token(); err == nil {
		return nil, fmt.Errorf("data after the policy's closing brace")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the policy is not a JSON object")
	}
	return m, nil
}

func decodeValue(d *json.Decoder, depth int) (any, error) {
	if depth > 32 {
		return nil, fmt.Errorf("JSON nested too deeply")
	}
	t, err := d.Token()
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	switch t := t.(type) {
	case json.Delim:
		switch t {
		case '{':
			m := map[string]any{}
			for d.More() {
				kt, err := d.Token()
				if err != nil {
					return nil, fmt.Errorf("invalid JSON: %v", err)
				}
				k, _ := kt.(string)
				if _, dup := m[k]; dup {
					return nil, fmt.Errorf("duplicate key %q", k)
				}
				v, err := decodeValue(d, depth+1)
				if err != nil {
					return nil, err
				}
				m[k] = v
			}
			if _, err := d.Token(); err != nil {
				return nil, fmt.Errorf("invalid JSON: %v", err)
			}
			return m, nil
		case '[':
			l := []any{}
			for d.More() {
				v, err := decodeValue(d, depth+1)
				if err != nil {
					return nil, err
				}
				l = append(l, v)
			}
			if _, err := d.Token(); err != nil {
				return nil, fmt.Errorf("invalid JSON: %v", err)
			}
			return l, nil
		}
		return nil, fmt.Errorf("invalid JSON")
	default:
		return t, nil
	}
}

// stringList reads a string or a non-empty list of strings.
func stringList(v any) ([]string, bool) {
	switch t := v.(type) {
	case string:
		return []string{t}, true
	case []any:
		if len(t) == 0 {
			return nil, false
		}
		out := make([]string, 0, len(t))
		for _, e := range t {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

func parseStatement(i int, m map[string]any) (*Statement, error) {
	s := &Statement{Index: i}
	if v, ok := m["Sid"]; ok {
		sid, ok := v.(string)
		if !ok {
			return nil, malformed("%s Statement #%d: Sid must be a string.", msgSyntax, i)
		}
		s.Sid = sid
	}
	for _, k := range sortedKeys(m) {
		switch k {
		case "Sid", "Effect", "Principal", "Action", "NotAction", "Resource", "NotResource", "Condition":
		case "NotPrincipal":
			return nil, malformed("Statement %s: NotPrincipal is not supported; use Principal with a Deny statement or a condition on aws:PrincipalArn.", s.Name())
		default:
			return nil, malformed("%s Statement %s: unknown element %q.", msgSyntax, s.Name(), k)
		}
	}
	switch e := m["Effect"]; e {
	case "Allow":
		s.Effect = Allow
	case "Deny":
		s.Effect = Deny
	case nil:
		return nil, malformed("%s Statement %s has no Effect.", msgSyntax, s.Name())
	default:
		return nil, malformed("%s Statement %s: Effect must be \"Allow\" or \"Deny\".", msgSyntax, s.Name())
	}
	if v, ok := m["Principal"]; ok {
		s.HasPrincipal = true
		ps, err := parsePrincipal(v)
		if err != nil {
			return nil, malformed("%s Statement %s: %v", msgPrincipal, s.Name(), err)
		}
		s.Principals = ps
	}
	a, hasA := m["Action"]
	na, hasNA := m["NotAction"]
	switch {
	case hasA && hasNA:
		return nil, malformed("%s Statement %s has both Action and NotAction.", msgSyntax, s.Name())
	case !hasA && !hasNA:
		return nil, malformed("%s Statement %s has no Action or NotAction.", msgSyntax, s.Name())
	}
	var err error
	if hasA {
		s.Actions, err = parseActions(a)
	} else {
		s.NotActions, err = parseActions(na)
	}
	if err != nil {
		return nil, malformed("Policy contains a statement with one or more invalid actions: statement %s: %v", s.Name(), err)
	}
	r, hasR := m["Resource"]
	nr, hasNR := m["NotResource"]
	switch {
	case hasR && hasNR:
		return nil, malformed("%s Statement %s has both Resource and NotResource.", msgSyntax, s.Name())
	case !hasR && !hasNR:
		return nil, malformed("%s Statement %s has no Resource or NotResource.", msgSyntax, s.Name())
	}
	if hasR {
		s.Resources, err = parseResources(r)
	} else {
		s.NotResources, err = parseResources(nr)
	}
	if err != nil {
		return nil, malformed("Policy contains a statement with one or more invalid resources: statement %s: %v", s.Name(), err)
	}
	if c, ok := m["Condition"]; ok {
		s.Conditions, err = parseConditions(c)
		if err != nil {
			return nil, malformed("Policy contains a statement with an invalid condition: statement %s: %v", s.Name(), err)
		}
	}
	return s, nil
}

func parsePrincipal(v any) ([]string, error) {
	if v == "*" {
		return []string{"*"}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("Principal must be \"*\" or an object such as {\"AWS\": ...}")
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("Principal is empty")
	}
	var out []string
	for k, pv := range m {
		if k != "AWS" {
			return nil, fmt.Errorf("principal type %q is not supported (only \"AWS\")", k)
		}
		list, ok := stringList(pv)
		if !ok {
			return nil, fmt.Errorf("Principal AWS must be a string or a non-empty list of strings")
		}
		for _, p := range list {
			switch {
			case p == "*":
				out = append(out, "*")
			case accountRe.MatchString(p):
				out = append(out, "arn:aws:iam::"+p+":root")
			case rootRe.MatchString(p), userRe.MatchString(p):
				out = append(out, p)
			default:
				return nil, fmt.Errorf("%q is not \"*\", an account ID, an account root ARN or an IAM user ARN", p)
			}
		}
	}
	return out, nil
}

func parseActions(v any) ([]string, error) {
	list, ok := stringList(v)
	if !ok {
		return nil, fmt.Errorf("actions must be a string or a non-empty list of strings")
	}
	for _, a := range list {
		if a != "*" && !actionRe.MatchString(a) {
			return nil, fmt.Errorf("%q is not \"*\" or service:action", a)
		}
	}
	return list, nil
}

func parseResources(v any) ([]string, error) {
	list, ok := stringList(v)
	if !ok {
		return nil, fmt.Errorf("resources must be a string or a non-empty list of strings")
	}
	for _, r := range list {
		if r == "*" {
			continue
		}
		if !strings.HasPrefix(r, "arn:") || strings.Count(r, ":") < 5 {
			return nil, fmt.Errorf("%q is not \"*\" or an ARN", r)
		}
	}
	return list, nil
}

func parseConditions(v any) ([]Condition, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("Condition must be an object of operators")
	}
	var out []Condition
	for _, op := range sortedKeys(m) {
		block := m[op]
		base, set, ifExists, err := parseOperator(op)
		if err != nil {
			return nil, err
		}
		bm, ok := block.(map[string]any)
		if !ok || len(bm) == 0 {
			return nil, fmt.Errorf("operator %s must map condition keys to values", op)
		}
		for _, key := range sortedKeys(bm) {
			raw := bm[key]
			if err := checkKey(key); err != nil {
				return nil, err
			}
			values, err := conditionValues(raw)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %v", op, key, err)
			}
			if base == "Null" && len(values) != 1 {
				return nil, fmt.Errorf("%s %s: Null takes one value, true or false", op, key)
			}
			for _, val := range values {
				if err := checkValue(base, val); err != nil {
					return nil, fmt.Errorf("%s %s: %v", op, key, err)
				}
			}
			out = append(out, Condition{Operator: op, Base: base, Set: set, IfExists: ifExists, Key: key, Values: values})
		}
	}
	return out, nil
}

// sortedKeys keeps parsing (and the first error reported) deterministic.
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func parseOperator(op string) (base string, set SetOp, ifExists bool, err error) {
	rest := op
	switch {
	case strings.HasPrefix(rest, "ForAnyValue:"):
		set, rest = AnyValue, strings.TrimPrefix(rest, "ForAnyValue:")
	case strings.HasPrefix(rest, "ForAllValues:"):
		set, rest = AllValues, strings.TrimPrefix(rest, "ForAllValues:")
	}
	if strings.HasSuffix(rest, "IfExists") {
		ifExists, rest = true, strings.TrimSuffix(rest, "IfExists")
	}
	o, ok := operators[strings.ToLower(rest)]
	if !ok || o.name != rest {
		return "", 0, false, fmt.Errorf("condition operator %q is not supported", op)
	}
	if o.name == "Null" && (ifExists || set != Single) {
		return "", 0, false, fmt.Errorf("condition operator %q: Null takes no prefix or IfExists", op)
	}
	return o.name, set, ifExists, nil
}

func checkKey(key string) error {
	lk := strings.ToLower(key)
	if conditionKeys[lk] {
		return nil
	}
	if strings.HasPrefix(lk, ecPrefix) {
		if name := key[len(ecPrefix):]; ctxKeyName.MatchString(name) && !strings.ContainsAny(name, "*?$") {
			return nil
		}
		return fmt.Errorf("condition key %q has an invalid encryption context key", key)
	}
	return fmt.Errorf("condition key %q is not supported", key)
}

// conditionValues reads a condition's values: a string, number or bool, or
// a non-empty list of them.
func conditionValues(v any) ([]string, error) {
	one := func(e any) (string, bool) {
		switch t := e.(type) {
		case string:
			return t, true
		case json.Number:
			return t.String(), true
		case bool:
			return strconv.FormatBool(t), true
		}
		return "", false
	}
	if l, ok := v.([]any); ok {
		if len(l) == 0 {
			return nil, fmt.Errorf("empty list of values")
		}
		out := make([]string, 0, len(l))
		for _, e := range l {
			s, ok := one(e)
			if !ok {
				return nil, fmt.Errorf("values must be strings, numbers or booleans")
			}
			out = append(out, s)
		}
		return out, nil
	}
	s, ok := one(v)
	if !ok {
		return nil, fmt.Errorf("values must be strings, numbers or booleans")
	}
	return []string{s}, nil
}

func checkValue(base, v string) error {
	if strings.Contains(v, "${") {
		return fmt.Errorf("policy variables (%q) are not supported", v)
	}
	switch base {
	case "Bool", "Null":
		if lv := strings.ToLower(v); lv != "true" && lv != "false" {
			return fmt.Errorf("%q is not true or false", v)
		}
	case "NumericEquals", "NumericLessThan", "NumericLessThanEquals", "NumericGreaterThan", "NumericGreaterThanEquals":
		if _, ok := parseNumber(v); !ok {
			return fmt.Errorf("%q is not a number", v)
		}
	case "DateLessThan", "DateGreaterThan":
		if _, ok := parseDate(v); !ok {
			return fmt.Errorf("%q is not a date (ISO 8601 or epoch seconds)", v)
		}
	case "IpAddress", "NotIpAddress":
		if _, ok := parsePrefix(v); !ok {
			return fmt.Errorf("%q is not an IP address or CIDR block", v)
		}
	case "ArnLike", "ArnEquals", "ArnNotLike", "ArnNotEquals":
		if v != "*" && (!strings.HasPrefix(v, "arn:") || strings.Count(v, ":") < 5) {
			return fmt.Errorf("%q is not an ARN", v)
		}
	}
	return nil
}

func parseNumber(v string) (float64, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || f != f {
		return 0, false
	}
	return f, true
}

func parseDate(v string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04Z07:00", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 && n < 1<<40 {
		return time.Unix(n, 0).UTC(), true
	}
	return time.Time{}, false
}

func parsePrefix(v string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(v); err == nil {
		return p.Masked(), true
	}
	if a, err := netip.ParseAddr(v); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}
