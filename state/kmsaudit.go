package state

import (
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/seal"
)

// OpKMSAudit records a node's batch of KMS API requests in the trail:
// Node, Batch, KMSEvents, Proof.
const OpKMSAudit Op = "kms_audit"

func applyKMSAudit(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	return nil, hsmerr.Errorf(ck.CKR_FUNCTION_NOT_SUPPORTED, "kms_audit is not built yet")
}
