package object

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

func TestDigestible(t *testing.T) {
	rows := []struct {
		name                   string
		class                  uint64
		sensitive, extractable bool
		want                   uint64
	}{
		{"secret, readable and extractable", ck.CKO_SECRET_KEY, false, true, ck.CKR_OK},
		{"secret, readable", ck.CKO_SECRET_KEY, false, false, ck.CKR_OK},
		{"secret, sensitive but extractable", ck.CKO_SECRET_KEY, true, true, ck.CKR_OK},
		{"secret, sensitive and not extractable (the default)", ck.CKO_SECRET_KEY, true, false, ck.CKR_KEY_INDIGESTIBLE},
		{"private key", ck.CKO_PRIVATE_KEY, false, true, ck.CKR_KEY_INDIGESTIBLE},
		{"public key", ck.CKO_PUBLIC_KEY, false, false, ck.CKR_KEY_INDIGESTIBLE},
		{"data object", ck.CKO_DATA, false, false, ck.CKR_KEY_INDIGESTIBLE},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			a := Attrs{}
			a.SetUlong(ck.CKA_CLASS, r.class)
			a.SetBool(ck.CKA_SENSITIVE, r.sensitive)
			a.SetBool(ck.CKA_EXTRACTABLE, r.extractable)
			err := Digestible(a)
			if r.want == ck.CKR_OK {
				assert.NoError(t, err)
				return
			}
			assert.Equal(t, r.want, hsmerr.RV(err))
		})
	}
}
