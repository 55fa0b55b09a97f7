package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/openhsm/openhsm/audit"
	"github.com/openhsm/openhsm/state"
)

// The audit table: records are appended by Update after the command's
// savepoint, so a refused command's record is kept (see tx.AppendAudit).

const auditCols = `seq, prev, idx, time, kind, op, user, cert, node, object, subject, result, count, mac, detail`

const insertAuditSQL = `INSERT INTO audit (` + auditCols + `) VALUES (?, coalesce(?, x''), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, coalesce(?, x''), ?)`

// AppendAudit queues the records and the head; Update writes them after
// fn returned, whatever it returned.
func (t *tx) AppendAudit(recs []*audit.Record, head []byte) error {
	if err := t.checkDone(); err != nil {
		return err
	}
	if t.audit != nil {
		return errors.New("state/sqlite: AppendAudit called twice in one Update")
	}
	for _, r := range recs {
		if r.Seq == 0 || r.Seq >= 1<<63 || r.Object >= 1<<63 {
			return fmt.Errorf("state/sqlite: audit record %d out of range", r.Seq)
		}
	}
	t.audit = &pendingAudit{recs: recs, head: append([]byte(nil), head...)}
	return nil
}

type pendingAudit struct {
	recs []*audit.Record
	head []byte
}

// writeAudit writes what AppendAudit queued, inside Update's transaction.
func (t *tx) writeAudit(ctx context.Context) error {
	if t.audit == nil {
		return nil
	}
	st := t.stmt(wInsertAudit)
	for _, r := range t.audit.recs {
		if _, err := st.ExecContext(ctx, int64(r.Seq), r.Prev, int64(r.Index), r.Time, r.Kind, r.Op, r.User, r.Cert,
			r.Node, int64(r.Object), r.Subject, int64(r.Result), int64(r.Count), r.MAC, r.Detail); err != nil {
			return fmt.Errorf("state/sqlite: audit record %d: %w", r.Seq, err)
		}
	}
	if _, err := t.stmt(wPutMeta).ExecContext(ctx, state.MetaAuditHead, t.audit.head); err != nil {
		return fmt.Errorf("state/sqlite: audit head: %w", err)
	}
	return nil
}

// AuditRecords returns the records q selects, by sequence number.
func (s *Store) AuditRecords(q state.AuditQuery) ([]*audit.Record, error) {
	conds := []string{"seq > ?"}
	args := []any{int64(min(q.AfterSeq, 1<<63-1))}
	if q.Since != 0 {
		conds = append(conds, "time >= ?")
		args = append(args, q.Since)
	}
	if q.User != "" {
		conds = append(conds, "user = ?")
		args = append(args, q.User)
	}
	if q.Object != 0 {
		if q.Object >= 1<<63 {
			return nil, nil
		}
		conds = append(conds, "object = ?")
		args = append(args, int64(q.Object))
	}
	if len(q.Kinds) > 0 {
		conds = append(conds, "kind IN (?"+strings.Repeat(", ?", len(q.Kinds)-1)+")")
		for _, k := range q.Kinds {
			args = append(args, k)
		}
	}
	if q.Subject != "" {
		conds = append(conds, "subject = ?")
		args = append(args, q.Subject)
	}
	if q.KeyID != "" {
		if !isKeyID(q.KeyID) {
			return nil, nil
		}
		// GLOB, unlike LIKE, is case-sensitive; the ID holds none of its
		// wildcards (isKeyID), so the pattern is literal past "arn:*".
		conds = append(conds, "kind = ? AND subject GLOB ?")
		args = append(args, audit.KindKMS, "arn:*:key/"+q.KeyID)
	}
	query := `SELECT ` + auditCols + ` FROM audit WHERE ` + strings.Join(conds, " AND ") + ` ORDER BY seq`
	if q.Limit > 0 {
		query += fmt.Sprintf(" LIMIT %d", q.Limit)
	}
	rows, err := s.r.QueryContext(context.Background(), query, args...)
	if err != nil {
		return nil, fmt.Errorf("state/sqlite: audit: %w", err)
	}
	defer rows.Close()
	var out []*audit.Record
	for rows.Next() {
		r, err := scanAudit(rows)
		if err != nil {
			return nil, fmt.Errorf("state/sqlite: audit: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("state/sqlite: audit: %w", err)
	}
	return out, nil
}

// isKeyID: a KMS key ID as the key filter takes it, letters, digits and
// '-', at most 128.
func isKeyID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func scanAudit(rows *sql.Rows) (*audit.Record, error) {
	var r audit.Record
	var seq, idx, obj, res, cnt int64
	if err := rows.Scan(&seq, &r.Prev, &idx, &r.Time, &r.Kind, &r.Op, &r.User, &r.Cert, &r.Node, &obj, &r.Subject,
		&res, &cnt, &r.MAC, &r.Detail); err != nil {
		return nil, err
	}
	r.Seq, r.Index, r.Object, r.Result, r.Count = uint64(seq), uint64(idx), uint64(obj), uint64(res), uint64(cnt)
	r.Prev, r.MAC = nonNil(r.Prev), nonNil(r.MAC)
	return &r, nil
}
