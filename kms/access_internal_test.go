package kms

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestEveryOperationHasAnAccessRule: the service answers no operation
// whose access is not in the table, and each row is well formed.
func TestEveryOperationHasAnAccessRule(t *testing.T) {
	for op := range operations {
		r, ok := accessRules[op]
		if !assert.True(t, ok, "%s has no access rule", op) {
			continue
		}
		assert.True(t, strings.HasPrefix(r.action, "kms:"), op)
		switch r.kind {
		case iamOnly:
			assert.Empty(t, r.members, "%s: an IAM-only operation names no key", op)
		default:
			assert.NotEmpty(t, r.members, "%s: a key operation names its key members", op)
			for m, a := range r.members {
				assert.True(t, strings.HasPrefix(a, "kms:"), "%s %s", op, m)
			}
		}
	}
}
