package refresher

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
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

// Expiry is the token_expiry gauge of a host in a scope.
func (m *Metrics) Expiry(host, scope string) float64 {
	return testutil.ToFloat64(m.expiry.WithLabelValues(host, scope))
}

// Runs is the runs_total counter of a result.
func (m *Metrics) Runs(result string) float64 {
	return testutil.ToFloat64(m.runs.WithLabelValues(result))
}

// Writes is the writes_total counter of a host, scope and result; -1 when the
// series does not exist.
func (m *Metrics) Writes(host, scope, result string) float64 {
	ch := make(chan prometheus.Metric, 1024)
	m.writes.Collect(ch)
	close(ch)
	for mt := range ch {
		var d dto.Metric
		_ = mt.Write(&d)
		labels := map[string]string{}
		for _, l := range d.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["registry"] == host && labels["scope"] == scope && labels["result"] == result {
			return d.GetCounter().GetValue()
		}
	}
	return -1
}

// Series is how many writes_total series exist.
func (m *Metrics) Series() int { return testutil.CollectAndCount(m.writes) }
