package layering

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const module = "github.com/openhsm/openhsm/"

// order is docs/packages.md's table, top to bottom: a package may import
// only packages after it.
var order = []string{
	"hsmd", "metrics", "cluster", "cluster/peerpb", "backup",
	"kms/httpapi", "kms", "kms/call", "kms/xks", "api", "api/hsmpb", "engine", "state/sqlite", "state", "snapshot", "seal", "mech",
	"object", "quorum", "audit", "passwords", "hsmerr", "internal/fields", "kms/kmserr", "kms/blob", "kms/sigv4", "kms/model", "kms/policy", "ck",
}

// list runs go list in the module root.
func list(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).Output()
	require.NoError(t, err, "go list %v", args)
	return strings.Fields(string(out))
}

func TestLibraryAndClientLinkNoServerCode(t *testing.T) {
	forbidden := []string{module + "engine", module + "state", module + "state/sqlite", module + "seal",
		module + "snapshot", module + "hsmd", module + "backup", module + "cluster", "modernc.org/sqlite",
		module + "mech/ossl"} // libcrypto: only the daemon links it (docs/performance.md)
	for _, root := range []string{"../../p11module", "../../client", "../../p11module/cmd/openhsm-p11-helper"} {
		deps := list(t, "-deps", root)
		for _, d := range deps {
			for _, f := range forbidden {
				assert.False(t, d == f || strings.HasPrefix(d, f+"/"), "%s links %s", root, d)
			}
		}
	}
}

func TestNothingImportsUnderHsmd(t *testing.T) {
	lines := list(t, "-f", "{{.ImportPath}}:{{join .Imports \",\"}},{{join .TestImports \",\"}},{{join .XTestImports \",\"}}", "../../...")
	for _, l := range lines {
		pkg, imps, _ := strings.Cut(l, ":")
		if strings.HasPrefix(pkg, module+"hsmd") {
			continue
		}
		for _, imp := range strings.Split(imps, ",") {
			assert.False(t, strings.HasPrefix(imp, module+"hsmd/"), "%s imports %s", pkg, imp)
		}
	}
}

func TestDependenciesPointDown(t *testing.T) {
	rank := map[string]int{}
	for i, p := range order {
		rank[module+p] = i
	}
	for _, p := range order {
		imps := list(t, "-f", "{{join .Imports \" \"}}", "../../"+p)
		for _, imp := range imps {
			r, ok := rank[imp]
			if !ok {
				continue
			}
			assert.Greater(t, r, rank[module+p], "%s imports %s, which is above it in docs/packages.md", p, imp)
		}
	}
}
