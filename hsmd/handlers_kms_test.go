package hsmd

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/openhsm/openhsm/api"
	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/internal/kmstest"
	"github.com/openhsm/openhsm/kms"
	"github.com/openhsm/openhsm/kms/kmserr"
	"github.com/openhsm/openhsm/object"
)

func kmsServer(t *testing.T, svc *kms.Service) *Server {
	t.Helper()
	return NewServer(nil, ServerConfig{Node: "n1", TTL: time.Minute, KMS: svc,
		Log: slog.New(slog.NewJSONHandler(&bytes.Buffer{}, nil))})
}

func as(role object.Role) context.Context {
	return context.WithValue(context.Background(), keyCaller, engine.Caller{User: "someone", Role: role, Session: 1})
}

// kmsCalls runs each principal call of s as the context's caller with
// name, and returns their errors by method.
func kmsCalls(ctx context.Context, s *Server, name string) map[string]error {
	req := &hsmpb.KMSPrincipalRequest{Name: name}
	out := map[string]error{}
	_, out["KMSCreatePrincipal"] = s.KMSCreatePrincipal(ctx, req)
	_, out["KMSListPrincipals"] = s.KMSListPrincipals(ctx, &hsmpb.Empty{})
	_, out["KMSDeletePrincipal"] = s.KMSDeletePrincipal(ctx, req)
	_, out["KMSRotatePrincipalKey"] = s.KMSRotatePrincipalKey(ctx, req)
	return out
}

// The principal calls are a crypto officer's, and a node without [kms]
// says so.
func TestKMSPrincipalHandlersRefuse(t *testing.T) {
	s := kmsServer(t, nil)
	for _, role := range []object.Role{object.RoleCU, 0} {
		for m, err := range kmsCalls(as(role), s, "alice") {
			assert.Equal(t, uint64(ck.CKR_USER_NOT_LOGGED_IN), hsmerr.RV(err), "%s as role %d: %v", m, role, err)
			assert.ErrorContains(t, err, "only a crypto officer", m)
		}
	}
	for m, err := range kmsCalls(as(object.RoleCO), s, "alice") {
		assert.Equal(t, uint64(ck.CKR_FUNCTION_NOT_SUPPORTED), hsmerr.RV(err), "%s: %v", m, err)
		assert.ErrorContains(t, err, "the KMS service is not enabled on this node: set [kms] in the node config", m)
	}
	// The answer on the wire carries the CKR and the message.
	_, err := s.KMSListPrincipals(as(object.RoleCO), &hsmpb.Empty{})
	back := api.FromStatus(api.ToStatus(err).Err())
	assert.Equal(t, uint64(ck.CKR_FUNCTION_NOT_SUPPORTED), hsmerr.RV(back))
	assert.ErrorContains(t, back, "set [kms] in the node config")
}

// On a node with KMS, a name that breaks IAM's rule is refused before
// the service sees it.
func TestKMSPrincipalHandlersCheckTheName(t *testing.T) {
	s := kmsServer(t, kmstest.Start(t).Service)
	for _, name := range []string{"", "has space", "a/b", string(make([]byte, 65))} {
		calls := kmsCalls(as(object.RoleCO), s, name)
		delete(calls, "KMSListPrincipals") // takes no name
		for m, err := range calls {
			assert.Equal(t, uint64(ck.CKR_ARGUMENTS_BAD), hsmerr.RV(err), "%s %q: %v", m, name, err)
			var fe *api.FieldError
			if assert.ErrorAs(t, err, &fe, "%s %q", m, name) {
				assert.Equal(t, "name", fe.Field)
			}
		}
	}
}

func TestKMSRefusal(t *testing.T) {
	notFound := kmsRefusal(kmserr.New(kmserr.NotFound, "arn:aws:iam::123456789012:user/bob does not exist"))
	assert.Equal(t, uint64(ck.CKR_OBJECT_HANDLE_INVALID), hsmerr.RV(notFound))
	assert.Equal(t, hsmerr.Reason("kms-not-found"), hsmerr.ReasonOf(notFound))
	assert.ErrorContains(t, notFound, "user/bob does not exist")
	exists := kmsRefusal(kmserr.New(kmserr.AlreadyExists, "bob exists"))
	assert.Equal(t, hsmerr.Reason("kms-already-exists"), hsmerr.ReasonOf(exists))

	// An engine error, an exception without a row of its own and any
	// other error pass as they are.
	eng := hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "no")
	assert.Same(t, eng, kmsRefusal(eng))
	internal := kmserr.New(kmserr.Internal, "boom")
	assert.Same(t, error(internal), kmsRefusal(internal))
	plain := errors.New("plain")
	assert.Same(t, plain, kmsRefusal(plain))
	assert.NoError(t, kmsRefusal(nil))
}
