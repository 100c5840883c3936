package refresher

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the refresher's Prometheus collectors (names are part of the documented interface: README.md, "HTTP endpoints").
// Label values are hosts and scopes, never secrets.
type Metrics struct {
	runs        *prometheus.CounterVec
	lastSuccess prometheus.Gauge
	expiry      *prometheus.GaugeVec
	writes      *prometheus.CounterVec
	duration    prometheus.Histogram
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rancher_ecr_credentials_runs_total",
			Help: "Refresh runs, by result (success: everything due was written; failure: something was not).",
		}, []string{"result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rancher_ecr_credentials_last_success_timestamp_seconds",
			Help: "Unix time of the end of the last run in which every write succeeded.",
		}),
		expiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rancher_ecr_credentials_token_expiry_timestamp_seconds",
			Help: "Unix time at which the token last written for a registry host expires.",
		}, []string{"registry"}),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rancher_ecr_credentials_writes_total",
			Help: "Credential writes per registry host and scope, by result: created, updated, unchanged, failed.",
		}, []string{"registry", "scope", "result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "rancher_ecr_credentials_run_duration_seconds",
			Help:    "How long refresh runs take.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 8),
		}),
	}
	reg.MustRegister(m.runs, m.lastSuccess, m.expiry, m.writes, m.duration)
	m.runs.WithLabelValues("success")
	m.runs.WithLabelValues("failure")
	return m
}

func (m *Metrics) write(host, scope, result string) {
	if m != nil {
		m.writes.WithLabelValues(validUTF8(host), validUTF8(scope), result).Inc()
	}
}

func (m *Metrics) written(host string, exp time.Time) {
	if m != nil {
		m.expiry.WithLabelValues(validUTF8(host)).Set(float64(exp.Unix()))
	}
}

// forgetScope drops the series of a scope that is gone.
func (m *Metrics) forgetScope(scope string) {
	if m != nil {
		m.writes.DeletePartialMatch(prometheus.Labels{"scope": validUTF8(scope)})
	}
}

func (m *Metrics) run(end time.Time, d time.Duration, err error) {
	if m == nil {
		return
	}
	m.duration.Observe(d.Seconds())
	if err != nil {
		m.runs.WithLabelValues("failure").Inc()
		return
	}
	m.runs.WithLabelValues("success").Inc()
	m.lastSuccess.Set(float64(end.Unix()))
}
