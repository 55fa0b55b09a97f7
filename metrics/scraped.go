package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The metrics a scrape reads from Sources.
var (
	descSessions = prometheus.NewDesc(Namespace+"_sessions", "Login sessions this node holds.", nil, nil)
	descReady    = prometheus.NewDesc(Namespace+"_node_ready",
		"1 when the node may serve (a leader is known and the node has caught up with it), else 0; /readyz answers the same.", nil, nil)
	descState   = prometheus.NewDesc(Namespace+"_raft_state", "1 for the node's Raft state, 0 for the others.", []string{"state"}, nil)
	descLeader  = prometheus.NewDesc(Namespace+"_raft_leader_known", "1 when the node knows a leader, else 0.", nil, nil)
	descTerm    = prometheus.NewDesc(Namespace+"_raft_term", "The node's current Raft term.", nil, nil)
	descCommit  = prometheus.NewDesc(Namespace+"_raft_commit_index", "The highest log index this node knows committed.", nil, nil)
	descApplied = prometheus.NewDesc(Namespace+"_raft_applied_index", "The highest log index this node's store applied.", nil, nil)
	descLast    = prometheus.NewDesc(Namespace+"_raft_last_log_index", "The last index in this node's Raft log.", nil, nil)
	descLag     = prometheus.NewDesc(Namespace+"_raft_apply_lag",
		"Committed entries this node has not applied yet (commit index minus applied index).", nil, nil)
	descBackupTime = prometheus.NewDesc(Namespace+"_backup_last_timestamp_seconds",
		"When the newest backup this node holds was taken (Unix seconds); 0 when it holds none.", nil, nil)
	descBackupAge = prometheus.NewDesc(Namespace+"_backup_age_seconds",
		"Seconds since the newest backup this node holds was taken; absent when it holds none.", nil, nil)
)

// scraped collects the metrics read from Sources at each scrape.
type scraped struct{ m *Metrics }

// Describe implements prometheus.Collector.
func (c scraped) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSessions, descReady, descState, descLeader, descTerm, descCommit, descApplied,
		descLast, descLag, descBackupTime, descBackupAge} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c scraped) Collect(ch chan<- prometheus.Metric) {
	src := c.m.src()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if src.Sessions != nil {
		gauge(descSessions, float64(src.Sessions()))
	}
	if src.Ready != nil {
		gauge(descReady, b2f(src.Ready() == nil))
	}
	if src.Raft != nil {
		r := src.Raft()
		for _, s := range RaftStates {
			gauge(descState, b2f(r.State == s), s)
		}
		gauge(descLeader, b2f(r.LeaderKnown))
		gauge(descTerm, float64(r.Term))
		gauge(descCommit, float64(r.CommitIndex))
		gauge(descApplied, float64(r.AppliedIndex))
		gauge(descLast, float64(r.LastLogIndex))
		lag := 0.0
		if r.CommitIndex > r.AppliedIndex {
			lag = float64(r.CommitIndex - r.AppliedIndex)
		}
		gauge(descLag, lag)
	}
	if src.NewestBackup != nil {
		t := src.NewestBackup()
		if t.IsZero() {
			gauge(descBackupTime, 0)
		} else {
			gauge(descBackupTime, float64(t.UnixNano())/1e9)
			gauge(descBackupAge, time.Since(t).Seconds())
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// The paths Handler serves.
const (
	MetricsPath = "/metrics"
	HealthPath  = "/healthz"
	ReadyPath   = "/readyz"
)

// Handler serves /metrics, /healthz and /readyz (GET or HEAD); any other
// path is 404.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+MetricsPath, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		// A scrape that fails part way says so rather than serve half.
		ErrorHandling:       promhttp.HTTPErrorOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
	mux.HandleFunc("GET "+HealthPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET "+ReadyPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := m.Ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(err.Error() + "\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}

// Ready is Sources.Ready's answer; nil when it is not set.
func (m *Metrics) Ready() error {
	if m == nil {
		return nil
	}
	if r := m.src().Ready; r != nil {
		return r()
	}
	return nil
}
