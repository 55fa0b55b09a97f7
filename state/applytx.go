package state

import (
	"errors"

	"github.com/openhsm/openhsm/audit"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
)

// Fail-stop. A command's refusal must be the same on every node, because
// every node applies the same log to the same state. A failure of one node's
// store (a full disk, an I/O error, a row that fails its MAC) is not: if it
// were taken for a refusal, that node would skip a command the others applied
// (an unshare, a logout) and its state would differ from theirs for good.
// So the machine tells the two apart exactly: a refusal is a *Error that an
// apply function's own checks made; anything the store reports, however an
// apply function passed it on, is a *StoreError, and the node stops (the
// cluster calls Config.Fatal; hsmd exits with code 70). On restart it applies
// the same command again from its log, or takes a snapshot from the leader.

// guardTx is the Tx apply functions see. It remembers the store's first
// failure, so the verdict does not depend on how an apply function wrapped
// or replaced the error.
type guardTx struct {
	tx     Tx
	failed error
}

func (g *guardTx) fail(err error) error {
	if err != nil && g.failed == nil {
		g.failed = err
	}
	return err
}

// read passes on ErrNotFound, which is an answer about the state (the same
// on every node), and counts any other error as a failure.
func (g *guardTx) read(err error) error {
	if err != nil && !errors.Is(err, ErrNotFound) {
		g.fail(err)
	}
	return err
}

func (g *guardTx) User(name string) (*object.User, error) {
	u, err := g.tx.User(name)
	return u, g.read(err)
}

func (g *guardTx) Users() ([]*object.User, error) {
	us, err := g.tx.Users()
	return us, g.fail(err)
}

func (g *guardTx) PutUser(u *object.User) error { return g.fail(g.tx.PutUser(u)) }

// DeleteUser and DeleteObject come after the apply function read the row:
// a row gone missing in between is a store that misbehaves, not an answer.
func (g *guardTx) DeleteUser(name string) error { return g.fail(g.tx.DeleteUser(name)) }

func (g *guardTx) Object(id uint64) (*object.Object, error) {
	o, err := g.tx.Object(id)
	return o, g.read(err)
}

func (g *guardTx) PutObject(o *object.Object) error { return g.fail(g.tx.PutObject(o)) }
func (g *guardTx) DeleteObject(id uint64) error     { return g.fail(g.tx.DeleteObject(id)) }

func (g *guardTx) CountOwned(owner string) (int, error) {
	n, err := g.tx.CountOwned(owner)
	return n, g.fail(err)
}

func (g *guardTx) RemoveSharesWith(user string) error { return g.fail(g.tx.RemoveSharesWith(user)) }

func (g *guardTx) OwnedIDs(owner string) ([]uint64, error) {
	ids, err := g.tx.OwnedIDs(owner)
	return ids, g.fail(err)
}

func (g *guardTx) Meta(key string) ([]byte, error) {
	v, err := g.tx.Meta(key)
	return v, g.read(err)
}

func (g *guardTx) PutMeta(key string, value []byte) error { return g.fail(g.tx.PutMeta(key, value)) }

func (g *guardTx) Request(actor, id string) ([]byte, error) {
	v, err := g.tx.Request(actor, id)
	return v, g.read(err)
}

func (g *guardTx) PutRequest(actor, id string, time int64, record []byte) (uint64, error) {
	seq, err := g.tx.PutRequest(actor, id, time, record)
	return seq, g.fail(err)
}

func (g *guardTx) OldestRequests(limit int) ([]RequestAge, error) {
	ages, err := g.tx.OldestRequests(limit)
	return ages, g.fail(err)
}

func (g *guardTx) DeleteRequestsThrough(seq uint64) error {
	return g.fail(g.tx.DeleteRequestsThrough(seq))
}

// corrupt marks a row that fails its integrity check as a failure of this
// node's store: apply wrote that row with a good MAC on every node, so a bad
// one here means this node's file was damaged or edited.
func corrupt(tx Tx, err error) error {
	if g, ok := tx.(*guardTx); ok {
		g.fail(err)
	}
	return err
}

// isApplyRefusal tells a deliberate refusal from anything else: a *Error that
// is not the store's own ErrNotFound passed on unhandled.
func isApplyRefusal(err error) bool {
	var e *hsmerr.Error
	var se *StoreError
	return errors.As(err, &e) && !errors.Is(err, ErrNotFound) && !errors.As(err, &se)
}

// faultTx, when set (only in binaries built with the faultinject tag, see
// faultinject.go), wraps the store's transaction for one command so tests
// can make the store fail while applying it.
var faultTx func(op Op, tx Tx) Tx

// AppendAudit is a write like any other: its failure is the store's.
func (g *guardTx) AppendAudit(recs []*audit.Record, head []byte) error {
	return g.fail(g.tx.AppendAudit(recs, head))
}

func (g *guardTx) DeleteMeta(key string) error { return g.fail(g.tx.DeleteMeta(key)) }

func (g *guardTx) MetaKeys(prefix string, limit int) ([]string, error) {
	ks, err := g.tx.MetaKeys(prefix, limit)
	return ks, g.fail(err)
}

// Savepoint passes on fn's error (a refusal, or a failure the guard has
// already seen); a failure of the savepoint itself is the store's.
func (g *guardTx) Savepoint(fn func() error) error {
	var ferr error
	err := g.tx.Savepoint(func() error { ferr = fn(); return ferr })
	if err != nil && err != ferr {
		g.fail(err)
	}
	return err
}
