package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2026-12-01T00:00:00Z": time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		"1700000000":           time.Unix(1700000000, 0),
		"10m":                  now.Add(-10 * time.Minute),
		"24h":                  now.Add(-24 * time.Hour),
	} {
		got, err := parseSince(in, now)
		require.NoError(t, err, in)
		assert.True(t, want.Equal(got), "%s: %v, want %v", in, got, want)
	}
	for _, in := range []string{"", "yesterday", "-5m", "-3", "2026-12-01"} {
		_, err := parseSince(in, now)
		assert.Error(t, err, in)
	}
}
