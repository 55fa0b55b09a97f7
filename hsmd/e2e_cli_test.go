package hsmd_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/object"
)

// TestCLI drives the hsm admin CLI against a real daemon: users, keys,
// shares and --json output.
func TestCLI(t *testing.T) {
	cl := testcluster.Start(t, 1)
	co := []string{"HSM_USER=" + cl.Env["HSM_USER"], "HSM_PASSWORD=" + cl.Env["HSM_PASSWORD"]}
	run := func(env []string, args ...string) string {
		t.Helper()
		out, err := cl.HSM(env, args...)
		if err != nil {
			t.Fatalf("hsm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	fails := func(env []string, args ...string) string {
		t.Helper()
		out, err := cl.HSM(env, args...)
		if err == nil {
			t.Fatalf("hsm %s succeeded:\n%s", strings.Join(args, " "), out)
		}
		return string(out)
	}
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("bob-password-1\n"), 0o600)
	run(co, "user", "create", "bob", "--role", "CU", "--new-password-file", pw)

	var users []map[string]any
	if err := json.Unmarshal([]byte(run(co, "user", "list", "--json")), &users); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, u := range users {
		names[fmt.Sprint(u["name"])] = true
	}
	for _, n := range []string{"admin", "cu1", "bob"} {
		if !names[n] {
			t.Errorf("user list lacks %s: %v", n, users)
		}
	}
	cu := []string{"HSM_USER=cu1", "HSM_PASSWORD=" + cl.Env["P11_PIN"]}
	out := fails(cu, "user", "create", "eve", "--role", "CU", "--new-password-file", pw)
	if !strings.Contains(out, "CKR_USER_NOT_LOGGED_IN") {
		t.Errorf("a crypto user creating a user: %s", out)
	}

	// A key made through the client library shows up in key list.
	c := dial(t, cl, "cu1", cl.Env["P11_PIN"])
	id := must(c.GenerateKey(ctx, mech.Mech{Type: ck.CKM_AES_KEY_GEN},
		object.Template{ul(ck.CKA_VALUE_LEN, 32), bo(ck.CKA_TOKEN, true), by(ck.CKA_LABEL, []byte("cli-key"))}))(t)
	var keys []map[string]any
	if err := json.Unmarshal([]byte(run(cu, "key", "list", "--json", "--label", "cli-key")), &keys); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || fmt.Sprint(keys[0]["label"]) != "cli-key" {
		t.Fatalf("key list: %v", keys)
	}
	sid := fmt.Sprint(id)
	run(cu, "key", "share", sid, "bob")
	bob := []string{"HSM_USER=bob", "HSM_PASSWORD=bob-password-1"}
	if out := run(bob, "key", "list"); !strings.Contains(out, "cli-key") {
		t.Errorf("bob does not see the shared key:\n%s", out)
	}
	fails(bob, "key", "delete", sid)
	run(cu, "key", "unshare", sid, "bob")
	if out := run(bob, "key", "list"); strings.Contains(out, "cli-key") {
		t.Errorf("bob still sees the key after unshare:\n%s", out)
	}
	fails(co, "user", "delete", "cu1") // owns keys
	run(cu, "key", "delete", sid)

	// reset, lock, unlock.
	os.WriteFile(pw, []byte("bob-password-2\n"), 0o600)
	run(co, "user", "reset", "bob", "--new-password-file", pw)
	fails(bob, "key", "list")
	bob = []string{"HSM_USER=bob", "HSM_PASSWORD=bob-password-2"}
	// Failed logins are throttled: wait as the node says.
	patiently := func(env []string) string {
		for i := 0; ; i++ {
			out := fails(env, "key", "list")
			m := regexp.MustCompile(`try again in (\d+)s`).FindStringSubmatch(out)
			if m == nil || i == 10 {
				return out
			}
			n, _ := strconv.Atoi(m[1])
			time.Sleep(time.Duration(n)*time.Second + 100*time.Millisecond)
		}
	}
	for i := 0; i < 5; i++ {
		patiently([]string{"HSM_USER=bob", "HSM_PASSWORD=wrong-password"})
	}
	if out := patiently(bob); !strings.Contains(out, "CKR_PIN_LOCKED") {
		t.Errorf("locked account: %s", out)
	}
	run(co, "user", "unlock", "bob")
	run(bob, "key", "list")
	run(co, "user", "delete", "bob")
	if out := run(co, "user", "list"); strings.Contains(out, "bob") {
		t.Errorf("bob still listed:\n%s", out)
	}
	for _, secret := range []string{cl.Env["HSM_PASSWORD"], cl.Env["P11_PIN"], "bob-password"} {
		if strings.Contains(out, secret) {
			t.Error("CLI output holds a password")
		}
	}
}
