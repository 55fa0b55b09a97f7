// Package javare translates the regular expressions of the AWS API model,
// which are java.util.regex patterns, into Go (RE2) expressions that accept
// exactly the same strings.
//
// AWS checks a pattern constraint with Matcher.matches: the whole value must
// match, so Compile anchors the translation at both ends. Where the two
// dialects differ on the constructs the model uses, Translate rewrites them:
//
//   - \uXXXX (Java) becomes \x{XXXX};
//   - \s is Java's [ \t\n\x0B\f\r] (RE2's \s lacks \x0B);
//   - . outside a class is Java's "any character but a line terminator",
//     and Java's line terminators are \n, \r, U+0085, U+2028 and U+2029.
//
// \w, \d and their negations are ASCII in both dialects and pass through. A
// construct whose meaning differs or that RE2 lacks (backreferences,
// lookaround, possessive quantifiers, class unions and intersections, \b,
// \Q..\E, POSIX and java* property classes, inline flags) is refused with an
// error rather than translated approximately: the generator fails, and a
// person decides.
package javare

import (
	"fmt"
	"regexp"
	"strings"
)

// spaceSet is Java's \s as the members of a character class.
const spaceSet = `\t\n\x0B\f\r `

// notLineTerminator is Java's "." without DOTALL.
const notLineTerminator = `[^\n\r\x{85}\x{2028}\x{2029}]`

// Translate returns the RE2 form of the Java pattern p (unanchored; see
// Compile), or an error naming the construct it does not translate.
func Translate(p string) (string, error) {
	var b strings.Builder
	inClass := false
	classStart := false // the previous token opened a class ("[" or "[^")
	for i := 0; i < len(p); {
		c := p[i]
		opened := false
		switch {
		case c == '\\':
			if i+1 >= len(p) {
				return "", fmt.Errorf("pattern %q ends with a lone backslash", p)
			}
			n, err := escape(&b, p, i, inClass)
			if err != nil {
				return "", err
			}
			i += n
		case c == '[':
			if inClass {
				return "", fmt.Errorf("pattern %q: a class inside a class (Java union) is not translated", p)
			}
			inClass, opened = true, true
			b.WriteByte('[')
			i++
			if i < len(p) && p[i] == '^' {
				b.WriteByte('^')
				i++
			}
		case c == ']' && inClass:
			if classStart {
				return "", fmt.Errorf("pattern %q: ']' first in a class is not translated", p)
			}
			inClass = false
			b.WriteByte(']')
			i++
		case inClass && c == '&' && i+1 < len(p) && p[i+1] == '&':
			return "", fmt.Errorf("pattern %q: class intersection (&&) is not translated", p)
		case inClass:
			b.WriteByte(c)
			i++
		case c == '.':
			b.WriteString(notLineTerminator)
			i++
		case c == '(':
			if i+1 < len(p) && p[i+1] == '?' {
				if i+2 < len(p) && p[i+2] == ':' {
					b.WriteString("(?:")
					i += 3
					break
				}
				return "", fmt.Errorf("pattern %q: group construct (? other than (?: is not translated", p)
			}
			b.WriteByte('(')
			i++
		case c == '*' || c == '+' || c == '?' || c == '}':
			b.WriteByte(c)
			i++
			if i < len(p) && p[i] == '+' {
				return "", fmt.Errorf("pattern %q: possessive quantifier is not translated", p)
			}
		case c == '$':
			// Java's $ also matches before a final line terminator, but
			// under matches() nothing after it could consume that
			// terminator unless the pattern goes on, so only a $ that
			// ends an alternative or a group is translated.
			if i+1 < len(p) && p[i+1] != '|' && p[i+1] != ')' {
				return "", fmt.Errorf("pattern %q: '$' followed by more pattern is not translated", p)
			}
			b.WriteByte('$')
			i++
		default:
			b.WriteByte(c)
			i++
		}
		classStart = opened
	}
	if inClass {
		return "", fmt.Errorf("pattern %q: unterminated class", p)
	}
	return b.String(), nil
}

// escape writes the translation of the escape at p[i] ('\\') and returns
// how many bytes of p it used.
func escape(b *strings.Builder, p string, i int, inClass bool) (int, error) {
	e := p[i+1]
	switch {
	case e == 'u':
		if i+6 > len(p) || !isHex(p[i+2:i+6]) {
			return 0, fmt.Errorf("pattern %q: malformed \\u escape", p)
		}
		fmt.Fprintf(b, `\x{%s}`, p[i+2:i+6])
		return 6, nil
	case e == 's':
		if inClass {
			b.WriteString(spaceSet)
		} else {
			b.WriteString("[" + spaceSet + "]")
		}
		return 2, nil
	case e == 'S':
		if inClass {
			return 0, fmt.Errorf("pattern %q: \\S inside a class is not translated", p)
		}
		b.WriteString("[^" + spaceSet + "]")
		return 2, nil
	case strings.IndexByte("dDwWtnrf", e) >= 0:
		b.WriteString(p[i : i+2])
		return 2, nil
	case e == 'p' || e == 'P':
		// Only the Unicode general categories, which mean the same in
		// both dialects: \pL, \p{L}, \p{Lu}.
		if i+2 < len(p) && p[i+2] != '{' && strings.IndexByte("LMNPSZC", p[i+2]) >= 0 {
			b.WriteString(p[i : i+3])
			return 3, nil
		}
		end := strings.IndexByte(p[i:], '}')
		if i+2 < len(p) && p[i+2] == '{' && end > 0 {
			name := p[i+3 : i+end]
			if len(name) >= 1 && len(name) <= 2 && strings.IndexByte("LMNPSZC", name[0]) >= 0 &&
				(len(name) == 1 || name[1] >= 'a' && name[1] <= 'z') {
				b.WriteString(p[i : i+end+1])
				return end + 1, nil
			}
		}
		return 0, fmt.Errorf("pattern %q: property class other than a Unicode general category is not translated", p)
	case e < 0x80 && isPunct(e):
		b.WriteByte('\\')
		b.WriteByte(e)
		return 2, nil
	}
	return 0, fmt.Errorf("pattern %q: escape \\%c is not translated", p, e)
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func isPunct(c byte) bool {
	return c > ' ' && c < 0x7F && !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z')
}

// Compile translates p and compiles it anchored at both ends, so that
// MatchString reports what Java's Pattern.compile(p).matcher(s).matches()
// reports.
func Compile(p string) (*regexp.Regexp, error) {
	t, err := Translate(p)
	if err != nil {
		return nil, err
	}
	re, err := regexp.Compile(`^(?:` + t + `)$`)
	if err != nil {
		return nil, fmt.Errorf("pattern %q: translated to %q, which RE2 refuses: %w", p, t, err)
	}
	return re, nil
}
