package engine

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/passwords"
	"github.com/openhsm/openhsm/seal"
	"github.com/openhsm/openhsm/state"
)

// Caller is who asks: the logged-in user and the login session, which scopes
// session objects (CKA_TOKEN false).
type Caller struct {
	User    string
	Role    object.Role
	Session uint64
	// Cert is the SHA-256 of a public session's client certificate
	// (Role object.RolePublic): its session objects count against the
	// certificate's bound as well as the session's (engine_public.go).
	Cert [32]byte
}

// Applier submits a command to the state machine and waits until it is
// applied (on a cluster: committed on a majority and applied locally).
type Applier interface {
	Submit(ctx context.Context, c *state.Command) error
}

// LocalApplier applies commands on this node alone, in order, numbering
// them after the store's last applied index. It takes the same path a
// replicated command takes: serialize, then Machine.Apply.
type LocalApplier struct {
	mu sync.Mutex
	M  *state.Machine
}

// Submit implements Applier.
func (l *LocalApplier) Submit(_ context.Context, c *state.Command) error {
	raw, err := c.Encode()
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	idx, err := l.M.Store().AppliedIndex()
	if err != nil {
		return err
	}
	return l.M.Apply(idx+1, raw)
}

// Limits on what one request may hold.
const (
	// DefaultSessionObjects is how many session objects one login
	// session may hold on a node unless SetSessionObjectLimit says
	// otherwise.
	DefaultSessionObjects = 10000
	maxCachedKeys         = 4096
	sessionObjectLimit    = "too many session objects"
)

// Engine is the HSM: it checks who may do what, does the crypto, and sends
// every change through the Applier. It is safe for concurrent use.
type Engine struct {
	store   state.Store
	machine *state.Machine
	applier Applier
	now     func() time.Time

	cacheMu sync.Mutex
	cache   map[uint64]*mech.Key

	// Verified reads: objects and users whose MACs were checked, dropped
	// by the apply path when they change. gen counts invalidations, so a
	// read that raced with a change is not cached.
	readMu  sync.Mutex
	gen     uint64
	objects map[uint64]*object.Object
	users   map[string]*object.User

	sessMu   sync.Mutex
	sessObjs map[uint64]*sessionObject
	// sessCount counts each login session's objects in sessObjs,
	// reservations of a create in flight included; sessLimit caps it.
	sessCount map[uint64]int
	sessLimit int
	// pubCount counts public sessions' objects per client certificate;
	// pubLimits caps them (engine_public.go).
	pubCount  map[[32]byte]int
	pubLimits publicLimits
}

type sessionObject struct {
	obj      *object.Object
	session  uint64
	material []byte
	key      *mech.Key
	// public: made by a public session, counted against cert as well.
	public bool
	cert   [32]byte
}

// Options are an engine's node settings.
type Options struct {
	// SessionObjects is how many session objects one login session may
	// hold on this node (0: DefaultSessionObjects). Session objects live
	// only in this node's memory, so the limit is a node setting.
	SessionObjects int
	// PublicSessionObjects and PublicObjectsPerCert bound the objects of
	// public sessions (no login) on this node: per session, and per
	// client certificate over all its public sessions (0: the defaults,
	// DefaultPublicSessionObjects and DefaultPublicObjectsPerCert).
	PublicSessionObjects int
	PublicObjectsPerCert int
}

// NewEngine makes an engine over a machine (whose sealer must be set) that
// submits its commands through a (nil: apply them locally). The machine's
// observer must pass what apply did on to the engine's state.Observer
// methods, so its caches follow the state (a daemon's node does).
func NewEngine(m *state.Machine, a Applier, opts Options) *Engine {
	if a == nil {
		a = &LocalApplier{M: m}
	}
	limit := opts.SessionObjects
	if limit < 1 {
		limit = DefaultSessionObjects
	}
	return &Engine{store: m.Store(), machine: m, applier: a, now: time.Now,
		cache: map[uint64]*mech.Key{}, sessObjs: map[uint64]*sessionObject{},
		sessCount: map[uint64]int{}, sessLimit: limit,
		pubCount: map[[32]byte]int{}, pubLimits: newPublicLimits(opts),
		objects: map[uint64]*object.Object{}, users: map[string]*object.User{}}
}

// The engine's side of state.Observer: its caches follow the state.

// ObjectChanged drops the object from the caches.
func (e *Engine) ObjectChanged(id uint64) { e.forget(id) }

// UsersChanged drops the cached users, and the cached objects, since a
// deleted user's shares went too.
func (e *Engine) UsersChanged() {
	e.readMu.Lock()
	e.gen++
	e.users = map[string]*object.User{}
	e.objects = map[uint64]*object.Object{}
	e.readMu.Unlock()
}

// LoggedOut ends the session's session objects on this node.
func (e *Engine) LoggedOut(session uint64, _ int64) { e.EndSession(session) }

// CertRevoked: the engine keeps nothing per certificate.
func (e *Engine) CertRevoked() {}

// KMSChanged: the engine keeps no KMS rows (its objects' changes come
// through ObjectChanged).
func (e *Engine) KMSChanged() {}

// Restored drops every cache: the whole state was replaced.
func (e *Engine) Restored() error {
	e.UsersChanged()
	e.cacheMu.Lock()
	e.cache = map[uint64]*mech.Key{}
	e.cacheMu.Unlock()
	return nil
}

var _ state.Observer = (*Engine)(nil)

// Store is the store the engine reads.
func (e *Engine) Store() state.Store { return e.store }

func (e *Engine) sealer() (*seal.Sealer, error) {
	s := e.machine.Sealer()
	if s == nil {
		return nil, hsmerr.Errorf(ck.CKR_CRYPTOKI_NOT_INITIALIZED, "the domain key is not unsealed")
	}
	return s, nil
}

// TokenKey returns the key that authenticates session tokens.
func (e *Engine) TokenKey() ([]byte, error) {
	s, err := e.sealer()
	if err != nil {
		return nil, err
	}
	return s.TokenKey(), nil
}

func (e *Engine) submit(ctx context.Context, c *state.Command) error {
	c.Time = e.now().Unix()
	if c.QuorumToken == "" {
		c.QuorumToken = quorumTokenFrom(ctx)
	}
	if state.Deduplicated(c.Op) && c.Actor != "" {
		c.RequestID = RequestIDFrom(ctx)
	}
	return e.applier.Submit(ctx, c)
}

// ---- users ----

// dummyHash is verified against when a user does not exist, so that a login
// for an unknown name costs what a wrong password costs.
var dummyHash = func() string { h, _ := passwords.HashPassword("no such user, no such password"); return h }()

// maxCachedReads bounds the verified-read caches.
const maxCachedReads = 16384

func (e *Engine) user(name string) (*object.User, error) {
	e.readMu.Lock()
	u, gen := e.users[name], e.gen
	e.readMu.Unlock()
	if u != nil {
		return u, nil
	}
	s, err := e.sealer()
	if err != nil {
		return nil, err
	}
	u, err = e.store.User(name)
	if err != nil {
		return nil, err
	}
	if !s.CheckUserMAC(u) {
		return nil, hsmerr.Errorf(ck.CKR_GENERAL_ERROR, "user %q failed its integrity check", name)
	}
	e.readMu.Lock()
	if e.gen == gen && len(e.users) < maxCachedReads {
		e.users[name] = u
	}
	e.readMu.Unlock()
	return u, nil
}

// object reads a token object and checks its MAC, through the cache. The
// object returned is shared: callers must not change it.
func (e *Engine) object(id uint64) (*object.Object, error) {
	e.readMu.Lock()
	o, gen := e.objects[id], e.gen
	e.readMu.Unlock()
	if o != nil {
		return o, nil
	}
	s, err := e.sealer()
	if err != nil {
		return nil, err
	}
	o, err = e.store.Object(id)
	if err != nil {
		return nil, err
	}
	if !s.CheckAttrMAC(o) {
		return nil, hsmerr.Errorf(ck.CKR_GENERAL_ERROR, "object failed its integrity check")
	}
	e.readMu.Lock()
	if e.gen == gen {
		if len(e.objects) >= maxCachedReads {
			e.objects = map[uint64]*object.Object{}
		}
		e.objects[id] = o
	}
	e.readMu.Unlock()
	return o, nil
}

// Login checks a password. Five wrong ones lock the account, and a locked
// account refuses even the right password. Unknown users and wrong passwords
// get the same answer.
//
// The count and the lock decision are made in apply, so they hold across
// the whole cluster and under any concurrency: the node first commits a
// reservation (login_attempt) and verifies the password only if apply
// granted it; a wrong password then commits login_wrong (which locks once
// the count reached MaxFailedLogins) and a right one login_ok (which
// resets the count, unless a lock landed first). See applyLoginAttempt.
func (e *Engine) Login(ctx context.Context, name, password string) (*object.User, error) {
	wrong := hsmerr.Errorf(ck.CKR_PIN_INCORRECT, "wrong user name or password")
	if state.ValidUserName(name) != nil || len(password) > passwords.MaxPasswordLen {
		if _, err := passwords.Argon.Verify(ctx, dummyHash, password); err != nil {
			return nil, err
		}
		return nil, wrong
	}
	u, err := e.user(name)
	if errors.Is(err, state.ErrNotFound) {
		if _, err := passwords.Argon.Verify(ctx, dummyHash, password); err != nil {
			return nil, err
		}
		return nil, wrong
	}
	if err != nil {
		return nil, err
	}
	if u.Locked || u.FailedLogins >= object.MaxFailedLogins {
		return nil, hsmerr.Errorf(ck.CKR_PIN_LOCKED, "account %q is locked; a crypto officer must unlock it", name)
	}
	// The slot is taken before the reservation, so a login refused as
	// busy is not counted as a guess.
	release, err := passwords.Argon.Enter(ctx)
	if err != nil {
		return nil, err
	}
	ok, err := e.reserveAndVerify(ctx, name, password)
	release()
	if err != nil {
		return nil, err
	}
	if !ok {
		if err := e.submit(ctx, &state.Command{Op: state.OpLoginWrong, Name: name}); err != nil {
			return nil, err
		}
		return nil, wrong
	}
	if err := e.submit(ctx, &state.Command{Op: state.OpLoginOK, Name: name}); err != nil {
		return nil, err
	}
	return e.user(name)
}

// reserveAndVerify commits a login_attempt and then checks the password
// against the user as it is after the reservation (it may have raced with
// a password change or a delete). The caller holds an argon2id slot.
func (e *Engine) reserveAndVerify(ctx context.Context, name, password string) (bool, error) {
	if err := e.submit(ctx, &state.Command{Op: state.OpLoginAttempt, Name: name}); err != nil {
		return false, err
	}
	u, err := e.user(name)
	if errors.Is(err, state.ErrNotFound) {
		return false, hsmerr.Errorf(ck.CKR_PIN_INCORRECT, "wrong user name or password")
	}
	if err != nil {
		return false, err
	}
	passwords.Argon.
		Counted()
	return passwords.VerifyPassword(u.PasswordHash, password), nil
}

// Generation is a user's credential generation, or 0 for no such user:
// callers key per-account state by it, so that an unlock or a password
// reset starts it afresh.
func (e *Engine) Generation(name string) uint64 {
	u, err := e.user(name)
	if err != nil {
		return 0
	}
	return u.Generation
}

// CheckUser confirms that a session's user still exists as the same user
// (its number is never reused, so a user deleted and made again under the
// same name is another user), is not locked and has not had its password
// reset since the session began.
func (e *Engine) CheckUser(name string, number, generation uint64) (*object.User, error) {
	u, err := e.user(name)
	if errors.Is(err, state.ErrNotFound) {
		return nil, hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "the user no longer exists")
	}
	if err != nil {
		return nil, err
	}
	if u.Number != number || u.Locked || u.Generation != generation {
		return nil, hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "the session has ended; log in again")
	}
	return u, nil
}

// CreateUser makes a crypto officer or crypto user.
func (e *Engine) CreateUser(ctx context.Context, c Caller, name string, role object.Role, password string) error {
	if err := object.Allowed(c.Role, object.ActManageUsers, object.RelNone); err != nil {
		return err
	}
	if r, ok := e.replayed(ctx, c, state.OpCreateUser); ok {
		return r.Err()
	}
	return e.createUser(ctx, state.OpCreateUser, c.User, name, role, password)
}

func (e *Engine) createUser(ctx context.Context, op state.Op, actor, name string, role object.Role, password string) error {
	if err := state.ValidUserName(name); err != nil {
		return err
	}
	if role != object.RoleCO && role != object.RoleCU {
		return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "role must be CO or CU")
	}
	if err := passwords.CheckPassword(password); err != nil {
		return err
	}
	h, err := passwords.Argon.Hash(ctx, password)
	if err != nil {
		return err
	}
	return e.submit(ctx, &state.Command{Op: op, Actor: actor, User: &object.User{Name: name, Role: role, PasswordHash: h}})
}

// Bootstrap creates the first crypto officer of a store that has no users.
// The check here only spares a password hash when users exist; apply
// decides, so of concurrent bootstraps exactly one makes an officer.
func (e *Engine) Bootstrap(ctx context.Context, name, password string) error {
	us, err := e.store.Users()
	if err != nil {
		return err
	}
	if len(us) > 0 {
		return hsmerr.Errorf(ck.CKR_USER_ALREADY_LOGGED_IN, "the cluster already has users")
	}
	return e.createUser(ctx, state.OpBootstrap, "", name, object.RoleCO, password)
}

// DeleteUser removes a user who owns no objects.
func (e *Engine) DeleteUser(ctx context.Context, c Caller, name string) error {
	if err := object.Allowed(c.Role, object.ActManageUsers, object.RelNone); err != nil {
		return err
	}
	if r, ok := e.replayed(ctx, c, state.OpDeleteUser); ok {
		return r.Err()
	}
	return e.submit(ctx, &state.Command{Op: state.OpDeleteUser, Actor: c.User, Name: name})
}

// SetPassword changes a password: a crypto officer may reset anyone's, a
// crypto user only their own.
func (e *Engine) SetPassword(ctx context.Context, c Caller, name, password string) error {
	if name != c.User {
		if err := object.Allowed(c.Role, object.ActManageUsers, object.RelNone); err != nil {
			return err
		}
	}
	if err := passwords.CheckPassword(password); err != nil {
		return err
	}
	if r, ok := e.replayed(ctx, c, state.OpSetPassword); ok {
		return r.Err()
	}
	h, err := passwords.Argon.Hash(ctx, password)
	if err != nil {
		return err
	}
	return e.submit(ctx, &state.Command{Op: state.OpSetPassword, Actor: c.User, Name: name, PasswordHash: h})
}

// UnlockUser clears a lockout.
func (e *Engine) UnlockUser(ctx context.Context, c Caller, name string) error {
	if err := object.Allowed(c.Role, object.ActManageUsers, object.RelNone); err != nil {
		return err
	}
	if r, ok := e.replayed(ctx, c, state.OpUnlockUser); ok {
		return r.Err()
	}
	return e.submit(ctx, &state.Command{Op: state.OpUnlockUser, Actor: c.User, Name: name})
}

// UserInfo is what listing users shows: never a hash.
type UserInfo struct {
	Name         string
	Role         object.Role
	Locked       bool
	FailedLogins int
	Created      int64
	Number       uint64
}

// ListUsers lists every user. Any logged-in user may.
func (e *Engine) ListUsers(c Caller) ([]UserInfo, error) {
	if c.Role != object.RoleCO && c.Role != object.RoleCU {
		return nil, hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "not logged in")
	}
	us, err := e.store.Users()
	if err != nil {
		return nil, err
	}
	out := make([]UserInfo, 0, len(us))
	for _, u := range us {
		out = append(out, UserInfo{Name: u.Name, Role: u.Role, Locked: u.Locked || u.FailedLogins >= object.MaxFailedLogins, FailedLogins: u.FailedLogins, Created: u.Created, Number: u.Number})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Token is a crypto user's token, as the PKCS#11 library lists slots.
type Token struct {
	Name   string
	Number uint64
	Locked bool
	// FailedLogins is the lockout counter (object.MaxFailedLogins locks),
	// for PKCS#11's CKF_USER_PIN_COUNT_LOW and _FINAL_TRY.
	FailedLogins int
}

// ListTokens lists the crypto users' tokens, ordered by number. It needs no
// login: a PKCS#11 application lists slots before it logs in.
func (e *Engine) ListTokens() ([]Token, error) {
	us, err := e.store.Users()
	if err != nil {
		return nil, err
	}
	var out []Token
	for _, u := range us {
		if u.Role == object.RoleCU {
			out = append(out, Token{Name: u.Name, Number: u.Number, Locked: u.Locked || u.FailedLogins >= object.MaxFailedLogins,
				FailedLogins: min(u.FailedLogins, object.MaxFailedLogins)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out, nil
}

// ---- objects ----

func newID() (uint64, error) {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, err
		}
		if id := binary.BigEndian.Uint64(b[:]) >> 1; id != 0 {
			return id, nil
		}
	}
}

// lookup finds an object the caller may act on.
func (e *Engine) lookup(c Caller, id uint64, act object.Action) (*object.Object, *sessionObject, error) {
	e.sessMu.Lock()
	so := e.sessObjs[id]
	e.sessMu.Unlock()
	if so != nil {
		if so.session != c.Session || so.obj.Owner != c.User {
			return nil, nil, hsmerr.Errorf(ck.CKR_OBJECT_HANDLE_INVALID, "no such object")
		}
		if err := object.Allowed(c.Role, act, object.RelOwner); err != nil {
			return nil, nil, err
		}
		return so.obj, so, nil
	}
	if c.Role != object.RoleCO && c.Role != object.RoleCU && c.Role != object.RolePublic {
		return nil, nil, hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "not logged in")
	}
	o, err := e.object(id)
	if errors.Is(err, state.ErrNotFound) {
		return nil, nil, hsmerr.Errorf(ck.CKR_OBJECT_HANDLE_INVALID, "no such object")
	}
	if err != nil {
		return nil, nil, err
	}
	if object.HiddenFrom(c.Role, act, o) || c.Role == object.RolePublic && !e.publicSees(c, o, act) {
		return nil, nil, hsmerr.Errorf(ck.CKR_OBJECT_HANDLE_INVALID, "no such object")
	}
	if err := object.Allowed(c.Role, act, object.RelationOf(c.User, o)); err != nil {
		return nil, nil, err
	}
	return o, nil, nil
}

// material returns the clear secret material of a key object (raw value or
// PKCS#8), or nil for objects without one.
func (e *Engine) material(o *object.Object, so *sessionObject) ([]byte, error) {
	if so != nil {
		return so.material, nil
	}
	if o.Sealed == nil {
		return nil, nil
	}
	s, err := e.sealer()
	if err != nil {
		return nil, err
	}
	pt, err := s.Open(o.ID, o.Owner, o.Sealed)
	if err != nil {
		return nil, hsmerr.Errorf(ck.CKR_GENERAL_ERROR, "object %d: %v", o.ID, err)
	}
	return pt, nil
}

// keyOf returns the usable key of an object.
func (e *Engine) keyOf(o *object.Object, so *sessionObject) (*mech.Key, error) {
	if so != nil && so.key != nil {
		return so.key, nil
	}
	if so == nil {
		e.cacheMu.Lock()
		k := e.cache[o.ID]
		e.cacheMu.Unlock()
		if k != nil {
			return k, nil
		}
	}
	class, kt := o.Class(), o.KeyType()
	k := &mech.Key{Class: class, KeyType: kt}
	switch class {
	case ck.CKO_PUBLIC_KEY:
		pub, err := mech.PublicKeyFromAttrs(kt, o.Attrs)
		if err != nil {
			return nil, err
		}
		k.Public = pub
	case ck.CKO_PRIVATE_KEY, ck.CKO_SECRET_KEY:
		m, err := e.material(o, so)
		if err != nil {
			return nil, err
		}
		if class == ck.CKO_SECRET_KEY {
			k.Secret = m
		} else {
			_, priv, err := mech.ParsePrivateKey(m)
			if err != nil {
				return nil, hsmerr.Errorf(ck.CKR_GENERAL_ERROR, "object %d: stored private key: %v", o.ID, err)
			}
			k.Private, k.Public = priv, priv.Public()
		}
	default:
		return nil, hsmerr.Errorf(ck.CKR_KEY_HANDLE_INVALID, "the object is not a key")
	}
	if so != nil {
		so.key = k
		return k, nil
	}
	e.cacheMu.Lock()
	if len(e.cache) >= maxCachedKeys {
		for id := range e.cache { // drop an arbitrary entry
			delete(e.cache, id)
			break
		}
	}
	e.cache[o.ID] = k
	e.cacheMu.Unlock()
	return k, nil
}

func (e *Engine) forget(id uint64) {
	e.cacheMu.Lock()
	delete(e.cache, id)
	e.cacheMu.Unlock()
	e.readMu.Lock()
	e.gen++
	delete(e.objects, id)
	e.readMu.Unlock()
}

// keyOp is what an operation needs of a mechanism and a key.
type keyOp struct {
	name  string
	flag  uint64 // CKF_ the mechanism must have
	usage uint64 // CKA_ the key must have set
}

var (
	opSign    = keyOp{"sign", ck.CKF_SIGN, ck.CKA_SIGN}
	opVerify  = keyOp{"verify", ck.CKF_VERIFY, ck.CKA_VERIFY}
	opEncrypt = keyOp{"encrypt", ck.CKF_ENCRYPT, ck.CKA_ENCRYPT}
	opDecrypt = keyOp{"decrypt", ck.CKF_DECRYPT, ck.CKA_DECRYPT}
	opWrap    = keyOp{"wrap", ck.CKF_WRAP, ck.CKA_WRAP}
	opUnwrap  = keyOp{"unwrap", ck.CKF_UNWRAP, ck.CKA_UNWRAP}
	opDerive  = keyOp{"derive", ck.CKF_DERIVE, ck.CKA_DERIVE}
)

// CheckMechanism returns the mechanism's row if it can do op.
func checkMechanism(m mech.Mech, op keyOp) (*mech.Mechanism, error) {
	row, ok := mech.LookupMechanism(m.Type)
	if !ok || row.Flags&op.flag == 0 {
		return nil, hsmerr.Errorf(ck.CKR_MECHANISM_INVALID, "%s cannot %s", ck.MechName(m.Type), op.name)
	}
	if err := mech.CheckParam(row, m); err != nil {
		return nil, err
	}
	return row, nil
}

// useKey resolves a key for an operation and checks every rule: access, the
// key's usage attribute, its type, the allowed mechanisms and the key size.
func (e *Engine) useKey(c Caller, id uint64, m mech.Mech, op keyOp) (*mech.Mechanism, *object.Object, *mech.Key, error) {
	row, err := checkMechanism(m, op)
	if err != nil {
		return nil, nil, nil, err
	}
	// A role that may use no key is refused before any lookup.
	if err := object.Allowed(c.Role, object.ActUse, object.RelOwner); err != nil {
		return nil, nil, nil, err
	}
	o, so, err := e.lookup(c, id, object.ActUse)
	if err != nil {
		if hsmerr.IsRV(err, ck.CKR_OBJECT_HANDLE_INVALID) {
			err = hsmerr.Errorf(ck.CKR_KEY_HANDLE_INVALID, "no such key")
		}
		return nil, nil, nil, err
	}
	if !object.IsKeyClass(o.Class()) {
		return nil, nil, nil, hsmerr.Errorf(ck.CKR_KEY_HANDLE_INVALID, "the object is not a key")
	}
	if !o.Attrs.Bool(op.usage) {
		return nil, nil, nil, hsmerr.Errorf(ck.CKR_KEY_FUNCTION_NOT_PERMITTED, "the key's %s is not set", ck.AttrName(op.usage))
	}
	if len(row.KeyTypes) > 0 && !slices.Contains(row.KeyTypes, o.KeyType()) {
		return nil, nil, nil, hsmerr.Errorf(ck.CKR_KEY_TYPE_INCONSISTENT, "%s does not take a %s key", ck.MechName(m.Type), ck.KeyTypeName(o.KeyType()))
	}
	if am := o.Attrs[ck.CKA_ALLOWED_MECHANISMS]; len(am) > 0 {
		allowed := false
		for i := 0; i+8 <= len(am); i += 8 {
			if binary.BigEndian.Uint64(am[i:]) == m.Type {
				allowed = true
			}
		}
		if !allowed {
			return nil, nil, nil, hsmerr.Errorf(ck.CKR_MECHANISM_INVALID, "%s is not in the key's CKA_ALLOWED_MECHANISMS", ck.MechName(m.Type))
		}
	}
	k, err := e.keyOf(o, so)
	if err != nil {
		return nil, nil, nil, err
	}
	if bits := uint64(mech.KeyBits(k)); row.MaxKeySize > 0 {
		size := bits
		if k.Class == ck.CKO_SECRET_KEY {
			size = bits / 8
		}
		if size < row.MinKeySize || size > row.MaxKeySize {
			return nil, nil, nil, hsmerr.Errorf(ck.CKR_KEY_SIZE_RANGE, "key size is outside %s's range", ck.MechName(m.Type))
		}
	}
	return row, o, k, nil
}

// Sign signs or MACs data.
func (e *Engine) Sign(c Caller, id uint64, m mech.Mech, data []byte) ([]byte, error) {
	if err := mech.CheckData("data", data); err != nil {
		return nil, err
	}
	row, _, k, err := e.useKey(c, id, m, opSign)
	if err != nil {
		return nil, err
	}
	return row.Sign(k, m, data)
}

// Verify checks a signature or MAC.
func (e *Engine) Verify(c Caller, id uint64, m mech.Mech, data, sig []byte) error {
	if err := mech.CheckData("data", data); err != nil {
		return err
	}
	row, _, k, err := e.useKey(c, id, m, opVerify)
	if err != nil {
		return err
	}
	return row.Verify(k, m, data, sig)
}

// Encrypt encrypts data.
func (e *Engine) Encrypt(c Caller, id uint64, m mech.Mech, data []byte) ([]byte, error) {
	if err := mech.CheckData("data", data); err != nil {
		return nil, err
	}
	row, _, k, err := e.useKey(c, id, m, opEncrypt)
	if err != nil {
		return nil, err
	}
	return row.Encrypt(k, m, data)
}

// Decrypt decrypts data.
func (e *Engine) Decrypt(c Caller, id uint64, m mech.Mech, data []byte) ([]byte, error) {
	if err := mech.CheckData("data", data); err != nil {
		return nil, err
	}
	row, _, k, err := e.useKey(c, id, m, opDecrypt)
	if err != nil {
		return nil, err
	}
	return row.Decrypt(k, m, data)
}

// Random returns n random bytes.
func Random(n int) ([]byte, error) {
	if n < 0 || n > mech.MaxRandomLen {
		return nil, hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "random length must be 0 to %d", mech.MaxRandomLen)
	}
	return mech.GenerateRandom(n)
}

// finishKey sets the attributes only the HSM sets on a new key.
func finishKey(a object.Attrs, id uint64, local bool, genMech uint64) {
	class, _ := a.Ulong(ck.CKA_CLASS)
	a[ck.CKA_UNIQUE_ID] = []byte(fmt.Sprintf("%016x", id))
	if !object.IsKeyClass(class) {
		return
	}
	a.SetBool(ck.CKA_LOCAL, local)
	if local {
		a.SetUlong(ck.CKA_KEY_GEN_MECHANISM, genMech)
	} else {
		a.SetUlong(ck.CKA_KEY_GEN_MECHANISM, object.UnavailableInfo)
	}
	if class != ck.CKO_PUBLIC_KEY {
		a.SetBool(ck.CKA_ALWAYS_SENSITIVE, local && a.Bool(ck.CKA_SENSITIVE))
		a.SetBool(ck.CKA_NEVER_EXTRACTABLE, local && !a.Bool(ck.CKA_EXTRACTABLE))
	}
}

// newObj is an object to be made, with its clear material if any.
type newObj struct {
	obj      *object.Object
	material []byte
	key      *mech.Key
	local    bool         // generated in the HSM (CKA_LOCAL)
	genMech  uint64       // the mechanism that generated it, when local (CKM_RSA_PKCS_KEY_PAIR_GEN is 0)
	base     object.Attrs // for a derived key, the base key's attributes
}

// store makes the objects: token objects through one command, session
// objects in memory. It returns their IDs in order.
func (e *Engine) storeObjects(ctx context.Context, c Caller, objs ...newObj) ([]uint64, error) {
	s, err := e.sealer()
	if err != nil {
		return nil, err
	}
	ids, token, err := sealObjects(s, c.User, objs)
	if err != nil {
		return nil, err
	}
	// Reserve the session's room first, so concurrent creates in one
	// session cannot together pass the limit.
	session := 0
	for _, n := range objs {
		if !n.obj.Attrs.Bool(ck.CKA_TOKEN) {
			if err := state.CheckNewObject(n.obj, n.material); err != nil {
				return nil, err
			}
			session++
		}
	}
	public := c.Role == object.RolePublic
	if public {
		// Checked on the finished attributes, after every template
		// error: a public session makes public session objects only.
		if err := checkPublicObjects(objs); err != nil {
			return nil, err
		}
	}
	if session > 0 {
		e.sessMu.Lock()
		if err := e.reserve(c, session); err != nil {
			e.sessMu.Unlock()
			return nil, err
		}
		e.sessMu.Unlock()
	}
	if len(token) > 0 {
		cmd := &state.Command{Op: state.OpCreateObjects, Actor: c.User, Objects: token}
		err := e.submit(ctx, cmd)
		if err == nil && cmd.RequestID != "" {
			err = e.recordedIDs(cmd, ids, objs)
		}
		if err != nil {
			if session > 0 {
				e.sessMu.Lock()
				e.uncount(c.Session, session)
				if public {
					e.uncountCert(c.Cert, session)
				}
				e.sessMu.Unlock()
			}
			return nil, err
		}
	}
	e.sessMu.Lock()
	for _, n := range objs {
		if !n.obj.Attrs.Bool(ck.CKA_TOKEN) {
			e.sessObjs[n.obj.ID] = &sessionObject{obj: n.obj, session: c.Session, material: n.material, key: n.key,
				public: public, cert: c.Cert}
		}
	}
	e.sessMu.Unlock()
	return ids, nil
}

// sealObjects gives new objects their IDs, owner and the attributes only
// the HSM sets, and seals the material of the token objects among them,
// which it returns for a command.
func sealObjects(s *seal.Sealer, owner string, objs []newObj) (ids []uint64, token []*object.Object, err error) {
	ids = make([]uint64, len(objs))
	for i, n := range objs {
		id, err := newID()
		if err != nil {
			return nil, nil, err
		}
		n.obj.ID, n.obj.Owner = id, owner
		finishKey(n.obj.Attrs, id, n.local, n.genMech)
		if n.base != nil {
			a := n.obj.Attrs
			a.SetBool(ck.CKA_ALWAYS_SENSITIVE, n.base.Bool(ck.CKA_ALWAYS_SENSITIVE) && a.Bool(ck.CKA_SENSITIVE))
			a.SetBool(ck.CKA_NEVER_EXTRACTABLE, n.base.Bool(ck.CKA_NEVER_EXTRACTABLE) && !a.Bool(ck.CKA_EXTRACTABLE))
		}
		ids[i] = id
		if n.obj.Attrs.Bool(ck.CKA_TOKEN) {
			if n.material != nil {
				if n.obj.Sealed, err = s.Seal(id, owner, n.material); err != nil {
					return nil, nil, err
				}
			}
			token = append(token, n.obj)
		}
	}
	return ids, token, nil
}

// uncount gives back n of a session's object slots; sessMu is held.
func (e *Engine) uncount(session uint64, n int) {
	if e.sessCount[session] <= n {
		delete(e.sessCount, session)
		return
	}
	e.sessCount[session] -= n
}

// recordedIDs replaces the IDs of the token objects in ids with those the
// record of cmd's request holds: when cmd was a retry, its own objects were
// never made, and the caller must get the first try's handles.
func (e *Engine) recordedIDs(cmd *state.Command, ids []uint64, objs []newObj) error {
	r, err := e.Request(cmd.Actor, cmd.RequestID)
	if err != nil {
		return err
	}
	if r == nil {
		// Committed, but this node has not applied it yet: the caller
		// retries with the same ID and learns the outcome then.
		return hsmerr.Errorf(ck.CKR_DEVICE_ERROR, "the write is committed but not yet applied on this node; retry it")
	}
	if err := r.Err(); err != nil {
		return err
	}
	if r.Op != state.OpCreateObjects || len(r.Objects) != len(cmd.Objects) {
		return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "the request ID was already used for another operation")
	}
	j := 0
	for i, n := range objs {
		if n.obj.Attrs.Bool(ck.CKA_TOKEN) {
			ids[i] = r.Objects[j]
			j++
		}
	}
	return nil
}

// EndSession drops the session objects of a login session.
func (e *Engine) EndSession(session uint64) {
	e.sessMu.Lock()
	defer e.sessMu.Unlock()
	for id, so := range e.sessObjs {
		if so.session == session {
			delete(e.sessObjs, id)
			if so.public {
				e.uncountCert(so.cert, 1)
			}
		}
	}
	delete(e.sessCount, session)
}

// Logout records through the log that the caller's login session has
// ended, so every node refuses its token until expires (Unix seconds).
func (e *Engine) Logout(ctx context.Context, c Caller, expires int64) error {
	return e.applier.Submit(ctx, &state.Command{Op: state.OpLogout, Actor: c.User, Role: c.Role, Time: e.now().Unix(),
		Session: c.Session, Expires: expires})
}

// canCreate checks the templates first: a bad template is a template error
// whoever asks (PKCS#11 reports it before the login state), then the role.
func (e *Engine) canCreate(c Caller, tmpls ...object.Template) error {
	for _, t := range tmpls {
		if err := object.CheckTemplate("template", t); err != nil {
			return err
		}
	}
	return object.Allowed(c.Role, object.ActCreate, object.RelNone)
}

// GenerateKey makes a secret key.
func (e *Engine) GenerateKey(ctx context.Context, c Caller, m mech.Mech, tmpl object.Template) (uint64, error) {
	if err := e.canCreate(c, tmpl); err != nil {
		return 0, err
	}
	n, err := generateSecret(m, tmpl)
	if err != nil {
		return 0, err
	}
	ids, err := e.storeObjects(ctx, c, n)
	if err != nil {
		return 0, err
	}
	return ids[0], nil
}

// generateSecret makes a secret key's object and material, not stored.
func generateSecret(m mech.Mech, tmpl object.Template) (newObj, error) {
	if err := object.CheckSecretKeyType(tmpl); err != nil {
		return newObj{}, err
	}
	row, ok := mech.LookupMechanism(m.Type)
	if !ok || row.GenerateKey == nil {
		return newObj{}, hsmerr.Errorf(ck.CKR_MECHANISM_INVALID, "%s does not make secret keys", ck.MechName(m.Type))
	}
	if err := mech.CheckParam(row, m); err != nil {
		return newObj{}, err
	}
	tmpl = defaultValueLen(row, tmpl)
	attrs, _, err := object.BuildAttrs(object.OpGenerate, tmpl, ck.CKO_SECRET_KEY, row.KeyTypes[0])
	if err != nil {
		return newObj{}, err
	}
	size, _ := attrs.Ulong(ck.CKA_VALUE_LEN)
	if size < row.MinKeySize || size > row.MaxKeySize || row.KeyTypes[0] == ck.CKK_AES && size != 16 && size != 24 && size != 32 {
		return newObj{}, hsmerr.Errorf(ck.CKR_KEY_SIZE_RANGE, "CKA_VALUE_LEN %d is outside %s's range", size, ck.MechName(m.Type))
	}
	value, err := row.GenerateKey(rand.Reader, int(size))
	if err != nil {
		return newObj{}, err
	}
	if err := mech.SecretKeyAttrs(attrs, value); err != nil {
		return newObj{}, err
	}
	return newObj{obj: &object.Object{Attrs: attrs}, material: value, local: true, genMech: m.Type,
		key: &mech.Key{Class: ck.CKO_SECRET_KEY, KeyType: row.KeyTypes[0], Secret: value}}, nil
}

// GenerateKeyPair makes a public and a private key.
func (e *Engine) GenerateKeyPair(ctx context.Context, c Caller, m mech.Mech, pubT, privT object.Template) (pub, priv uint64, err error) {
	if err := e.canCreate(c, pubT, privT); err != nil {
		return 0, 0, err
	}
	pair, err := generatePair(m, pubT, privT)
	if err != nil {
		return 0, 0, err
	}
	ids, err := e.storeObjects(ctx, c, pair...)
	if err != nil {
		return 0, 0, err
	}
	return ids[0], ids[1], nil
}

// generatePair makes a key pair's objects and material, not stored.
func generatePair(m mech.Mech, pubT, privT object.Template) ([]newObj, error) {
	row, ok := mech.LookupMechanism(m.Type)
	if !ok || row.GenerateKeyPair == nil {
		return nil, hsmerr.Errorf(ck.CKR_MECHANISM_INVALID, "%s does not make key pairs", ck.MechName(m.Type))
	}
	if err := mech.CheckParam(row, m); err != nil {
		return nil, err
	}
	kt := row.KeyTypes[0]
	pa, _, err := object.BuildAttrs(object.OpGenerate, pubT, ck.CKO_PUBLIC_KEY, kt)
	if err != nil {
		return nil, err
	}
	va, _, err := object.BuildAttrs(object.OpGenerate, privT, ck.CKO_PRIVATE_KEY, kt)
	if err != nil {
		return nil, err
	}
	if err := object.PairUsage(pubT, privT, pa, va); err != nil {
		return nil, err
	}
	p := mech.KeyPairParams{PublicExponent: 65537, ECParams: pa[ck.CKA_EC_PARAMS]}
	p.ParameterSet, _ = pa.Ulong(ck.CKA_PARAMETER_SET)
	if bits, ok := pa.Ulong(ck.CKA_MODULUS_BITS); ok {
		if bits < row.MinKeySize || bits > row.MaxKeySize {
			return nil, hsmerr.Errorf(ck.CKR_KEY_SIZE_RANGE, "CKA_MODULUS_BITS %d is outside %d..%d", bits, row.MinKeySize, row.MaxKeySize)
		}
		p.ModulusBits = int(bits)
	}
	if pe, ok := pa[ck.CKA_PUBLIC_EXPONENT]; ok {
		if len(pe) == 0 || len(pe) > 4 {
			return nil, hsmerr.Errorf(ck.CKR_ATTRIBUTE_VALUE_INVALID, "CKA_PUBLIC_EXPONENT is out of range")
		}
		v := 0
		for _, b := range pe {
			v = v<<8 | int(b)
		}
		p.PublicExponent = v
	}
	signer, err := row.GenerateKeyPair(rand.Reader, p)
	if err != nil {
		return nil, err
	}
	_, public, err := mech.PublicKeyAttrs(signer.Public())
	if err != nil {
		return nil, err
	}
	der, err := mech.MarshalPrivateKey(signer)
	if err != nil {
		return nil, err
	}
	object.AddPublicAttrs(pa, public)
	object.AddPublicAttrs(va, public)
	return []newObj{
		{obj: &object.Object{Attrs: pa}, local: true, genMech: m.Type, key: &mech.Key{Class: ck.CKO_PUBLIC_KEY, KeyType: kt, Public: signer.Public()}},
		{obj: &object.Object{Attrs: va}, local: true, genMech: m.Type, material: der, key: &mech.Key{Class: ck.CKO_PRIVATE_KEY, KeyType: kt, Private: signer, Public: signer.Public()}},
	}, nil
}

// HasUsers tells whether any user exists (the cluster is activated).
func (e *Engine) HasUsers() (bool, error) {
	us, err := e.store.Users()
	return len(us) > 0, err
}
