package snapshot

import (
	"bytes"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/audit"
)

// TestAuditRecordsRoundTrip: a use record and a KMS record, its detail
// included, come out of the stream as they went in; the use record's
// bytes are audit.Marshal's, unchanged by the detail a KMS record has.
func TestAuditRecordsRoundTrip(t *testing.T) {
	recs := []*audit.Record{
		{Seq: 1, Prev: make([]byte, 32), Index: 3, Time: 1700000000, Kind: audit.KindUse, Op: audit.UseSign, User: "alice",
			Cert: "ab", Node: "n1", Object: 9, Count: 12, MAC: bytes.Repeat([]byte{1}, 32)},
		{Seq: 2, Prev: bytes.Repeat([]byte{1}, 32), Index: 4, Time: 1700000001, Kind: audit.KindKMS, Op: "GenerateDataKey",
			User: "arn:aws:iam::111122223333:user/bob", Node: "n2", Subject: "arn:aws:kms:eu-west-1:111122223333:key/k",
			Count: 1, Detail: `{"context_keys":["tenant"],"source":"10.1.2.3:5000","request_id":"r-1"}`, MAC: bytes.Repeat([]byte{2}, 32)},
		{Seq: 3, Prev: bytes.Repeat([]byte{2}, 32), Index: 5, Time: 1700000002, Kind: audit.KindKMS, Op: "", User: "AKIAEXAMPLE",
			Node: "n2", Result: 1, Count: 1, Detail: `{"error":"UnrecognizedClientException"}`, MAC: bytes.Repeat([]byte{3}, 32)},
	}
	var buf bytes.Buffer
	enc, err := NewEncoder(&buf, Header{Index: 5, Audit: uint64(len(recs))})
	require.NoError(t, err)
	for _, r := range recs {
		require.NoError(t, enc.Write(&Record{Audit: r}))
	}
	require.NoError(t, enc.Close())
	assert.True(t, bytes.Contains(buf.Bytes(), audit.Marshal(recs[0])))

	dec, err := NewDecoder(bytes.NewReader(buf.Bytes()))
	require.NoError(t, err)
	var got []*audit.Record
	for {
		r, err := dec.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		got = append(got, r.Audit)
	}
	assert.Equal(t, recs, got)
}
