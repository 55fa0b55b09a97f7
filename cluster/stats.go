package cluster

import (
	"strconv"
	"time"

	"github.com/hashicorp/raft"
)

// Timings hears how long the node's Raft work takes (the daemon's
// metrics). Its methods must be cheap and must not block.
type Timings interface {
	// RaftCommitted: a write this node took (Submit), from proposing or
	// forwarding it until the leader committed and applied it.
	RaftCommitted(time.Duration)
	// RaftLogStored: storing a batch of entries in this node's Raft log,
	// its fsync included.
	RaftLogStored(time.Duration)
}

// Stats is the node's Raft state at one moment.
type Stats struct {
	State        string // as State says
	LeaderKnown  bool
	Term         uint64
	CommitIndex  uint64 // the highest index this node knows committed
	AppliedIndex uint64 // the highest index the store applied
	LastLogIndex uint64
}

// Stats reads the node's Raft state.
func (n *Node) Stats() Stats {
	rs := n.raft.Stats()
	num := func(k string) uint64 {
		v, _ := strconv.ParseUint(rs[k], 10, 64)
		return v
	}
	_, addr := n.Leader()
	return Stats{
		State: n.State(), LeaderKnown: addr != "", Term: n.raft.CurrentTerm(),
		CommitIndex: num("commit_index"), AppliedIndex: n.fsm.Applied(), LastLogIndex: n.raft.LastIndex(),
	}
}

// timedLogs is Raft's log store with StoreLog(s) timed.
type timedLogs struct {
	raft.LogStore
	t Timings
}

func (l timedLogs) StoreLog(e *raft.Log) error {
	start := time.Now()
	err := l.LogStore.StoreLog(e)
	l.t.RaftLogStored(time.Since(start))
	return err
}

func (l timedLogs) StoreLogs(es []*raft.Log) error {
	start := time.Now()
	err := l.LogStore.StoreLogs(es)
	l.t.RaftLogStored(time.Since(start))
	return err
}

// logStore is the log store Raft is given: timed when Timings is set.
func (n *Node) logStore() raft.LogStore {
	if n.cfg.Timings == nil {
		return n.logs
	}
	return timedLogs{LogStore: n.logs, t: n.cfg.Timings}
}
