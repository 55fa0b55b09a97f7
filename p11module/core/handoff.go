package core

// The credential handoff (docs/pkcs11-library.md, "Fork"). A prefork server
// initializes the library in its privileged parent, forks, and its children
// drop to an unprivileged user (nginx's workers run as nobody or www-data)
// before they initialize again; the client configuration, certificate and
// key are root's, mode 0600. So the parent keeps what the children need:
// after a successful C_Initialize in an unforked process, the C layer asks
// Snapshot for the configuration and the bytes of the CA, certificate and
// key files, encoded, and for the configured log opened for appending. A
// forked child's C_Initialize sends the bytes to its helper inside the
// C_Initialize frame, over the socketpair, and gives the helper the log as
// fd 3; the helper's Initialize uses them (Handoff) and opens no file.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"syscall"
	"time"

	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/hsmerr"
)

// HelperLogFD is the helper's descriptor for the log a handoff names: the C
// layer puts the parent's open log there (HELPER_LOG_FD in transport.c).
const HelperLogFD = 3

// handoffMagic starts every handoff, and names its version.
const handoffMagic = "openhsm-p11-handoff/1\n"

// maxHandoff bounds a handoff: a configuration and three PEM files.
const maxHandoff = 4 << 20

// handoff is what a privileged process hands to its children's helpers: the
// configuration as the file said it (paths only name the files in
// messages), the files' bytes, and whether its log is open on HelperLogFD.
type handoff struct {
	From           int    `json:"from"`   // the pid that read the files
	Config         string `json:"config"` // the configuration file, for the log
	Nodes          []string
	ServerName     string
	LogFile        string
	LogLevel       string
	Timeout        time.Duration
	HealthInterval time.Duration
	ForceHelper    bool
	Helper         string
	CAFile         string
	CertFile       string
	KeyFile        string
	CA, Cert, Key  []byte
	LogFD          bool // the log is open on HelperLogFD
	// LogDev and LogIno identify the log's file, so that the helper
	// writes to fd 3 only if it is that file.
	LogDev, LogIno uint64
}

// Snapshot returns, for the C layer of a process that has initialized
// without forking, what its forked children's helpers will need: the
// configuration and the credential files' bytes, encoded for Handoff, and
// the configured log opened for appending (close-on-exec; -1 when the log is
// standard error), which the caller owns. It uses what Initialize read, or
// reads the files now (when this process runs on the helper).
func (m *Module) Snapshot() (blob []byte, logFD int, err error) {
	m.mu.Lock()
	var cfg *client.Config
	if m.initialized && m.cfg != nil && m.cfg.Creds != nil {
		cp := *m.cfg
		cr := *m.cfg.Creds
		cr.Key = bytes.Clone(cr.Key) // Finalize clears the module's copy
		cp.Creds = &cr
		cfg = &cp
		defer clear(cr.Key)
	}
	m.mu.Unlock()
	if cfg == nil {
		if cfg, err = m.loadConfig(); err != nil {
			return nil, -1, err
		}
		if cfg.Creds, err = cfg.ReadCredentials(); err != nil {
			return nil, -1, err
		}
	}
	h := handoff{
		From: os.Getpid(), Config: client.ConfigPathFromEnv(),
		Nodes: cfg.Nodes, ServerName: cfg.ServerName, LogFile: cfg.LogFile, LogLevel: cfg.LogLevel,
		Timeout: cfg.Timeout, HealthInterval: cfg.HealthInterval,
		ForceHelper: cfg.PKCS11.ForceHelper, Helper: cfg.PKCS11.Helper,
		CAFile: cfg.CA, CertFile: cfg.Cert, KeyFile: cfg.Key,
		CA: cfg.Creds.CA, Cert: cfg.Creds.Cert, Key: cfg.Creds.Key,
	}
	logFD = -1
	if cfg.LogFile != "" {
		logFD, err = syscall.Open(cfg.LogFile, syscall.O_WRONLY|syscall.O_APPEND|syscall.O_CREAT|syscall.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, -1, &fs.PathError{Op: "open", Path: cfg.LogFile, Err: err}
		}
		var st syscall.Stat_t
		if err := syscall.Fstat(logFD, &st); err != nil {
			syscall.Close(logFD)
			return nil, -1, &fs.PathError{Op: "stat", Path: cfg.LogFile, Err: err}
		}
		h.LogFD, h.LogDev, h.LogIno = true, uint64(st.Dev), uint64(st.Ino)
	}
	body, err := json.Marshal(&h)
	if err != nil {
		if logFD >= 0 {
			syscall.Close(logFD)
		}
		return nil, -1, err
	}
	blob = append([]byte(handoffMagic), body...)
	clear(body)
	if len(blob) > maxHandoff {
		clear(blob)
		if logFD >= 0 {
			syscall.Close(logFD)
		}
		return nil, -1, fmt.Errorf("the configuration and credentials take more than %d bytes", maxHandoff)
	}
	return blob, logFD, nil
}

// Handoff takes the handoff the C layer sent with C_Initialize: the next
// Initialize uses it instead of reading the configuration file. blob is
// cleared.
func (m *Module) Handoff(blob []byte) error {
	defer clear(blob)
	if len(blob) > maxHandoff || len(blob) < len(handoffMagic) || string(blob[:len(handoffMagic)]) != handoffMagic {
		return errors.New("the credentials handed over by the parent are not in a format this helper knows (is the helper from the same build as the library?)")
	}
	var h handoff
	if err := json.Unmarshal(blob[len(handoffMagic):], &h); err != nil {
		// Not the decoder's message: it may quote bytes of the blob.
		return errors.New("the credentials handed over by the parent do not decode (is the helper from the same build as the library?)")
	}
	cfg := &client.Config{
		Nodes: h.Nodes, CA: h.CAFile, Cert: h.CertFile, Key: h.KeyFile,
		ServerName: h.ServerName, LogFile: h.LogFile, LogLevel: h.LogLevel,
		Timeout: h.Timeout, HealthInterval: h.HealthInterval,
		PKCS11: client.PKCS11Config{ForceHelper: h.ForceHelper, Helper: h.Helper},
		Creds:  &client.Credentials{CA: h.CA, Cert: h.Cert, Key: h.Key},
	}
	m.mu.Lock()
	m.handoff = &handedOver{cfg: cfg, from: h.From, config: h.Config, logFD: h.LogFD, logDev: h.LogDev, logIno: h.LogIno}
	m.mu.Unlock()
	return nil
}

// handedOver is a handoff, decoded.
type handedOver struct {
	cfg            *client.Config
	from           int
	config         string
	logFD          bool
	logDev, logIno uint64
}

// log returns the handed-over log on HelperLogFD, or nil when fd 3 is not
// that file (the C layer found the parent's descriptor closed or reused in
// the child, and passed nothing): the helper then opens the log itself.
func (h *handedOver) log() *os.File {
	if h == nil || !h.logFD {
		return nil
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(HelperLogFD, &st); err != nil || uint64(st.Dev) != h.logDev || uint64(st.Ino) != h.logIno {
		return nil
	}
	return helperLog()
}

// Snapshot is Default's Module's Snapshot, for the C layer.
func Snapshot() ([]byte, int, error) {
	m, ok := Default.B.(*Module)
	if !ok {
		return nil, -1, errors.New("no module")
	}
	return m.Snapshot()
}

// initReport is the line the C layer writes to the host's standard error
// (once) when C_Initialize fails: the library's own log may not be open, and
// the host's log is where an operator looks first. A file this process may
// not read or write is named with the user it runs as and what to do.
func initReport(err error) string {
	if path, write, ok := deniedFile(err); ok {
		if write {
			return fmt.Sprintf("cannot open the log file %s for writing as %s: permission denied; "+
				"initialize the library in the privileged parent before it forks, or make the file writable by this user", path, whoAmI())
		}
		return fmt.Sprintf("cannot read %s as %s: permission denied; "+
			"initialize the library in the privileged parent before it forks, or make the file readable by this user", path, whoAmI())
	}
	msg := err.Error()
	var te *hsmerr.Error
	if errors.As(err, &te) {
		msg = te.Msg
		if te.Err != nil {
			msg += ": " + te.Err.Error()
		}
	}
	return "C_Initialize: " + msg
}

// deniedFile finds the file behind a permission error: a file the
// configuration names, the configuration file itself, or the log file
// (write set).
func deniedFile(err error) (path string, write bool, ok bool) {
	if !errors.Is(err, fs.ErrPermission) {
		return "", false, false
	}
	var fe *client.FileError
	if errors.As(err, &fe) {
		return fe.Path, false, true
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Path, pe.Op != "read", true
	}
	// The configuration file: the only ConfigError for no key that
	// wraps an errno.
	var ce *client.ConfigError
	if errors.As(err, &ce) && ce.Key == "" && ce.Path != "" {
		return ce.Path, false, true
	}
	return "", false, false
}

// whoAmI is "uid N (name)".
func whoAmI() string {
	uid := os.Getuid()
	s := "uid " + strconv.Itoa(uid)
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil && u.Username != "" {
		s += " (" + u.Username + ")"
	}
	return s
}
