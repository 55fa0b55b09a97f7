package model

import (
	"context"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// checker.java answers, for each line "hex(pattern) hex(value)", whether
// java.util.regex matches the whole value: the check AWS's service makes.
const javaChecker = `
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.util.regex.Pattern;

public class Checker {
    static String unhex(String h) {
        byte[] b = new byte[h.length() / 2];
        for (int i = 0; i < b.length; i++) b[i] = (byte) Integer.parseInt(h.substring(2 * i, 2 * i + 2), 16);
        return new String(b, StandardCharsets.UTF_8);
    }
    public static void main(String[] args) throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        StringBuilder out = new StringBuilder();
        for (String line; (line = in.readLine()) != null; ) {
            String[] f = line.split(" ", -1);
            out.append(Pattern.compile(unhex(f[0])).matcher(unhex(f[1])).matches() ? '1' : '0');
        }
        System.out.println(out);
    }
}
`

// TestPatternsAgreeWithJava runs every pattern of the model in a JVM
// against values made to sit on both sides of it and checks that the Go
// translation answers as Java does. It needs a java command (OpenJDK's
// single-file launcher) and skips without one.
func TestPatternsAgreeWithJava(t *testing.T) {
	java, err := exec.LookPath("java")
	if err != nil {
		t.Skip("no java command: the translation is checked by javare's table only")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "Checker.java")
	require.NoError(t, os.WriteFile(src, []byte(javaChecker), 0o600))

	type probe struct {
		s     *Shape
		value string
	}
	var probes []probe
	var names []string
	for n, s := range kms.shapes {
		if s.Pattern != "" {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		s := kms.shapes[n]
		values := []string{"", " ", "a", "A", "0", "-", "a\n", "\n", "\x0b", "\x01", "é", "ÿ", "\u0100", "\u0085", "\u2028",
			"alias/x", "alias/aws/x", "a b", "a\tb", "cluster-", "us-east-1", "/kms/xks/v1", "https://x.example"}
		hi := 64
		if s.Max != nil {
			hi = int(min(*s.Max+1, 300))
		}
		for n := 0; n <= hi; n += 1 + n/8 {
			if v, ok := matching(s.Pattern, n); ok {
				values = append(values, v, v+"\n", "\n"+v, v+" ", v+"\u0100", v+"\x0b")
				if bad, ok := notMatching(s.Pattern, v); ok {
					values = append(values, bad)
				}
			}
		}
		for _, v := range values {
			probes = append(probes, probe{s, v})
		}
	}
	var in strings.Builder
	for _, p := range probes {
		in.WriteString(hex.EncodeToString([]byte(p.s.Pattern)) + " " + hex.EncodeToString([]byte(p.value)) + "\n")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, java, src)
	cmd.Stdin = strings.NewReader(in.String())
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	require.NoError(t, err)
	answers := strings.TrimSpace(string(out))
	require.Len(t, answers, len(probes))
	for i, p := range probes {
		require.Equal(t, answers[i] == '1', p.s.re.MatchString(p.value), "%s: %q on %q", p.s.Name, p.s.Pattern, p.value)
	}
	t.Logf("%d patterns, %d values, Java and Go agree", len(names), len(probes))
}
