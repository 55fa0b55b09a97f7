// Package passwords is the password policy (length, characters), the
// argon2id hash in PHC string form, and the limiter that bounds how many
// hashes a process computes at once, so password guessing cannot exhaust a
// node's memory (docs/security-model.md).
package passwords
