package hsmd

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A passphrase or key file that others can read is refused before it is
// read, with a message that says how to fix it and never the secret.
func TestKEKFilePermissions(t *testing.T) {
	const secret = "correct horse battery staple"
	cases := []struct {
		name    string
		mode    os.FileMode
		dir     bool
		wantErr string
	}{
		{name: "owner only", mode: 0o600},
		{name: "owner read only", mode: 0o400},
		{name: "group readable", mode: 0o640, wantErr: "mode 0640"},
		{name: "world readable", mode: 0o644, wantErr: "chmod 600"},
		{name: "group writable", mode: 0o620, wantErr: "mode 0620"},
		{name: "a directory", dir: true, wantErr: "not a regular file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "passphrase")
			if tc.dir {
				require.NoError(t, os.Mkdir(path, 0o700))
			} else {
				require.NoError(t, os.WriteFile(path, []byte(secret+"\n"), 0o600))
				require.NoError(t, os.Chmod(path, tc.mode))
			}
			for _, cfg := range []*Config{{PassphraseFile: path}, {KeyFile: path}} {
				src, err := cfg.KEKSource()
				if tc.wantErr == "" {
					require.NoError(t, err)
					assert.Equal(t, secret, string(src.Passphrase))
					break // the passphrase is not a key file
				}
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.NotContains(t, err.Error(), secret)
			}
		})
	}
}
