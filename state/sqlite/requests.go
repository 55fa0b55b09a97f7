package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Request-ID records: the requests table (migration 0005). Before it they
// were meta rows, which a store written by an older build still holds on
// its first open, and a snapshot stream before version 3 still carries:
//
//	req/<actor>/<id>                   the record (JSON, with its time)
//	reqexp/<time %016x>/<index %016x>  "<actor>/<id>": the expiry queue
//	req_count                          how many records there are
//
// convertMetaRequests moves them into the table, numbered after any record
// already there in the order of the expiry queue (oldest first), and drops
// the three kinds of rows. A record the queue does not name, or whose JSON
// is malformed, could never be read back or expired either: it is dropped.
// The same rows give the same table on every node.

func getRequest(row *sql.Row, actor, id string) ([]byte, error) {
	var v []byte
	err := row.Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(fmt.Sprintf("request %s/%s", actor, id))
	}
	if err != nil {
		return nil, fmt.Errorf("state/sqlite: read request %s/%s: %w", actor, id, err)
	}
	return v, nil
}

// The queue's value is "<actor>/<id>" with a 32-digit ID: the actor is all
// but its last 33 bytes. Values are blobs; text comparisons need casts.
const convertMetaRequestsSQL = `
INSERT INTO requests (seq, actor, id, time, record)
SELECT ? + row_number() OVER (ORDER BY q.key),
	CAST(substr(q.value, 1, length(q.value) - 33) AS TEXT),
	CAST(substr(q.value, length(q.value) - 31) AS TEXT),
	coalesce(json_extract(CAST(r.value AS TEXT), '$.time'), 0),
	r.value
FROM meta q JOIN meta r ON r.key = 'req/' || CAST(q.value AS TEXT)
WHERE q.key >= 'reqexp/' AND q.key < 'reqexp0'
	AND length(q.value) > 33 AND json_valid(CAST(r.value AS TEXT))
ORDER BY q.key`

// metaRequestRows is a condition on meta that picks those rows.
const metaRequestRows = `(key >= 'req/' AND key < 'req0') OR (key >= 'reqexp/' AND key < 'reqexp0') OR key = 'req_count'`

// execQuerier is a *sql.Tx, or anything else that runs statements.
type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// convertMetaRequests moves request records kept as meta rows into the
// requests table. It writes nothing when there are none.
func convertMetaRequests(ctx context.Context, db execQuerier) error {
	var base int64
	var found bool
	err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM meta WHERE `+metaRequestRows+`),
		coalesce((SELECT max(seq) FROM requests), 0)`).Scan(&found, &base)
	if err != nil {
		return fmt.Errorf("convert request records: %w", err)
	}
	if !found {
		return nil
	}
	if _, err := db.ExecContext(ctx, convertMetaRequestsSQL, base); err != nil {
		return fmt.Errorf("convert request records: %w", err)
	}
	if _, err := db.ExecContext(ctx, `DELETE FROM meta WHERE `+metaRequestRows); err != nil {
		return fmt.Errorf("convert request records: %w", err)
	}
	return nil
}

// convertOnOpen runs convertMetaRequests in a transaction of its own: the
// first open of a store an older build wrote.
func convertOnOpen(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("convert request records: %w", err)
	}
	if err := convertMetaRequests(ctx, tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}
