package suite

import (
	"testing"
)

// suiteCase is one part of the suite; each makes its own keys.
type suiteCase struct {
	name string
	run  func(t *testing.T, tg *target)
}

// suite is the Go SDK suite, in the order it runs. The table of invalid
// inputs runs first, before any part moves the life-cycle clock; the parts
// that move it come last.
var suite = []suiteCase{
	{"InvalidInputs", testInvalidInputs},
	{"CreateKeySpecs", testCreateKeySpecs},
	{"DescribeKey", testDescribeKey},
	{"ListKeys", testListKeys},
	{"EnableDisable", testEnableDisable},
	{"UpdateKeyDescription", testUpdateKeyDescription},
	{"KeyPolicies", testKeyPolicies},
	{"Aliases", testAliases},
	{"Tags", testTags},
	{"EncryptDecrypt", testEncryptDecrypt},
	{"ReEncrypt", testReEncrypt},
	{"DataKeys", testDataKeys},
	{"DataKeyPairs", testDataKeyPairs},
	{"GenerateRandom", testGenerateRandom},
	{"SignVerify", testSignVerify},
	{"MLDSA", testMLDSA},
	{"RSAEncryption", testRSAEncryption},
	{"Mac", testMac},
	{"DryRun", testDryRun},
	{"Rotation", testRotation},
	{"StateRules", testStateRules},
	{"ScheduleKeyDeletion", testScheduleKeyDeletion},
	{"Import", testImport},
	{"ImportExpiry", testImportExpiry},
	{"DeletionWindowEnds", testDeletionWindowEnds},
	{"ScheduledRotation", testScheduledRotation},
}

func runSuite(t *testing.T, tg *target) {
	for _, c := range suite {
		t.Run(c.name, func(t *testing.T) { c.run(t, tg) })
	}
}

// TestSuiteInProcess runs the suite against internal/kmstest: the real
// engine, store, handler, SigV4 and TLS in the test's process.
func TestSuiteInProcess(t *testing.T) {
	runSuite(t, inProcessTarget(t))
}

// TestSuiteCluster runs the suite against a real 3-node cluster, through
// the endpoint scripts/cluster.sh prints.
func TestSuiteCluster(t *testing.T) {
	runSuite(t, clusterTarget(t))
}
