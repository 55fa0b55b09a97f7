// Package client is the Go client of hsmd, the openhsm daemon. The PKCS#11
// library, the hsm command and other Go programs use it; see
// docs/rpc-api.md for the API it wraps.
//
// # Configuration
//
// A client is configured by a TOML file (see Config for its keys), loaded
// with LoadConfig, or with ConfigFromEnv from the file named by the
// environment variable HSM_CONFIG (default /etc/openhsm/client.toml).
//
// # Connections
//
// Dial sets up mutual TLS 1.3 with the cluster CA and the client's
// certificate, connects to every configured node, starts a health checker
// (Info on every node every health_interval, default 2s) and returns once a
// node answers. Calls are spread over the healthy nodes (the one with the
// fewest calls in flight, round robin among equals; a call that makes token
// objects goes to the Raft leader the health checks name). A call whose node
// fails without answering goes on to another node, each node at most once
// within the call's deadline, when that is safe: the node refused it before
// running it (trailer "x-hsm-retry: other-node"), or it never left the
// client, or its method only reads (Sign, Decrypt, FindObjects, ...;
// api.RetryIdempotent in the method table, api/methods.go). A write
// carries a request ID (x-hsm-request-id, the same on every try of the
// call; api.RetryWithID), which the cluster
// applies at most once per user, so a write whose outcome is unknown is
// retried too, until it has an answer or the call's deadline passes; a
// write without one that may have run fails with CKR_DEVICE_ERROR. Session tokens are valid on every node, so the
// session goes on after a failover.
//
// Every answer carries the node's applied raft index ("x-hsm-index"); the
// client sends the highest it has seen ("x-hsm-min-index") so that it reads
// its own writes on any node. The open Clients of one cluster in a process
// share that index. docs/client.md describes all of this.
//
// # Sessions
//
// Login stores the session token; every later call carries it in the
// "x-hsm-session" metadata entry. The client refreshes the token when half
// its life has passed (on the next call), and when the session has ended
// (the token expired, or the server says CKR_USER_NOT_LOGGED_IN with
// hsmerr.ReasonNoSession and a refresh confirms the session is gone) it logs in again with the
// remembered credentials, once per call, and retries the call. The
// credentials are kept in memory only and never logged; if the server
// refuses them (say the password was reset) they are forgotten, and the
// application must call Login again. Logging in again starts a new login
// session, so the old session's objects (CKA_TOKEN false) are gone.
//
// # Errors
//
// Every error of a failed call is a *hsmerr.Error whose RV is the PKCS#11
// return value the server gave (api.FromStatus reads it, through the error
// table in hsmerr/table.go); RV extracts it from any error, and errors.Is
// tells the cases a CKR alone does not (hsmerr.ErrUserExists,
// hsmerr.ErrNoSession). Requests are built with api's conversions, which
// refuse locally, with the daemon's CKR and field name, what the daemon
// would refuse for its form.
//
// A Client is safe for concurrent use by many goroutines.
package client
