package snapshot

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/openhsm/openhsm/audit"
	"github.com/openhsm/openhsm/internal/fields"
)

// The store snapshot stream: a logical copy of every row of the store,
// independent of the database that wrote it. All integers are big-endian.
//
//	header   "OHSMSNAP" | version u16 (3) | reserved u16 (0)
//	         | applied index u64 | meta u64 | users u64 | objects u64 | shares u64
//	         | audit u64 | requests u64
//	record   kind u8 | body length u32 (at most MaxRecord) | body
//	trailer  kind 'Z' | length u32 (80) | meta u64 | users u64 | objects u64 | shares u64
//	         | audit u64 | requests u64 | SHA-256 of every byte of the stream before it
//
// Version 2, still read, has no request count in the header or trailer
// (trailer length 72) and no request records: its request-ID records are
// meta rows, which the store converts. Version 1, still read, has no audit
// count either (trailer length 64) and no audit records.
//
// The counts in the header are the numbers of records of each kind that
// follow; the trailer repeats them. Records come in this order: meta rows
// ('M') by key, users ('U') by name, then objects ('O') by ID, each object
// directly followed by its shares ('S') by user name, then audit records
// ('A') by sequence number, then request-ID records ('Q') by their number,
// which goes up by one from record to record. Keys are strictly
// increasing (byte order), so there are no duplicates. Nothing may follow
// the trailer.
//
// Body fields: an integer is an i64 (8 bytes); a string or byte string is a
// u32 length and the bytes; a nullable byte string uses the length
// 0xFFFFFFFF for NULL; a nullable integer is a byte 0 (NULL) or 1 followed by
// the i64.
//
//	'M'  key string | value bytes
//	'U'  name string | role i64 | password_hash string | failed_logins i64 | locked i64
//	     | generation i64 | created i64 | number i64 | mac nullable bytes
//	'O'  id i64 | owner string | class i64 | key_type nullable i64 | label bytes
//	     | ckaid bytes | attrs bytes | sealed nullable bytes | mac nullable bytes
//	'S'  object_id i64 | user string
//	'A'  audit.Marshal (its fields, for a KMS record its detail, and its
//	     MAC; see audit/record.go)
//	'Q'  seq i64 | actor string | id string | time i64 | record bytes
//
// A KMS audit record (kind "kms") carries its detail after its count; the
// records of the other kinds encode as they always did, so the stream's
// version stayed 2 for it. A build that predates KMS records refuses a stream
// holding one as a malformed audit record.
//
// The SHA-256 detects truncation and corruption, not tampering: a stream
// is authenticated by what carries it (TLS between raft peers; the AEAD of a
// backup file). The decoder never allocates more than the bytes it has
// actually read, whatever a length field says.

// Version is the version of the stream format that this build writes
// and reads.
const Version = 3

// MaxRecord bounds the body of one record. One object row is at most
// a few MiB (a command is at most MaxCommandSize), and shares are records of
// their own, so no legitimate record comes near it.
const MaxRecord = 16 << 20

// ErrBad is returned (wrapped) for a stream that is malformed,
// truncated, corrupt or of an unknown version.
var ErrBad = errors.New("store snapshot stream is malformed")

const (
	snapMagic       = "OHSMSNAP"
	snapHeaderLen   = 8 + 2 + 2 + 8*7
	snapHeaderLenV1 = 8 + 2 + 2 + 8*5
	snapTrailerLen  = 8*6 + sha256.Size

	recMeta    = 'M'
	recUser    = 'U'
	recObject  = 'O'
	recShare   = 'S'
	recAudit   = 'A'
	recRequest = 'Q'
	recEnd     = 'Z'
)

// Header is what a stream's header says.
type Header struct {
	Index                                         uint64 // the applied index of the state
	Meta, Users, Objects, Shares, Audit, Requests uint64 // how many records of each kind follow
}

// Records is the total number of records the stream holds.
func (h Header) Records() uint64 {
	return h.Meta + h.Users + h.Objects + h.Shares + h.Audit + h.Requests
}

// counts are the header's counts in the order of the stream's kinds.
func (h Header) counts() [numKinds]uint64 {
	return [numKinds]uint64{h.Meta, h.Users, h.Objects, h.Shares, h.Audit, h.Requests}
}

// Meta is one row of meta.
type Meta struct {
	Key   string
	Value []byte
}

// User is one row of users, column for column.
type User struct {
	Name         string
	Role         int64
	PasswordHash string
	FailedLogins int64
	Locked       int64
	Generation   int64
	Created      int64
	Number       int64
	MAC          []byte // nil is NULL
}

// Object is one row of objects, column for column.
type Object struct {
	ID         int64
	Owner      string
	Class      int64
	KeyType    int64
	HasKeyType bool // false: key_type is NULL
	Label      []byte
	CKAID      []byte
	Attrs      []byte
	Sealed     []byte // nil is NULL
	MAC        []byte // nil is NULL
}

// Request is one request-ID record (state/request.go), a row of requests.
type Request struct {
	Seq    int64 // its number: the order the records were made in
	Actor  string
	ID     string
	Time   int64
	Record []byte
}

// Share is one row of shares; it follows its object.
type Share struct {
	ObjectID int64
	User     string
}

// Record is one decoded record: exactly one field is set.
type Record struct {
	Meta    *Meta
	User    *User
	Object  *Object
	Share   *Share
	Audit   *audit.Record
	Request *Request
}

func badSnapshot(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBad, fmt.Sprintf(format, args...))
}

// snapOrder checks what both the encoder and the decoder require of the
// record sequence, so that nothing is written that would not be read back.
type snapOrder struct {
	hdr     Header
	phase   int // 0 meta, 1 users, 2 objects and shares, 3 audit, 4 requests, 5 ended
	counts  [numKinds]uint64
	lastSeq uint64
	lastReq int64  // last request record's number; 0 before the first
	lastKey string // meta key or user name, in its phase
	hasLast bool
	lastObj int64 // last object ID; 0 before the first
	lastSh  string
	hasSh   bool
}

const (
	phMeta = iota
	phUsers
	phObjects
	phAudit
	phRequests
	phEnd
)

// numKinds is how many kinds of records there are (and counts in the
// header and the trailer).
const numKinds = 6

func (o *snapOrder) enter(phase int) error {
	if phase < o.phase {
		return badSnapshot("records out of order")
	}
	if phase > o.phase {
		o.phase, o.hasLast = phase, false
	}
	return nil
}

func (o *snapOrder) count(i int, limit uint64, what string) error {
	if o.counts[i] >= limit {
		return badSnapshot("more %s than the header announces", what)
	}
	o.counts[i]++
	return nil
}

func (o *snapOrder) check(r *Record) error {
	switch {
	case r.Meta != nil:
		if err := o.enter(phMeta); err != nil {
			return err
		}
		if o.hasLast && r.Meta.Key <= o.lastKey {
			return badSnapshot("meta keys out of order")
		}
		o.lastKey, o.hasLast = r.Meta.Key, true
		return o.count(0, o.hdr.Meta, "meta rows")
	case r.User != nil:
		if err := o.enter(phUsers); err != nil {
			return err
		}
		if r.User.Name == "" {
			return badSnapshot("user with an empty name")
		}
		if o.hasLast && r.User.Name <= o.lastKey {
			return badSnapshot("users out of order")
		}
		o.lastKey, o.hasLast = r.User.Name, true
		return o.count(1, o.hdr.Users, "users")
	case r.Object != nil:
		if err := o.enter(phObjects); err != nil {
			return err
		}
		if r.Object.ID <= 0 {
			return badSnapshot("object ID out of range")
		}
		if r.Object.ID <= o.lastObj {
			return badSnapshot("objects out of order")
		}
		if r.Object.Owner == "" {
			return badSnapshot("object %d has no owner", r.Object.ID)
		}
		o.lastObj, o.hasSh = r.Object.ID, false
		return o.count(2, o.hdr.Objects, "objects")
	case r.Share != nil:
		if err := o.enter(phObjects); err != nil {
			return err
		}
		if o.lastObj == 0 || r.Share.ObjectID != o.lastObj {
			return badSnapshot("share does not follow its object")
		}
		if r.Share.User == "" {
			return badSnapshot("share with an empty user name")
		}
		if o.hasSh && r.Share.User <= o.lastSh {
			return badSnapshot("shares out of order")
		}
		o.lastSh, o.hasSh = r.Share.User, true
		return o.count(3, o.hdr.Shares, "shares")
	case r.Audit != nil:
		if err := o.enter(phAudit); err != nil {
			return err
		}
		if r.Audit.Seq == 0 || r.Audit.Seq >= 1<<63 || r.Audit.Object >= 1<<63 {
			return badSnapshot("audit record out of range")
		}
		if r.Audit.Seq <= o.lastSeq {
			return badSnapshot("audit records out of order")
		}
		o.lastSeq = r.Audit.Seq
		return o.count(4, o.hdr.Audit, "audit records")
	case r.Request != nil:
		if err := o.enter(phRequests); err != nil {
			return err
		}
		q := r.Request
		if q.Seq <= 0 || q.Actor == "" || q.ID == "" {
			return badSnapshot("request record out of range")
		}
		if o.lastReq != 0 && q.Seq != o.lastReq+1 {
			return badSnapshot("request records out of order")
		}
		o.lastReq = q.Seq
		return o.count(5, o.hdr.Requests, "request records")
	}
	return badSnapshot("empty record")
}

// end checks that every record the header announced came.
func (o *snapOrder) end() error {
	if o.counts != o.hdr.counts() {
		return badSnapshot("record counts do not match the header")
	}
	o.phase = phEnd
	return nil
}

// Encoder writes a store snapshot stream. It checks the order of
// the records and their counts against the header, so it never writes a
// stream that Decoder would refuse.
type Encoder struct {
	cw    *countWriter
	bw    *bufio.Writer
	h     hash.Hash
	order snapOrder
	buf   []byte
	err   error
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// NewEncoder writes the header to w and returns an encoder for the
// records it announces.
func NewEncoder(w io.Writer, hdr Header) (*Encoder, error) {
	if hdr.Index >= 1<<63 {
		return nil, fmt.Errorf("store snapshot: applied index %d out of range", hdr.Index)
	}
	cw := &countWriter{w: w}
	e := &Encoder{cw: cw, bw: bufio.NewWriterSize(cw, 64<<10), h: sha256.New(), order: snapOrder{hdr: hdr}}
	b := make([]byte, 0, snapHeaderLen)
	b = append(b, snapMagic...)
	b = binary.BigEndian.AppendUint16(b, Version)
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint64(b, hdr.Index)
	for _, v := range hdr.counts() {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	e.write(b)
	return e, e.err
}

func (e *Encoder) write(b []byte) {
	if e.err != nil {
		return
	}
	e.h.Write(b)
	_, e.err = e.bw.Write(b)
}

// Written returns how many bytes have reached the underlying writer.
func (e *Encoder) Written() int64 { return e.cw.n }

// Write encodes one record.
func (e *Encoder) Write(r *Record) error {
	if e.err != nil {
		return e.err
	}
	if err := e.order.check(r); err != nil {
		e.err = fmt.Errorf("store snapshot: refusing to write: %w", err)
		return e.err
	}
	b := append(e.buf[:0], 0, 0, 0, 0, 0)
	switch {
	case r.Meta != nil:
		m := r.Meta
		b[0] = recMeta
		b = fields.AppendStr(b, m.Key)
		b = fields.AppendNullable(b, nonNil(m.Value))
	case r.User != nil:
		u := r.User
		b[0] = recUser
		b = fields.AppendStr(b, u.Name)
		b = fields.AppendI64(b, u.Role)
		b = fields.AppendStr(b, u.PasswordHash)
		for _, v := range []int64{u.FailedLogins, u.Locked, u.Generation, u.Created, u.Number} {
			b = fields.AppendI64(b, v)
		}
		b = fields.AppendNullable(b, u.MAC)
	case r.Object != nil:
		o := r.Object
		b[0] = recObject
		b = fields.AppendI64(b, o.ID)
		b = fields.AppendStr(b, o.Owner)
		b = fields.AppendI64(b, o.Class)
		if o.HasKeyType {
			b = fields.AppendI64(append(b, 1), o.KeyType)
		} else {
			b = append(b, 0)
		}
		for _, v := range [][]byte{o.Label, o.CKAID, o.Attrs} {
			b = fields.AppendNullable(b, nonNil(v))
		}
		b = fields.AppendNullable(b, o.Sealed)
		b = fields.AppendNullable(b, o.MAC)
	case r.Share != nil:
		b[0] = recShare
		b = fields.AppendI64(b, r.Share.ObjectID)
		b = fields.AppendStr(b, r.Share.User)
	case r.Audit != nil:
		b[0] = recAudit
		b = append(b, audit.Marshal(r.Audit)...)
	case r.Request != nil:
		q := r.Request
		b[0] = recRequest
		b = fields.AppendI64(b, q.Seq)
		b = fields.AppendStr(b, q.Actor)
		b = fields.AppendStr(b, q.ID)
		b = fields.AppendI64(b, q.Time)
		b = fields.AppendNullable(b, nonNil(q.Record))
	}
	n := len(b) - 5
	if n > MaxRecord {
		e.err = fmt.Errorf("store snapshot: a record of %d bytes is over the limit of %d", n, MaxRecord)
		return e.err
	}
	binary.BigEndian.PutUint32(b[1:5], uint32(n))
	e.write(b)
	if cap(b) <= 1<<20 {
		e.buf = b
	}
	return e.err
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Close writes the trailer and flushes. It fails if the records written do
// not match the header's counts. It does not close the underlying writer.
func (e *Encoder) Close() error {
	if e.err != nil {
		return e.err
	}
	if err := e.order.end(); err != nil {
		e.err = fmt.Errorf("store snapshot: refusing to write: %w", err)
		return e.err
	}
	b := []byte{recEnd, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], snapTrailerLen)
	for _, v := range e.order.counts {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	e.write(b)
	e.write(e.h.Sum(nil))
	if e.err == nil {
		e.err = e.bw.Flush()
	}
	if e.err == nil {
		e.err = errEncoderClosed
		return nil
	}
	return e.err
}

var errEncoderClosed = errors.New("store snapshot: encoder is closed")

// Decoder reads and checks a store snapshot stream record by
// record.
type Decoder struct {
	r       *bufio.Reader
	h       hash.Hash
	hdr     Header
	order   snapOrder
	body    bytes.Buffer
	err     error // sticky: the first error, or io.EOF after the end
	version uint16
}

// NewDecoder reads and checks the header.
func NewDecoder(r io.Reader) (*Decoder, error) {
	d := &Decoder{r: bufio.NewReaderSize(r, 64<<10), h: sha256.New()}
	var b [snapHeaderLen]byte
	if err := d.read(b[:8]); err != nil {
		return nil, err
	}
	if string(b[:8]) != snapMagic {
		return nil, badSnapshot("not a store snapshot (bad magic)")
	}
	if err := d.read(b[8:snapHeaderLenV1]); err != nil {
		return nil, err
	}
	d.version = binary.BigEndian.Uint16(b[8:])
	if d.version < 1 || d.version > Version {
		return nil, badSnapshot("unsupported version %d (this build reads 1 to %d)", d.version, Version)
	}
	if binary.BigEndian.Uint16(b[10:]) != 0 {
		return nil, badSnapshot("reserved header bits set")
	}
	kinds := d.kinds()
	hlen := snapHeaderLenV1 + 8*(kinds-4)
	if err := d.read(b[snapHeaderLenV1:hlen]); err != nil {
		return nil, err
	}
	h := Header{
		Index:   binary.BigEndian.Uint64(b[12:]),
		Meta:    binary.BigEndian.Uint64(b[20:]),
		Users:   binary.BigEndian.Uint64(b[28:]),
		Objects: binary.BigEndian.Uint64(b[36:]),
		Shares:  binary.BigEndian.Uint64(b[44:]),
	}
	if kinds > 4 {
		h.Audit = binary.BigEndian.Uint64(b[52:])
	}
	if kinds > 5 {
		h.Requests = binary.BigEndian.Uint64(b[60:])
	}
	if h.Index >= 1<<63 {
		return nil, badSnapshot("applied index out of range")
	}
	for _, c := range h.counts() {
		if c >= 1<<40 {
			return nil, badSnapshot("record count out of range")
		}
	}
	d.hdr, d.order.hdr = h, h
	return d, nil
}

// Header returns the stream's header.
func (d *Decoder) Header() Header { return d.hdr }

// kinds is how many kinds of records the stream's version has, and so how
// many counts its header and trailer hold: 4 in version 1, 5 in version 2
// (audit records), 6 from version 3 (request records).
func (d *Decoder) kinds() int { return min(int(d.version)+3, numKinds) }

// read fills b from the stream and hashes it. The end of the input is
// truncation; other errors of the underlying reader are returned as they
// are.
func (d *Decoder) read(b []byte) error {
	if _, err := io.ReadFull(d.r, b); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return badSnapshot("the stream is truncated")
		}
		return err
	}
	d.h.Write(b)
	return nil
}

// Next returns the next record. After the last one it checks the trailer
// (counts and SHA-256) and that nothing follows, and returns io.EOF. Any
// other error is final. The record's byte slices are its own.
func (d *Decoder) Next() (*Record, error) {
	if d.err != nil {
		return nil, d.err
	}
	r, err := d.next()
	if err != nil {
		d.err = err
		return nil, err
	}
	return r, nil
}

func (d *Decoder) next() (*Record, error) {
	var rh [5]byte
	if err := d.read(rh[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(rh[1:])
	if rh[0] == recEnd {
		return nil, d.trailer(n)
	}
	if n > MaxRecord {
		return nil, badSnapshot("record of %d bytes is over the limit", n)
	}
	// Read the body as it comes: a hostile length costs no more memory
	// than the bytes actually sent.
	d.body.Reset()
	if _, err := io.CopyN(&d.body, d.r, int64(n)); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, badSnapshot("the stream is truncated")
		}
		return nil, err
	}
	body := d.body.Bytes()
	d.h.Write(body)
	if d.body.Cap() > 1<<20 {
		d.body = bytes.Buffer{} // do not keep one huge record's buffer
	}
	f := fields.NewReader(body)
	var r Record
	switch rh[0] {
	case recMeta:
		r.Meta = &Meta{Key: f.Str(), Value: f.Bytes()}
	case recUser:
		u := &User{Name: f.Str(), Role: f.I64(), PasswordHash: f.Str()}
		u.FailedLogins, u.Locked, u.Generation, u.Created, u.Number = f.I64(), f.I64(), f.I64(), f.I64(), f.I64()
		u.MAC = f.Nullable()
		r.User = u
	case recObject:
		o := &Object{ID: f.I64(), Owner: f.Str(), Class: f.I64()}
		switch f.Byte() {
		case 0:
		case 1:
			o.HasKeyType, o.KeyType = true, f.I64()
		default:
			f.Fail()
		}
		o.Label, o.CKAID, o.Attrs = f.Bytes(), f.Bytes(), f.Bytes()
		o.Sealed, o.MAC = f.Nullable(), f.Nullable()
		r.Object = o
	case recShare:
		r.Share = &Share{ObjectID: f.I64(), User: f.Str()}
	case recAudit:
		if d.version == 1 {
			return nil, badSnapshot("an audit record in a version 1 stream")
		}
		a, err := audit.Unmarshal(body)
		if err != nil {
			return nil, badSnapshot("malformed audit record")
		}
		r.Audit = a
		f.Skip()
	case recRequest:
		if d.version < 3 {
			return nil, badSnapshot("a request record in a version %d stream", d.version)
		}
		r.Request = &Request{Seq: f.I64(), Actor: f.Str(), ID: f.Str(), Time: f.I64(), Record: f.Bytes()}
	default:
		return nil, badSnapshot("unknown record kind 0x%02x", rh[0])
	}
	if !f.Done() {
		return nil, badSnapshot("malformed record of kind %q", rh[0])
	}
	if err := d.order.check(&r); err != nil {
		return nil, err
	}
	return &r, nil
}

func (d *Decoder) trailer(n uint32) error {
	counts := d.kinds()
	want := uint32(8*counts + sha256.Size)
	if n != want {
		return badSnapshot("malformed trailer")
	}
	b := make([]byte, want)
	if err := d.read(b[:8*counts]); err != nil {
		return err
	}
	sum := d.h.Sum(nil)
	if _, err := io.ReadFull(d.r, b[8*counts:]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return badSnapshot("the stream is truncated")
		}
		return err
	}
	if subtle.ConstantTimeCompare(sum, b[8*counts:]) != 1 {
		return badSnapshot("checksum mismatch: the stream is corrupt")
	}
	for i := range counts {
		if binary.BigEndian.Uint64(b[8*i:]) != d.order.counts[i] {
			return badSnapshot("trailer counts do not match the records")
		}
	}
	if err := d.order.end(); err != nil {
		return err
	}
	switch _, err := d.r.ReadByte(); err {
	case io.EOF:
		return io.EOF
	case nil:
		return badSnapshot("data after the end of the stream")
	default:
		return err
	}
}
