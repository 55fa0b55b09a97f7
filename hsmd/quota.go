package hsmd

import (
	"sync"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

// DefaultMaxSessionsPerUser is how many login sessions one user may hold on
// a node unless max_sessions_per_user says otherwise.
const DefaultMaxSessionsPerUser = 1024

// sessionQuota counts the login sessions this node holds state for, per
// user: every session a login here issued, and every session whose token
// was used here, until it is logged out or swept as idle. A session costs
// the node memory (its bookkeeping and its session objects, at most
// max_session_objects of them), so one password must not be able to open
// sessions without end. Sessions live on a node, not in the replicated
// state, so the limit is a node setting and nothing here goes through
// apply.
type sessionQuota struct {
	mu    sync.Mutex
	max   int
	user  map[uint64]string // session -> its user
	count map[string]int    // user -> sessions held
}

func newSessionQuota(max int) *sessionQuota {
	return &sessionQuota{max: max, user: map[uint64]string{}, count: map[string]int{}}
}

func (q *sessionQuota) setMax(n int) {
	q.mu.Lock()
	q.max = n
	q.mu.Unlock()
}

// admit counts a session of user, or refuses it when the user already holds
// the most this node allows. A session already counted is admitted.
func (q *sessionQuota) admit(session uint64, user string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.user[session]; ok {
		return nil
	}
	if q.count[user] >= q.max {
		return hsmerr.Errorf(ck.CKR_DEVICE_MEMORY,
			"user %q already holds %d login sessions on this node; log out of one, or wait until idle ones expire", user, q.max)
	}
	q.user[session] = user
	q.count[user]++
	return nil
}

// drop forgets a session (logged out, or idle past its lifetime).
func (q *sessionQuota) drop(session uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	u, ok := q.user[session]
	if !ok {
		return
	}
	delete(q.user, session)
	if q.count[u] <= 1 {
		delete(q.count, u)
	} else {
		q.count[u]--
	}
}

// held tells how many sessions the user holds here.
func (q *sessionQuota) held(user string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.count[user]
}

// total tells how many login sessions this node holds.
func (q *sessionQuota) total() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.user)
}
