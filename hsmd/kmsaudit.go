package hsmd

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/openhsm/openhsm/audit"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/kms/model"
	"github.com/openhsm/openhsm/seal"
	"github.com/openhsm/openhsm/state"
)

// The KMS API's side of the audit trail (docs/audit.md, "KMS requests").
// The KMS handler gives every request it answered, allowed or refused, to
// kmsAuditor.Record, which only queues it; run sends the queue through the
// log as OpKMSAudit batches about once a second, at once when a batch is
// full, and apply writes one record per request. The discipline is the
// key-use counter's (audit.go): a batch whose outcome is unknown is resent
// as it is, with its number, so apply records it once; events that could
// not be sent stay queued; a normal shutdown calls flush after the last
// request. Memory is bounded: past maxKMSBacklog events or
// maxKMSBacklogBytes queued, new events are dropped and counted (Dropped),
// and the next flush says so in the log.

// Bounds of the auditor.
const (
	// kmsEventsPerBatch is the most events one OpKMSAudit carries; a
	// queue this long is sent at once.
	kmsEventsPerBatch = audit.MaxKMSEvents
	// kmsBatchBytes bounds the estimated JSON size of one batch's events,
	// well under state.MaxCommandSize.
	kmsBatchBytes = 2 << 20
	// maxKMSBacklog and maxKMSBacklogBytes bound the events queued while
	// the cluster cannot take them (no leader, no domain key): some
	// 20 s of requests at 5,000 a second, and at most 64 MiB.
	maxKMSBacklog      = 100_000
	maxKMSBacklogBytes = 64 << 20
	// kmsFlushTimeout bounds one flush of run.
	kmsFlushTimeout = 5 * time.Second
)

// kmsAuditor queues KMS requests and sends them to the trail.
type kmsAuditor struct {
	node    string
	sealer  func() *seal.Sealer
	applier engine.Applier
	log     *slog.Logger
	now     func() time.Time

	mu          sync.Mutex
	queue       []audit.KMSEvent
	sizes       []int // estimated JSON size of each queued event
	queuedBytes int
	kick        chan struct{} // a full batch is queued

	dropped atomic.Uint64 // events the trail will not hold: backlog full, or a batch refused

	flushMu   sync.Mutex     // one flush at a time; guards what follows
	pending   *state.Command // sent, outcome unknown: resent as it is
	lastBatch uint64
	reported  uint64 // dropped, as last logged
}

// newKMSAuditor makes the auditor of node. lastBatch is the last
// OpKMSAudit batch the store holds from this node
// (state.LastKMSAuditBatch), so numbers keep growing across restarts. The
// caller runs run(ctx) in a goroutine and, at shutdown, once no KMS
// request runs any more, calls flush to send what is left before the node
// leaves the cluster.
func newKMSAuditor(node string, sealer func() *seal.Sealer, a engine.Applier, lastBatch uint64, log *slog.Logger) *kmsAuditor {
	return &kmsAuditor{node: node, sealer: sealer, applier: a, log: log, now: time.Now, lastBatch: lastBatch,
		kick: make(chan struct{}, 1)}
}

// Record queues one KMS request for the trail. It never blocks on the
// cluster or does I/O: it fits the event into the bounds apply checks
// (audit.SanitizeKMSEvent; an op that is not one of the KMS API becomes
// "", a missing time is now), and drops and counts it when the backlog is
// full.
func (a *kmsAuditor) Record(e audit.KMSEvent) {
	if e.Time == 0 {
		e.Time = a.now().Unix()
	}
	e = audit.SanitizeKMSEvent(e)
	if e.Op != "" {
		if _, ok := model.LookupOperation(e.Op); !ok {
			e.Op = ""
		}
	}
	size := kmsEventSize(&e)
	a.mu.Lock()
	if len(a.queue) >= maxKMSBacklog || a.queuedBytes+size > maxKMSBacklogBytes {
		a.mu.Unlock()
		a.dropped.Add(1)
		return
	}
	a.queue = append(a.queue, e)
	a.sizes = append(a.sizes, size)
	a.queuedBytes += size
	full := len(a.queue) == kmsEventsPerBatch
	a.mu.Unlock()
	if full {
		select {
		case a.kick <- struct{}{}:
		default:
		}
	}
}

// Dropped is how many events the trail will not hold: dropped while the
// backlog was full, or in a batch apply refused. It only grows.
func (a *kmsAuditor) Dropped() uint64 { return a.dropped.Load() }

// kmsEventSize estimates the bytes of an event's JSON in a command: its
// strings as encoding/json escapes them, and room for the member names.
func kmsEventSize(e *audit.KMSEvent) int {
	n := 200 + jsonStrLen(e.Principal) + jsonStrLen(e.Op) + jsonStrLen(e.Key) + jsonStrLen(e.Source) +
		jsonStrLen(e.RequestID) + jsonStrLen(e.Error)
	for _, k := range e.ContextKeys {
		n += jsonStrLen(k) + 1
	}
	return n
}

// jsonStrLen is the length of s as encoding/json writes it (s is valid
// UTF-8 without control characters, as SanitizeKMSEvent leaves it).
func jsonStrLen(s string) int {
	n := len(s) + 2
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"', '\\':
			n++
		case '<', '>', '&':
			n += 5
		case 0xE2:
			if r, _ := utf8.DecodeRuneInString(s[i:]); r == '\u2028' || r == '\u2029' {
				n += 3
			}
		}
	}
	return n
}

// takeAll empties the queue.
func (a *kmsAuditor) takeAll() ([]audit.KMSEvent, []int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	q, s := a.queue, a.sizes
	a.queue, a.sizes, a.queuedBytes = nil, nil, 0
	return q, s
}

// putBack returns events that could not be sent to the front of the
// queue, ahead of those queued since. They were within the bounds when
// they were queued, so they are not dropped now.
func (a *kmsAuditor) putBack(events []audit.KMSEvent, sizes []int) {
	if len(events) == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.queue = append(events[:len(events):len(events)], a.queue...)
	a.sizes = append(sizes[:len(sizes):len(sizes)], a.sizes...)
	for _, n := range sizes {
		a.queuedBytes += n
	}
}

// batchLen is how many of the events the next batch takes: at most
// kmsEventsPerBatch and kmsBatchBytes, and at least one.
func batchLen(sizes []int) int {
	total := 0
	for i, n := range sizes {
		total += n
		if i == kmsEventsPerBatch || i > 0 && total > kmsBatchBytes {
			return i
		}
	}
	return len(sizes)
}

// flush sends every queued event, in batches. A batch whose outcome is
// unknown is kept and resent first, as it is, so apply records it at
// most once; events not sent go back to the queue.
func (a *kmsAuditor) flush(ctx context.Context) error {
	a.flushMu.Lock()
	defer a.flushMu.Unlock()
	defer a.reportDropped()
	if a.pending != nil {
		if err := a.send(ctx, a.pending); err != nil {
			return err
		}
	}
	events, sizes := a.takeAll()
	if len(events) == 0 {
		return nil
	}
	s := a.sealer()
	if s == nil {
		a.putBack(events, sizes)
		return errors.New("the domain key is not unsealed")
	}
	for len(events) > 0 {
		n := batchLen(sizes)
		part := events[:n:n]
		events, sizes = events[n:], sizes[n:]
		// Batch numbers only grow, also across restarts (lastBatch starts
		// from the store), and follow the clock where it allows. The
		// batch's time is never before its events' (apply checks).
		batch := max(a.lastBatch+1, uint64(a.now().UnixNano()))
		a.lastBatch = batch
		t := a.now().Unix()
		for i := range part {
			t = max(t, part[i].Time)
		}
		c := &state.Command{Op: state.OpKMSAudit, Time: t, Node: a.node, Batch: batch, KMSEvents: part,
			Proof: state.KMSAuditProof(s, a.node, batch, part)}
		if err := a.send(ctx, c); err != nil {
			a.putBack(events, sizes)
			return err
		}
	}
	return nil
}

// send submits a batch. A refusal is final (a duplicate was recorded
// already; anything else is logged and its events counted as dropped); a
// failure of the cluster keeps the batch pending.
func (a *kmsAuditor) send(ctx context.Context, c *state.Command) error {
	switch out, err := sendBatch(ctx, a.applier, c); out {
	case batchPending:
		a.pending = c
		return err
	case batchRefused:
		a.pending = nil
		a.dropped.Add(uint64(len(c.KMSEvents)))
		a.log.Error("a KMS audit batch was refused; its events are lost", "batch", c.Batch, "events", len(c.KMSEvents),
			"error", err.Error())
	default:
		a.pending = nil
	}
	return nil
}

// reportDropped logs the events dropped since the last report.
func (a *kmsAuditor) reportDropped() {
	d := a.dropped.Load()
	if d == a.reported {
		return
	}
	a.log.Error("KMS audit events dropped: the backlog was full (the cluster did not take the batches) or a batch was refused",
		"dropped", d-a.reported, "dropped_total", d, "backlog_limit", maxKMSBacklog)
	a.reported = d
}

// run flushes about every second, and at once when a full batch is
// queued, until ctx ends. After a failed flush it waits for the next
// tick, so a cluster without a leader is not retried in a loop.
func (a *kmsAuditor) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	kick := a.kick
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick:
		}
		fctx, cancel := context.WithTimeout(ctx, kmsFlushTimeout)
		err := a.flush(fctx)
		cancel()
		kick = a.kick
		if err != nil {
			a.log.Warn("KMS audit events not sent yet; will retry", "error", err.Error())
			kick = nil // until the next tick
		}
	}
}
