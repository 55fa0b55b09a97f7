package suite

import (
	"testing"

	"github.com/openhsm/openhsm/internal/testcluster"
)

// TestMain removes the binaries the clusters were built from once the tests
// have run.
func TestMain(m *testing.M) { testcluster.Main(m) }
