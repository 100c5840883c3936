package httpapi

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/apptest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

type fakeState struct {
	healthy bool
	rd      refresher.Readiness
}

func (f fakeState) Healthy(time.Time) bool                  { return f.healthy }
func (f fakeState) Readiness(time.Time) refresher.Readiness { return f.rd }

func get(t *testing.T, h http.Handler, path string) (int, string) { return apptest.Get(t, h, path) }

func TestHandler(t *testing.T) {
	t.Parallel()
	exp := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	ready := fakeState{healthy: true, rd: refresher.Readiness{Ready: true, Pairs: []refresher.PairStatus{{Host: "h.example.com", Scope: "1a5", ExpiresAt: exp}}}}
	notReady := fakeState{healthy: false, rd: refresher.Readiness{Ready: false, Reason: "no credential written for h.example.com in scope 1a5"}}
	reg := prometheus.NewRegistry()
	refresher.NewMetrics(reg)

	h := Handler(ready, nil, reg)
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

	h = Handler(notReady, nil, reg)
	if code, _ := get(t, h, "/healthz"); code != 503 {
		t.Errorf("/healthz of a stopped loop = %d, want 503", code)
	}
	if code, body := get(t, h, "/readyz"); code != 503 || !strings.Contains(body, "no credential written") {
		t.Errorf("/readyz = %d %s, want 503 with the reason", code, body)
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

func TestNewServer_Bounds(t *testing.T) {
	t.Parallel()
	srv := NewServer(t.Context(), http.NotFoundHandler())
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
func TestNewServer_ClosesIdleConnections(t *testing.T) {
	t.Parallel()
	srv := NewServer(t.Context(), Handler(fakeState{healthy: true}, nil, prometheus.NewRegistry()))
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
func TestNewServer_ClosesSlowHeaders(t *testing.T) {
	t.Parallel()
	srv := NewServer(t.Context(), Handler(fakeState{healthy: true}, nil, prometheus.NewRegistry()))
	srv.ReadHeaderTimeout = 50 * time.Millisecond
	c := sendRaw(t, srv, "GET /ping HTTP/1.1\r\nHost: x\r\n")
	if got := waitClosed(t, c, 10*time.Second); strings.Contains(got, "pong") {
		t.Errorf("answered an unfinished request: %q", got)
	}
}

func TestNewServer_RefusesHugeHeaders(t *testing.T) {
	t.Parallel()
	srv := NewServer(t.Context(), Handler(fakeState{healthy: true}, nil, prometheus.NewRegistry()))
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
	code, body := get(t, Handler(st, nil, prometheus.NewRegistry()), "/readyz")
	var rd refresher.Readiness
	if err := json.Unmarshal([]byte(body), &rd); err != nil || code != 503 {
		t.Fatalf("/readyz = %d %.200s (%v)", code, body, err)
	}
	for name, s := range map[string]string{"reason": rd.Reason, "pair last_error": rd.Pairs[0].LastError, "source last_error": rd.Sources[0].LastError} {
		if len(s) > MaxReasonLen+len("…") || !strings.HasSuffix(s, "…") || !utf8.ValidString(s) {
			t.Errorf("%s: %d bytes, valid UTF-8 %v, want at most %d and marked cut", name, len(s), utf8.ValidString(s), MaxReasonLen)
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
		{"a b", "8080", "LISTEN_ADDRESS: \"a b\" is not an IP address"},
		{"127.0.0.1:8080", "8080", "LISTEN_ADDRESS: \"127.0.0.1:8080\" holds a port: set LISTEN_ADDRESS=127.0.0.1 and LISTEN_PORT=8080"},
		{"", "x", "LISTEN_PORT"},
	} {
		got, err := HealthcheckURL(tt.addr, tt.port)
		if err != nil {
			got = err.Error()
		}
		if !strings.HasPrefix(got, tt.want) {
			t.Errorf("HealthcheckURL(%q, %q) = %q, want %q", tt.addr, tt.port, got, tt.want)
		}
	}
}

func TestParseListenAddress(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"": "", "127.0.0.1": "127.0.0.1", "::1": "::1", "[::1]": "::1", "0.0.0.0": "0.0.0.0", "localhost": "localhost", " daemon.internal ": "daemon.internal"} {
		if got, err := ParseListenAddress(in); err != nil || got != want {
			t.Errorf("ParseListenAddress(%q) = %q, %v, want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{"http://0.0.0.0": "is not an IP address or host name", "a b": "is not an IP address",
		"[::1]:8080": "holds a port: set LISTEN_ADDRESS=::1 and LISTEN_PORT=8080"} {
		if _, err := ParseListenAddress(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseListenAddress(%q): %v, want %q", in, err, want)
		}
	}
}

type fakeRole struct {
	role, leader string
	fresh        bool
	err          error
}

func (f fakeRole) Role(time.Time) (string, string, bool) { return f.role, f.leader, f.fresh }
func (f fakeRole) LastError() error                      { return f.err }

func TestFollowerReadiness(t *testing.T) {
	t.Parallel()
	notReady := refresher.Readiness{Ready: false, Reason: "no credential written"}
	for _, c := range []struct {
		e         fakeRole
		rd        refresher.Readiness
		wantReady bool
		reason    string
	}{
		{fakeRole{"leader", "me", true, nil}, notReady, false, "no credential written"},
		{fakeRole{"leader", "me", true, nil}, refresher.Readiness{Ready: true}, true, ""},
		{fakeRole{"follower", "pod-a", true, nil}, notReady, true, ""},
		{fakeRole{"follower", "pod-a", false, nil}, notReady, false, "has not renewed"},
		{fakeRole{"follower", "", false, nil}, notReady, false, "no replica holds the lease"},
		// Issue 18: a refused Lease call is the reason, as the elector names it.
		{fakeRole{"follower", "", false, errors.New("leases.coordination.k8s.io is forbidden: grant verbs [get create update]")}, notReady, false,
			"follower: leader election cannot use its Lease: leases.coordination.k8s.io is forbidden: grant verbs [get create update]"},
		{fakeRole{"follower", "pod-a", false, errors.New("no answer")}, notReady, false, "cannot use its Lease: no answer"},
		// A call that failed once while a fresh leader is known is no reason.
		{fakeRole{"follower", "pod-a", true, errors.New("no answer")}, notReady, true, ""},
	} {
		_, _, ready, reason := followerReadiness(c.e, time.Now(), c.rd)
		if ready != c.wantReady || !strings.Contains(reason, c.reason) {
			t.Errorf("%+v: ready %v reason %q", c.e, ready, reason)
		}
	}
	// Through the handler: a follower of a fresh leader answers 200 with its role.
	code, body := get(t, Handler(fakeState{healthy: true, rd: notReady}, fakeRole{"follower", "pod-a", true, nil}, prometheus.NewRegistry()), "/readyz")
	if code != 200 || !strings.Contains(body, `"role": "follower"`) || !strings.Contains(body, `"leader": "pod-a"`) {
		t.Errorf("/readyz of a follower = %d %s", code, body)
	}
}
