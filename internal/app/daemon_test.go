package app

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/ecrsource/ecrtest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/apptest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/buildinfo"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/httpapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/logbuf"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/settings"
)

// newDaemon builds the daemon for env as Run does, logging into logs.
func newDaemon(t *testing.T, env map[string]string, logs io.Writer, args ...string) *daemon {
	t.Helper()
	v, err := settings.Parse(Sections(Kinds()), args, apptest.EnvOf(env), nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := configure(t.Context(), v, Kinds(), apptest.EnvOf(env), realMode(apptest.EnvOf(env)), buildinfo.Current(buildinfo.Stamp{}), logs)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func get(t *testing.T, h http.Handler, path string) (int, string) { return apptest.Get(t, h, path) }

// /readyz and /metrics of the daemon as wired, before and after one run
// against the stand-ins.
func TestDaemon_Endpoints(t *testing.T) {
	w := apptest.NewWorld(t)
	reg := w.Rancher.AddRegistry(apptest.Project, w.ECR.Host(apptest.Account), "")
	w.Rancher.AddCredential(apptest.Project, reg, "AWS", "old", "")
	var logs logbuf.Buffer
	d := newDaemon(t, w.Env, &logs)
	h := httpapi.Handler(d.r, nil, d.reg)
	if code, body := get(t, h, "/readyz"); code != 503 || !strings.Contains(body, "no ECR token fetched yet") {
		t.Errorf("/readyz before the first run = %d %s, want 503", code, body)
	}
	if err := d.r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	code, body := get(t, h, "/readyz")
	if code != 200 || !strings.Contains(body, `"host": "`+w.ECR.Host(apptest.Account)+`"`) || !strings.Contains(body, `"scope": "1a5"`) {
		t.Errorf("/readyz after a good run = %d %s", code, body)
	}
	_, metrics := get(t, h, "/metrics")
	for _, want := range []string{
		`rancher_ecr_credentials_writes_total{registry="` + w.ECR.Host(apptest.Account) + `",result="updated",scope="1a5"} 1`,
		`rancher_ecr_credentials_runs_total{result="success"} 1`,
		`rancher_ecr_credentials_token_expiry_timestamp_seconds{registry="` + w.ECR.Host(apptest.Account) + `",scope="1a5"}`,
		`rancher_ecr_credentials_credential_fresh{registry="` + w.ECR.Host(apptest.Account) + `",scope="1a5"} 1`,
		`rancher_ecr_credentials_scope_last_success_timestamp_seconds{scope="1a5"}`,
		`rancher_ecr_credentials_build_info{`, "go_goroutines", "process_resident_memory_bytes",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	apptest.NoSecrets(t, body+metrics+logs.String(), w.ECR.Password(apptest.Account))
}

// Issue 18: the summary counts are the lines. A run that rewrites nothing
// (the same tokens again) says unchanged, as each of its lines does.
func TestDaemon_SummaryCountsMatchLines(t *testing.T) {
	w := apptest.NewWorld(t)
	exp := time.Now().Add(12 * time.Hour)
	hosts := []string{w.ECR.Host(apptest.Account), w.ECR.Host("444455556666")}
	w.ECR.SetIntercept(func(rw http.ResponseWriter, _ *http.Request) bool { // the same tokens at every call
		ecrtest.WriteAnswer(rw, exp, ecrtest.Login{Host: hosts[0], Password: "SAME-PASSWORD-A"}, ecrtest.Login{Host: hosts[1], Password: "SAME-PASSWORD-B"})
		return true
	})
	for _, h := range hosts {
		w.Rancher.AddCredential(apptest.Project, w.Rancher.AddRegistry(apptest.Project, h, ""), "AWS", "old", "")
	}
	w.Env["AWS_ECR_REGISTRY_IDS"] = apptest.Account + ",444455556666"
	var logs logbuf.Buffer
	d := newDaemon(t, w.Env, &logs)
	for i := range 2 {
		before := len(logs.String())
		if err := d.r.RunOnce(t.Context()); err != nil {
			t.Fatalf("run %d: %v\n%s", i+1, err, logs.String())
		}
		written, unchanged := summaryMatchesLines(t, i+1, logs.String()[before:])
		if first := i == 0; first && (written != 2 || unchanged != 0) || !first && (written != 0 || unchanged != 2) {
			t.Errorf("run %d: %d written, %d unchanged; want 2 written, then 2 unchanged:\n%s", i+1, written, unchanged, logs.String()[before:])
		}
	}
}

// --once is bounded: a Rancher that never answers cannot hold it past RunTimeout.
func TestDaemon_OnceHasADeadline(t *testing.T) {
	w := apptest.NewWorld(t)
	w.Rancher.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		<-r.Context().Done() // never answers; only the client's giving up ends it
		return true
	})
	d := newDaemon(t, w.Env, io.Discard, "--once")
	d.r.RunTimeout = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	start := time.Now()
	if got := exitCode(d.run(ctx)); got != 1 {
		t.Errorf("exit = %d, want 1", got)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("--once took %s with RunTimeout %s", took, d.r.RunTimeout)
	}
}

func TestRun_JSONLogs(t *testing.T) {
	w := apptest.NewWorld(t)
	w.Rancher.AddRegistry(apptest.Project, w.ECR.Host(apptest.Account), "")
	w.Env["LOG_FORMAT"] = "json"
	_, logs, err := run(t.Context(), w.Env, "--once")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["msg"] == nil || m["level"] == nil {
			t.Errorf("not a JSON log line: %s", l)
		}
	}
	if !strings.Contains(logs, `"msg":"registry credential created"`) {
		t.Errorf("no write line:\n%s", logs)
	}
}

// The daemon binds LISTEN_ADDRESS: a port taken on that address is a
// configuration error naming it.
func TestRun_ListenAddress(t *testing.T) {
	w := apptest.NewWorld(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	w.Env["LISTEN_ADDRESS"], w.Env["LISTEN_PORT"] = "127.0.0.1", port
	_, _, err = run(t.Context(), w.Env)
	if got := exitCode(err); got != 2 || !strings.Contains(err.Error(), "LISTEN_ADDRESS, LISTEN_PORT: listen tcp 127.0.0.1:"+port) {
		t.Errorf("exit %d, %v: want 2 naming LISTEN_ADDRESS and 127.0.0.1:%s", got, err, port)
	}
}

func TestRun_Healthcheck(t *testing.T) {
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
		_, _, err := run(t.Context(), env, append([]string{"healthcheck"}, args...)...)
		return exitCode(err)
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

// tlsWorld is a world with Rancher served over TLS by a self-signed test CA,
// whose certificate is returned as a PEM file.
func tlsWorld(t *testing.T) (*apptest.World, string) {
	t.Helper()
	w := apptest.NewWorld(t)
	srv := httptest.NewTLSServer(w.Rancher)
	t.Cleanup(srv.Close)
	w.Env["CATTLE_URL"] = srv.URL + "/v2-beta/projects/" + apptest.Project
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	w.Rancher.AddRegistry(apptest.Project, w.ECR.Host(apptest.Account), "")
	return w, ca
}

func TestRun_TLS(t *testing.T) {
	t.Run("UntrustedCA", func(t *testing.T) {
		w, _ := tlsWorld(t)
		_, logs, err := run(t.Context(), w.Env, "--once")
		if exitCode(err) != 1 || !strings.Contains(logs, "give the CA bundle in RANCHER_CA_FILE") {
			t.Errorf("exit %d, logs:\n%s\nwant a failure naming RANCHER_CA_FILE", exitCode(err), logs)
		}
	})
	t.Run("CAFile", func(t *testing.T) {
		w, ca := tlsWorld(t)
		w.Env["RANCHER_CA_FILE"] = ca
		if _, logs, err := run(t.Context(), w.Env, "--once"); err != nil {
			t.Fatalf("run: %v\n%s", err, logs)
		}
		if n := len(w.Rancher.Credentials(apptest.Project)); n != 1 {
			t.Errorf("credentials = %d, want 1 written over TLS", n)
		}
	})
	t.Run("CAFileWithoutPEM", func(t *testing.T) {
		w, _ := tlsWorld(t)
		bad := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
			t.Fatal(err)
		}
		w.Env["RANCHER_CA_FILE"] = bad
		_, _, err := run(t.Context(), w.Env, "--once")
		if exitCode(err) != 2 || !strings.Contains(err.Error(), "RANCHER_CA_FILE: "+bad+" holds no PEM certificate") {
			t.Errorf("err = %v, want exit 2 naming RANCHER_CA_FILE", err)
		}
		if w.Rancher.Requests() != 0 {
			t.Error("Rancher was called with a broken CA file")
		}
	})
	t.Run("InsecureSkipVerify", func(t *testing.T) {
		w, _ := tlsWorld(t)
		w.Env["RANCHER_INSECURE_SKIP_VERIFY"] = "true"
		_, logs, err := run(t.Context(), w.Env, "--once")
		if err != nil {
			t.Fatalf("run: %v\n%s", err, logs)
		}
		if !strings.Contains(logs, "level=warning") || !strings.Contains(logs, "NOT verified") {
			t.Errorf("no loud warning:\n%s", logs)
		}
	})
}
