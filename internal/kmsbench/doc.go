// Package kmsbench measures the KMS API's throughput through SigV4 with
// the unchanged aws-sdk-go-v2 KMS client: Encrypt, Decrypt and
// GenerateDataKey requests per second at 1 and 16 client goroutines,
// against the API in the test's own process (internal/kmstest; not a
// node), a one-node and a three-node cluster (scripts/cluster.sh, through
// the endpoint it prints), and moto's server (`python3 -m moto.server`, a
// test double with no HSM behind it, over plain HTTP as it serves by
// default; target moto-tls adds it over HTTPS) as a reference point, all
// in one run on this machine. It prints a table (operation, goroutines, target,
// req/s, ratio to moto); it asserts nothing, and `make test` does not run
// it. The test is behind the bench build tag:
//
//	go test -tags bench -run TestKMSBench -v -timeout 30m ./internal/kmsbench \
//	    [-args -kmsbench.duration 3s -kmsbench.goroutines 1,16 \
//	           -kmsbench.targets moto,inprocess,node1,nodes3 -kmsbench.max 100000
//	           -kmsbench.ops Encrypt,Decrypt,GenerateDataKey -kmsbench.tsv FILE]
//
// Target env is an endpoint already running, named by the variables
// scripts/cluster.sh prints (AWS_ENDPOINT_URL_KMS, AWS_REGION,
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_CA_BUNDLE);
// p11module/suites/bench.sh uses it, with -kmsbench.tsv, for its KMS
// Encrypt row against one node's KMS port.
//
// Each cell runs for -kmsbench.duration after a short warm-up, or until
// -kmsbench.max requests, whichever comes first. Every answer is checked
// (Decrypt gives back the plaintext, data keys are 32 bytes); a failed
// request is counted and shown. Every process it starts (moto, the
// clusters' nodes and load balancer) is stopped by its PID when the test
// ends.
package kmsbench
