package metrics

import (
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openhsm/openhsm/api"
	"github.com/openhsm/openhsm/ck"
	"github.com/openhsm/openhsm/kms/model"
	"github.com/openhsm/openhsm/mech"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace starts every metric's name.
const Namespace = "openhsm"

// NoMechanism is the mechanism of a call that names none.
const NoMechanism = ^uint64(0)

// otherMechanism is where every mechanism outside the table is counted.
const otherMechanism = ^uint64(1)

// The label values that stand for what no table names.
const (
	Other   = "other"   // a method, mechanism, CKR or exception outside the tables
	Unknown = "unknown" // a KMS request whose operation is not one of AWS's
)

// MaxExceptions bounds the distinct exception names the KMS metrics take;
// later new ones are counted as Other.
const MaxExceptions = 64

// exceptionName is the form of an AWS exception's name.
var exceptionName = regexp.MustCompile(`^[A-Z][A-Za-z]{0,54}Exception$`)

// Buckets are the latency histograms' upper bounds, in seconds: 50 µs to
// 10 s.
var Buckets = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10}

// RaftStats is the node's Raft state as a scrape reads it.
type RaftStats struct {
	// State is one of api.States.
	State        string
	LeaderKnown  bool
	Term         uint64
	CommitIndex  uint64 // the highest index this node knows committed
	AppliedIndex uint64 // the highest index its store applied
	LastLogIndex uint64 // the last index in its Raft log
}

// RaftStates are the values of the state label of openhsm_raft_state.
var RaftStates = api.States

// Sources are read at each scrape; a nil function leaves its metrics out.
type Sources struct {
	// Sessions is the number of login sessions the node holds.
	Sessions func() int
	// Raft is the node's Raft state.
	Raft func() RaftStats
	// NewestBackup is when the newest backup the node holds was taken;
	// zero when it holds none.
	NewestBackup func() time.Time
	// Ready says why the node may not serve, or nil when it may.
	Ready func() error
}

// Metrics is one node's metrics. Its methods are safe for concurrent use
// and do nothing on a nil *Metrics.
type Metrics struct {
	reg     *prometheus.Registry
	sources atomic.Pointer[Sources]

	methods    map[string]*method // by name, read-only after New
	other      *method
	mechNames  map[uint64]string // read-only after New
	hsmCalls   *prometheus.CounterVec
	hsmErrors  *prometheus.CounterVec
	hsmLatency *prometheus.HistogramVec

	kmsOps      map[string]*series // by operation, read-only after New; "" is Unknown
	kmsErrors   *prometheus.CounterVec
	exMu        sync.Mutex
	exceptions  map[string]bool
	raftCommit  prometheus.Histogram
	raftLogSync prometheus.Histogram
	storeCommit prometheus.Histogram
}

// series is one label set's counter and latency histogram.
type series struct {
	calls   prometheus.Counter
	latency prometheus.Observer
}

// method holds one HSM method's series, one per mechanism seen.
type method struct {
	name   string
	mu     sync.RWMutex
	byMech map[uint64]*series
}

// New makes a node's metrics with a registry of their own.
func New() *Metrics {
	m := &Metrics{
		reg:        prometheus.NewRegistry(),
		methods:    map[string]*method{},
		other:      &method{name: Other, byMech: map[uint64]*series{}},
		mechNames:  map[uint64]string{},
		kmsOps:     map[string]*series{},
		exceptions: map[string]bool{},
	}
	m.hsmCalls = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "hsm", Name: "calls_total",
		Help: "HSM API calls answered, by method and mechanism (\"\" for calls without one)."}, []string{"method", "mechanism"})
	m.hsmErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "hsm", Name: "errors_total",
		Help: "HSM API calls answered with an error, by method, mechanism and PKCS#11 return value."}, []string{"method", "mechanism", "rv"})
	m.hsmLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: "hsm", Name: "call_duration_seconds",
		Help: "How long HSM API calls took in the node, by method and mechanism.", Buckets: Buckets}, []string{"method", "mechanism"})
	kmsRequests := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "kms", Name: "requests_total",
		Help: "KMS API requests answered, by operation."}, []string{"operation"})
	kmsLatency := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: "kms", Name: "request_duration_seconds",
		Help: "How long KMS API requests took in the node, by operation.", Buckets: Buckets}, []string{"operation"})
	m.kmsErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "kms", Name: "errors_total",
		Help: "KMS API requests answered with an exception, by operation and exception."}, []string{"operation", "exception"})
	m.raftCommit = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: "raft", Name: "commit_duration_seconds",
		Help: "How long a write this node took waited to be committed and applied by the leader (forwarding included).", Buckets: Buckets})
	m.raftLogSync = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: "raft", Name: "log_store_duration_seconds",
		Help: "How long storing a batch of entries in this node's Raft log took, its fsync included.", Buckets: Buckets})
	m.storeCommit = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: "store", Name: "commit_duration_seconds",
		Help: "How long committing a transaction of this node's store took, its fsync included.", Buckets: Buckets})

	for _, x := range api.Methods() {
		m.methods[x.Name] = &method{name: x.Name, byMech: map[uint64]*series{}}
		// Every method shows up at zero, so rates work from the start.
		m.hsmCalls.WithLabelValues(x.Name, "")
	}
	for _, x := range mech.Mechanisms() {
		m.mechNames[x.Type] = ck.MechName(x.Type)
	}
	for _, op := range append(model.Operations(), "") {
		label := op
		if op == "" {
			label = Unknown
		}
		m.kmsOps[op] = &series{calls: kmsRequests.WithLabelValues(label), latency: kmsLatency.WithLabelValues(label)}
	}
	m.reg.MustRegister(m.hsmCalls, m.hsmErrors, m.hsmLatency, kmsRequests, kmsLatency, m.kmsErrors,
		m.raftCommit, m.raftLogSync, m.storeCommit, scraped{m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the registry the metrics are in.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// SetSources sets what scrapes read; parts built after the metrics (the
// cluster, the server) are there once the node serves.
func (m *Metrics) SetSources(s Sources) {
	if m != nil {
		m.sources.Store(&s)
	}
}

func (m *Metrics) src() Sources {
	if p := m.sources.Load(); p != nil {
		return *p
	}
	return Sources{}
}

// HSMCall records one answered HSM API call: its method's name
// ("Sign"), its mechanism (NoMechanism if none), the CKR it answered
// (ck.CKR_OK for success) and how long it took.
func (m *Metrics) HSMCall(name string, mechanism, rv uint64, took time.Duration) {
	if m == nil {
		return
	}
	me, ok := m.methods[name]
	if !ok {
		me = m.other
	}
	s := me.series(m, mechanism)
	s.calls.Inc()
	s.latency.Observe(took.Seconds())
	if rv != ck.CKR_OK {
		m.hsmErrors.WithLabelValues(me.name, m.mechLabel(mechanism), rvLabel(rv)).Inc()
	}
}

// series finds or makes the method's series for a mechanism.
func (me *method) series(m *Metrics, mechanism uint64) *series {
	if _, known := m.mechNames[mechanism]; !known && mechanism != NoMechanism {
		mechanism = otherMechanism
	}
	me.mu.RLock()
	s := me.byMech[mechanism]
	me.mu.RUnlock()
	if s != nil {
		return s
	}
	me.mu.Lock()
	defer me.mu.Unlock()
	if s = me.byMech[mechanism]; s == nil {
		label := m.mechLabel(mechanism)
		s = &series{calls: m.hsmCalls.WithLabelValues(me.name, label), latency: m.hsmLatency.WithLabelValues(me.name, label)}
		me.byMech[mechanism] = s
	}
	return s
}

func (m *Metrics) mechLabel(mechanism uint64) string {
	if mechanism == NoMechanism {
		return ""
	}
	if n, ok := m.mechNames[mechanism]; ok {
		return n
	}
	return Other
}

// rvLabel names a CKR that ck knows, else Other.
func rvLabel(rv uint64) string {
	n := ck.RVName(rv)
	if strings.HasPrefix(n, "CKR_0x") {
		return Other
	}
	return n
}

// KMSRequest records one answered KMS API request: its operation ("" or
// one AWS's model does not name: Unknown), the exception it answered (""
// for success) and how long it took.
func (m *Metrics) KMSRequest(op, exception string, took time.Duration) {
	if m == nil {
		return
	}
	s, ok := m.kmsOps[op]
	if !ok {
		op, s = "", m.kmsOps[""]
	}
	s.calls.Inc()
	s.latency.Observe(took.Seconds())
	if exception != "" {
		if op == "" {
			op = Unknown
		}
		m.kmsErrors.WithLabelValues(op, m.exceptionLabel(exception)).Inc()
	}
}

// exceptionLabel is the exception's name if it has the form of one and is
// among the first MaxExceptions seen, else Other.
func (m *Metrics) exceptionLabel(ex string) string {
	if !exceptionName.MatchString(ex) {
		return Other
	}
	m.exMu.Lock()
	defer m.exMu.Unlock()
	if !m.exceptions[ex] {
		if len(m.exceptions) >= MaxExceptions {
			return Other
		}
		m.exceptions[ex] = true
	}
	return ex
}

// RaftCommitted records how long a write this node took waited for the
// cluster to commit and apply it.
func (m *Metrics) RaftCommitted(d time.Duration) {
	if m != nil {
		m.raftCommit.Observe(d.Seconds())
	}
}

// RaftLogStored records how long storing entries in the Raft log took.
func (m *Metrics) RaftLogStored(d time.Duration) {
	if m != nil {
		m.raftLogSync.Observe(d.Seconds())
	}
}

// StoreCommitted records how long a store transaction's commit took.
func (m *Metrics) StoreCommitted(d time.Duration) {
	if m != nil {
		m.storeCommit.Observe(d.Seconds())
	}
}
