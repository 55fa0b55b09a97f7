// Package security is the attack suite. Its tests play, against real hsmd
// daemons on loopback (started through scripts/cluster.sh by
// internal/testcluster), what an attacker holding exactly one credential
// would try: a client certificate, a node certificate and key, a crypto
// officer's or crypto user's password, a backup file, a KMS access key
// (reaching the nodes' KMS API through the unchanged aws-sdk-go-v2 KMS
// client). Each test names the row of the threat model in
// docs/security-model.md it proves, and asserts that the attack is refused
// and changed nothing.
//
// The package has no code of its own outside tests (testdata/p11login is
// the PKCS#11 attacker's program, built by the test that runs it).
package security
