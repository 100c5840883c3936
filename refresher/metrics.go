package refresher

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the refresher's Prometheus collectors (names are part of the
// documented interface: README.md, "HTTP endpoints"). Label values are hosts,
// groups and scopes, never secrets. By default the scope label carries a
// scope's group (the target kind for namespaces and consumers, the scope's
// own name for configured Rancher scopes), so the number of series does not
// grow with the cluster; PerScope labels every series with the scope itself.
type Metrics struct {
	runs        *prometheus.CounterVec
	lastSuccess prometheus.Gauge
	writes      *prometheus.CounterVec
	duration    prometheus.Histogram
	ecrErrors   *prometheus.CounterVec

	// PerScope labels series with each scope's name instead of its group
	// (METRICS_PER_SCOPE): one series per namespace, for small clusters.
	PerScope bool
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
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rancher_ecr_credentials_writes_total",
			Help: "Credential writes per registry host and scope (a scope's group unless METRICS_PER_SCOPE), by result: created, updated, unchanged, failed.",
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
	reg.MustRegister(m.runs, m.lastSuccess, m.writes, m.duration, m.ecrErrors)
	m.runs.WithLabelValues("success")
	m.runs.WithLabelValues("failure")
	return m
}

// label is the scope label value of a scope's series.
func (m *Metrics) label(sc Scope) string {
	if m != nil && m.PerScope {
		return sc.Name
	}
	return sc.group()
}

func (m *Metrics) write(host, scope string, res Result) {
	if m != nil {
		m.writes.WithLabelValues(validUTF8(host), validUTF8(scope), string(res)).Inc()
	}
}

func (m *Metrics) ecrError(region, code string) {
	if m != nil {
		m.ecrErrors.WithLabelValues(validUTF8(region), code).Inc()
	}
}

// forgetScope drops the series of a scope that is gone: with per-scope
// series only, each by its exact labels (what the one scope costs).
func (m *Metrics) forgetScope(scope string, hosts []string) {
	if m == nil || !m.PerScope {
		return
	}
	for _, h := range hosts {
		for _, res := range []Result{ResultCreated, ResultUpdated, ResultUnchanged, ResultFailed} {
			m.writes.DeleteLabelValues(validUTF8(h), validUTF8(scope), string(res))
		}
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
	expiryDesc = prometheus.NewDesc("rancher_ecr_credentials_token_expiry_timestamp_seconds",
		"Unix time at which the earliest-expiring credential this process wrote for a registry host into a scope (or a group's scopes) expires, while refreshes fail too, and after it has expired.",
		[]string{"registry", "scope"}, nil)
	freshDesc = prometheus.NewDesc("rancher_ecr_credentials_credential_fresh",
		"1 while every (registry, scope) pair of the label holds an unexpired credential written by this process, else 0: what /readyz requires of every pair.",
		[]string{"registry", "scope"}, nil)
	scopeSuccessDesc = prometheus.NewDesc("rancher_ecr_credentials_scope_last_success_timestamp_seconds",
		"Unix time since which every pair of the scope (or group) has been written successfully at least once: the oldest last success among its pairs (0 while one never was).",
		[]string{"scope"}, nil)
	identityScopesDesc = prometheus.NewDesc("rancher_ecr_credentials_identity_scopes",
		"Scopes by the AWS identity whose tokens they hold (\"\" the daemon's own, a tenant role's ARN, or \"refused\" for every role AWS_ALLOWED_ROLE_ARNS does not allow) and state: fresh, failing, pending.",
		[]string{"identity", "state"}, nil)
	scopesDesc = prometheus.NewDesc("rancher_ecr_credentials_scopes",
		"Scopes of a target (group) by registry and state: fresh (holds an unexpired credential written by this process, its last write succeeded), failing (its last write failed, or what it holds expired), pending (not written yet; registry empty).",
		[]string{"target", "registry", "state"}, nil)
)

// stateCollector exports the refresher's state as it is at scrape time, so
// freshness follows the clock between runs and a stalled loop shows.
type stateCollector struct{ r *Refresher }

// Collector returns the collector of the state series (freshness, expiry,
// last success, scope counts); register it next to NewMetrics's.
func (r *Refresher) Collector() prometheus.Collector { return stateCollector{r} }

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- expiryDesc
	ch <- freshDesc
	ch <- scopeSuccessDesc
	ch <- scopesDesc
	ch <- identityScopesDesc
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.r
	now := r.Now()
	r.mu.Lock()
	groups := r.groups(now, r.Metrics.label)
	perIdentity := r.identityStates(now)
	r.mu.Unlock()
	for id, n := range perIdentity {
		for i, state := range []string{"fresh", "failing", "pending"} {
			ch <- prometheus.MustNewConstMetric(identityScopesDesc, prometheus.GaugeValue, float64(n[i]), validUTF8(id), state)
		}
	}
	// A group with a scope that holds nothing yet (not written, or failed as
	// a whole) is not fresh for any registry.
	unwritten := map[string]bool{}
	for k, g := range groups {
		if k.host == "" && g.Failing+g.Pending > 0 {
			unwritten[k.group] = true
		}
	}
	oldest := map[string]*GroupStatus{}
	for k, g := range groups {
		gauge := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
		}
		gauge(scopesDesc, float64(g.Fresh), validUTF8(k.group), validUTF8(k.host), "fresh")
		gauge(scopesDesc, float64(g.Failing), validUTF8(k.group), validUTF8(k.host), "failing")
		gauge(scopesDesc, float64(g.Pending), validUTF8(k.group), validUTF8(k.host), "pending")
		if k.host == "" {
			continue
		}
		fresh := 0.0
		if !g.unheld && !unwritten[k.group] {
			fresh = 1
		}
		gauge(freshDesc, fresh, validUTF8(k.host), validUTF8(k.group))
		if !g.OldestExpiry.IsZero() {
			gauge(expiryDesc, float64(g.OldestExpiry.Unix()), validUTF8(k.host), validUTF8(k.group))
		}
		o := oldest[k.group]
		if o == nil {
			o = &GroupStatus{}
			oldest[k.group] = o
		}
		o.never = o.never || g.never
		if o.OldestSuccess.IsZero() || (!g.OldestSuccess.IsZero() && g.OldestSuccess.Before(o.OldestSuccess)) {
			o.OldestSuccess = g.OldestSuccess
		}
	}
	for group, o := range oldest {
		v := 0.0
		if !o.never && !o.OldestSuccess.IsZero() {
			v = float64(o.OldestSuccess.Unix())
		}
		ch <- prometheus.MustNewConstMetric(scopeSuccessDesc, prometheus.GaugeValue, v, validUTF8(group))
	}
}

// identityStates counts the scopes of each identity (a refused one as
// "refused") as fresh, failing and pending. Call with r.mu held.
func (r *Refresher) identityStates(now time.Time) map[string]*[3]int {
	out := map[string]*[3]int{}
	for _, sc := range r.scopes {
		id := sc.ident.name
		if sc.ident.refused != nil {
			id = "refused"
		}
		if out[id] == nil {
			out[id] = &[3]int{}
		}
		// As /readyz's summary counts them (groups): a planned scope that
		// holds nothing and failed at nothing (a watched Secret gone) is
		// none of the three.
		state := 0
		switch {
		case !sc.planned:
			state = 2
		case sc.lastErr() != "":
			state = 1
		case len(sc.pairs) == 0:
			continue
		}
		for i := range sc.pairs {
			if p := &sc.pairs[i]; state == 0 && (p.lastErr != "" || !p.held(now)) {
				state = 1
			}
		}
		out[id][state]++
	}
	return out
}
