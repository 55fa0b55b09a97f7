package engine

import "github.com/openhsm/openhsm/seal"

// Sealer returns the unsealed domain key (for VerifyAudit and the nodes'
// batch proofs).
func (e *Engine) Sealer() (*seal.Sealer, error) { return e.sealer() }
