package model

import (
	"math"
	"regexp/syntax"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/kms/model/internal/javare"
)

// matching returns a string of exactly n code points that the whole of
// Java pattern p matches, or false when it finds none. It reads the
// translated pattern's syntax tree and assumes that every node can match
// every length between its shortest and longest match, which holds for the
// model's patterns; the caller checks the result against the compiled
// pattern anyway.
func matching(p string, n int) (string, bool) {
	t, err := javare.Translate(p)
	if err != nil {
		return "", false
	}
	re, err := syntax.Parse(`^(?:`+t+`)$`, syntax.Perl)
	if err != nil {
		return "", false
	}
	return genString(re.Simplify(), n)
}

const inf = math.MaxInt32

// span is the shortest and longest match of re, in code points.
func span(re *syntax.Regexp) (int, int) {
	switch re.Op {
	case syntax.OpLiteral:
		return len(re.Rune), len(re.Rune)
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return 1, 1
	case syntax.OpCapture:
		return span(re.Sub[0])
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat:
		a, b := span(re.Sub[0])
		lo, hi := repeats(re)
		return mul(a, lo), mul(b, hi)
	case syntax.OpConcat:
		lo, hi := 0, 0
		for _, s := range re.Sub {
			a, b := span(s)
			lo, hi = add(lo, a), add(hi, b)
		}
		return lo, hi
	case syntax.OpAlternate:
		lo, hi := inf, 0
		for _, s := range re.Sub {
			a, b := span(s)
			lo, hi = min(lo, a), max(hi, b)
		}
		return lo, hi
	}
	return 0, 0 // empty-width assertions
}

func repeats(re *syntax.Regexp) (int, int) {
	switch re.Op {
	case syntax.OpStar:
		return 0, inf
	case syntax.OpPlus:
		return 1, inf
	case syntax.OpQuest:
		return 0, 1
	}
	if re.Max < 0 {
		return re.Min, inf
	}
	return re.Min, re.Max
}

func add(a, b int) int {
	if a >= inf || b >= inf {
		return inf
	}
	return a + b
}

func mul(a, b int) int {
	if a == 0 || b == 0 {
		return 0
	}
	if a >= inf || b >= inf || a > inf/b {
		return inf
	}
	return a * b
}

// pick is a character of class re, printable when the class allows.
func pick(re *syntax.Regexp) rune {
	for _, r := range "aA0b_-./:" {
		for i := 0; i+1 < len(re.Rune); i += 2 {
			if re.Rune[i] <= r && r <= re.Rune[i+1] {
				return r
			}
		}
	}
	return re.Rune[0]
}

func genString(re *syntax.Regexp, n int) (string, bool) {
	lo, hi := span(re)
	if n < lo || n > hi {
		return "", false
	}
	switch re.Op {
	case syntax.OpLiteral:
		return string(re.Rune), true
	case syntax.OpCharClass:
		return string(pick(re)), true
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return "a", true
	case syntax.OpCapture:
		return genString(re.Sub[0], n)
	case syntax.OpAlternate:
		for _, s := range re.Sub {
			if out, ok := genString(s, n); ok {
				return out, true
			}
		}
		return "", false
	case syntax.OpConcat:
		extra := n - lo
		var b strings.Builder
		for _, s := range re.Sub {
			a, c := span(s)
			take := min(extra, c-a)
			extra -= take
			out, ok := genString(s, a+take)
			if !ok {
				return "", false
			}
			b.WriteString(out)
		}
		return b.String(), extra == 0
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat:
		a, c := span(re.Sub[0])
		rlo, rhi := repeats(re)
		for k := max(rlo, 1); k <= rhi && k <= n+1; k++ {
			if mul(k, a) > n || mul(k, c) < n {
				continue
			}
			extra := n - k*a
			var b strings.Builder
			for range k {
				take := min(extra, c-a)
				extra -= take
				out, ok := genString(re.Sub[0], a+take)
				if !ok {
					return "", false
				}
				b.WriteString(out)
			}
			return b.String(), true
		}
		return "", n == 0 && rlo == 0
	}
	return "", n == 0
}

// notMatching changes one character of s (which matches p) so that p no
// longer matches, keeping the length.
func notMatching(p, s string) (string, bool) {
	re, err := javare.Compile(p)
	if err != nil || s == "" {
		return "", false
	}
	rs := []rune(s)
	for _, at := range []int{0, len(rs) - 1} {
		for _, c := range "!#\x01 \u0100~é" {
			t := append([]rune{}, rs...)
			t[at] = c
			if !re.MatchString(string(t)) {
				return string(t), true
			}
		}
	}
	return "", false
}

func TestMatchingGenerator(t *testing.T) {
	for _, c := range []struct {
		pattern string
		n       int
	}{
		{`^[a-zA-Z0-9:/_-]+$`, 1}, {`^[a-zA-Z0-9:/_-]+$`, 256}, {`[0-9]{12}`, 12},
		{`cluster-[2-7a-zA-Z]{11,16}`, 19}, {`cluster-[2-7a-zA-Z]{11,16}`, 24},
		{`^([a-z]+-){2,3}\d+$`, 5}, {`^([a-z]+-){2,3}\d+$`, 32},
		{`^(/[a-zA-Z0-9\/_-]+/kms/xks/v\d{1,2})$|^(/kms/xks/v\d{1,2})$`, 11},
		{`^(/[a-zA-Z0-9\/_-]+/kms/xks/v\d{1,2})$|^(/kms/xks/v\d{1,2})$`, 128},
		{`[\u0020-\u00FF]*`, 0}, {`[\u0009\u000A\u000D\u0020-\u00FF]+`, 131072},
	} {
		s, ok := matching(c.pattern, c.n)
		require.True(t, ok, "%s at %d", c.pattern, c.n)
		require.Equal(t, c.n, utf8.RuneCountInString(s))
		re, err := javare.Compile(c.pattern)
		require.NoError(t, err)
		require.True(t, re.MatchString(s), "%s: %q", c.pattern, s)
		if c.n > 0 {
			bad, ok := notMatching(c.pattern, s)
			require.True(t, ok, c.pattern)
			require.False(t, re.MatchString(bad))
		}
	}
	_, ok := matching(`[0-9]{12}`, 13)
	require.False(t, ok)
	_, ok = matching(`cluster-[2-7a-zA-Z]{11,16}`, 25)
	require.False(t, ok)
}
