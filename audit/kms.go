package audit

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
	Source      string   `json:"source,omitempty"`       // the client's address
	RequestID   string   `json:"request_id"`             // the x-amzn-RequestId answered
	Error       string   `json:"error,omitempty"`        // the exception answered; "" when it succeeded
}

// MaxKMSEvents bounds the events of one state.OpKMSAudit command.
const MaxKMSEvents = 5000
