// Package sqlite is the SQLite implementation of state.Store, on the pure Go
// driver modernc.org/sqlite.
//
// The database runs in WAL mode. Writes go through one connection, so one
// Update runs at a time; reads use a separate pool of read-only connections
// and run in parallel with each other and with the Update in progress, each
// seeing the state as of the last committed Update.
//
// Update records the index of the command it applies in the same
// transaction as the command's writes, and refuses an index that is not
// above the one recorded (replay protection). Index 0 means "not a
// replicated command": Update neither checks nor records it. It is meant for
// single-node tools and tests; a replicated node must never mix the two.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/state"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Options tunes Open.
type Options struct {
	// Sync makes every commit durable against power loss (PRAGMA
	// synchronous=FULL). Without it (NORMAL) a commit survives a crash of
	// the process but the last commits may be lost on power loss; the
	// database stays consistent either way.
	Sync bool
}

// busyTimeoutMS is how long a connection waits for a lock held by another
// connection (another process, or a checkpoint) before failing.
const busyTimeoutMS = 10000

// Store is a state.Store kept in one SQLite file. It is safe for concurrent
// use.
type Store struct {
	path string
	w    *sql.DB // one connection: every write
	r    *sql.DB // read-only pool: every read outside Update

	wstmts [numWriteStmts]*sql.Stmt // prepared on w, used through sql.Tx.Stmt
	rstmts [numReadStmts]*sql.Stmt  // prepared on r

	findMu    sync.Mutex
	findStmts map[string]*sql.Stmt // Find statements by SQL text, on r

	wmu    sync.Mutex // held for a whole Update, and by Close
	closed bool

	// onCommit hears how long each Update's commit took (ObserveCommits).
	onCommit atomic.Pointer[func(time.Duration)]
}

// ObserveCommits makes f hear how long each write transaction's commit
// (its fsync included) takes; nil stops it. f must be cheap.
func (s *Store) ObserveCommits(f func(time.Duration)) {
	if f == nil {
		s.onCommit.Store(nil)
		return
	}
	s.onCommit.Store(&f)
}

var _ state.BatchStore = (*Store)(nil) // ApplyBatch falls back to one transaction a command without it

// Exists reports whether a file (of any content) exists at path.
func Exists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// Open opens the token store at path, creating the file (mode 0600) if it
// does not exist, and brings its schema up to date. The directory must exist. Open
// never deletes or truncates data: it refuses a file that is not an SQLite
// database, an SQLite database that is not a token store, and a token store
// written by a newer schema version (ErrNewerSchema), without writing to it.
func Open(path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("state/sqlite: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("state/sqlite: %w", err)
	}
	dir := filepath.Dir(abs)
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("state/sqlite: directory of %s: %w", abs, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("state/sqlite: %s is not a directory", dir)
	}
	if fi, err := os.Stat(abs); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("state/sqlite: %s is not a regular file", abs)
	}
	// Create a new file owner-only (SQLite would make it 0644); its -wal and
	// -shm files inherit the mode. O_EXCL: never truncate an existing file.
	if f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("state/sqlite: %w", err)
	}

	s := &Store{path: abs, findStmts: map[string]*sql.Stmt{}}
	ctx := context.Background()
	if err := s.open(ctx, opts); err != nil {
		s.closeDBs()
		return nil, fmt.Errorf("state/sqlite: open %s: %w", abs, err)
	}
	return s, nil
}

func (s *Store) open(ctx context.Context, opts Options) error {
	syncMode := "NORMAL"
	if opts.Sync {
		syncMode = "FULL"
	}
	wq := url.Values{}
	wq.Set("mode", "rwc")
	wq.Set("_txlock", "immediate")
	wq.Set("_busy_timeout", strconv.Itoa(busyTimeoutMS))
	wq.Set("_foreign_keys", "1")
	wq.Set("_synchronous", syncMode)
	// Keep the sub-journal of the savepoints that wrap each command in
	// memory: past 64 KiB SQLite spills it to a temporary file, which cost
	// an open, writes and an unlink in the middle of a batch.
	wq.Add("_pragma", "temp_store(memory)")
	w, err := sql.Open("sqlite", fileURI(s.path, wq))
	if err != nil {
		return err
	}
	s.w = w
	// One connection, kept open for the life of the store: it serialises
	// the writes and keeps the WAL and its index alive for the readers.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	// Check and migrate before switching to WAL, so that a file we refuse
	// is left exactly as it was.
	if err := migrate(ctx, w); err != nil {
		return err
	}
	if err := convertOnOpen(ctx, w); err != nil {
		return err
	}
	var mode string
	if err := w.QueryRowContext(ctx, `PRAGMA journal_mode = WAL`).Scan(&mode); err != nil {
		return fmt.Errorf("set WAL mode: %w", err)
	}
	if mode != "wal" {
		return fmt.Errorf("set WAL mode: journal mode is %q", mode)
	}

	rq := url.Values{}
	rq.Set("mode", "ro")
	rq.Set("_busy_timeout", strconv.Itoa(busyTimeoutMS))
	rq.Set("_query_only", "1")
	r, err := sql.Open("sqlite", fileURI(s.path, rq))
	if err != nil {
		return err
	}
	s.r = r
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	if err := r.PingContext(ctx); err != nil {
		return fmt.Errorf("open read pool: %w", err)
	}

	for i, q := range writeSQL {
		if s.wstmts[i], err = w.PrepareContext(ctx, q); err != nil {
			return fmt.Errorf("prepare %q: %w", q, err)
		}
	}
	for i, q := range readSQL {
		if s.rstmts[i], err = r.PrepareContext(ctx, q); err != nil {
			return fmt.Errorf("prepare %q: %w", q, err)
		}
	}
	return nil
}

// fileURI makes an SQLite URI for an absolute path, so that SQLite honours
// mode=ro and mode=rwc.
func fileURI(abs string, q url.Values) string {
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows drive letter: file:///C:/...
	}
	u := url.URL{Scheme: "file", Path: p, RawQuery: q.Encode()}
	return u.String()
}

// Path returns the absolute path of the database file.
func (s *Store) Path() string { return s.path }

// Close waits for the Update in progress, if any, and closes the database.
// Calls after Close fail.
func (s *Store) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.closeDBs()
}

func (s *Store) closeDBs() error {
	var errs []error
	s.findMu.Lock()
	for _, st := range s.findStmts {
		errs = append(errs, st.Close())
	}
	s.findStmts = nil
	s.findMu.Unlock()
	for _, st := range s.rstmts {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	for _, st := range s.wstmts {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	// Readers first: the writer, closing last, checkpoints the WAL.
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	return errors.Join(errs...)
}

var errClosed = errors.New("state/sqlite: store is closed")

// Read statements.
const (
	rUser = iota
	rUsers
	rObject
	rMeta
	rApplied
	rRequest
	numReadStmts
)

// objectCols are the columns scanObject reads, for objects aliased o.
const objectCols = `o.id, ` + objectRest

// objectRest are objectCols but the first.
const objectRest = `o.owner, o.attrs, o.sealed, o.sealed IS NOT NULL, o.mac,
	(SELECT group_concat(hex(sh.user), ',') FROM shares sh WHERE sh.object_id = o.id)`

const userCols = `name, role, password_hash, failed_logins, locked, generation, created, mac, number`

var readSQL = [numReadStmts]string{
	rUser:    `SELECT ` + userCols + ` FROM users WHERE name = ?`,
	rUsers:   `SELECT ` + userCols + ` FROM users ORDER BY name`,
	rObject:  `SELECT ` + objectCols + ` FROM objects o WHERE o.id = ?`,
	rMeta:    `SELECT value FROM meta WHERE key = ?`,
	rApplied: `SELECT idx FROM applied WHERE id = 1`,
	rRequest: `SELECT record FROM requests WHERE actor = ? AND id = ?`,
}

type scanner interface{ Scan(dest ...any) error }

func scanUser(row scanner) (*object.User, error) {
	var (
		u      object.User
		role   int64
		locked bool
		gen    int64
		number int64
	)
	if err := row.Scan(&u.Name, &role, &u.PasswordHash, &u.FailedLogins, &locked, &gen, &u.Created, &u.MAC, &number); err != nil {
		return nil, err
	}
	u.Role = object.Role(role)
	u.Locked = locked
	u.Generation = uint64(gen)
	u.Number = uint64(number)
	return &u, nil
}

func scanObject(row scanner) (*object.Object, error) {
	var (
		id        int64
		o         object.Object
		attrs     []byte
		sealed    []byte
		hasSealed bool
		shares    sql.NullString
	)
	if err := row.Scan(&id, &o.Owner, &attrs, &sealed, &hasSealed, &o.MAC, &shares); err != nil {
		return nil, err
	}
	o.ID = uint64(id)
	a, err := object.UnmarshalAttrs(attrs)
	if err != nil {
		return nil, fmt.Errorf("object %d: %w", o.ID, err)
	}
	o.Attrs = a
	if hasSealed {
		// The driver reads an empty blob as nil; keep empty apart from none.
		o.Sealed = append([]byte{}, sealed...)
	}
	if shares.Valid {
		if o.SharedWith, err = decodeShares(shares.String); err != nil {
			return nil, fmt.Errorf("object %d: %w", o.ID, err)
		}
	}
	return &o, nil
}

// decodeShares decodes group_concat(hex(user), ','), sorted.
func decodeShares(s string) ([]string, error) {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != ',' {
			continue
		}
		h := s[start:i]
		start = i + 1
		b := make([]byte, len(h)/2)
		if len(h)%2 != 0 {
			return nil, fmt.Errorf("bad share list")
		}
		for j := range b {
			hi, ok1 := unhex(h[2*j])
			lo, ok2 := unhex(h[2*j+1])
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("bad share list")
			}
			b[j] = hi<<4 | lo
		}
		out = append(out, string(b))
	}
	sort.Strings(out)
	return out, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

func notFound(what string) error { return fmt.Errorf("%s: %w", what, state.ErrNotFound) }

// User returns the named user, or an error wrapping state.ErrNotFound.
func (s *Store) User(name string) (*object.User, error) {
	return getUser(s.rstmts[rUser].QueryRowContext(context.Background(), name), name)
}

func getUser(row *sql.Row, name string) (*object.User, error) {
	u, err := scanUser(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(fmt.Sprintf("user %q", name))
	}
	if err != nil {
		return nil, fmt.Errorf("state/sqlite: read user %q: %w", name, err)
	}
	return u, nil
}

// Users returns every user, ordered by name.
func (s *Store) Users() ([]*object.User, error) {
	return getUsers(s.rstmts[rUsers])
}

func getUsers(st *sql.Stmt) ([]*object.User, error) {
	rows, err := st.QueryContext(context.Background())
	if err != nil {
		return nil, fmt.Errorf("state/sqlite: read users: %w", err)
	}
	defer rows.Close()
	var us []*object.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("state/sqlite: read users: %w", err)
		}
		us = append(us, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("state/sqlite: read users: %w", err)
	}
	return us, nil
}

// Object returns the object, or an error wrapping state.ErrNotFound.
func (s *Store) Object(id uint64) (*object.Object, error) {
	if id >= 1<<63 {
		return nil, notFound(fmt.Sprintf("object %d", id))
	}
	return getObject(s.rstmts[rObject].QueryRowContext(context.Background(), int64(id)), id)
}

func getObject(row *sql.Row, id uint64) (*object.Object, error) {
	o, err := scanObject(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(fmt.Sprintf("object %d", id))
	}
	if err != nil {
		return nil, fmt.Errorf("state/sqlite: read object %d: %w", id, err)
	}
	return o, nil
}

// Meta returns the value of key, or an error wrapping state.ErrNotFound.
// An empty value is returned as a non-nil empty slice.
// Request implements state.Store.
func (s *Store) Request(actor, id string) ([]byte, error) {
	return getRequest(s.rstmts[rRequest].QueryRowContext(context.Background(), actor, id), actor, id)
}

func (s *Store) Meta(key string) ([]byte, error) {
	return getMeta(s.rstmts[rMeta].QueryRowContext(context.Background(), key), key)
}

func getMeta(row *sql.Row, key string) ([]byte, error) {
	var v []byte
	err := row.Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(fmt.Sprintf("meta %q", key))
	}
	if err != nil {
		return nil, fmt.Errorf("state/sqlite: read meta %q: %w", key, err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// AppliedIndex returns the index recorded by the last Update with a
// non-zero index, or 0.
func (s *Store) AppliedIndex() (uint64, error) {
	return getApplied(s.rstmts[rApplied].QueryRowContext(context.Background()))
}

func getApplied(row *sql.Row) (uint64, error) {
	var idx int64
	err := row.Scan(&idx)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("state/sqlite: read applied index: %w", err)
	}
	return uint64(idx), nil
}

// Find returns the objects matching q, ordered by ID.
func (s *Store) Find(q state.Query) ([]*object.Object, error) {
	query, args := buildFind(q)
	st, err := s.findStmt(query)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(context.Background(), args...)
	if err != nil {
		return nil, fmt.Errorf("state/sqlite: find: %w", err)
	}
	defer rows.Close()
	var out []*object.Object
	for rows.Next() {
		o, err := scanObject(rows)
		if err != nil {
			return nil, fmt.Errorf("state/sqlite: find: %w", err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("state/sqlite: find: %w", err)
	}
	return out, nil
}

// findStmt returns the prepared statement for a Find query. There are at
// most a few hundred distinct query texts (one per combination of Query
// fields set), so the cache is not bounded.
func (s *Store) findStmt(query string) (*sql.Stmt, error) {
	s.findMu.Lock()
	defer s.findMu.Unlock()
	if s.findStmts == nil {
		return nil, errClosed
	}
	if st, ok := s.findStmts[query]; ok {
		return st, nil
	}
	st, err := s.r.PrepareContext(context.Background(), query)
	if err != nil {
		return nil, fmt.Errorf("state/sqlite: find: %w", err)
	}
	s.findStmts[query] = st
	return st, nil
}

// MetaScan implements state.Store; like Tx.MetaKeys it walks the primary
// key, so rows come in byte order of their keys.
func (s *Store) MetaScan(prefix, after string, limit int) ([]state.MetaRow, error) {
	if prefix == "" || prefix[len(prefix)-1] == 0xff || limit <= 0 {
		return nil, fmt.Errorf("state/sqlite: meta scan: bad prefix or limit")
	}
	upper := prefix[:len(prefix)-1] + string([]byte{prefix[len(prefix)-1] + 1})
	lower := prefix
	if after >= prefix {
		lower = after + "\x00"
	}
	rows, err := s.r.QueryContext(context.Background(),
		`SELECT key, value FROM meta WHERE key >= ? AND key < ? ORDER BY key LIMIT ?`, lower, upper, limit)
	if err != nil {
		return nil, fmt.Errorf("state/sqlite: meta scan: %w", err)
	}
	defer rows.Close()
	var out []state.MetaRow
	for rows.Next() {
		var r state.MetaRow
		if err := rows.Scan(&r.Key, &r.Value); err != nil {
			return nil, fmt.Errorf("state/sqlite: meta scan: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
