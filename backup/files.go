package backup

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/openhsm/openhsm/seal"
	"github.com/openhsm/openhsm/state"
)

// Retention, in days, of the backups in a backup directory.
const (
	MinRetentionDays     = 7
	MaxRetentionDays     = 379
	DefaultRetentionDays = 90
)

// Ext is the file name extension of a backup.
const Ext = ".hsmbak"

// CheckRetentionDays refuses a retention outside [MinRetentionDays,
// MaxRetentionDays].
func CheckRetentionDays(n int) error {
	if n < MinRetentionDays || n > MaxRetentionDays {
		return fmt.Errorf("backup retention must be %d to %d days, not %d", MinRetentionDays, MaxRetentionDays, n)
	}
	return nil
}

// FileName is the name of a backup made at created by node:
// backup-<UTC yyyymmddThhmmssZ>-<node>-<8 random hex digits>.hsmbak. Bytes of
// the node name other than ASCII letters, digits, '.', '_' and '-' become
// '_', and it is cut to 64 bytes.
func FileName(created time.Time, node string) (string, error) {
	var r [4]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	return "backup-" + created.UTC().Format("20060102T150405Z") + "-" + safeNode(node) + "-" + hex.EncodeToString(r[:]) + Ext, nil
}

func safeNode(node string) string {
	b := []byte(node)
	if len(b) > 64 {
		b = b[:64]
	}
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	if len(b) == 0 || b[0] == '.' {
		b = append([]byte("node"), b...)
	}
	return string(b)
}

// WriteFile writes a backup (see Write) into dir under a FileName, and
// returns its path. The file appears whole or not at all: it is written to a
// temporary file in dir (mode 0600), synced, renamed into place, and dir is
// synced. On error nothing is left behind.
func WriteFile(dir string, s *seal.Sealer, meta Header, snap state.StoreSnapshot, progress func(Progress)) (path string, err error) {
	if meta.Created.IsZero() {
		meta.Created = time.Now()
	}
	meta.Created = meta.Created.UTC()
	name, err := FileName(meta.Created, meta.Node)
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, ".backup-*.tmp")
	if err != nil {
		return "", fmt.Errorf("backup: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 256<<10)
	if err = Write(bw, s, meta, snap, progress); err != nil {
		return "", err
	}
	if err = bw.Flush(); err != nil {
		return "", fmt.Errorf("backup: write %s: %w", tmp, err)
	}
	if err = f.Sync(); err != nil {
		return "", fmt.Errorf("backup: sync %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return "", fmt.Errorf("backup: close %s: %w", tmp, err)
	}
	path = filepath.Join(dir, name)
	if _, err = os.Lstat(path); err == nil {
		return "", fmt.Errorf("backup: %s already exists", path)
	}
	if err = os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("backup: %w", err)
	}
	if err = syncDir(dir); err != nil {
		// The file is in place; only its durability is in doubt.
		return path, fmt.Errorf("backup: sync directory %s: %w", dir, err)
	}
	return path, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Entry is one backup file in a directory. Header is nil, and Err says why,
// for a file that has a backup's name but whose header cannot be read.
type Entry struct {
	Name   string
	Path   string
	Size   int64
	Header *Header
	Err    error
}

// List returns the backups in dir: regular files whose names end in Ext and
// do not start with '.' (temporary files do). Other files are skipped. A
// file whose header cannot be read or is not sound is listed with Err set;
// only a directory that cannot be read fails the whole list. Readable
// backups come first, oldest first (by Header.Created, then name); then the
// others, by name.
func List(dir string) ([]Entry, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	var out []Entry
	for _, de := range des {
		name := de.Name()
		if !strings.HasSuffix(name, Ext) || strings.HasPrefix(name, ".") || !de.Type().IsRegular() {
			continue
		}
		e := Entry{Name: name, Path: filepath.Join(dir, name)}
		e.Header, e.Size, e.Err = readFileHeader(e.Path)
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if (a.Header == nil) != (b.Header == nil) {
			return a.Header != nil
		}
		if a.Header != nil && !a.Header.Created.Equal(b.Header.Created) {
			return a.Header.Created.Before(b.Header.Created)
		}
		return a.Name < b.Name
	})
	return out, nil
}

func readFileHeader(path string) (*Header, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	h, err := ReadHeader(bufio.NewReader(f))
	return h, fi.Size(), err
}

// Prune removes the backups in dir (as List finds them) whose
// Header.Created is older than now minus retention, and returns their
// paths. It never removes the newest readable backup, however old, nor a
// file whose header cannot be read. retention must be at least
// MinRetentionDays days. Failures to remove are joined in err; the other
// removals go ahead.
func Prune(dir string, retention time.Duration, now time.Time) (removed []string, err error) {
	if retention < MinRetentionDays*24*time.Hour {
		return nil, fmt.Errorf("backup: retention %v is below the minimum of %d days", retention, MinRetentionDays)
	}
	entries, err := List(dir)
	if err != nil {
		return nil, err
	}
	var readable []Entry
	for _, e := range entries {
		if e.Header != nil {
			readable = append(readable, e)
		}
	}
	if len(readable) == 0 {
		return nil, nil
	}
	cutoff := now.Add(-retention)
	var errs []error
	for _, e := range readable[:len(readable)-1] { // the newest stays
		if !e.Header.Created.Before(cutoff) {
			continue
		}
		if err := os.Remove(e.Path); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, e.Path)
	}
	if len(removed) > 0 {
		if err := syncDir(dir); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return removed, fmt.Errorf("backup: prune: %w", errors.Join(errs...))
	}
	return removed, nil
}
