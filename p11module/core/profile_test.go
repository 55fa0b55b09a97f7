package core

import (
	"os"
	"path/filepath"
	"runtime/pprof"
	"testing"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCPUProfile: [pkcs11] cpu_profile profiles the library from
// C_Initialize to C_Finalize into a file only its owner reads; a profile
// that cannot start fails C_Initialize and leaves the module
// uninitialized; a C_Initialize that fails later ends the profile it
// started.
func TestCPUProfile(t *testing.T) {
	cl := testcluster.Start(t, 1)
	dir := t.TempDir()
	withProfile := func(cfgPath, prof string) func() (*client.Config, error) {
		return func() (*client.Config, error) {
			cfg, err := client.LoadConfig(cfgPath)
			if err == nil {
				cfg.PKCS11.CPUProfile = prof
			}
			return cfg, err
		}
	}

	t.Run("written at Finalize", func(t *testing.T) {
		prof := filepath.Join(dir, "p11.pprof")
		m := NewModule()
		m.loadConfig = withProfile(cl.Env["HSM_CONFIG"], prof)
		require.NoError(t, m.Initialize(0))
		_, err := m.GetSlotList(true)
		require.NoError(t, err)
		require.NoError(t, m.Finalize())
		fi, err := os.Stat(prof)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
		b, err := os.ReadFile(prof)
		require.NoError(t, err)
		require.Greater(t, len(b), 2)
		assert.Equal(t, []byte{0x1f, 0x8b}, b[:2], "a pprof profile is gzipped protobuf")
	})

	t.Run("cannot start", func(t *testing.T) {
		m := NewModule()
		m.loadConfig = withProfile(cl.Env["HSM_CONFIG"], filepath.Join(dir, "no such dir", "p.pprof"))
		err := m.Initialize(0)
		require.Error(t, err)
		assert.Equal(t, uint64(ck.CKR_GENERAL_ERROR), hsmerr.RV(err))
		assert.Contains(t, initReport(err), "cpu_profile")
		_, err = m.GetSlotList(true)
		assert.Equal(t, uint64(ck.CKR_CRYPTOKI_NOT_INITIALIZED), hsmerr.RV(err))
	})

	t.Run("ended when Initialize fails", func(t *testing.T) {
		cfgPath := handoffFiles(t) // nodes nobody listens on
		m := NewModule()
		m.loadConfig = withProfile(cfgPath, filepath.Join(dir, "failed.pprof"))
		err := m.Initialize(0)
		require.Error(t, err)
		// The runtime runs one CPU profile at a time: this one starts only
		// if the failed Initialize ended its own.
		f, err := os.Create(filepath.Join(dir, "after.pprof"))
		require.NoError(t, err)
		defer f.Close()
		require.NoError(t, pprof.StartCPUProfile(f))
		pprof.StopCPUProfile()
	})
}
