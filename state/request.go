package state

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

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
// about, and cannot collide with, another's. Records live in meta rows, so
// snapshots and backups carry them; they expire by Command.Time, oldest
// first, after RequestTTL or past MaxRequests. See docs/client.md.

// RequestIDLen is the length of a request ID: 128 bits in lowercase hex.
const RequestIDLen = 32

// RequestTTL is how long (seconds of Command.Time) a request's outcome is
// kept: far longer than any call's deadline, so any retry finds it.
const RequestTTL = 24 * 60 * 60

// MaxRequests bounds the records kept; past it the oldest go first.
const MaxRequests = 200000

// requestExpireBatch bounds how many expired records one command drops, so
// that no single apply does unbounded work.
const requestExpireBatch = 8

// Meta keys of the records:
//
//	req/<actor>/<id>                    the RequestRecord (JSON)
//	reqexp/<time %016x>/<index %016x>   "<actor>/<id>": the expiry queue, in
//	                                    (time, log index) order
//	req_count                           how many records there are (u64)
const (
	metaReqPrefix    = "req/"
	metaReqExpPrefix = "reqexp/"
	metaReqCount     = "req_count"
)

// RequestRecord is the recorded outcome of the first command that carried a
// request ID.
type RequestRecord struct {
	Op      Op       `json:"op"`
	Time    int64    `json:"time"`
	RV      uint64   `json:"rv,omitempty"`  // 0: it succeeded
	Msg     string   `json:"msg,omitempty"` // the refusal's message
	Objects []uint64 `json:"objects,omitempty"`
	Expiry  string   `json:"expiry"` // its key in the expiry queue

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

// requestKey is the meta key of c's record, or "" when c is not
// deduplicated (no ID, an op that is not, or no valid actor).
func requestKey(c *Command) string {
	if c.RequestID == "" || !Deduplicated(c.Op) || !ValidRequestID(c.RequestID) || ValidUserName(c.Actor) != nil {
		return ""
	}
	return metaReqPrefix + c.Actor + "/" + c.RequestID
}

// RequestKey is the meta key of actor's record of id, or "" if either is
// malformed.
func RequestKey(actor, id string) string {
	return requestKey(&Command{Op: OpCreateObjects, Actor: actor, RequestID: id})
}

// ReadRequest reads a record; nil if there is none.
func ReadRequest(get func(string) ([]byte, error), key string) (*RequestRecord, error) {
	b, err := get(key)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r RequestRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("meta %s is malformed", key)
	}
	return &r, nil
}

// applyDeduped applies c, whose record key is key, or answers it with the
// outcome recorded for key. It returns the objects changed and the
// command's refusal; err is a failure of the store.
func applyDeduped(tx Tx, s *seal.Sealer, c *Command, index uint64, key string, fn applyFunc) (changed []uint64, refusal, err error) {
	rec, err := ReadRequest(tx.Meta, key)
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
	if err := putRequest(tx, c, index, key, rec); err != nil {
		return nil, nil, err
	}
	if ferr != nil {
		return nil, rec.Err(), nil
	}
	return ids, nil, nil
}

// putRequest writes a new record, its place in the expiry queue and the
// count, then drops what has expired by c.Time.
func putRequest(tx Tx, c *Command, index uint64, key string, rec *RequestRecord) error {
	t := c.Time
	if t < 0 {
		t = 0
	}
	rec.Expiry = fmt.Sprintf("%s%016x/%016x", metaReqExpPrefix, uint64(t), index)
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := tx.PutMeta(key, b); err != nil {
		return err
	}
	if err := tx.PutMeta(rec.Expiry, []byte(strings.TrimPrefix(key, metaReqPrefix))); err != nil {
		return err
	}
	n, err := requestCount(tx)
	if err != nil {
		return err
	}
	n++
	old, err := tx.MetaKeys(metaReqExpPrefix, requestExpireBatch)
	if err != nil {
		return err
	}
	for _, ek := range old {
		at, ok := expiryTime(ek)
		if !ok {
			return fmt.Errorf("meta %s is malformed", ek)
		}
		if n <= MaxRequests && at >= c.Time-RequestTTL {
			break
		}
		ref, err := tx.Meta(ek)
		if err != nil {
			return err
		}
		if err := tx.DeleteMeta(metaReqPrefix + string(ref)); err != nil {
			return err
		}
		if err := tx.DeleteMeta(ek); err != nil {
			return err
		}
		n--
	}
	return tx.PutMeta(metaReqCount, binary.BigEndian.AppendUint64(nil, n))
}

func requestCount(tx Tx) (uint64, error) {
	b, err := tx.Meta(metaReqCount)
	switch {
	case errors.Is(err, ErrNotFound):
		return 0, nil
	case err != nil:
		return 0, err
	case len(b) != 8:
		return 0, fmt.Errorf("meta %s is malformed", metaReqCount)
	}
	return binary.BigEndian.Uint64(b), nil
}

// expiryTime reads the time out of an expiry queue key.
func expiryTime(key string) (int64, bool) {
	rest, ok := strings.CutPrefix(key, metaReqExpPrefix)
	if !ok || len(rest) != 33 || rest[16] != '/' {
		return 0, false
	}
	var t uint64
	if _, err := fmt.Sscanf(rest[:16], "%016x", &t); err != nil {
		return 0, false
	}
	return int64(t), true
}
