package state

// Quorum authentication (M of N), after AWS CloudHSM's token-sign quorum:
// a crypto officer alone can reset any crypto user's password and then log
// in as that user, so the operations that let one officer become someone
// else, or change who runs the cluster, can be made to need the signed
// approval of M officers. docs/quorum.md describes the model, the token
// format and what a single officer can still do.
//
// Everything lives in one meta row (MetaQuorum), MACed under the domain
// key like a user row, so an edited store file is refused rather than
// trusted. Only apply writes it; signatures are verified in apply, which is
// deterministic (ECDSA and Ed25519 verification use no randomness).

import (
	"crypto/hmac"
	"encoding/json"
	"errors"
	"sort"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/quorum"
	"github.com/openhsm/openhsm/seal"
)

// quorumRow is the stored form: the state and its MAC.
type quorumRow struct {
	State json.RawMessage `json:"state"`
	MAC   []byte          `json:"mac"`
}

// LoadQuorum reads and checks the quorum state; none yet is the empty state.
func LoadQuorum(get func(string) ([]byte, error), s *seal.Sealer) (*quorum.State, error) {
	q := &quorum.State{}
	b, err := get(quorum.MetaQuorum)
	if errors.Is(err, ErrNotFound) {
		return q, nil
	}
	if err != nil {
		return nil, err
	}
	var row quorumRow
	if err := json.Unmarshal(b, &row); err != nil {
		return nil, hsmerr.Errorf(ck.CKR_GENERAL_ERROR, "the quorum state is malformed")
	}
	if !hmac.Equal(row.MAC, s.QuorumMAC(row.State)) {
		return nil, hsmerr.Errorf(ck.CKR_GENERAL_ERROR, "the quorum state failed its integrity check")
	}
	if err := json.Unmarshal(row.State, q); err != nil {
		return nil, hsmerr.Errorf(ck.CKR_GENERAL_ERROR, "the quorum state is malformed")
	}
	return q, nil
}

func saveQuorum(tx Tx, s *seal.Sealer, q *quorum.State) error {
	sort.Slice(q.Keys, func(i, j int) bool { return q.Keys[i].Officer < q.Keys[j].Officer })
	sort.Slice(q.Tokens, func(i, j int) bool { return q.Tokens[i].ID < q.Tokens[j].ID })
	state, err := json.Marshal(q) // maps marshal in key order: deterministic
	if err != nil {
		return err
	}
	b, err := json.Marshal(quorumRow{State: state, MAC: s.QuorumMAC(state)})
	if err != nil {
		return err
	}
	return tx.PutMeta(quorum.MetaQuorum, b)
}

// officerFor reads the actor and requires a crypto officer.
func officerFor(tx Tx, s *seal.Sealer, name string) (*object.User, error) {
	u, err := userFor(tx, s, name)
	if err != nil {
		return nil, err
	}
	if u.Role != object.RoleCO {
		return nil, hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "only a crypto officer may take part in quorum")
	}
	return u, nil
}

func applyQuorumRegisterKey(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	if _, err := officerFor(tx, s, c.Actor); err != nil {
		return nil, err
	}
	typ, _, err := quorum.ParseKey(c.QuorumKey)
	if err != nil {
		return nil, err
	}
	if !quorum.Verify(c.QuorumKey, quorum.RegistrationBytes(c.Actor, c.QuorumKey), c.Signature) {
		return nil, hsmerr.Errorf(ck.CKR_SIGNATURE_INVALID, "the registration is not signed by the key's private half")
	}
	q, err := LoadQuorum(tx.Meta, s)
	if err != nil {
		return nil, err
	}
	k := quorum.Key{Officer: c.Actor, Type: typ, Public: append([]byte(nil), c.QuorumKey...)}
	if old := q.KeyOf(c.Actor); old != nil {
		*old = k // approvals made with the old key stop counting
	} else {
		q.Keys = append(q.Keys, k)
	}
	q.PruneTokens(c.Time)
	return nil, saveQuorum(tx, s, q)
}

// registeredOfficers counts the officers with a registered key who still
// exist as officers.
func registeredOfficers(tx Tx, s *seal.Sealer, q *quorum.State) (int, error) {
	n := 0
	for _, k := range q.Keys {
		u, err := userFor(tx, s, k.Officer)
		if hsmerr.IsRV(err, ck.CKR_USER_PIN_NOT_INITIALIZED) {
			continue
		}
		if err != nil {
			return 0, err
		}
		if u.Role == object.RoleCO {
			n++
		}
	}
	return n, nil
}

func applyQuorumSetPolicy(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	if _, err := officerFor(tx, s, c.Actor); err != nil {
		return nil, err
	}
	if c.Service != quorum.ServiceUserManagement && c.Service != quorum.ServiceClusterMembership {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "quorum can be set for %s or %s", quorum.ServiceUserManagement, quorum.ServiceClusterMembership)
	}
	if c.QuorumM < 1 || c.QuorumM > quorum.MaxM {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "M must be 1 to %d", quorum.MaxM)
	}
	q, err := LoadQuorum(tx.Meta, s)
	if err != nil {
		return nil, err
	}
	n, err := registeredOfficers(tx, s, q)
	if err != nil {
		return nil, err
	}
	if c.QuorumM > 1 && c.QuorumM > n {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "M = %d, but only %d officers have registered approval keys", c.QuorumM, n)
	}
	if err := spendToken(tx, s, q, c, quorum.ServiceQuorum); err != nil {
		return nil, err
	}
	if q.Policy == nil {
		q.Policy = map[string]int{}
	}
	if c.QuorumM == 1 {
		delete(q.Policy, c.Service)
	} else {
		q.Policy[c.Service] = c.QuorumM
	}
	return nil, saveQuorum(tx, s, q)
}

func applyQuorumCreateToken(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	if _, err := officerFor(tx, s, c.Actor); err != nil {
		return nil, err
	}
	if err := quorum.ValidService(c.Service); err != nil {
		return nil, err
	}
	if err := quorum.ValidTokenID(c.TokenID); err != nil {
		return nil, err
	}
	q, err := LoadQuorum(tx.Meta, s)
	if err != nil {
		return nil, err
	}
	q.PruneTokens(c.Time)
	if q.TokenOf(c.TokenID) != nil {
		return nil, hsmerr.Errorf(ck.CKR_FUNCTION_FAILED, "quorum token ID collision")
	}
	// One live token per officer and service, as in CloudHSM: a new one
	// replaces the old.
	kept := q.Tokens[:0]
	for _, t := range q.Tokens {
		if t.Requester != c.Actor || t.Service != c.Service {
			kept = append(kept, t)
		}
	}
	q.Tokens = kept
	if len(q.Tokens) >= quorum.MaxTokens {
		return nil, hsmerr.Errorf(ck.CKR_DEVICE_MEMORY, "too many live quorum tokens; wait for some to expire")
	}
	q.Tokens = append(q.Tokens, quorum.Token{ID: c.TokenID, Service: c.Service, Requester: c.Actor,
		Issued: c.Time, Expires: c.Time + quorum.TokenLifetime})
	return nil, saveQuorum(tx, s, q)
}

func applyQuorumApprove(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	if _, err := officerFor(tx, s, c.Actor); err != nil {
		return nil, err
	}
	if err := quorum.ValidTokenID(c.TokenID); err != nil {
		return nil, err
	}
	q, err := LoadQuorum(tx.Meta, s)
	if err != nil {
		return nil, err
	}
	q.PruneTokens(c.Time)
	t := q.TokenOf(c.TokenID)
	if t == nil {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "no live quorum token %s (expired, used or never made)", c.TokenID)
	}
	k := q.KeyOf(c.Actor)
	if k == nil {
		return nil, hsmerr.Errorf(ck.CKR_ACTION_PROHIBITED, "officer %q has no registered approval key (hsm quorum register-key)", c.Actor)
	}
	for _, a := range t.Approvals {
		if a.Officer == c.Actor {
			return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "officer %q already approved this token", c.Actor)
		}
	}
	if !quorum.Verify(k.Public, t.SigningBytes(), c.Signature) {
		return nil, hsmerr.Errorf(ck.CKR_SIGNATURE_INVALID, "the approval is not signed by %q's registered key", c.Actor)
	}
	t.Approvals = append(t.Approvals, quorum.Approval{Officer: c.Actor, Key: k.Fingerprint(),
		Signature: append([]byte(nil), c.Signature...)})
	return nil, saveQuorum(tx, s, q)
}

// applyQuorumUse spends a token for an operation outside the state machine
// (a membership change), before that operation is made.
func applyQuorumUse(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	if _, err := officerFor(tx, s, c.Actor); err != nil {
		return nil, err
	}
	if c.Service != quorum.ServiceClusterMembership {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "quorum_use is for %s", quorum.ServiceClusterMembership)
	}
	q, err := LoadQuorum(tx.Meta, s)
	if err != nil {
		return nil, err
	}
	if err := spendToken(tx, s, q, c, c.Service); err != nil {
		return nil, err
	}
	return nil, saveQuorum(tx, s, q)
}

// quorumCheck is the gate of a protected command applied by the state
// machine: with quorum on for the service, the command must name a token
// that passes spendToken, and the token is gone once the command applies
// (a refused command writes nothing, so its token stays).
func quorumCheck(tx Tx, s *seal.Sealer, c *Command, service string) error {
	q, err := LoadQuorum(tx.Meta, s)
	if err != nil {
		return err
	}
	if q.M(service) <= 1 {
		return nil
	}
	if err := spendToken(tx, s, q, c, service); err != nil {
		return err
	}
	return saveQuorum(tx, s, q)
}

// spendToken checks and removes (in q) the token c names for service:
// it exists and is unexpired at c.Time, is for that service, was requested
// by the actor, and carries approvals from at least M distinct officers who
// still exist, are still officers and still have the key they signed with.
// With M = 1 nothing is needed, but a token given is still checked and
// spent.
func spendToken(tx Tx, s *seal.Sealer, q *quorum.State, c *Command, service string) error {
	m := q.M(service)
	q.PruneTokens(c.Time)
	if c.QuorumToken == "" {
		if m <= 1 {
			return nil
		}
		return hsmerr.Errorf(ck.CKR_ACTION_PROHIBITED, "%s needs the approval of %d crypto officers: hsm quorum token create --service %s, have it approved, then pass --quorum-token", service, m, service)
	}
	if err := quorum.ValidTokenID(c.QuorumToken); err != nil {
		return err
	}
	t := q.TokenOf(c.QuorumToken)
	if t == nil {
		return hsmerr.Errorf(ck.CKR_ACTION_PROHIBITED, "no live quorum token %s (expired, used or never made)", c.QuorumToken)
	}
	if t.Service != service {
		return hsmerr.Errorf(ck.CKR_ACTION_PROHIBITED, "quorum token %s is for %s, not %s", t.ID, t.Service, service)
	}
	if t.Requester != c.Actor {
		return hsmerr.Errorf(ck.CKR_ACTION_PROHIBITED, "quorum token %s belongs to %q", t.ID, t.Requester)
	}
	seen := map[string]bool{}
	n := 0
	for _, a := range t.Approvals {
		if seen[a.Officer] {
			continue
		}
		seen[a.Officer] = true
		k := q.KeyOf(a.Officer)
		if k == nil || k.Fingerprint() != a.Key {
			continue
		}
		u, err := userFor(tx, s, a.Officer)
		if hsmerr.IsRV(err, ck.CKR_USER_PIN_NOT_INITIALIZED) {
			continue
		}
		if err != nil {
			return err
		}
		if u.Role == object.RoleCO {
			n++
		}
	}
	if n < m {
		return hsmerr.Errorf(ck.CKR_ACTION_PROHIBITED, "quorum token %s has %d valid approvals; %s needs %d", t.ID, n, service, m)
	}
	kept := q.Tokens[:0]
	for _, x := range q.Tokens {
		if x.ID != t.ID {
			kept = append(kept, x)
		}
	}
	q.Tokens = kept
	return nil
}

// quorumForgetUser drops a deleted user's approval key and tokens, and
// refuses the deletion if fewer registered officers would remain than a
// service's M: the cluster would lock itself out of that service.
func quorumForgetUser(tx Tx, s *seal.Sealer, name string) error {
	q, err := LoadQuorum(tx.Meta, s)
	if err != nil {
		return err
	}
	if q.KeyOf(name) == nil && len(q.Tokens) == 0 {
		return nil
	}
	if q.KeyOf(name) != nil {
		n, err := registeredOfficers(tx, s, q)
		if err != nil {
			return err
		}
		if m := q.M(quorum.ServiceQuorum); n-1 < m {
			return hsmerr.Errorf(ck.CKR_ACTION_PROHIBITED, "deleting %q would leave %d officers with approval keys, fewer than M = %d; lower M first", name, n-1, m)
		}
		keys := q.Keys[:0]
		for _, k := range q.Keys {
			if k.Officer != name {
				keys = append(keys, k)
			}
		}
		q.Keys = keys
	}
	toks := q.Tokens[:0]
	for _, t := range q.Tokens {
		if t.Requester != name {
			toks = append(toks, t)
		}
	}
	q.Tokens = toks
	return saveQuorum(tx, s, q)
}
