// Package layering has no code. Its test keeps the packages' dependencies
// pointing down, as docs/packages.md describes them: the PKCS#11 library,
// its helper and the Go client link no engine, state machine, store or
// sealing code; nothing outside hsmd imports a package under hsmd/ (tests
// included); and each domain package imports only packages below it in the
// documented order.
package layering
