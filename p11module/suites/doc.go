// Package suites holds end-to-end suites for libopenhsm-pkcs11.so against a
// real cluster, through the C ABI (github.com/miekg/pkcs11 and a small C
// harness): TestStress (concurrent mixed work) and TestBadInput (what the
// library answers to wrong calls). Each suite runs once per transport, in
// process and through the fork helper (OPENHSM_P11_FORCE_HELPER=1), each in
// a child process of the test binary so that the variable is set before the
// first C_Initialize and a crash cannot take the test binary down.
//
// TestStress works for 30 s per transport, 3 s under -short; its operation
// counts are in the test log (go test -v -run TestStress ./p11module/suites).
// Both suites start a real one-node cluster (scripts/cluster.sh) and need gcc.
//
// TestChaos runs 16 threads (key generation and signing) through the
// library in process against a real 3-node cluster while a random node is
// killed with SIGKILL and restarted every 2 to 5 s for 60 s; no sign may
// fail, and every key made with CKR_OK must be on every node afterwards. Its
// counts go to the test log and to $OPENHSM_TEST_SUMMARY (make test prints
// it).
//
// bench.sh (not a test; -nodes N for a cluster) compares p11bench runs against this library and
// SoftHSMv2.
package suites
