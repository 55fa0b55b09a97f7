package state_test

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/openhsm/openhsm/audit"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/seal"
	"github.com/openhsm/openhsm/state"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	kmsTime      = 1_900_000_000
	kmsPrincipal = "arn:aws:iam::123456789012:user/alice"
	kmsKeyARN    = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
)

// kmsEvents are two requests: an Encrypt that succeeded and a Decrypt
// refused.
func kmsEvents() []audit.KMSEvent {
	return []audit.KMSEvent{
		{Time: kmsTime, Principal: kmsPrincipal, Op: "Encrypt", Key: kmsKeyARN, ContextKeys: []string{"dept", "purpose"},
			Source: "127.0.0.1:40000", RequestID: "2f0c6a3e-0001"},
		{Time: kmsTime + 1, Principal: kmsPrincipal, Op: "Decrypt", Key: kmsKeyARN, Source: "127.0.0.1:40001",
			RequestID: "2f0c6a3e-0002", Error: "IncorrectKeyException"},
	}
}

// kmsBatch is a well-formed OpKMSAudit command from node n1.
func (f *auditFixture) kmsBatch(batch uint64, events ...audit.KMSEvent) *state.Command {
	return &state.Command{Op: state.OpKMSAudit, Node: "n1", Batch: batch, Time: kmsTime + 60, KMSEvents: events,
		Proof: state.KMSAuditProof(f.m.Sealer(), "n1", batch, events)}
}

func TestKMSAuditRecords(t *testing.T) {
	f := newAuditFixture(t)
	require.NoError(t, f.submit(t, f.kmsBatch(7, kmsEvents()...)))
	recs := f.records(t, state.AuditQuery{Kinds: []string{audit.KindKMS}})
	require.Len(t, recs, 2)
	for i, want := range []struct {
		op     string
		time   int64
		result uint64
		detail string
	}{
		{"Encrypt", kmsTime, 0, `{"context_keys":["dept","purpose"],"source":"127.0.0.1:40000","request_id":"2f0c6a3e-0001"}`},
		{"Decrypt", kmsTime + 1, 1, `{"source":"127.0.0.1:40001","request_id":"2f0c6a3e-0002","error":"IncorrectKeyException"}`},
	} {
		r := recs[i]
		assert.Equal(t, audit.KindKMS, r.Kind)
		assert.Equal(t, want.op, r.Op)
		assert.Equal(t, kmsPrincipal, r.User)
		assert.Equal(t, "n1", r.Node)
		assert.Equal(t, kmsKeyARN, r.Subject)
		assert.Equal(t, want.result, r.Result)
		assert.Equal(t, uint64(1), r.Count)
		assert.Equal(t, want.time, r.Time)
		assert.Equal(t, want.detail, r.Detail)
		assert.Zero(t, r.Object)
		assert.Empty(t, r.Cert)
	}
	last, err := state.LastKMSAuditBatch(f.store.Meta, "n1")
	require.NoError(t, err)
	assert.Equal(t, uint64(7), last)
	assert.True(t, f.verify(t).OK)

	// The filters: by principal, by key ARN, by key ID, by kind.
	assert.Len(t, f.records(t, state.AuditQuery{User: kmsPrincipal}), 2)
	assert.Len(t, f.records(t, state.AuditQuery{Subject: kmsKeyARN}), 2)
	assert.Len(t, f.records(t, state.AuditQuery{KeyID: "1234abcd-12ab-34cd-56ef-1234567890ab"}), 2)
	assert.Empty(t, f.records(t, state.AuditQuery{KeyID: "1234ABCD-12ab-34cd-56ef-1234567890ab"}), "IDs are case-sensitive")
	assert.Empty(t, f.records(t, state.AuditQuery{KeyID: "34cd-56ef-1234567890ab"}), "an ID matches whole")
	assert.Empty(t, f.records(t, state.AuditQuery{KeyID: "*"}), "no wildcard")
	assert.Empty(t, f.records(t, state.AuditQuery{KeyID: "%"}))
	assert.Len(t, f.records(t, state.AuditQuery{Kinds: []string{audit.KindKMS}, Since: kmsTime + 1}), 1)
	for _, r := range f.records(t, state.AuditQuery{Kinds: []string{audit.KindCommand, audit.KindUse}}) {
		assert.NotEqual(t, audit.KindKMS, r.Kind)
	}
}

// TestKMSAuditRefusals: apply refuses a batch that is forged, replayed,
// made by a user or malformed in any field; a refusal writes no KMS
// record and leaves the node's batch number, and is itself recorded.
func TestKMSAuditRefusals(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	otherKey, _, err := seal.NewDomainKey("other", seal.KEKSource{KeyFile: make([]byte, 32)})
	require.NoError(t, err)
	type edit func(f *auditFixture, c *state.Command)
	// event edits one field of the first event and signs the batch again,
	// so that the field check, not the proof, refuses it.
	event := func(fn func(e *audit.KMSEvent)) edit {
		return func(f *auditFixture, c *state.Command) {
			c.KMSEvents = kmsEvents()
			fn(&c.KMSEvents[0])
			c.Proof = state.KMSAuditProof(f.m.Sealer(), c.Node, c.Batch, c.KMSEvents)
		}
	}
	resign := func(fn func(c *state.Command)) edit {
		return func(f *auditFixture, c *state.Command) {
			fn(c)
			c.Proof = state.KMSAuditProof(f.m.Sealer(), c.Node, c.Batch, c.KMSEvents)
		}
	}
	for _, tc := range []struct {
		name string
		edit edit
		rv   uint64 // 0: accepted
	}{
		{"well formed", func(*auditFixture, *state.Command) {}, 0},
		{"an unknown op recorded as empty", event(func(e *audit.KMSEvent) { e.Op = "" }), 0},
		{"every bound at its limit", event(func(e *audit.KMSEvent) {
			e.Principal, e.Key = long(audit.MaxKMSPrincipal), long(audit.MaxKMSKey)
			e.Source, e.RequestID = long(audit.MaxKMSSource), long(audit.MaxKMSRequestID)
			e.Error = "E" + long(audit.MaxKMSError-1)
			e.ContextKeys = nil
			for i := range audit.MaxKMSContextKeys {
				e.ContextKeys = append(e.ContextKeys, fmt.Sprintf("%03d", i)+long(audit.MaxKMSContextKey-3))
			}
			e.Time = audit.MinKMSTime
		}), 0},

		{"no proof", func(_ *auditFixture, c *state.Command) { c.Proof = nil }, ck.CKR_USER_NOT_LOGGED_IN},
		{"proof under another domain key", func(_ *auditFixture, c *state.Command) {
			c.Proof = state.KMSAuditProof(otherKey, c.Node, c.Batch, c.KMSEvents)
		}, ck.CKR_USER_NOT_LOGGED_IN},
		{"an event changed after the proof", func(_ *auditFixture, c *state.Command) {
			c.KMSEvents = kmsEvents()
			c.KMSEvents[1].Error = ""
		}, ck.CKR_USER_NOT_LOGGED_IN},
		{"an event dropped after the proof", func(_ *auditFixture, c *state.Command) {
			c.KMSEvents = kmsEvents()[:1]
		}, ck.CKR_USER_NOT_LOGGED_IN},
		{"a context key moved into the next field", func(_ *auditFixture, c *state.Command) {
			c.KMSEvents = kmsEvents()
			c.KMSEvents[0].ContextKeys = []string{"dept"}
			c.KMSEvents[0].Source = "purpose"
		}, ck.CKR_USER_NOT_LOGGED_IN},
		{"another node's name on the proof", func(_ *auditFixture, c *state.Command) { c.Node = "n2" }, ck.CKR_USER_NOT_LOGGED_IN},
		{"another batch number on the proof", func(_ *auditFixture, c *state.Command) { c.Batch++ }, ck.CKR_USER_NOT_LOGGED_IN},
		{"a user's command", resign(func(c *state.Command) { c.Actor = "alice" }), ck.CKR_ARGUMENTS_BAD},
		{"a role", resign(func(c *state.Command) { c.Role = 1 }), ck.CKR_USER_NOT_LOGGED_IN},
		{"no node", resign(func(c *state.Command) { c.Node = "" }), ck.CKR_ARGUMENTS_BAD},
		{"node too long", resign(func(c *state.Command) { c.Node = long(65) }), ck.CKR_ARGUMENTS_BAD},
		{"batch 0", resign(func(c *state.Command) { c.Batch = 0 }), ck.CKR_ARGUMENTS_BAD},
		{"batch past 2^63", resign(func(c *state.Command) { c.Batch = 1 << 63 }), ck.CKR_ARGUMENTS_BAD},
		{"no events", resign(func(c *state.Command) { c.KMSEvents = nil }), ck.CKR_ARGUMENTS_BAD},
		{"too many events", resign(func(c *state.Command) {
			c.KMSEvents = make([]audit.KMSEvent, audit.MaxKMSEvents+1)
			for i := range c.KMSEvents {
				c.KMSEvents[i] = kmsEvents()[0]
			}
		}), ck.CKR_ARGUMENTS_BAD},
		{"no batch time", resign(func(c *state.Command) { c.Time = 0 }), ck.CKR_ARGUMENTS_BAD},
		{"key-use counts too", resign(func(c *state.Command) {
			c.Uses = []audit.UseCount{{Time: 1, User: "alice", Object: 7, Op: audit.UseSign, Count: 1}}
		}), ck.CKR_ARGUMENTS_BAD},
		{"an object", resign(func(c *state.Command) { c.ObjectID = 7 }), ck.CKR_ARGUMENTS_BAD},
		{"a certificate", resign(func(c *state.Command) { c.Cert = "ab" }), ck.CKR_ARGUMENTS_BAD},
		{"event time 0", event(func(e *audit.KMSEvent) { e.Time = 0 }), ck.CKR_ARGUMENTS_BAD},
		{"event time before 2000", event(func(e *audit.KMSEvent) { e.Time = audit.MinKMSTime - 1 }), ck.CKR_ARGUMENTS_BAD},
		{"event time after the batch's", event(func(e *audit.KMSEvent) { e.Time = kmsTime + 61 }), ck.CKR_ARGUMENTS_BAD},
		{"op not of the KMS API", event(func(e *audit.KMSEvent) { e.Op = "StealKey" }), ck.CKR_ARGUMENTS_BAD},
		{"op in the wrong case", event(func(e *audit.KMSEvent) { e.Op = "encrypt" }), ck.CKR_ARGUMENTS_BAD},
		{"op with its service", event(func(e *audit.KMSEvent) { e.Op = "TrentService.Encrypt" }), ck.CKR_ARGUMENTS_BAD},
		{"principal too long", event(func(e *audit.KMSEvent) { e.Principal = long(audit.MaxKMSPrincipal + 1) }), ck.CKR_ARGUMENTS_BAD},
		{"principal with a newline", event(func(e *audit.KMSEvent) { e.Principal = "alice\nbob" }), ck.CKR_ARGUMENTS_BAD},
		// Not UTF-8 does not survive the log's JSON: it arrives as U+FFFD,
		// and the proof no longer checks (nodes sanitize before signing).
		{"principal not UTF-8", event(func(e *audit.KMSEvent) { e.Principal = "\xff" }), ck.CKR_USER_NOT_LOGGED_IN},
		{"key too long", event(func(e *audit.KMSEvent) { e.Key = long(audit.MaxKMSKey + 1) }), ck.CKR_ARGUMENTS_BAD},
		{"source too long", event(func(e *audit.KMSEvent) { e.Source = long(audit.MaxKMSSource + 1) }), ck.CKR_ARGUMENTS_BAD},
		{"request ID too long", event(func(e *audit.KMSEvent) { e.RequestID = long(audit.MaxKMSRequestID + 1) }), ck.CKR_ARGUMENTS_BAD},
		{"error not a name", event(func(e *audit.KMSEvent) { e.Error = "Not found" }), ck.CKR_ARGUMENTS_BAD},
		{"too many context keys", event(func(e *audit.KMSEvent) {
			e.ContextKeys = nil
			for i := range audit.MaxKMSContextKeys + 1 {
				e.ContextKeys = append(e.ContextKeys, fmt.Sprintf("%03d", i))
			}
		}), ck.CKR_ARGUMENTS_BAD},
		{"context key too long", event(func(e *audit.KMSEvent) { e.ContextKeys = []string{long(audit.MaxKMSContextKey + 1)} }), ck.CKR_ARGUMENTS_BAD},
		{"context keys unsorted", event(func(e *audit.KMSEvent) { e.ContextKeys = []string{"b", "a"} }), ck.CKR_ARGUMENTS_BAD},
		{"context keys repeated", event(func(e *audit.KMSEvent) { e.ContextKeys = []string{"a", "a"} }), ck.CKR_ARGUMENTS_BAD},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newAuditFixture(t)
			// The node's last batch is 5.
			require.NoError(t, f.submit(t, f.kmsBatch(5, kmsEvents()[0])))
			before := len(f.records(t, state.AuditQuery{}))
			c := f.kmsBatch(6, kmsEvents()...)
			tc.edit(f, c)
			err := f.submit(t, c)
			after := f.records(t, state.AuditQuery{AfterSeq: uint64(before)})
			last, lerr := state.LastKMSAuditBatch(f.store.Meta, "n1")
			require.NoError(t, lerr)
			if tc.rv == 0 {
				require.NoError(t, err)
				assert.Len(t, after, len(c.KMSEvents))
				assert.Equal(t, uint64(6), last)
			} else {
				require.Error(t, err)
				assert.Equal(t, tc.rv, hsmerr.RV(err), "%v", err)
				assert.False(t, state.IsAuditDuplicate(err))
				require.Len(t, after, 1, "only the refusal is recorded")
				assert.Equal(t, audit.KindCommand, after[0].Kind)
				assert.Equal(t, string(state.OpKMSAudit), after[0].Op)
				assert.Equal(t, tc.rv, after[0].Result)
				assert.Equal(t, uint64(5), last, "the batch number is unchanged")
			}
			assert.True(t, f.verify(t).OK)
		})
	}
}

// TestKMSAuditReplays: a batch applied once is refused when it comes
// again (resent after a lost answer), and so is an older number; the
// key-use batches are numbered apart.
func TestKMSAuditReplays(t *testing.T) {
	f := newAuditFixture(t)
	b := f.kmsBatch(100, kmsEvents()...)
	require.NoError(t, f.submit(t, b))
	n := len(f.records(t, state.AuditQuery{Kinds: []string{audit.KindKMS}}))
	for _, c := range []*state.Command{b, f.kmsBatch(99, kmsEvents()...), f.kmsBatch(100, kmsEvents()[0])} {
		err := f.submit(t, c)
		assert.True(t, state.IsAuditDuplicate(err), "%v", err)
	}
	assert.Len(t, f.records(t, state.AuditQuery{Kinds: []string{audit.KindKMS}}), n, "nothing recorded twice")
	// Another node has its own numbers; a key-use batch numbered below
	// the KMS batch is not a replay of it.
	other := &state.Command{Op: state.OpKMSAudit, Node: "n2", Batch: 1, Time: kmsTime + 60, KMSEvents: kmsEvents(),
		Proof: state.KMSAuditProof(f.m.Sealer(), "n2", 1, kmsEvents())}
	require.NoError(t, f.submit(t, other))
	require.NoError(t, f.submit(t, f.useBatch(50, audit.UseCount{Time: 1, User: "alice", Object: 7, Op: audit.UseSign, Count: 1})))
	require.NoError(t, f.submit(t, f.kmsBatch(101, kmsEvents()...)))
	assert.True(t, f.verify(t).OK)
}

// TestKMSAuditVerifyDetectsEdits flips one byte of each column of a
// stored KMS record in the SQLite file: VerifyAudit names the record.
func TestKMSAuditVerifyDetectsEdits(t *testing.T) {
	for _, tc := range []struct {
		name, sql string
		problem   string
	}{
		{"detail: one byte flipped", "flip detail", state.AuditEdited},
		{"subject: one byte flipped", "flip subject", state.AuditEdited},
		{"user: one byte flipped", "flip user", state.AuditEdited},
		{"node: one byte flipped", "flip node", state.AuditEdited},
		{"detail: a context key", `UPDATE audit SET detail = replace(detail, 'dept', 'depu') WHERE seq = ?`, state.AuditEdited},
		{"detail: the exception removed", `UPDATE audit SET detail = '{}' WHERE seq = ?`, state.AuditEdited},
		{"subject: the key ARN", `UPDATE audit SET subject = replace(subject, 'eu-west-1', 'eu-west-2') WHERE seq = ?`, state.AuditEdited},
		{"user: the principal", `UPDATE audit SET user = replace(user, 'alice', 'alicf') WHERE seq = ?`, state.AuditEdited},
		{"op", `UPDATE audit SET op = 'Encrypu' WHERE seq = ?`, state.AuditEdited},
		{"result", `UPDATE audit SET result = 1 - result WHERE seq = ?`, state.AuditEdited},
		{"time", `UPDATE audit SET time = time + 1 WHERE seq = ?`, state.AuditEdited},
		{"kind", `UPDATE audit SET kind = 'kmt' WHERE seq = ?`, state.AuditEdited},
		{"kind made a command's, its detail kept", `UPDATE audit SET kind = 'command' WHERE seq = ?`, state.AuditEdited},
		{"a detail put on a command record", `UPDATE audit SET detail = '{"source":"x"}' WHERE seq = ? - 2`, state.AuditEdited},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newAuditFixture(t)
			require.NoError(t, f.submit(t, f.kmsBatch(1, kmsEvents()...)))
			require.NoError(t, f.submit(t, f.kmsBatch(2, kmsEvents()...)))
			recs := f.records(t, state.AuditQuery{Kinds: []string{audit.KindKMS}})
			require.Len(t, recs, 4)
			target := recs[2].Seq // the second batch's Encrypt
			require.True(t, f.verify(t).OK)
			if col, ok := strings.CutPrefix(tc.sql, "flip "); ok {
				flipByte(t, f.path, col, target)
			} else {
				tamper(t, f.path, tc.sql, target)
			}
			rep := f.verify(t)
			assert.False(t, rep.OK)
			assert.Equal(t, tc.problem, rep.Problem, "%+v", rep)
			want := target
			if strings.Contains(tc.sql, "? - 2") {
				want = target - 2
			}
			assert.Equal(t, want, rep.FirstBad, "%+v", rep)
			assert.Contains(t, rep.Detail, fmt.Sprintf("record %d", want))
		})
	}
}

// flipByte flips the low bit of the middle byte of one text column of an
// audit record, in the store's file.
func flipByte(t *testing.T, path, column string, seq uint64) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	defer db.Close()
	var v string
	require.NoError(t, db.QueryRow(`SELECT `+column+` FROM audit WHERE seq = ?`, seq).Scan(&v))
	require.NotEmpty(t, v)
	b := []byte(v)
	b[len(b)/2] ^= 0x01
	_, err = db.Exec(`UPDATE audit SET `+column+` = ? WHERE seq = ?`, string(b), seq)
	require.NoError(t, err)
}
