package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/client"
)

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2026-12-01T00:00:00Z": time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		"1700000000":           time.Unix(1700000000, 0),
		"10m":                  now.Add(-10 * time.Minute),
		"24h":                  now.Add(-24 * time.Hour),
	} {
		got, err := parseSince(in, now)
		require.NoError(t, err, in)
		assert.True(t, want.Equal(got), "%s: %v, want %v", in, got, want)
	}
	for _, in := range []string{"", "yesterday", "-5m", "-3", "2026-12-01"} {
		_, err := parseSince(in, now)
		assert.Error(t, err, in)
	}
}

func TestAuditQueryFlags(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	const arn = "arn:aws:iam::123456789012:user/alice"
	for _, tc := range []struct {
		name string
		o    auditListOpts
		want client.AuditQuery
		err  string
	}{
		{"none", auditListOpts{}, client.AuditQuery{}, ""},
		{"principal", auditListOpts{principal: arn}, client.AuditQuery{User: arn}, ""},
		{"principal and the same user", auditListOpts{principal: arn, user: arn}, client.AuditQuery{User: arn}, ""},
		{"principal and another user", auditListOpts{principal: arn, user: "bob"}, client.AuditQuery{}, "give one"},
		{"key ID, kind, since", auditListOpts{key: "1234abcd", kind: "kms", since: "1h"},
			client.AuditQuery{Key: "1234abcd", Kind: "kms", Since: now.Add(-time.Hour)}, ""},
		{"since RFC 3339", auditListOpts{since: "2026-12-01T00:00:00Z", key: "arn:aws:kms:us-east-1:1:key/k"},
			client.AuditQuery{Key: "arn:aws:kms:us-east-1:1:key/k", Since: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}, ""},
		{"kinds", auditListOpts{kind: "use"}, client.AuditQuery{Kind: "use"}, ""},
		{"unknown kind", auditListOpts{kind: "kmss"}, client.AuditQuery{}, "not command, use or kms"},
		{"key with another kind", auditListOpts{kind: "command", key: "k"}, client.AuditQuery{}, "--kind kms"},
		{"bad since", auditListOpts{since: "yesterday"}, client.AuditQuery{}, "--since"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := auditQuery(tc.o, now)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.True(t, tc.want.Since.Equal(q.Since), "%v", q.Since)
			q.Since, tc.want.Since = time.Time{}, time.Time{}
			assert.Equal(t, tc.want, q)
		})
	}
}

func TestKeyIDOf(t *testing.T) {
	for in, want := range map[string]string{
		"arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab": "1234abcd-12ab",
		"arn:aws:kms:eu-west-1:123456789012:alias/x":           "arn:aws:kms:eu-west-1:123456789012:alias/x",
		"1234abcd": "1234abcd",
	} {
		assert.Equal(t, want, keyIDOf(in))
	}
}
