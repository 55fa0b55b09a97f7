package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/state"
)

// Write statements, prepared once on the writer connection and bound to
// each Update's transaction with sql.Tx.Stmt.
const (
	wUser = iota
	wUsers
	wPutUser
	wDeleteUser
	wObject
	wPutObject
	wDeleteShares
	wInsertShare
	wDeleteObject
	wCountOwned
	wRemoveSharesWith
	wMeta
	wPutMeta
	wApplied
	wSetApplied
	wMetaKeys
	wInsertAudit
	wSavepointApply
	wRollbackApply
	wReleaseApply
	wSavepointNested
	wRollbackNested
	wReleaseNested
	wOwnedIDs
	wRequest
	wPutRequest
	wOldestRequests
	wDeleteRequests
	numWriteStmts
)

var writeSQL = [numWriteStmts]string{
	wUser:  readSQL[rUser],
	wUsers: readSQL[rUsers],
	wPutUser: `INSERT INTO users (` + userCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (name) DO UPDATE SET number = excluded.number, role = excluded.role, password_hash = excluded.password_hash,
		failed_logins = excluded.failed_logins, locked = excluded.locked,
		generation = excluded.generation, created = excluded.created, mac = excluded.mac`,
	wDeleteUser: `DELETE FROM users WHERE name = ?`,
	wObject:     readSQL[rObject],
	// A nil []byte binds as NULL (a missing label, or MarshalAttrs of no
	// attributes), hence the coalesce; sealed is NULL only when
	// Object.Sealed is nil.
	wPutObject: `INSERT INTO objects (id, owner, class, key_type, label, ckaid, attrs, sealed, mac)
	VALUES (?, ?, ?, ?, coalesce(?, x''), coalesce(?, x''), coalesce(?, x''), CASE WHEN ? THEN coalesce(?, x'') END, ?)
	ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, class = excluded.class,
		key_type = excluded.key_type, label = excluded.label, ckaid = excluded.ckaid,
		attrs = excluded.attrs, sealed = excluded.sealed, mac = excluded.mac`,
	wDeleteShares:     `DELETE FROM shares WHERE object_id = ?`,
	wInsertShare:      `INSERT INTO shares (object_id, user) VALUES (?, ?)`,
	wDeleteObject:     `DELETE FROM objects WHERE id = ?`,
	wCountOwned:       `SELECT count(*) FROM objects WHERE owner = ?`,
	wRemoveSharesWith: `DELETE FROM shares WHERE user = ?`,
	wMeta:             readSQL[rMeta],
	wPutMeta: `INSERT INTO meta (key, value) VALUES (?, coalesce(?, x''))
	ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
	wApplied:     readSQL[rApplied],
	wSetApplied:  `INSERT INTO applied (id, idx) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET idx = excluded.idx`,
	wMetaKeys:    `SELECT key FROM meta WHERE key >= ? AND key < ? ORDER BY key LIMIT ?`,
	wInsertAudit: insertAuditSQL,
	// Savepoints are statements too: prepared once, SQLite does not parse
	// them again for every command (the parse was a tenth of a node's apply
	// CPU in the 3-node key generation profile, docs/performance.md).
	wSavepointApply:  `SAVEPOINT apply`,
	wRollbackApply:   `ROLLBACK TO apply`,
	wReleaseApply:    `RELEASE apply`,
	wSavepointNested: `SAVEPOINT nested`,
	wRollbackNested:  `ROLLBACK TO nested`,
	wReleaseNested:   `RELEASE nested`,
	wOwnedIDs:        `SELECT id FROM objects WHERE owner = ? ORDER BY id`,
	wRequest:         readSQL[rRequest],
	// The new record's number is the newest's plus one: max(seq) reads
	// the last entry of the rowid tree. seq is the rowid, so the result's
	// LastInsertId is the number (RETURNING would cost a temporary table
	// per insert).
	wPutRequest: `INSERT INTO requests (seq, actor, id, time, record)
	VALUES ((SELECT coalesce(max(seq), 0) + 1 FROM requests), ?, ?, ?, coalesce(?, x''))`,
	wOldestRequests: `SELECT seq, time FROM requests ORDER BY seq LIMIT ?`,
	wDeleteRequests: `DELETE FROM requests WHERE seq <= ?`,
}

// ErrReplay is returned (wrapped) by Update for a command index that is not
// above the applied index.
var ErrReplay = state.ErrAlreadyApplied

// Update runs fn in one write transaction (BEGIN IMMEDIATE) and records
// index as the applied index in the same transaction.
//
// If fn returns an error, its writes are rolled back (fn runs inside a
// savepoint), the index and the audit records fn gave AppendAudit are still
// recorded, and Update returns fn's error unchanged: a refused command is
// applied as a no-op. If fn returns a *state.StoreError (the store failed
// under it) or panics, nothing is written, not even the index, and the
// error or panic goes on.
//
// An index that is not above the applied index is refused with an error
// wrapping ErrReplay, before fn runs. Index 0 is "not a replicated command":
// it is neither checked nor recorded (for single-node tools and tests).
//
// Any other error (the database failed) means the command may not have been
// applied: a replicated node must stop rather than carry on.
//
// One Update runs at a time. fn must not call Update, and must not keep tx
// after it returns. Update is UpdateBatch of one command.
func (s *Store) Update(index uint64, fn func(tx state.Tx) error) error {
	errs, err := s.UpdateBatch([]uint64{index}, []func(state.Tx) error{fn})
	if err != nil {
		return err
	}
	return errs[0]
}

// UpdateBatch implements state.BatchStore: it runs each fns[i] at
// indexes[i], in order, as Update would, but all in one write transaction
// with one commit (one fsync with Options.Sync). Each command runs in its
// own savepoint, so a refusal undoes only its own writes, and sees every
// write of the commands before it. The applied index is written once, that
// of the last command that ran, so what commits is always a prefix of the
// batch with the index of its last command.
//
// A *state.StoreError from fns[i] stops the batch: the commands before it
// are committed, fns[i] writes nothing (not even its index), and the
// commands after it do not run (errs[j] wraps state.ErrNotApplied). Any
// other failure of the database, or a panic in fn, commits nothing.
func (s *Store) UpdateBatch(indexes []uint64, fns []func(tx state.Tx) error) (errs []error, err error) {
	if len(indexes) != len(fns) {
		return nil, fmt.Errorf("state/sqlite: %d indexes for %d commands", len(indexes), len(fns))
	}
	for _, index := range indexes {
		if index >= 1<<63 {
			return nil, fmt.Errorf("state/sqlite: command index %d out of range", index)
		}
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	ctx := context.Background()
	sqlTx, err := s.w.BeginTx(ctx, nil) // BEGIN IMMEDIATE, from the DSN
	if err != nil {
		return nil, fmt.Errorf("state/sqlite: begin: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = sqlTx.Rollback()
		}
	}()
	stmts := new([numWriteStmts]*sql.Stmt) // bound to sqlTx once, shared by the batch's commands
	applied, err := getApplied((&tx{s: s, tx: sqlTx, stmts: stmts}).row(wApplied))
	if err != nil {
		return nil, err
	}
	first := applied
	errs = make([]error, len(fns))
	stopped := false
	for i, fn := range fns {
		if stopped {
			errs[i] = fmt.Errorf("state/sqlite: index %d: %w", indexes[i], state.ErrNotApplied)
			continue
		}
		index := indexes[i]
		if index != 0 && index <= applied {
			errs[i] = fmt.Errorf("state/sqlite: %w: index %d, applied index %d", ErrReplay, index, applied)
			continue
		}
		t := &tx{s: s, tx: sqlTx, stmts: stmts}
		fnErr, err := t.apply(ctx, index, fn)
		if err != nil {
			return nil, err
		}
		errs[i] = fnErr
		var se *state.StoreError
		if errors.As(fnErr, &se) {
			stopped = true
			continue
		}
		if index != 0 {
			applied = index
		}
	}
	// The applied index is written once, for the last command that
	// applied: the batch commits as one transaction, so no reader can see
	// a command's writes without it.
	if applied != first {
		if _, err := (&tx{s: s, tx: sqlTx, stmts: stmts}).stmt(wSetApplied).ExecContext(ctx, int64(applied)); err != nil {
			return nil, fmt.Errorf("state/sqlite: record applied index: %w", err)
		}
	}
	start := time.Now()
	if err := sqlTx.Commit(); err != nil {
		return nil, fmt.Errorf("state/sqlite: commit: %w", err)
	}
	if f := s.onCommit.Load(); f != nil {
		(*f)(time.Since(start))
	}
	committed = true
	return errs, nil
}

// apply runs one command of a batch in its savepoint, then writes its audit
// records and its index. fnErr is fn's own error; err a failure of the
// database around it. A *state.StoreError from fn leaves nothing of the
// command behind.
func (t *tx) apply(ctx context.Context, index uint64, fn func(tx state.Tx) error) (fnErr, err error) {
	if _, err := t.stmt(wSavepointApply).ExecContext(ctx); err != nil {
		return nil, fmt.Errorf("state/sqlite: savepoint: %w", err)
	}
	fnErr = t.run(fn)
	var se *state.StoreError
	if fnErr != nil {
		if _, err := t.stmt(wRollbackApply).ExecContext(ctx); err != nil {
			return nil, fmt.Errorf("state/sqlite: roll back refused command (%v): %w", fnErr, err)
		}
	}
	if _, err := t.stmt(wReleaseApply).ExecContext(ctx); err != nil {
		return nil, fmt.Errorf("state/sqlite: release savepoint: %w", err)
	}
	if errors.As(fnErr, &se) {
		// The store failed under the command: write nothing, not even the
		// index, so that the command is applied again after a restart.
		return fnErr, nil
	}
	if err := t.writeAudit(ctx); err != nil {
		return nil, err
	}
	return fnErr, nil
}

// tx is the state.Tx of one Update.
type tx struct {
	s     *Store
	tx    *sql.Tx
	stmts *[numWriteStmts]*sql.Stmt // shared by the commands of a batch
	done  bool                      // fn returned: further calls fail
	audit *pendingAudit             // from AppendAudit, written whatever fn returns
}

var _ state.Tx = (*tx)(nil)

var errTxDone = errors.New("state/sqlite: transaction used after its Update returned")

func (t *tx) run(fn func(state.Tx) error) error {
	defer func() { t.done = true }()
	return fn(t)
}

// stmt returns statement i bound to the transaction.
func (t *tx) stmt(i int) *sql.Stmt {
	if t.stmts[i] == nil {
		t.stmts[i] = t.tx.StmtContext(context.Background(), t.s.wstmts[i])
	}
	return t.stmts[i]
}

func (t *tx) exec(i int, args ...any) (sql.Result, error) {
	if err := t.checkDone(); err != nil {
		return nil, err
	}
	return t.stmt(i).ExecContext(context.Background(), args...)
}

// row runs a single-row query. Callers check t.done first.
func (t *tx) row(i int, args ...any) *sql.Row {
	return t.stmt(i).QueryRowContext(context.Background(), args...)
}

func (t *tx) checkDone() error {
	if t.done {
		return errTxDone
	}
	return nil
}

func (t *tx) User(name string) (*object.User, error) {
	if err := t.checkDone(); err != nil {
		return nil, err
	}
	return getUser(t.row(wUser, name), name)
}

// Users returns every user, ordered by name, as the transaction sees them.
func (t *tx) Users() ([]*object.User, error) {
	if err := t.checkDone(); err != nil {
		return nil, err
	}
	return getUsers(t.stmt(wUsers))
}

func (t *tx) PutUser(u *object.User) error {
	if u == nil || u.Name == "" {
		return errors.New("state/sqlite: put user: empty name")
	}
	_, err := t.exec(wPutUser, u.Name, int64(u.Role), u.PasswordHash, int64(u.FailedLogins),
		u.Locked, int64(u.Generation), u.Created, nilIfEmpty(u.MAC), int64(u.Number))
	if err != nil {
		return fmt.Errorf("state/sqlite: put user %q: %w", u.Name, err)
	}
	return nil
}

// DeleteUser deletes the user, or returns an error wrapping
// state.ErrNotFound. It leaves the user's objects and shares alone: see
// CountOwned and RemoveSharesWith.
func (t *tx) DeleteUser(name string) error {
	res, err := t.exec(wDeleteUser, name)
	if err != nil {
		return fmt.Errorf("state/sqlite: delete user %q: %w", name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("state/sqlite: delete user %q: %w", name, err)
	} else if n == 0 {
		return notFound(fmt.Sprintf("user %q", name))
	}
	return nil
}

// nilIfEmpty stores an empty MAC as NULL; it reads back as nil.
func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func (t *tx) Object(id uint64) (*object.Object, error) {
	if err := t.checkDone(); err != nil {
		return nil, err
	}
	if id >= 1<<63 {
		return nil, notFound(fmt.Sprintf("object %d", id))
	}
	return getObject(t.row(wObject, int64(id)), id)
}

// PutObject inserts or replaces the object and sets its shares to exactly
// o.SharedWith, which must be sorted without duplicates. o.ID must be in
// [1, 2^63) and o.Owner not empty.
func (t *tx) PutObject(o *object.Object) error {
	if o == nil {
		return errors.New("state/sqlite: put object: nil")
	}
	if o.ID == 0 || o.ID >= 1<<63 {
		return fmt.Errorf("state/sqlite: put object: ID %d out of range [1, 2^63)", o.ID)
	}
	if o.Owner == "" {
		return fmt.Errorf("state/sqlite: put object %d: empty owner", o.ID)
	}
	for i, u := range o.SharedWith {
		if u == "" {
			return fmt.Errorf("state/sqlite: put object %d: share with empty user name", o.ID)
		}
		// Object.MAC covers SharedWith in order, and reads return it sorted.
		if i > 0 && o.SharedWith[i-1] >= u {
			return fmt.Errorf("state/sqlite: put object %d: SharedWith not sorted or has duplicates", o.ID)
		}
	}
	id := int64(o.ID)
	var keyType any // NULL for objects that are not keys
	if kt := o.KeyType(); kt != ^uint64(0) {
		keyType = int64(kt)
	}
	_, err := t.exec(wPutObject, id, o.Owner, int64(o.Class()), keyType,
		o.Attrs[0x3], o.Attrs[0x102], object.MarshalAttrs(o.Attrs), // CKA_LABEL, CKA_ID
		o.Sealed != nil, o.Sealed, nilIfEmpty(o.MAC))
	if err != nil {
		return fmt.Errorf("state/sqlite: put object %d: %w", o.ID, err)
	}
	if _, err := t.exec(wDeleteShares, id); err != nil {
		return fmt.Errorf("state/sqlite: put object %d: shares: %w", o.ID, err)
	}
	for _, u := range o.SharedWith {
		if _, err := t.exec(wInsertShare, id, u); err != nil {
			return fmt.Errorf("state/sqlite: put object %d: shares: %w", o.ID, err)
		}
	}
	return nil
}

// DeleteObject deletes the object and its shares, or returns an error
// wrapping state.ErrNotFound.
func (t *tx) DeleteObject(id uint64) error {
	if id == 0 || id >= 1<<63 {
		if err := t.checkDone(); err != nil {
			return err
		}
		return notFound(fmt.Sprintf("object %d", id))
	}
	if _, err := t.exec(wDeleteShares, int64(id)); err != nil {
		return fmt.Errorf("state/sqlite: delete object %d: %w", id, err)
	}
	res, err := t.exec(wDeleteObject, int64(id))
	if err != nil {
		return fmt.Errorf("state/sqlite: delete object %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("state/sqlite: delete object %d: %w", id, err)
	} else if n == 0 {
		return notFound(fmt.Sprintf("object %d", id))
	}
	return nil
}

func (t *tx) CountOwned(owner string) (int, error) {
	if err := t.checkDone(); err != nil {
		return 0, err
	}
	var n int
	if err := t.row(wCountOwned, owner).Scan(&n); err != nil {
		return 0, fmt.Errorf("state/sqlite: count objects of %q: %w", owner, err)
	}
	return n, nil
}

// OwnedIDs returns the IDs of the user's objects, in order.
func (t *tx) OwnedIDs(owner string) ([]uint64, error) {
	if err := t.checkDone(); err != nil {
		return nil, err
	}
	rows, err := t.stmt(wOwnedIDs).QueryContext(context.Background(), owner)
	if err != nil {
		return nil, fmt.Errorf("state/sqlite: objects of %q: %w", owner, err)
	}
	defer rows.Close()
	var ids []uint64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("state/sqlite: objects of %q: %w", owner, err)
		}
		ids = append(ids, uint64(id))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("state/sqlite: objects of %q: %w", owner, err)
	}
	return ids, nil
}

func (t *tx) RemoveSharesWith(user string) error {
	if _, err := t.exec(wRemoveSharesWith, user); err != nil {
		return fmt.Errorf("state/sqlite: remove shares with %q: %w", user, err)
	}
	return nil
}

func (t *tx) Meta(key string) ([]byte, error) {
	if err := t.checkDone(); err != nil {
		return nil, err
	}
	return getMeta(t.row(wMeta, key), key)
}

func (t *tx) PutMeta(key string, value []byte) error {
	if _, err := t.exec(wPutMeta, key, value); err != nil {
		return fmt.Errorf("state/sqlite: put meta %q: %w", key, err)
	}
	return nil
}

func (t *tx) DeleteMeta(key string) error {
	if err := t.checkDone(); err != nil {
		return err
	}
	if _, err := t.tx.ExecContext(context.Background(), `DELETE FROM meta WHERE key = ?`, key); err != nil {
		return fmt.Errorf("state/sqlite: delete meta %q: %w", key, err)
	}
	return nil
}

func (t *tx) Request(actor, id string) ([]byte, error) {
	if err := t.checkDone(); err != nil {
		return nil, err
	}
	return getRequest(t.row(wRequest, actor, id), actor, id)
}

// PutRequest fails (a UNIQUE constraint) if actor's id has a record.
func (t *tx) PutRequest(actor, id string, time int64, record []byte) (uint64, error) {
	res, err := t.exec(wPutRequest, actor, id, time, record)
	if err != nil {
		return 0, fmt.Errorf("state/sqlite: put request %s/%s: %w", actor, id, err)
	}
	seq, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("state/sqlite: put request %s/%s: %w", actor, id, err)
	}
	return uint64(seq), nil
}

func (t *tx) OldestRequests(limit int) ([]state.RequestAge, error) {
	if err := t.checkDone(); err != nil {
		return nil, err
	}
	rows, err := t.stmt(wOldestRequests).QueryContext(context.Background(), limit)
	if err != nil {
		return nil, fmt.Errorf("state/sqlite: oldest requests: %w", err)
	}
	defer rows.Close()
	var out []state.RequestAge
	for rows.Next() {
		var seq int64
		var a state.RequestAge
		if err := rows.Scan(&seq, &a.Time); err != nil {
			return nil, fmt.Errorf("state/sqlite: oldest requests: %w", err)
		}
		a.Seq = uint64(seq)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("state/sqlite: oldest requests: %w", err)
	}
	return out, nil
}

func (t *tx) DeleteRequestsThrough(seq uint64) error {
	if seq >= 1<<63 {
		return fmt.Errorf("state/sqlite: delete requests: number %d out of range", seq)
	}
	if _, err := t.exec(wDeleteRequests, int64(seq)); err != nil {
		return fmt.Errorf("state/sqlite: delete requests through %d: %w", seq, err)
	}
	return nil
}

// MetaKeys walks the meta primary key, so the keys come in byte order
// (SQLite's BINARY collation) whatever the row order on disk.
func (t *tx) MetaKeys(prefix string, limit int) ([]string, error) {
	if err := t.checkDone(); err != nil {
		return nil, err
	}
	if prefix == "" || prefix[len(prefix)-1] == 0xff || limit <= 0 {
		return nil, fmt.Errorf("state/sqlite: meta keys: bad prefix or limit")
	}
	upper := prefix[:len(prefix)-1] + string([]byte{prefix[len(prefix)-1] + 1})
	rows, err := t.stmt(wMetaKeys).QueryContext(context.Background(), prefix, upper, limit)
	if err != nil {
		return nil, fmt.Errorf("state/sqlite: meta keys: %w", err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("state/sqlite: meta keys: %w", err)
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// Savepoint nests inside Update's own savepoint: a refusal inside it undoes
// only its writes, and the caller may still write (say, record the refusal).
func (t *tx) Savepoint(fn func() error) error {
	if err := t.checkDone(); err != nil {
		return err
	}
	ctx := context.Background()
	if _, err := t.stmt(wSavepointNested).ExecContext(ctx); err != nil {
		return fmt.Errorf("state/sqlite: savepoint: %w", err)
	}
	fnErr := fn()
	if fnErr != nil {
		if _, err := t.stmt(wRollbackNested).ExecContext(ctx); err != nil {
			return fmt.Errorf("state/sqlite: roll back to savepoint (%v): %w", fnErr, err)
		}
	}
	if _, err := t.stmt(wReleaseNested).ExecContext(ctx); err != nil {
		return fmt.Errorf("state/sqlite: release savepoint: %w", err)
	}
	return fnErr
}
