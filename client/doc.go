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
// certificate, connects to every configured node, and sends calls to the
// first node, in configuration order, that answers within the timeout.
// When that node becomes unreachable the next call picks again; calls are
// not retried on another node, since they may already have taken effect.
//
// # Sessions
//
// Login stores the session token; every later call carries it in the
// "x-hsm-session" metadata entry. The client refreshes the token when half
// its life has passed (on the next call), and when the session has ended
// (the token expired, or the server says CKR_USER_NOT_LOGGED_IN and a
// refresh confirms the session is gone) it logs in again with the
// remembered credentials, once per call, and retries the call. The
// credentials are kept in memory only and never logged; if the server
// refuses them (say the password was reset) they are forgotten, and the
// application must call Login again. Logging in again starts a new login
// session, so the old session's objects (CKA_TOKEN false) are gone.
//
// # Errors
//
// Every error of a failed call is a *tokens.Error whose RV is the PKCS#11
// return value the server gave (see FromStatus); RV extracts it from any
// error.
//
// A Client is safe for concurrent use by many goroutines.
package client
