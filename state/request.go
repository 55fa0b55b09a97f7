package state

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/seal"
)

// Request IDs make every write safe to retry. A write whose node or leader
// died while it was being committed has an unknown outcome: it may have
// been applied or not. The client picks a random 128-bit ID per write call
// and sends it with the first try and every retry; the state machine
// records, in the same transaction as the change, the outcome of the first
// command that carried it (the refusal, or success and the objects made),
// and answers any later command with the same ID with that outcome instead
// of applying it again. So a retry never creates a second key, and a retried
// key generation returns the handles the first one made.
//
// A record is keyed by the actor and the ID: one user's ID says nothing
// about, and cannot collide with, another's. Records are rows of their own
// in the store (Tx.PutRequest), numbered in the order they were made, so
// snapshots and backups carry them; they expire by Command.Time, oldest
// first, after RequestTTL or past MaxRequests. Writing one costs one row:
// there is no count to keep and no expiry queue, because the numbers have
// no gaps. See docs/client.md.

// RequestIDLen is the length of a request ID: 128 bits in lowercase hex.
const RequestIDLen = 32

// RequestTTL is how long (seconds of Command.Time) a request's outcome is
// kept: far longer than any call's deadline, so any retry finds it.
const RequestTTL = 24 * 60 * 60

// MaxRequests bounds the records kept; past it the oldest go first.
const MaxRequests = 200000

// maxRequests is MaxRequests, which tests lower.
var maxRequests uint64 = MaxRequests

// requestExpireBatch bounds how many expired records one command drops, so
// that no single apply does unbounded work.
const requestExpireBatch = 8

// RequestRecord is the recorded outcome of the first command that carried a
// request ID.
type RequestRecord struct {
	Op      Op       `json:"op"`
	Time    int64    `json:"time"`
	RV      uint64   `json:"rv,omitempty"`  // 0: it succeeded
	Msg     string   `json:"msg,omitempty"` // the refusal's message
	Objects []uint64 `json:"objects,omitempty"`

	// Reason is the refusal's hsmerr.Reason, so a repeat answers with it
	// too (C_InitPIN tells an existing user by it).
	Reason string `json:"reason,omitempty"`
}

// Err is the recorded refusal, or nil.
func (r *RequestRecord) Err() error {
	if r.RV == ck.CKR_OK {
		return nil
	}
	return &hsmerr.Error{RV: r.RV, Msg: r.Msg, Reason: hsmerr.Reason(r.Reason)}
}

// ValidRequestID accepts exactly RequestIDLen lowercase hex digits.
func ValidRequestID(id string) bool {
	if len(id) != RequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// dedupOps are the ops a request ID deduplicates: the writes a client asks
// for. Login bookkeeping (login_failed, login_ok) never is: a repeated wrong
// guess must count every time. Logout and init are idempotent or internal.
var dedupOps = map[Op]bool{
	OpCreateObjects: true, OpDestroyObject: true, OpSetAttributes: true, OpShare: true, OpUnshare: true,
	OpCreateUser: true, OpDeleteUser: true, OpSetPassword: true, OpUnlockUser: true,
	OpWipeToken: true,
}

// Deduplicated reports whether a request ID deduplicates op.
func Deduplicated(op Op) bool { return dedupOps[op] }

// deduplicated reports whether c's request ID deduplicates it: it has one,
// well formed, an op that is, and a valid actor.
func deduplicated(c *Command) bool {
	return c.RequestID != "" && Deduplicated(c.Op) && ValidRequestID(c.RequestID) && ValidUserName(c.Actor) == nil
}

// RequestReader is what a record is read from: a Store, or a Tx.
type RequestReader interface {
	Request(actor, id string) ([]byte, error)
}

// ReadRequest reads actor's record of id; nil if there is none or either
// is malformed.
func ReadRequest(r RequestReader, actor, id string) (*RequestRecord, error) {
	if !deduplicated(&Command{Op: OpCreateObjects, Actor: actor, RequestID: id}) {
		return nil, nil
	}
	b, err := r.Request(actor, id)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rec RequestRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("the record of request %s/%s is malformed", actor, id)
	}
	return &rec, nil
}

// applyDeduped applies c, which deduplicated accepts, or answers it with
// the outcome recorded for its request ID. It returns the objects changed
// and the command's refusal; err is a failure of the store.
func applyDeduped(tx Tx, s *seal.Sealer, c *Command, fn applyFunc) (changed []uint64, refusal, err error) {
	rec, err := ReadRequest(tx, c.Actor, c.RequestID)
	if err != nil {
		return nil, nil, err
	}
	if rec != nil {
		if rec.Op != c.Op {
			// The same ID for another operation is a client's mistake; it
			// neither applies nor replaces what the first one recorded.
			return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "the request ID was already used for another operation"), nil
		}
		return nil, rec.Err(), nil
	}
	var ids []uint64
	ferr := tx.Savepoint(func() error {
		var err error
		ids, err = fn(tx, s, c)
		return err
	})
	rec = &RequestRecord{Op: c.Op, Time: c.Time}
	var te *hsmerr.Error
	switch {
	case ferr == nil:
		if c.Op == OpCreateObjects {
			rec.Objects = ids
		}
	case errors.As(ferr, &te):
		rec.RV, rec.Msg, rec.Reason = te.RV, te.Msg, string(te.Reason)
		if te.Err != nil {
			rec.Msg += ": " + te.Err.Error()
		}
		if rec.RV == ck.CKR_OK {
			rec.RV = ck.CKR_FUNCTION_FAILED
		}
	default:
		return nil, nil, ferr // the store failed: nothing is recorded
	}
	if err := putRequest(tx, c, rec); err != nil {
		return nil, nil, err
	}
	if ferr != nil {
		return nil, rec.Err(), nil
	}
	return ids, nil, nil
}

// putRequest writes a new record, then drops the oldest ones while there
// are more than maxRequests or they expired by c.Time, at most
// requestExpireBatch of them. Dropping stops at the first record that is
// kept, so the numbers stay without gaps and a record is never dropped
// before its own time is up, even if an older record has a later time.
func putRequest(tx Tx, c *Command, rec *RequestRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	newest, err := tx.PutRequest(c.Actor, c.RequestID, c.Time, b)
	if err != nil {
		return err
	}
	old, err := tx.OldestRequests(requestExpireBatch)
	if err != nil {
		return err
	}
	var through uint64
	for _, o := range old {
		if o.Seq > newest {
			return fmt.Errorf("request record %d is newer than the newest, %d", o.Seq, newest)
		}
		if newest-o.Seq+1 <= maxRequests && o.Time >= c.Time-RequestTTL {
			break
		}
		through = o.Seq
	}
	if through == 0 {
		return nil
	}
	return tx.DeleteRequestsThrough(through)
}
