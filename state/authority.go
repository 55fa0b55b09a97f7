package state

import (
	"errors"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/seal"
)

// Who may make each command is checked again in apply, at the command's log
// index, against the state every node holds at that index. The engine checks
// first so that callers get a quick answer, but a command can reach apply
// without the engine (a Forward from a node certificate, a command that
// raced with a user's deletion or demotion), so apply cannot trust that
// anyone checked. See docs/command-authority.md.

// actorRule says who must stand behind a command.
type actorRule int

const (
	// actorNone: the command is not made on a user's behalf. init and
	// bootstrap check the store's state instead (no domain key, no users);
	// login bookkeeping happens before anyone is logged in.
	actorNone actorRule = iota
	// actorAny: any existing user (logout).
	actorAny
	// actorCO: a crypto officer.
	actorCO
	// actorCU: a crypto user.
	actorCU
	// actorCOOrSelf: a crypto officer, or the user the command names.
	actorCOOrSelf
	// actorObject: the actor's role and relation to the command's object,
	// judged by access.go's table for the rule's action.
	actorObject
	// actorCOOrBreakGlass: a crypto officer, or BreakGlassActor, whose
	// proof under the domain key the op's own function checks
	// (unlock_user: `hsmd unlock-user`).
	actorCOOrBreakGlass
	// actorKMSPrincipal: no user; a KMS principal that exists
	// (KMSCommand.Principal; state/kms.go).
	actorKMSPrincipal
	// actorKMSPrincipalOrNodes: a KMS principal, or none for the nodes'
	// own upkeep, which the op applies only when due by the command's time.
	actorKMSPrincipalOrNodes
)

// authority is one row of the table: what an op needs of its actor.
type authority struct {
	actor actorRule
	// action is the access.go action an actorObject op takes; set_attributes
	// takes ActSetTrusted instead when it changes nothing but CKA_TRUSTED.
	action object.Action
}

// commandAuthority is the whole rule: op -> what its actor must be. An op
// missing here is refused in apply (deny by default); a test checks that
// every op of applyTable has a row.
var commandAuthority = map[Op]authority{
	OpInit:        {actor: actorNone},
	OpBootstrap:   {actor: actorNone},
	OpLoginFailed: {actor: actorNone},
	OpLoginOK:     {actor: actorNone},
	// A node's key-use counts: no user acts; apply checks the node's proof
	// under the domain key instead (state/audit.go).
	OpAudit: {actor: actorNone},
	// A node's batch of KMS API requests: the same, with its own proof
	// (state/kmsaudit.go).
	OpKMSAudit:   {actor: actorNone},
	OpCreateUser: {actor: actorCO},
	OpDeleteUser: {actor: actorCO},
	OpUnlockUser: {actor: actorCOOrBreakGlass},
	// The login bookkeeping: a reservation before a password is checked,
	// and the verdict when it was wrong. Nobody is logged in yet.
	OpLoginAttempt:  {actor: actorNone},
	OpLoginWrong:    {actor: actorNone},
	OpSetPassword:   {actor: actorCOOrSelf},
	OpCreateObjects: {actor: actorCU},
	OpDestroyObject: {actor: actorObject, action: object.ActDestroy},
	OpSetAttributes: {actor: actorObject, action: object.ActModify},
	OpShare:         {actor: actorObject, action: object.ActShare},
	OpUnshare:       {actor: actorObject, action: object.ActShare},
	OpLogout:        {actor: actorAny},
	OpSetDomainKey:  {actor: actorCO},
	OpRevokeCert:    {actor: actorCO},
	OpSetSetting:    {actor: actorCO},
	// Quorum: only officers register keys, set policy, and ask for,
	// approve and spend tokens (state/quorum.go checks the rest).
	OpQuorumRegisterKey: {actor: actorCO},
	OpQuorumSetPolicy:   {actor: actorCO},
	OpQuorumCreateToken: {actor: actorCO},
	OpQuorumApprove:     {actor: actorCO},
	OpQuorumUse:         {actor: actorCO},
	// KMS (state/kms.go): officers manage principals; principals act on
	// keys and aliases; the nodes' upkeep has no actor and the op decides
	// from the command's time what is due.
	OpKMSPrincipalCreate: {actor: actorCO},
	OpKMSPrincipalDelete: {actor: actorCO},
	OpKMSPrincipalRotate: {actor: actorCO},
	OpKMSCreateKey:       {actor: actorKMSPrincipal},
	OpKMSUpdateKey:       {actor: actorKMSPrincipal},
	OpKMSRotateKey:       {actor: actorKMSPrincipalOrNodes},
	OpKMSImportParams:    {actor: actorKMSPrincipal},
	OpKMSImportMaterial:  {actor: actorKMSPrincipal},
	OpKMSDeleteMaterial:  {actor: actorKMSPrincipal},
	OpKMSAlias:           {actor: actorKMSPrincipal},
	OpKMSUpkeep:          {actor: actorNone},
	OpKMSHSMCluster:      {actor: actorCO},
	OpKMSKeyStore:        {actor: actorKMSPrincipal},
	OpKMSKeyStoreState:   {actor: actorNone},
	OpKMSPrincipalPolicy: {actor: actorCO},
	OpKMSGrant:           {actor: actorKMSPrincipal},
	// C_InitToken on a user's token slot: a crypto officer wipes the
	// user's objects (wipe.go).
	OpWipeToken: {actor: actorCO},
}

// actionFor is the access action a command takes on its object.
func actionFor(a authority, c *Command) object.Action {
	if c.Op == OpSetAttributes && len(c.Changes) > 0 && object.AllTrusted(c.Changes) {
		return object.ActSetTrusted
	}
	return a.action
}

// checkAuthority refuses a command whose actor, at this index, may not make
// it. Refusals are *Error; any other error is the store's own failure.
func checkAuthority(tx Tx, s *seal.Sealer, c *Command) error {
	a, ok := commandAuthority[c.Op]
	if !ok {
		return hsmerr.Errorf(ck.CKR_ACTION_PROHIBITED, "op %q has no authority rule", c.Op)
	}
	if a.actor == actorKMSPrincipal || a.actor == actorKMSPrincipalOrNodes {
		return checkKMSPrincipal(tx, s, c, a.actor == actorKMSPrincipalOrNodes)
	}
	if a.actor == actorNone {
		if c.Actor != "" {
			// Nobody acts through these; a named actor means a forged or
			// confused command.
			return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "%s takes no actor", c.Op)
		}
		return nil
	}
	if c.Actor == "" {
		return hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "%s needs an actor", c.Op)
	}
	if a.actor == actorCOOrBreakGlass && c.Actor == BreakGlassActor {
		return nil // the op checks the proof
	}
	actor, err := userFor(tx, s, c.Actor)
	if err != nil {
		return err
	}
	if actor.Locked && c.Op != OpLogout {
		// A lock that landed after the request was checked ends the
		// session; only its logout still goes through.
		return hsmerr.Errorf(ck.CKR_USER_NOT_LOGGED_IN, "the actor's account is locked")
	}
	switch a.actor {
	case actorAny:
		return nil
	case actorCO, actorCOOrBreakGlass:
		return object.Allowed(actor.Role, object.ActManageUsers, object.RelNone)
	case actorCU:
		return object.Allowed(actor.Role, object.ActCreate, object.RelNone)
	case actorCOOrSelf:
		if c.Name == actor.Name {
			return nil
		}
		return object.Allowed(actor.Role, object.ActManageUsers, object.RelNone)
	case actorObject:
		o, err := loadObject(tx, s, c.ObjectID)
		if err != nil {
			return err
		}
		return object.Allowed(actor.Role, actionFor(a, c), object.RelationOf(actor.Name, o))
	}
	return hsmerr.Errorf(ck.CKR_ACTION_PROHIBITED, "op %q has no valid authority rule", c.Op)
}

// loadObject reads an object and checks its MAC.
func loadObject(tx Tx, s *seal.Sealer, id uint64) (*object.Object, error) {
	o, err := tx.Object(id)
	if errors.Is(err, ErrNotFound) {
		return nil, hsmerr.Errorf(ck.CKR_OBJECT_HANDLE_INVALID, "no such object")
	}
	if err != nil {
		return nil, err
	}
	if !s.CheckAttrMAC(o) {
		return nil, corrupt(tx, hsmerr.Errorf(ck.CKR_GENERAL_ERROR, "object %d failed its integrity check", o.ID))
	}
	return o, nil
}
