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
	ecrErrors   *prometheus.CounterVec
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
			Help: "Unix time at which the token this process last wrote for a registry host into a scope expires.",
		}, []string{"registry", "scope"}),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rancher_ecr_credentials_writes_total",
			Help: "Credential writes per registry host and scope, by result: created, updated, unchanged, failed.",
		}, []string{"registry", "scope", "result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "rancher_ecr_credentials_run_duration_seconds",
			Help:    "How long refresh runs take.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 8),
		}),
		ecrErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rancher_ecr_credentials_ecr_errors_total",
			Help: "Failed ECR GetAuthorizationToken calls and unusable answers, by region and error code (the AWS error code, or network, timeout, unusable).",
		}, []string{"region", "code"}),
	}
	reg.MustRegister(m.runs, m.lastSuccess, m.expiry, m.writes, m.duration, m.ecrErrors)
	m.runs.WithLabelValues("success")
	m.runs.WithLabelValues("failure")
	return m
}

func (m *Metrics) write(host, scope, result string) {
	if m != nil {
		m.writes.WithLabelValues(validUTF8(host), validUTF8(scope), result).Inc()
	}
}

func (m *Metrics) written(host, scope string, exp time.Time) {
	if m != nil {
		m.expiry.WithLabelValues(validUTF8(host), validUTF8(scope)).Set(float64(exp.Unix()))
	}
}

func (m *Metrics) ecrError(region, code string) {
	if m != nil {
		m.ecrErrors.WithLabelValues(validUTF8(region), code).Inc()
	}
}

// forgetScope drops the series of a scope that is gone.
func (m *Metrics) forgetScope(scope string) {
	if m != nil {
		m.writes.DeletePartialMatch(prometheus.Labels{"scope": validUTF8(scope)})
		m.expiry.DeletePartialMatch(prometheus.Labels{"scope": validUTF8(scope)})
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

var (
	freshDesc = prometheus.NewDesc("rancher_ecr_credentials_credential_fresh",
		"1 while the (registry, scope) pair holds an unexpired credential written by this process, else 0: what /readyz requires of every pair.",
		[]string{"registry", "scope"}, nil)
	scopeSuccessDesc = prometheus.NewDesc("rancher_ecr_credentials_scope_last_success_timestamp_seconds",
		"Unix time since which every pair of the scope has been written successfully at least once: the oldest last success among its pairs (0 while one never was).",
		[]string{"scope"}, nil)
)

// pairCollector exports the refresher's pair state as it is at scrape time, so
// freshness follows the clock between runs and a stalled loop shows.
type pairCollector struct{ r *Refresher }

// Collector returns the collector of the per-pair freshness and per-scope last
// success series; register it next to NewMetrics's.
func (r *Refresher) Collector() prometheus.Collector { return pairCollector{r} }

func (c pairCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- freshDesc
	ch <- scopeSuccessDesc
}

func (c pairCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.r.Now()
	oldest := map[string]time.Time{}
	never := map[string]bool{}
	for _, p := range c.r.Status() {
		fresh := 0.0
		if !p.LastSuccess.IsZero() && now.Before(p.ExpiresAt) {
			fresh = 1
		}
		ch <- prometheus.MustNewConstMetric(freshDesc, prometheus.GaugeValue, fresh, validUTF8(p.Host), validUTF8(p.Scope))
		switch o, seen := oldest[p.Scope]; {
		case p.LastSuccess.IsZero():
			never[p.Scope] = true
			oldest[p.Scope] = o
		case !seen || p.LastSuccess.Before(o):
			oldest[p.Scope] = p.LastSuccess
		}
	}
	for scope, t := range oldest {
		v := 0.0
		if !never[scope] {
			v = float64(t.Unix())
		}
		ch <- prometheus.MustNewConstMetric(scopeSuccessDesc, prometheus.GaugeValue, v, validUTF8(scope))
	}
}
