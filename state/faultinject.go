//go:build faultinject

package state

// Fault injection for the fail-stop tests, compiled only with
// `-tags faultinject`: production binaries hold none of it.
//
// OPENHSM_FAULT="op=OP[,after=N][,on=write|read]" makes the store fail while
// the node applies command OP: the first N applications of OP (default 0)
// go through, every later one sees each write (on=write, the default) or
// each read (on=read) of its transaction fail with ErrInjected, as a full
// disk or a bad sector would make SQLite fail.

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/openhsm/openhsm/object"
)

// ErrInjected is the failure the store reports when a fault is armed.
var ErrInjected = errors.New("injected store fault")

func init() {
	spec := os.Getenv("OPENHSM_FAULT")
	if spec == "" {
		return
	}
	f, err := parseFault(spec)
	if err != nil {
		fmt.Fprintf(os.Stderr, "OPENHSM_FAULT: %v\n", err)
		os.Exit(2)
	}
	fmt.Fprintf(os.Stderr, "faultinject: the store fails on %s of %q after %d\n", f.on, f.op, f.after)
	faultTx = f.wrap
}

type fault struct {
	op    Op
	after int
	on    string

	mu   sync.Mutex
	seen int
}

func parseFault(spec string) (*fault, error) {
	f := &fault{on: "write"}
	for _, kv := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return nil, fmt.Errorf("%q is not key=value", kv)
		}
		switch k {
		case "op":
			if _, known := applyTable[Op(v)]; !known {
				return nil, fmt.Errorf("unknown op %q", v)
			}
			f.op = Op(v)
		case "after":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("after=%q is not a count", v)
			}
			f.after = n
		case "on":
			if v != "write" && v != "read" {
				return nil, fmt.Errorf("on=%q: want write or read", v)
			}
			f.on = v
		default:
			return nil, fmt.Errorf("unknown key %q", k)
		}
	}
	if f.op == "" {
		return nil, fmt.Errorf("op= is required")
	}
	return f, nil
}

func (f *fault) wrap(op Op, tx Tx) Tx {
	if op != f.op {
		return tx
	}
	f.mu.Lock()
	f.seen++
	armed := f.seen > f.after
	f.mu.Unlock()
	if !armed {
		return tx
	}
	return &faultyTx{Tx: tx, reads: f.on == "read", writes: f.on == "write"}
}

type faultyTx struct {
	Tx
	reads, writes bool
}

func (t *faultyTx) rerr(what string) error {
	if t.reads {
		return fmt.Errorf("state/sqlite: %s: %w (disk I/O error)", what, ErrInjected)
	}
	return nil
}

func (t *faultyTx) werr(what string) error {
	if t.writes {
		return fmt.Errorf("state/sqlite: %s: %w (disk I/O error)", what, ErrInjected)
	}
	return nil
}

func (t *faultyTx) User(name string) (*object.User, error) {
	if err := t.rerr("read user"); err != nil {
		return nil, err
	}
	return t.Tx.User(name)
}

func (t *faultyTx) Users() ([]*object.User, error) {
	if err := t.rerr("read users"); err != nil {
		return nil, err
	}
	return t.Tx.Users()
}

func (t *faultyTx) Object(id uint64) (*object.Object, error) {
	if err := t.rerr("read object"); err != nil {
		return nil, err
	}
	return t.Tx.Object(id)
}

func (t *faultyTx) Meta(key string) ([]byte, error) {
	if err := t.rerr("read meta"); err != nil {
		return nil, err
	}
	return t.Tx.Meta(key)
}

func (t *faultyTx) CountOwned(owner string) (int, error) {
	if err := t.rerr("count objects"); err != nil {
		return 0, err
	}
	return t.Tx.CountOwned(owner)
}

func (t *faultyTx) PutUser(u *object.User) error {
	if err := t.werr("put user"); err != nil {
		return err
	}
	return t.Tx.PutUser(u)
}

func (t *faultyTx) DeleteUser(name string) error {
	if err := t.werr("delete user"); err != nil {
		return err
	}
	return t.Tx.DeleteUser(name)
}

func (t *faultyTx) PutObject(o *object.Object) error {
	if err := t.werr("put object"); err != nil {
		return err
	}
	return t.Tx.PutObject(o)
}

func (t *faultyTx) DeleteObject(id uint64) error {
	if err := t.werr("delete object"); err != nil {
		return err
	}
	return t.Tx.DeleteObject(id)
}

func (t *faultyTx) RemoveSharesWith(user string) error {
	if err := t.werr("remove shares"); err != nil {
		return err
	}
	return t.Tx.RemoveSharesWith(user)
}

func (t *faultyTx) PutMeta(key string, value []byte) error {
	if err := t.werr("put meta"); err != nil {
		return err
	}
	return t.Tx.PutMeta(key, value)
}

func (t *faultyTx) Request(actor, id string) ([]byte, error) {
	if err := t.rerr("read request"); err != nil {
		return nil, err
	}
	return t.Tx.Request(actor, id)
}

func (t *faultyTx) PutRequest(actor, id string, time int64, record []byte) (uint64, error) {
	if err := t.werr("put request"); err != nil {
		return 0, err
	}
	return t.Tx.PutRequest(actor, id, time, record)
}
