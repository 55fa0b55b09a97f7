package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/hashicorp/raft"
	"github.com/openhsm/openhsm/state"
)

// fsm is Raft's state machine: state.Machine, whose store is persistent and
// records the last applied log index, so that entries replayed after a
// restart are skipped rather than applied twice.
type fsm struct {
	m     *state.Machine
	log   *slog.Logger
	fatal func(error)

	mu      sync.Mutex
	applied uint64        // last command index applied (or restored)
	wake    chan struct{} // closed when applied moves
}

func newFSM(m *state.Machine, log *slog.Logger, fatal func(error)) (*fsm, error) {
	idx, err := m.Store().AppliedIndex()
	if err != nil {
		return nil, err
	}
	return &fsm{m: m, log: log, fatal: fatal, applied: idx, wake: make(chan struct{})}, nil
}

var _ raft.BatchingFSM = (*fsm)(nil)

// Apply implements raft.FSM. The result is the command's refusal (a
// *hsmerr.Error, the same on every node) or nil. Raft calls ApplyBatch
// instead; Apply is the batch of one.
func (f *fsm) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch implements raft.BatchingFSM: the command entries Raft
// committed together (up to MaxAppendEntries) are applied in one store
// transaction, one commit and so one fsync (group commit). Each command
// still runs the one apply function with its own authority check, and its
// result, a refusal or nil, goes back to its own caller through its own
// future. Configuration entries have no result.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	var es []state.Entry
	var at []int // es[k] is logs[at[k]]
	for i, l := range logs {
		if l.Type == raft.LogCommand {
			es = append(es, state.Entry{Index: l.Index, Raw: l.Data})
			at = append(at, i)
		}
	}
	if len(es) == 0 {
		return out
	}
	last := uint64(0)
	var fatal error
	for k, err := range f.m.ApplyBatch(es) {
		var se *state.StoreError
		if errors.As(err, &se) {
			// Going on would let this node's state differ from the
			// others'. The commands before it are applied.
			if fatal == nil {
				fatal = err
			}
		} else if fatal == nil {
			last = es[k].Index
		}
		if err != nil {
			out[at[k]] = err
		}
	}
	if last != 0 {
		f.advance(last)
	}
	if fatal != nil {
		f.fatal(fatal)
	}
	return out
}

func (f *fsm) advance(idx uint64) {
	f.mu.Lock()
	if idx > f.applied {
		f.applied = idx
		close(f.wake)
		f.wake = make(chan struct{})
	}
	f.mu.Unlock()
}

// set moves the applied index to idx even backwards (after a restore).
func (f *fsm) set(idx uint64) {
	f.mu.Lock()
	f.applied = idx
	close(f.wake)
	f.wake = make(chan struct{})
	f.mu.Unlock()
}

// Applied is the last command index applied.
func (f *fsm) Applied() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied
}

// WaitApplied waits until idx is applied or ctx ends.
func (f *fsm) WaitApplied(ctx context.Context, idx uint64) error {
	for {
		f.mu.Lock()
		ok, wake := f.applied >= idx, f.wake
		f.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// A snapshot is an envelope around the store's own stream: a magic, a mode
// and an index. Mode keepIndex restores the index recorded in the stream
// (Raft's own snapshots); mode setIndex records the given index instead (a
// backup restored into a new cluster, whose log starts again).
const (
	envelopeMagic = "OHSMRAFT"
	envelopeLen   = 8 + 1 + 8
	keepIndex     = 0
	setIndex      = 1
)

func envelope(mode byte, idx uint64) []byte {
	b := append([]byte(envelopeMagic), mode)
	return binary.BigEndian.AppendUint64(b, idx)
}

func readEnvelope(r io.Reader) (index uint64, err error) {
	var b [envelopeLen]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, fmt.Errorf("snapshot: short envelope: %w", err)
	}
	if string(b[:8]) != envelopeMagic {
		return 0, errors.New("snapshot: not an openhsm snapshot")
	}
	switch b[8] {
	case keepIndex:
		return 0, nil
	case setIndex:
		idx := binary.BigEndian.Uint64(b[9:])
		if idx == 0 {
			return 0, errors.New("snapshot: index 0")
		}
		return idx, nil
	}
	return 0, fmt.Errorf("snapshot: unknown mode %d", b[8])
}

// Snapshot implements raft.FSM: it pins the store's state; Persist streams
// it while applies go on.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	s, err := f.m.Store().Snapshot()
	if err != nil {
		return nil, err
	}
	return &fsmSnapshot{s: s, log: f.log}, nil
}

// Restore implements raft.FSM: it replaces the store's state with a
// snapshot from the leader (or a restored backup).
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	idx, err := readEnvelope(rc)
	if err != nil {
		return err
	}
	if err := f.m.Restore(rc, idx); err != nil {
		var se *state.StoreError
		if errors.As(err, &se) {
			f.fatal(err)
		}
		return err
	}
	applied, err := f.m.Store().AppliedIndex()
	if err != nil {
		return err
	}
	f.set(applied)
	f.log.Info("restored a snapshot", "applied_index", applied)
	return nil
}

type fsmSnapshot struct {
	s   state.StoreSnapshot
	log *slog.Logger
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(envelope(keepIndex, 0)); err != nil {
		sink.Cancel()
		return err
	}
	if _, err := s.s.WriteTo(sink, nil); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() { s.s.Close() }
