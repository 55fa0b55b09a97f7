// Package workers runs short functions on goroutines that outlive one
// function: a function that needs a deep stack (a signature, a TLS write)
// reuses a grown stack instead of growing a new goroutine's on every call.
//
// Run never waits: a function goes to an idle worker if there is one, else
// to a new one, so a function that blocks holds up only itself. A worker
// idle for Idle ends. The zero Pool is not usable; use New.
package workers

import "time"

// Idle is how long an idle worker waits for a function before it ends.
const Idle = 10 * time.Second

// Pool is a set of workers.
type Pool struct{ work chan func() }

// New makes an empty pool.
func New() *Pool { return &Pool{work: make(chan func())} }

// Run runs f on a worker.
func (p *Pool) Run(f func()) {
	select {
	case p.work <- f:
	default:
		go p.loop(f)
	}
}

func (p *Pool) loop(f func()) {
	f()
	t := time.NewTimer(Idle)
	defer t.Stop()
	for {
		select {
		case f = <-p.work:
			f()
			t.Reset(Idle)
		case <-t.C:
			return
		}
	}
}
