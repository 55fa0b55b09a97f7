// Package hsmerr is the one error type of openhsm. An *Error carries the
// PKCS#11 return value (CKR_*) a caller of the library will see and a
// message that is safe to log and to send to a client: it never holds key
// bytes, passwords or session tokens. Every layer returns it, and each
// boundary (gRPC status, the PKCS#11 C ABI) maps it through the one table
// in table.go, so the same failure reads the same everywhere.
package hsmerr
