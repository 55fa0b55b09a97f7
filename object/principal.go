package object

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxKMSPrincipalName is the longest KMS principal name: IAM's user name
// limit.
const MaxKMSPrincipalName = 64

// kmsPrincipalNameChars are the characters of an IAM user name besides
// ASCII letters and digits.
const kmsPrincipalNameChars = "+=,.@_-"

// CheckKMSPrincipalName is IAM's rule for user names, which KMS principals
// follow: 1 to 64 characters, each an ASCII letter or digit or one of
// + = , . @ _ -. The client, the daemon's handlers and apply all use it.
func CheckKMSPrincipalName(name string) error {
	if n := utf8.RuneCountInString(name); n == 0 || n > MaxKMSPrincipalName {
		return fmt.Errorf("a KMS principal name has 1 to %d characters, not %d", MaxKMSPrincipalName, n)
	}
	for i, r := range []rune(name) {
		ok := 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune(kmsPrincipalNameChars, r)
		if !ok {
			return fmt.Errorf("a KMS principal name holds only ASCII letters, digits and %s; character %d, %q, is not one",
				kmsPrincipalNameChars, i+1, r)
		}
	}
	return nil
}
