package javare

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Each row: a Java pattern, a value, and what Java's matcher.matches()
// answers (checked with OpenJDK 17 when these rows were written; the model
// package's Java test checks the model's own patterns against a JVM).
func TestMatchesLikeJava(t *testing.T) {
	for _, r := range []struct {
		pattern, value string
		want           bool
	}{
		{`^[a-zA-Z0-9:/_-]+$`, "alias/my-key_1:x", true},
		{`^[a-zA-Z0-9:/_-]+$`, "alias/my key", false},
		{`^[a-zA-Z0-9:/_-]+$`, "alias/x\n", false}, // Java's $ before a final newline does not make matches() true
		{`^[a-zA-Z0-9:/_-]+$`, "", false},
		{`[0-9]{12}`, "123456789012", true},
		{`[0-9]{12}`, "x123456789012", false}, // whole value, not a find
		{`[\u0020-\u00FF]*`, "", true},
		{`[\u0020-\u00FF]*`, "ÿ ~", true},
		{`[\u0020-\u00FF]*`, "\u0100", false},
		{`[\u0020-\u00FF]*`, "\x1f", false},
		{`[\u0009\u000A\u000D\u0020-\u00FF]+`, "{\n\t\"a\": 1\r}", true},
		{`[\u0009\u000A\u000D\u0020-\u00FF]+`, "\x0b", false},
		{`^[a-zA-Z0-9:/_\s.-]+$`, "a\x0bb", true}, // Java's \s has the vertical tab
		{`^[a-zA-Z0-9:/_\s.-]+$`, "a\u00a0b", false},
		{`[\w]+`, "abc_09", true},
		{`[\w]+`, "é", false},
		{`^[\w+=,.@:/-]+$`, "arn:aws:iam::123:role/x+y=z,a.b@c", true},
		{`^([a-z]+-){2,3}\d+$`, "us-east-1", true},
		{`^([a-z]+-){2,3}\d+$`, "us-1", false},
		{`^[a-zA-Z0-9-_.]+$`, "a-b_c.d", true},
		{`^[a-zA-Z0-9-_.]+$`, "a,b", false},
		{`^(/[a-zA-Z0-9\/_-]+/kms/xks/v\d{1,2})$|^(/kms/xks/v\d{1,2})$`, "/kms/xks/v1", true},
		{`^(/[a-zA-Z0-9\/_-]+/kms/xks/v\d{1,2})$|^(/kms/xks/v\d{1,2})$`, "/a/b/kms/xks/v12", true},
		{`^(/[a-zA-Z0-9\/_-]+/kms/xks/v\d{1,2})$|^(/kms/xks/v\d{1,2})$`, "/kms/xks/v123", false},
		{`cluster-[2-7a-zA-Z]{11,16}`, "cluster-abcdefghijk", true},
		{`cluster-[2-7a-zA-Z]{11,16}`, "cluster-abcdefghij1", false},
		{`a.b`, "a\rb", false}, // Java's . stops at every line terminator
		{`a.b`, "a\u2028b", false},
		{`a.b`, "a\tb", true},
	} {
		re, err := Compile(r.pattern)
		require.NoError(t, err, r.pattern)
		assert.Equal(t, r.want, re.MatchString(r.value), "%s on %q", r.pattern, r.value)
	}
}

func TestRefusesWhatItDoesNotTranslate(t *testing.T) {
	for _, p := range []string{
		`(?!aws:).*`,  // lookahead
		`(a)\1`,       // backreference
		`a*+`,         // possessive
		`[a-z&&[^q]]`, // intersection
		`[a[bc]]`,     // union
		`\bword\b`,    // Unicode-aware in Java
		`\p{Alpha}+`,  // POSIX class (ASCII in Java)
		`\p{javaLowerCase}`,
		`\Qa.b\E`,
		`(?i)abc`,
		`[\S]`,
		`abc\`,
		`[abc`,
		`a$b`,
		`\u00G1`,
	} {
		_, err := Translate(p)
		assert.Error(t, err, p)
	}
}

func TestTranslations(t *testing.T) {
	for p, want := range map[string]string{
		`[\u0020-\u00FF]*`:      `[\x{0020}-\x{00FF}]*`,
		`^[a-z\s]+$`:            `^[a-z\t\n\x0B\f\r ]+$`,
		`\s\S`:                  `[\t\n\x0B\f\r ][^\t\n\x0B\f\r ]`,
		`a.b`:                   `a[^\n\r\x{85}\x{2028}\x{2029}]b`,
		`[.]`:                   `[.]`,
		`(?:ab)+\p{L}\pN\p{Lu}`: `(?:ab)+\p{L}\pN\p{Lu}`,
		`\/\-\.`:                `\/\-\.`,
	} {
		got, err := Translate(p)
		require.NoError(t, err, p)
		assert.Equal(t, want, got, p)
	}
}
