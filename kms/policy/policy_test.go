package policy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	acct   = "111122223333"
	other  = "444455556666"
	root   = "arn:aws:iam::" + acct + ":root"
	alice  = "arn:aws:iam::" + acct + ":user/alice"
	bob    = "arn:aws:iam::" + acct + ":user/bob"
	carol  = "arn:aws:iam::" + other + ":user/carol"
	keyARN = "arn:aws:kms:us-east-1:" + acct + ":key/1234abcd-12ab-34cd-56ef-1234567890ab"
	key2   = "arn:aws:kms:us-east-1:" + acct + ":key/0987dcba-09fe-87dc-65ba-ab0987654321"
)

// doc wraps statements into a policy document.
func doc(stmts ...string) string {
	return `{"Version":"2012-10-17","Id":"test","Statement":[` + strings.Join(stmts, ",") + `]}`
}

// st is one statement: Resource "*" unless extra sets one; extra is any
// further members (a Condition, NotAction in place of Action, ...).
func st(sid, effect, principal, action, extra string) string {
	parts := []string{`"Effect":"` + effect + `"`}
	if sid != "" {
		parts = append(parts, `"Sid":"`+sid+`"`)
	}
	if principal != "" {
		parts = append(parts, `"Principal":`+principal)
	}
	if action != "" {
		parts = append(parts, `"Action":`+action)
	}
	if !strings.Contains(extra, `"Resource"`) && !strings.Contains(extra, `"NotResource"`) {
		parts = append(parts, `"Resource":"*"`)
	}
	if extra != "" {
		parts = append(parts, extra)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func aws(p ...string) string {
	q := make([]string, len(p))
	for i, s := range p {
		q[i] = `"` + s + `"`
	}
	if len(q) == 1 {
		return `{"AWS":` + q[0] + `}`
	}
	return `{"AWS":[` + strings.Join(q, ",") + `]}`
}

func cond(op, key, values string) string {
	return `"Condition":{"` + op + `":{"` + key + `":` + values + `}}`
}

// rootPolicy is AWS's default key policy: the account delegates to IAM.
var rootPolicy = doc(st("Enable IAM User Permissions", "Allow", aws(root), `"kms:*"`, ""))

// aliceCond allows alice kms:* under one condition.
func aliceCond(op, key, values string) string {
	return doc(st("C", "Allow", aws(alice), `"kms:*"`, cond(op, key, values)))
}

type req struct {
	principal, action, resource string
	ec                          map[string]string
	ctx                         map[string][]string
	newGrant                    *GrantConstraints // CreateGrant's new grant
}

func (r req) build() Request {
	out := Request{Principal: alice, Account: acct, Action: "kms:Encrypt", Resource: keyARN, EncryptionContext: r.ec, Context: r.ctx, NewGrant: r.newGrant}
	if r.principal != "" {
		out.Principal = r.principal
		out.Account = r.principal[len("arn:aws:iam::") : len("arn:aws:iam::")+12]
	}
	if r.action != "" {
		out.Action = r.action
	}
	if r.resource != "" {
		out.Resource = r.resource
	}
	return out
}

func ctx(kv ...string) map[string][]string {
	m := map[string][]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = append(m[kv[i]], kv[i+1])
	}
	return m
}

func ec(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func grant(id, grantee string, ops ...string) Grant {
	return Grant{ID: id, GranteePrincipal: grantee, Operations: ops}
}

func constrained(g Grant, equals, subset map[string]string) Grant {
	g.Constraints = &GrantConstraints{EncryptionContextEquals: equals, EncryptionContextSubset: subset}
	return g
}

type evalCase struct {
	name     string
	key      string   // key policy ("" for none)
	identity []string // the caller's identity policies
	grants   []Grant
	req      req
	allowed  bool
	reason   string // a substring of the decision's reason
}

var aliceEncrypt = doc(st("AllowAlice", "Allow", aws(alice), `"kms:Encrypt"`, ""))
var idAll = doc(st("IdAll", "Allow", "", `"kms:*"`, ""))

var evalCases = []evalCase{
	// Principals.
	{"user named directly", aliceEncrypt, nil, nil, req{}, true, `key policy statement "AllowAlice"`},
	{"another user of the account", aliceEncrypt, nil, nil, req{principal: bob}, false, "implicit deny: no key policy statement or grant allows kms:Encrypt to " + bob},
	{"principal star", doc(st("Any", "Allow", `"*"`, `"kms:Encrypt"`, "")), nil, nil, req{principal: bob}, true, `"Any"`},
	{"principal AWS star", doc(st("Any", "Allow", aws("*"), `"kms:Encrypt"`, "")), nil, nil, req{principal: carol}, true, `"Any"`},
	{"principal list", doc(st("Two", "Allow", aws(alice, bob), `"kms:Encrypt"`, "")), nil, nil, req{principal: bob}, true, `"Two"`},
	{"bare account ID delegates, identity allows", doc(st("Acct", "Allow", aws(acct), `"kms:*"`, "")), []string{idAll}, nil, req{}, true, `delegated to account ` + acct},
	{"root delegates, no identity policy", rootPolicy, nil, nil, req{}, false, "no identity policy of " + alice},
	{"root delegates, identity allows another action", rootPolicy, []string{doc(st("D", "Allow", "", `"kms:Decrypt"`, ""))}, nil, req{}, false, "delegates kms:Encrypt"},
	{"root delegates, identity allows kms:*", rootPolicy, []string{idAll}, nil, req{}, true, `identity policy #0 statement "IdAll"`},
	{"root delegates, identity names the key", rootPolicy, []string{doc(st("K", "Allow", "", `"kms:Encrypt"`, `"Resource":"`+keyARN+`"`))}, nil, req{}, true, `statement "K"`},
	{"root delegates, identity names another key", rootPolicy, []string{doc(st("K", "Allow", "", `"kms:Encrypt"`, `"Resource":"`+key2+`"`))}, nil, req{}, false, "implicit deny"},
	{"other account's user, key delegates to ours", rootPolicy, []string{idAll}, nil, req{principal: carol}, false, "no key policy statement"},
	{"cross-account: key names the other account", doc(st("X", "Allow", aws("arn:aws:iam::"+other+":root"), `"kms:Encrypt"`, "")), []string{idAll}, nil, req{principal: carol}, true, "delegated to account " + other},
	{"cross-account without identity policy", doc(st("X", "Allow", aws("arn:aws:iam::"+other+":root"), `"kms:Encrypt"`, "")), nil, nil, req{principal: carol}, false, "no identity policy"},
	{"account root itself is direct", rootPolicy, nil, nil, req{principal: root}, true, `"Enable IAM User Permissions"`},
	{"no key policy", "", []string{idAll}, nil, req{}, false, "has no key policy"},
	{"statement without Sid is named by index", doc(st("", "Deny", aws(bob), `"kms:*"`, ""), st("", "Allow", aws(alice), `"kms:*"`, "")), nil, nil, req{}, true, "statement #1"},
	{"identity policy named in the reason", rootPolicy, []string{func() string { return idAll }()}, nil, req{action: "kms:Decrypt"}, true, "identity policy #0"},

	// Actions.
	{"kms:* allows Decrypt", doc(st("A", "Allow", aws(alice), `"kms:*"`, "")), nil, nil, req{action: "kms:Decrypt"}, true, `"A"`},
	{"prefix wildcard", doc(st("A", "Allow", aws(alice), `"kms:Gen*"`, "")), nil, nil, req{action: "kms:GenerateDataKey"}, true, `"A"`},
	{"suffix wildcard", doc(st("A", "Allow", aws(alice), `"kms:GenerateDataKey*"`, "")), nil, nil, req{action: "kms:GenerateDataKeyWithoutPlaintext"}, true, `"A"`},
	{"question mark matches one character", doc(st("A", "Allow", aws(alice), `"kms:?ncrypt"`, "")), nil, nil, req{}, true, `"A"`},
	{"question mark does not match Decrypt", doc(st("A", "Allow", aws(alice), `"kms:?ncrypt"`, "")), nil, nil, req{action: "kms:Decrypt"}, false, "implicit deny"},
	{"middle wildcard", doc(st("A", "Allow", aws(alice), `"kms:*Key*"`, "")), nil, nil, req{action: "kms:DescribeKey"}, true, `"A"`},
	{"action names are case-insensitive", doc(st("A", "Allow", aws(alice), `"KMS:encrypt"`, "")), nil, nil, req{}, true, `"A"`},
	{"action star", doc(st("A", "Allow", aws(alice), `"*"`, "")), nil, nil, req{action: "kms:ScheduleKeyDeletion"}, true, `"A"`},
	{"another service's actions do not match", doc(st("A", "Allow", aws(alice), `"s3:*"`, "")), nil, nil, req{}, false, "implicit deny"},
	{"action list", doc(st("A", "Allow", aws(alice), `["kms:Decrypt","kms:Encrypt"]`, "")), nil, nil, req{}, true, `"A"`},
	{"NotAction allows the others", doc(st("N", "Allow", aws(alice), "", `"NotAction":["kms:Decrypt"]`)), nil, nil, req{}, true, `"N"`},
	{"NotAction excludes its own", doc(st("N", "Allow", aws(alice), "", `"NotAction":"kms:Decrypt"`)), nil, nil, req{action: "kms:Decrypt"}, false, "implicit deny"},
	{"Deny NotAction denies the rest", doc(st("A", "Allow", aws(alice), `"kms:*"`, ""), st("OnlyEncrypt", "Deny", aws(alice), "", `"NotAction":"kms:Encrypt"`)), nil, nil, req{action: "kms:Decrypt"}, false, `explicit deny: key policy statement "OnlyEncrypt"`},
	{"Deny NotAction spares its own", doc(st("A", "Allow", aws(alice), `"kms:*"`, ""), st("OnlyEncrypt", "Deny", aws(alice), "", `"NotAction":"kms:Encrypt"`)), nil, nil, req{}, true, `"A"`},

	// Resources.
	{"resource is the key", doc(st("R", "Allow", aws(alice), `"kms:Encrypt"`, `"Resource":"`+keyARN+`"`)), nil, nil, req{}, true, `"R"`},
	{"resource is another key", doc(st("R", "Allow", aws(alice), `"kms:Encrypt"`, `"Resource":"`+key2+`"`)), nil, nil, req{}, false, "implicit deny"},
	{"resource wildcard ARN", doc(st("R", "Allow", aws(alice), `"kms:Encrypt"`, `"Resource":"arn:aws:kms:*:`+acct+`:key/*"`)), nil, nil, req{}, true, `"R"`},
	{"NotResource another key", doc(st("R", "Allow", aws(alice), `"kms:Encrypt"`, `"NotResource":"`+key2+`"`)), nil, nil, req{}, true, `"R"`},
	{"NotResource this key", doc(st("R", "Allow", aws(alice), `"kms:Encrypt"`, `"NotResource":["`+keyARN+`"]`)), nil, nil, req{}, false, "implicit deny"},

	// Explicit deny.
	{"deny wins over allow in the key policy", doc(st("A", "Allow", aws(alice), `"kms:*"`, ""), st("NoEnc", "Deny", aws(alice), `"kms:Encrypt"`, "")), nil, nil, req{}, false, `explicit deny: key policy statement "NoEnc" denies kms:Encrypt to ` + alice},
	{"identity deny wins over a direct key allow", aliceEncrypt, []string{doc(st("IdDeny", "Deny", "", `"kms:Encrypt"`, ""))}, nil, req{}, false, `explicit deny: identity policy #0 statement "IdDeny"`},
	{"deny wins over a grant", doc(st("NoEnc", "Deny", `"*"`, `"kms:Encrypt"`, "")), nil, []Grant{grant("g1", alice, "Encrypt")}, req{}, false, `explicit deny: key policy statement "NoEnc"`},
	{"deny for another principal does not apply", doc(st("A", "Allow", aws(alice), `"kms:*"`, ""), st("NoBob", "Deny", aws(bob), `"kms:*"`, "")), nil, nil, req{}, true, `"A"`},
	{"deny whose condition fails does not apply", doc(st("A", "Allow", aws(alice), `"kms:*"`, ""), st("NoVia", "Deny", `"*"`, `"kms:*"`, cond("StringEquals", "kms:ViaService", `"ec2.us-east-1.amazonaws.com"`))), nil, nil, req{}, true, `"A"`},
	{"deny everyone but alice: bob", doc(st("A", "Allow", `"*"`, `"kms:*"`, ""), st("OnlyAlice", "Deny", `"*"`, `"kms:*"`, cond("StringNotEquals", "aws:PrincipalArn", `"`+alice+`"`))), nil, nil, req{principal: bob}, false, `"OnlyAlice"`},
	{"deny everyone but alice: alice", doc(st("A", "Allow", `"*"`, `"kms:*"`, ""), st("OnlyAlice", "Deny", `"*"`, `"kms:*"`, cond("StringNotEquals", "aws:PrincipalArn", `"`+alice+`"`))), nil, nil, req{}, true, `"A"`},

	// Grants.
	{"grant allows its operation", rootPolicy, nil, []Grant{grant("g1", alice, "Encrypt", "Decrypt")}, req{}, true, "allowed by grant g1"},
	{"grant does not allow other operations", rootPolicy, nil, []Grant{grant("g1", alice, "Decrypt")}, req{}, false, "implicit deny"},
	{"grant is for another grantee", rootPolicy, nil, []Grant{grant("g1", bob, "Encrypt")}, req{}, false, "implicit deny"},
	{"grant for another key", rootPolicy, nil, []Grant{func() Grant { g := grant("g1", alice, "Encrypt"); g.KeyARN = key2; return g }()}, req{}, false, "implicit deny"},
	{"grant with no key policy", "", nil, []Grant{grant("g1", alice, "Encrypt")}, req{}, true, "grant g1"},
	{"second grant decides", rootPolicy, nil, []Grant{grant("g1", bob, "Encrypt"), grant("g2", alice, "Encrypt")}, req{}, true, "grant g2"},
	{"EncryptionContextEquals matches", rootPolicy, nil, []Grant{constrained(grant("g", alice, "Encrypt"), ec("dept", "fin"), nil)}, req{ec: ec("dept", "fin")}, true, "grant g"},
	{"EncryptionContextEquals refuses an extra pair", rootPolicy, nil, []Grant{constrained(grant("g", alice, "Encrypt"), ec("dept", "fin"), nil)}, req{ec: ec("dept", "fin", "x", "y")}, false, "implicit deny"},
	{"EncryptionContextEquals: key case does not matter", rootPolicy, nil, []Grant{constrained(grant("g", alice, "Decrypt"), ec("Dept", "fin"), nil)}, req{action: "kms:Decrypt", ec: ec("dept", "fin")}, true, "grant g"},
	{"EncryptionContextEquals: value case matters", rootPolicy, nil, []Grant{constrained(grant("g", alice, "Encrypt"), ec("dept", "fin"), nil)}, req{ec: ec("dept", "FIN")}, false, "implicit deny"},
	{"EncryptionContextEquals refuses no context", rootPolicy, nil, []Grant{constrained(grant("g", alice, "Encrypt"), ec("dept", "fin"), nil)}, req{}, false, "implicit deny"},
	{"EncryptionContextSubset allows extra pairs", rootPolicy, nil, []Grant{constrained(grant("g", alice, "GenerateDataKey"), nil, ec("dept", "fin"))}, req{action: "kms:GenerateDataKey", ec: ec("dept", "fin", "x", "y")}, true, "grant g"},
	{"EncryptionContextSubset refuses a missing pair", rootPolicy, nil, []Grant{constrained(grant("g", alice, "Encrypt"), nil, ec("dept", "fin", "team", "a"))}, req{ec: ec("dept", "fin")}, false, "implicit deny"},
	{"EncryptionContextSubset refuses a different value", rootPolicy, nil, []Grant{constrained(grant("g", alice, "Encrypt"), nil, ec("dept", "fin"))}, req{ec: ec("dept", "hr")}, false, "implicit deny"},
	{"EncryptionContextSubset refuses no context", rootPolicy, nil, []Grant{constrained(grant("g", alice, "Encrypt"), nil, ec("dept", "fin"))}, req{}, false, "implicit deny"},
	// A grant with CreateGrant allows only grants as narrow as itself.
	{"grant's CreateGrant: fewer operations", rootPolicy, nil, []Grant{grant("g", alice, "CreateGrant", "Encrypt", "Decrypt")}, req{action: "kms:CreateGrant", ctx: ctx("kms:GrantOperations", "Encrypt")}, true, "grant g"},
	{"grant's CreateGrant: an operation it lacks", rootPolicy, nil, []Grant{grant("g", alice, "CreateGrant", "Encrypt")}, req{action: "kms:CreateGrant", ctx: ctx("kms:GrantOperations", "Encrypt", "kms:GrantOperations", "Decrypt")}, false, "implicit deny"},
	{"grant's CreateGrant: Subset kept", rootPolicy, nil, []Grant{constrained(grant("g", alice, "CreateGrant", "Encrypt"), nil, ec("dept", "fin"))}, req{action: "kms:CreateGrant", ctx: ctx("kms:GrantOperations", "Encrypt"), newGrant: &GrantConstraints{EncryptionContextSubset: ec("dept", "fin", "team", "a")}}, true, "grant g"},
	{"grant's CreateGrant: Subset to Equals is stricter", rootPolicy, nil, []Grant{constrained(grant("g", alice, "CreateGrant", "Encrypt"), nil, ec("dept", "fin"))}, req{action: "kms:CreateGrant", ctx: ctx("kms:GrantOperations", "Encrypt"), newGrant: &GrantConstraints{EncryptionContextEquals: ec("Dept", "fin", "x", "y")}}, true, "grant g"},
	{"grant's CreateGrant: Subset dropped", rootPolicy, nil, []Grant{constrained(grant("g", alice, "CreateGrant", "Encrypt"), nil, ec("dept", "fin"))}, req{action: "kms:CreateGrant", ctx: ctx("kms:GrantOperations", "Encrypt")}, false, "implicit deny"},
	{"grant's CreateGrant: Subset widened", rootPolicy, nil, []Grant{constrained(grant("g", alice, "CreateGrant", "Encrypt"), nil, ec("dept", "fin", "team", "a"))}, req{action: "kms:CreateGrant", ctx: ctx("kms:GrantOperations", "Encrypt"), newGrant: &GrantConstraints{EncryptionContextSubset: ec("dept", "fin")}}, false, "implicit deny"},
	{"grant's CreateGrant: Equals kept", rootPolicy, nil, []Grant{constrained(grant("g", alice, "CreateGrant", "Decrypt"), ec("dept", "fin"), nil)}, req{action: "kms:CreateGrant", ctx: ctx("kms:GrantOperations", "Decrypt"), newGrant: &GrantConstraints{EncryptionContextEquals: ec("dept", "fin")}}, true, "grant g"},
	{"grant's CreateGrant: Equals to Subset is wider", rootPolicy, nil, []Grant{constrained(grant("g", alice, "CreateGrant", "Decrypt"), ec("dept", "fin"), nil)}, req{action: "kms:CreateGrant", ctx: ctx("kms:GrantOperations", "Decrypt"), newGrant: &GrantConstraints{EncryptionContextSubset: ec("dept", "fin")}}, false, "implicit deny"},
	{"grant's CreateGrant: Equals changed", rootPolicy, nil, []Grant{constrained(grant("g", alice, "CreateGrant", "Decrypt"), ec("dept", "fin"), nil)}, req{action: "kms:CreateGrant", ctx: ctx("kms:GrantOperations", "Decrypt"), newGrant: &GrantConstraints{EncryptionContextEquals: ec("dept", "fin", "x", "y")}}, false, "implicit deny"},
	{"key policy's CreateGrant is not narrowed", doc(st("Grants", "Allow", aws(alice), `"kms:CreateGrant"`, "")), nil, nil, req{action: "kms:CreateGrant", ctx: ctx("kms:GrantOperations", "Decrypt", "kms:GrantOperations", "Sign")}, true, `key policy statement "Grants"`},
	{"constraints do not apply to DescribeKey", rootPolicy, nil, []Grant{constrained(grant("g", alice, "DescribeKey"), nil, ec("dept", "fin"))}, req{action: "kms:DescribeKey"}, true, "grant g"},
	{"constraints do not apply to an asymmetric key", rootPolicy, nil, []Grant{constrained(grant("g", alice, "Encrypt"), ec("dept", "fin"), nil)}, req{ctx: ctx("kms:KeySpec", "RSA_2048")}, true, "grant g"},
	{"grant to the account with an identity allow", doc(st("Other", "Allow", aws(bob), `"kms:*"`, "")), []string{idAll}, []Grant{grant("g", root, "Encrypt")}, req{}, true, "grant g"},
	{"grant to the account without an identity allow", doc(st("Other", "Allow", aws(bob), `"kms:*"`, "")), nil, []Grant{grant("g", root, "Encrypt")}, req{}, false, "implicit deny"},

	// kms:EncryptionContext:<key>.
	{"EncryptionContext StringEquals", aliceCond("StringEquals", "kms:EncryptionContext:Dept", `"fin"`), nil, nil, req{ec: ec("Dept", "fin")}, true, `"C"`},
	{"EncryptionContext other value", aliceCond("StringEquals", "kms:EncryptionContext:Dept", `"fin"`), nil, nil, req{ec: ec("Dept", "hr")}, false, "implicit deny"},
	{"EncryptionContext key name is case-insensitive", aliceCond("StringEquals", "kms:EncryptionContext:Dept", `"fin"`), nil, nil, req{ec: ec("dept", "fin")}, true, `"C"`},
	{"EncryptionContext value is case-sensitive", aliceCond("StringEquals", "kms:EncryptionContext:Dept", `"fin"`), nil, nil, req{ec: ec("Dept", "Fin")}, false, "implicit deny"},
	{"EncryptionContext absent", aliceCond("StringEquals", "kms:EncryptionContext:Dept", `"fin"`), nil, nil, req{}, false, "implicit deny"},
	{"EncryptionContext values are ORed", aliceCond("StringEquals", "kms:EncryptionContext:Dept", `["hr","fin"]`), nil, nil, req{ec: ec("Dept", "fin")}, true, `"C"`},
	{"IfExists: absent passes", aliceCond("StringEqualsIfExists", "kms:EncryptionContext:Dept", `"fin"`), nil, nil, req{}, true, `"C"`},
	{"IfExists: present must match", aliceCond("StringEqualsIfExists", "kms:EncryptionContext:Dept", `"fin"`), nil, nil, req{ec: ec("Dept", "hr")}, false, "implicit deny"},
	{"IfExists with a negated operator", aliceCond("StringNotEqualsIfExists", "kms:ViaService", `"s3.us-east-1.amazonaws.com"`), nil, nil, req{ctx: ctx("kms:ViaService", "s3.us-east-1.amazonaws.com")}, false, "implicit deny"},

	// String operators.
	{"StringNotEquals: other value", aliceCond("StringNotEquals", "kms:ViaService", `"s3.us-east-1.amazonaws.com"`), nil, nil, req{ctx: ctx("kms:ViaService", "ec2.us-east-1.amazonaws.com")}, true, `"C"`},
	{"StringNotEquals: same value", aliceCond("StringNotEquals", "kms:ViaService", `"s3.us-east-1.amazonaws.com"`), nil, nil, req{ctx: ctx("kms:ViaService", "s3.us-east-1.amazonaws.com")}, false, "implicit deny"},
	{"StringNotEquals: absent key is true", aliceCond("StringNotEquals", "kms:ViaService", `"s3.us-east-1.amazonaws.com"`), nil, nil, req{}, true, `"C"`},
	{"StringEqualsIgnoreCase", aliceCond("StringEqualsIgnoreCase", "kms:EncryptionContext:Dept", `"FIN"`), nil, nil, req{ec: ec("Dept", "fin")}, true, `"C"`},
	{"StringEquals is case-sensitive", aliceCond("StringEquals", "kms:KeySpec", `"symmetric_default"`), nil, nil, req{ctx: ctx("kms:KeySpec", "SYMMETRIC_DEFAULT")}, false, "implicit deny"},
	{"StringLike", aliceCond("StringLike", "kms:ViaService", `"ec2.*.amazonaws.com"`), nil, nil, req{ctx: ctx("kms:ViaService", "ec2.eu-west-1.amazonaws.com")}, true, `"C"`},
	{"StringLike no match", aliceCond("StringLike", "kms:ViaService", `"ec2.*.amazonaws.com"`), nil, nil, req{ctx: ctx("kms:ViaService", "s3.eu-west-1.amazonaws.com")}, false, "implicit deny"},
	{"StringLike with ?", aliceCond("StringLike", "kms:RequestAlias", `"alias/app-?"`), nil, nil, req{ctx: ctx("kms:RequestAlias", "alias/app-1")}, true, `"C"`},
	{"StringNotLike: match refuses", aliceCond("StringNotLike", "kms:RequestAlias", `"alias/test-*"`), nil, nil, req{ctx: ctx("kms:RequestAlias", "alias/test-1")}, false, "implicit deny"},
	{"StringNotLike: no match allows", aliceCond("StringNotLike", "kms:RequestAlias", `"alias/test-*"`), nil, nil, req{ctx: ctx("kms:RequestAlias", "alias/prod-1")}, true, `"C"`},

	// Bool, Numeric, Date.
	{"Bool true", aliceCond("Bool", "kms:GrantIsForAWSResource", `true`), nil, nil, req{action: "kms:CreateGrant", ctx: ctx("kms:GrantIsForAWSResource", "true")}, true, `"C"`},
	{"Bool false refuses", aliceCond("Bool", "kms:GrantIsForAWSResource", `"true"`), nil, nil, req{action: "kms:CreateGrant", ctx: ctx("kms:GrantIsForAWSResource", "false")}, false, "implicit deny"},
	{"NumericEquals", aliceCond("NumericEquals", "kms:EncryptionContext:n", `7`), nil, nil, req{ec: ec("n", "7.0")}, true, `"C"`},
	{"NumericLessThan", aliceCond("NumericLessThan", "kms:EncryptionContext:n", `"10"`), nil, nil, req{ec: ec("n", "5")}, true, `"C"`},
	{"NumericLessThan refuses", aliceCond("NumericLessThan", "kms:EncryptionContext:n", `"10"`), nil, nil, req{ec: ec("n", "10")}, false, "implicit deny"},
	{"NumericLessThanEquals", aliceCond("NumericLessThanEquals", "kms:EncryptionContext:n", `"10"`), nil, nil, req{ec: ec("n", "10")}, true, `"C"`},
	{"NumericGreaterThan", aliceCond("NumericGreaterThan", "kms:EncryptionContext:n", `"10"`), nil, nil, req{ec: ec("n", "11")}, true, `"C"`},
	{"NumericGreaterThanEquals refuses", aliceCond("NumericGreaterThanEquals", "kms:EncryptionContext:n", `"10"`), nil, nil, req{ec: ec("n", "9.5")}, false, "implicit deny"},
	{"Numeric: a request value that is no number", aliceCond("NumericLessThan", "kms:EncryptionContext:n", `"10"`), nil, nil, req{ec: ec("n", "five")}, false, "implicit deny"},
	{"DateLessThan", aliceCond("DateLessThan", "kms:EncryptionContext:exp", `"2030-01-01T00:00:00Z"`), nil, nil, req{ec: ec("exp", "2026-12-06T10:00:00Z")}, true, `"C"`},
	{"DateGreaterThan refuses", aliceCond("DateGreaterThan", "kms:EncryptionContext:exp", `"2030-01-01T00:00:00Z"`), nil, nil, req{ec: ec("exp", "2026-12-06T10:00:00Z")}, false, "implicit deny"},
	{"Date in epoch seconds", aliceCond("DateGreaterThan", "kms:EncryptionContext:exp", `"1700000000"`), nil, nil, req{ec: ec("exp", "2026-12-06T10:00:00Z")}, true, `"C"`},

	// ARN and IP operators.
	{"ArnLike on the principal", aliceCond("ArnLike", "aws:PrincipalArn", `"arn:aws:iam::`+acct+`:user/*"`), nil, nil, req{}, true, `"C"`},
	{"ArnLike: another user", aliceCond("ArnLike", "aws:PrincipalArn", `"arn:aws:iam::*:user/bob*"`), nil, nil, req{}, false, "implicit deny"},
	{"ArnLike other account", doc(st("C", "Allow", `"*"`, `"kms:*"`, cond("ArnLike", "aws:PrincipalArn", `"arn:aws:iam::`+acct+`:user/*"`))), nil, nil, req{principal: carol}, false, "implicit deny"},
	{"ArnEquals", aliceCond("ArnEquals", "aws:PrincipalArn", `"`+alice+`"`), nil, nil, req{}, true, `"C"`},
	{"ArnNotEquals", aliceCond("ArnNotEquals", "aws:PrincipalArn", `"`+alice+`"`), nil, nil, req{}, false, "implicit deny"},
	{"IpAddress in CIDR", aliceCond("IpAddress", "aws:SourceIp", `"10.0.0.0/8"`), nil, nil, req{ctx: ctx("aws:SourceIp", "10.1.2.3")}, true, `"C"`},
	{"IpAddress outside CIDR", aliceCond("IpAddress", "aws:SourceIp", `"10.0.0.0/8"`), nil, nil, req{ctx: ctx("aws:SourceIp", "192.168.1.1")}, false, "implicit deny"},
	{"IpAddress single address", aliceCond("IpAddress", "aws:SourceIp", `["192.0.2.7","10.0.0.0/8"]`), nil, nil, req{ctx: ctx("aws:SourceIp", "192.0.2.7")}, true, `"C"`},
	{"IpAddress IPv6", aliceCond("IpAddress", "aws:SourceIp", `"2001:db8::/32"`), nil, nil, req{ctx: ctx("aws:SourceIp", "2001:db8::1")}, true, `"C"`},
	{"NotIpAddress", aliceCond("NotIpAddress", "aws:SourceIp", `"10.0.0.0/8"`), nil, nil, req{ctx: ctx("aws:SourceIp", "10.9.9.9")}, false, "implicit deny"},
	{"IpAddress without a source IP", aliceCond("IpAddress", "aws:SourceIp", `"10.0.0.0/8"`), nil, nil, req{}, false, "implicit deny"},

	// Null.
	{"Null true: no context", aliceCond("Null", "kms:EncryptionContextKeys", `"true"`), nil, nil, req{}, true, `"C"`},
	{"Null true: a context", aliceCond("Null", "kms:EncryptionContextKeys", `"true"`), nil, nil, req{ec: ec("a", "b")}, false, "implicit deny"},
	{"Null false: a context", aliceCond("Null", "kms:EncryptionContextKeys", `false`), nil, nil, req{ec: ec("a", "b")}, true, `"C"`},

	// Multi-valued keys.
	{"ForAnyValue: one key matches", aliceCond("ForAnyValue:StringEquals", "kms:EncryptionContextKeys", `["A","B"]`), nil, nil, req{ec: ec("A", "1", "C", "2")}, true, `"C"`},
	{"ForAnyValue: none matches", aliceCond("ForAnyValue:StringEquals", "kms:EncryptionContextKeys", `["A","B"]`), nil, nil, req{ec: ec("C", "2")}, false, "implicit deny"},
	{"ForAnyValue: empty set is false", aliceCond("ForAnyValue:StringEquals", "kms:EncryptionContextKeys", `["A","B"]`), nil, nil, req{}, false, "implicit deny"},
	{"ForAnyValue: context keys are case-sensitive", aliceCond("ForAnyValue:StringEquals", "kms:EncryptionContextKeys", `"A"`), nil, nil, req{ec: ec("a", "1")}, false, "implicit deny"},
	{"ForAllValues: all keys allowed", aliceCond("ForAllValues:StringEquals", "kms:EncryptionContextKeys", `["A","B"]`), nil, nil, req{ec: ec("A", "1")}, true, `"C"`},
	{"ForAllValues: one key not allowed", aliceCond("ForAllValues:StringEquals", "kms:EncryptionContextKeys", `["A","B"]`), nil, nil, req{ec: ec("A", "1", "C", "2")}, false, "implicit deny"},
	{"ForAllValues: empty set is true", aliceCond("ForAllValues:StringEquals", "kms:EncryptionContextKeys", `["A","B"]`), nil, nil, req{}, true, `"C"`},
	{"ForAllValues in a Deny: empty set denies", doc(st("A", "Allow", aws(alice), `"kms:*"`, ""), st("D", "Deny", `"*"`, `"kms:*"`, cond("ForAllValues:StringEquals", "kms:EncryptionContextKeys", `"secret"`))), nil, nil, req{}, false, `explicit deny: key policy statement "D"`},
	{"ForAllValues with IfExists: empty set is true", aliceCond("ForAllValues:StringLikeIfExists", "kms:EncryptionContextKeys", `"app-*"`), nil, nil, req{}, true, `"C"`},
	{"ForAnyValue:StringLike on aliases", aliceCond("ForAnyValue:StringLike", "kms:ResourceAliases", `"alias/app-*"`), nil, nil, req{ctx: ctx("kms:ResourceAliases", "alias/x", "kms:ResourceAliases", "alias/app-1")}, true, `"C"`},
	{"ForAnyValue:StringNotEquals", aliceCond("ForAnyValue:StringNotEquals", "kms:ResourceAliases", `"alias/x"`), nil, nil, req{ctx: ctx("kms:ResourceAliases", "alias/x", "kms:ResourceAliases", "alias/y")}, true, `"C"`},
	{"ForAllValues:StringNotEquals", aliceCond("ForAllValues:StringNotEquals", "kms:ResourceAliases", `"alias/x"`), nil, nil, req{ctx: ctx("kms:ResourceAliases", "alias/x", "kms:ResourceAliases", "alias/y")}, false, "implicit deny"},
	{"GrantOperations within a set", aliceCond("ForAllValues:StringEquals", "kms:GrantOperations", `["Encrypt","Decrypt"]`), nil, nil, req{action: "kms:CreateGrant", ctx: ctx("kms:GrantOperations", "Encrypt", "kms:GrantOperations", "Decrypt")}, true, `"C"`},
	{"GrantOperations outside the set", aliceCond("ForAllValues:StringEquals", "kms:GrantOperations", `["Encrypt","Decrypt"]`), nil, nil, req{action: "kms:CreateGrant", ctx: ctx("kms:GrantOperations", "Encrypt", "kms:GrantOperations", "RetireGrant")}, false, "implicit deny"},

	// The other condition keys.
	{"CallerAccount is filled from the request", aliceCond("StringEquals", "kms:CallerAccount", `"`+acct+`"`), nil, nil, req{}, true, `"C"`},
	{"CallerAccount other account", doc(st("C", "Allow", `"*"`, `"kms:*"`, cond("StringEquals", "kms:CallerAccount", `"`+acct+`"`))), nil, nil, req{principal: carol}, false, "implicit deny"},
	{"condition key names are case-insensitive", aliceCond("StringEquals", "KMS:CALLERACCOUNT", `"`+acct+`"`), nil, nil, req{}, true, `"C"`},
	{"ViaService", aliceCond("StringEquals", "kms:ViaService", `"ec2.us-east-1.amazonaws.com"`), nil, nil, req{ctx: ctx("kms:ViaService", "ec2.us-east-1.amazonaws.com")}, true, `"C"`},
	{"KeySpec", aliceCond("StringEquals", "kms:KeySpec", `"SYMMETRIC_DEFAULT"`), nil, nil, req{ctx: ctx("kms:KeySpec", "SYMMETRIC_DEFAULT")}, true, `"C"`},
	{"KeyUsage", aliceCond("StringEquals", "kms:KeyUsage", `"SIGN_VERIFY"`), nil, nil, req{ctx: ctx("kms:KeyUsage", "ENCRYPT_DECRYPT")}, false, "implicit deny"},
	{"EncryptionAlgorithm", aliceCond("StringEquals", "kms:EncryptionAlgorithm", `"SYMMETRIC_DEFAULT"`), nil, nil, req{ctx: ctx("kms:EncryptionAlgorithm", "SYMMETRIC_DEFAULT")}, true, `"C"`},
	{"SigningAlgorithm", aliceCond("StringLike", "kms:SigningAlgorithm", `"ECDSA_*"`), nil, nil, req{action: "kms:Sign", ctx: ctx("kms:SigningAlgorithm", "RSASSA_PSS_SHA_256")}, false, "implicit deny"},
	{"RequestAlias", aliceCond("StringEquals", "kms:RequestAlias", `"alias/app"`), nil, nil, req{ctx: ctx("kms:RequestAlias", "alias/app")}, true, `"C"`},
	{"conditions are ANDed", doc(st("C", "Allow", aws(alice), `"kms:*"`, `"Condition":{"StringEquals":{"kms:ViaService":"ec2.us-east-1.amazonaws.com","kms:CallerAccount":"`+acct+`"},"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`)), nil, nil, req{ctx: ctx("kms:ViaService", "ec2.us-east-1.amazonaws.com", "aws:SourceIp", "11.0.0.1")}, false, "implicit deny"},
	{"conditions all hold", doc(st("C", "Allow", aws(alice), `"kms:*"`, `"Condition":{"StringEquals":{"kms:ViaService":"ec2.us-east-1.amazonaws.com","kms:CallerAccount":"`+acct+`"},"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`)), nil, nil, req{ctx: ctx("kms:ViaService", "ec2.us-east-1.amazonaws.com", "aws:SourceIp", "10.0.0.1")}, true, `"C"`},
	{"identity policy condition", rootPolicy, []string{doc(st("IdC", "Allow", "", `"kms:Decrypt"`, cond("StringEquals", "kms:EncryptionContext:app", `"billing"`)))}, nil, req{action: "kms:Decrypt", ec: ec("app", "billing")}, true, `statement "IdC"`},
	{"identity policy condition fails", rootPolicy, []string{doc(st("IdC", "Allow", "", `"kms:Decrypt"`, cond("StringEquals", "kms:EncryptionContext:app", `"billing"`)))}, nil, req{action: "kms:Decrypt", ec: ec("app", "other")}, false, "no identity policy"},
}

func TestEvaluateTable(t *testing.T) {
	require.GreaterOrEqual(t, len(evalCases), 80)
	names := map[string]bool{}
	for _, tc := range evalCases {
		t.Run(tc.name, func(t *testing.T) {
			require.False(t, names[tc.name], "duplicate case name")
			names[tc.name] = true
			var kp *Policy
			if tc.key != "" {
				var err error
				kp, err = ParseKeyPolicy(tc.key)
				require.NoError(t, err, tc.key)
			}
			var ids []*Policy
			for _, d := range tc.identity {
				p, err := ParseIdentityPolicy(d)
				require.NoError(t, err, d)
				ids = append(ids, p)
			}
			r := tc.req.build()
			got := Evaluate(r, kp, ids, tc.grants)
			assert.Equal(t, tc.allowed, got.Allowed, got.Reason)
			assert.Contains(t, got.Reason, tc.reason)
			if tc.allowed {
				assert.NotContains(t, got.Reason, "deny")
			}
			// Pure: the same inputs give the same decision.
			assert.Equal(t, got, Evaluate(r, kp, ids, tc.grants))
		})
	}
}

// TestReasonsHoldNoValues checks that reasons name statements and principals
// but never condition or context values.
func TestReasonsHoldNoValues(t *testing.T) {
	kp, err := ParseKeyPolicy(aliceCond("StringEquals", "kms:EncryptionContext:Dept", `"s3cr3t-value"`))
	require.NoError(t, err)
	for _, v := range []string{"s3cr3t-value", "other-s3cr3t"} {
		d := Evaluate(Request{Principal: alice, Account: acct, Action: "kms:Decrypt", Resource: keyARN, EncryptionContext: ec("Dept", v)}, kp, nil, nil)
		assert.NotContains(t, d.Reason, "s3cr3t")
	}
}

func TestLockoutCheck(t *testing.T) {
	caller := Request{Principal: alice, Account: acct, Resource: keyARN, Action: "kms:Encrypt"}
	cases := []struct {
		name string
		doc  string
		ok   bool
	}{
		{"caller may PutKeyPolicy", doc(st("Admin", "Allow", aws(alice), `["kms:PutKeyPolicy","kms:Encrypt"]`, "")), true},
		{"caller may kms:*", doc(st("Admin", "Allow", aws(alice), `"kms:*"`, "")), true},
		{"delegation to the caller's account", rootPolicy, true},
		{"principal star", doc(st("All", "Allow", `"*"`, `"kms:Put*"`, "")), true},
		{"only Encrypt", doc(st("Use", "Allow", aws(alice), `"kms:Encrypt"`, "")), false},
		{"someone else administers", doc(st("Admin", "Allow", aws(bob), `"kms:*"`, "")), false},
		{"another account administers", doc(st("Admin", "Allow", aws(other), `"kms:*"`, "")), false},
		{"an explicit deny of PutKeyPolicy", doc(st("Admin", "Allow", aws(alice), `"kms:*"`, ""), st("No", "Deny", `"*"`, `"kms:PutKeyPolicy"`, "")), false},
		{"NotAction excludes PutKeyPolicy", doc(st("Admin", "Allow", aws(alice), "", `"NotAction":"kms:PutKeyPolicy"`)), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseKeyPolicy(tc.doc)
			require.NoError(t, err)
			err = LockoutCheck(p, caller)
			if tc.ok {
				assert.NoError(t, err)
				return
			}
			var me *MalformedError
			require.ErrorAs(t, err, &me)
			assert.Equal(t, "The new key policy will not allow you to update the key policy in the future.", me.Message)
		})
	}
	assert.Error(t, LockoutCheck(nil, caller))
}

func TestParseShapes(t *testing.T) {
	// A single statement object, principals normalised, Version defaulted.
	p, err := Parse(`{"Statement":{"Effect":"Allow","Principal":{"AWS":"` + acct + `"},"Action":"kms:*","Resource":"*"}}`)
	require.NoError(t, err)
	assert.Equal(t, "2008-10-17", p.Version)
	require.Len(t, p.Statements, 1)
	assert.Equal(t, []string{root}, p.Statements[0].Principals)
	assert.Equal(t, "#0", p.Statements[0].Name())

	p, err = Parse(doc(st("S", "Deny", aws(alice, bob), `["kms:Encrypt"]`, cond("ForAnyValue:StringLikeIfExists", "kms:EncryptionContextKeys", `["a*",1,true]`))))
	require.NoError(t, err)
	c := p.Statements[0].Conditions[0]
	assert.Equal(t, Condition{Operator: "ForAnyValue:StringLikeIfExists", Base: "StringLike", Set: AnyValue, IfExists: true, Key: "kms:EncryptionContextKeys", Values: []string{"a*", "1", "true"}}, c)
	assert.Equal(t, "test", p.ID)
	assert.Equal(t, Deny, p.Statements[0].Effect)
}

func TestParseErrors(t *testing.T) {
	ok := func(extra string) string { return doc(st("S", "Allow", aws(alice), `"kms:*"`, extra)) }
	cases := []struct {
		name, doc, want string
	}{
		{"empty", "", "empty"},
		{"blank", "  \n", "empty"},
		{"not JSON", "Version: 1", "Syntax errors in policy"},
		{"truncated", `{"Statement":[`, "invalid JSON"},
		{"a list", `[]`, "not a JSON object"},
		{"trailing data", ok("") + `{}`, "data after"},
		{"duplicate key", `{"Statement":[],"Statement":[]}`, `duplicate key "Statement"`},
		{"too large", `{"Id":"` + strings.Repeat("x", MaxPolicySize) + `"}`, "the limit is 32768"},
		{"nested too deeply", `{"Id":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, "nested too deeply"},
		{"bad version", `{"Version":"2020-01-01","Statement":[]}`, "Version must be"},
		{"version not a string", `{"Version":2012,"Statement":[]}`, "Version must be"},
		{"Id not a string", `{"Id":1,"Statement":[]}`, "Id must be a string"},
		{"unknown element", `{"Version":"2012-10-17","Statment":[]}`, `Unknown policy element "Statment"`},
		{"no statement", `{"Version":"2012-10-17"}`, "no Statement"},
		{"empty statement list", `{"Statement":[]}`, "empty list"},
		{"statement a string", `{"Statement":"Allow"}`, "object or a list"},
		{"statement entry not an object", `{"Statement":["x"]}`, "#0 is not an object"},
		{"Sid not a string", doc(`{"Sid":1,"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}`), "Sid must be a string"},
		{"duplicate Sid", doc(st("S", "Allow", `"*"`, `"kms:*"`, ""), st("S", "Deny", `"*"`, `"kms:*"`, "")), `must be unique: "S"`},
		{"unknown statement element", doc(`{"Effect":"Allow","Principal":"*","Actions":"kms:*","Resource":"*"}`), `unknown element "Actions"`},
		{"no Effect", doc(`{"Principal":"*","Action":"kms:*","Resource":"*"}`), "has no Effect"},
		{"lower-case Effect", doc(st("S", "allow", `"*"`, `"kms:*"`, "")), `Effect must be "Allow" or "Deny"`},
		{"NotPrincipal", doc(`{"Effect":"Deny","NotPrincipal":{"AWS":"` + alice + `"},"Action":"kms:*","Resource":"*"}`), "NotPrincipal is not supported"},
		{"principal a bare string", doc(st("S", "Allow", `"`+alice+`"`, `"kms:*"`, "")), "invalid principals"},
		{"principal user name", doc(st("S", "Allow", aws("alice"), `"kms:*"`, "")), `"alice" is not`},
		{"principal role", doc(st("S", "Allow", aws("arn:aws:iam::"+acct+":role/r"), `"kms:*"`, "")), "invalid principals"},
		{"principal wildcard ARN", doc(st("S", "Allow", aws("arn:aws:iam::*:root"), `"kms:*"`, "")), "invalid principals"},
		{"principal short account", doc(st("S", "Allow", aws("12345"), `"kms:*"`, "")), "invalid principals"},
		{"service principal", doc(st("S", "Allow", `{"Service":"ec2.amazonaws.com"}`, `"kms:*"`, "")), `principal type "Service" is not supported`},
		{"empty principal", doc(st("S", "Allow", `{}`, `"kms:*"`, "")), "Principal is empty"},
		{"empty principal list", doc(st("S", "Allow", `{"AWS":[]}`, `"kms:*"`, "")), "non-empty list"},
		{"Action and NotAction", ok(`"NotAction":"kms:Decrypt"`), "both Action and NotAction"},
		{"no action", doc(st("S", "Allow", `"*"`, "", "")), "no Action or NotAction"},
		{"action without service", doc(st("S", "Allow", `"*"`, `"Encrypt"`, "")), "invalid actions"},
		{"empty action list", doc(st("S", "Allow", `"*"`, `[]`, "")), "invalid actions"},
		{"action a number", doc(st("S", "Allow", `"*"`, `5`, "")), "invalid actions"},
		{"no resource", doc(`{"Effect":"Allow","Principal":"*","Action":"kms:*"}`), "no Resource or NotResource"},
		{"Resource and NotResource", doc(`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","NotResource":"*"}`), "both Resource and NotResource"},
		{"resource not an ARN", doc(st("S", "Allow", `"*"`, `"kms:*"`, `"Resource":"key/1"`)), "invalid resources"},
		{"condition not an object", ok(`"Condition":"x"`), "Condition must be an object"},
		{"unknown operator", ok(cond("StringEqualz", "kms:ViaService", `"x"`)), `operator "StringEqualz" is not supported`},
		{"unknown set prefix", ok(cond("ForSomeValues:StringEquals", "kms:ViaService", `"x"`)), "is not supported"},
		{"operator case", ok(cond("stringequals", "kms:ViaService", `"x"`)), "is not supported"},
		{"Null with IfExists", ok(cond("NullIfExists", "kms:ViaService", `"true"`)), "Null takes no prefix or IfExists"},
		{"Null with two values", ok(cond("Null", "kms:ViaService", `["true","false"]`)), "Null takes one value"},
		{"Null not boolean", ok(cond("Null", "kms:ViaService", `"maybe"`)), `"maybe" is not true or false`},
		{"Bool not boolean", ok(cond("Bool", "kms:GrantIsForAWSResource", `"yes"`)), `"yes" is not true or false`},
		{"empty operator block", ok(`"Condition":{"StringEquals":{}}`), "must map condition keys"},
		{"unknown condition key", ok(cond("StringEquals", "aws:userid", `"x"`)), `condition key "aws:userid" is not supported`},
		{"empty context key", ok(cond("StringEquals", "kms:EncryptionContext:", `"x"`)), "invalid encryption context key"},
		{"wildcard context key", ok(cond("StringEquals", "kms:EncryptionContext:a*", `"x"`)), "invalid encryption context key"},
		{"value an object", ok(cond("StringEquals", "kms:ViaService", `{"a":"b"}`)), "values must be strings"},
		{"empty value list", ok(cond("StringEquals", "kms:ViaService", `[]`)), "empty list of values"},
		{"null value", ok(cond("StringEquals", "kms:ViaService", `null`)), "values must be strings"},
		{"number not a number", ok(cond("NumericLessThan", "kms:EncryptionContext:n", `"ten"`)), `"ten" is not a number`},
		{"date not a date", ok(cond("DateLessThan", "kms:EncryptionContext:d", `"tomorrow"`)), `"tomorrow" is not a date`},
		{"IP not an IP", ok(cond("IpAddress", "aws:SourceIp", `"300.1.1.1"`)), "is not an IP address or CIDR"},
		{"ARN not an ARN", ok(cond("ArnLike", "aws:PrincipalArn", `"alice"`)), `"alice" is not an ARN`},
		{"policy variable", ok(cond("StringEquals", "aws:PrincipalArn", `"arn:aws:iam::`+acct+`:user/${aws:username}"`)), "policy variables"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse(tc.doc)
			require.Error(t, err)
			assert.Nil(t, p)
			var me *MalformedError
			require.ErrorAs(t, err, &me)
			assert.Contains(t, me.Message, tc.want)
		})
	}
	t.Run("key policy without principal", func(t *testing.T) {
		_, err := ParseKeyPolicy(doc(st("NoP", "Allow", "", `"kms:*"`, "")))
		require.ErrorContains(t, err, "Policy contains a statement with one or more invalid principals.")
		assert.ErrorContains(t, err, `"NoP" has no Principal`)
	})
	t.Run("identity policy with principal", func(t *testing.T) {
		_, err := ParseIdentityPolicy(rootPolicy)
		require.ErrorContains(t, err, "Has prohibited field Principal")
	})
	t.Run("first fault is reported, the same each time", func(t *testing.T) {
		d := doc(st("S", "Allow", `"*"`, `"kms:*"`, `"Condition":{"Bogus":{"x":"y"},"StringEquals":{"aws:nope":"y"}}`))
		_, err1 := Parse(d)
		for i := 0; i < 20; i++ {
			_, err := Parse(d)
			assert.Equal(t, err1, err)
		}
	})
}

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		want bool
	}{
		{"*", "", true}, {"", "", true}, {"", "a", false}, {"a*b*c", "aXbYc", true},
		{"a*b*c", "aXbY", false}, {"?", "", false}, {"a?c", "abc", true}, {"**a", "ba", true},
		{strings.Repeat("*a", 30) + "b", strings.Repeat("a", 200), false},
	} {
		assert.Equal(t, tc.want, glob(tc.p, tc.s, false), fmt.Sprintf("%q ~ %q", tc.p, tc.s))
	}
	// ArnLike matches part by part: a wildcard never spans a colon.
	assert.True(t, arnMatch("arn:aws:iam::*:user/*", alice))
	assert.False(t, arnMatch("arn:aws:*:user/alice:x:y", alice))
	assert.False(t, arnMatch("arn:aws:iam::"+acct+":user/alice", "not-an-arn"))
}

// TestDenialKinds: each denied decision says which kind of policy refused,
// for AWS's AccessDeniedException message.
func TestDenialKinds(t *testing.T) {
	kp := func(d string) *Policy { p, err := ParseKeyPolicy(d); require.NoError(t, err); return p }
	ip := func(d string) *Policy { p, err := ParseIdentityPolicy(d); require.NoError(t, err); return p }
	r := Request{Principal: alice, Account: acct, Action: "kms:Encrypt", Resource: keyARN}
	for _, tc := range []struct {
		name     string
		key      *Policy
		identity []*Policy
		want     Denial
	}{
		{"allowed", kp(aliceEncrypt), nil, NotDenied},
		{"key policy denies", kp(doc(st("D", "Deny", `"*"`, `"kms:*"`, ""), st("A", "Allow", aws(alice), `"kms:*"`, ""))), nil, ExplicitDenyResource},
		{"identity denies", kp(rootPolicy), []*Policy{ip(doc(st("D", "Deny", "", `"kms:Encrypt"`, "")))}, ExplicitDenyIdentity},
		{"no key statement", kp(doc(st("A", "Allow", aws(bob), `"kms:*"`, ""))), nil, NoResourcePolicyAllows},
		{"delegated, no identity allow", kp(rootPolicy), nil, NoIdentityPolicyAllows},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Evaluate(r, tc.key, tc.identity, nil)
			assert.Equal(t, tc.want, d.Denial, d.Reason)
			assert.Equal(t, tc.want == NotDenied, d.Allowed)
		})
	}
}

// TestEvaluateIdentity is the IAM-only decision as a table.
func TestEvaluateIdentity(t *testing.T) {
	ip := func(d string) *Policy { p, err := ParseIdentityPolicy(d); require.NoError(t, err); return p }
	for _, tc := range []struct {
		name     string
		identity []*Policy
		action   string
		resource string
		allowed  bool
		want     Denial
		reason   string
	}{
		{"no identity policy", nil, "kms:CreateKey", "*", false, NoIdentityPolicyAllows, "implicit deny: no identity policy of " + alice + " allows kms:CreateKey"},
		{"kms:* allows", []*Policy{ip(idAll)}, "kms:CreateKey", "*", true, NotDenied, `statement "IdAll"`},
		{"other action", []*Policy{ip(doc(st("L", "Allow", "", `"kms:List*"`, "")))}, "kms:CreateKey", "*", false, NoIdentityPolicyAllows, "implicit deny"},
		{"wildcard action", []*Policy{ip(doc(st("L", "Allow", "", `"kms:List*"`, "")))}, "kms:ListAliases", "*", true, NotDenied, `"L"`},
		{"deny wins", []*Policy{ip(idAll), ip(doc(st("D", "Deny", "", `"kms:CreateKey"`, "")))}, "kms:CreateKey", "*", false, ExplicitDenyIdentity, `explicit deny: identity policy #1 statement "D"`},
		{"alias resource matches", []*Policy{ip(doc(st("A", "Allow", "", `"kms:CreateAlias"`, `"Resource":"arn:aws:kms:*:`+acct+`:alias/app-*"`)))}, "kms:CreateAlias", "arn:aws:kms:us-east-1:" + acct + ":alias/app-1", true, NotDenied, `"A"`},
		{"alias resource differs", []*Policy{ip(doc(st("A", "Allow", "", `"kms:CreateAlias"`, `"Resource":"arn:aws:kms:*:`+acct+`:alias/app-*"`)))}, "kms:CreateAlias", "arn:aws:kms:us-east-1:" + acct + ":alias/ops", false, NoIdentityPolicyAllows, "implicit deny"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := EvaluateIdentity(Request{Principal: alice, Account: acct, Action: tc.action, Resource: tc.resource}, tc.identity)
			assert.Equal(t, tc.allowed, d.Allowed, d.Reason)
			assert.Equal(t, tc.want, d.Denial)
			assert.Contains(t, d.Reason, tc.reason)
		})
	}
}

func TestDeniedMessage(t *testing.T) {
	r := Request{Principal: alice, Action: "kms:Encrypt", Resource: keyARN}
	for _, tc := range []struct {
		denial Denial
		res    string
		want   string
	}{
		{NoResourcePolicyAllows, keyARN, "User: " + alice + " is not authorized to perform: kms:Encrypt on resource: " + keyARN + " because no resource-based policy allows the kms:Encrypt action"},
		{ExplicitDenyResource, keyARN, "User: " + alice + " is not authorized to perform: kms:Encrypt on resource: " + keyARN + " with an explicit deny in a resource-based policy"},
		{ExplicitDenyIdentity, keyARN, "User: " + alice + " is not authorized to perform: kms:Encrypt on resource: " + keyARN + " with an explicit deny in an identity-based policy"},
		{NoIdentityPolicyAllows, keyARN, "User: " + alice + " is not authorized to perform: kms:Encrypt on resource: " + keyARN + " because no identity-based policy allows the kms:Encrypt action"},
		{NoIdentityPolicyAllows, "*", "User: " + alice + " is not authorized to perform: kms:Encrypt because no identity-based policy allows the kms:Encrypt action"},
	} {
		r.Resource = tc.res
		assert.Equal(t, tc.want, DeniedMessage(r, Decision{Denial: tc.denial}))
	}
}

func TestHasConditionKey(t *testing.T) {
	p, err := ParseKeyPolicy(doc(st("A", "Allow", `"*"`, `"kms:Encrypt"`, `"Condition":{"ForAnyValue:StringLike":{"kms:ResourceAliases":"alias/app-*"}}`)))
	require.NoError(t, err)
	assert.True(t, p.HasConditionKey("kms:ResourceAliases"))
	assert.True(t, p.HasConditionKey("KMS:resourcealiases"), "condition keys compare without case")
	assert.False(t, p.HasConditionKey("kms:RequestAlias"))
	named, err := ParseKeyPolicy(doc(st("kms:ResourceAliases", "Allow", `"*"`, `"kms:Encrypt"`, "")))
	require.NoError(t, err)
	assert.False(t, named.HasConditionKey("kms:ResourceAliases"), "a Sid is not a condition")
	var none *Policy
	assert.False(t, none.HasConditionKey("kms:ResourceAliases"))
}
