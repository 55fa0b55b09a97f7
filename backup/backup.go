// Package backup writes, lists, checks and reads encrypted backup files of
// a token store. docs/backups.md describes the format and must agree with
// this package.
//
// A backup is a store snapshot stream (state.StoreSnapshot.WriteTo, what
// state.Store.Restore reads) encrypted with AES-256-GCM under a fresh random
// data key, in chunks, STREAM style. The data key is kept in the header,
// wrapped under the cluster's persistent backup key, which is derived from the
// domain key (state.Sealer.WrapBackupKey). The header also carries the
// sealed domain key, so a backup can be opened with the passphrase or key
// file of the cluster that made it, and nothing else.
//
// The file:
//
//	header   magic "OHSMBAK\n" | format u16 (1) | n u32 | n bytes of JSON
//	         | SHA-256 of all the header bytes before it (32)
//	chunks   AES-256-GCM(data key, nonce_i, plaintext chunk i, AAD), each
//	         plaintext chunk ChunkSize bytes but the last, which has 0 to
//	         ChunkSize bytes; nothing follows the last
//	nonce_i  nonce prefix (7, random, from the header) | i u32 | last flag
//	         (1 for the last chunk, else 0)
//	AAD      SHA-256 of the header bytes before the checksum (the checksum's
//	         value)
//
// All integers are big-endian.
package backup

import (
	"bufio"
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/seal"
	"github.com/openhsm/openhsm/snapshot"
	"github.com/openhsm/openhsm/state"
)

const (
	// Format is the file format this build writes and reads.
	Format = 1
	// ChunkSize is the size of a plaintext chunk.
	ChunkSize = 64 << 10

	magic          = "OHSMBAK\n"
	fixedLen       = len(magic) + 2 + 4 // magic, format, JSON length
	maxJSON        = 64 << 10
	maxSealedDK    = 8 << 10
	maxName        = 256
	noncePrefixLen = 7
	tagLen         = 16
	chunkCTLen     = ChunkSize + tagLen
	maxChunks      = 1 << 32
	progressEvery  = 1000
)

// Errors. Each is returned wrapped, often with a detail; test with
// errors.Is.
var (
	ErrNotBackup = errors.New("not an openhsm backup")
	ErrFormat    = errors.New("backup format not supported by this build")
	ErrTruncated = errors.New("backup file is truncated")
	ErrCorrupt   = errors.New("backup file was modified or is corrupt")
	// ErrWrongPassphrase means the KEK given does not unseal the backup's
	// domain key: the unseal function returned seal.ErrWrongKEK.
	ErrWrongPassphrase = errors.New("the passphrase (or key file) does not open this backup's domain key")
)

// Header is what a backup's header says. Nothing in it is secret: the
// domain key is sealed under the cluster's KEK and the data key wrapped under
// a key derived from the domain key.
type Header struct {
	Format          int
	ClusterID, Node string
	Created         time.Time // UTC
	Index           uint64    // the applied index of the state backed up
	Users, Objects  int
	SealedDomainKey []byte // seal.SealedDomainKey.Marshal()
	WrappedKey      []byte // the data key, RFC 5649-wrapped under the PBK
	NoncePrefix     []byte // 7 random bytes
}

// Progress reports how far Write, Verify or Decrypt got: Phase is "write",
// "verify" or "decrypt", and Done and Total count records of the store
// snapshot (meta rows, users, objects and shares).
type Progress struct {
	Phase       string
	Done, Total int64
}

// wireHeader is the JSON of the header.
type wireHeader struct {
	ClusterID       string    `json:"cluster_id"`
	Node            string    `json:"node"`
	Created         time.Time `json:"created"`
	Index           uint64    `json:"index"`
	Users           int       `json:"users"`
	Objects         int       `json:"objects"`
	SealedDomainKey []byte    `json:"sealed_domain_key"`
	WrappedKey      []byte    `json:"wrapped_key"`
	NoncePrefix     []byte    `json:"nonce_prefix"`
}

// check is what ReadHeader requires of a header, and Write of its own.
func (h *Header) check() error {
	switch {
	case h.Format != Format:
		return fmt.Errorf("%w: format %d (this build reads %d)", ErrFormat, h.Format, Format)
	case h.ClusterID == "" || len(h.ClusterID) > maxName:
		return errors.New("cluster ID empty or too long")
	case len(h.Node) > maxName:
		return errors.New("node name too long")
	case h.Created.IsZero():
		return errors.New("no creation time")
	case h.Index >= 1<<63:
		return errors.New("applied index out of range")
	case h.Users < 0 || h.Objects < 0:
		return errors.New("negative counts")
	case len(h.SealedDomainKey) == 0 || len(h.SealedDomainKey) > maxSealedDK:
		return errors.New("sealed domain key missing or too long")
	case len(h.WrappedKey) != seal.BackupDataKeyLen+8:
		return errors.New("wrapped data key of the wrong length")
	case len(h.NoncePrefix) != noncePrefixLen:
		return errors.New("nonce prefix of the wrong length")
	}
	rec, err := seal.UnmarshalSealedDomainKey(h.SealedDomainKey)
	if err != nil {
		return err
	}
	if rec.ClusterID != h.ClusterID {
		return errors.New("the sealed domain key belongs to another cluster ID")
	}
	return nil
}

// marshal returns the header bytes up to the checksum, and the checksum.
func (h *Header) marshal() (hdr []byte, sum [32]byte, err error) {
	j, err := json.Marshal(&wireHeader{
		ClusterID: h.ClusterID, Node: h.Node, Created: h.Created, Index: h.Index, Users: h.Users, Objects: h.Objects,
		SealedDomainKey: h.SealedDomainKey, WrappedKey: h.WrappedKey, NoncePrefix: h.NoncePrefix,
	})
	if err != nil {
		return nil, sum, err
	}
	if len(j) > maxJSON {
		return nil, sum, errors.New("backup header too large")
	}
	hdr = append([]byte(magic), 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint16(hdr[len(magic):], uint16(h.Format))
	binary.BigEndian.PutUint32(hdr[len(magic)+2:], uint32(len(j)))
	hdr = append(hdr, j...)
	return hdr, sha256.Sum256(hdr), nil
}

// ReadHeader reads and checks a backup's header, and nothing more: it needs
// no key, and does not show that the rest of the file is sound (Verify
// does). It reads exactly the header's bytes from r.
func ReadHeader(r io.Reader) (*Header, error) {
	h, _, err := readHeader(r)
	return h, err
}

func readHeader(r io.Reader) (*Header, [32]byte, error) {
	var aad [32]byte
	fixed := make([]byte, fixedLen)
	n, err := io.ReadFull(r, fixed)
	if n < len(magic) || string(fixed[:len(magic)]) != magic {
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return nil, aad, err
		}
		if n > 0 && n < len(magic) && string(fixed[:n]) == magic[:n] {
			return nil, aad, ErrTruncated
		}
		return nil, aad, ErrNotBackup
	}
	if err != nil {
		return nil, aad, readErr(err)
	}
	format := int(binary.BigEndian.Uint16(fixed[len(magic):]))
	if format != Format {
		return nil, aad, fmt.Errorf("%w: format %d (this build reads %d)", ErrFormat, format, Format)
	}
	jl := binary.BigEndian.Uint32(fixed[len(magic)+2:])
	if jl == 0 || jl > maxJSON {
		return nil, aad, fmt.Errorf("%w: header length %d out of range", ErrCorrupt, jl)
	}
	rest := make([]byte, int(jl)+32)
	if _, err := io.ReadFull(r, rest); err != nil {
		return nil, aad, readErr(err)
	}
	j, stored := rest[:jl], rest[jl:]
	hs := sha256.New()
	hs.Write(fixed)
	hs.Write(j)
	hs.Sum(aad[:0])
	if !bytes.Equal(aad[:], stored) {
		return nil, aad, fmt.Errorf("%w: header checksum mismatch", ErrCorrupt)
	}
	var w wireHeader
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return nil, aad, fmt.Errorf("%w: header: %v", ErrCorrupt, err)
	}
	if dec.More() {
		return nil, aad, fmt.Errorf("%w: header: data after the JSON", ErrCorrupt)
	}
	h := &Header{Format: format, ClusterID: w.ClusterID, Node: w.Node, Created: w.Created.UTC(), Index: w.Index,
		Users: w.Users, Objects: w.Objects, SealedDomainKey: w.SealedDomainKey, WrappedKey: w.WrappedKey, NoncePrefix: w.NoncePrefix}
	if err := h.check(); err != nil {
		return nil, aad, fmt.Errorf("%w: header: %v", ErrCorrupt, err)
	}
	return h, aad, nil
}

// readErr maps the end of input to ErrTruncated.
func readErr(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return ErrTruncated
	}
	return err
}

func nonce(prefix []byte, i uint64, last bool) []byte {
	n := make([]byte, 0, 12)
	n = append(n, prefix...)
	n = binary.BigEndian.AppendUint32(n, uint32(i))
	if last {
		return append(n, 1)
	}
	return append(n, 0)
}

// chunkWriter encrypts what is written to it, one chunk at a time. A full
// chunk is sealed only when more data comes, so that Close can mark
// whichever chunk is last, even a full one.
type chunkWriter struct {
	w      io.Writer
	aead   cipher.AEAD
	prefix []byte
	aad    []byte
	i      uint64
	buf    []byte
	out    []byte
	err    error
}

func (c *chunkWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n := len(p)
	for len(p) > 0 {
		if len(c.buf) == ChunkSize {
			if c.seal(false); c.err != nil {
				return 0, c.err
			}
		}
		k := min(len(p), ChunkSize-len(c.buf))
		c.buf = append(c.buf, p[:k]...)
		p = p[k:]
	}
	return n, nil
}

func (c *chunkWriter) seal(last bool) {
	if c.i >= maxChunks {
		c.err = errors.New("backup: too large")
		return
	}
	c.out = c.aead.Seal(c.out[:0], nonce(c.prefix, c.i, last), c.buf, c.aad)
	c.i++
	c.buf = c.buf[:0]
	_, c.err = c.w.Write(c.out)
}

// Close seals the last chunk (which may be empty).
func (c *chunkWriter) Close() error {
	if c.err != nil {
		return c.err
	}
	c.seal(true)
	clear(c.buf[:cap(c.buf)])
	if c.err == nil {
		c.err = errors.New("backup: chunk writer closed")
		return nil
	}
	return c.err
}

// chunkReader decrypts and authenticates chunks. It returns io.EOF only
// after the last chunk, when nothing follows it.
type chunkReader struct {
	r      *bufio.Reader
	aead   cipher.AEAD
	prefix []byte
	aad    []byte
	i      uint64
	ct     []byte
	plain  []byte // authenticated plaintext not yet read
	pbuf   []byte
	done   bool
	err    error
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.plain) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		if c.done {
			return 0, io.EOF
		}
		c.err = c.next()
	}
	n := copy(p, c.plain)
	c.plain = c.plain[n:]
	return n, nil
}

func (c *chunkReader) open(last bool) ([]byte, error) {
	return c.aead.Open(c.pbuf[:0], nonce(c.prefix, c.i, last), c.ct, c.aad)
}

// next reads, authenticates and decrypts chunk c.i.
func (c *chunkReader) next() error {
	if c.i >= maxChunks {
		return fmt.Errorf("%w: too many chunks", ErrCorrupt)
	}
	n, err := io.ReadFull(c.r, c.ct[:chunkCTLen])
	c.ct = c.ct[:n]
	switch {
	case err == io.EOF:
		// The previous chunk was not the last one, and nothing follows.
		if c.i == 0 {
			return fmt.Errorf("%w: it has no chunks", ErrTruncated)
		}
		return fmt.Errorf("%w: it ends after chunk %d, which is not the last", ErrTruncated, c.i-1)
	case err == io.ErrUnexpectedEOF:
		// A short chunk must be the last.
		pt, err := c.open(true)
		if err != nil {
			return fmt.Errorf("%w: chunk %d fails authentication (cut short, altered or out of place)", ErrCorrupt, c.i)
		}
		c.plain, c.pbuf, c.done = pt, pt, true
		return nil
	case err != nil:
		return err
	}
	_, err = c.r.Peek(1)
	atEnd := err == io.EOF
	if err != nil && !atEnd {
		return err
	}
	pt, err := c.open(atEnd)
	if err != nil {
		// Tell truncation (the last full chunk is not marked last) and
		// appended data (a chunk marked last has more after it) from
		// other damage, when that is what it is.
		if _, err2 := c.open(!atEnd); err2 == nil {
			if atEnd {
				return fmt.Errorf("%w: it ends after chunk %d, which is not the last", ErrTruncated, c.i)
			}
			return fmt.Errorf("%w: data follows the last chunk", ErrCorrupt)
		}
		return fmt.Errorf("%w: chunk %d fails authentication (altered or out of place)", ErrCorrupt, c.i)
	}
	c.plain, c.pbuf = pt, pt
	c.i++
	if atEnd {
		c.done = true
	}
	return nil
}

// Write writes a backup of snap to w. meta supplies ClusterID, Node, Created
// (now if zero) and SealedDomainKey, which must be the sealed form of the
// domain key that s holds, as kept in the store's meta (Write checks that
// the snapshot's meta holds that very record, and refuses a store without
// one). The data key and the nonce prefix are fresh and random. Write
// checks the snapshot stream as it encrypts it; it does not close or sync w.
func Write(w io.Writer, s *seal.Sealer, meta Header, snap state.StoreSnapshot, progress func(Progress)) error {
	h := Header{Format: Format, ClusterID: meta.ClusterID, Node: meta.Node, Created: meta.Created.UTC(),
		Index: snap.Index(), SealedDomainKey: meta.SealedDomainKey, NoncePrefix: make([]byte, noncePrefixLen)}
	if h.Created.IsZero() {
		h.Created = time.Now().UTC()
	}
	h.Users, h.Objects = snap.Counts()
	dataKey := make([]byte, seal.BackupDataKeyLen)
	defer clear(dataKey)
	if _, err := rand.Read(dataKey); err != nil {
		return err
	}
	if _, err := rand.Read(h.NoncePrefix); err != nil {
		return err
	}
	var err error
	if h.WrappedKey, err = s.WrapBackupKey(dataKey); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := h.check(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	hdr, sum, err := h.marshal()
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	aead, err := seal.NewGCM(dataKey)
	if err != nil {
		return err
	}
	if _, err := w.Write(append(hdr, sum[:]...)); err != nil {
		return err
	}
	cw := &chunkWriter{w: w, aead: aead, prefix: h.NoncePrefix, aad: sum[:], buf: make([]byte, 0, ChunkSize)}

	// The snapshot streams into a pipe; this side checks the stream as it
	// passes (so a backup never holds a stream Restore would refuse) and
	// encrypts it.
	pr, pw := io.Pipe()
	wrote := make(chan error, 1)
	go func() {
		_, err := snap.WriteTo(pw, nil)
		pw.CloseWithError(err)
		wrote <- err
	}()
	err = readStream(io.TeeReader(pr, cw), &h, s, "write", progress)
	pr.CloseWithError(errors.New("backup: stopped"))
	if werr := <-wrote; err == nil && werr != nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := cw.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

// errMismatch is a header that does not describe the snapshot stream.
var errMismatch = errors.New("header and store snapshot disagree")

// readStream reads a whole snapshot stream from r, checking it, and checks
// it against the backup's header: index and counts, and the sealed domain
// key in meta. Errors from r are returned as they are.
//
// When s is not nil, the first user row with a MAC is checked under it, so
// that a backup is not made with the sealer of another domain key (its data
// key would not unwrap under the domain key in its header).
func readStream(r io.Reader, h *Header, s *seal.Sealer, phase string, progress func(Progress)) error {
	dec, err := snapshot.NewDecoder(r)
	if err != nil {
		return err
	}
	sh := dec.Header()
	if sh.Index != h.Index || sh.Users != uint64(h.Users) || sh.Objects != uint64(h.Objects) {
		return fmt.Errorf("%w: the header's index or counts are not the store snapshot's", errMismatch)
	}
	total := int64(sh.Records())
	var done int64
	report := func() {
		if progress != nil {
			progress(Progress{Phase: phase, Done: done, Total: total})
		}
	}
	report()
	sawDK := false
	for {
		rec, err := dec.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if u := rec.User; s != nil && u != nil && u.MAC != nil {
			user := &object.User{Name: u.Name, Role: object.Role(u.Role), PasswordHash: u.PasswordHash, FailedLogins: int(u.FailedLogins),
				Locked: u.Locked != 0, Generation: uint64(u.Generation), Created: u.Created, Number: uint64(u.Number), MAC: u.MAC}
			if !s.CheckUserMAC(user) {
				return errors.New("the sealer given is not the store's: a user's MAC does not check under it")
			}
			s = nil
		}
		if rec.Meta != nil && rec.Meta.Key == state.MetaDomainKey {
			if !bytes.Equal(rec.Meta.Value, h.SealedDomainKey) {
				return fmt.Errorf("%w: the sealed domain key in the header is not the one in the store's meta", errMismatch)
			}
			sawDK = true
		}
		done++
		if done%progressEvery == 0 {
			report()
		}
	}
	if done%progressEvery != 0 || done == 0 {
		report()
	}
	if !sawDK {
		return fmt.Errorf("%w: the store snapshot has no domain key (is the store initialized?)", errMismatch)
	}
	return nil
}

// Verify reads a whole backup and checks it: the header, the sealed domain
// key (opened by unseal, with the caller's passphrase or key file), the
// wrapped data key, every chunk, that the last chunk is there and nothing
// follows it, and the snapshot stream inside. It writes nothing anywhere. It
// returns the header, or an error wrapping ErrNotBackup, ErrFormat,
// ErrTruncated, ErrCorrupt or ErrWrongPassphrase (or the reader's error).
func Verify(r io.Reader, unseal func(sealedDK []byte) (*seal.Sealer, error), progress func(Progress)) (*Header, error) {
	br := bufio.NewReaderSize(r, chunkCTLen+1)
	h, aad, err := readHeader(br)
	if err != nil {
		return nil, err
	}
	s, err := unseal(h.SealedDomainKey)
	if err != nil {
		if errors.Is(err, seal.ErrWrongKEK) {
			return nil, ErrWrongPassphrase
		}
		return nil, fmt.Errorf("backup: open its domain key: %w", err)
	}
	if err := decrypt(br, h, aad, s, io.Discard, "verify", progress); err != nil {
		if errors.Is(err, seal.ErrBackupKey) {
			// The domain key came out of the header and opens, yet the
			// data key beside it does not: the header was edited.
			return nil, fmt.Errorf("%w: its data key does not unwrap under its own domain key", ErrCorrupt)
		}
		return nil, err
	}
	return h, nil
}

// Decrypt writes the snapshot stream inside a backup (what Store.Restore
// reads) to w, checking everything as Verify does; s is the sealer of the
// backup's domain key. Each chunk is authenticated before its plaintext is
// written, but a truncated or altered file is only known to be one when it
// ends, after some plaintext went to w: run Verify first, and let w be
// something that checks the stream and commits only at its end (Restore).
// A data key that does not unwrap under s is seal.ErrBackupKey.
func Decrypt(r io.Reader, s *seal.Sealer, w io.Writer, progress func(Progress)) (*Header, error) {
	br := bufio.NewReaderSize(r, chunkCTLen+1)
	h, aad, err := readHeader(br)
	if err != nil {
		return nil, err
	}
	if err := decrypt(br, h, aad, s, w, "decrypt", progress); err != nil {
		return nil, err
	}
	return h, nil
}

func decrypt(br *bufio.Reader, h *Header, aad [32]byte, s *seal.Sealer, w io.Writer, phase string, progress func(Progress)) error {
	dataKey, err := s.UnwrapBackupKey(h.WrappedKey)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	aead, err := seal.NewGCM(dataKey)
	clear(dataKey)
	if err != nil {
		return err
	}
	cr := &chunkReader{r: br, aead: aead, prefix: h.NoncePrefix, aad: aad[:],
		ct: make([]byte, chunkCTLen), pbuf: make([]byte, 0, ChunkSize)}
	err = readStream(io.TeeReader(cr, w), h, nil, phase, progress)
	if err != nil && (errors.Is(err, snapshot.ErrBad) || errors.Is(err, errMismatch)) {
		// Authenticated, yet not sound: written wrong.
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return err
}
