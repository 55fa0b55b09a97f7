package chapters

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/internal/p11build"
	"github.com/openhsm/openhsm/mech"
)

var update = flag.Bool("update", false, "rewrite the generated mechanism table in docs/pkcs11-library.md")

// Mechanism flags of PKCS#11 3.0 (message-based functions) and 3.2 (KEM)
// that the ck package may not name yet.
const (
	ckfMessageEncrypt = 0x2
	ckfMessageDecrypt = 0x4
	ckfMessageSign    = 0x8
	ckfMessageVerify  = 0x10
	ckfEncapsulate    = 0x10000000
	ckfDecapsulate    = 0x20000000
)

// The markers around the generated part of the doc.
const (
	mechBegin = "<!-- mechanisms: generated from mech/mechanisms.go by TestConformanceDoc (go test ./p11module/chapters -run TestConformanceDoc -update); do not edit -->"
	mechEnd   = "<!-- end of mechanisms -->"
)

func mechCount() int64 { return int64(len(mech.Mechanisms())) }

func docPath() string {
	return filepath.Join(p11build.Dir(), "..", "docs", "pkcs11-library.md")
}

// mechanismTable is the Markdown table of every mechanism of the mech
// package with the functions its flags give it.
func mechanismTable() string {
	cols := []struct {
		head  string
		flags uint64
	}{
		{"Encrypt", ck.CKF_ENCRYPT}, {"Decrypt", ck.CKF_DECRYPT}, {"Sign", ck.CKF_SIGN},
		{"Verify", ck.CKF_VERIFY}, {"Digest", ck.CKF_DIGEST},
		{"Generate", ck.CKF_GENERATE | ck.CKF_GENERATE_KEY_PAIR},
		{"Wrap", ck.CKF_WRAP}, {"Unwrap", ck.CKF_UNWRAP}, {"Derive", ck.CKF_DERIVE},
	}
	others := []struct {
		name  string
		flags uint64
	}{
		{"sign-recover", ck.CKF_SIGN_RECOVER}, {"verify-recover", ck.CKF_VERIFY_RECOVER},
		{"message-encrypt", ckfMessageEncrypt}, {"message-decrypt", ckfMessageDecrypt},
		{"message-sign", ckfMessageSign}, {"message-verify", ckfMessageVerify},
		{"encapsulate", ckfEncapsulate}, {"decapsulate", ckfDecapsulate},
	}
	var b strings.Builder
	b.WriteString("| Mechanism | Key types | Key sizes |")
	for _, c := range cols {
		b.WriteString(" " + c.head + " |")
	}
	b.WriteString(" Other |\n|---|---|---|")
	for range cols {
		b.WriteString(":-:|")
	}
	b.WriteString("---|\n")
	for _, m := range mech.Mechanisms() {
		var kts []string
		for _, k := range m.KeyTypes {
			kts = append(kts, ck.KeyTypeName(k))
		}
		sizes := ""
		if m.MinKeySize != 0 || m.MaxKeySize != 0 {
			sizes = fmt.Sprintf("%d–%d", m.MinKeySize, m.MaxKeySize)
		}
		fmt.Fprintf(&b, "| `%s` (0x%x) | %s | %s |", ck.MechName(m.Type), m.Type, strings.Join(kts, ", "), sizes)
		for _, c := range cols {
			if m.Flags&c.flags != 0 {
				b.WriteString(" ✓ |")
			} else {
				b.WriteString(" |")
			}
		}
		var other []string
		for _, o := range others {
			if m.Flags&o.flags != 0 {
				other = append(other, o.name)
			}
		}
		if len(other) > 0 {
			b.WriteString(" " + strings.Join(other, ", "))
		}
		b.WriteString(" |\n")
	}
	return b.String()
}

// TestConformanceDoc: the mechanism table in docs/pkcs11-library.md is the
// one the mech package's table gives (with -update, it is rewritten), and
// the function table names every function the chapter rows name.
func TestConformanceDoc(t *testing.T) {
	raw, err := os.ReadFile(docPath())
	require.NoError(t, err)
	doc := string(raw)
	i := strings.Index(doc, mechBegin)
	j := strings.Index(doc, mechEnd)
	require.True(t, i >= 0 && j > i, "docs/pkcs11-library.md has no generated mechanism table between its markers")
	want := mechanismTable()
	got := doc[i+len(mechBegin)+1 : j]
	if *update && got != want {
		doc = doc[:i+len(mechBegin)+1] + want + doc[j:]
		require.NoError(t, os.WriteFile(docPath(), []byte(doc), 0o644))
		got = want
	}
	assert.Equal(t, want, got, "the mechanism table of docs/pkcs11-library.md is not mech's table: "+
		"go test ./p11module/chapters -run TestConformanceDoc -update")

	// The function table: a row "| `C_X` | status | ... |" per function.
	fnRow := regexp.MustCompile("(?m)^\\| `(C_[A-Za-z]+)` \\| (supported|not supported|partial) \\|")
	listed := map[string]bool{}
	for _, m := range fnRow.FindAllStringSubmatch(doc, -1) {
		listed[m[1]] = true
	}
	for _, c := range chapters {
		for _, f := range c.fns {
			assert.True(t, listed[f.name], "docs/pkcs11-library.md's function table has no row for %s", f.name)
		}
	}
	// And the chapters name every function the library's v3.0 list has
	// (68 + 24), plus the two 3.2 KEM functions.
	total := 0
	for _, c := range chapters {
		total += len(c.fns)
	}
	assert.Equal(t, 68+24+2, total, "functions in the chapter tables")
}
