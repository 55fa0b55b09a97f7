package snapshot

import (
	"bytes"
	"crypto/sha256"
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

// TestRequestRecords: request records come back as written, after the
// audit records; their numbers must go up by one, and a stream that skips
// one, repeats one or puts one before an audit record is refused, by the
// encoder and the decoder alike.
func TestRequestRecords(t *testing.T) {
	reqs := []*Request{
		{Seq: 41, Actor: "alice", ID: "0123456789abcdef0123456789abcdef", Time: 1700000000, Record: []byte(`{"op":"share"}`)},
		{Seq: 42, Actor: "bob", ID: "fedcba9876543210fedcba9876543210", Time: -1, Record: []byte{}},
	}
	au := &audit.Record{Seq: 1, Prev: make([]byte, 32), Kind: audit.KindUse, Op: audit.UseSign, User: "alice", MAC: make([]byte, 32)}
	encode := func(hdr Header, recs ...*Record) ([]byte, error) {
		var buf bytes.Buffer
		enc, err := NewEncoder(&buf, hdr)
		require.NoError(t, err)
		for _, r := range recs {
			if err := enc.Write(r); err != nil {
				return nil, err
			}
		}
		err = enc.Close()
		return buf.Bytes(), err
	}
	good, err := encode(Header{Index: 9, Audit: 1, Requests: 2}, &Record{Audit: au}, &Record{Request: reqs[0]}, &Record{Request: reqs[1]})
	require.NoError(t, err)
	dec, err := NewDecoder(bytes.NewReader(good))
	require.NoError(t, err)
	assert.Equal(t, byte(Version), good[9], "the stream's version")
	assert.Equal(t, uint64(2), dec.Header().Requests)
	var got []*Request
	for {
		r, err := dec.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		if r.Request != nil {
			got = append(got, r.Request)
		}
	}
	assert.Equal(t, reqs, got)

	gap := *reqs[1]
	gap.Seq = 43
	for name, recs := range map[string][]*Record{
		"a number skipped":       {{Request: reqs[0]}, {Request: &gap}},
		"a number repeated":      {{Request: reqs[0]}, {Request: reqs[0]}},
		"before an audit record": {{Request: reqs[0]}, {Audit: au}},
		"no actor":               {{Request: &Request{Seq: 1, ID: "x"}}},
		"number zero":            {{Request: &Request{Actor: "a", ID: "x"}}},
	} {
		_, err := encode(Header{Audit: 1, Requests: 2}, recs...)
		assert.ErrorIs(t, err, ErrBad, "encoder: %s", name)
	}
	// The decoder refuses the same: the good stream with its second
	// record's number changed (and its checksum made right again).
	bad := bytes.Clone(good)
	i := bytes.LastIndex(bad, []byte{0, 0, 0, 0, 0, 0, 0, 42})
	require.Positive(t, i)
	bad[i+7] = 43
	bad = bad[:len(bad)-32]
	sum := sha256.Sum256(bad)
	bad = append(bad, sum[:]...)
	dec, err = NewDecoder(bytes.NewReader(bad))
	require.NoError(t, err)
	for err == nil {
		_, err = dec.Next()
	}
	assert.ErrorIs(t, err, ErrBad)
	assert.Contains(t, err.Error(), "request records out of order")
}
