package api

// The gRPC metadata of the HSM API (docs/rpc-api.md, docs/client.md).
const (
	// HeaderSession is the request header that carries the session token
	// from Login, on every method whose Access is Session.
	HeaderSession = "x-hsm-session"
	// HeaderRequestID is the request header that carries a write's request
	// ID: 128 random bits as 32 lowercase hex digits, the same
	// on every try of the call. The cluster applies a write with a given ID
	// at most once per user and answers a repeat with the first try's
	// outcome. Only the methods whose Retry is RetryWithID use it.
	HeaderRequestID = "x-hsm-request-id"
	// HeaderIndex is the response header in which a node gives the Raft
	// index it had applied when it answered (decimal).
	HeaderIndex = "x-hsm-index"
	// HeaderMinIndex is the request header in which a client gives the
	// highest index it has seen; a node that has not applied it waits
	// briefly, then refuses with TrailerRetry.
	HeaderMinIndex = "x-hsm-min-index"
	// TrailerRetry is the trailer with which a node refuses a call it did
	// not execute; its value is RetryOtherNode.
	TrailerRetry = "x-hsm-retry"
	// RetryOtherNode is TrailerRetry's value: "not executed here: try
	// another node" (with status Unavailable).
	RetryOtherNode = "other-node"
)
