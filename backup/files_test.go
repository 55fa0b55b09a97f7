package backup

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/openhsm/openhsm/seal"
	"github.com/openhsm/openhsm/state"
)

func TestCheckRetentionDays(t *testing.T) {
	for n, ok := range map[int]bool{-1: false, 0: false, 6: false, 7: true, 90: true, 379: true, 380: false, 10000: false} {
		if err := CheckRetentionDays(n); (err == nil) != ok {
			t.Errorf("CheckRetentionDays(%d) = %v", n, err)
		}
	}
	if CheckRetentionDays(DefaultRetentionDays) != nil {
		t.Fatal("the default is refused")
	}
}

func TestFileName(t *testing.T) {
	at := time.Date(2026, 12, 31, 23, 59, 58, 999, time.FixedZone("e", -5*3600))
	re := regexp.MustCompile(`^backup-20270101T045958Z-([A-Za-z0-9._-]+)-[0-9a-f]{8}\.hsmbak$`)
	for node, want := range map[string]string{
		"node-1":                 "node-1",
		"a/b\\c d":               "a_b_c_d",
		"":                       "node",
		"..":                     "node..",
		"nöde":                   "n__de",
		strings.Repeat("x", 100): strings.Repeat("x", 64),
	} {
		name, err := FileName(at, node)
		if err != nil {
			t.Fatal(err)
		}
		m := re.FindStringSubmatch(name)
		if m == nil || m[1] != want {
			t.Errorf("FileName(%q) = %q, want node part %q", node, name, want)
		}
	}
	a, _ := FileName(at, "n")
	b, _ := FileName(at, "n")
	if a == b {
		t.Fatal("two names for the same second and node are equal")
	}
}

func writeAt(t *testing.T, dir string, c *cluster, st state.Store, created time.Time) string {
	t.Helper()
	sn, err := st.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	path, err := WriteFile(dir, c.s, meta(c, created), sn, nil)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func names(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Name)
	}
	return out
}

func TestListAndPrune(t *testing.T) {
	c := newCluster(t, "cluster-files", seal.KEKSource{KeyFile: keyFile})
	st := newStore(t, c, 1, 1)
	dir := t.TempDir()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	old1 := writeAt(t, dir, c, st, now.Add(-100*day))
	old2 := writeAt(t, dir, c, st, now.Add(-31*day))
	keep1 := writeAt(t, dir, c, st, now.Add(-29*day))
	keep2 := writeAt(t, dir, c, st, now.Add(-time.Hour))

	// Junk: other files, a directory, a temporary file, a broken backup.
	for name, content := range map[string]string{
		"notes.txt":                  "hello",
		".backup-123.tmp":            "partial",
		".hidden.hsmbak":             "x",
		"backup-broken.hsmbak":       "OHSMBAK\n\x00\x01",
		"renamed-but-real.hsmbak.gz": "x",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.hsmbak"), 0o700); err != nil {
		t.Fatal(err)
	}

	es, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Base(old1), filepath.Base(old2), filepath.Base(keep1), filepath.Base(keep2), "backup-broken.hsmbak"}
	if got := names(es); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("List = %v\nwant %v", got, want)
	}
	for _, e := range es[:4] {
		if e.Err != nil || e.Header == nil || e.Header.ClusterID != c.id || e.Size <= 0 || e.Path != filepath.Join(dir, e.Name) {
			t.Fatalf("entry %+v", e)
		}
	}
	if broken := es[4]; broken.Header != nil || !errors.Is(broken.Err, ErrTruncated) {
		t.Fatalf("broken entry: %+v", broken)
	}

	// Too short a retention is refused outright.
	if _, err := Prune(dir, 6*day, now); err == nil {
		t.Fatal("Prune with 6 days succeeded")
	}
	removed, err := Prune(dir, 30*day, now)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(removed)
	if strings.Join(removed, " ") != strings.Join([]string{old1, old2}, " ") && strings.Join(removed, " ") != strings.Join([]string{old2, old1}, " ") {
		t.Fatalf("Prune removed %v, want %v", removed, []string{old1, old2})
	}
	es, _ = List(dir)
	want = []string{filepath.Base(keep1), filepath.Base(keep2), "backup-broken.hsmbak"}
	if got := names(es); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("after Prune, List = %v", got)
	}
	for _, f := range []string{"notes.txt", ".backup-123.tmp", "sub.hsmbak"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("Prune removed %s", f)
		}
	}

	// The newest backup stays even when it is past the retention.
	removed, err = Prune(dir, 7*day, now.Add(365*day))
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != keep1 {
		t.Fatalf("Prune far in the future removed %v, want only %s", removed, keep1)
	}
	if _, err := os.Stat(keep2); err != nil {
		t.Fatal("the newest backup was removed")
	}
	if _, err := List(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("List of a missing directory succeeded")
	}
}
