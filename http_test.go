package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
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

// TestHandler_AfterRun reads /readyz and /metrics of a real refresher, wired as
// run wires it, after one run against the stand-ins.
func TestHandler_AfterRun(t *testing.T) {
	w := newWorld(t)
	reg := w.rancher.AddRegistry(e2eProject, w.ecr.Host(e2eAccount), "")
	w.rancher.AddCredential(e2eProject, reg, "AWS", "old", "")
	cfg, err := ParseConfig(nil, envOf(w.env))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	r, promReg, err := newRefresher(t.Context(), cfg, newLogger(cfg, &logs), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := newHandler(r, promReg)
	if code, body := get(t, h, "/readyz"); code != 503 || !strings.Contains(body, "no ECR token fetched yet") {
		t.Errorf("/readyz before the first run = %d %s, want 503", code, body)
	}
	if err := r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	code, body := get(t, h, "/readyz")
	if code != 200 || !strings.Contains(body, `"host": "`+w.ecr.Host(e2eAccount)+`"`) || !strings.Contains(body, `"scope": "1a5"`) {
		t.Errorf("/readyz after a good run = %d %s", code, body)
	}
	_, metrics := get(t, h, "/metrics")
	for _, want := range []string{
		`rancher_ecr_credentials_writes_total{registry="` + w.ecr.Host(e2eAccount) + `",result="updated",scope="1a5"} 1`,
		`rancher_ecr_credentials_runs_total{result="success"} 1`,
		`rancher_ecr_credentials_token_expiry_timestamp_seconds{registry="` + w.ecr.Host(e2eAccount) + `"}`,
		"go_goroutines", "process_resident_memory_bytes",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	noSecrets(t, body+metrics+logs.String(), w.ecr.Password(e2eAccount))
}

func TestRun_JSONLogs(t *testing.T) {
	w := newWorld(t)
	w.rancher.AddRegistry(e2eProject, w.ecr.Host(e2eAccount), "")
	w.env["LOG_FORMAT"] = "json"
	_, logs, err := w.run(t.Context(), "--once")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(logs), "\n")
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["msg"] == nil || m["level"] == nil {
			t.Errorf("not a JSON log line: %s", l)
		}
	}
	if !strings.Contains(logs, `"msg":"registry credential created"`) {
		t.Errorf("no write line:\n%s", logs)
	}
}

func TestHealthcheck(t *testing.T) {
	t.Parallel()
	var status atomic.Int32
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(int(status.Load()))
	}))
	t.Cleanup(srv.Close)
	_, port, _ := strings.Cut(strings.TrimPrefix(srv.URL, "http://"), ":")
	check := func(args []string, env map[string]string) int {
		return exitCode(run(t.Context(), append([]string{"healthcheck"}, args...), envOf(env), io.Discard, io.Discard))
	}
	if got := check(nil, map[string]string{"LISTEN_PORT": port}); got != 0 {
		t.Errorf("healthy daemon, LISTEN_PORT: exit %d, want 0", got)
	}
	if got := check([]string{"--listen-port", port}, nil); got != 0 {
		t.Errorf("healthy daemon, --listen-port: exit %d, want 0", got)
	}
	if got := check([]string{"--listen-port", "x"}, nil); got != 1 {
		t.Errorf("bad port: exit %d, want 1 (Docker reserves 2)", got)
	}
	status.Store(http.StatusServiceUnavailable)
	if got := check([]string{"--listen-port", port}, nil); got != 1 {
		t.Errorf("unhealthy daemon: exit %d, want 1", got)
	}
}
