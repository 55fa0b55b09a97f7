package main

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/openhsm/openhsm/client"
)

// Progress of the long commands (backup create, get and restore). What is
// measured is real: the node's own progress messages (records of the store
// snapshot written, verified, decrypted or restored), and the bytes this
// command sends or writes to the file as they stream. On a terminal each
// step is a bar drawn on standard error (github.com/schollz/progressbar);
// otherwise each step prints plain lines there, a few a second at most.
// Standard output is left to the result (and to --json).

// phaseInfo says how a step is shown.
type phaseInfo struct {
	label string // on the bar
	bytes bool   // Done and Total count bytes, not records
	local bool   // measured here, not reported by the node
}

// phases are the steps a backup command reports: the first five come
// from the node (hsmd's backup stream), the others are measured here.
var phases = map[string]phaseInfo{
	"write":    {label: "writing the backup"},
	"verify":   {label: "verifying it"},
	"decrypt":  {label: "checking and decrypting"},
	"restore":  {label: "restoring"},
	"receive":  {label: "node received", bytes: true},
	"download": {label: "downloading", bytes: true, local: true},
	"upload":   {label: "sending", bytes: true, local: true},
}

func phaseOf(name string) phaseInfo {
	if p, ok := phases[name]; ok {
		return p
	}
	return phaseInfo{label: name}
}

// lineEvery spaces plain progress lines.
const lineEvery = 250 * time.Millisecond

// progress shows the steps of one command, one after the other.
type progress struct {
	w   io.Writer
	bar bool // draw bars (a terminal), else print lines

	phase        string
	done, total  int64
	pb           *progressbar.ProgressBar
	unknownTotal bool // pb was made without a total

	lastLine                  time.Time
	printedDone, printedTotal int64            // of the last line printed; Done -1: none yet
	clock                     func() time.Time // time.Now; tests set it
}

// newProgress shows progress on standard error: bars when it is a
// terminal (and TERM is not "dumb"), plain lines otherwise.
func (c *cli) newProgress() *progress {
	return &progress{w: c.io.err, bar: c.io.errTerminal && c.io.getenv("TERM") != "dumb"}
}

// node passes on the node's progress messages.
func (p *progress) node(m client.BackupProgress) {
	p.update(m.Phase, m.Done, m.Total)
}

// update reports that step phase is at done of total (total 0 or less:
// not known).
func (p *progress) update(phase string, done, total int64) {
	if phase != p.phase {
		p.end(true)
		p.phase, p.printedDone, p.lastLine = phase, -1, time.Time{}
	}
	p.done, p.total = done, total
	if p.bar {
		p.drawBar()
	} else {
		p.printLine(false)
	}
}

func (p *progress) drawBar() {
	info := phaseOf(p.phase)
	if p.pb == nil {
		max := p.total
		p.unknownTotal = max <= 0
		if p.unknownTotal {
			max = -1
		}
		opts := []progressbar.Option{
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription(fmt.Sprintf("%-24s", info.label)),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100 * time.Millisecond),
			// No spinner goroutine: the bar moves only when data does.
			progressbar.OptionSetSpinnerChangeInterval(0),
			progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionSetRenderBlankState(true),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.w) }),
		}
		if info.bytes {
			opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionShowBytes(true), progressbar.OptionUseIECUnits(true))
		} else {
			opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("records"))
		}
		p.pb = progressbar.NewOptions64(max, opts...)
	} else if p.total > 0 && (p.unknownTotal || p.pb.GetMax64() != p.total) {
		p.unknownTotal = false
		p.pb.ChangeMax64(p.total)
	}
	if p.pb.IsFinished() {
		return
	}
	done := p.done
	if !p.unknownTotal && done > p.total {
		done = p.total
	}
	p.pb.Set64(done)
}

func (p *progress) printLine(final bool) {
	if p.done == p.printedDone && p.total == p.printedTotal {
		return
	}
	complete := p.total > 0 && p.done >= p.total
	now := time.Now()
	if p.clock != nil {
		now = p.clock()
	}
	if !final && !complete && p.printedDone >= 0 && now.Sub(p.lastLine) < lineEvery {
		return
	}
	p.lastLine, p.printedDone, p.printedTotal = now, p.done, p.total
	// The node's steps print as they always have; those measured here
	// name their unit.
	unit := ""
	if info := phaseOf(p.phase); info.bytes && info.local {
		unit = " bytes"
	}
	if p.total > 0 {
		fmt.Fprintf(p.w, "%s: %d/%d%s (%d%%)\n", p.phase, p.done, p.total, unit, p.done*100/p.total)
	} else {
		fmt.Fprintf(p.w, "%s: %d%s\n", p.phase, p.done, unit)
	}
}

// end closes the current step: ok says it completed (an unknown total is
// then what was done), else it stops where it was.
func (p *progress) end(ok bool) {
	if p.phase == "" {
		return
	}
	if !p.bar {
		if ok {
			p.printLine(true)
		}
		return
	}
	if p.pb == nil || p.pb.IsFinished() {
		p.pb = nil
		return
	}
	if ok && p.unknownTotal && p.done > 0 {
		p.pb.ChangeMax64(p.done)
		p.unknownTotal = false
	}
	if ok && !p.unknownTotal && p.done >= p.pb.GetMax64() {
		p.pb.Finish()
	} else {
		p.pb.Exit()
	}
	p.pb = nil
}

// finish ends the last step; ok as for end.
func (p *progress) finish(ok bool) {
	p.end(ok)
	p.phase = ""
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w      io.Writer
	n      int64
	report func(n int64)
}

func (cw *countingWriter) Write(b []byte) (int, error) {
	k, err := cw.w.Write(b)
	cw.n += int64(k)
	cw.report(cw.n)
	return k, err
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r      io.Reader
	n      int64
	report func(n int64)
}

func (cr *countingReader) Read(b []byte) (int, error) {
	k, err := cr.r.Read(b)
	cr.n += int64(k)
	if k > 0 {
		cr.report(cr.n)
	}
	return k, err
}
