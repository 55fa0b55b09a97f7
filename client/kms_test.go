package client

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

// A name that breaks IAM's rule is refused before anything is sent (the
// zero Client has no connection to send on).
func TestKMSPrincipalNameRefusedLocally(t *testing.T) {
	c := &Client{}
	ctx := context.Background()
	for _, name := range []string{"", "a b", "a/b", "é"} {
		_, err := c.CreateKMSPrincipal(ctx, name)
		assert.Equal(t, uint64(ck.CKR_ARGUMENTS_BAD), hsmerr.RV(err), "create %q: %v", name, err)
		_, err = c.RotateKMSPrincipalKey(ctx, name)
		assert.Equal(t, uint64(ck.CKR_ARGUMENTS_BAD), hsmerr.RV(err), "rotate %q: %v", name, err)
		err = c.DeleteKMSPrincipal(ctx, name)
		assert.Equal(t, uint64(ck.CKR_ARGUMENTS_BAD), hsmerr.RV(err), "delete %q: %v", name, err)
	}
}

func TestKMSPrincipalFromPB(t *testing.T) {
	p := kmsPrincipalFromPB(&hsmpb.KMSPrincipal{Name: "ci", Arn: "arn:aws:iam::123456789012:user/ci", AccessKeyId: "AKIAEXAMPLE", CreatedUnix: 1700000000})
	assert.Equal(t, KMSPrincipal{Name: "ci", ARN: "arn:aws:iam::123456789012:user/ci", AccessKeyID: "AKIAEXAMPLE",
		Created: time.Unix(1700000000, 0).UTC()}, p)
	assert.True(t, kmsPrincipalFromPB(nil).Created.IsZero())
}
