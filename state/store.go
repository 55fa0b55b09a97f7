package state

import (
	"errors"
	"io"

	"github.com/openhsm/openhsm/audit"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
)

// Store keeps users, token objects and shares. Reads may be served at any
// time; every write goes through Update, which the engine calls only from
// Apply, so that the same commands in the same order give the same state on
// every node.
type Store interface {
	// User returns the named user, or ErrNotFound.
	User(name string) (*object.User, error)
	Users() ([]*object.User, error)
	Object(id uint64) (*object.Object, error)
	// Find returns the objects that match q, ordered by ID.
	Find(q Query) ([]*object.Object, error)
	Meta(key string) ([]byte, error)
	// Request returns the record of actor's request id (see request.go),
	// or ErrNotFound.
	Request(actor, id string) ([]byte, error)
	// MetaScan returns up to limit meta rows whose keys start with prefix
	// and sort after after ("" for the first), in byte order of the keys.
	MetaScan(prefix, after string, limit int) ([]MetaRow, error)
	// AuditRecords returns the audit records q selects, by sequence number.
	AuditRecords(q AuditQuery) ([]*audit.Record, error)
	// AppliedIndex is the index of the last command applied (0 if none).
	AppliedIndex() (uint64, error)
	// Update runs fn in one transaction and records index as applied in the
	// same transaction. If fn returns an error, nothing is written except
	// the applied index and what fn gave Tx.AppendAudit (a refused command
	// is still applied, as a no-op, and recorded); if that error is a
	// *StoreError, nothing at all is written.
	Update(index uint64, fn func(tx Tx) error) error
	// Snapshot pins the store's current state (a read transaction) so it can be
	// streamed while writes go on. The caller must Close it.
	Snapshot() (StoreSnapshot, error)
	// Restore replaces the whole state (users, objects with shares, meta) with
	// a stream written by StoreSnapshot.WriteTo, in one transaction, and records
	// index as the applied index (0 keeps the index recorded in the stream).
	// A malformed or truncated stream is an error and changes nothing.
	Restore(r io.Reader, index uint64) error
	Close() error
}

// BatchStore is a Store that applies several commands in one transaction
// with one commit (group commit): the cluster hands the state machine the
// entries Raft committed together, and they cost one fsync, not one each.
type BatchStore interface {
	Store
	// UpdateBatch runs fns[i] at indexes[i], in order, each exactly as
	// Update would (its own savepoint: a refusal undoes only its writes and
	// still records its index and audit records; each sees the writes of
	// the ones before it), in one transaction. errs[i] is what Update would
	// have returned for fns[i]. A *StoreError from fns[i] stops the batch:
	// the commands before it commit, it writes nothing, and errs[j] for the
	// ones after it wrap ErrNotApplied. err is a failure of the transaction
	// itself, after which nothing of the batch was written.
	UpdateBatch(indexes []uint64, fns []func(tx Tx) error) (errs []error, err error)
}

// ErrNotApplied is returned (wrapped) by BatchStore.UpdateBatch for the
// commands after one under which the store failed: they were not run.
var ErrNotApplied = errors.New("not applied: the store failed under an earlier command of the batch")

// MetaRow is one meta key and its value.
type MetaRow struct {
	Key   string
	Value []byte
}

// Tx is a write transaction.
type Tx interface {
	User(name string) (*object.User, error)
	Users() ([]*object.User, error)
	PutUser(u *object.User) error
	DeleteUser(name string) error
	Object(id uint64) (*object.Object, error)
	// PutObject inserts or replaces the object, its index columns and its
	// shares (Object.SharedWith).
	PutObject(o *object.Object) error
	DeleteObject(id uint64) error
	// CountOwned returns how many objects the user owns.
	CountOwned(owner string) (int, error)
	// RemoveSharesWith drops every share with the user.
	RemoveSharesWith(user string) error
	// OwnedIDs returns the IDs of the objects the user owns, in order.
	OwnedIDs(owner string) ([]uint64, error)
	Meta(key string) ([]byte, error)
	PutMeta(key string, value []byte) error
	// AppendAudit adds audit records (their Seq numbering on from the
	// chain's head) and sets meta MetaAuditHead to head. Unlike every other
	// write, these survive fn's error: a refused command is recorded in the
	// same transaction that records its index. Call it at most once per
	// Update.
	AppendAudit(recs []*audit.Record, head []byte) error
	DeleteMeta(key string) error
	// MetaKeys returns up to limit meta keys that start with prefix, in
	// byte order.
	MetaKeys(prefix string, limit int) ([]string, error)
	// Savepoint runs fn; if fn returns an error, fn's writes are undone
	// and the transaction goes on. It returns fn's error.
	Savepoint(fn func() error) error

	// Request-ID records (request.go) are numbered in the order they are
	// made, without gaps, and are dropped oldest first, so how many there
	// are is the newest's number less the oldest's, plus one.

	// Request returns the record of actor's request id, or ErrNotFound.
	Request(actor, id string) ([]byte, error)
	// PutRequest adds a record for actor's request id, which must have
	// none, as the newest: its number (returned) is one above the newest
	// one's, or 1 when there is none. time is the Command.Time it expires by.
	PutRequest(actor, id string, time int64, record []byte) (seq uint64, err error)
	// OldestRequests returns the numbers and times of up to limit records,
	// oldest first.
	OldestRequests(limit int) ([]RequestAge, error)
	// DeleteRequestsThrough drops every record numbered seq or below.
	DeleteRequestsThrough(seq uint64) error
}

// RequestAge is a request-ID record's number and time.
type RequestAge struct {
	Seq  uint64
	Time int64
}

// Query selects objects. Nil fields match anything.
type Query struct {
	// VisibleTo, when set, keeps objects the user owns or that are shared
	// with the user. Empty means every object (a crypto officer's view).
	VisibleTo string
	// Owner, when set, keeps only the user's own objects.
	Owner   string
	Class   *uint64
	KeyType *uint64
	Label   []byte // nil matches any label; empty matches the empty label
	ID      []byte // CKA_ID; nil matches any
	Limit   int    // 0 means no limit
}

// ErrAlreadyApplied is returned (wrapped) by Store.Update for a log index
// at or below the last applied one: a replay after restart, which the machine
// skips.
var ErrAlreadyApplied = errors.New("command index already applied")

// ErrNotFound is returned by reads of a missing user, object or meta key.
var ErrNotFound = &hsmerr.Error{RV: 0x82, Msg: "not found"} // CKR_OBJECT_HANDLE_INVALID

// StoreSnapshot is a pinned, consistent view of a Store's whole state, from
// Store.Snapshot. It streams that state for a raft snapshot or a backup while
// the store keeps taking writes. It is not safe for concurrent use, but it may
// be written more than once.
type StoreSnapshot interface {
	Index() uint64                // applied index of the pinned state
	Counts() (users, objects int) // known when pinned
	// WriteTo streams the state; progress (may be nil) is called now and then with records done and total.
	WriteTo(w io.Writer, progress func(done, total int)) (int64, error)
	Close() error
}
