package state

import (
	"errors"
	"slices"
	"sort"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/quorum"
	"github.com/openhsm/openhsm/seal"
)

// Cluster settings are replicated state: a crypto officer changes one
// through the log (OpSetSetting), so every node applies the same value at
// the same index, a restarted node reads it from its store, and snapshots
// and backups carry it (it is a meta row). Each setting is a row of the
// table below: its allowed values and its default.

// SettingPublicObjects says whether PKCS#11 public sessions (a client
// certificate, no login) may find and read a token's public objects
// (CKA_PRIVATE false). "on" (the default) or "off". Public session objects
// are not governed by it (docs/pkcs11-library.md, "Before login").
const SettingPublicObjects = "public_objects"

type settingRule struct {
	values []string
	def    string
	safe   string // what a malformed stored value reads as
}

var settingRules = map[string]settingRule{
	SettingPublicObjects: {values: []string{"on", "off"}, def: "on", safe: "off"},
}

// metaSettingPrefix starts the meta key of every setting.
const metaSettingPrefix = "setting/"

// SettingNames lists the settings, sorted.
func SettingNames() []string {
	out := make([]string, 0, len(settingRules))
	for n := range settingRules {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// CheckSetting refuses an unknown setting or a value it does not take.
func CheckSetting(name, value string) error {
	r, ok := settingRules[name]
	if !ok {
		return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "no cluster setting %q (there are: %v)", name, SettingNames())
	}
	if !slices.Contains(r.values, value) {
		return hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "%s takes %v", name, r.values)
	}
	return nil
}

// Setting reads a setting's value, its default when it was never set.
func Setting(get func(string) ([]byte, error), name string) (string, error) {
	r, ok := settingRules[name]
	if !ok {
		return "", hsmerr.Errorf(ck.CKR_ARGUMENTS_BAD, "no cluster setting %q", name)
	}
	b, err := get(metaSettingPrefix + name)
	if errors.Is(err, ErrNotFound) {
		return r.def, nil
	}
	if err != nil {
		return "", err
	}
	if !slices.Contains(r.values, string(b)) {
		// A value no apply could have written: the safe side.
		return r.safe, nil
	}
	return string(b), nil
}

// applySetSetting stores a setting. Only a crypto officer that exists at
// this index reaches it (commandAuthority, checked at the command's index
// like every op's); the value is checked again here.
func applySetSetting(tx Tx, s *seal.Sealer, c *Command) ([]uint64, error) {
	if err := CheckSetting(c.Name, c.Value); err != nil {
		return nil, err
	}
	// A setting decides what users' tokens show without a login, so it
	// takes the user-management quorum, as wiping a token does.
	if err := quorumCheck(tx, s, c, quorum.ServiceUserManagement); err != nil {
		return nil, err
	}
	return nil, tx.PutMeta(metaSettingPrefix+c.Name, []byte(c.Value))
}
