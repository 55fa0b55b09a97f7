package cluster

import (
	"bytes"
	"testing"
	"time"

	"github.com/openhsm/openhsm/cluster/peerpb"
	"github.com/openhsm/openhsm/seal"
	"github.com/openhsm/openhsm/state"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func proofNode(t *testing.T, id string, dk []byte) *Node {
	s, err := seal.NewSealer(dk)
	require.NoError(t, err)
	return &Node{cfg: Config{ID: id, Machine: state.NewMachine(nil, s, nil)}}
}

// A proof passes once, for the request, kind and sender it was made for,
// within the window, under the same domain key.
func TestProof(t *testing.T) {
	dk := bytes.Repeat([]byte{7}, 32)
	sender, leader := proofNode(t, "node2", dk), proofNode(t, "node1", dk)
	cmd := []byte(`{"op":"logout"}`)
	fresh := func() *peerpb.PeerProof {
		p, err := sender.Prove(ProofForward, cmd)
		require.NoError(t, err)
		return p
	}
	other := proofNode(t, "node2", bytes.Repeat([]byte{8}, 32))
	foreign, err := other.Prove(ProofForward, cmd)
	require.NoError(t, err)
	stale := fresh()
	stale.UnixMs -= (ProofWindow + time.Second).Milliseconds()
	stale.Mac = proofMAC(sender.cfg.Machine.Sealer().PeerProofKey(), ProofForward, "node2", stale.UnixMs, stale.Nonce, cmd)

	cases := []struct {
		name   string
		proof  *peerpb.PeerProof
		sender string
		kind   string
		fields [][]byte
	}{
		{"none", nil, "node2", ProofForward, [][]byte{cmd}},
		{"another sender's certificate", fresh(), "node3", ProofForward, [][]byte{cmd}},
		{"another kind", fresh(), "node2", ProofMembership, [][]byte{cmd}},
		{"another command", fresh(), "node2", ProofForward, [][]byte{[]byte(`{"op":"create_user"}`)}},
		{"another domain key", foreign, "node2", ProofForward, [][]byte{cmd}},
		{"too old", stale, "node2", ProofForward, [][]byte{cmd}},
		{"short mac", &peerpb.PeerProof{Node: "node2", UnixMs: time.Now().UnixMilli(), Nonce: make([]byte, proofNonceLen), Mac: []byte{1}}, "node2", ProofForward, [][]byte{cmd}},
		{"no nonce", func() *peerpb.PeerProof { p := fresh(); p.Nonce = nil; return p }(), "node2", ProofForward, [][]byte{cmd}},
	}
	for _, tc := range cases {
		assert.ErrorIs(t, leader.CheckProof(tc.proof, tc.sender, tc.kind, tc.fields...), ErrBadProof, tc.name)
	}
	p := fresh()
	require.NoError(t, leader.CheckProof(p, "node2", ProofForward, cmd))
	assert.ErrorIs(t, leader.CheckProof(p, "node2", ProofForward, cmd), ErrBadProof, "replayed")
	// The same command proved again (as two identical failed logins in one
	// millisecond would be) is not a replay.
	require.NoError(t, leader.CheckProof(fresh(), "node2", ProofForward, cmd))
}

// The fields of a membership request are length-prefixed: moving bytes
// from one field to the next changes the proof.
func TestProofFieldsAreDelimited(t *testing.T) {
	key := bytes.Repeat([]byte{1}, 32)
	nonce := make([]byte, proofNonceLen)
	a := proofMAC(key, ProofMembership, "node1", 1, nonce, []byte("ab"), []byte("c"))
	b := proofMAC(key, ProofMembership, "node1", 1, nonce, []byte("a"), []byte("bc"))
	assert.NotEqual(t, a, b)
}
