// Package engine is the HSM as a caller sees it: login and sessions,
// users, objects and every crypto call. It checks the caller's role and
// relation to an object (object's access table), unseals key material
// (seal) and runs mechanisms (mech), and turns every change into a
// state.Command that it submits through an Applier (the cluster's log, or
// LocalApplier for one process). Everything non-deterministic, time,
// randomness and password hashing, happens here, before submission, so
// that state's apply function stays deterministic.
package engine
