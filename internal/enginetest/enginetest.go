// Package enginetest starts one node's engine in the test's own process: a
// real state machine on a real SQLite file, sealed under a fixed test key,
// with a crypto officer "admin" (password "officer-pass-1"). It is the
// layer below internal/kmstest, for tests of packages that the KMS service
// itself imports (kms/xks, kms/xksclient) and so cannot use kmstest.
package enginetest

import (
	"bytes"
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/seal"
	"github.com/openhsm/openhsm/state"
	"github.com/openhsm/openhsm/state/sqlite"
)

// The bootstrap officer's name and password.
const (
	Officer         = "admin"
	OfficerPassword = "officer-pass-1"
)

// Node is a running engine.
type Node struct {
	Engine *engine.Engine
	Store  state.Store
	obs    *observer
}

// OnKMSChanged sets the hook called when KMS rows change (the KMS
// service's cache drop).
func (n *Node) OnKMSChanged(f func()) { n.obs.kms.Store(&f) }

type observer struct {
	e   *engine.Engine
	kms atomic.Pointer[func()]
}

func (o *observer) ObjectChanged(id uint64)     { o.e.ObjectChanged(id) }
func (o *observer) UsersChanged()               { o.e.UsersChanged() }
func (o *observer) LoggedOut(s uint64, x int64) { o.e.LoggedOut(s, x) }
func (o *observer) CertRevoked()                {}
func (o *observer) Restored() error             { return o.e.Restored() }
func (o *observer) KMSChanged() {
	if f := o.kms.Load(); f != nil {
		(*f)()
	}
}

// Start makes the node; it is closed when the test ends.
func Start(t testing.TB) *Node {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "engine.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sealer, rec, err := seal.NewDomainKey("enginetest", seal.KEKSource{KeyFile: bytes.Repeat([]byte{9}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	obs := &observer{}
	m := state.NewMachine(st, nil, obs)
	la := &engine.LocalApplier{M: m}
	if err := la.Submit(ctx, &state.Command{Op: state.OpInit, Domain: rec.Marshal()}); err != nil {
		t.Fatal(err)
	}
	m.SetSealer(sealer)
	e := engine.NewEngine(m, la, engine.Options{})
	obs.e = e
	if err := e.Bootstrap(ctx, Officer, OfficerPassword); err != nil {
		t.Fatal(err)
	}
	return &Node{Engine: e, Store: st, obs: obs}
}
