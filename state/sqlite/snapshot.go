package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/openhsm/openhsm/snapshot"
	"github.com/openhsm/openhsm/state"
)

// Snapshots and restore. The stream format is snapshot.Encoder's; it
// carries every column of users, objects, shares, meta, audit and requests, so a restored
// store holds exactly the rows of the one snapshotted. The applied index
// travels in the stream's header; schema_version is not carried (the stream
// is logical, and the restoring store keeps its own schema).

// pinned is a state.StoreSnapshot: a read transaction on a connection of
// the read pool, held until Close. In WAL mode it sees the state as of its
// first read and does not hold up the writer.
type pinned struct {
	mu     sync.Mutex
	conn   *sql.Conn
	tx     *sql.Tx
	hdr    snapshot.Header
	closed bool
}

var _ state.StoreSnapshot = (*pinned)(nil)

// Snapshot pins the current state: it takes a connection of the read pool,
// begins a transaction and reads the applied index and the row counts, which
// fixes the transaction's view of the database. Updates go on meanwhile and
// are not seen by it. Close it soon: while it is open the WAL cannot be
// checkpointed past its view and grows, and it holds one read connection.
func (s *Store) Snapshot() (state.StoreSnapshot, error) {
	ctx := context.Background()
	conn, err := s.r.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("state/sqlite: snapshot: %w", err)
	}
	tx, err := conn.BeginTx(ctx, nil) // a deferred BEGIN: the first read pins
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("state/sqlite: snapshot: begin: %w", err)
	}
	var idx, meta, users, objects, shares, audit, requests int64
	err = tx.QueryRowContext(ctx, `SELECT
		coalesce((SELECT idx FROM applied WHERE id = 1), 0),
		(SELECT count(*) FROM meta),
		(SELECT count(*) FROM users),
		(SELECT count(*) FROM objects),
		(SELECT count(*) FROM shares s JOIN objects o ON o.id = s.object_id),
		(SELECT count(*) FROM audit),
		(SELECT count(*) FROM requests)`).Scan(&idx, &meta, &users, &objects, &shares, &audit, &requests)
	if err != nil {
		tx.Rollback()
		conn.Close()
		return nil, fmt.Errorf("state/sqlite: snapshot: %w", err)
	}
	return &pinned{conn: conn, tx: tx, hdr: snapshot.Header{
		Index: uint64(idx), Meta: uint64(meta), Users: uint64(users), Objects: uint64(objects), Shares: uint64(shares),
		Audit: uint64(audit), Requests: uint64(requests),
	}}, nil
}

func (sn *pinned) Index() uint64 { return sn.hdr.Index }

func (sn *pinned) Counts() (users, objects int) { return int(sn.hdr.Users), int(sn.hdr.Objects) }

// Close ends the read transaction and gives the connection back. It is
// safe to call more than once.
func (sn *pinned) Close() error {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if sn.closed {
		return nil
	}
	sn.closed = true
	return errors.Join(sn.tx.Rollback(), sn.conn.Close())
}

// progressEvery is how many records pass between progress calls.
const progressEvery = 1000

// WriteTo streams the pinned state to w. It may be called again (say, to
// retry a failed transfer) and writes the same stream each time.
func (sn *pinned) WriteTo(w io.Writer, progress func(done, total int)) (int64, error) {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if sn.closed {
		return 0, errors.New("state/sqlite: snapshot is closed")
	}
	enc, err := snapshot.NewEncoder(w, sn.hdr)
	if err != nil {
		return 0, fmt.Errorf("state/sqlite: snapshot: %w", err)
	}
	total := int(sn.hdr.Records())
	done := 0
	put := func(r *snapshot.Record) error {
		if err := enc.Write(r); err != nil {
			return err
		}
		done++
		if progress != nil && done%progressEvery == 0 {
			progress(done, total)
		}
		return nil
	}
	if progress != nil {
		progress(0, total)
	}
	err = sn.writeRows(put)
	if err == nil {
		err = enc.Close()
	}
	if err != nil {
		return enc.Written(), fmt.Errorf("state/sqlite: snapshot: %w", err)
	}
	if progress != nil && done%progressEvery != 0 {
		progress(done, total)
	}
	return enc.Written(), nil
}

func (sn *pinned) writeRows(put func(*snapshot.Record) error) error {
	ctx := context.Background()
	if err := eachRow(sn.tx, `SELECT key, value FROM meta ORDER BY key`, func(rows *sql.Rows) error {
		var m snapshot.Meta
		if err := rows.Scan(&m.Key, &m.Value); err != nil {
			return err
		}
		m.Value = nonNil(m.Value)
		return put(&snapshot.Record{Meta: &m})
	}); err != nil {
		return fmt.Errorf("meta: %w", err)
	}

	if err := eachRow(sn.tx, `SELECT name, role, password_hash, failed_logins, locked, generation, created, number,
		mac, mac IS NOT NULL FROM users ORDER BY name`, func(rows *sql.Rows) error {
		var u snapshot.User
		var hasMAC bool
		if err := rows.Scan(&u.Name, &u.Role, &u.PasswordHash, &u.FailedLogins, &u.Locked, &u.Generation,
			&u.Created, &u.Number, &u.MAC, &hasMAC); err != nil {
			return err
		}
		u.MAC = nullable(u.MAC, hasMAC)
		return put(&snapshot.Record{User: &u})
	}); err != nil {
		return fmt.Errorf("users: %w", err)
	}

	// Objects by ID, each followed by its shares: two cursors on the same
	// transaction, merged. Both walk an index in order (the rowid, and the
	// primary key of shares), so SQLite sorts nothing. A share whose object
	// is missing (it cannot happen while foreign keys are enforced) is
	// skipped, as reads never see it either.
	shares, err := sn.tx.QueryContext(ctx, `SELECT object_id, user FROM shares ORDER BY object_id, user`)
	if err != nil {
		return fmt.Errorf("shares: %w", err)
	}
	defer shares.Close()
	var sh snapshot.Share
	haveShare := false
	nextShare := func() error {
		haveShare = shares.Next()
		if !haveShare {
			return shares.Err()
		}
		return shares.Scan(&sh.ObjectID, &sh.User)
	}
	if err := nextShare(); err != nil {
		return fmt.Errorf("shares: %w", err)
	}
	if err := eachRow(sn.tx, `SELECT id, owner, class, key_type IS NOT NULL, coalesce(key_type, 0), label, ckaid, attrs,
		sealed, sealed IS NOT NULL, mac, mac IS NOT NULL FROM objects ORDER BY id`, func(rows *sql.Rows) error {
		var o snapshot.Object
		var hasSealed, hasMAC bool
		if err := rows.Scan(&o.ID, &o.Owner, &o.Class, &o.HasKeyType, &o.KeyType, &o.Label, &o.CKAID, &o.Attrs,
			&o.Sealed, &hasSealed, &o.MAC, &hasMAC); err != nil {
			return err
		}
		o.Label, o.CKAID, o.Attrs = nonNil(o.Label), nonNil(o.CKAID), nonNil(o.Attrs)
		o.Sealed, o.MAC = nullable(o.Sealed, hasSealed), nullable(o.MAC, hasMAC)
		if err := put(&snapshot.Record{Object: &o}); err != nil {
			return err
		}
		for haveShare && sh.ObjectID <= o.ID {
			if sh.ObjectID == o.ID {
				s := sh
				if err := put(&snapshot.Record{Share: &s}); err != nil {
					return err
				}
			}
			if err := nextShare(); err != nil {
				return fmt.Errorf("shares: %w", err)
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("objects: %w", err)
	}
	if err := eachRow(sn.tx, `SELECT `+auditCols+` FROM audit ORDER BY seq`, func(rows *sql.Rows) error {
		r, err := scanAudit(rows)
		if err != nil {
			return err
		}
		return put(&snapshot.Record{Audit: r})
	}); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if err := eachRow(sn.tx, `SELECT seq, actor, id, time, record FROM requests ORDER BY seq`, func(rows *sql.Rows) error {
		var q snapshot.Request
		if err := rows.Scan(&q.Seq, &q.Actor, &q.ID, &q.Time, &q.Record); err != nil {
			return err
		}
		q.Record = nonNil(q.Record)
		return put(&snapshot.Record{Request: &q})
	}); err != nil {
		return fmt.Errorf("requests: %w", err)
	}
	return nil
}

// eachRow runs query on tx and calls fn for each row.
func eachRow(tx *sql.Tx, query string, fn func(*sql.Rows) error) error {
	rows, err := tx.QueryContext(context.Background(), query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// nonNil keeps an empty NOT NULL blob apart from NULL: the driver reads an
// empty blob as nil.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// nullable gives nil for NULL and a non-nil slice for any value.
func nullable(b []byte, present bool) []byte {
	if !present {
		return nil
	}
	return nonNil(b)
}

// Restore statements. A nil or empty []byte may bind as NULL, so NOT NULL
// columns coalesce, and nullable ones take an explicit "is set" flag.
const (
	restoreMeta   = `INSERT INTO meta (key, value) VALUES (?, coalesce(?, x''))`
	restoreUser   = `INSERT INTO users (` + userCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, CASE WHEN ? THEN coalesce(?, x'') END, ?)`
	restoreObject = `INSERT INTO objects (id, owner, class, key_type, label, ckaid, attrs, sealed, mac)
	VALUES (?, ?, ?, CASE WHEN ? THEN ? END, coalesce(?, x''), coalesce(?, x''), coalesce(?, x''),
		CASE WHEN ? THEN coalesce(?, x'') END, CASE WHEN ? THEN coalesce(?, x'') END)`
	restoreShare   = `INSERT INTO shares (object_id, user) VALUES (?, ?)`
	restoreRequest = `INSERT INTO requests (seq, actor, id, time, record) VALUES (?, ?, ?, ?, coalesce(?, x''))`
)

// Restore replaces users, objects, shares, meta, audit and request records
// with the stream's rows
// and sets the applied index to index, or to the stream's if index is 0 (an
// applied index of 0 is recorded as none). It reads and checks the stream as
// it writes, all in one write transaction. The request-ID records of a
// stream before version 3 are meta rows, converted as on the first open of
// an older store (convertMetaRequests). A stream that is malformed,
// truncated or corrupt (an error wrapping snapshot.ErrBad), or a
// failure of the reader or the database, rolls everything back and leaves
// the store as it was. Updates wait meanwhile; reads go on and see the old
// state until the commit.
//
// No prepared statement or other state the Store keeps goes stale: the
// schema does not change, SQLite re-prepares statements on a schema change
// anyway, and every read starts a new read transaction, which sees the
// restored rows. Snapshots already open keep their own view.
func (s *Store) Restore(r io.Reader, index uint64) (err error) {
	if index >= 1<<63 {
		return fmt.Errorf("state/sqlite: restore: index %d out of range", index)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return errClosed
	}
	dec, err := snapshot.NewDecoder(r)
	if err != nil {
		return fmt.Errorf("state/sqlite: restore: %w", err)
	}
	if index == 0 {
		index = dec.Header().Index
	}

	ctx := context.Background()
	sqlTx, err := s.w.BeginTx(ctx, nil) // BEGIN IMMEDIATE, from the DSN
	if err != nil {
		return fmt.Errorf("state/sqlite: restore: begin: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = sqlTx.Rollback()
		}
	}()
	if _, err := sqlTx.ExecContext(ctx, `DELETE FROM shares; DELETE FROM objects; DELETE FROM users; DELETE FROM meta; DELETE FROM audit; DELETE FROM requests;`); err != nil {
		return fmt.Errorf("state/sqlite: restore: clear: %w", err)
	}
	var stmts [6]*sql.Stmt
	for i, q := range []string{restoreMeta, restoreUser, restoreObject, restoreShare, insertAuditSQL, restoreRequest} {
		if stmts[i], err = sqlTx.PrepareContext(ctx, q); err != nil {
			return fmt.Errorf("state/sqlite: restore: prepare: %w", err)
		}
		defer stmts[i].Close()
	}
	for {
		rec, err := dec.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("state/sqlite: restore: %w", err)
		}
		switch {
		case rec.Meta != nil:
			m := rec.Meta
			_, err = stmts[0].ExecContext(ctx, m.Key, m.Value)
		case rec.User != nil:
			u := rec.User
			_, err = stmts[1].ExecContext(ctx, u.Name, u.Role, u.PasswordHash, u.FailedLogins, u.Locked,
				u.Generation, u.Created, u.MAC != nil, u.MAC, u.Number)
		case rec.Object != nil:
			o := rec.Object
			_, err = stmts[2].ExecContext(ctx, o.ID, o.Owner, o.Class, o.HasKeyType, o.KeyType, o.Label, o.CKAID,
				o.Attrs, o.Sealed != nil, o.Sealed, o.MAC != nil, o.MAC)
		case rec.Share != nil:
			_, err = stmts[3].ExecContext(ctx, rec.Share.ObjectID, rec.Share.User)
		case rec.Audit != nil:
			r := rec.Audit
			_, err = stmts[4].ExecContext(ctx, int64(r.Seq), r.Prev, int64(r.Index), r.Time, r.Kind, r.Op, r.User,
				r.Cert, r.Node, int64(r.Object), r.Subject, int64(r.Result), int64(r.Count), r.MAC, r.Detail)
		case rec.Request != nil:
			q := rec.Request
			_, err = stmts[5].ExecContext(ctx, q.Seq, q.Actor, q.ID, q.Time, q.Record)
		}
		if err != nil {
			return fmt.Errorf("state/sqlite: restore: write: %w", err)
		}
	}
	if err := convertMetaRequests(ctx, sqlTx); err != nil {
		return fmt.Errorf("state/sqlite: restore: %w", err)
	}
	if index == 0 {
		_, err = sqlTx.ExecContext(ctx, `DELETE FROM applied`)
	} else {
		_, err = sqlTx.StmtContext(ctx, s.wstmts[wSetApplied]).ExecContext(ctx, int64(index))
	}
	if err != nil {
		return fmt.Errorf("state/sqlite: restore: record applied index: %w", err)
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("state/sqlite: restore: commit: %w", err)
	}
	committed = true
	return nil
}
