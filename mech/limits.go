package mech

import (
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
)

// Limits on what one request may hold.
const (
	MaxDataLen   = 16 << 20 // bytes of data to sign, encrypt, digest...
	MaxRandomLen = 1 << 20  // bytes of one GenerateRandom
)

func CheckData(name string, b []byte) error {
	if len(b) > MaxDataLen {
		return hsmerr.Errorf(ck.CKR_DATA_LEN_RANGE, "%s is longer than %d bytes", name, MaxDataLen)
	}
	return nil
}

// Digest hashes data; it needs no key.
func Digest(m Mech, data []byte) ([]byte, error) {
	row, ok := LookupMechanism(m.Type)
	if !ok || row.Digest == nil {
		return nil, hsmerr.Errorf(ck.CKR_MECHANISM_INVALID, "%s is not a digest", ck.MechName(m.Type))
	}
	if err := CheckParam(row, m); err != nil {
		return nil, err
	}
	if err := CheckData("data", data); err != nil {
		return nil, err
	}
	return row.Digest(m, data)
}
