package refresher

import (
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/robfig/cron/v3"
)

// What the external tests (package refresher_test) reach inside.

func (r *Refresher) LogScheduleGaps(s cron.Schedule, spec string) { r.logScheduleGaps(s, spec) }
func (r *Refresher) SetRunning(t time.Time)                       { r.setRunning(t) }

func (r *Refresher) SetLoopExited() {
	r.mu.Lock()
	r.loopExited = true
	r.mu.Unlock()
}

// ResetSources makes the refresher's per-source state match Sources after a
// test replaced them.
func (r *Refresher) ResetSources() { r.sources = make([]sourceState, len(r.Sources)) }

// Expiry is the token_expiry gauge of a host.
func (m *Metrics) Expiry(host string) float64 {
	return testutil.ToFloat64(m.expiry.WithLabelValues(host))
}

// Runs is the runs_total counter of a result.
func (m *Metrics) Runs(result string) float64 {
	return testutil.ToFloat64(m.runs.WithLabelValues(result))
}

// Writes is the writes_total counter of a host, scope and result.
func (m *Metrics) Writes(host, scope, result string) float64 {
	return testutil.ToFloat64(m.writes.WithLabelValues(host, scope, result))
}
