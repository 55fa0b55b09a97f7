package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/audit"
	"github.com/openhsm/openhsm/state"
)

// TestMigrateAuditDetail: a store of schema version 3 (before the detail
// column) with records in its trail opens at the current version; its
// records read back unchanged, with an empty detail, and new KMS records
// keep theirs.
func TestMigrateAuditDetail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v3.db")
	raw, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	ctx := context.Background()
	_, err = raw.ExecContext(ctx, `CREATE TABLE schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
INSERT INTO schema_version (id, version) VALUES (1, 0);`)
	require.NoError(t, err)
	for _, m := range migrations[:3] {
		_, err := raw.ExecContext(ctx, m.sql)
		require.NoError(t, err, m.name)
	}
	_, err = raw.ExecContext(ctx, `UPDATE schema_version SET version = 3`)
	require.NoError(t, err)
	_, err = raw.ExecContext(ctx, `INSERT INTO audit (seq, prev, idx, time, kind, op, user, cert, node, object, subject, result, count, mac)
		VALUES (1, x'00', 5, 1700000000, 'use', 'sign', 'alice', 'ab', 'n1', 7, '', 0, 3, x'0102')`)
	require.NoError(t, err)
	require.NoError(t, raw.Close())

	s, err := Open(path, Options{})
	require.NoError(t, err)
	defer s.Close()
	recs, err := s.AuditRecords(state.AuditQuery{})
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, &audit.Record{Seq: 1, Prev: []byte{0}, Index: 5, Time: 1700000000, Kind: audit.KindUse, Op: "sign",
		User: "alice", Cert: "ab", Node: "n1", Object: 7, Count: 3, MAC: []byte{1, 2}}, recs[0])

	kms := &audit.Record{Seq: 2, Prev: []byte{1, 2}, Index: 6, Time: 1700000001, Kind: audit.KindKMS, Op: "Decrypt",
		User: "arn:aws:iam::111122223333:user/bob", Node: "n1", Subject: "arn:aws:kms:us-east-1:111122223333:key/k-1",
		Result: 1, Count: 1, Detail: `{"error":"NotFoundException"}`, MAC: []byte{3}}
	require.NoError(t, s.Update(7, func(tx state.Tx) error { return tx.AppendAudit([]*audit.Record{kms}, []byte("head")) }))
	got, err := s.AuditRecords(state.AuditQuery{AfterSeq: 1})
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, kms, got[0])
	for q, n := range map[*state.AuditQuery]int{
		{KeyID: "k-1"}: 1,
		{KeyID: "k"}:   0,
		{Subject: "arn:aws:kms:us-east-1:111122223333:key/k-1"}: 1,
		{Kinds: []string{audit.KindUse, audit.KindCommand}}:     1,
		{Kinds: []string{audit.KindKMS}, User: "alice"}:         0,
	} {
		recs, err := s.AuditRecords(*q)
		require.NoError(t, err)
		assert.Len(t, recs, n, "%+v", *q)
	}
}
