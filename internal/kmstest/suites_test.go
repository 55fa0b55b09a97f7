package kmstest_test

// The interop suites that drive the AWS CLI and boto3 (interop/awscli.sh,
// interop/boto3.sh) run here against the API served in the test's own
// process, with OPENHSM_KMS_GIVEN=1 and the server's AWS_* settings: a
// quick run of the same checks `make test` runs against a real cluster.

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/internal/kmstest"
	"github.com/openhsm/openhsm/internal/testcluster"
)

var closing = regexp.MustCompile(`(?m)^(\w+): (\d+) passed, (\d+) failed$`)

// runSuite runs interop/NAME.sh against srv and returns its output; it
// fails the test unless the suite passed at least minChecks checks and
// failed none.
func runSuite(t *testing.T, srv *kmstest.Server, name string, minChecks int) string {
	t.Helper()
	cmd := exec.Command("sh", filepath.Join(testcluster.Root(), "interop", name+".sh"))
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(append(env, srv.Env()...), "OPENHSM_KMS_GIVEN=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	text := out.String()
	require.NotContains(t, text, srv.SecretAccessKey, "the suite printed the secret access key")
	t.Logf("%s", text)
	require.NoError(t, err, "interop/%s.sh failed", name)
	m := closing.FindAllStringSubmatch(text, -1)
	require.NotEmpty(t, m, "no closing count")
	last := m[len(m)-1]
	assert.Equal(t, name, last[1])
	passed, _ := strconv.Atoi(last[2])
	assert.GreaterOrEqual(t, passed, minChecks, "fewer checks ran than the suite has")
	assert.Equal(t, "0", last[3])
	return text
}

// operations counts the requests the audit trail recorded as answered
// without an error, by operation, and those refused, by exception.
func operations(srv *kmstest.Server) (ops, refused map[string]int) {
	ops, refused = map[string]int{}, map[string]int{}
	for _, ev := range srv.Events() {
		if ev.Error == "" {
			ops[ev.Op]++
		} else {
			refused[ev.Error]++
		}
	}
	return ops, refused
}

var suiteOps = []string{"CreateKey", "DescribeKey", "ListKeys", "Encrypt", "Decrypt", "GenerateDataKey",
	"GenerateDataKeyWithoutPlaintext", "Sign", "Verify", "GetPublicKey", "CreateAlias", "UpdateAlias",
	"ListAliases", "DeleteAlias"}

var suiteRefusals = []string{"InvalidCiphertextException", "IncorrectKeyException", "ValidationException",
	"KMSInvalidSignatureException", "InvalidKeyUsageException", "AlreadyExistsException", "NotFoundException"}

// auditHas: the trail recorded each operation of the suites, and each
// refusal they check for.
func auditHas(t *testing.T, srv *kmstest.Server) {
	ops, refused := operations(srv)
	for _, op := range suiteOps {
		assert.Positive(t, ops[op], "the trail has no %s answered", op)
	}
	for _, e := range suiteRefusals {
		assert.Positive(t, refused[e], "the trail has no %s", e)
	}
}

func TestAWSCLISuite(t *testing.T) {
	t.Parallel()
	srv := kmstest.Start(t)
	runSuite(t, srv, "awscli", 44)
	auditHas(t, srv)
}

func TestBoto3Suite(t *testing.T) {
	t.Parallel()
	srv := kmstest.Start(t)
	runSuite(t, srv, "boto3", 40)
	auditHas(t, srv)
}
