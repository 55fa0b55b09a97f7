package api

import (
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

// returnedCKRs finds every CKR_ constant the module's code names
// (ck.CKR_X in a non-test Go file, whatever name the file imports ck
// under), by parsing the source tree, so a value the code starts returning
// is in this test without anyone adding it. It gives name -> value.
func returnedCKRs(t *testing.T) map[string]uint64 {
	t.Helper()
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	byName := map[string]uint64{}
	for v := uint64(0); v < 0x1000; v++ {
		if n := ck.RVName(v); !strings.HasPrefix(n, "CKR_0x") {
			byName[n] = v
		}
	}
	const ckPath = "github.com/openhsm/openhsm/ck"
	found := map[string]uint64{}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		local := ""
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == ckPath {
				local = "ck"
				if imp.Name != nil {
					local = imp.Name.Name
				}
			}
		}
		if local == "" || local == "_" {
			return nil
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok || !strings.HasPrefix(sel.Sel.Name, "CKR_") {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == local {
				v, known := byName[sel.Sel.Name]
				if !known {
					t.Errorf("%s: %s has no value this test can find; extend returnedCKRs", fset.Position(sel.Pos()), sel.Sel.Name)
				}
				found[sel.Sel.Name] = v
			}
			return true
		})
		return nil
	})
	require.NoError(t, err)
	// The scan must see the tree, not an empty folder.
	require.Contains(t, found, "CKR_ARGUMENTS_BAD")
	require.Contains(t, found, "CKR_PIN_INCORRECT")
	return found
}

// caseHeader tells the test server which error to answer with.
const caseHeader = "x-test-case"

// errServer answers Info with the error the request names, converted as
// hsmd converts a handler's error: by ToStatus, in an interceptor.
type errServer struct {
	hsmpb.UnimplementedHSMServer
	errs []error
}

func (s *errServer) Info(ctx context.Context, _ *hsmpb.Empty) (*hsmpb.InfoResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	i, err := strconv.Atoi(strings.Join(md.Get(caseHeader), ""))
	if err != nil || i < 0 || i >= len(s.errs) {
		return nil, errors.New("no such case")
	}
	return nil, s.errs[i]
}

// roundTrip serves errs on a real listener on 127.0.0.1 and returns, for
// each, what a client reads back (FromStatus) and the status it got.
func roundTrip(t *testing.T, errs []error) ([]error, []*status.Status) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		resp, err := h(ctx, req)
		if err != nil {
			return nil, ToStatus(err).Err()
		}
		return resp, nil
	}))
	hsmpb.RegisterHSMServer(srv, &errServer{errs: errs})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	hc := hsmpb.NewHSMClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make([]error, len(errs))
	sts := make([]*status.Status, len(errs))
	for i := range errs {
		_, err := hc.Info(metadata.AppendToOutgoingContext(ctx, caseHeader, strconv.Itoa(i)), &hsmpb.Empty{})
		require.Error(t, err)
		sts[i] = status.Convert(err)
		got[i] = FromStatus(err)
	}
	return got, sts
}

// Every CKR the code names has a row in the table, and comes back from a
// daemon to a client with its CKR and message, through a real gRPC server
// and client; its code is the table's.
func TestErrorRoundTripEveryCKR(t *testing.T) {
	found := returnedCKRs(t)
	var names []string
	for n := range found {
		if n != "CKR_OK" { // not an error: a status never carries it
			names = append(names, n)
		}
	}
	sort.Strings(names)
	t.Logf("%d CKR values in the code", len(names))
	errs := make([]error, len(names))
	for i, n := range names {
		rv := found[n]
		_, ok := hsmerr.Lookup(rv, "")
		assert.True(t, ok, "%s has no row in hsmerr/table.go", n)
		errs[i] = hsmerr.Errorf(rv, "refused (%s), with: a colon", strings.ToLower(n))
	}
	got, sts := roundTrip(t, errs)
	for i, n := range names {
		rv := found[n]
		var te *hsmerr.Error
		if !assert.True(t, errors.As(got[i], &te), "%s: %T", n, got[i]) {
			continue
		}
		assert.Equal(t, n, ck.RVName(te.RV), "CKR kept")
		assert.Equal(t, "refused ("+strings.ToLower(n)+"), with: a colon", te.Msg, "%s: message kept", n)
		assert.Empty(t, te.Reason, n)
		assert.Equal(t, hsmerr.CodeFor(rv, ""), sts[i].Code(), "%s: the table's code", n)
		assert.Equal(t, n, ck.RVName(Detail(sts[i]).GetCkr()), "%s: the ErrorDetail", n)
	}
}

// A reason survives the trip, so callers test it with errors.Is; and a
// daemon that sends no reason still says it by the code.
func TestErrorRoundTripReasons(t *testing.T) {
	var errs []error
	var reasons []hsmerr.Reason
	for _, r := range hsmerr.Rows() {
		if r.Reason != "" {
			errs = append(errs, hsmerr.Reasonf(r.Reason, "because %s", r.Reason))
			reasons = append(reasons, r.Reason)
		}
	}
	require.NotEmpty(t, reasons)
	got, sts := roundTrip(t, errs)
	for i, reason := range reasons {
		rv := hsmerr.RV(errs[i])
		assert.Equal(t, reason, hsmerr.ReasonOf(got[i]))
		assert.Equal(t, rv, hsmerr.RV(got[i]))
		assert.Equal(t, "because "+string(reason), got[i].(*hsmerr.Error).Msg)
		assert.Equal(t, hsmerr.CodeFor(rv, reason), sts[i].Code(), reason)
		assert.Equal(t, string(reason), Detail(sts[i]).GetReason())
	}
	assert.True(t, errors.Is(got[indexOf(reasons, hsmerr.ReasonUserExists)], hsmerr.ErrUserExists))
	assert.True(t, errors.Is(got[indexOf(reasons, hsmerr.ReasonNoSession)], hsmerr.ErrNoSession))
	assert.False(t, errors.Is(got[indexOf(reasons, hsmerr.ReasonNoSession)], hsmerr.ErrUserExists))

	// An older daemon: the CKR in the detail, no reason, the code.
	old, err := status.New(codes.Unauthenticated, "CKR_USER_NOT_LOGGED_IN: expired").WithDetails(&hsmpb.ErrorDetail{Ckr: ck.CKR_USER_NOT_LOGGED_IN})
	require.NoError(t, err)
	assert.True(t, errors.Is(FromStatus(old.Err()), hsmerr.ErrNoSession))
	role, err := status.New(codes.PermissionDenied, "CKR_USER_NOT_LOGGED_IN: officers only").WithDetails(&hsmpb.ErrorDetail{Ckr: ck.CKR_USER_NOT_LOGGED_IN})
	require.NoError(t, err)
	assert.False(t, errors.Is(FromStatus(role.Err()), hsmerr.ErrNoSession), "the wrong role is no lapsed session")
	// A reason that does not belong to the CKR is dropped.
	odd, err := status.New(codes.InvalidArgument, "x").WithDetails(&hsmpb.ErrorDetail{Ckr: ck.CKR_DATA_INVALID, Reason: string(hsmerr.ReasonUserExists)})
	require.NoError(t, err)
	assert.Empty(t, hsmerr.ReasonOf(FromStatus(odd.Err())))
}

func indexOf(rs []hsmerr.Reason, r hsmerr.Reason) int {
	for i, x := range rs {
		if x == r {
			return i
		}
	}
	return -1
}

// Anything but an *hsmerr.Error answers the one default, without its text.
func TestErrorRoundTripDefault(t *testing.T) {
	got, sts := roundTrip(t, []error{errors.New("disk full at /secret/path"), &hsmerr.Error{Msg: "no RV"}})
	for i := range got {
		assert.Equal(t, hsmerr.DefaultRV, hsmerr.RV(got[i]))
		assert.Equal(t, hsmerr.DefaultCode, sts[i].Code())
	}
	assert.Equal(t, InternalMessage, sts[0].Message())
	assert.NotContains(t, got[0].Error(), "secret")
}

func TestFromStatus(t *testing.T) {
	detail := func(code codes.Code, rv uint64, msg string) error {
		st, err := status.New(code, msg).WithDetails(&hsmpb.ErrorDetail{Ckr: rv})
		require.NoError(t, err)
		return st.Err()
	}
	for _, tc := range []struct {
		err error
		rv  uint64
		msg string
	}{
		{detail(codes.Unauthenticated, ck.CKR_PIN_INCORRECT, "wrong user name or password"), ck.CKR_PIN_INCORRECT, "wrong user name or password"},
		{detail(codes.NotFound, ck.CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID: no such key"), ck.CKR_KEY_HANDLE_INVALID, "no such key"},
		{detail(codes.NotFound, ck.CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID"), ck.CKR_KEY_HANDLE_INVALID, ""},
		{detail(codes.NotFound, ck.CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALIDATED: x"), ck.CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALIDATED: x"},
		// Without a detail, the code alone (hsmerr.FromCode).
		{status.Error(codes.Unauthenticated, "no session"), ck.CKR_USER_NOT_LOGGED_IN, "no session"},
		{status.Error(codes.PermissionDenied, "not a client certificate"), ck.CKR_FUNCTION_FAILED, "not a client certificate"},
		{status.Error(codes.Unavailable, "connection refused"), ck.CKR_DEVICE_ERROR, "connection refused"},
		{status.Error(codes.DeadlineExceeded, "slow"), ck.CKR_DEVICE_ERROR, "slow"},
		{status.Error(codes.InvalidArgument, "bad"), ck.CKR_ARGUMENTS_BAD, "bad"},
		{status.Error(codes.Internal, "oops"), ck.CKR_FUNCTION_FAILED, "oops"},
		// Not from gRPC.
		{context.DeadlineExceeded, ck.CKR_DEVICE_ERROR, "timed out"},
		{context.Canceled, ck.CKR_FUNCTION_FAILED, "canceled"},
		{errors.New("plain"), ck.CKR_FUNCTION_FAILED, "plain"},
	} {
		got := FromStatus(tc.err)
		var te *hsmerr.Error
		if !assert.True(t, errors.As(got, &te), "%v: %T", tc.err, got) {
			continue
		}
		assert.Equal(t, ck.RVName(tc.rv), ck.RVName(te.RV), "%v", tc.err)
		assert.Equal(t, tc.msg, te.Msg, "%v", tc.err)
	}
	assert.Nil(t, FromStatus(nil))
	te := hsmerr.Errorf(ck.CKR_KEY_HANDLE_INVALID, "x")
	assert.Same(t, te, FromStatus(te).(*hsmerr.Error), "an *hsmerr.Error passes as it is")
	assert.Nil(t, ToStatus(nil))
	assert.False(t, HasDetail(errors.New("x")))
	assert.False(t, HasDetail(status.Error(codes.Unavailable, "x")))
	assert.True(t, HasDetail(ToStatus(te).Err()))
}

// docs/rpc-api.md shows the error table row for row.
func TestDocTable(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "rpc-api.md"))
	require.NoError(t, err)
	var doc []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "| CKR_") {
			doc = append(doc, strings.TrimSpace(line))
		}
	}
	var want []string
	for _, r := range hsmerr.Rows() {
		var bare []string
		for _, c := range r.Bare {
			bare = append(bare, c.String())
		}
		reason := ""
		if r.Reason != "" {
			reason = "`" + string(r.Reason) + "`"
		}
		want = append(want, strings.Join([]string{"|", ck.RVName(r.RV), "|", reason, "|", r.Code.String(), "|", strings.Join(bare, ", "), "|", r.KMS, "|"}, " "))
	}
	norm := func(ls []string) []string {
		out := make([]string, len(ls))
		for i, l := range ls {
			out[i] = strings.Join(strings.Fields(l), " ")
		}
		return out
	}
	assert.Equal(t, norm(want), norm(doc), "docs/rpc-api.md's error table and hsmerr/table.go differ")
}
