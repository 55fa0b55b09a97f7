package state_test

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/engine"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/passwords"
	"github.com/openhsm/openhsm/seal"
	"github.com/openhsm/openhsm/state"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Forty wrong guesses at once: the reservations are decided one by one in
// apply, so exactly five passwords are checked and the rest are refused
// as locked without hashing; then the right password is refused too.
func TestLoginConcurrentGuessesVerifyAtMostFive(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	e := engine.NewEngine(f.m, nil, engine.Options{}) // a LocalApplier: safe for concurrent use
	before := passwords.ArgonRuns()
	var mu sync.Mutex
	rvs := map[uint64]int{}
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.Login(ctx, "alice", "wrong-password")
			mu.Lock()
			rvs[hsmerr.RV(err)]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	assert.Equal(t, object.MaxFailedLogins, rvs[ck.CKR_PIN_INCORRECT], "answers: %v", rvs)
	assert.Equal(t, 40-object.MaxFailedLogins, rvs[ck.CKR_PIN_LOCKED], "answers: %v", rvs)
	assert.Equal(t, int64(object.MaxFailedLogins), passwords.ArgonRuns()-before, "passwords hashed")
	_, err := e.Login(ctx, "alice", "alice-password")
	wantRV(t, "right password after the burst", err, ck.CKR_PIN_LOCKED)
	users, err := e.ListUsers(f.co)
	require.NoError(t, err)
	for _, u := range users {
		if u.Name == "alice" {
			assert.True(t, u.Locked)
			assert.Equal(t, object.MaxFailedLogins, u.FailedLogins)
		}
	}
}

// The login commands one at a time, as apply sees them from concurrent
// logins on several nodes.
func TestLoginAttemptApplyTable(t *testing.T) {
	type step struct {
		op   state.Op
		want uint64 // CKR of the command
	}
	att, wrong, ok := state.OpLoginAttempt, state.OpLoginWrong, state.OpLoginOK
	cases := []struct {
		name       string
		steps      []step
		locked     bool
		failedLeft int
	}{
		{"five reserved, all wrong: locked", []step{{att, 0}, {att, 0}, {att, 0}, {att, 0}, {att, 0}, {att, ck.CKR_PIN_LOCKED},
			{wrong, 0}, {wrong, 0}, {wrong, 0}, {wrong, 0}, {wrong, 0}}, true, 5},
		{"a sixth reservation waits for no verdict", []step{{att, 0}, {att, 0}, {att, 0}, {att, 0}, {att, 0}, {att, ck.CKR_PIN_LOCKED}}, false, 5},
		{"four wrong, the fifth right: open", []step{{att, 0}, {wrong, 0}, {att, 0}, {wrong, 0}, {att, 0}, {wrong, 0}, {att, 0}, {wrong, 0},
			{att, 0}, {ok, 0}}, false, 0},
		{"the lock lands before the right one's verdict", []step{{att, 0}, {att, 0}, {att, 0}, {att, 0}, {att, 0},
			{wrong, 0}, {wrong, 0}, {wrong, 0}, {wrong, 0}, {ok, ck.CKR_PIN_LOCKED}}, true, 5},
		{"a right verdict first resets; the wrong ones after it do not lock", []step{{att, 0}, {att, 0}, {att, 0}, {att, 0}, {att, 0},
			{ok, 0}, {wrong, 0}, {wrong, 0}, {wrong, 0}, {wrong, 0}}, false, 0},
		{"an old login_failed still counts and locks", []step{{state.OpLoginFailed, 0}, {state.OpLoginFailed, 0}, {state.OpLoginFailed, 0},
			{state.OpLoginFailed, 0}, {state.OpLoginFailed, 0}, {att, ck.CKR_PIN_LOCKED}}, true, 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			l := &engine.LocalApplier{M: f.m}
			for i, s := range tc.steps {
				err := l.Submit(context.Background(), &state.Command{Op: s.op, Name: "alice"})
				require.Equal(t, ck.RVName(s.want), ck.RVName(hsmerr.RV(err)), "step %d (%s): %v", i, s.op, err)
			}
			u, err := f.m.Store().User("alice")
			require.NoError(t, err)
			assert.Equal(t, tc.locked, u.Locked, "locked")
			assert.Equal(t, tc.failedLeft, u.FailedLogins, "count")
		})
	}
}

// unlock_user by the break-glass actor: apply takes only a proof made
// under this cluster's domain key, for that name, near the command's time.
func TestBreakGlassUnlockApply(t *testing.T) {
	f := newFixture(t)
	other, _, err := seal.NewDomainKey("other", seal.KEKSource{KeyFile: bytes.Repeat([]byte{4}, 32)})
	require.NoError(t, err)
	sealer := f.m.Sealer()
	const now = 1_800_000_000
	good, err := sealer.NewBreakGlass("alice", now)
	require.NoError(t, err)
	forBob, err := sealer.NewBreakGlass("bob", now)
	require.NoError(t, err)
	foreign, err := other.NewBreakGlass("alice", now)
	require.NoError(t, err)
	stale, err := sealer.NewBreakGlass("alice", now-seal.BreakGlassWindow-1)
	require.NoError(t, err)
	cases := []struct {
		name  string
		actor string
		proof *seal.BreakGlass
		want  uint64
	}{
		{"no proof", state.BreakGlassActor, nil, ck.CKR_USER_NOT_LOGGED_IN},
		{"another name's proof", state.BreakGlassActor, forBob, ck.CKR_USER_NOT_LOGGED_IN},
		{"another cluster's key", state.BreakGlassActor, foreign, ck.CKR_USER_NOT_LOGGED_IN},
		{"too old", state.BreakGlassActor, stale, ck.CKR_USER_NOT_LOGGED_IN},
		{"a proof under an officer's name", "admin", good, ck.CKR_ARGUMENTS_BAD},
		{"the passphrase holder's proof", state.BreakGlassActor, good, ck.CKR_OK},
	}
	l := &engine.LocalApplier{M: f.m}
	for i := 0; i < object.MaxFailedLogins; i++ {
		require.NoError(t, l.Submit(context.Background(), &state.Command{Op: state.OpLoginFailed, Name: "alice"}))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := l.Submit(context.Background(), &state.Command{Op: state.OpUnlockUser, Actor: tc.actor, Name: "alice",
				Time: now, BreakGlass: tc.proof})
			require.Equal(t, ck.RVName(tc.want), ck.RVName(hsmerr.RV(err)), "%v", err)
			u, err := f.m.Store().User("alice")
			require.NoError(t, err)
			assert.Equal(t, tc.want != ck.CKR_OK, u.Locked, "locked afterwards")
		})
	}
}

// A token names a user by name and number: the same name made again is
// another user.
func TestCheckUserNumber(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	u, err := f.e.Login(ctx, "alice", "alice-password")
	require.NoError(t, err)
	_, err = f.e.CheckUser("alice", u.Number, u.Generation)
	require.NoError(t, err)
	require.NoError(t, f.e.DeleteUser(ctx, f.co, "alice"))
	require.NoError(t, f.e.CreateUser(ctx, f.co, "alice", object.RoleCO, "alice-password"))
	again, err := f.e.Login(ctx, "alice", "alice-password")
	require.NoError(t, err)
	require.Equal(t, u.Generation, again.Generation, "the generation restarts: it alone cannot tell the two apart")
	_, err = f.e.CheckUser("alice", u.Number, u.Generation)
	wantRV(t, "the old user's session", err, ck.CKR_USER_NOT_LOGGED_IN)
}
