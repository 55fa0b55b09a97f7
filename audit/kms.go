package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// KindKMS is a record of one KMS API request, allowed or refused.
const KindKMS = "kms"

// KMSEvent is one KMS API request as a node submits it for the trail
// (state.OpKMSAudit). It holds no secret: encryption context keys are
// kept, their values never; no plaintext, ciphertext or access key secret.
type KMSEvent struct {
	Time        int64    `json:"time"`                   // Unix seconds, when the request arrived
	Principal   string   `json:"principal"`              // the principal's ARN; the access key ID when SigV4 failed
	Op          string   `json:"op"`                     // the operation (X-Amz-Target's suffix), or "" when unknown
	Key         string   `json:"key,omitempty"`          // the key ARN the request resolved to
	ContextKeys []string `json:"context_keys,omitempty"` // the encryption context's keys, sorted
	// ContextKeysOmitted counts context keys SanitizeKMSEvent left out
	// (past MaxKMSContextKeys, or equal to another once cut to length).
	ContextKeysOmitted uint32 `json:"context_keys_omitted,omitempty"`
	Source             string `json:"source,omitempty"` // the client's address
	RequestID          string `json:"request_id"`       // the x-amzn-RequestId answered
	Error              string `json:"error,omitempty"`  // the exception answered; "" when it succeeded
}

// MaxKMSEvents bounds the events of one state.OpKMSAudit command.
const MaxKMSEvents = 5000

// The bounds of a KMSEvent's fields, lengths in bytes. Check refuses an
// event past them; SanitizeKMSEvent fits any event into them.
const (
	MaxKMSPrincipal   = 2048 // an ARN (AWS's ArnType), or whatever access key ID a failed request named
	MaxKMSKey         = 2048 // a key ARN
	MaxKMSOp          = 64   // an operation name
	MaxKMSContextKeys = 64   // context keys kept per event
	MaxKMSContextKey  = 256  // one context key
	MaxKMSSource      = 128  // host:port, an IPv6 one included
	MaxKMSRequestID   = 128
	MaxKMSError       = 64 // an exception name
	// MinKMSTime and MaxKMSTime bound an event's time: from 2000-01-01
	// to the end of year 9999 (UTC).
	MinKMSTime = 946684800
	MaxKMSTime = 253402300799
)

// Check reports the first field of e outside its bounds: a time out of
// range, a text field too long, not UTF-8 or holding a control character,
// an op or error that is not a name (letters and digits, a letter first),
// context keys not sorted or not unique or too many. Whether the op is an
// operation of the KMS API is the caller's to check (state does, against
// the API model).
func (e *KMSEvent) Check() error {
	if e.Time < MinKMSTime || e.Time > MaxKMSTime {
		return fmt.Errorf("time %d out of range", e.Time)
	}
	for _, f := range []struct {
		name string
		v    string
		max  int
	}{{"principal", e.Principal, MaxKMSPrincipal}, {"key", e.Key, MaxKMSKey}, {"source", e.Source, MaxKMSSource},
		{"request_id", e.RequestID, MaxKMSRequestID}} {
		if !isText(f.v, f.max) {
			return fmt.Errorf("%s is not text of at most %d bytes", f.name, f.max)
		}
	}
	if e.Op != "" && !isName(e.Op, MaxKMSOp) {
		return fmt.Errorf("op is not a name of at most %d characters", MaxKMSOp)
	}
	if e.Error != "" && !isName(e.Error, MaxKMSError) {
		return fmt.Errorf("error is not a name of at most %d characters", MaxKMSError)
	}
	if len(e.ContextKeys) > MaxKMSContextKeys {
		return fmt.Errorf("more than %d context keys", MaxKMSContextKeys)
	}
	for i, k := range e.ContextKeys {
		if !isText(k, MaxKMSContextKey) {
			return fmt.Errorf("context key %d is not text of at most %d bytes", i, MaxKMSContextKey)
		}
		if i > 0 && e.ContextKeys[i-1] >= k {
			return fmt.Errorf("context keys are not sorted and unique")
		}
	}
	return nil
}

// isText: valid UTF-8 of at most max bytes, no control character.
func isText(s string, max int) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	return strings.IndexFunc(s, unicode.IsControl) < 0
}

// isName: ASCII letters and digits, a letter first.
func isName(s string, max int) bool {
	if s == "" || len(s) > max || !isLetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isLetter(s[i]) && (s[i] < '0' || s[i] > '9') {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }

// cutMark ends a text field that was cut to its bound.
const cutMark = "…"

// fitText makes s text of at most max bytes: invalid UTF-8 and control
// characters become U+FFFD; a longer string is cut at a character
// boundary and ends in "…".
func fitText(s string, max int) string {
	if isText(s, max) {
		return s
	}
	var b strings.Builder
	for _, r := range s { // an invalid byte comes as utf8.RuneError
		if unicode.IsControl(r) {
			r = utf8.RuneError
		}
		b.WriteRune(r)
	}
	t := b.String()
	if len(t) <= max {
		return t
	}
	cut := max - len(cutMark)
	for cut > 0 && !utf8.RuneStart(t[cut]) {
		cut--
	}
	return t[:cut] + cutMark
}

// fitName keeps the letters and digits of s, up to max, a letter first;
// what is left of a string that has none is "Unknown".
func fitName(s string, max int) string {
	if isName(s, max) {
		return s
	}
	b := make([]byte, 0, min(len(s), max))
	for i := 0; i < len(s) && len(b) < max; i++ {
		if isLetter(s[i]) || len(b) > 0 && s[i] >= '0' && s[i] <= '9' {
			b = append(b, s[i])
		}
	}
	if len(b) == 0 {
		return "Unknown"
	}
	return string(b)
}

// SanitizeKMSEvent fits e into the bounds Check enforces, so that a node
// never submits an event apply refuses (which would lose the whole batch):
// the time is clamped, text fields are fitted (fitText), a malformed op or
// error keeps only its letters and digits, context keys are fitted,
// sorted, made unique and cut to MaxKMSContextKeys, the ones left out
// counted in ContextKeysOmitted. An event within the bounds is returned
// unchanged (its ContextKeys slice is not shared).
func SanitizeKMSEvent(e KMSEvent) KMSEvent {
	e.Time = min(max(e.Time, MinKMSTime), MaxKMSTime)
	e.Principal = fitText(e.Principal, MaxKMSPrincipal)
	e.Key = fitText(e.Key, MaxKMSKey)
	e.Source = fitText(e.Source, MaxKMSSource)
	e.RequestID = fitText(e.RequestID, MaxKMSRequestID)
	if e.Op != "" {
		e.Op = fitName(e.Op, MaxKMSOp)
	}
	if e.Error != "" {
		e.Error = fitName(e.Error, MaxKMSError)
	}
	if e.ContextKeys != nil {
		keys := make([]string, len(e.ContextKeys))
		for i, k := range e.ContextKeys {
			keys[i] = fitText(k, MaxKMSContextKey)
		}
		slices.Sort(keys)
		keys = slices.Compact(keys)
		omitted := uint64(e.ContextKeysOmitted) + uint64(len(e.ContextKeys)-len(keys))
		if len(keys) > MaxKMSContextKeys {
			omitted += uint64(len(keys) - MaxKMSContextKeys)
			keys = keys[:MaxKMSContextKeys]
		}
		e.ContextKeys = slices.Clip(keys)
		e.ContextKeysOmitted = uint32(min(omitted, 1<<32-1))
	}
	return e
}

// KMSDetail is the Detail of a KindKMS record: what a KMS request had
// beyond the record's own fields. Its JSON is canonical: these members in
// this order, empty ones left out, no white space, no HTML escaping.
type KMSDetail struct {
	ContextKeys        []string `json:"context_keys,omitempty"`         // the encryption context's keys (never its values), sorted
	ContextKeysOmitted uint32   `json:"context_keys_omitted,omitempty"` // keys the node left out (over the bounds)
	Source             string   `json:"source,omitempty"`               // the client's address
	RequestID          string   `json:"request_id,omitempty"`           // the x-amzn-RequestId answered
	Error              string   `json:"error,omitempty"`                // the exception answered; absent when it succeeded
}

// Detail is the canonical JSON of e's KMSDetail.
func (e *KMSEvent) Detail() string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(KMSDetail{ContextKeys: e.ContextKeys, ContextKeysOmitted: e.ContextKeysOmitted,
		Source: e.Source, RequestID: e.RequestID, Error: e.Error}); err != nil {
		panic(err) // strings and a number always encode
	}
	return strings.TrimSuffix(b.String(), "\n")
}
