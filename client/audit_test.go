package client

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestKMSResult(t *testing.T) {
	for _, tc := range []struct {
		name       string
		result     uint64
		detail     string
		res, wantD string
	}{
		{"succeeded", 0, `{"request_id":"r"}`, "ok", `{"request_id":"r"}`},
		{"refused, its exception", 1, `{"request_id":"r","error":"NotFoundException"}`, "NotFoundException",
			`{"request_id":"r","error":"NotFoundException"}`},
		{"refused, no exception named", 1, `{}`, "refused", `{}`},
		{"no detail", 0, "", "ok", ""},
		{"a detail that is not JSON is kept as a string", 1, `{"error":`, "refused", `"{\"error\":"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, d := kmsResult(tc.result, tc.detail)
			assert.Equal(t, tc.res, res)
			assert.Equal(t, tc.wantD, string(d))
			if d != nil {
				assert.True(t, json.Valid(d))
			}
		})
	}
}
