package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

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
		`rancher_ecr_credentials_token_expiry_timestamp_seconds{registry="` + w.ecr.Host(e2eAccount) + `",scope="1a5"}`,
		`rancher_ecr_credentials_credential_fresh{registry="` + w.ecr.Host(e2eAccount) + `",scope="1a5"} 1`,
		`rancher_ecr_credentials_scope_last_success_timestamp_seconds{scope="1a5"}`,
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
	if got := check(nil, map[string]string{"LISTEN_PORT": port, "LISTEN_ADDRESS": "127.0.0.1"}); got != 0 {
		t.Errorf("healthy daemon, LISTEN_ADDRESS=127.0.0.1: exit %d, want 0", got)
	}
	if got := check([]string{"--listen-address", "127.0.0.1:" + port}, map[string]string{"LISTEN_PORT": port}); got != 1 {
		t.Errorf("bad --listen-address: exit %d, want 1", got)
	}
	if got := check([]string{"--listen-port", "x"}, nil); got != 1 {
		t.Errorf("bad port: exit %d, want 1 (Docker reserves 2)", got)
	}
	status.Store(http.StatusServiceUnavailable)
	if got := check([]string{"--listen-port", port}, nil); got != 1 {
		t.Errorf("unhealthy daemon: exit %d, want 1", got)
	}
}

// serveTest serves srv on a loopback port until the test ends.
func serveTest(t *testing.T, srv *http.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// sendRaw serves srv, connects to it and sends text as is.
func sendRaw(t *testing.T, srv *http.Server, text string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", serveTest(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, text); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitClosed reads from c until the server closes it, failing if that takes
// longer than the deadline. It returns what the server sent.
func waitClosed(t *testing.T, c net.Conn, within time.Duration) string {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(within)); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection still open after %s", within)
	}
	return string(b)
}

func TestNewHTTPServer_Bounds(t *testing.T) {
	t.Parallel()
	srv := newHTTPServer(t.Context(), http.NotFoundHandler())
	for name, d := range map[string]time.Duration{"ReadHeaderTimeout": srv.ReadHeaderTimeout, "ReadTimeout": srv.ReadTimeout,
		"WriteTimeout": srv.WriteTimeout, "IdleTimeout": srv.IdleTimeout} {
		if d <= 0 || d > time.Minute {
			t.Errorf("%s = %s, want set and at most a minute", name, d)
		}
	}
	if srv.MaxHeaderBytes <= 0 || srv.MaxHeaderBytes > 64<<10 {
		t.Errorf("MaxHeaderBytes = %d", srv.MaxHeaderBytes)
	}
}

// An idle keep-alive connection is closed after IdleTimeout.
func TestNewHTTPServer_ClosesIdleConnections(t *testing.T) {
	t.Parallel()
	srv := newHTTPServer(t.Context(), newHandler(fakeState{healthy: true}, prometheus.NewRegistry()))
	srv.IdleTimeout = 50 * time.Millisecond
	c := sendRaw(t, srv, "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Close || resp.StatusCode != 200 {
		t.Fatalf("response %d, close=%v: want a kept-alive 200", resp.StatusCode, resp.Close)
	}
	waitClosed(t, c, 10*time.Second)
}

// A client that never finishes its header is cut off after ReadHeaderTimeout.
func TestNewHTTPServer_ClosesSlowHeaders(t *testing.T) {
	t.Parallel()
	srv := newHTTPServer(t.Context(), newHandler(fakeState{healthy: true}, prometheus.NewRegistry()))
	srv.ReadHeaderTimeout = 50 * time.Millisecond
	c := sendRaw(t, srv, "GET /ping HTTP/1.1\r\nHost: x\r\n")
	if got := waitClosed(t, c, 10*time.Second); strings.Contains(got, "pong") {
		t.Errorf("answered an unfinished request: %q", got)
	}
}

func TestNewHTTPServer_RefusesHugeHeaders(t *testing.T) {
	t.Parallel()
	srv := newHTTPServer(t.Context(), newHandler(fakeState{healthy: true}, prometheus.NewRegistry()))
	req, _ := http.NewRequest(http.MethodGet, "http://"+serveTest(t, srv)+"/ping", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("status = %d, want 431", resp.StatusCode)
	}
}

// /readyz shows short reasons, however long the errors recorded.
func TestHandler_ReadyzShortReasons(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 100_000)
	st := fakeState{rd: refresher.Readiness{Reason: long,
		Pairs:   []refresher.PairStatus{{Host: "h.example.com", Scope: "1a5", LastError: long}},
		Sources: []refresher.SourceStatus{{Region: "us-east-1", LastError: long}}}}
	code, body := get(t, newHandler(st, prometheus.NewRegistry()), "/readyz")
	var rd refresher.Readiness
	if err := json.Unmarshal([]byte(body), &rd); err != nil || code != 503 {
		t.Fatalf("/readyz = %d %.200s (%v)", code, body, err)
	}
	for name, s := range map[string]string{"reason": rd.Reason, "pair last_error": rd.Pairs[0].LastError, "source last_error": rd.Sources[0].LastError} {
		if len(s) > maxReasonLen+len("…") || !strings.HasSuffix(s, "…") || !utf8.ValidString(s) {
			t.Errorf("%s: %d bytes, valid UTF-8 %v, want at most %d and marked cut", name, len(s), utf8.ValidString(s), maxReasonLen)
		}
	}
	if len(st.rd.Pairs[0].LastError) != len(long) {
		t.Errorf("the refresher's own status was cut")
	}
	if len(body) > 4096 {
		t.Errorf("/readyz body is %d bytes", len(body))
	}
}

func TestHealthcheckURL(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ addr, port, want string }{
		{"", "8080", "http://127.0.0.1:8080/healthz"},
		{"0.0.0.0", "8080", "http://127.0.0.1:8080/healthz"},
		{"::", "9090", "http://127.0.0.1:9090/healthz"},
		{"127.0.0.1", "8080", "http://127.0.0.1:8080/healthz"},
		{"192.0.2.10", "8080", "http://192.0.2.10:8080/healthz"},
		{"::1", "8080", "http://[::1]:8080/healthz"},
		{"[::1]", "8080", "http://[::1]:8080/healthz"},
		{"daemon.internal", "8080", "http://daemon.internal:8080/healthz"},
		{"a b", "8080", "LISTEN_ADDRESS"},
		{"", "x", "LISTEN_PORT"},
	} {
		got, err := healthcheckURL(tt.addr, tt.port)
		if err != nil {
			got = err.Error()
		}
		if !strings.HasPrefix(got, tt.want) {
			t.Errorf("healthcheckURL(%q, %q) = %q, want %q", tt.addr, tt.port, got, tt.want)
		}
	}
}

// The daemon binds LISTEN_ADDRESS: a port taken on that address is a
// configuration error naming it.
func TestRun_ListenAddress(t *testing.T) {
	w := newWorld(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	w.env["LISTEN_ADDRESS"], w.env["LISTEN_PORT"] = "127.0.0.1", port
	_, _, err = w.run(t.Context())
	if got := exitCode(err); got != 2 || !strings.Contains(err.Error(), "LISTEN_ADDRESS, LISTEN_PORT: listen tcp 127.0.0.1:"+port) {
		t.Errorf("exit %d, %v: want 2 naming LISTEN_ADDRESS and 127.0.0.1:%s", got, err, port)
	}
}
