package dataplane

import (
	"net"
	"runtime"
	"sync"
	"time"
)

// Writer coalesces the frames of one connection: whoever queues a frame
// while no one is writing writes it, with every frame queued meanwhile, in
// one write (one TLS record while it fits, one system call); frames queued
// while a write runs go out together in the writer's next one. So a lone
// call costs no hand-over to another goroutine, and a burst of concurrent
// calls costs one write. A gathering Writer also yields once before it
// writes, so that goroutines about to queue a frame join the write; that
// yield is cheap for ordinary goroutines but costs a hand-over between
// threads for a goroutine locked to its thread (a cgo callback).
type Writer struct {
	c       net.Conn
	timeout time.Duration

	mu      sync.Mutex
	out     []byte   // queued small frames
	large   [][]byte // queued large frames, each in a buffer of its own
	spare   []byte
	writing bool
	err     error // the first write error: the connection is done
	gather  bool
}

// NewWriter makes a Writer for c; each write must finish within timeout.
// gather: yield once before each write (see Writer).
func NewWriter(c net.Conn, timeout time.Duration, gather bool) *Writer {
	return &Writer{c: c, timeout: timeout, gather: gather}
}

// keepBuffer is the largest buffer kept for the next writes.
const keepBuffer = 1 << 20

// largeFrame is the data length above which a frame is encoded in a
// buffer of its own, outside the lock, and written as it is: queueing it
// then never copies the frames queued before it (appending a MiB to a
// queue of several had the library copying the queue over and over).
const largeFrame = 64 << 10

// frameSlack is room for a frame's fields beside its data, token and
// signature (more only for a large mechanism parameter: one more copy).
const frameSlack = 256

// Request queues a request and writes. An encoding error leaves nothing
// queued; a write error is the connection's.
func (w *Writer) Request(r *Request) error {
	if n := len(r.Data) + len(r.Sig); n > largeFrame {
		own, err := AppendRequest(make([]byte, 0, n+len(r.Token)+frameSlack), r)
		if err != nil {
			return err
		}
		return w.queueLarge(own)
	}
	w.mu.Lock()
	if w.err != nil {
		defer w.mu.Unlock()
		return w.err
	}
	out, err := AppendRequest(w.out, r)
	if err != nil {
		w.mu.Unlock()
		return err
	}
	w.out = out
	return w.flush()
}

// Response queues a success and writes.
func (w *Writer) Response(op Op, id, index uint64, data []byte) error {
	if len(data) > largeFrame {
		return w.queueLarge(AppendResponse(make([]byte, 0, len(data)+frameSlack), op, id, index, data))
	}
	w.mu.Lock()
	w.out = AppendResponse(w.out, op, id, index, data)
	return w.flush()
}

// queueLarge queues an encoded large frame and writes.
func (w *Writer) queueLarge(frame []byte) error {
	w.mu.Lock()
	w.large = append(w.large, frame)
	return w.flush()
}

// Error queues a refusal and writes.
func (w *Writer) Error(e *Error) error {
	w.mu.Lock()
	w.out = AppendError(w.out, e)
	return w.flush()
}

// flush is called with mu held, and releases it.
func (w *Writer) flush() error {
	if w.err != nil {
		// The connection is done: nothing queued will be written.
		w.out, w.large = w.out[:0], nil
	}
	if w.writing || w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	w.writing = true
	if w.gather {
		// Let the goroutines that are ready run first: those about to
		// queue a frame join this write instead of making their own.
		w.mu.Unlock()
		runtime.Gosched()
		w.mu.Lock()
	}
	for (len(w.out) > 0 || len(w.large) > 0) && w.err == nil {
		buf, large := w.out, w.large
		w.out, w.spare, w.large = w.spare[:0], nil, nil
		w.mu.Unlock()
		w.c.SetWriteDeadline(time.Now().Add(w.timeout))
		var err error
		if len(buf) > 0 {
			_, err = w.c.Write(buf)
		}
		for _, f := range large {
			if err != nil {
				break
			}
			_, err = w.c.Write(f)
		}
		w.mu.Lock()
		if err != nil {
			w.err = err
		}
		if cap(buf) <= keepBuffer {
			w.spare = buf[:0]
		}
	}
	w.writing = false
	err := w.err
	w.mu.Unlock()
	return err
}
