package xksclient

import (
	"encoding/json"
	"testing"

	"github.com/openhsm/openhsm/kms/xks"
)

// FuzzAnswers: the checks of a 200 answer never panic, and an Encrypt
// answer they pass has the sizes the spec requires.
func FuzzAnswers(f *testing.F) {
	f.Add([]byte(`{"ciphertext":"AAAA","initializationVector":"AAAAAAAAAAAAAAAA","authenticationTag":"AAAAAAAAAAAAAAAAAAAAAA=="}`), 3)
	f.Add([]byte(`{"xksProxyFleetSize":1,"xksProxyVendor":"v","xksProxyModel":"m","ekmVendor":"e","ekmFleetDetails":[{"id":"1","model":"m","healthStatus":"ACTIVE"}]}`), 0)
	f.Add([]byte(`{"plaintext":"AAAA"}`), 3)
	f.Add([]byte(`{"keySpec":"AES_256","keyUsage":["ENCRYPT"],"keyStatus":"ENABLED"}`), 0)
	f.Fuzz(func(t *testing.T, body []byte, n int) {
		if n < 0 || n > 4300 {
			return
		}
		var e xks.EncryptResponse
		if json.Unmarshal(body, &e) == nil && checkEncrypt(&e, n) == nil {
			if len(e.Ciphertext) != n || len(e.AuthenticationTag) != 16 || (len(e.InitializationVector) != 12 && len(e.InitializationVector) != 16) || len(e.CiphertextMetadata) > 20 {
				t.Fatalf("accepted a bad encrypt answer")
			}
		}
		var h xks.HealthResponse
		if json.Unmarshal(body, &h) == nil && checkHealth(&h) == nil && (len(h.EKMFleetDetails) == 0 || len(h.EKMFleetDetails) > 10) {
			t.Fatalf("accepted a bad health answer")
		}
		var d xks.DecryptResponse
		if json.Unmarshal(body, &d) == nil && checkDecrypt(&d, n) == nil && len(d.Plaintext) != n {
			t.Fatalf("accepted a bad decrypt answer")
		}
		var m xks.MetadataResponse
		if json.Unmarshal(body, &m) == nil && checkMetadata(&m) == nil {
			_ = CheckKeyMetadata(&m)
		}
	})
}
