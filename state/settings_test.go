package state_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/state"
)

// Cluster settings go through apply: only a crypto officer's command lands,
// only known settings and values; the default holds until one does.
func TestSettingApply(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	get := func() string {
		v, err := state.Setting(f.m.Store().Meta, state.SettingPublicObjects)
		require.NoError(t, err)
		return v
	}
	apply := func(actor, name, value string) error {
		return f.rec.Submit(ctx, &state.Command{Op: state.OpSetSetting, Actor: actor, Name: name, Value: value})
	}
	assert.Equal(t, "on", get(), "the default")
	require.NoError(t, apply("admin", state.SettingPublicObjects, "off"))
	assert.Equal(t, "off", get())
	for _, c := range []struct {
		what, actor, name, value string
		rv                       uint64
	}{
		{"a crypto user", "alice", state.SettingPublicObjects, "on", ck.CKR_USER_NOT_LOGGED_IN},
		{"no actor", "", state.SettingPublicObjects, "on", ck.CKR_USER_NOT_LOGGED_IN},
		{"an unknown setting", "admin", "no_such_setting", "on", ck.CKR_ARGUMENTS_BAD},
		{"a bad value", "admin", state.SettingPublicObjects, "yes", ck.CKR_ARGUMENTS_BAD},
	} {
		wantRV(t, c.what, apply(c.actor, c.name, c.value), c.rv)
		assert.Equal(t, "off", get(), "%s changed the setting", c.what)
	}
	// Through the engine: an officer sets, a crypto user reads but cannot set.
	wantRV(t, "engine CU", f.e.SetSetting(ctx, f.alice, state.SettingPublicObjects, "on"), ck.CKR_USER_NOT_LOGGED_IN)
	require.NoError(t, f.e.SetSetting(ctx, f.co, state.SettingPublicObjects, "on"))
	m, err := f.e.Settings(f.alice)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{state.SettingPublicObjects: "on"}, m)
	assert.True(t, f.e.PublicObjects())
	_, err = f.e.Settings(engine.Caller{User: "alice", Role: object.RolePublic, Session: 3})
	wantRV(t, "a public session reads settings", err, ck.CKR_USER_NOT_LOGGED_IN)
}
