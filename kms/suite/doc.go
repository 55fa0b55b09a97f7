// Package suite is the Go SDK suite of the KMS API (issue 10, "Done
// when"): every operation the service implements (kms.Operations), called
// through the unchanged aws-sdk-go-v2 KMS client, with its happy paths,
// each key-state rule and each error type the operation answers, and a
// table of invalid inputs generated from the AWS model (kms/model) that
// must each get AWS's exception and change nothing.
//
// The package has no code outside its tests. The suite is a list of
// functions over a target (an endpoint, its credentials and a way to move
// the key life-cycle clock), run twice: against internal/kmstest, the
// service in the test's own process (TestSuiteInProcess), and against a
// real 3-node cluster started by scripts/cluster.sh through
// internal/testcluster, reached through the endpoint the script prints
// (TestSuiteCluster). On the cluster the clock moves through the nodes'
// [kms] clock_file.
//
// A refusal is asserted as the SDK's typed error (types.NotFoundException
// and the rest) where the SDK has a type for it, else by its exception
// name (ValidationException, NotAuthorizedException); its message is
// asserted where AWS documents it or where the service's message is the
// contract. Tests that find a difference from AWS say so in their failure.
package suite
