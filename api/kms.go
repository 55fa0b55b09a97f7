package api

import (
	"strings"
	"unicode/utf8"
)

// MaxPrincipalName is the longest KMS principal name: IAM's user name
// limit.
const MaxPrincipalName = 64

// principalNameChars are the characters of an IAM user name besides ASCII
// letters and digits.
const principalNameChars = "+=,.@_-"

// CheckPrincipalName checks a KMS principal's name against IAM's rule for
// user names: 1 to 64 characters, each an ASCII letter or digit or one of
// + = , . @ _ -. The error is CKR_ARGUMENTS_BAD naming field; the client
// checks before it sends, the daemon before the service sees the name.
func CheckPrincipalName(field, name string) error {
	if n := utf8.RuneCountInString(name); n == 0 || n > MaxPrincipalName {
		return BadField(field, "a KMS principal name has 1 to %d characters, not %d", MaxPrincipalName, n)
	}
	for i, r := range []rune(name) {
		if !principalNameRune(r) {
			return BadField(field, "a KMS principal name holds only ASCII letters, digits and %s; character %d, %q, is not one",
				principalNameChars, i+1, r)
		}
	}
	return nil
}

func principalNameRune(r rune) bool {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		return true
	}
	return strings.ContainsRune(principalNameChars, r)
}
