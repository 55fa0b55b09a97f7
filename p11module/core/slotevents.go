package core

// C_WaitForSlotEvent (docs/pkcs11-library.md, "Operation life cycle"): a
// slot event is a crypto user's token slot appearing (a user was made) or
// disappearing (a user was deleted). The module compares the cluster's
// list of tokens with the set it last reported (first taken at the first
// listing of slots) and answers one changed slot at a time.
//
// The C layer calls again and again, each call waiting at most waitMs (it
// passes 0 in the fork helper, whose socket carries one call at a time, and
// sleeps between calls itself), so that a blocking wait never holds the
// library. C_Finalize ends a wait: the call answers
// CKR_CRYPTOKI_NOT_INITIALIZED.

import (
	"time"

	"github.com/openhsm/openhsm/ck"
)

const (
	// slotPoll is how often a blocking wait asks the cluster.
	slotPoll = 250 * time.Millisecond
	// maxSlotWait bounds one call's wait, whatever C asks.
	maxSlotWait = 5 * time.Second
)

// tokenSlots lists the token slots the cluster has now. m.mu is not held.
func (m *Module) tokenSlots() (map[uint64]bool, error) {
	m.mu.Lock()
	if err := m.checkInit(); err != nil {
		m.mu.Unlock()
		return nil, err
	}
	conn := m.conn
	m.mu.Unlock()
	ctx, cancel := m.ctx()
	defer cancel()
	ts, err := conn.ListTokens(ctx)
	if err != nil {
		return nil, err
	}
	now := map[uint64]bool{}
	for _, t := range ts {
		now[tokenSlotBase+t.Number] = true
	}
	return now, nil
}

// slotEvent compares now with the slots last reported: it answers the
// lowest slot that changed and records the change, or false.
func (m *Module) slotEvent(now map[uint64]bool) (uint64, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkInit(); err != nil {
		return 0, false, err
	}
	if m.reported == nil {
		m.reported = now
		return 0, false, nil
	}
	var id uint64
	found := false
	lowest := func(from, to map[uint64]bool) {
		for x := range from {
			if !to[x] && (!found || x < id) {
				id, found = x, true
			}
		}
	}
	lowest(now, m.reported) // slots that appeared
	lowest(m.reported, now) // slots that went
	if !found {
		return 0, false, nil
	}
	if now[id] {
		m.reported[id] = true
	} else {
		delete(m.reported, id)
	}
	return id, true, nil
}

// WaitForSlotEvent answers the next slot event, waiting at most waitMs for
// one unless flags has CKF_DONT_BLOCK; CKR_NO_EVENT when there is none.
func (m *Module) WaitForSlotEvent(flags, waitMs uint64) (uint64, error) {
	m.mu.Lock()
	if err := m.checkInit(); err != nil {
		m.mu.Unlock()
		return 0, err
	}
	stop := m.stopWait
	m.mu.Unlock()
	wait := time.Duration(min(waitMs, uint64(maxSlotWait/time.Millisecond))) * time.Millisecond
	if flags&ck.CKF_DONT_BLOCK != 0 {
		wait = 0
	}
	deadline := time.Now().Add(wait)
	for {
		now, err := m.tokenSlots()
		if err != nil {
			return 0, err
		}
		id, ok, err := m.slotEvent(now)
		if err != nil || ok {
			return id, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return 0, errorf(ck.CKR_NO_EVENT, "no slot event")
		}
		if m.sleepUnlessStopped(stop, min(left, slotPoll)) {
			return 0, errorf(ck.CKR_CRYPTOKI_NOT_INITIALIZED, "finalized while waiting for a slot event")
		}
	}
}

// sleepUnlessStopped waits d, counted in slotWaiting while it does; it
// reports whether stop closed first.
func (m *Module) sleepUnlessStopped(stop <-chan struct{}, d time.Duration) bool {
	m.slotWaiting.Add(1)
	defer m.slotWaiting.Add(-1)
	select {
	case <-stop:
		return true
	case <-time.After(d):
		return false
	}
}
