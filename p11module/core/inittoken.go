package core

// C_InitToken (docs/pkcs11-library.md, "C_InitToken"). On a crypto user's
// token slot a crypto officer wipes the user's token: every object the
// user owns that can be destroyed goes, in one replicated command
// (state/wipe.go); the user, their password and their slot stay. pPin is
// the officer's "officer:password", as for CKU_SO; pLabel must be the
// slot's token label (the user's name, blank padded), which confirms which
// user's objects go. The cluster slot's token is not a user's and cannot
// be initialized.

import (
	"bytes"
	"strings"

	"github.com/openhsm/openhsm/ck"
)

// InitToken wipes a crypto user's token.
func (m *Module) InitToken(id uint64, pin, label []byte) error {
	m.mu.Lock()
	sl, err := m.slotByID(id)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	if sl.user == "" {
		m.mu.Unlock()
		return errorf(ck.CKR_FUNCTION_NOT_SUPPORTED, "the cluster slot's token cannot be initialized: C_InitToken wipes a crypto user's token slot")
	}
	// PKCS#11: C_InitToken cannot be called while sessions are open on
	// the token (this application's; other applications' are theirs).
	if m.slotInUse(id) {
		m.mu.Unlock()
		return errorf(ck.CKR_SESSION_EXISTS, "close this slot's sessions first")
	}
	user := sl.user
	var want [32]byte
	pad(want[:], sl.label)
	m.mu.Unlock()
	if pin == nil || label == nil {
		return errorf(ck.CKR_ARGUMENTS_BAD, "no PIN or label")
	}
	// The label confirms the wipe; a wrong one changes nothing and
	// costs no login.
	if !bytes.Equal(label, want[:]) {
		return errorf(ck.CKR_ARGUMENTS_BAD, "the label must be the token's label, which confirms whose objects are destroyed")
	}
	officer, password, ok := strings.Cut(string(pin), ":")
	if !ok || officer == "" || password == "" {
		return errorf(ck.CKR_PIN_INCORRECT, "the PIN must be officer:password")
	}
	c, err := m.connectAs(officer, password)
	if err != nil {
		return err
	}
	defer m.dropClient(c)
	if c.Role() != "CO" {
		return errorf(ck.CKR_PIN_INCORRECT, "%s is not a crypto officer", officer)
	}
	ctx, cancel := m.ctx()
	defer cancel()
	if err := m.quorumNote("C_InitToken", c.WipeToken(ctx, user)); err != nil {
		return err
	}
	m.log.Info("C_InitToken wiped a token", "slot", id, "user", user, "officer", officer)
	return nil
}
