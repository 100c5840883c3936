package refresher_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher/ecrtest"
)

// gauge returns the value of the series of name whose labels include want, or
// -1 when there is none.
func gauge(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue series
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

// The per-scope series an operator alerts on: freshness follows the clock
// between runs (a stalled daemon shows), the scope's last success, the expiry
// per registry and scope, and ECR errors by code.
func TestMetrics_AlertableSeries(t *testing.T) {
	t.Parallel()
	s := newStand(t)
	reg := prometheus.NewRegistry()
	s.r.Metrics = refresher.NewMetrics(reg)
	reg.MustRegister(s.r.Collector())
	pair := map[string]string{"registry": hostA, "scope": project}

	if got := gauge(t, reg, "rancher_ecr_credentials_credential_fresh", pair); got != -1 {
		t.Errorf("fresh before any run = %v, want no series", got)
	}
	if err := s.r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := gauge(t, reg, "rancher_ecr_credentials_credential_fresh", pair); got != 1 {
		t.Errorf("fresh after a write = %v, want 1", got)
	}
	if got := gauge(t, reg, "rancher_ecr_credentials_scope_last_success_timestamp_seconds", map[string]string{"scope": project}); got != float64(t0.Unix()) {
		t.Errorf("scope last success = %v, want %v", got, t0.Unix())
	}
	if got := gauge(t, reg, "rancher_ecr_credentials_token_expiry_timestamp_seconds", pair); got != float64(t0.Add(12*time.Hour).Unix()) {
		t.Errorf("token expiry = %v, want %v", got, t0.Add(12*time.Hour).Unix())
	}

	// No run for 13 hours (a stalled loop): the credential has expired.
	s.clock.Set(t0.Add(13 * time.Hour))
	if got := gauge(t, reg, "rancher_ecr_credentials_credential_fresh", pair); got != 0 {
		t.Errorf("fresh after expiry = %v, want 0", got)
	}

	s.ecr.SetIntercept(func(w http.ResponseWriter, _ *http.Request) bool {
		ecrtest.WriteError(w, 400, "ThrottlingException", "Rate exceeded")
		return true
	})
	_ = s.r.RunOnce(t.Context())
	if got := gauge(t, reg, "rancher_ecr_credentials_ecr_errors_total", map[string]string{"region": "us-east-1", "code": "ThrottlingException"}); got != 1 {
		t.Errorf("ecr_errors_total{ThrottlingException} = %v, want 1", got)
	}
}
