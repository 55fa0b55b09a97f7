package hsmerr

import (
	"fmt"
	"strings"
)

// kmsReason maps a KMS exception name to the reason of its row.
var kmsReason = map[string]Reason{}

func init() {
	for _, r := range table {
		if strings.HasPrefix(string(r.Reason), "kms-") {
			kmsReason[r.KMS] = r.Reason
		}
	}
}

// KMSf makes the refusal of the KMS state machine that the KMS API answers
// with the exception (an AWS name such as "NotFoundException"). An
// exception without a "kms-" row is a programming error: it panics, so a
// test of the calling code finds it.
func KMSf(exception, format string, args ...any) *Error {
	reason, ok := kmsReason[exception]
	if !ok {
		panic("hsmerr: no kms- row for " + exception)
	}
	return &Error{RV: reasonRV[reason], Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// KMSException is the exception the KMS API answers an error with: the
// KMS column of its row (by RV and reason, then by RV alone), or "" when
// no row names one (the API then answers KMSInternalException).
func KMSException(err error) string {
	rv, reason := RV(err), ReasonOf(err)
	if r, ok := rows[rowKey{rv, reason}]; ok && r.KMS != "" {
		return r.KMS
	}
	if r, ok := rows[rowKey{rv, ""}]; ok {
		return r.KMS
	}
	return ""
}
