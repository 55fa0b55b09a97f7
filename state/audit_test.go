package state_test

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/openhsm/openhsm/audit"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/passwords"
	"github.com/openhsm/openhsm/seal"
	"github.com/openhsm/openhsm/state"
	"github.com/openhsm/openhsm/state/sqlite"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// auditFixture is a machine on a store whose file the test can edit.
type auditFixture struct {
	path  string
	store *sqlite.Store
	m     *state.Machine
	e     *engine.Engine
	rec   *recorder
}

func newAuditFixture(t *testing.T) *auditFixture {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	st, err := sqlite.Open(path, sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	sealer, dk, err := seal.NewDomainKey("test", seal.KEKSource{KeyFile: bytes.Repeat([]byte{5}, 32)})
	require.NoError(t, err)
	m := state.NewMachine(st, nil, nil)
	r := &recorder{local: &engine.LocalApplier{M: m}}
	require.NoError(t, r.Submit(ctx, &state.Command{Op: state.OpInit, Domain: dk.Marshal()}))
	m.SetSealer(sealer)
	e := engine.NewEngine(m, r, engine.Options{})
	require.NoError(t, e.Bootstrap(ctx, "admin", "officer-pass"))
	co := engine.Caller{User: "admin", Role: object.RoleCO, Session: 1}
	require.NoError(t, e.CreateUser(ctx, co, "alice", object.RoleCU, "alice-password"))
	return &auditFixture{path: path, store: st, m: m, e: e, rec: r}
}

func (f *auditFixture) submit(t *testing.T, c *state.Command) error {
	t.Helper()
	return f.rec.Submit(context.Background(), c)
}

func (f *auditFixture) records(t *testing.T, q state.AuditQuery) []*audit.Record {
	t.Helper()
	recs, err := f.store.AuditRecords(q)
	require.NoError(t, err)
	return recs
}

func (f *auditFixture) verify(t *testing.T) *state.AuditReport {
	t.Helper()
	rep, err := state.VerifyAudit(f.store, f.m.Sealer())
	require.NoError(t, err)
	return rep
}

// useBatch is a well-formed OpAudit command from node n1.
func (f *auditFixture) useBatch(batch uint64, uses ...audit.UseCount) *state.Command {
	return &state.Command{Op: state.OpAudit, Node: "n1", Batch: batch, Uses: uses,
		Proof: state.AuditProof(f.m.Sealer(), "n1", batch, uses)}
}

func TestAuditRecordsAppliedAndRefusedCommands(t *testing.T) {
	f := newAuditFixture(t)
	ok := &state.Command{Op: state.OpCreateUser, Actor: "admin", Time: 4000000000, Node: "n1", Cert: "c0ffee",
		User: &object.User{Name: "bob", Role: object.RoleCU, PasswordHash: auditTestHash}}
	require.NoError(t, f.submit(t, ok))
	refused := &state.Command{Op: state.OpDestroyObject, Actor: "alice", ObjectID: 4242, Time: 4000000001, Node: "n2", Cert: "beef"}
	err := f.submit(t, refused)
	require.Error(t, err)

	recs := f.records(t, state.AuditQuery{Since: 4000000000})
	require.Len(t, recs, 2)
	assert.Equal(t, "create_user", recs[0].Op)
	assert.Equal(t, "admin", recs[0].User)
	assert.Equal(t, "bob", recs[0].Subject)
	assert.Equal(t, "n1", recs[0].Node)
	assert.Equal(t, "c0ffee", recs[0].Cert)
	assert.Equal(t, uint64(0), recs[0].Result)
	assert.Equal(t, "destroy_object", recs[1].Op)
	assert.Equal(t, uint64(4242), recs[1].Object)
	assert.Equal(t, hsmerr.RV(err), recs[1].Result, "the refusal's code is recorded")
	assert.Equal(t, int64(4000000001), recs[1].Time, "the time is the command's")
	assert.Equal(t, recs[0].Seq+1, recs[1].Seq)
	// Nothing secret: the password hash is in no field.
	for _, r := range f.records(t, state.AuditQuery{}) {
		assert.NotContains(t, string(audit.Marshal(r)), "argon2id")
	}
	byObject := f.records(t, state.AuditQuery{Object: 4242})
	require.Len(t, byObject, 1)
	byUser := f.records(t, state.AuditQuery{User: "alice"})
	require.Len(t, byUser, 1)
	assert.True(t, f.verify(t).OK)
}

func TestAuditUseBatches(t *testing.T) {
	f := newAuditFixture(t)
	uses := []audit.UseCount{
		{Time: 1700000005, User: "alice", Cert: "aa", Object: 7, Op: audit.UseSign, Count: 1000},
		{Time: 1700000005, User: "alice", Cert: "aa", Object: 7, Op: audit.UseDecrypt, Result: ck.CKR_KEY_FUNCTION_NOT_PERMITTED, Count: 2},
	}
	require.NoError(t, f.submit(t, f.useBatch(1, uses...)))
	recs := f.records(t, state.AuditQuery{Object: 7})
	require.Len(t, recs, 2)
	assert.Equal(t, audit.KindUse, recs[0].Kind)
	assert.Equal(t, uint64(1000), recs[0].Count)
	assert.Equal(t, "n1", recs[0].Node)
	assert.Equal(t, uint64(ck.CKR_KEY_FUNCTION_NOT_PERMITTED), recs[1].Result)

	// A retried batch is refused as a duplicate: nothing is counted twice.
	err := f.submit(t, f.useBatch(1, uses...))
	assert.True(t, state.IsAuditDuplicate(err), "%v", err)
	assert.Len(t, f.records(t, state.AuditQuery{Object: 7}), 2)

	for name, c := range map[string]*state.Command{
		"a user's command": func() *state.Command { c := f.useBatch(2, uses...); c.Actor = "alice"; return c }(),
		"no proof":         func() *state.Command { c := f.useBatch(3, uses...); c.Proof = nil; return c }(),
		"forged count": func() *state.Command {
			c := f.useBatch(4, uses...)
			c.Uses = append([]audit.UseCount(nil), uses...)
			c.Uses[0].Count = 1
			return c
		}(),
		"unknown op": f.useBatch(5, audit.UseCount{Time: 1, User: "alice", Object: 7, Op: "steal", Count: 1}),
		"no node":    func() *state.Command { c := f.useBatch(6, uses...); c.Node = ""; return c }(),
	} {
		err := f.submit(t, c)
		require.Error(t, err, name)
		assert.False(t, state.IsAuditDuplicate(err), name)
	}
	// Each refused batch is itself recorded, and counts nothing.
	assert.Len(t, f.records(t, state.AuditQuery{Object: 7}), 2)
	var refusedAudits int
	for _, r := range f.records(t, state.AuditQuery{}) {
		if r.Op == string(state.OpAudit) {
			refusedAudits++
			assert.NotZero(t, r.Result)
		}
	}
	assert.Equal(t, 6, refusedAudits)
	assert.True(t, f.verify(t).OK)
}

// TestAuditReplayIsDeterministic replays the log on a second store: the
// chain, MACs included, comes out the same.
func TestAuditReplayIsDeterministic(t *testing.T) {
	f := newAuditFixture(t)
	require.Error(t, f.submit(t, &state.Command{Op: state.OpDeleteUser, Actor: "alice", Name: "admin", Time: 5}))
	require.NoError(t, f.submit(t, f.useBatch(9, audit.UseCount{Time: 9, User: "alice", Object: 3, Op: audit.UseSign, Count: 4})))
	require.Error(t, f.m.Apply(uint64(len(f.rec.log)+1), []byte(`{"op":"nonsense"}`)))

	st2, err := sqlite.Open(filepath.Join(t.TempDir(), "replay.db"), sqlite.Options{})
	require.NoError(t, err)
	defer st2.Close()
	m2 := state.NewMachine(st2, f.m.Sealer(), nil)
	for i, raw := range f.rec.log {
		m2.Apply(uint64(i+1), raw)
	}
	m2.Apply(uint64(len(f.rec.log)+1), []byte(`{"op":"nonsense"}`))
	a, b := f.records(t, state.AuditQuery{}), func() []*audit.Record {
		r, err := st2.AuditRecords(state.AuditQuery{})
		require.NoError(t, err)
		return r
	}()
	require.Equal(t, len(a), len(b))
	for i := range a {
		assert.Equal(t, a[i], b[i])
	}
	last := a[len(a)-1]
	assert.Equal(t, "undecodable", last.Op)
	assert.Equal(t, uint64(ck.CKR_ARGUMENTS_BAD), last.Result)
}

// TestAuditVerifyDetectsTampering edits the store's file the way an
// attacker with the file but not the domain key could, and checks what
// VerifyAudit reports.
func TestAuditVerifyDetectsTampering(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sql      []string
		ok       bool
		problem  string
		firstBad uint64
	}{
		{name: "untouched", ok: true},
		{name: "zero the MAC", sql: []string{`UPDATE audit SET mac = CAST(zeroblob(32) AS BLOB) WHERE seq = 4`},
			problem: state.AuditEdited, firstBad: 4},
		{name: "flip one bit of the node name", sql: []string{`UPDATE audit SET node = 'o1' WHERE seq = 4 AND node = 'n1'`},
			problem: state.AuditEdited, firstBad: 4},
		{name: "edit a count", sql: []string{`UPDATE audit SET count = count - 1 WHERE seq = 5`},
			problem: state.AuditEdited, firstBad: 5},
		{name: "edit a user", sql: []string{`UPDATE audit SET user = 'bob' WHERE seq = 3`},
			problem: state.AuditEdited, firstBad: 3},
		{name: "remove a record", sql: []string{`DELETE FROM audit WHERE seq = 4`},
			problem: state.AuditMissing, firstBad: 4},
		{name: "swap two records", sql: []string{`UPDATE audit SET seq = -1 WHERE seq = 4`,
			`UPDATE audit SET seq = 4 WHERE seq = 5`, `UPDATE audit SET seq = 5 WHERE seq = -1`},
			problem: state.AuditReordered, firstBad: 4},
		{name: "truncate the tail", sql: []string{`DELETE FROM audit WHERE seq > 5`},
			problem: state.AuditTruncated, firstBad: 6},
		{name: "truncate and rewrite the head", sql: []string{`DELETE FROM audit WHERE seq > 5`,
			`UPDATE meta SET value = (SELECT CAST(x'0000000000000005' AS BLOB) || mac || zeroblob(32) FROM audit WHERE seq = 5) WHERE key = 'audit_head'`},
			problem: state.AuditHeadBad, firstBad: 5},
		{name: "remove the head", sql: []string{`DELETE FROM meta WHERE key = 'audit_head'`},
			problem: state.AuditHeadBad},
		{name: "replace a record with another chain position's", sql: []string{
			`UPDATE audit SET prev = (SELECT prev FROM audit WHERE seq = 2) WHERE seq = 6`},
			problem: state.AuditEdited, firstBad: 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newAuditFixture(t)
			for i := range 5 {
				require.NoError(t, f.submit(t, f.useBatch(uint64(i+1),
					audit.UseCount{Time: int64(i), User: "alice", Object: 7, Op: audit.UseSign, Count: 10})))
			}
			n := len(f.records(t, state.AuditQuery{}))
			require.GreaterOrEqual(t, n, 7)
			for _, q := range tc.sql {
				tamper(t, f.path, q)
			}
			rep := f.verify(t)
			assert.Equal(t, tc.ok, rep.OK, "%+v", rep)
			assert.Equal(t, tc.problem, rep.Problem, "%+v", rep)
			if tc.firstBad != 0 {
				assert.Equal(t, tc.firstBad, rep.FirstBad, "%+v", rep)
			}
			if tc.ok {
				assert.Equal(t, uint64(n), rep.Records)
				assert.Equal(t, uint64(n), rep.HeadSeq)
			}
		})
	}
}

// TestAuditOldHeadReplayIsNotDetected documents the limit: an attacker who
// saved the file's head at an earlier time can cut the tail back to it and
// restore that head, and one node alone cannot tell. The other nodes' longer
// chains show it (docs/audit.md).
func TestAuditOldHeadReplayIsNotDetected(t *testing.T) {
	f := newAuditFixture(t)
	head, err := f.store.Meta(state.MetaAuditHead)
	require.NoError(t, err)
	n := len(f.records(t, state.AuditQuery{}))
	require.NoError(t, f.submit(t, f.useBatch(1, audit.UseCount{Time: 1, User: "alice", Object: 7, Op: audit.UseSign, Count: 10})))
	tamper(t, f.path, `DELETE FROM audit WHERE seq > ?`, n)
	tamper(t, f.path, `UPDATE meta SET value = ? WHERE key = 'audit_head'`, head)
	rep := f.verify(t)
	assert.True(t, rep.OK)
	assert.Equal(t, uint64(n), rep.HeadSeq)
}

// tamper edits the store's file behind the store's back, as an attacker
// with write access to the data directory would.
func tamper(t *testing.T, path, query string, args ...any) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Exec(query, args...)
	require.NoError(t, err, query)
}

// auditTestHash is a well-formed password hash, as apply requires.
var auditTestHash = func() string { h, _ := passwords.HashPassword("bob's password"); return h }()
