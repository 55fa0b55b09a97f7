package state

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/openhsm/openhsm/audit"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/passwords"
	"github.com/openhsm/openhsm/quorum"
	"github.com/openhsm/openhsm/seal"
)

// Op names a change to the store.
type Op string

const (
	OpInit          Op = "init"           // store the sealed domain key
	OpCreateUser    Op = "create_user"    // User
	OpDeleteUser    Op = "delete_user"    // Name
	OpSetPassword   Op = "set_password"   // Name, PasswordHash
	OpLoginFailed   Op = "login_failed"   // Name
	OpLoginOK       Op = "login_ok"       // Name
	OpUnlockUser    Op = "unlock_user"    // Name
	OpCreateObjects Op = "create_objects" // Objects (one, or a key pair)
	OpDestroyObject Op = "destroy_object" // ObjectID
	OpSetAttributes Op = "set_attributes" // ObjectID, Changes, Role
	OpShare         Op = "share"          // ObjectID, Name
	OpUnshare       Op = "unshare"        // ObjectID, Name
	OpLogout        Op = "logout"         // Session, Expires
	OpSetDomainKey  Op = "set_domain_key" // Domain, DomainMAC: a passphrase rotation

	// Quorum (state/quorum.go).
	OpQuorumRegisterKey Op = "quorum_register_key" // Actor, QuorumKey, Signature
	OpQuorumSetPolicy   Op = "quorum_set_policy"   // Actor, Service, QuorumM, QuorumToken
	OpQuorumCreateToken Op = "quorum_create_token" // Actor, Service, TokenID
	OpQuorumApprove     Op = "quorum_approve"      // Actor, TokenID, Signature
	OpQuorumUse         Op = "quorum_use"          // Actor, Service, QuorumToken
	OpBootstrap         Op = "bootstrap"           // User: the first crypto officer of a store with no users
	OpAudit             Op = "audit"               // Node, Batch, Uses, Proof: a node's key-use counts
	// Login attempts (see applyLoginAttempt): a reservation before a
	// password is verified, and the verdict when it was wrong.
	OpLoginAttempt Op = "login_attempt" // Name
	OpLoginWrong   Op = "login_wrong"   // Name
	OpRevokeCert   Op = "revoke_cert"   // Fingerprint, Name (certs.go)
	// OpSetSetting changes a cluster setting (settings.go).
	OpSetSetting Op = "set_setting" // Name, Value

	// C_InitToken on a crypto user's token slot (wipe.go).
	OpWipeToken Op = "wipe_token" // Name
)

// Command is one serialized change. Everything non-deterministic (time,
// randomness, key generation, encryption) happened before it was made; Apply
// only checks and writes. Actor is the user on whose behalf it runs: apply
// checks ownership again, so that a command that raced with another change
// is refused the same way on every node.
type Command struct {
	Op           Op               `json:"op"`
	Actor        string           `json:"actor,omitempty"`
	Role         object.Role      `json:"role,omitempty"`
	Time         int64            `json:"time,omitempty"`
	Name         string           `json:"name,omitempty"`
	PasswordHash string           `json:"password_hash,omitempty"`
	User         *object.User     `json:"user,omitempty"`
	Objects      []*object.Object `json:"objects,omitempty"`
	ObjectID     uint64           `json:"object_id,omitempty"`
	Changes      object.Template  `json:"changes,omitempty"`
	Domain       []byte           `json:"domain,omitempty"`
	DomainMAC    []byte           `json:"domain_mac,omitempty"`
	Session      uint64           `json:"session,omitempty"`
	Expires      int64            `json:"expires,omitempty"`
	// Quorum: QuorumToken names the approved token a protected command
	// spends (docs/quorum.md).
	QuorumToken string `json:"quorum_token,omitempty"`
	QuorumKey   []byte `json:"quorum_key,omitempty"`
	Signature   []byte `json:"signature,omitempty"`
	Service     string `json:"service,omitempty"`
	QuorumM     int    `json:"quorum_m,omitempty"`
	TokenID     string `json:"token_id,omitempty"`
	// Node and Cert say where a command came from, for the audit trail:
	// the node that took the request and the SHA-256 fingerprint (hex) of
	// the client certificate it came with. hsmd fills them in.
	Node  string           `json:"node,omitempty"`
	Cert  string           `json:"cert,omitempty"`
	Batch uint64           `json:"batch,omitempty"` // OpAudit: the node's batch number
	Uses  []audit.UseCount `json:"uses,omitempty"`  // OpAudit
	Proof []byte           `json:"proof,omitempty"` // OpAudit: AuditProof
	// BreakGlass proves an unlock_user by BreakGlassActor.
	BreakGlass  *seal.BreakGlass `json:"break_glass,omitempty"`
	Fingerprint string           `json:"fingerprint,omitempty"`
	// Sealed is, for set_attributes on a data object, its new CKA_VALUE
	// sealed to the object (never the clear value in Changes).
	Sealed []byte `json:"sealed,omitempty"`
	// RequestID is the client's ID of the write call (see request.go):
	// a second command with the same Actor and RequestID is answered with
	// the first one's recorded outcome, not applied again.
	RequestID string `json:"request_id,omitempty"`
	// KMS is the payload of a KMS command (state/kms.go).
	KMS *KMSCommand `json:"kms,omitempty"`
	// KMSEvents are a node's KMS API requests for the trail (OpKMSAudit,
	// state/kmsaudit.go).
	KMSEvents []audit.KMSEvent `json:"kms_events,omitempty"`
	// Value is a cluster setting's new value (OpSetSetting, settings.go;
	// Name is the setting).
	Value string `json:"value,omitempty"`
}

// MaxCommandSize bounds a serialized command.
const MaxCommandSize = 4 << 20

// Encode serializes the command.
func (c *Command) Encode() ([]byte, error) { return json.Marshal(c) }

// DecodeCommand parses a serialized command, refusing unknown fields.
func DecodeCommand(b []byte) (*Command, error) {
	if len(b) > MaxCommandSize {
		return nil, fmt.Errorf("command: %d bytes is too large", len(b))
	}
	var c Command
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("command: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("command: trailing data")
	}
	if _, ok := applyTable[c.Op]; !ok {
		return nil, fmt.Errorf("command: unknown op %q", c.Op)
	}
	return &c, nil
}

// Machine is the store's state machine: the one place that writes. The
// cluster replicates commands and calls Apply with the log index on every
// node; a single node calls it through a LocalApplier.
type Machine struct {
	store  Store
	mu     sync.RWMutex
	sealer *seal.Sealer
	obs    Observer
}

// Observer hears what an applied command or a restore did that matters
// outside the store: caches to drop, sessions to end, the certificate
// deny-list and the domain key to reload. It is the one way news leaves
// the state machine. Its methods run on the apply path after the
// transaction committed, so they must be quick and must not submit
// commands.
type Observer interface {
	// ObjectChanged: a command changed or removed the object.
	ObjectChanged(id uint64)
	// UsersChanged: a command may have changed users (and so shares).
	UsersChanged()
	// LoggedOut: a logout applied, with the session and when its tokens
	// would have expired (Unix seconds).
	LoggedOut(session uint64, expires int64)
	// CertRevoked: a certificate revocation applied.
	CertRevoked()
	// KMSChanged: a KMS write applied (keys, aliases, principals); caches
	// of KMS rows are stale.
	KMSChanged()
	// Restored: Restore replaced the whole state (KMS rows included). An
	// error means the node cannot serve the new state.
	Restored() error
}

// NewMachine wraps a store. The sealer may be nil until the domain key is
// unsealed; commands that need it fail until then. obs, if not nil, hears
// what apply did; it is called only from Apply, ApplyCommand, ApplyBatch
// and Restore, so it may be a value whose own fields are filled in after
// NewMachine returns, as long as that is done before the first command
// applies.
func NewMachine(s Store, sealer *seal.Sealer, obs Observer) *Machine {
	return &Machine{store: s, sealer: sealer, obs: obs}
}

// SetSealer installs the unsealed domain key.
func (m *Machine) SetSealer(s *seal.Sealer) { m.mu.Lock(); m.sealer = s; m.mu.Unlock() }

// Sealer returns the unsealed domain key, or nil.
func (m *Machine) Sealer() *seal.Sealer { m.mu.RLock(); defer m.mu.RUnlock(); return m.sealer }

// Store returns the store the machine writes.
func (m *Machine) Store() Store { return m.store }

// Apply applies one serialized command at the given log index. The returned
// error is the command's refusal, the same on every node; the index is
// recorded either way. Errors from the store itself are returned wrapped in
// a *StoreError and nothing is recorded, not even the index: the node must
// stop rather than diverge, and applies the command again when it restarts
// (see applytx.go).
func (m *Machine) Apply(index uint64, raw []byte) error {
	p := m.prepare(index, raw)
	return p.finish(m.store.Update(index, p.fn))
}

// ApplyCommand is Apply for a command already decoded.
func (m *Machine) ApplyCommand(index uint64, c *Command) error {
	if applyTable[c.Op] == nil {
		return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "unknown op %q", c.Op)
	}
	p := m.prepareCommand(index, c)
	return p.finish(m.store.Update(index, p.fn))
}

// Entry is one command of a batch: its log index and its encoding.
type Entry struct {
	Index uint64
	Raw   []byte
}

// ApplyBatch applies commands committed together, in order, and returns
// each one's result as Apply would: its refusal (the same on every node),
// nil, or a *StoreError. Each command runs the same apply function, with its
// own authority check, as Apply would run it; a refusal undoes only that
// command's writes. On a BatchStore they share one transaction and one
// commit (group commit): a crash before the commit leaves the store at the
// index before the batch, and the log applies the batch again. The observer
// hears of the batch's changes after that commit, in order. After a
// *StoreError the rest of the batch is not applied (their results are
// *StoreErrors too): the node must stop.
func (m *Machine) ApplyBatch(es []Entry) []error {
	ps := make([]pending, len(es))
	for i, e := range es {
		ps[i] = m.prepare(e.Index, e.Raw)
	}
	out := make([]error, len(es))
	bs, ok := m.store.(BatchStore)
	if !ok || len(es) == 1 {
		for i, p := range ps {
			out[i] = p.finish(m.store.Update(p.index, p.fn))
			var se *StoreError
			if errors.As(out[i], &se) {
				for j := i + 1; j < len(ps); j++ {
					out[j] = &StoreError{ErrNotApplied}
				}
				break
			}
		}
		return out
	}
	indexes := make([]uint64, len(ps))
	fns := make([]func(Tx) error, len(ps))
	for i, p := range ps {
		indexes[i], fns[i] = p.index, p.fn
	}
	errs, err := bs.UpdateBatch(indexes, fns)
	for i, p := range ps {
		if err != nil {
			out[i] = &StoreError{err}
			continue
		}
		out[i] = p.finish(errs[i])
	}
	return out
}

// pending is one command on its way through a store transaction: fn is
// what the transaction runs, finish turns what the store returned for it
// into the command's result and, once the transaction committed, tells the
// observer.
type pending struct {
	index  uint64
	fn     func(tx Tx) error
	finish func(uerr error) error
}

// prepare decodes raw; a command that cannot be decoded is refused alike
// everywhere, and recorded.
func (m *Machine) prepare(index uint64, raw []byte) pending {
	c, err := DecodeCommand(raw)
	if err == nil {
		return m.prepareCommand(index, c)
	}
	rec := &audit.Record{Index: index, Kind: audit.KindCommand, Op: "undecodable", Result: uint64(ck.CKR_ARGUMENTS_BAD), Count: 1}
	return pending{
		index: index,
		fn: func(tx Tx) error {
			if aerr := auditChain(tx, m.Sealer(), []*audit.Record{rec}); aerr != nil {
				return aerr
			}
			return err
		},
		finish: func(uerr error) error {
			if uerr != nil && uerr != err && !errors.Is(uerr, ErrAlreadyApplied) {
				return &StoreError{uerr}
			}
			return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "%v", err)
		},
	}
}

// prepareCommand is the one apply path of a decoded command whose op is in
// the apply table.
func (m *Machine) prepareCommand(index uint64, c *Command) pending {
	fn := applyTable[c.Op]
	var changed []uint64
	var refusal error
	update := func(tx Tx) error {
		sealer := m.Sealer()
		if c.Op != OpInit && sealer == nil {
			// Another node would apply it: refusing here would diverge.
			return &StoreError{errors.New("the domain key is not unsealed on this node")}
		}
		if faultTx != nil {
			tx = faultTx(c.Op, tx)
		}
		g := &guardTx{tx: tx}
		// The authority table, then the op: both inside the dedupe of a
		// request ID, so a retried write gets the first one's answer.
		run := func(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
			if err := checkAuthority(tx, s, c); err != nil {
				return nil, err
			}
			return fn(tx, s, c)
		}
		var ids []uint64
		var err error
		deduped := false
		if deduplicated(c) {
			var ref error
			ids, ref, err = applyDeduped(g, sealer, c, run)
			if err == nil && ref != nil {
				// Refused, and the refusal recorded (its writes undone in
				// a savepoint): the record must commit with the index.
				err, deduped = ref, true
			}
		} else {
			ids, err = run(g, sealer, c)
		}
		if g.failed != nil {
			return &StoreError{g.failed}
		}
		if err != nil && !isApplyRefusal(err) {
			return &StoreError{err}
		}
		// Applied or refused (by the authority table or the op), the
		// command is recorded; the record survives a refusal, since
		// Tx.AppendAudit's writes are not rolled back with the command's.
		if aerr := auditChain(g, sealer, auditRecords(index, c, err)); aerr != nil || g.failed != nil {
			return &StoreError{errors.Join(g.failed, aerr)}
		}
		if err != nil {
			refusal = err
			if deduped {
				return nil
			}
			return err
		}
		changed = ids
		return nil
	}
	finish := func(err error) error {
		if errors.Is(err, ErrAlreadyApplied) {
			return nil // a replay after restart: the change is already in the store
		}
		var se *StoreError
		if errors.As(err, &se) {
			return se
		}
		if err != nil && err != refusal {
			return &StoreError{err}
		}
		if refusal != nil {
			return refusal
		}
		if m.obs == nil {
			return nil
		}
		for _, id := range changed {
			m.obs.ObjectChanged(id)
		}
		if userOps[c.Op] {
			m.obs.UsersChanged()
		}
		if c.Op == OpLogout {
			m.obs.LoggedOut(c.Session, c.Expires)
		}
		if c.Op == OpRevokeCert {
			m.obs.CertRevoked()
		}
		if IsKMSWrite(c.Op) {
			m.obs.KMSChanged()
		}
		return nil
	}
	return pending{index: index, fn: update, finish: finish}
}

// Restore replaces the whole state with a store snapshot stream (see
// Store.Restore) and then tells the observer. A bad stream changes nothing.
func (m *Machine) Restore(r io.Reader, index uint64) error {
	if err := m.store.Restore(r, index); err != nil {
		return err
	}
	if m.obs != nil {
		return m.obs.Restored()
	}
	return nil
}

// StoreError is a failure of the store itself while applying; the node
// cannot go on safely.
type StoreError struct{ Err error }

func (e *StoreError) Error() string { return "store failed while applying: " + e.Err.Error() }
func (e *StoreError) Unwrap() error { return e.Err }

// userOps change users (and, for delete, shares).
var userOps = map[Op]bool{OpCreateUser: true, OpBootstrap: true, OpDeleteUser: true, OpSetPassword: true,
	OpLoginFailed: true, OpLoginOK: true, OpUnlockUser: true, OpLoginAttempt: true, OpLoginWrong: true}

type applyFunc func(tx Tx, s *seal.Sealer, c *Command) (changed []uint64, err error)

var applyTable map[Op]applyFunc

func init() {
	applyTable = map[Op]applyFunc{
		OpInit:          applyInit,
		OpCreateUser:    applyCreateUser,
		OpDeleteUser:    applyDeleteUser,
		OpSetPassword:   applySetPassword,
		OpLoginFailed:   applyLoginFailed,
		OpLoginOK:       applyLoginOK,
		OpUnlockUser:    applyUnlockUser,
		OpCreateObjects: applyCreateObjects,
		OpDestroyObject: applyDestroyObject,
		OpSetAttributes: applySetAttributes,
		OpShare:         applyShare,
		OpUnshare:       applyShare,
		OpLogout:        applyLogout,
		OpSetDomainKey:  applySetDomainKey,

		OpQuorumRegisterKey: applyQuorumRegisterKey,
		OpQuorumSetPolicy:   applyQuorumSetPolicy,
		OpQuorumCreateToken: applyQuorumCreateToken,
		OpQuorumApprove:     applyQuorumApprove,
		OpQuorumUse:         applyQuorumUse,
		OpBootstrap:         applyBootstrap,
		OpAudit:             applyAudit,
		OpLoginAttempt:      applyLoginAttempt,
		OpLoginWrong:        applyLoginWrong,
		OpRevokeCert:        applyRevokeCert,
		OpKMSAudit:          applyKMSAudit,
		OpSetSetting:        applySetSetting,
		OpWipeToken:         applyWipeToken,
	}
	for op, fn := range kmsApply {
		applyTable[op] = fn
	}
}

// MetaDomainKey is the meta key of the sealed domain key.
const MetaDomainKey = "domain_key"

func applyInit(tx Tx, _ *seal.Sealer, c *Command) ([]uint64, error) {
	if _, err := tx.Meta(MetaDomainKey); err == nil {
		return nil, hsmerr.Errorf(ck.CKR_FUNCTION_FAILED, "the store is already initialized")
	}
	if _, err := seal.UnmarshalSealedDomainKey(c.Domain); err != nil {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "%v", err)
	}
	return nil, tx.PutMeta(MetaDomainKey, c.Domain)
}

// userFor reads a user and checks its MAC.
func userFor(tx Tx, s *seal.Sealer, name string) (*object.User, error) {
	u, err := tx.User(name)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, hsmerr.Errorf(ck.CKR_USER_PIN_NOT_INITIALIZED, "no user %q", name)
		}
		return nil, err
	}
	if !s.CheckUserMAC(u) {
		return nil, corrupt(tx, hsmerr.Errorf(ck.CKR_GENERAL_ERROR, "user %q failed its integrity check", name))
	}
	return u, nil
}

func putUser(tx Tx, s *seal.Sealer, u *object.User) error {
	u.MAC = s.UserMAC(u)
	return tx.PutUser(u)
}

func applyCreateUser(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	if c.User != nil {
		if err := notKMSUser(tx, s, c.User.Name); err != nil {
			return nil, err
		}
		if c.User.Name == KMSUser && c.User.Role != object.RoleCU {
			return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "%s can only be a crypto user", KMSUser)
		}
	}
	if err := quorumCheck(tx, s, c, quorum.ServiceUserManagement); err != nil {
		return nil, err
	}
	return nil, createUser(tx, s, c)
}

// notKMSUser keeps KMSUser the KMS service's own once this cluster's KMS
// has claimed it (KMSUserClaimed): only the first KMS principal makes it
// (with a password no one keeps), and from then on no one may make, delete
// or set the password of a user of that name, since whoever could log in as
// it could use every KMS key outside the KMS API and its trail. On a
// cluster whose KMS has not claimed it, kmsuser is an ordinary crypto user
// name: an officer makes it for another cluster's KMS to use this cluster
// as a custom key store (AWS CloudHSM's procedure), and this cluster's KMS
// then refuses its first principal (applyKMSPrincipalCreate).
func notKMSUser(tx Tx, s *seal.Sealer, name string) error {
	if name != KMSUser {
		return nil
	}
	claimed, err := kmsUserClaimed(tx, s)
	if err != nil {
		return err
	}
	if claimed {
		return hsmerr.Errorf(ck.CKR_ACTION_PROHIBITED, "%s is this cluster's KMS's own crypto user: no one makes it, deletes it or sets its password", KMSUser)
	}
	return nil
}

// applyBootstrap makes the first crypto officer, and only while the store
// holds no user at this index: of concurrent bootstraps the first in the log
// wins and every other is refused, on every node alike.
func applyBootstrap(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	us, err := tx.Users()
	if err != nil {
		return nil, err
	}
	if len(us) > 0 {
		return nil, hsmerr.Errorf(ck.CKR_USER_ALREADY_LOGGED_IN, "the cluster already has users")
	}
	if c.User == nil || c.User.Role != object.RoleCO {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "bootstrap makes a crypto officer")
	}
	if c.User.Name == KMSUser {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "%s can only be a crypto user", KMSUser)
	}
	return nil, createUser(tx, s, c)
}

func createUser(tx Tx, s *seal.Sealer, c *Command) error {
	u := c.User
	if u == nil {
		return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "%s without a user", c.Op)
	}
	if err := ValidUserName(u.Name); err != nil {
		return err
	}
	if u.Role != object.RoleCO && u.Role != object.RoleCU {
		return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "bad role")
	}
	if err := passwords.CheckPasswordHash(u.PasswordHash); err != nil {
		return err
	}
	if _, err := tx.User(u.Name); err == nil {
		return hsmerr.Reasonf(hsmerr.ReasonUserExists, "user %q already exists", u.Name)
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	number, err := nextUserNumber(tx)
	if err != nil {
		return err
	}
	nu := &object.User{Name: u.Name, Role: u.Role, PasswordHash: u.PasswordHash, Generation: 1, Created: c.Time, Number: number}
	return putUser(tx, s, nu)
}

// metaUserSeq is the meta key of the last user number given out.
const metaUserSeq = "user_seq"

// nextUserNumber counts users up from 1; numbers are never reused, so a
// deleted user's slot ID never comes back as someone else's.
func nextUserNumber(tx Tx) (uint64, error) {
	var n uint64
	b, err := tx.Meta(metaUserSeq)
	switch {
	case err == nil && len(b) == 8:
		n = binary.BigEndian.Uint64(b)
	case err == nil:
		return 0, fmt.Errorf("meta %s is malformed", metaUserSeq)
	case !errors.Is(err, ErrNotFound):
		return 0, err
	}
	n++
	return n, tx.PutMeta(metaUserSeq, binary.BigEndian.AppendUint64(nil, n))
}

func applyDeleteUser(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	if err := notKMSUser(tx, s, c.Name); err != nil {
		return nil, err
	}
	u, err := userFor(tx, s, c.Name)
	if err != nil {
		return nil, err
	}
	n, err := tx.CountOwned(u.Name)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		return nil, hsmerr.Errorf(ck.CKR_ACTION_PROHIBITED, "user %q owns %d objects; delete them first", u.Name, n)
	}
	if u.Role == object.RoleCO {
		users, err := countRole(tx, s, object.RoleCO)
		if err != nil {
			return nil, err
		}
		if users <= 1 {
			return nil, hsmerr.Errorf(ck.CKR_ACTION_PROHIBITED, "cannot delete the last crypto officer")
		}
	}
	if err := quorumCheck(tx, s, c, quorum.ServiceUserManagement); err != nil {
		return nil, err
	}
	if err := quorumForgetUser(tx, s, u.Name); err != nil {
		return nil, err
	}
	if err := tx.RemoveSharesWith(u.Name); err != nil {
		return nil, err
	}
	return nil, tx.DeleteUser(u.Name)
}

// countRole counts users of a role; a store holds few users.
func countRole(tx Tx, s *seal.Sealer, r object.Role) (int, error) {
	us, err := tx.Users()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, u := range us {
		if u.Role == r {
			n++
		}
	}
	return n, nil
}

func applySetPassword(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	if err := notKMSUser(tx, s, c.Name); err != nil {
		return nil, err
	}
	u, err := userFor(tx, s, c.Name)
	if err != nil {
		return nil, err
	}
	if err := passwords.CheckPasswordHash(c.PasswordHash); err != nil {
		return nil, err
	}
	if c.Actor != u.Name {
		// Resetting someone else's password is how one officer becomes
		// any user: quorum-protected.
		if err := quorumCheck(tx, s, c, quorum.ServiceUserManagement); err != nil {
			return nil, err
		}
	}
	u.PasswordHash = c.PasswordHash
	u.Generation++
	return nil, putUser(tx, s, u)
}

// applyLoginFailed is the count-then-lock of logs written before login
// attempts were reserved (OpLoginAttempt); nodes no longer send it.
func applyLoginFailed(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	u, err := userFor(tx, s, c.Name)
	if err != nil {
		return nil, err
	}
	u.FailedLogins++
	if u.FailedLogins >= object.MaxFailedLogins {
		u.Locked = true
	}
	return nil, putUser(tx, s, u)
}

// applyLoginAttempt reserves one password check: a node verifies a
// password only after this command committed. FailedLogins counts the
// attempts not yet proven right (wrong ones and those still being
// checked), so once it reaches MaxFailedLogins no further attempt is
// reserved anywhere in the cluster until a right one resets it: at most
// MaxFailedLogins guesses are ever verified between two good logins,
// however many are sent at once and to however many nodes. The command
// needs no actor: the caller is not logged in yet; it can only make the
// account harder to use, never easier.
func applyLoginAttempt(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	u, err := userFor(tx, s, c.Name)
	if err != nil {
		return nil, err
	}
	if u.Locked || u.FailedLogins >= object.MaxFailedLogins {
		return nil, hsmerr.Errorf(ck.CKR_PIN_LOCKED, "account %q is locked; a crypto officer must unlock it", c.Name)
	}
	u.FailedLogins++
	return nil, putUser(tx, s, u)
}

// applyLoginWrong records that a reserved attempt was wrong: its count
// stays, and the account locks once the count reached MaxFailedLogins.
func applyLoginWrong(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	u, err := userFor(tx, s, c.Name)
	if err != nil {
		return nil, err
	}
	if u.Locked || u.FailedLogins < object.MaxFailedLogins {
		return nil, nil
	}
	u.Locked = true
	return nil, putUser(tx, s, u)
}

func applyLoginOK(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	u, err := userFor(tx, s, c.Name)
	if err != nil {
		return nil, err
	}
	if u.Locked {
		// A lock that landed between the password check and this command wins.
		return nil, hsmerr.Errorf(ck.CKR_PIN_LOCKED, "account is locked")
	}
	u.FailedLogins = 0
	return nil, putUser(tx, s, u)
}

// applyUnlockUser clears a lockout. Its authority is either an officer
// (Actor, checked with the other user-management commands) or
// BreakGlassActor with a proof under the domain key (CheckBreakGlass at
// the command's time): whoever holds the cluster passphrase may unlock,
// through the log, so every node and every later backup sees it.
func applyUnlockUser(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	if c.Actor == BreakGlassActor {
		if err := s.CheckBreakGlass(c.BreakGlass, c.Name, c.Time); err != nil {
			return nil, err
		}
	} else if c.BreakGlass != nil {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "a break-glass proof goes only with the break-glass actor")
	}
	u, err := userFor(tx, s, c.Name)
	if err != nil {
		return nil, err
	}
	// The break-glass proof needs the passphrase and a node's files: it
	// stands outside the officers' quorum (docs/quorum.md).
	if c.Actor != BreakGlassActor {
		if err := quorumCheck(tx, s, c, quorum.ServiceUserManagement); err != nil {
			return nil, err
		}
	}
	u.FailedLogins, u.Locked = 0, false
	u.Generation++
	return nil, putUser(tx, s, u)
}

func applyCreateObjects(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	if len(c.Objects) == 0 || len(c.Objects) > 2 {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "create_objects takes one or two objects")
	}
	// checkAuthority has made sure the actor is a crypto user; every object
	// must be the actor's and pass the rules the API applies.
	return putNewObjects(tx, s, c.Actor, c.Objects)
}

// putNewObjects checks new token objects of owner (one, or a key pair)
// against every rule the API applies and stores them.
func putNewObjects(tx Tx, s *seal.Sealer, owner string, objs []*object.Object) ([]uint64, error) {
	if err := object.CheckNewUsage(objs); err != nil {
		return nil, err
	}
	for i, o := range objs {
		if o == nil || o.ID == 0 || o.ID >= 1<<63 {
			return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "bad object id")
		}
		if i == 1 && o.ID == objs[0].ID {
			return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "object id collision")
		}
		if o.Owner != owner || len(o.SharedWith) != 0 {
			return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "object owner must be the actor")
		}
		if !o.Attrs.Bool(ck.CKA_TOKEN) {
			return nil, hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "create_objects holds token objects only")
		}
		var material []byte
		if o.Sealed != nil {
			pt, err := s.Open(o.ID, o.Owner, o.Sealed)
			if err != nil {
				return nil, hsmerr.Errorf(ck.CKR_TEMPLATE_INCONSISTENT, "object: the sealed value does not open for this object and owner")
			}
			material = pt
		}
		err := CheckNewObject(o, material)
		clear(material)
		if err != nil {
			return nil, err
		}
		if _, err := tx.Object(o.ID); err == nil {
			return nil, hsmerr.Errorf(ck.CKR_FUNCTION_FAILED, "object id collision")
		} else if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if err := checkDataSealed(s, o, o.Sealed); err != nil {
			return nil, err
		}
	}
	if err := addOwned(tx, owner, len(objs)); err != nil {
		return nil, err
	}
	var ids []uint64
	for _, o := range objs {
		n := o.Clone()
		n.MAC = s.AttrMAC(n)
		if err := tx.PutObject(n); err != nil {
			return nil, err
		}
		ids = append(ids, o.ID)
	}
	return ids, nil
}

// objectFor reads the command's object; checkAuthority has already judged
// the actor's relation to it.
func objectFor(tx Tx, s *seal.Sealer, c *Command) (*object.Object, error) {
	return loadObject(tx, s, c.ObjectID)
}

func applyDestroyObject(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	o, err := objectFor(tx, s, c)
	if err != nil {
		return nil, err
	}
	if !o.Attrs.Bool(ck.CKA_DESTROYABLE) {
		return nil, hsmerr.Errorf(ck.CKR_ACTION_PROHIBITED, "the object is not destroyable")
	}
	if err := addOwned(tx, o.Owner, -1); err != nil {
		return nil, err
	}
	return []uint64{o.ID}, tx.DeleteObject(o.ID)
}

func applySetAttributes(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	if err := object.CheckTemplate("changes", c.Changes); err != nil {
		return nil, err
	}
	o, err := objectFor(tx, s, c)
	if err != nil {
		return nil, err
	}
	actor, err := userFor(tx, s, c.Actor)
	if err != nil {
		return nil, err
	}
	next, err := object.ApplySet(o.Attrs, c.Changes, actor.Role, false)
	if err != nil {
		return nil, err
	}
	if o.Class() == ck.CKO_DATA {
		if _, clear := object.FindAttr(c.Changes, ck.CKA_VALUE); clear {
			return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "a data object's value must come sealed")
		}
	}
	o.Attrs = next
	if c.Sealed != nil {
		if o.Class() != ck.CKO_DATA {
			return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "only a data object takes a sealed value")
		}
		delete(o.Attrs, ck.CKA_VALUE) // a value stored in clear before values were sealed
		if err := checkDataSealed(s, o, c.Sealed); err != nil {
			return nil, err
		}
		o.Sealed = c.Sealed
	}
	o.MAC = s.AttrMAC(o)
	return []uint64{o.ID}, tx.PutObject(o)
}

// checkDataSealed keeps a data object's value out of the clear: its
// CKA_VALUE may not be in Attrs, and its sealed value must open for this
// object and owner (a blob made for another object would fail later, on
// every read). Objects of other classes pass.
func checkDataSealed(s *seal.Sealer, o *object.Object, sealed []byte) error {
	if o.Class() != ck.CKO_DATA {
		return nil
	}
	if _, clear := o.Attrs[ck.CKA_VALUE]; clear {
		return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "a data object's value must come sealed")
	}
	if sealed == nil {
		return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "a data object needs its sealed value")
	}
	if _, err := s.Open(o.ID, o.Owner, sealed); err != nil {
		return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "the data object's sealed value does not open for it")
	}
	return nil
}

func applyShare(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	o, err := objectFor(tx, s, c)
	if err != nil {
		return nil, err
	}
	if c.Op == OpShare {
		u, err := userFor(tx, s, c.Name)
		if err != nil {
			return nil, err
		}
		if u.Role != object.RoleCU {
			return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "keys can only be shared with crypto users")
		}
		if u.Name == o.Owner {
			return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "the owner already has the key")
		}
	}
	set := map[string]bool{}
	for _, u := range o.SharedWith {
		set[u] = true
	}
	if c.Op == OpShare {
		set[c.Name] = true
	} else {
		if !set[c.Name] {
			return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "the key is not shared with %q", c.Name)
		}
		delete(set, c.Name)
	}
	o.SharedWith = o.SharedWith[:0]
	for u := range set {
		o.SharedWith = append(o.SharedWith, u)
	}
	sort.Strings(o.SharedWith)
	o.MAC = s.AttrMAC(o)
	return []uint64{o.ID}, tx.PutObject(o)
}

// MetaLoggedOut is the meta key of the sessions logged out and not yet
// expired: a JSON list of [session, expires] pairs ordered by session.
const MetaLoggedOut = "logged_out"

// MaxLoggedOut bounds that list; past it, the entries that expire first go.
const MaxLoggedOut = 100000

// LoggedOut reads the list of logged-out sessions (session → expiry).
func LoggedOut(get func(string) ([]byte, error)) (map[uint64]int64, error) {
	out := map[uint64]int64{}
	b, err := get(MetaLoggedOut)
	if errors.Is(err, ErrNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	var pairs [][2]int64
	if err := json.Unmarshal(b, &pairs); err != nil {
		return nil, fmt.Errorf("meta %s is malformed", MetaLoggedOut)
	}
	for _, p := range pairs {
		out[uint64(p[0])] = p[1]
	}
	return out, nil
}

// applyLogout records a logged-out session, so that its token is refused
// on every node, and forgets the ones that have expired by the command's
// time.
func applyLogout(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	if c.Session == 0 || c.Session >= 1<<63 || c.Expires <= 0 {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "logout needs a session and its expiry")
	}
	list, err := LoggedOut(tx.Meta)
	if err != nil {
		return nil, err
	}
	list[c.Session] = c.Expires
	type entry struct {
		id  uint64
		exp int64
	}
	var es []entry
	for id, exp := range list {
		if exp >= c.Time {
			es = append(es, entry{id, exp})
		}
	}
	if len(es) > MaxLoggedOut {
		sort.Slice(es, func(i, j int) bool {
			if es[i].exp != es[j].exp {
				return es[i].exp > es[j].exp
			}
			return es[i].id < es[j].id
		})
		es = es[:MaxLoggedOut]
	}
	sort.Slice(es, func(i, j int) bool { return es[i].id < es[j].id })
	pairs := make([][2]int64, len(es))
	for i, e := range es {
		pairs[i] = [2]int64{int64(e.id), e.exp}
	}
	b, err := json.Marshal(pairs)
	if err != nil {
		return nil, err
	}
	return nil, tx.PutMeta(MetaLoggedOut, b)
}

// ValidUserName accepts 1–64 characters of letters, digits, '.', '_' and '-',
// starting with a letter or digit. (The PKCS#11 library uses ':' to split
// user:password, so it is not allowed.)
func ValidUserName(name string) error {
	if len(name) == 0 || len(name) > 64 {
		return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "user name must be 1 to 64 characters")
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || i > 0 && (r == '.' || r == '_' || r == '-')
		if !ok {
			return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "user name may hold only letters, digits, '.', '_' and '-'")
		}
	}
	return nil
}
