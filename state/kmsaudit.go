package state

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/openhsm/openhsm/audit"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/internal/fields"
	"github.com/openhsm/openhsm/kms/model"
	"github.com/openhsm/openhsm/seal"
)

// The KMS API's side of the trail (docs/audit.md, "KMS requests"). A node
// collects the KMS requests it answered and submits them in batches, one
// OpKMSAudit command each; apply turns every event into one KindKMS record.
// Its authority is the node's, as OpAudit's is: no user acts (the
// authority table's actorNone refuses an actor), and a proof under the
// domain key's audit key over the node, the batch number and every event
// shows the sender holds the domain key, so a node certificate alone
// cannot put requests in the trail. Batch numbers grow per node and are
// kept apart from OpAudit's (the two are sent independently, and a use
// batch resent after a KMS batch must not look like a replay).

// OpKMSAudit records a node's batch of KMS API requests in the trail:
// Node, Batch, Time, KMSEvents, Proof.
const OpKMSAudit Op = "kms_audit"

// metaKMSAuditBatch is the prefix of the meta keys holding, per node, the
// last OpKMSAudit batch applied.
const metaKMSAuditBatch = "kms_audit_batch/"

// KMSAuditProof is what a node puts in an OpKMSAudit command: an
// HMAC-SHA256 under the audit key over a label, the node, the batch number
// and every field of every event, strings length-prefixed and the context
// keys counted, so no two batches encode alike.
func KMSAuditProof(s *seal.Sealer, node string, batch uint64, events []audit.KMSEvent) []byte {
	h := hmac.New(sha256.New, s.AuditKey())
	b := []byte("openhsm kms audit batch v1")
	b = fields.AppendStr(b, node)
	b = binary.BigEndian.AppendUint64(b, batch)
	b = binary.BigEndian.AppendUint32(b, uint32(len(events)))
	h.Write(b)
	for i := range events {
		e := &events[i]
		b = binary.BigEndian.AppendUint64(b[:0], uint64(e.Time))
		for _, s := range []string{e.Principal, e.Op, e.Key} {
			b = fields.AppendStr(b, s)
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(e.ContextKeys)))
		for _, k := range e.ContextKeys {
			b = fields.AppendStr(b, k)
		}
		b = binary.BigEndian.AppendUint32(b, e.ContextKeysOmitted)
		for _, s := range []string{e.Source, e.RequestID, e.Error} {
			b = fields.AppendStr(b, s)
		}
		h.Write(b)
	}
	return h.Sum(nil)
}

// LastKMSAuditBatch is the last OpKMSAudit batch applied from a node (0:
// none). A node's KMS auditor numbers its batches on from it.
func LastKMSAuditBatch(get func(string) ([]byte, error), node string) (uint64, error) {
	b, err := get(metaKMSAuditBatch + node)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("meta %s%s is malformed", metaKMSAuditBatch, node)
	}
	return binary.BigEndian.Uint64(b), nil
}

// isKMSOp: an operation of the KMS API model, or "" (a request whose
// X-Amz-Target named none).
func isKMSOp(op string) bool {
	if op == "" {
		return true
	}
	_, ok := model.LookupOperation(op)
	return ok
}

// applyKMSAudit checks a node's batch of KMS requests; auditRecords makes
// the records of an applied one. Everything is checked before anything is
// written: the batch is recorded whole or refused whole.
func applyKMSAudit(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	if c.Actor != "" || c.Role != 0 {
		return nil, hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "audit records come only from nodes")
	}
	if c.Node == "" || len(c.Node) > 64 || c.Batch == 0 || c.Batch >= 1<<63 {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "a KMS audit batch needs its node and batch number")
	}
	if len(c.KMSEvents) == 0 || len(c.KMSEvents) > audit.MaxKMSEvents {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "a KMS audit batch holds 1 to %d events", audit.MaxKMSEvents)
	}
	if c.Time < audit.MinKMSTime || c.Time > audit.MaxKMSTime {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "a KMS audit batch needs its time")
	}
	// Fields no KMS audit batch carries: a command that sets them is not
	// one a node made.
	if len(c.Uses) > 0 || c.ObjectID != 0 || len(c.Objects) > 0 || c.Name != "" || c.User != nil || c.KMS != nil ||
		c.Cert != "" || c.RequestID != "" {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "a KMS audit batch carries only its node, batch, time, events and proof")
	}
	if !hmac.Equal(c.Proof, KMSAuditProof(s, c.Node, c.Batch, c.KMSEvents)) {
		return nil, hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "the KMS audit batch's proof does not check")
	}
	for i := range c.KMSEvents {
		e := &c.KMSEvents[i]
		if err := e.Check(); err != nil {
			return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "KMS audit event %d: %v", i, err)
		}
		if !isKMSOp(e.Op) {
			return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "KMS audit event %d: op is not a KMS operation", i)
		}
		if e.Time > c.Time {
			return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "KMS audit event %d: time after the batch's", i)
		}
	}
	last, err := LastKMSAuditBatch(tx.Meta, c.Node)
	if err != nil {
		return nil, err
	}
	if c.Batch <= last {
		return nil, hsmerr.Errorf(ck.CKR_FUNCTION_REJECTED, auditDuplicateMsg)
	}
	return nil, tx.PutMeta(metaKMSAuditBatch+c.Node, binary.BigEndian.AppendUint64(nil, c.Batch))
}

// kmsAuditRecords are the records of an applied OpKMSAudit: one per event.
func kmsAuditRecords(index uint64, c *Command) []*audit.Record {
	recs := make([]*audit.Record, len(c.KMSEvents))
	for i := range c.KMSEvents {
		e := &c.KMSEvents[i]
		r := &audit.Record{Index: index, Time: e.Time, Kind: audit.KindKMS, Op: e.Op, User: e.Principal, Node: c.Node,
			Subject: e.Key, Count: 1, Detail: e.Detail()}
		if e.Error != "" {
			r.Result = 1
		}
		recs[i] = r
	}
	return recs
}
