package core

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/hsmerr"
)

// handoffFiles writes a client configuration with its CA, certificate and
// key (their bytes only matter here, not their meaning) and returns its
// path.
func handoffFiles(t *testing.T) string {
	d := t.TempDir()
	for name, body := range map[string]string{"ca.pem": "CA BYTES", "client.pem": "CERT BYTES", "client-key.pem": "KEY BYTES"} {
		require.NoError(t, os.WriteFile(filepath.Join(d, name), []byte(body), 0o600))
	}
	cfg := `nodes = ["127.0.0.1:4001", "127.0.0.1:4002"]
ca = "ca.pem"
cert = "client.pem"
key = "client-key.pem"
server_name = "hsm.example"
log_file = "p11.log"
log_level = "debug"
timeout = "7s"
health_interval = "3s"
[pkcs11]
helper = "/opt/openhsm/openhsm-p11-helper"
`
	p := filepath.Join(d, "client.toml")
	require.NoError(t, os.WriteFile(p, []byte(cfg), 0o600))
	return p
}

// TestSnapshotHandoff: what a privileged parent keeps is what the helper's
// Initialize gets: the configuration as the file said it, the bytes of the
// three files, and the log, open for appending and close-on-exec.
func TestSnapshotHandoff(t *testing.T) {
	path := handoffFiles(t)
	parent := NewModule()
	parent.loadConfig = func() (*client.Config, error) { return client.LoadConfig(path) }
	blob, logFD, err := parent.Snapshot()
	require.NoError(t, err)
	require.GreaterOrEqual(t, logFD, 0)
	t.Cleanup(func() { syscall.Close(logFD) })
	assert.True(t, bytes.HasPrefix(blob, []byte(handoffMagic)))

	flags, err := fcntl(logFD, syscall.F_GETFD)
	require.NoError(t, err)
	assert.NotZero(t, flags&syscall.FD_CLOEXEC, "the log is close-on-exec")
	_, err = syscall.Write(logFD, []byte("through the kept log\n"))
	require.NoError(t, err)
	logged, err := os.ReadFile(filepath.Join(filepath.Dir(path), "p11.log"))
	require.NoError(t, err)
	assert.Equal(t, "through the kept log\n", string(logged))

	child := NewModule()
	child.loadConfig = func() (*client.Config, error) {
		t.Error("the helper read the configuration file despite the handoff")
		return nil, errors.New("no")
	}
	require.NoError(t, child.Handoff(blob))
	assert.Equal(t, make([]byte, len(blob)), blob, "Handoff clears what it was given")
	require.NotNil(t, child.handoff)
	ho := child.handoff
	assert.Equal(t, os.Getpid(), ho.from)
	assert.Equal(t, client.ConfigPathFromEnv(), ho.config)
	assert.True(t, ho.logFD)

	want, err := client.LoadConfig(path)
	require.NoError(t, err)
	want.Creds = &client.Credentials{CA: []byte("CA BYTES"), Cert: []byte("CERT BYTES"), Key: []byte("KEY BYTES")}
	assert.Equal(t, want, ho.cfg)

	// Initialize uses it: the dial gets the bytes, no file is read.
	ho.logFD = false // the test process's fd 3 is not a log
	ho.cfg.LogFile = ""
	var dialed *client.Config
	child.dial = func(_ context.Context, cfg *client.Config) (*client.Client, error) {
		dialed = cfg
		return nil, errors.New("no cluster here")
	}
	err = child.Initialize(0)
	assert.Equal(t, uint64(ck.CKR_DEVICE_ERROR), hsmerr.RV(err))
	require.NotNil(t, dialed)
	assert.Equal(t, want.Creds, dialed.Creds)
	assert.Equal(t, []string{"127.0.0.1:4001", "127.0.0.1:4002"}, dialed.Nodes)
	assert.Equal(t, 7*time.Second, dialed.Timeout)
}

func fcntl(fd, cmd int) (int, error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), uintptr(cmd), 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// TestSnapshotAfterInitialize: an initialized module hands over what it
// read at C_Initialize, without reading the files again.
func TestSnapshotAfterInitialize(t *testing.T) {
	path := handoffFiles(t)
	m := NewModule()
	m.loadConfig = func() (*client.Config, error) { return client.LoadConfig(path) }
	cfg, err := m.loadConfig()
	require.NoError(t, err)
	cfg.Creds = &client.Credentials{CA: []byte("ca read at init"), Cert: []byte("c"), Key: []byte("k")}
	cfg.LogFile = ""
	m.mu.Lock()
	m.initialized, m.cfg = true, cfg
	m.mu.Unlock()
	blob, logFD, err := m.Snapshot()
	require.NoError(t, err)
	assert.Equal(t, -1, logFD, "no log file: standard error")
	child := NewModule()
	require.NoError(t, child.Handoff(blob))
	assert.Equal(t, "ca read at init", string(child.handoff.cfg.Creds.CA))
	assert.False(t, child.handoff.logFD)
}

// TestSnapshotUnreadable: a file the parent cannot read is an error naming
// it, and nothing is kept.
func TestSnapshotUnreadable(t *testing.T) {
	path := handoffFiles(t)
	require.NoError(t, os.Remove(filepath.Join(filepath.Dir(path), "client-key.pem")))
	m := NewModule()
	m.loadConfig = func() (*client.Config, error) {
		cfg, err := client.LoadConfig(path)
		return cfg, err
	}
	blob, logFD, err := m.Snapshot()
	require.Error(t, err)
	assert.Nil(t, blob)
	assert.Equal(t, -1, logFD)
	assert.Contains(t, err.Error(), "client-key.pem")
}

// TestHandoffRefused: a handoff this helper cannot read is an error that
// says why, and changes nothing.
func TestHandoffRefused(t *testing.T) {
	for name, blob := range map[string][]byte{
		"empty":         nil,
		"other magic":   []byte("openhsm-p11-handoff/2\n{}"),
		"not JSON":      []byte(handoffMagic + "{"),
		"too big":       append([]byte(handoffMagic), make([]byte, maxHandoff)...),
		"wrong type":    []byte(handoffMagic + `{"Nodes": 5}`),
		"only magic":    []byte(handoffMagic),
		"trailing junk": []byte(handoffMagic + `{} x`),
	} {
		t.Run(name, func(t *testing.T) {
			m := NewModule()
			err := m.Handoff(bytes.Clone(blob))
			require.Error(t, err)
			assert.Contains(t, err.Error(), "credentials handed over by the parent")
			assert.Nil(t, m.handoff)
		})
	}
}

// handoffBackend is a recording Backend that takes handoffs.
type handoffBackend struct {
	*recBackend
	got       []byte
	handoffEr error
}

func (b *handoffBackend) Handoff(blob []byte) error {
	b.got = bytes.Clone(blob)
	b.rec("Handoff")
	return b.handoffEr
}

// TestDispatchHandoff: C_Initialize's b item reaches Handoff before
// Initialize; a handoff refused fails C_Initialize with the reason in the e
// item, without Initialize.
func TestDispatchHandoff(t *testing.T) {
	b := &handoffBackend{recBackend: newRecBackend()}
	d := &Dispatcher{B: b}
	reply := d.Call(encodeRequest(t, fnInitialize, 0, []byte("the handoff")))
	rv, items, err := decodeReply(t, fnInitialize, reply, 0)
	require.NoError(t, err)
	assert.Equal(t, uint64(ck.CKR_OK), rv)
	assert.Equal(t, []any{""}, items)
	assert.Equal(t, "the handoff", string(b.got))
	assert.Equal(t, []recCall{{"Handoff", nil}, {"Initialize", []any{uint64(0)}}}, b.calls)

	b = &handoffBackend{recBackend: newRecBackend(), handoffEr: errors.New("the credentials handed over by the parent do not decode")}
	d = &Dispatcher{B: b}
	reply = d.Call(encodeRequest(t, fnInitialize, 0, []byte("bad")))
	rv, items, err = decodeReply(t, fnInitialize, reply, 0)
	require.NoError(t, err)
	assert.Equal(t, uint64(ck.CKR_GENERAL_ERROR), rv)
	assert.Equal(t, []any{"C_Initialize: the credentials handed over by the parent do not decode"}, items)
	assert.Equal(t, []recCall{{"Handoff", nil}}, b.calls)

	// No handoff: Handoff is not called.
	b = &handoffBackend{recBackend: newRecBackend()}
	d = &Dispatcher{B: b}
	d.Call(encodeRequest(t, fnInitialize, 0, []byte(nil)))
	assert.Nil(t, b.got)
	assert.Equal(t, []recCall{{"Initialize", []any{uint64(0)}}}, b.calls)

	// The config file asking for the helper is no failure to report.
	b = &handoffBackend{recBackend: newRecBackend()}
	b.err = errorf(rvUseHelper, "the configuration asks for the helper")
	d = &Dispatcher{B: b}
	rv, items, err = decodeReply(t, fnInitialize, d.Call(encodeRequest(t, fnInitialize, 0, []byte(nil))), 0)
	require.NoError(t, err)
	assert.Equal(t, uint64(rvUseHelper), rv)
	assert.Equal(t, []any{""}, items)
}

// TestInitReport: a file that cannot be read (or the log, written) for lack
// of permission is named with the user and what to do; anything else is
// the error's text.
func TestInitReport(t *testing.T) {
	uid := strconv.Itoa(os.Getuid())
	who := whoAmI()
	require.True(t, strings.HasPrefix(who, "uid "+uid), who)
	const readHint = ": permission denied; initialize the library in the privileged parent before it forks, or make the file readable by this user"
	const writeHint = ": permission denied; initialize the library in the privileged parent before it forks, or make the file writable by this user"
	gen := func(err error) error { return &hsmerr.Error{RV: ck.CKR_GENERAL_ERROR, Msg: "configuration", Err: err} }
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"key file", gen(&client.ConfigError{Path: "/etc/openhsm/client.toml", Key: "key",
			Err: &client.FileError{Path: "/etc/openhsm/client-key.pem", Err: fs.ErrPermission}}),
			"cannot read /etc/openhsm/client-key.pem as " + who + readHint},
		{"credentials read", gen(&client.ConfigError{Key: "cert",
			Err: &client.FileError{Path: "/etc/openhsm/client.pem", Err: syscall.EACCES}}),
			"cannot read /etc/openhsm/client.pem as " + who + readHint},
		{"config file", gen(&client.ConfigError{Path: "/etc/openhsm/client.toml", Msg: "cannot read the file", Err: syscall.EACCES}),
			"cannot read /etc/openhsm/client.toml as " + who + readHint},
		{"log file", &hsmerr.Error{RV: ck.CKR_GENERAL_ERROR, Msg: "log",
			Err: &client.ConfigError{Key: "log_file", Err: &fs.PathError{Op: "open", Path: "/var/log/p11.log", Err: syscall.EACCES}}},
			"cannot open the log file /var/log/p11.log for writing as " + who + writeHint},
		{"missing config", gen(&client.ConfigError{Path: "/etc/openhsm/client.toml", Msg: "cannot read the file", Err: syscall.ENOENT}),
			`C_Initialize: configuration: client config "/etc/openhsm/client.toml": cannot read the file: no such file or directory`},
		{"cluster", errorf(ck.CKR_DEVICE_ERROR, "cannot reach the cluster: no node answered"),
			"C_Initialize: cannot reach the cluster: no node answered"},
		{"plain error", errors.New("boom"), "C_Initialize: boom"},
	} {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, initReport(c.err))
		})
	}
}

// TestInitializeReportsUnreadableFile: Initialize's error keeps its cause,
// so that the report names the file (here a missing one, which root can
// see too).
func TestInitializeReportsUnreadableFile(t *testing.T) {
	path := handoffFiles(t)
	key := filepath.Join(filepath.Dir(path), "client-key.pem")
	m := NewModule()
	m.loadConfig = func() (*client.Config, error) {
		cfg, err := client.LoadConfig(path)
		if err == nil {
			os.Remove(key) // gone between the check and the read
		}
		return cfg, err
	}
	err := m.Initialize(0)
	require.Error(t, err)
	assert.Equal(t, uint64(ck.CKR_GENERAL_ERROR), hsmerr.RV(err))
	var fe *client.FileError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, key, fe.Path)
	assert.Contains(t, initReport(err), key)
}
