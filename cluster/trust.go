package cluster

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"github.com/openhsm/openhsm/cluster/peerpb"
)

// What a node certificate alone may do: the Peer service and Raft are
// open only to members' names (docs/cluster.md), and what a member sends
// the leader must carry a proof that only a node holding the domain key can
// make. A node certificate without the passphrase cannot make it.

// ProofWindow is how far a proof's time may be from the leader's clock.
// Within it, the leader also refuses a proof it has already seen, so a
// captured request cannot be sent twice to the same leader.
const ProofWindow = 10 * time.Second

// Kinds of proof, so that a proof for one request cannot pass as another's.
const (
	ProofForward    = "forward"
	ProofMembership = "membership"
)

// ErrBadProof is a request whose proof is missing, wrong, stale or replayed.
var ErrBadProof = errors.New("no valid proof that a node holding the domain key sent this")

// proofNonceLen is the length of a proof's random nonce.
const proofNonceLen = 16

// proofMAC is HMAC-SHA256 under the peer-proof key over the kind, the
// sender's name, the time, the nonce and the request's fields, each
// length-prefixed.
func proofMAC(key []byte, kind, node string, unixMs int64, nonce []byte, fields ...[]byte) []byte {
	h := hmac.New(sha256.New, key)
	w := func(b []byte) {
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(b))))
		h.Write(b)
	}
	w([]byte("openhsm peer proof v1"))
	w([]byte(kind))
	w([]byte(node))
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(unixMs)))
	w(nonce)
	for _, f := range fields {
		w(f)
	}
	return h.Sum(nil)
}

func (n *Node) proofKey() ([]byte, error) {
	s := n.cfg.Machine.Sealer()
	if s == nil {
		return nil, errors.New("the domain key is not unsealed")
	}
	return s.PeerProofKey(), nil
}

// Prove makes this node's proof over a request of the given kind.
func (n *Node) Prove(kind string, fields ...[]byte) (*peerpb.PeerProof, error) {
	key, err := n.proofKey()
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, proofNonceLen)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	now := time.Now().UnixMilli()
	return &peerpb.PeerProof{Node: n.cfg.ID, UnixMs: now, Nonce: nonce, Mac: proofMAC(key, kind, n.cfg.ID, now, nonce, fields...)}, nil
}

// CheckProof verifies a proof that sender (the name in the certificate
// the request came with) made over the request's fields.
func (n *Node) CheckProof(p *peerpb.PeerProof, sender, kind string, fields ...[]byte) error {
	if p == nil || p.Node != sender || len(p.Mac) != sha256.Size || len(p.Nonce) != proofNonceLen {
		return ErrBadProof
	}
	age := time.Since(time.UnixMilli(p.UnixMs))
	if age > ProofWindow || age < -ProofWindow {
		return ErrBadProof
	}
	key, err := n.proofKey()
	if err != nil {
		return err
	}
	if !hmac.Equal(p.Mac, proofMAC(key, kind, p.Node, p.UnixMs, p.Nonce, fields...)) {
		return ErrBadProof
	}
	if !n.seen.first(p.Mac, time.Now()) {
		return ErrBadProof
	}
	return nil
}

// seenProofs remembers the proofs accepted within the window.
type seenProofs struct {
	mu    sync.Mutex
	macs  map[[sha256.Size]byte]time.Time
	swept time.Time
}

// first records mac and says whether it is new.
func (s *seenProofs) first(mac []byte, now time.Time) bool {
	var k [sha256.Size]byte
	copy(k[:], mac)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.macs == nil {
		s.macs = map[[sha256.Size]byte]time.Time{}
	}
	if now.Sub(s.swept) > ProofWindow {
		for m, t := range s.macs {
			if now.Sub(t) > 2*ProofWindow {
				delete(s.macs, m)
			}
		}
		s.swept = now
	}
	if _, ok := s.macs[k]; ok {
		return false
	}
	s.macs[k] = now
	return true
}

// IsMember says whether name is in the latest Raft configuration (which,
// on the leader, already holds a node being added).
func (n *Node) IsMember(name string) bool {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == name {
			return true
		}
	}
	return false
}

// raftPeerAllowed decides who may open a Raft connection: the members of
// the latest configuration; and, while this node has none yet (it waits to
// be added), the members the node it joined from named (Config.JoinMembers),
// one of which will lead and add it. Any other node certificate could
// otherwise act as a leader to a waiting node and fill its store.
func (n *Node) raftPeerAllowed(name string) bool {
	if n.raft == nil {
		return false
	}
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	servers := f.Configuration().Servers
	if len(servers) == 0 {
		for _, m := range n.cfg.JoinMembers {
			if m == name {
				return true
			}
		}
		return false
	}
	for _, s := range servers {
		if string(s.ID) == name {
			return true
		}
	}
	return false
}
