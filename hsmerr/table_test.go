package hsmerr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"google.golang.org/grpc/codes"

	"github.com/openhsm/openhsm/ck"
)

// api's TestErrorRoundTripEveryCKR checks that every CKR the code names has
// a row and survives the trip; these check the table's own rules.

func TestTableRules(t *testing.T) {
	seen := map[rowKey]bool{}
	bareSeen := map[codes.Code]bool{}
	for _, r := range Rows() {
		k := rowKey{r.RV, r.Reason}
		assert.False(t, seen[k], "two rows for %s %q", ck.RVName(r.RV), r.Reason)
		seen[k] = true
		assert.NotEqual(t, ck.CKR_OK, r.RV, "CKR_OK is no error")
		assert.NotEqual(t, codes.OK, r.Code, "%s answers with an error code", ck.RVName(r.RV))
		if r.Reason != "" {
			_, base := Lookup(r.RV, "")
			assert.True(t, base, "reason %q refines %s, which has no row of its own", r.Reason, ck.RVName(r.RV))
		}
		for _, c := range r.Bare {
			assert.False(t, bareSeen[c], "%s is Bare in two rows", c)
			bareSeen[c] = true
		}
		if r.KMS != "" {
			assert.True(t, strings.HasSuffix(r.KMS, "Exception"), "%s: %q is an AWS exception name", ck.RVName(r.RV), r.KMS)
		}
		if strings.HasPrefix(string(r.Reason), "kms-") {
			assert.NotEmpty(t, r.KMS, "reason %q is the KMS's and names its exception", r.Reason)
			e := KMSf(r.KMS, "m")
			assert.Equal(t, r.Reason, e.Reason)
			assert.Equal(t, r.KMS, KMSException(e), "KMSf and KMSException agree")
		}
	}
	// The defaults are rows of their own, so they read back as themselves.
	_, ok := Lookup(DefaultRV, "")
	assert.True(t, ok)
	assert.Equal(t, DefaultCode, CodeFor(DefaultRV, ""))
}

func TestMappingsAndDefaults(t *testing.T) {
	// engine error -> CKR
	assert.Equal(t, uint64(ck.CKR_OK), RV(nil))
	assert.Equal(t, uint64(ck.CKR_KEY_HANDLE_INVALID), RV(fmt.Errorf("wrapped: %w", Errorf(ck.CKR_KEY_HANDLE_INVALID, "x"))))
	assert.Equal(t, DefaultRV, RV(errors.New("plain")))
	assert.Equal(t, DefaultRV, RV(context.Canceled))
	assert.Equal(t, DefaultRV, RV(&Error{Msg: "an *Error without an RV"}))
	// CKR -> code
	assert.Equal(t, codes.NotFound, Code(Errorf(ck.CKR_OBJECT_HANDLE_INVALID, "x")))
	assert.Equal(t, codes.PermissionDenied, Code(Errorf(ck.CKR_USER_NOT_LOGGED_IN, "wrong role")))
	assert.Equal(t, codes.Unauthenticated, Code(Reasonf(ReasonNoSession, "expired")))
	assert.Equal(t, codes.AlreadyExists, Code(Reasonf(ReasonUserExists, "bob")))
	assert.Equal(t, DefaultCode, CodeFor(0x7777, ""), "an RV without a row")
	assert.Equal(t, codes.InvalidArgument, CodeFor(ck.CKR_ARGUMENTS_BAD, "no-such-reason"), "an unknown reason counts as none")
	assert.Equal(t, DefaultCode, Code(errors.New("plain")))
	// code -> CKR, without an ErrorDetail
	rv, reason := FromCode(codes.Unauthenticated)
	assert.Equal(t, uint64(ck.CKR_USER_NOT_LOGGED_IN), rv)
	assert.Equal(t, ReasonNoSession, reason)
	rv, _ = FromCode(codes.DeadlineExceeded)
	assert.Equal(t, uint64(ck.CKR_DEVICE_ERROR), rv)
	rv, reason = FromCode(codes.Aborted)
	assert.Equal(t, DefaultRV, rv)
	assert.Empty(t, reason)
}

func TestReasons(t *testing.T) {
	e := Reasonf(ReasonUserExists, "user %q exists", "bob")
	assert.Equal(t, uint64(ck.CKR_ARGUMENTS_BAD), e.RV)
	assert.Equal(t, `CKR_ARGUMENTS_BAD: user "bob" exists`, e.Error())
	assert.ErrorIs(t, e, ErrUserExists)
	assert.ErrorIs(t, fmt.Errorf("create: %w", e), ErrUserExists)
	assert.NotErrorIs(t, e, ErrNoSession)
	assert.NotErrorIs(t, Errorf(ck.CKR_ARGUMENTS_BAD, "user %q already exists", "bob"), ErrUserExists, "the text means nothing")
	assert.NotErrorIs(t, &Error{RV: ck.CKR_DATA_INVALID, Reason: ReasonUserExists}, ErrUserExists, "a reason on another CKR")
	assert.True(t, KnownReason(ck.CKR_ARGUMENTS_BAD, ReasonUserExists))
	assert.False(t, KnownReason(ck.CKR_DATA_INVALID, ReasonUserExists))
	assert.False(t, KnownReason(ck.CKR_ARGUMENTS_BAD, ""))
	assert.Equal(t, ReasonUserExists, ReasonForCode(ck.CKR_ARGUMENTS_BAD, codes.AlreadyExists))
	assert.Empty(t, ReasonForCode(ck.CKR_ARGUMENTS_BAD, codes.InvalidArgument))
	// A reason the table does not know makes no reason.
	u := Reasonf("no-such-reason", "x")
	assert.Equal(t, DefaultRV, u.RV)
	assert.Empty(t, u.Reason)
}
