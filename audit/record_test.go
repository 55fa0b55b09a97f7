package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testMAC(r *Record) []byte {
	h := hmac.New(sha256.New, []byte("openhsm audit test key"))
	h.Write(r.Body())
	return h.Sum(nil)
}

// TestOldRecordsUnchanged: records of the kinds that existed before Detail
// encode, and so MAC, byte for byte as they did (the hex was made by the
// encoder before Detail was added), even when a Detail was set on them.
func TestOldRecordsUnchanged(t *testing.T) {
	for _, tc := range []struct {
		name      string
		rec       Record
		wire, mac string
	}{
		{"command", Record{Seq: 7, Prev: []byte{1, 2, 3}, Index: 42, Time: 1_800_000_000, Kind: KindCommand, Op: "create_user",
			User: "admin", Cert: "ab12", Node: "n1", Subject: "alice", Count: 1},
			"6f70656e68736d206175646974207631000000000000000700000003010203000000000000002a000000006b49d20000000007636f6d6d616e640000000b6372656174655f757365720000000561646d696e0000000461623132000000026e31000000000000000000000005616c6963650000000000000000000000000000000100000020781e138fb9f5b24385e01b0b1f49131da2ee7265e2c0681a2d0771b63a2012df",
			"781e138fb9f5b24385e01b0b1f49131da2ee7265e2c0681a2d0771b63a2012df"},
		{"use", Record{Seq: 8, Prev: []byte{4}, Index: 43, Time: 1_800_000_001, Kind: KindUse, Op: UseSign, User: "cu1",
			Node: "n2", Object: 9, Result: 0x68, Count: 1000},
			"6f70656e68736d20617564697420763100000000000000080000000104000000000000002b000000006b49d20100000003757365000000047369676e0000000363753100000000000000026e32000000000000000900000000000000000000006800000000000003e800000020efd6a4d2c65b6952918f81b74a8af22ff6a2756b4354ac5a1f65d986d9663d86",
			"efd6a4d2c65b6952918f81b74a8af22ff6a2756b4354ac5a1f65d986d9663d86"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, detail := range []string{"", `{"source":"x"}`} {
				r := tc.rec
				r.Detail = detail
				r.MAC = testMAC(&r)
				assert.Equal(t, tc.mac, hex.EncodeToString(r.MAC), "MAC with detail %q", detail)
				assert.Equal(t, tc.wire, hex.EncodeToString(Marshal(&r)), "encoding with detail %q", detail)
				back, err := Unmarshal(Marshal(&r))
				require.NoError(t, err)
				assert.Empty(t, back.Detail)
			}
		})
	}
}

// TestKMSRecordCarriesDetail: a KMS record's Detail is in its body (so
// under its MAC) and survives Marshal/Unmarshal; flipping any byte of its
// encoding fails the MAC or the parse.
func TestKMSRecordCarriesDetail(t *testing.T) {
	e := KMSEvent{Time: 1_800_000_000, Principal: "arn:aws:iam::123456789012:user/alice", Op: "Encrypt",
		Key:         "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		ContextKeys: []string{"Department", "purpose"}, Source: "127.0.0.1:5555", RequestID: "req-1"}
	r := Record{Seq: 3, Prev: make([]byte, 32), Index: 9, Time: e.Time, Kind: KindKMS, Op: e.Op, User: e.Principal,
		Node: "n1", Subject: e.Key, Count: 1, Detail: e.Detail()}
	r.MAC = testMAC(&r)
	back, err := Unmarshal(Marshal(&r))
	require.NoError(t, err)
	assert.Equal(t, r, *back)

	noDetail := r
	noDetail.Detail = ""
	assert.NotEqual(t, r.MAC, testMAC(&noDetail), "the detail is under the MAC")
	edited := r
	edited.Detail = strings.Replace(r.Detail, "purpose", "purposE", 1)
	assert.NotEqual(t, r.MAC, testMAC(&edited))

	wire := Marshal(&r)
	for i := range wire {
		b := append([]byte(nil), wire...)
		b[i] ^= 0x01
		got, err := Unmarshal(b)
		if err != nil {
			continue
		}
		assert.NotEqual(t, got.MAC, testMAC(got), "byte %d flipped still checks", i)
	}
	// Cut short or with bytes after it, it does not parse.
	for _, b := range [][]byte{wire[:len(wire)-1], append(append([]byte(nil), wire...), 0)} {
		_, err := Unmarshal(b)
		assert.Error(t, err)
	}
}

func TestKMSDetailIsCanonical(t *testing.T) {
	for _, tc := range []struct {
		name string
		e    KMSEvent
		want string
	}{
		{"success", KMSEvent{ContextKeys: []string{"a", "b<&>"}, Source: "10.0.0.1:443", RequestID: "r1"},
			`{"context_keys":["a","b<&>"],"source":"10.0.0.1:443","request_id":"r1"}`},
		{"refused, nothing else", KMSEvent{Error: "NotFoundException"}, `{"error":"NotFoundException"}`},
		{"empty", KMSEvent{}, `{}`},
		{"omitted keys", KMSEvent{ContextKeys: []string{"k"}, ContextKeysOmitted: 3, RequestID: "r"},
			`{"context_keys":["k"],"context_keys_omitted":3,"request_id":"r"}`},
		{"quotes and unicode", KMSEvent{Source: "é\"\\"}, `{"source":"é\"\\"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.e.Detail()
			assert.Equal(t, tc.want, got)
			assert.True(t, json.Valid([]byte(got)))
			// The principal, key, op and time are the record's own fields,
			// not the detail's.
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(got), &m))
			for _, k := range []string{"principal", "key", "op", "time"} {
				assert.NotContains(t, m, k)
			}
		})
	}
}

func validEvent() KMSEvent {
	return KMSEvent{Time: 1_800_000_000, Principal: "arn:aws:iam::123456789012:user/alice", Op: "Decrypt",
		Key: "arn:aws:kms:us-east-1:123456789012:key/k1", ContextKeys: []string{"a", "b"}, Source: "[::1]:4000",
		RequestID: "0b1c", Error: "IncorrectKeyException"}
}

func TestKMSEventCheck(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	for _, tc := range []struct {
		name string
		edit func(e *KMSEvent)
		want string // "" accepted
	}{
		{"valid", func(e *KMSEvent) {}, ""},
		{"success, no key, no op", func(e *KMSEvent) { e.Error, e.Key, e.Op = "", "", "" }, ""},
		{"bounds exactly", func(e *KMSEvent) {
			e.Principal, e.Key, e.Source, e.RequestID = long(MaxKMSPrincipal), long(MaxKMSKey), long(MaxKMSSource), long(MaxKMSRequestID)
			e.Op, e.Error = "A"+long(MaxKMSOp-1), "E"+long(MaxKMSError-1)
			e.ContextKeys = nil
			for i := range MaxKMSContextKeys {
				e.ContextKeys = append(e.ContextKeys, fmt.Sprintf("%02d", i)+long(MaxKMSContextKey-2))
			}
			e.Time = MaxKMSTime
		}, ""},
		{"earliest time", func(e *KMSEvent) { e.Time = MinKMSTime }, ""},
		{"time zero", func(e *KMSEvent) { e.Time = 0 }, "time"},
		{"time negative", func(e *KMSEvent) { e.Time = -1 }, "time"},
		{"time past year 9999", func(e *KMSEvent) { e.Time = MaxKMSTime + 1 }, "time"},
		{"principal too long", func(e *KMSEvent) { e.Principal = long(MaxKMSPrincipal + 1) }, "principal"},
		{"principal not UTF-8", func(e *KMSEvent) { e.Principal = "a\xffb" }, "principal"},
		{"principal with a newline", func(e *KMSEvent) { e.Principal = "a\nb" }, "principal"},
		{"key too long", func(e *KMSEvent) { e.Key = long(MaxKMSKey + 1) }, "key"},
		{"key with NUL", func(e *KMSEvent) { e.Key = "k\x00" }, "key"},
		{"source too long", func(e *KMSEvent) { e.Source = long(MaxKMSSource + 1) }, "source"},
		{"request ID too long", func(e *KMSEvent) { e.RequestID = long(MaxKMSRequestID + 1) }, "request_id"},
		{"request ID with DEL", func(e *KMSEvent) { e.RequestID = "r\x7f" }, "request_id"},
		{"op too long", func(e *KMSEvent) { e.Op = "A" + long(MaxKMSOp) }, "op"},
		{"op with a dot", func(e *KMSEvent) { e.Op = "TrentService.Encrypt" }, "op"},
		{"op starting with a digit", func(e *KMSEvent) { e.Op = "1Encrypt" }, "op"},
		{"error with a space", func(e *KMSEvent) { e.Error = "Not Found" }, "error"},
		{"error too long", func(e *KMSEvent) { e.Error = "E" + long(MaxKMSError) }, "error"},
		{"too many context keys", func(e *KMSEvent) {
			e.ContextKeys = nil
			for i := range MaxKMSContextKeys + 1 {
				e.ContextKeys = append(e.ContextKeys, string(rune(0x100+i)))
			}
		}, "context keys"},
		{"context key too long", func(e *KMSEvent) { e.ContextKeys = []string{long(MaxKMSContextKey + 1)} }, "context key 0"},
		{"context key with a tab", func(e *KMSEvent) { e.ContextKeys = []string{"a\tb"} }, "context key 0"},
		{"context keys unsorted", func(e *KMSEvent) { e.ContextKeys = []string{"b", "a"} }, "sorted"},
		{"context keys repeated", func(e *KMSEvent) { e.ContextKeys = []string{"a", "a"} }, "sorted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := validEvent()
			tc.edit(&e)
			err := e.Check()
			if tc.want == "" {
				assert.NoError(t, err)
			} else {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.want)
			}
			// Whatever it was, the sanitized event passes.
			s := SanitizeKMSEvent(e)
			assert.NoError(t, s.Check())
			if tc.want == "" {
				assert.Equal(t, e, s, "a valid event is kept as it is")
			}
		})
	}
}

func TestSanitizeKMSEvent(t *testing.T) {
	keys := []string{"b", "a", "b"}
	for i := range MaxKMSContextKeys + 5 {
		keys = append(keys, string(rune('0'+i%10))+strings.Repeat("k", MaxKMSContextKey)+"tail")
	}
	e := KMSEvent{Time: 5, Principal: "AKIA\x00" + strings.Repeat("é", MaxKMSPrincipal), Op: "Trent.Encrypt!",
		Error: "??", ContextKeys: keys, RequestID: "r\xff"}
	s := SanitizeKMSEvent(e)
	require.NoError(t, s.Check())
	assert.Equal(t, int64(MinKMSTime), s.Time)
	assert.True(t, strings.HasPrefix(s.Principal, "AKIA\uFFFDéé"))
	assert.True(t, strings.HasSuffix(s.Principal, "…"))
	assert.LessOrEqual(t, len(s.Principal), MaxKMSPrincipal)
	assert.Equal(t, "TrentEncrypt", s.Op)
	assert.Equal(t, "Unknown", s.Error)
	assert.Equal(t, "r\uFFFD", s.RequestID)
	// a, b, and the long keys cut to ten distinct ones: 12 kept, the rest
	// (one repeated b, the long keys that became equal) counted.
	assert.Len(t, s.ContextKeys, 12)
	assert.Equal(t, uint32(len(keys)-12), s.ContextKeysOmitted)
	assert.Equal(t, []string{"b", "a", "b"}, keys[:3], "the caller's slice is not reordered")
	assert.Equal(t, int64(MaxKMSTime), SanitizeKMSEvent(KMSEvent{Time: 1 << 62}).Time)
}
