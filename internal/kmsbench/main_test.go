//go:build bench

package kmsbench_test

import (
	"testing"

	"github.com/openhsm/openhsm/internal/testcluster"
)

// TestMain removes the binaries the clusters were built from once the
// benchmarks have run.
func TestMain(m *testing.M) { testcluster.Main(m) }
