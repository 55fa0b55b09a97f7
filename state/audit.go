package state

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/openhsm/openhsm/audit"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/internal/fields"
	"github.com/openhsm/openhsm/seal"
)

// The audit trail (docs/audit.md is its description and must stay true to
// this file). Every applied command, and every key use counted by the nodes,
// becomes a record written by Apply, so the trail is replicated like the
// rest of the state and is the same on every node. Records form a chain:
// each holds its sequence number and the MAC of the record before it, and
// its own MAC is an HMAC-SHA256 under a key derived from the domain key, so
// that someone who can write the store's file but does not hold the domain
// key cannot edit, drop or reorder records and recompute the chain. The
// head (last sequence number and MAC) is kept in meta under its own MAC, so
// that cutting off the tail shows too.

// MetaAuditHead is the meta key of the chain's head: seq u64 | MAC of
// record seq | HMAC of both.
const MetaAuditHead = "audit_head"

// metaAuditBatch is the prefix of the meta keys holding, per node, the
// last OpAudit batch applied, so a batch retried after an unknown outcome
// is not counted twice.
const metaAuditBatch = "audit_batch/"

const auditMACLen = sha256.Size

func auditMAC(key []byte, r *audit.Record) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(r.Body())
	return h.Sum(nil)
}

// AuditHead is the chain's head as meta keeps it.
type AuditHead struct {
	Seq uint64
	MAC []byte // the MAC of record Seq; nil when Seq is 0
}

func auditHeadMAC(key []byte, h AuditHead) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("openhsm audit head v1"))
	m.Write(binary.BigEndian.AppendUint64(nil, h.Seq))
	m.Write(h.MAC)
	return m.Sum(nil)
}

func encodeAuditHead(key []byte, h AuditHead) []byte {
	b := binary.BigEndian.AppendUint64(nil, h.Seq)
	b = append(b, h.MAC...)
	return append(b, auditHeadMAC(key, h)...)
}

// readAuditHead reads the head; a store without one has an empty chain.
// verified is false when the head's own MAC does not check.
func readAuditHead(key []byte, get func(string) ([]byte, error)) (h AuditHead, present, verified bool, err error) {
	b, err := get(MetaAuditHead)
	if errors.Is(err, ErrNotFound) {
		return AuditHead{}, false, true, nil
	}
	if err != nil {
		return AuditHead{}, false, false, err
	}
	if len(b) != 8+2*auditMACLen {
		return AuditHead{}, true, false, nil
	}
	h = AuditHead{Seq: binary.BigEndian.Uint64(b), MAC: append([]byte(nil), b[8:8+auditMACLen]...)}
	return h, true, hmac.Equal(b[8+auditMACLen:], auditHeadMAC(key, h)), nil
}

// auditChain appends records to the chain inside an Update. The head it
// starts from is read once; an unreadable or forged head is a store
// failure, not a refusal: the node must not extend a chain it cannot trust.
func auditChain(tx Tx, s *seal.Sealer, recs []*audit.Record) error {
	if s == nil || len(recs) == 0 {
		return nil
	}
	key := s.AuditKey()
	head, _, ok, err := readAuditHead(key, tx.Meta)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("the audit chain's head failed its integrity check")
	}
	prev := head.MAC
	if prev == nil {
		prev = make([]byte, auditMACLen)
	}
	for _, r := range recs {
		head.Seq++
		r.Seq, r.Prev = head.Seq, prev
		r.MAC = auditMAC(key, r)
		prev = r.MAC
	}
	head.MAC = prev
	return tx.AppendAudit(recs, encodeAuditHead(key, head))
}

// commandAudit is the record of one command.
func commandAudit(index uint64, c *Command, refusal error) *audit.Record {
	r := &audit.Record{Index: index, Time: c.Time, Kind: audit.KindCommand, Op: string(c.Op), User: c.Actor,
		Cert: c.Cert, Node: c.Node, Object: c.ObjectID, Subject: c.Name, Count: 1}
	if r.User == "" && loginOps[c.Op] {
		r.User = c.Name
	}
	if c.User != nil && r.Subject == "" {
		r.Subject = c.User.Name
	}
	if r.Object == 0 && len(c.Objects) > 0 {
		// A key pair: the record names the first object; the second's ID
		// is the next one's, and both are listed by ListAudit's object
		// filter through the first.
		r.Object = c.Objects[0].ID
	}
	if refusal != nil {
		r.Result = hsmerr.RV(refusal)
		if r.Result == 0 {
			r.Result = uint64(ck.CKR_GENERAL_ERROR)
		}
	}
	return r
}

var loginOps = map[Op]bool{OpLoginFailed: true, OpLoginOK: true}

// AuditProof is what a node puts in an OpAudit command to show it holds
// the domain key: an HMAC over the node, the batch number and the counts.
func AuditProof(s *seal.Sealer, node string, batch uint64, uses []audit.UseCount) []byte {
	h := hmac.New(sha256.New, s.AuditKey())
	b := []byte("openhsm audit batch v1")
	b = fields.AppendStr(b, node)
	b = binary.BigEndian.AppendUint64(b, batch)
	for _, u := range uses {
		b = binary.BigEndian.AppendUint64(b, uint64(u.Time))
		b = fields.AppendStr(b, u.User)
		b = fields.AppendStr(b, u.Cert)
		b = binary.BigEndian.AppendUint64(b, u.Object)
		b = fields.AppendStr(b, u.Op)
		b = binary.BigEndian.AppendUint64(b, u.Result)
		b = binary.BigEndian.AppendUint64(b, u.Count)
	}
	h.Write(b)
	return h.Sum(nil)
}

// LastAuditBatch is the last OpAudit batch applied from a node (0: none).
func LastAuditBatch(get func(string) ([]byte, error), node string) (uint64, error) {
	b, err := get(metaAuditBatch + node)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("meta %s%s is malformed", metaAuditBatch, node)
	}
	return binary.BigEndian.Uint64(b), nil
}

// ErrAuditDuplicate is the refusal of a batch already applied; the node
// that retried it may forget it.
const auditDuplicateMsg = "audit batch already applied"

// IsAuditDuplicate tells a refusal of a batch already applied.
func IsAuditDuplicate(err error) bool {
	var e *hsmerr.Error
	return errors.As(err, &e) && e.RV == ck.CKR_FUNCTION_REJECTED && e.Msg == auditDuplicateMsg
}

// applyAudit records a node's key-use counts. Its authority is the node
// itself: no user may send it (a user's commands carry an actor), and its
// proof shows the sender holds the domain key.
func applyAudit(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	if c.Actor != "" || c.Role != 0 {
		return nil, hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "audit records come only from nodes")
	}
	if c.Node == "" || len(c.Node) > 64 || c.Batch == 0 || c.Batch >= 1<<63 {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "an audit batch needs its node and batch number")
	}
	if len(c.Uses) == 0 || len(c.Uses) > audit.MaxUses {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "an audit batch holds 1 to %d counts", audit.MaxUses)
	}
	if !hmac.Equal(c.Proof, AuditProof(s, c.Node, c.Batch, c.Uses)) {
		return nil, hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "the audit batch's proof does not check")
	}
	for _, u := range c.Uses {
		if !audit.UseOps[u.Op] || u.Count == 0 || u.Object >= 1<<63 || len(u.User) > 64 || len(u.Cert) > 64 {
			return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "malformed key-use count")
		}
	}
	last, err := LastAuditBatch(tx.Meta, c.Node)
	if err != nil {
		return nil, err
	}
	if c.Batch <= last {
		return nil, hsmerr.Errorf(ck.CKR_FUNCTION_REJECTED, auditDuplicateMsg)
	}
	return nil, tx.PutMeta(metaAuditBatch+c.Node, binary.BigEndian.AppendUint64(nil, c.Batch))
}

// auditRecords is what a command adds to the chain: one record per key-use
// count of an applied OpAudit and one per request of an applied OpKMSAudit
// (their own success is not worth a record), else one record of the
// command, applied or refused. OpInit is not recorded:
// each node applies it to its own store before it joins, where the domain
// key may not be unsealed yet, and a record there would differ by node.
func auditRecords(index uint64, c *Command, refusal error) []*audit.Record {
	if c.Op == OpInit {
		return nil
	}
	if c.Op == OpAudit && refusal == nil {
		recs := make([]*audit.Record, len(c.Uses))
		for i, u := range c.Uses {
			recs[i] = &audit.Record{Index: index, Time: u.Time, Kind: audit.KindUse, Op: u.Op, User: u.User, Cert: u.Cert,
				Node: c.Node, Object: u.Object, Result: u.Result, Count: u.Count}
		}
		return recs
	}
	if c.Op == OpKMSAudit && refusal == nil {
		return kmsAuditRecords(index, c)
	}
	return []*audit.Record{commandAudit(index, c, refusal)}
}

// SortAuditUses puts counts in a fixed order (time, user, cert, object, op,
// result), so a batch's encoding does not depend on map order.
func SortAuditUses(u []audit.UseCount) {
	sort.Slice(u, func(i, j int) bool {
		a, b := u[i], u[j]
		if a.Time != b.Time {
			return a.Time < b.Time
		}
		if c := strings.Compare(a.User, b.User); c != 0 {
			return c < 0
		}
		if c := strings.Compare(a.Cert, b.Cert); c != 0 {
			return c < 0
		}
		if a.Object != b.Object {
			return a.Object < b.Object
		}
		if c := strings.Compare(a.Op, b.Op); c != 0 {
			return c < 0
		}
		return a.Result < b.Result
	})
}

// AuditQuery selects records for reading; zero fields select anything.
type AuditQuery struct {
	AfterSeq uint64   // only records after this sequence number
	Since    int64    // only records at or after this Unix time (0: any)
	User     string   // only this user's (or KMS principal's) records ("": any)
	Object   uint64   // only records of this object (0: any)
	Kinds    []string // only records of these kinds (none: any)
	Subject  string   // only records with this subject: a user name, or a KMS record's key ARN
	// KeyID: only KMS records of the key with this ID, in any region
	// (their subject is an ARN ending in ":key/" and the ID). An ID is
	// letters, digits and '-'; any other selects nothing.
	KeyID string
	Limit int // at most this many (0: no limit)
}

// Audit problems VerifyAudit reports.
const (
	AuditEdited    = "edited"
	AuditMissing   = "missing"
	AuditReordered = "reordered"
	AuditBroken    = "chain broken"
	AuditTruncated = "truncated"
	AuditHeadBad   = "head edited"
)

// AuditReport is the outcome of VerifyAudit.
type AuditReport struct {
	OK       bool
	Records  uint64 // records checked
	HeadSeq  uint64 // the head's sequence number
	FirstBad uint64 // the first sequence number found wrong (0 when OK)
	Problem  string // one of the Audit* problems
	Detail   string
}

// auditVerifyPage is how many records VerifyAudit reads at a time.
const auditVerifyPage = 1000

// reorderWindow is how far VerifyAudit looks for the position a record
// with a bad MAC was written at, to tell a move from an edit.
const reorderWindow = 16

// VerifyAudit recomputes the chain of a store from the first record and
// reports the first problem: a record whose MAC does not match (edited), a
// gap in the sequence numbers (missing), a record that carries another
// position's MAC (reordered), a record that does not follow the one before
// (chain broken), or a head that disagrees with the last record (truncated,
// head edited).
func VerifyAudit(st Store, s *seal.Sealer) (*AuditReport, error) {
	if s == nil {
		return nil, hsmerr.Errorf(ck.CKR_CRYPTOKI_NOT_INITIALIZED, "the domain key is not unsealed")
	}
	key := s.AuditKey()
	// Read the head first: records appended while we read are past it.
	head, present, headOK, err := readAuditHead(key, st.Meta)
	if err != nil {
		return nil, err
	}
	rep := &AuditReport{HeadSeq: head.Seq}
	fail := func(seq uint64, problem, format string, args ...any) (*AuditReport, error) {
		rep.FirstBad, rep.Problem, rep.Detail = seq, problem, fmt.Sprintf(format, args...)
		return rep, nil
	}
	if !headOK {
		return fail(head.Seq, AuditHeadBad, "the chain's head in meta fails its MAC")
	}
	prev := make([]byte, auditMACLen)
	var expect uint64 = 1
	for {
		recs, err := st.AuditRecords(AuditQuery{AfterSeq: expect - 1, Limit: auditVerifyPage})
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			if present && r.Seq > head.Seq {
				break
			}
			if r.Seq != expect {
				return fail(expect, AuditMissing, "records %d to %d are missing", expect, r.Seq-1)
			}
			// A detail on a record of a kind that does not carry one is
			// outside its MAC: it was put in afterwards.
			if !hmac.Equal(r.MAC, auditMAC(key, r)) || r.Kind != audit.KindKMS && r.Detail != "" {
				if at := auditFindPosition(key, r); at != 0 {
					return fail(r.Seq, AuditReordered, "record %d holds the record written as %d", r.Seq, at)
				}
				return fail(r.Seq, AuditEdited, "record %d does not match its MAC", r.Seq)
			}
			if !bytes.Equal(r.Prev, prev) {
				return fail(r.Seq, AuditBroken, "record %d does not follow record %d", r.Seq, r.Seq-1)
			}
			prev = r.MAC
			rep.Records++
			expect++
		}
		if len(recs) < auditVerifyPage || (present && expect > head.Seq) {
			break
		}
	}
	last := expect - 1
	switch {
	case !present && last > 0:
		return fail(last, AuditHeadBad, "the store holds %d records but no head", last)
	case last < head.Seq:
		return fail(last+1, AuditTruncated, "records %d to %d are missing at the end", last+1, head.Seq)
	case head.Seq > 0 && !hmac.Equal(prev, head.MAC):
		return fail(head.Seq, AuditHeadBad, "the head does not name record %d", head.Seq)
	}
	rep.OK = true
	return rep, nil
}

// auditFindPosition looks for the sequence number, near the record's own,
// under which its MAC checks: then it was moved, not edited.
func auditFindPosition(key []byte, r *audit.Record) uint64 {
	c := *r
	for d := uint64(1); d <= reorderWindow; d++ {
		for _, seq := range []uint64{r.Seq + d, r.Seq - d} {
			if seq == 0 || seq > r.Seq+reorderWindow {
				continue
			}
			c.Seq = seq
			if hmac.Equal(r.MAC, auditMAC(key, &c)) {
				return seq
			}
		}
	}
	return 0
}
