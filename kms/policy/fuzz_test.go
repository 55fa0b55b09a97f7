package policy

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzParse: Parse never panics; a document that parses evaluates the same
// way twice and after parsing again, and refusals are MalformedErrors.
func FuzzParse(f *testing.F) {
	f.Add(rootPolicy)
	f.Add(aliceEncrypt)
	f.Add(`{"Statement":{"Effect":"Deny","Principal":"*","NotAction":["kms:Get*"],"NotResource":"arn:aws:kms:*:*:key/*"}}`)
	f.Add(aliceCond("ForAllValues:StringLikeIfExists", "kms:EncryptionContextKeys", `["a*","b?"]`))
	f.Add(aliceCond("IpAddress", "aws:SourceIp", `["10.0.0.0/8","2001:db8::/32"]`))
	f.Add(aliceCond("Null", "kms:EncryptionContext:x", `true`))
	f.Add(aliceCond("DateLessThan", "kms:EncryptionContext:d", `"2030-01-01"`))
	f.Add(`{"Statement":[{"Effect":"Allow","Principal":{"AWS":["111122223333"]},"Action":"*","Resource":"*","Condition":{"NumericLessThan":{"kms:EncryptionContext:n":1e3}}}]}`)
	f.Add(`{"Statement":[`)
	reqs := []Request{
		{Principal: alice, Account: acct, Action: "kms:Encrypt", Resource: keyARN},
		{Principal: carol, Account: other, Action: "kms:Decrypt", Resource: key2,
			EncryptionContext: map[string]string{"a": "1", "B": "2", "n": "5", "d": "2026-01-01T00:00:00Z"},
			Context:           map[string][]string{"aws:SourceIp": {"10.1.1.1"}, "kms:ResourceAliases": {"alias/a", "alias/b"}}},
	}
	grants := []Grant{constrained(grant("g", alice, "Encrypt"), nil, map[string]string{"a": "1"})}
	f.Fuzz(func(t *testing.T, d string) {
		p, err := Parse(d)
		if err != nil {
			var me *MalformedError
			require.ErrorAs(t, err, &me)
			require.NotEmpty(t, me.Message)
			return
		}
		again, err := Parse(d)
		require.NoError(t, err)
		require.Equal(t, p, again)
		for _, r := range reqs {
			d1 := Evaluate(r, p, []*Policy{p}, grants)
			require.Equal(t, d1, Evaluate(r, again, []*Policy{again}, grants))
			require.NotEmpty(t, d1.Reason)
			_ = LockoutCheck(p, r)
		}
	})
}
