package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// steps feeds a progress what a backup create -o reports.
func steps(p *progress) {
	p.update("write", 0, 2000)
	p.update("write", 1000, 2000)
	p.update("write", 2000, 2000)
	p.update("verify", 0, 2000)
	p.update("verify", 2000, 2000)
	p.update("download", 0, 4096)
	p.update("download", 1024, 4096)
	p.update("download", 4096, 4096)
	p.finish(true)
}

func TestProgressBar(t *testing.T) {
	var buf bytes.Buffer
	steps(&progress{w: &buf, bar: true})
	out := buf.String()
	// One bar per step, each redrawn in place (\r) and ended by a newline
	// once full.
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 3, "%q", out)
	for i, want := range []string{"writing the backup", "verifying it", "downloading"} {
		assert.Contains(t, lines[i], "\r", "step %d", i)
		assert.Contains(t, lines[i], want)
		last := lines[i][strings.LastIndex(lines[i], "\r")+1:]
		assert.Contains(t, last, "100% |██████", "the last drawing of %q", want)
	}
	assert.Contains(t, lines[0], "(2000/2000")
	assert.Contains(t, lines[2], "4.0 KiB")

	// A total that is not known: the bar counts, and is filled with what
	// was done when the step completes.
	buf.Reset()
	p := &progress{w: &buf, bar: true}
	p.update("upload", 0, 0)
	p.update("upload", 300, 0)
	p.finish(true)
	assert.Contains(t, buf.String(), "300/300 B")
	assert.True(t, strings.HasSuffix(buf.String(), "\n"))

	// A step that fails stops where it was, on a line of its own.
	buf.Reset()
	p = &progress{w: &buf, bar: true}
	p.update("download", 1024, 4096)
	p.finish(false)
	out = buf.String()
	assert.NotContains(t, out, "100%")
	assert.True(t, strings.HasSuffix(out, "\n"), "%q", out)
}

func TestProgressLines(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1e9, 0)
	steps(&progress{w: &buf, clock: func() time.Time { return now }})
	// No bar, no carriage return: lines a log keeps. The middle reports
	// come too fast to be printed; the first and last of each step are.
	assert.Equal(t, `write: 0/2000 (0%)
write: 2000/2000 (100%)
verify: 0/2000 (0%)
verify: 2000/2000 (100%)
download: 0/4096 bytes (0%)
download: 4096/4096 bytes (100%)
`, buf.String())

	// A report after lineEvery is printed.
	buf.Reset()
	p := &progress{w: &buf, clock: func() time.Time { return now }}
	p.update("decrypt", 0, 10)
	now = now.Add(lineEvery)
	p.update("decrypt", 4, 10)
	p.update("decrypt", 5, 10)
	p.finish(false)
	assert.Equal(t, "decrypt: 0/10 (0%)\ndecrypt: 4/10 (40%)\n", buf.String())

	buf.Reset()
	p = &progress{w: &buf}
	p.update("receive", 5, 0)
	p.update("receive", 9, 0)
	p.update("receive", 9, 9)
	p.update("upload", 7, 0)
	p.finish(true)
	assert.Equal(t, "receive: 5\nreceive: 9/9 (100%)\nupload: 7 bytes\n", buf.String())
}

// The bar is drawn only on a terminal that can show it.
func TestNewProgress(t *testing.T) {
	for _, tc := range []struct {
		tty  bool
		term string
		bar  bool
	}{
		{true, "xterm-256color", true},
		{true, "", true},
		{true, "dumb", false},
		{false, "xterm", false},
	} {
		c := &cli{io: &stdio{errTerminal: tc.tty, getenv: func(k string) string {
			if k == "TERM" {
				return tc.term
			}
			return ""
		}}}
		assert.Equal(t, tc.bar, c.newProgress().bar, "%+v", tc)
	}
}

func TestCounting(t *testing.T) {
	var seen []int64
	var buf bytes.Buffer
	w := &countingWriter{w: &buf, report: func(n int64) { seen = append(seen, n) }}
	w.Write([]byte("abc"))
	w.Write([]byte("defg"))
	assert.Equal(t, []int64{3, 7}, seen)
	assert.Equal(t, int64(7), w.n)

	seen = nil
	r := &countingReader{r: strings.NewReader("hello world"), report: func(n int64) { seen = append(seen, n) }}
	b := make([]byte, 4)
	for {
		if _, err := r.Read(b); err != nil {
			break
		}
	}
	assert.Equal(t, []int64{4, 8, 11}, seen)
}
