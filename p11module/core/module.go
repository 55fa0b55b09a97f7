package core

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/client"
	"github.com/openhsm/openhsm/hsmerr"
	"github.com/openhsm/openhsm/mech"
	"github.com/openhsm/openhsm/passwords"
)

// Default is the dispatcher over the process's one module; the C layer and
// the fork helper call it.
var Default = &Dispatcher{B: NewModule()}

// rvUseHelper (WIRE_RV_USE_HELPER in wire.h) tells the C layer to start the
// helper and initialize there, when the config file asks for it.
const rvUseHelper = 0xC8454C50

// inHelper is set in the helper process, which must never send the caller
// to the helper again.
var inHelper bool

// InHelper marks this process as the fork helper.
func InHelper() { inHelper = true }

// Slot IDs: the cluster slot is 0; a crypto user's token slot is
// tokenSlotBase + the user's number, which the cluster never reuses.
const (
	clusterSlot   = 0
	tokenSlotBase = 16
	// unavailable is CK_UNAVAILABLE_INFORMATION.
	unavailable = ^uint64(0)
	// noUser is a slot's user type when no one is logged in (CKU_SO is 0).
	noUser = ^uint64(0)
	// maxOpData bounds what a multi-part operation collects.
	maxOpData = mech.MaxDataLen
)

// Module gives PKCS#11 semantics on top of the client library. It is safe
// for concurrent use.
type Module struct {
	mu          sync.Mutex
	initialized bool
	cfg         *client.Config
	log         *slog.Logger
	logCloser   io.Closer
	stopProfile func()         // ends [pkcs11] cpu_profile's profile
	conn        *client.Client // not logged in: Info and ListTokens
	clusterID   string
	mechs       map[uint64]client.MechanismInfo
	slots       map[uint64]*slot
	sessions    map[uint64]*session
	nextSession uint64

	// handoff, when set (in the fork helper), stands for the files.
	handoff *handedOver

	// reported is the token slots C_WaitForSlotEvent last reported
	// (slotevents.go); stopWait is closed by C_Finalize to end its waits.
	reported map[uint64]bool
	stopWait chan struct{}
	// slotWaiting counts the C_WaitForSlotEvent calls blocked right now.
	slotWaiting atomic.Int32

	// stateKey authenticates saved operation states (opstate.go).
	stateKeyOnce sync.Once
	stateKey     []byte

	// loadConfig and dial are replaced in tests.
	loadConfig func() (*client.Config, error)
	dial       func(ctx context.Context, cfg *client.Config) (*client.Client, error)
}

// NewModule makes a module that reads its configuration from HSM_CONFIG at
// C_Initialize.
func NewModule() *Module {
	m := &Module{loadConfig: client.ConfigFromEnv}
	// The client logs node health and calls moved to other nodes to the
	// library's log (m.log is set by C_Initialize before any dial).
	m.dial = func(ctx context.Context, cfg *client.Config) (*client.Client, error) {
		return client.Dial(ctx, cfg, client.WithLogger(m.log))
	}
	return m
}

// slot is a cluster slot or a crypto user's token slot. Login state is per
// slot: every session on it shares the login.
type slot struct {
	id    uint64
	user  string // the token's crypto user; "" for the cluster slot
	label string
	// locked and failed mirror the user's lock state and lockout counter
	// at the last listing.
	locked bool
	failed int

	info infoCache // what the login has seen of objects

	mu       sync.Mutex
	login    *client.Client // nil when no one is logged in
	userType uint64         // CKU_USER or CKU_SO while logged in, else noUser
	// pub is the slot's public session (public.go), nil until needed;
	// pubObjs the public session objects made through it.
	pub     *client.Client
	pubObjs map[uint64]bool
}

func errorf(rv uint64, format string, args ...any) error { return hsmerr.Errorf(rv, format, args...) }

func (m *Module) ctx() (context.Context, context.CancelFunc) {
	d := 30 * time.Second
	if m.cfg != nil && m.cfg.Timeout > 0 {
		d = m.cfg.Timeout
	}
	return context.WithTimeout(context.Background(), d)
}

// Initialize reads the configuration, opens the log and reaches the cluster.
// In the fork helper, a handoff (Handoff) stands for the configuration and
// credential files. Errors wrap their cause: the dispatcher turns it into
// the line the C layer writes to the host's standard error (initReport).
func (m *Module) Initialize(flags uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.initialized {
		return errorf(ck.CKR_CRYPTOKI_ALREADY_INITIALIZED, "already initialized")
	}
	var cfg *client.Config
	ho := m.handoff
	if ho != nil {
		cp := *ho.cfg
		cr := *ho.cfg.Creds
		cr.Key = bytes.Clone(cr.Key) // Finalize clears this copy
		cp.Creds = &cr
		cfg = &cp
	} else {
		var err error
		if cfg, err = m.loadConfig(); err == nil {
			cfg.Creds, err = cfg.ReadCredentials()
		}
		if err != nil {
			return &hsmerr.Error{RV: ck.CKR_GENERAL_ERROR, Msg: "configuration", Err: err}
		}
	}
	if cfg.PKCS11.Helper != "" && os.Getenv("OPENHSM_P11_HELPER") == "" {
		// The C layer finds the helper through the environment, and a
		// forked child inherits it.
		os.Setenv("OPENHSM_P11_HELPER", cfg.PKCS11.Helper)
	}
	if cfg.PKCS11.ForceHelper && !inHelper {
		return errorf(rvUseHelper, "the configuration asks for the helper")
	}
	if cfg.PKCS11.CPUProfile != "" && !inHelper {
		stop, err := startProfile(cfg.PKCS11.CPUProfile)
		if err != nil {
			return &hsmerr.Error{RV: ck.CKR_GENERAL_ERROR, Msg: "cpu_profile", Err: err}
		}
		defer func() {
			if !m.initialized {
				stop()
			} else {
				m.stopProfile = stop
			}
		}()
	}
	var log *slog.Logger
	var closer io.Closer
	var err error
	if f := ho.log(); f != nil {
		// The parent's log, open on the helper's fd 3 for as long as the
		// helper lives (it is never closed: a later Initialize uses it
		// again).
		log, err = cfg.LoggerTo(f)
		closer = nopCloser{}
	} else {
		log, closer, err = cfg.NewLogger()
	}
	if err != nil {
		return &hsmerr.Error{RV: ck.CKR_GENERAL_ERROR, Msg: "log", Err: err}
	}
	// In process, every call comes from a host thread through cgo; in the
	// helper, from goroutines reading the socket.
	cfg.HostThreads = !inHelper
	m.cfg, m.log, m.logCloser = cfg, log.With("pid", os.Getpid()), closer
	ctx, cancel := m.ctx()
	defer cancel()
	conn, err := m.dial(ctx, cfg)
	if err != nil {
		m.log.Error("C_Initialize: cannot reach the cluster", "nodes", cfg.Nodes, "err", err.Error())
		closer.Close()
		return errorf(ck.CKR_DEVICE_ERROR, "cannot reach the cluster: %v", err)
	}
	info, err := conn.Info(ctx)
	if err != nil {
		m.log.Error("C_Initialize: cluster info", "err", err.Error())
		conn.Close()
		closer.Close()
		return errorf(ck.CKR_DEVICE_ERROR, "cluster info: %v", err)
	}
	m.conn, m.clusterID = conn, info.ClusterID
	m.mechs = map[uint64]client.MechanismInfo{}
	for _, mi := range info.Mechanisms {
		m.mechs[mi.Type] = mi
	}
	m.slots = map[uint64]*slot{clusterSlot: {id: clusterSlot, label: info.ClusterID, userType: noUser}}
	m.sessions = map[uint64]*session{}
	m.reported, m.stopWait = nil, make(chan struct{})
	m.initialized = true
	if ho != nil {
		m.log.Info("C_Initialize", "cluster", info.ClusterID, "node", info.Node,
			"credentials", fmt.Sprintf("handed over by pid %d (%s)", ho.from, ho.config), "uid", os.Getuid())
	} else {
		m.log.Info("C_Initialize", "cluster", info.ClusterID, "node", info.Node)
	}
	return nil
}

type nopCloser struct{}

// startProfile starts the runtime's CPU profile into a new file at path;
// stop ends it and closes the file.
func startProfile(path string) (stop func(), err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// helperLog is the log a handoff passed on fd 3, as one *os.File for the
// life of the helper (another would close fd 3 when collected).
var helperLog = sync.OnceValue(func() *os.File { return os.NewFile(HelperLogFD, "handed-over log") })

func (nopCloser) Close() error { return nil }

// Finalize logs every slot out and drops every session.
func (m *Module) Finalize() error {
	m.mu.Lock()
	if !m.initialized {
		m.mu.Unlock()
		return errorf(ck.CKR_CRYPTOKI_NOT_INITIALIZED, "not initialized")
	}
	slots := m.slots
	m.initialized = false
	close(m.stopWait)
	m.sessions, m.slots = nil, nil
	conn, closer, log := m.conn, m.logCloser, m.log
	stopProfile := m.stopProfile
	m.stopProfile = nil
	// The key file's bytes were kept for Snapshot; the next Initialize
	// reads the files (or takes a handoff) again.
	if m.cfg != nil && m.cfg.Creds != nil {
		clear(m.cfg.Creds.Key)
		m.cfg.Creds = nil
	}
	m.mu.Unlock()
	for _, s := range slots {
		s.logout()
		s.endPublic()
	}
	conn.Close()
	if stopProfile != nil {
		stopProfile()
	}
	log.Info("C_Finalize")
	closer.Close()
	return nil
}

func (m *Module) checkInit() error {
	if !m.initialized {
		return errorf(ck.CKR_CRYPTOKI_NOT_INITIALIZED, "not initialized")
	}
	return nil
}

func pad(dst []byte, s string) {
	for i := range dst {
		dst[i] = ' '
	}
	copy(dst, s)
}

// GetInfo describes the library.
func (m *Module) GetInfo() (Info, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var in Info
	if err := m.checkInit(); err != nil {
		return in, err
	}
	in.CryptokiVersion = [2]byte{3, 0}
	pad(in.ManufacturerID[:], "openhsm")
	pad(in.LibraryDescription[:], "openhsm PKCS#11 library")
	in.LibraryVersion = [2]byte{0, 1}
	return in, nil
}

// refreshSlots asks the cluster for the crypto users' tokens. Slots of users
// that are gone are dropped unless sessions still use them. It is called
// with m.mu held and releases it around the network call, so that other
// threads' calls do not wait on the cluster; it checks again afterwards
// that the module was not finalized meanwhile.
func (m *Module) refreshSlots() error {
	conn := m.conn
	ctx, cancel := m.ctx()
	m.mu.Unlock()
	ts, err := conn.ListTokens(ctx)
	cancel()
	m.mu.Lock()
	if err != nil {
		return err
	}
	if ierr := m.checkInit(); ierr != nil || m.conn != conn {
		return errorf(ck.CKR_CRYPTOKI_NOT_INITIALIZED, "finalized while listing slots")
	}
	seen := map[uint64]bool{clusterSlot: true}
	if m.reported == nil {
		// C_WaitForSlotEvent's events are changes from the first listing.
		m.reported = map[uint64]bool{}
		for _, t := range ts {
			m.reported[tokenSlotBase+t.Number] = true
		}
	}
	for _, t := range ts {
		id := tokenSlotBase + t.Number
		seen[id] = true
		if s, ok := m.slots[id]; ok {
			s.locked, s.failed = t.Locked, t.FailedLogins
			continue
		}
		m.slots[id] = &slot{id: id, user: t.Name, label: t.Name, locked: t.Locked, failed: t.FailedLogins, userType: noUser}
	}
	for id := range m.slots {
		if !seen[id] && !m.slotInUse(id) {
			delete(m.slots, id)
		}
	}
	return nil
}

func (m *Module) slotInUse(id uint64) bool {
	for _, s := range m.sessions {
		if s.slot.id == id {
			return true
		}
	}
	return false
}

// GetSlotList lists the cluster slot and every crypto user's token slot.
// Every slot has a token.
func (m *Module) GetSlotList(bool) ([]uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkInit(); err != nil {
		return nil, err
	}
	if err := m.refreshSlots(); err != nil {
		return nil, err
	}
	ids := make([]uint64, 0, len(m.slots))
	for id := range m.slots {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

// slotByID finds a slot, asking the cluster once if it is not known yet.
func (m *Module) slotByID(id uint64) (*slot, error) {
	if err := m.checkInit(); err != nil {
		return nil, err
	}
	if s, ok := m.slots[id]; ok {
		return s, nil
	}
	if err := m.refreshSlots(); err != nil {
		return nil, err
	}
	if s, ok := m.slots[id]; ok {
		return s, nil
	}
	return nil, errorf(ck.CKR_SLOT_ID_INVALID, "no slot %d", id)
}

// GetSlotInfo describes a slot.
func (m *Module) GetSlotInfo(id uint64) (SlotInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var si SlotInfo
	s, err := m.slotByID(id)
	if err != nil {
		return si, err
	}
	if s.user == "" {
		pad(si.SlotDescription[:], "openhsm cluster "+m.clusterID)
	} else {
		pad(si.SlotDescription[:], "openhsm token of "+s.user)
	}
	pad(si.ManufacturerID[:], "openhsm")
	si.Flags = ck.CKF_TOKEN_PRESENT
	si.HardwareVersion = [2]byte{0, 1}
	si.FirmwareVersion = [2]byte{0, 1}
	return si, nil
}

// GetTokenInfo describes a slot's token.
func (m *Module) GetTokenInfo(id uint64) (TokenInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ti TokenInfo
	s, err := m.slotByID(id)
	if err != nil {
		return ti, err
	}
	if s.user != "" {
		// The lockout counter is the cluster's: ask for it now, so the
		// flags say what the next C_Login meets.
		if err := m.refreshSlots(); err != nil {
			return ti, err
		}
	}
	pad(ti.Label[:], s.label)
	pad(ti.ManufacturerID[:], "openhsm")
	pad(ti.Model[:], "openhsm")
	pad(ti.SerialNumber[:], fmt.Sprintf("%016x", s.id))
	ti.Flags = ck.CKF_RNG | ck.CKF_LOGIN_REQUIRED | ck.CKF_USER_PIN_INITIALIZED | ck.CKF_TOKEN_INITIALIZED
	if s.user != "" {
		ti.Flags |= pinFlags(s.failed, s.locked)
	}
	var n, rw uint64
	for _, ss := range m.sessions {
		if ss.slot == s {
			n++
			if ss.rw {
				rw++
			}
		}
	}
	ti.MaxSessionCount, ti.SessionCount = 0, n // 0: CK_EFFECTIVELY_INFINITE
	ti.MaxRwSessionCount, ti.RwSessionCount = 0, rw
	ti.MaxPinLen, ti.MinPinLen = 64+1+passwords.MaxPasswordLen, passwords.MinPasswordLen
	if s.user != "" {
		ti.MaxPinLen = passwords.MaxPasswordLen
	}
	ti.TotalPublicMemory, ti.FreePublicMemory = unavailable, unavailable
	ti.TotalPrivateMemory, ti.FreePrivateMemory = unavailable, unavailable
	ti.HardwareVersion, ti.FirmwareVersion = [2]byte{0, 1}, [2]byte{0, 1}
	pad(ti.UTCTime[:], "")
	return ti, nil
}

// GetMechanismList lists what the cluster supports.
func (m *Module) GetMechanismList(id uint64) ([]uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.slotByID(id); err != nil {
		return nil, err
	}
	out := make([]uint64, 0, len(m.mechs))
	for t := range m.mechs {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// GetMechanismInfo describes one mechanism.
func (m *Module) GetMechanismInfo(id, mech uint64) (MechanismInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.slotByID(id); err != nil {
		return MechanismInfo{}, err
	}
	mi, ok := m.mechs[mech]
	if !ok {
		return MechanismInfo{}, errorf(ck.CKR_MECHANISM_INVALID, "%s is not supported", ck.MechName(mech))
	}
	// CKF_HW: the mechanism runs in the HSM, not in this library.
	return MechanismInfo{MinKeySize: mi.MinKeySize, MaxKeySize: mi.MaxKeySize, Flags: mi.Flags | msgFlags(mech, mi.Flags) | ck.CKF_HW}, nil
}

// InitToken is in inittoken.go.

func (s *slot) logout() {
	s.mu.Lock()
	c := s.login
	s.login, s.userType = nil, noUser
	s.mu.Unlock()
	s.info.clear()
	if c != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c.Logout(ctx)
		cancel()
		c.Close()
	}
}

// client returns the slot's logged-in client, or nil.
func (s *slot) client() (*client.Client, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.login, s.userType
}
