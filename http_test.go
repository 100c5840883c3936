package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

type fakeState struct {
	healthy bool
	rd      refresher.Readiness
}

func (f fakeState) Healthy(time.Time) bool                  { return f.healthy }
func (f fakeState) Readiness(time.Time) refresher.Readiness { return f.rd }

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, string(b)
}

func TestHandler(t *testing.T) {
	t.Parallel()
	exp := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	ready := fakeState{healthy: true, rd: refresher.Readiness{Ready: true, Pairs: []refresher.PairStatus{{Host: "h.example.com", Scope: "1a5", ExpiresAt: exp}}}}
	notReady := fakeState{healthy: false, rd: refresher.Readiness{Ready: false, Reason: "no credential written for h.example.com in scope 1a5"}}
	reg := prometheus.NewRegistry()
	refresher.NewMetrics(reg)

	h := newHandler(ready, reg)
	if code, body := get(t, h, "/ping"); code != 200 || body != "pong!" {
		t.Errorf("/ping = %d %q, want 200 pong!", code, body)
	}
	if code, _ := get(t, h, "/healthz"); code != 200 {
		t.Errorf("/healthz = %d, want 200", code)
	}
	code, body := get(t, h, "/readyz")
	var rd refresher.Readiness
	if err := json.Unmarshal([]byte(body), &rd); err != nil || code != 200 || !rd.Ready || rd.Pairs[0].Host != "h.example.com" || !rd.Pairs[0].ExpiresAt.Equal(exp) {
		t.Errorf("/readyz = %d %s (%v)", code, body, err)
	}
	code, body = get(t, h, "/metrics")
	for _, name := range []string{"rancher_ecr_credentials_runs_total", "rancher_ecr_credentials_last_success_timestamp_seconds",
		"rancher_ecr_credentials_run_duration_seconds"} {
		if code != 200 || !strings.Contains(body, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}

	h = newHandler(notReady, reg)
	if code, _ := get(t, h, "/healthz"); code != 503 {
		t.Errorf("/healthz of a stopped loop = %d, want 503", code)
	}
	if code, body := get(t, h, "/readyz"); code != 503 || !strings.Contains(body, "no credential written") {
		t.Errorf("/readyz = %d %s, want 503 with the reason", code, body)
	}
}
