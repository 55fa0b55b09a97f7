package state_test

import (
	"context"
	"testing"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/state"
)

// Logouts go through the log: every node hears of them through the machine's observer,
// and the list in the store forgets sessions whose tokens have expired.
func TestLogoutReplicated(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	heard := map[uint64]int64{}
	f.spy.loggedOut = func(s uint64, exp int64) { heard[s] = exp }
	now := int64(1_800_000_000)
	apply := func(session uint64, time, exp int64) error {
		return f.rec.Submit(ctx, &state.Command{Op: state.OpLogout, Actor: "alice", Time: time, Session: session, Expires: exp})
	}
	if err := apply(7, now, now+600); err != nil {
		t.Fatal(err)
	}
	if err := apply(8, now+10, now+610); err != nil {
		t.Fatal(err)
	}
	// Session 7's token expired by this command's time: it is dropped.
	if err := apply(9, now+601, now+1200); err != nil {
		t.Fatal(err)
	}
	list, err := state.LoggedOut(f.m.Store().Meta)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[8] != now+610 || list[9] != now+1200 {
		t.Fatalf("logged out: %v", list)
	}
	if len(heard) != 3 || heard[7] != now+600 {
		t.Fatalf("OnLogout heard %v", heard)
	}
	// Bad commands change nothing.
	wantRV(t, "no session", apply(0, now, now+600), ck.CKR_ARGUMENTS_BAD)
	wantRV(t, "no expiry", apply(5, now, 0), ck.CKR_ARGUMENTS_BAD)
	err = f.rec.Submit(ctx, &state.Command{Op: state.OpLogout, Actor: "nobody", Time: now, Session: 5, Expires: now + 1})
	wantRV(t, "unknown user", err, ck.CKR_USER_PIN_NOT_INITIALIZED)
	if again, _ := state.LoggedOut(f.m.Store().Meta); len(again) != 2 {
		t.Fatalf("a refused logout changed the list: %v", again)
	}
}
