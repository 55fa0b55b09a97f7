package api

import "github.com/openhsm/openhsm/object"

// MaxPrincipalName is the longest KMS principal name.
const MaxPrincipalName = object.MaxKMSPrincipalName

// CheckPrincipalName checks a KMS principal's name against IAM's rule for
// user names (object.CheckKMSPrincipalName). The error is
// CKR_ARGUMENTS_BAD naming field; the client checks before it sends, the
// daemon before the service sees the name.
func CheckPrincipalName(field, name string) error {
	if err := object.CheckKMSPrincipalName(name); err != nil {
		return BadField(field, "%v", err)
	}
	return nil
}
