package security

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openhsm/openhsm/api"
	"github.com/openhsm/openhsm/cluster/peerpb"

	"github.com/openhsm/openhsm/api/hsmpb"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/hsmd"
	"github.com/openhsm/openhsm/internal/testcluster"
	"github.com/openhsm/openhsm/object"
	"github.com/openhsm/openhsm/pki"
	"github.com/openhsm/openhsm/seal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
)

// loginRaw is a bare gRPC connection to node k with client certificate
// cert ("client" is the one cluster.sh made; others come from
// loginIssueCert): the attacker's own tool, with no client library
// in between to retry or log in again.
type loginRaw struct {
	api  hsmpb.HSMClient
	conn *grpc.ClientConn
}

func loginDial(t *testing.T, c *testcluster.Cluster, k int, cert string) *loginRaw {
	t.Helper()
	dir := filepath.Join(c.Dir, "pki")
	conf, err := pki.ClientConfigFor(pki.CertPath(dir, cert), pki.KeyPath(dir, cert), filepath.Join(dir, "ca.pem"), "localhost")
	require.NoError(t, err)
	conn, err := grpc.NewClient(c.Addr(k), grpc.WithTransportCredentials(credentials.NewTLS(conf)))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return &loginRaw{api: hsmpb.NewHSMClient(conn), conn: conn}
}

// loginIssueCert makes another client certificate from the cluster's CA.
func loginIssueCert(t *testing.T, c *testcluster.Cluster, name string) string {
	t.Helper()
	dir := filepath.Join(c.Dir, "pki")
	ca, err := pki.LoadCA(dir)
	require.NoError(t, err)
	require.NoError(t, ca.IssueClient(dir, name))
	return name
}

func loginCtx(t *testing.T, token string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, api.HeaderSession, token)
	}
	return ctx
}

func (r *loginRaw) login(t *testing.T, user, password string) (*hsmpb.LoginResponse, error) {
	resp, err := r.api.Login(loginCtx(t, ""), &hsmpb.LoginRequest{User: user, Password: password})
	return resp, api.FromStatus(err)
}

var loginRetryIn = regexp.MustCompile(`try again in (\d+)s`)

// loginPatiently logs in, waiting as long as the node says when it
// throttles; it returns the first answer that is not a throttle.
func (r *loginRaw) loginPatiently(t *testing.T, user, password string) (*hsmpb.LoginResponse, error) {
	for i := 0; i < 20; i++ {
		resp, err := r.login(t, user, password)
		if client.RV(err) != ck.CKR_FUNCTION_REJECTED {
			return resp, err
		}
		m := loginRetryIn.FindStringSubmatch(err.Error())
		require.NotNil(t, m, "a throttled login says when to retry: %v", err)
		n, _ := strconv.Atoi(m[1])
		require.LessOrEqual(t, n, 60)
		time.Sleep(time.Duration(n)*time.Second + 100*time.Millisecond)
	}
	t.Fatal("still throttled after 20 waits")
	return nil, nil
}

// loginVerifiedWrong counts, in every node's log, the logins of user that
// were refused after the password was checked (CKR_PIN_INCORRECT: a known
// user's password is reported wrong only once it was verified).
func loginVerifiedWrong(t *testing.T, c *testcluster.Cluster, nodes int, user string) int {
	t.Helper()
	n := 0
	for k := 1; k <= nodes; k++ {
		f, err := os.Open(c.LogFile(k))
		require.NoError(t, err)
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			l := sc.Text()
			if strings.Contains(l, `"msg":"login failed"`) && strings.Contains(l, `"user":"`+user+`"`) &&
				strings.Contains(l, `"ckr":"CKR_PIN_INCORRECT"`) {
				n++
			}
		}
		f.Close()
	}
	return n
}

func loginUser(t *testing.T, co *client.Client, name string) client.UserInfo {
	t.Helper()
	us, err := co.ListUsers(ctx)
	require.NoError(t, err)
	for _, u := range us {
		if u.Name == name {
			return u
		}
	}
	t.Fatalf("no user %s", name)
	return client.UserInfo{}
}

// TestAttackLoginConcurrentGuesses: the attacker holds a client
// certificate and nothing else. Forty wrong guesses sent at once, spread
// over the three nodes, must get at most five passwords checked in the
// whole cluster (counted from the nodes' logs and the store's count), and
// the right password must then be refused as locked on every node.
func TestAttackLoginConcurrentGuesses(t *testing.T) {
	c := testcluster.Start(t, 3)
	admin := pinned(t, c, 1, c.Env["HSM_USER"], c.Env["HSM_PASSWORD"])
	require.NoError(t, admin.CreateUser(ctx, "victim", "CU", "victim-password"))
	// Every node knows the victim before the guesses start: a node that
	// has not applied its creation yet answers "wrong user name or
	// password" without checking anything, which would count here as a
	// guess.
	for k := 2; k <= 3; k++ {
		co := pinned(t, c, k, c.Env["HSM_USER"], c.Env["HSM_PASSWORD"])
		co.AdvanceIndex(admin.Index())
		loginUser(t, co, "victim")
	}
	attacker := []*loginRaw{loginDial(t, c, 1, "client"), loginDial(t, c, 2, "client"), loginDial(t, c, 3, "client")}
	var mu sync.Mutex
	answers := map[string]int{}
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := attacker[i%3].login(t, "victim", fmt.Sprintf("guess-number-%d", i))
			mu.Lock()
			answers[ck.RVName(client.RV(err))]++
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	t.Logf("answers to 40 concurrent guesses: %v", answers)
	assert.LessOrEqual(t, answers["CKR_PIN_INCORRECT"], object.MaxFailedLogins)
	assert.Zero(t, answers["CKR_OK"])
	// Keep guessing one at a time (as the throttle allows) until the
	// account answers locked.
	for i := 0; i < 10; i++ {
		_, err := attacker[0].loginPatiently(t, "victim", fmt.Sprintf("late-guess-%d", i))
		if client.RV(err) == ck.CKR_PIN_LOCKED {
			break
		}
		require.Equal(t, "CKR_PIN_INCORRECT", ck.RVName(client.RV(err)), "%v", err)
	}
	assert.Equal(t, object.MaxFailedLogins, loginVerifiedWrong(t, c, 3, "victim"), "passwords checked, all nodes together")
	u := loginUser(t, admin, "victim")
	assert.True(t, u.Locked)
	assert.Equal(t, object.MaxFailedLogins, u.FailedLogins)
	for k := 1; k <= 3; k++ {
		_, err := loginDial(t, c, k, "client").loginPatiently(t, "victim", "victim-password")
		assert.Equal(t, "CKR_PIN_LOCKED", ck.RVName(client.RV(err)), "the right password on node%d: %v", k, err)
	}
	assert.Equal(t, object.MaxFailedLogins, loginVerifiedWrong(t, c, 3, "victim"))
}

// TestAttackLoginThrottle: the attacker holds client certificates and
// guesses one password after another. After the second failure for an
// account, the next attempt for it, from any certificate, is refused with
// the time to wait; a certificate that failed six times (spraying guesses
// over many accounts) waits before an attempt at any account. A refused
// attempt checks no password and does not count towards the lockout.
func TestAttackLoginThrottle(t *testing.T) {
	c := testcluster.Start(t, 1)
	admin := pinned(t, c, 1, c.Env["HSM_USER"], c.Env["HSM_PASSWORD"])
	for _, u := range []string{"victim", "bystander"} {
		require.NoError(t, admin.CreateUser(ctx, u, "CU", u+"-password"))
	}
	attacker := loginDial(t, c, 1, "client")
	other := loginDial(t, c, 1, loginIssueCert(t, c, "other-app"))
	var throttledErr error
	for i := 0; i < 4 && throttledErr == nil; i++ {
		_, err := attacker.login(t, "victim", fmt.Sprintf("guess-%d", i))
		switch client.RV(err) {
		case ck.CKR_FUNCTION_REJECTED:
			throttledErr = err
		case ck.CKR_PIN_INCORRECT:
		default:
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	require.Error(t, throttledErr, "guessing was never throttled")
	assert.Regexp(t, `try again in [1-9][0-9]*s`, throttledErr.Error())
	assert.NotContains(t, throttledErr.Error(), "guess-")
	checked := loginVerifiedWrong(t, c, 1, "victim")
	counted := loginUser(t, admin, "victim").FailedLogins
	assert.Equal(t, checked, counted)
	assert.Less(t, counted, object.MaxFailedLogins)
	// Another certificate, the same account: it waits too, and the refused
	// attempt is neither checked nor counted.
	_, err := other.login(t, "victim", "another-guess")
	assert.Equal(t, "CKR_FUNCTION_REJECTED", ck.RVName(client.RV(err)), "%v", err)
	assert.Equal(t, checked, loginVerifiedWrong(t, c, 1, "victim"), "a throttled attempt checked a password")
	assert.Equal(t, counted, loginUser(t, admin, "victim").FailedLogins, "a throttled attempt counted")

	// A certificate spraying guesses over accounts: one guess each, until
	// the certificate itself is held back, for every account.
	sprayer := loginDial(t, c, 1, loginIssueCert(t, c, "sprayer"))
	sprayed := 0
	for ; sprayed < 12; sprayed++ {
		_, err := sprayer.login(t, fmt.Sprintf("someone%d", sprayed), "a-sprayed-guess")
		if client.RV(err) == ck.CKR_FUNCTION_REJECTED {
			break
		}
		require.Equal(t, "CKR_PIN_INCORRECT", ck.RVName(client.RV(err)), "%v", err)
	}
	assert.Equal(t, 6, sprayed, "failures before the certificate was held back")
	_, err = sprayer.login(t, "bystander", "a-guess-at-bystander")
	assert.Equal(t, "CKR_FUNCTION_REJECTED", ck.RVName(client.RV(err)), "%v", err)
	assert.Zero(t, loginUser(t, admin, "bystander").FailedLogins)

	// Once the wait is over the owner gets in, and that clears the
	// account's throttle.
	_, err = other.loginPatiently(t, "victim", "victim-password")
	require.NoError(t, err)
	assert.Zero(t, loginUser(t, admin, "victim").FailedLogins)
}

// TestAttackLoginBreakGlassUnlock: the attacker holds a client
// certificate and locks the first officer with five guesses. Whoever holds
// a node's files and the cluster passphrase unlocks it with `hsmd
// unlock-user`, through the log, on all three nodes. A node certificate
// and key alone (a made-up proof), or the same command with a wrong
// passphrase file (a node host's files without the passphrase), is
// refused and changes nothing.
func TestAttackLoginBreakGlassUnlock(t *testing.T) {
	c := testcluster.Start(t, 3)
	user, pass := c.Env["HSM_USER"], c.Env["HSM_PASSWORD"]
	attacker := loginDial(t, c, 2, loginIssueCert(t, c, "attacker"))
	for i := 0; i < 10; i++ {
		_, err := attacker.loginPatiently(t, user, fmt.Sprintf("guess-%d", i))
		if client.RV(err) == ck.CKR_PIN_LOCKED {
			break
		}
	}
	officer := loginDial(t, c, 1, "client")
	_, err := officer.login(t, user, pass)
	require.Equal(t, "CKR_PIN_LOCKED", ck.RVName(client.RV(err)), "the officer is locked out: %v", err)

	// A node certificate and key alone (no passphrase): a made-up proof
	// is refused.
	pkiDir := filepath.Join(c.Dir, "pki")
	nodeConf, err := pki.NodePeerConfig(pki.CertPath(pkiDir, "node2"), pki.KeyPath(pkiDir, "node2"), filepath.Join(pkiDir, "ca.pem"), nil)
	require.NoError(t, err)
	nconn, err := grpc.NewClient(c.Addr(2), grpc.WithTransportCredentials(credentials.NewTLS(nodeConf)))
	require.NoError(t, err)
	defer nconn.Close()
	_, err = peerpb.NewPeerClient(nconn).BreakGlassUnlock(loginCtx(t, ""), &peerpb.BreakGlassRequest{User: user,
		TimeUnix: time.Now().Unix(), Nonce: make([]byte, seal.BreakGlassNonceLen), Mac: make([]byte, 32)})
	assert.Equal(t, "CKR_USER_NOT_LOGGED_IN", ck.RVName(client.RV(api.FromStatus(err))), "a forged break-glass proof: %v", err)
	_, err = officer.login(t, user, pass)
	require.Equal(t, "CKR_PIN_LOCKED", ck.RVName(client.RV(err)), "still locked after the forged unlock: %v", err)

	hsmdBin := filepath.Join(testcluster.Bin(t), "hsmd")
	// A node host without the passphrase: the node's config, certificate
	// and key, and a passphrase file that is not the cluster's.
	wrong := filepath.Join(c.Dir, "wrong-passphrase")
	require.NoError(t, os.WriteFile(wrong, []byte("not-the-cluster-passphrase\n"), 0o600))
	conf, err := os.ReadFile(filepath.Join(c.Dir, "node1.toml"))
	require.NoError(t, err)
	bad := strings.Replace(string(conf), `passphrase_file = "passphrase"`, `passphrase_file = "wrong-passphrase"`, 1)
	require.NotEqual(t, string(conf), bad)
	require.NoError(t, os.WriteFile(filepath.Join(c.Dir, "node1-wrong.toml"), []byte(bad), 0o600))
	out, err := exec.Command(hsmdBin, "unlock-user", "-config", filepath.Join(c.Dir, "node1-wrong.toml"), user).CombinedOutput()
	require.Error(t, err, "unlock with a wrong passphrase: %s", out)
	assert.NotContains(t, string(out), "not-the-cluster-passphrase")
	_, err = officer.login(t, user, pass)
	require.Equal(t, "CKR_PIN_LOCKED", ck.RVName(client.RV(err)), "still locked after the refused unlock: %v", err)

	out, err = exec.Command(hsmdBin, "unlock-user", "-config", filepath.Join(c.Dir, "node3.toml"), user).CombinedOutput()
	require.NoError(t, err, "unlock-user: %s", out)
	for k := 1; k <= 3; k++ {
		raw := loginDial(t, c, k, "client")
		require.Eventually(t, func() bool {
			_, err := raw.login(t, user, pass)
			return err == nil
		}, 20*time.Second, 200*time.Millisecond, "the officer logs in on node%d after the unlock", k)
	}
	for k := 1; k <= 3; k++ {
		logs, err := os.ReadFile(c.LogFile(k))
		require.NoError(t, err)
		assert.NotContains(t, string(logs), secret(t, c, "passphrase"))
	}
}

// loginResetPeak starts node k's VmHWM over from its current RSS.
func loginResetPeak(t *testing.T, c *testcluster.Cluster, k int) {
	t.Helper()
	pid, err := os.ReadFile(filepath.Join(c.Dir, fmt.Sprintf("node%d.pid", k)))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(fmt.Sprintf("/proc/%s/clear_refs", strings.TrimSpace(string(pid))), []byte("5"), 0))
}

// loginPeakRSS is the peak resident set (VmHWM) of node k's process.
func loginPeakRSS(t *testing.T, c *testcluster.Cluster, k int) int64 {
	t.Helper()
	pid, err := os.ReadFile(filepath.Join(c.Dir, fmt.Sprintf("node%d.pid", k)))
	require.NoError(t, err)
	st, err := os.ReadFile(fmt.Sprintf("/proc/%s/status", strings.TrimSpace(string(pid))))
	require.NoError(t, err)
	m := regexp.MustCompile(`VmHWM:\s+(\d+) kB`).FindSubmatch(st)
	require.NotNil(t, m)
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10
}

// TestAttackLoginMemoryCeiling: the attacker holds client certificates
// (four of them) and no password, or one password. 200 logins at once,
// half right and half wrong, then 40 logins whose password field is 15 MiB,
// all over many connections, must keep the daemon's peak memory under the
// ceiling docs/cluster.md states (hsmd.MemoryCeiling); the excess is
// refused as busy, not queued without bound.
func TestAttackLoginMemoryCeiling(t *testing.T) {
	c := testcluster.Start(t, 1)
	cuPass := c.Env["P11_PIN"]
	certs := []string{"client", loginIssueCert(t, c, "app2"), loginIssueCert(t, c, "app3"), loginIssueCert(t, c, "app4")}
	var conns []*loginRaw
	for i := 0; i < 16; i++ {
		conns = append(conns, loginDial(t, c, 1, certs[i%len(certs)]))
	}
	// Start the peak over: unsealing the domain key at start (argon2id
	// with a larger memory cost than passwords) set it.
	loginResetPeak(t, c, 1)
	before := loginPeakRSS(t, c, 1)
	var mu sync.Mutex
	answers := map[string]int{}
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			user, pw := "cu1", cuPass
			if i%2 == 1 {
				user, pw = fmt.Sprintf("nobody%d", i), "a-wrong-password"
			}
			_, err := conns[i%len(conns)].login(t, user, pw)
			mu.Lock()
			answers[ck.RVName(client.RV(err))]++
			if client.RV(err) == ck.CKR_DEVICE_MEMORY {
				answers[err.Error()]++
			}
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	t.Logf("answers to 200 concurrent logins: %v", answers)
	for rv := range answers {
		if !strings.Contains(rv, " ") {
			assert.Contains(t, []string{"CKR_OK", "CKR_PIN_INCORRECT", "CKR_FUNCTION_REJECTED", "CKR_DEVICE_MEMORY"}, rv)
		}
	}
	assert.Positive(t, answers["CKR_OK"])
	afterLogins := loginPeakRSS(t, c, 1)

	huge := strings.Repeat("p", 15<<20)
	answers = map[string]int{}
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := conns[i%len(conns)].api.Login(loginCtx(t, ""), &hsmpb.LoginRequest{User: "cu1", Password: huge})
			mu.Lock()
			answers[ck.RVName(client.RV(api.FromStatus(err)))]++
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	t.Logf("answers to 40 concurrent 15 MiB logins: %v", answers)
	assert.Zero(t, answers["CKR_OK"])
	peak := loginPeakRSS(t, c, 1)
	t.Logf("peak RSS: %d MiB at start, %d MiB after the logins, %d MiB after the large requests; ceiling %d MiB",
		before>>20, afterLogins>>20, peak>>20, hsmd.MemoryCeiling>>20)
	assert.Less(t, peak, int64(hsmd.MemoryCeiling))
	// The node still serves.
	_, err := conns[0].loginPatiently(t, "cu1", cuPass)
	require.NoError(t, err)
}

// TestAttackLoginLogoutLasts: the attacker holds a client certificate and
// a session token the user has logged out (a copy of it, and a refreshed
// one taken before the logout). Neither Refresh nor any call may bring the
// session back, not after the old token's expiry and not after the
// janitor's sweep; and no refresh reaches past the session's absolute end.
func TestAttackLoginLogoutLasts(t *testing.T) {
	c := testcluster.StartWith(t, 1, "session_ttl = \"10s\"\nsession_max_lifetime = \"20s\"\nsession_sweep_interval = \"1s\"\nlog_level = \"debug\"\n")
	raw := loginDial(t, c, 1, "client")
	cuPass := c.Env["P11_PIN"]
	first, err := raw.login(t, "cu1", cuPass)
	require.NoError(t, err)
	kept, err := raw.login(t, "cu1", cuPass) // a session nobody logs out
	require.NoError(t, err)
	maxEnd := time.Now().Add(20 * time.Second).Unix()

	time.Sleep(5 * time.Second)
	refreshed, err := raw.api.Refresh(loginCtx(t, first.Token), &hsmpb.Empty{})
	require.NoError(t, err)
	require.Greater(t, refreshed.ExpiresUnix, first.ExpiresUnix, "a refresh gives a later expiry")
	kept, err = raw.api.Refresh(loginCtx(t, kept.Token), &hsmpb.Empty{})
	require.NoError(t, err)
	_, err = raw.api.Logout(loginCtx(t, first.Token), &hsmpb.Empty{})
	require.NoError(t, err)

	refused := func(what, token string) {
		t.Helper()
		_, err := raw.api.Refresh(loginCtx(t, token), &hsmpb.Empty{})
		assert.Equal(t, "CKR_USER_NOT_LOGGED_IN", ck.RVName(client.RV(api.FromStatus(err))), "%s: Refresh: %v", what, err)
		_, err = raw.api.ListUsers(loginCtx(t, token), &hsmpb.Empty{})
		assert.Equal(t, "CKR_USER_NOT_LOGGED_IN", ck.RVName(client.RV(api.FromStatus(err))), "%s: ListUsers: %v", what, err)
	}
	refused("the logged-out token", first.Token)
	refused("the refreshed token", refreshed.Token)

	// Past the first token's expiry, with a sweep after it, the refreshed
	// token (not yet expired) is still refused, as logged out.
	require.Eventually(t, func() bool { return time.Now().Unix() > first.ExpiresUnix+1 }, 20*time.Second, 100*time.Millisecond)
	sweeps := func() int {
		b, err := os.ReadFile(c.LogFile(1))
		require.NoError(t, err)
		return strings.Count(string(b), `"msg":"session sweep"`)
	}
	n := sweeps()
	require.Eventually(t, func() bool { return sweeps() > n }, 10*time.Second, 100*time.Millisecond, "the janitor sweeps")
	require.Less(t, time.Now().Unix(), refreshed.ExpiresUnix, "the test ran too slowly to check the refreshed token before its expiry")
	_, err = raw.api.ListUsers(loginCtx(t, refreshed.Token), &hsmpb.Empty{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "logged out")
	refused("the refreshed token after the sweep", refreshed.Token)

	// The session nobody logged out refreshes, but never past its end.
	again, err := raw.api.Refresh(loginCtx(t, kept.Token), &hsmpb.Empty{})
	require.NoError(t, err)
	assert.LessOrEqual(t, again.ExpiresUnix, maxEnd+1, "a refresh outlived the session's absolute end")
}

// TestAttackLoginRecreatedUser: the attacker holds a client certificate
// and the session token of a crypto user that was then deleted; an officer
// of the same name (and password) now exists. The old token must be
// refused for every call, officer calls above all.
func TestAttackLoginRecreatedUser(t *testing.T) {
	c := testcluster.Start(t, 1)
	admin := pinned(t, c, 1, c.Env["HSM_USER"], c.Env["HSM_PASSWORD"])
	require.NoError(t, admin.CreateUser(ctx, "ghost", "CU", "ghost-password"))
	raw := loginDial(t, c, 1, "client")
	old, err := raw.login(t, "ghost", "ghost-password")
	require.NoError(t, err)
	_, err = raw.api.ListUsers(loginCtx(t, old.Token), &hsmpb.Empty{})
	require.NoError(t, err, "the token works before the delete")

	require.NoError(t, admin.DeleteUser(ctx, "ghost"))
	require.NoError(t, admin.CreateUser(ctx, "ghost", "CO", "ghost-password"))
	_, err = raw.login(t, "ghost", "ghost-password")
	require.NoError(t, err, "the new officer logs in")

	tok := func() context.Context { return loginCtx(t, old.Token) }
	calls := map[string]func() error{
		"Refresh":   func() error { _, err := raw.api.Refresh(tok(), &hsmpb.Empty{}); return err },
		"ListUsers": func() error { _, err := raw.api.ListUsers(tok(), &hsmpb.Empty{}); return err },
		"CreateUser": func() error {
			_, err := raw.api.CreateUser(tok(), &hsmpb.CreateUserRequest{User: "mole", Role: "CO", Password: "mole-password"})
			return err
		},
		"DeleteUser": func() error { _, err := raw.api.DeleteUser(tok(), &hsmpb.UserRequest{User: "cu1"}); return err },
		"SetPassword": func() error {
			_, err := raw.api.SetPassword(tok(), &hsmpb.SetPasswordRequest{User: "cu1", Password: "taken-over-1"})
			return err
		},
		"UnlockUser":     func() error { _, err := raw.api.UnlockUser(tok(), &hsmpb.UserRequest{User: "cu1"}); return err },
		"ListObjects":    func() error { _, err := raw.api.ListObjects(tok(), &hsmpb.FindObjectsRequest{}); return err },
		"GenerateRandom": func() error { _, err := raw.api.GenerateRandom(tok(), &hsmpb.RandomRequest{Length: 16}); return err },
		"CreateBackup": func() error {
			s, err := raw.api.CreateBackup(tok(), &hsmpb.Empty{})
			if err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		},
		"Logout": func() error { _, err := raw.api.Logout(tok(), &hsmpb.Empty{}); return err },
	}
	for name, call := range calls {
		err := call()
		assert.Equal(t, "CKR_USER_NOT_LOGGED_IN", ck.RVName(client.RV(api.FromStatus(err))), "%s with the old token: %v", name, err)
	}
	for _, u := range []string{"mole"} {
		for _, have := range mustUsers(t, admin) {
			assert.NotEqual(t, u, have)
		}
	}
	_, err = pinned(t, c, 1, "", "").Info(ctx)
	require.NoError(t, err)
	require.NoError(t, api.FromStatus(func() error { _, err := raw.login(t, "cu1", c.Env["P11_PIN"]); return err }()),
		"cu1's password was not changed")
}

func mustUsers(t *testing.T, co *client.Client) []string {
	t.Helper()
	us, err := co.ListUsers(ctx)
	require.NoError(t, err)
	var out []string
	for _, u := range us {
		out = append(out, u.Name)
	}
	return out
}

// TestAttackLoginLogoutUnreplicated: the attacker holds a client
// certificate and a copy of a session token. The user logs out while the
// node cannot reach a majority: the logout cannot be recorded in the log,
// so the other nodes would still accept the token. The user must be told
// (an error, not OK), and the node that was asked refuses the token.
func TestAttackLoginLogoutUnreplicated(t *testing.T) {
	c := testcluster.Start(t, 3)
	raw := loginDial(t, c, 1, "client")
	sess, err := raw.login(t, "cu1", c.Env["P11_PIN"])
	require.NoError(t, err)
	c.Stop(2, false)
	c.Stop(3, false)
	_, err = raw.api.Logout(loginCtx(t, sess.Token), &hsmpb.Empty{})
	require.Error(t, err, "a logout the cluster did not record answered OK")
	t.Logf("logout without a majority: %v", err)
	assert.NotContains(t, err.Error(), sess.Token)
	// The node asked refuses the session: either it took the logout and
	// refuses the token, or (its lease with a leader run out, as it is
	// within a couple of seconds without a majority) it refuses every
	// authenticated call until it is back in contact.
	_, err = raw.api.ListUsers(loginCtx(t, sess.Token), &hsmpb.Empty{})
	require.Error(t, err, "the session still works on the node that was asked")
	switch rv := ck.RVName(client.RV(api.FromStatus(err))); rv {
	case "CKR_USER_NOT_LOGGED_IN":
	case "CKR_DEVICE_ERROR":
		assert.Contains(t, err.Error(), "not in contact with the cluster's leader")
	default:
		t.Errorf("the session was refused with %s: %v", rv, err)
	}
}
