package hsmd

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadKMSClockOffset(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name    string
		content *string // nil: no file
		want    time.Duration
		err     string
	}{
		{"missing file", nil, 0, ""},
		{"zero", ptr("0"), 0, ""},
		{"a day, newline", ptr("86400\n"), 24 * time.Hour, ""},
		{"spaces", ptr("  31  "), 31 * time.Second, ""},
		{"the bound", ptr("3153600000"), 3153600000 * time.Second, ""},
		{"past the bound", ptr("3153600001"), 0, "not a whole number of seconds from 0 to 3153600000"},
		{"negative", ptr("-1"), 0, "not a whole number"},
		{"fraction", ptr("1.5"), 0, "not a whole number"},
		{"empty", ptr(""), 0, "not a whole number"},
		{"words", ptr("tomorrow"), 0, "holds \"tomorrow\""},
		{"long", ptr("1234567890123456789012345678901234567890123456789012345678901234567890"), 0, "not a whole number"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, "clock-"+c.name)
			if c.content != nil {
				require.NoError(t, os.WriteFile(path, []byte(*c.content), 0o600))
			}
			d, err := readKMSClockOffset(path)
			if c.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), c.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, d)
		})
	}
}

func ptr(s string) *string { return &s }

// TestKMSClock: the clock follows its file, re-read at most every
// kmsClockReread; a file gone bad keeps the last good offset.
func TestKMSClock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clock")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	require.NoError(t, os.WriteFile(path, []byte("junk"), 0o600))
	_, err := newKMSClock(path, log)
	require.ErrorContains(t, err, "not a whole number", "a bad file at start stops the node")

	require.NoError(t, os.WriteFile(path, []byte("3600"), 0o600))
	c, err := newKMSClock(path, log)
	require.NoError(t, err)
	near := func(want time.Duration) bool {
		got := c.Now().Sub(time.Now())
		return got > want-time.Second && got < want+time.Second
	}
	assert.True(t, near(time.Hour))

	require.NoError(t, os.WriteFile(path, []byte("7200"), 0o600))
	assert.True(t, near(time.Hour), "read again only after %s", kmsClockReread)
	assert.Eventually(t, func() bool { return near(2 * time.Hour) }, 2*time.Second, 20*time.Millisecond)

	require.NoError(t, os.WriteFile(path, []byte("soon"), 0o600))
	time.Sleep(kmsClockReread + 50*time.Millisecond)
	assert.True(t, near(2*time.Hour), "a bad file keeps the last offset")

	require.NoError(t, os.Remove(path))
	assert.Eventually(t, func() bool { return near(0) }, 2*time.Second, 20*time.Millisecond, "a missing file is 0")
}
