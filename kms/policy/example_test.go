package policy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWorkedExample runs the worked example of docs/kms-access.md.
func TestWorkedExample(t *testing.T) {
	kp, err := ParseKeyPolicy(`{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
     "Action": "kms:*", "Resource": "*"},
    {"Sid": "App uses the key for billing", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::111122223333:user/app"},
     "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*"],
     "Resource": "*",
     "Condition": {"StringEquals": {"kms:EncryptionContext:purpose": "billing"}}},
    {"Sid": "Only from the office", "Effect": "Deny", "Principal": "*",
     "Action": "kms:Decrypt", "Resource": "*",
     "Condition": {"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}}}
  ]
}`)
	require.NoError(t, err)
	user := func(n string) string { return "arn:aws:iam::" + acct + ":user/" + n }
	r := func(who, action, ip string, ctx map[string]string) Request {
		return Request{Principal: user(who), Account: acct, Action: action, Resource: keyARN, EncryptionContext: ctx,
			Context: map[string][]string{"aws:SourceIp": {ip}}}
	}
	billing := map[string]string{"purpose": "billing"}

	d := Evaluate(r("app", "kms:Encrypt", "203.0.113.9", billing), kp, nil, nil)
	assert.Equal(t, Decision{true, `allowed by key policy statement "App uses the key for billing"`, NotDenied}, d)

	d = Evaluate(r("app", "kms:Decrypt", "198.51.100.1", billing), kp, nil, nil)
	assert.False(t, d.Allowed)
	assert.Contains(t, d.Reason, `explicit deny: key policy statement "Only from the office"`)

	d = Evaluate(r("ops", "kms:DescribeKey", "203.0.113.9", nil), kp, nil, nil)
	assert.False(t, d.Allowed)
	assert.Contains(t, d.Reason, "delegates kms:DescribeKey to account "+acct+", but no identity policy")

	id, err := ParseIdentityPolicy(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Describe*","Resource":"*"}]}`)
	require.NoError(t, err)
	id.Name = "ops-read"
	d = Evaluate(r("ops", "kms:DescribeKey", "203.0.113.9", nil), kp, []*Policy{id}, nil)
	assert.Equal(t, Decision{true, `allowed by key policy statement "Enable IAM User Permissions" (delegated to account ` + acct + `) and identity policy "ops-read" statement #0`, NotDenied}, d)

	g := []Grant{constrained(grant("g-batch", user("batch"), "Decrypt"), nil, billing)}
	assert.True(t, Evaluate(r("batch", "kms:Decrypt", "203.0.113.9", map[string]string{"purpose": "billing", "run": "42"}), kp, nil, g).Allowed)
	assert.False(t, Evaluate(r("batch", "kms:Decrypt", "203.0.113.9", map[string]string{"purpose": "audit"}), kp, nil, g).Allowed)
	d = Evaluate(r("batch", "kms:Decrypt", "198.51.100.1", billing), kp, nil, g)
	assert.False(t, d.Allowed)
	assert.Contains(t, d.Reason, "Only from the office")

	assert.NoError(t, LockoutCheck(kp, r("app", "", "203.0.113.9", nil)))
	only, err := ParseKeyPolicy(doc(st("App", "Allow", aws(user("app")), `["kms:Encrypt","kms:Decrypt"]`, "")))
	require.NoError(t, err)
	assert.EqualError(t, LockoutCheck(only, r("app", "", "203.0.113.9", nil)), LockoutMessage)
}
