package audit

import (
	"encoding/binary"
	"errors"

	"github.com/openhsm/openhsm/internal/fields"
)

// Record is one record of the trail. It holds no secret: no key
// material, password hash, data or session token; objects are named by ID
// (labels may say too much).
type Record struct {
	Seq     uint64 // 1, 2, 3... without gaps
	Prev    []byte // MAC of record Seq-1 (32 zero bytes for the first)
	Index   uint64 // log index of the command that wrote it
	Time    int64  // Unix seconds: the command's time, or the second the uses were counted in
	Kind    string // audit.KindCommand, audit.KindUse or audit.KindKMS
	Op      string // the command's Op, or the key operation
	User    string // who: the actor, or the user name a login names
	Cert    string // SHA-256 fingerprint (hex) of the client certificate
	Node    string // the node that took the request
	Object  uint64 // the object acted on or used (0: none)
	Subject string // the user a user-management or share command names
	Result  uint64 // 0: applied (or the uses succeeded); else the refusal's CKR code
	Count   uint64 // 1 for a command; the number of uses
	// Detail is the context of a KindKMS record, a canonical JSON object
	// (KMSEvent.Detail); "" for every other kind, whose encoding does not
	// carry it.
	Detail string
	MAC    []byte
}

// UseCount is one (user, certificate, key, operation, result) count of
// one second, as a node submits it in an OpAudit command.
type UseCount struct {
	Time   int64  `json:"time"`
	User   string `json:"user"`
	Cert   string `json:"cert,omitempty"`
	Object uint64 `json:"object"`
	Op     string `json:"op"`
	Result uint64 `json:"result,omitempty"`
	Count  uint64 `json:"count"`
}

// MaxUses bounds the counts of one OpAudit command.
const MaxUses = 10000

// Body is the canonical encoding of every field but the MAC. Detail is
// encoded only in a KindKMS record, after Count, so the records of the
// other kinds encode (and so MAC) exactly as they did before it existed.
func (r *Record) Body() []byte {
	b := make([]byte, 0, 160)
	b = append(b, "openhsm audit v1"...)
	b = binary.BigEndian.AppendUint64(b, r.Seq)
	b = fields.AppendStr(b, string(r.Prev))
	b = binary.BigEndian.AppendUint64(b, r.Index)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Time))
	for _, s := range []string{r.Kind, r.Op, r.User, r.Cert, r.Node} {
		b = fields.AppendStr(b, s)
	}
	b = binary.BigEndian.AppendUint64(b, r.Object)
	b = fields.AppendStr(b, r.Subject)
	b = binary.BigEndian.AppendUint64(b, r.Result)
	b = binary.BigEndian.AppendUint64(b, r.Count)
	if r.Kind == KindKMS {
		b = fields.AppendStr(b, r.Detail)
	}
	return b
}

// Marshal encodes a record with its MAC (the snapshot stream
// carries records in this form). A record of another kind than KindKMS
// carries no Detail: one it holds is not encoded.
func Marshal(r *Record) []byte {
	b := r.Body()
	return fields.AppendStr(b, string(r.MAC))
}

// Unmarshal parses Marshal's encoding.
func Unmarshal(b []byte) (*Record, error) {
	f := fields.NewReader(b)
	if string(f.Take(16)) != "openhsm audit v1" {
		return nil, errors.New("audit record: bad format")
	}
	u64 := func() uint64 { return uint64(f.I64()) }
	r := &Record{Seq: u64()}
	r.Prev = f.Bytes()
	r.Index, r.Time = u64(), f.I64()
	r.Kind, r.Op, r.User, r.Cert, r.Node = f.Str(), f.Str(), f.Str(), f.Str(), f.Str()
	r.Object, r.Subject, r.Result, r.Count = u64(), f.Str(), u64(), u64()
	if r.Kind == KindKMS {
		r.Detail = f.Str()
	}
	r.MAC = f.Bytes()
	if !f.Done() {
		return nil, errors.New("audit record: malformed")
	}
	return r, nil
}
