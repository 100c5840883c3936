package rancher

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/logbuf"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/rancherreal"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testbin"
)

// daemonProc is the daemon running with its schedule (its first run at start), serving HTTP.
type daemonProc struct {
	url    string
	out    *logbuf.Buffer
	cmd    *exec.Cmd
	exited chan error
	stop   sync.Once
}

// startDaemon runs the daemon (not --once) and waits until /readyz answers 200.
func (e *env) startDaemon(env ...string) *daemonProc {
	e.t.Helper()
	port := testbin.FreePort(e.t)
	d := &daemonProc{url: "http://127.0.0.1:" + port, out: &logbuf.Buffer{}, exited: make(chan error, 1)}
	d.cmd = exec.Command(e.bin)
	d.cmd.Env = append(append(e.base(e.t.TempDir()), env...), "LISTEN_PORT="+port)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { d.exited <- d.cmd.Wait() }()
	e.t.Cleanup(func() { e.stopDaemon(d) })
	deadline := time.NewTimer(runTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		code, _ := httpGet(e.t.Context(), d.url+"/readyz")
		if code == http.StatusOK {
			return d
		}
		select {
		case err := <-d.exited:
			d.exited <- err
			e.t.Fatalf("the daemon exited: %v\n%s", err, d.out.String())
		case <-deadline.C:
			e.t.Fatalf("the daemon was not ready within %s (last /readyz: %d):\n%s", runTimeout, code, d.out.String())
		case <-tick.C:
		}
	}
}

// stopDaemon stops it with SIGTERM (SIGKILL after 30 s) and returns its output, recorded for the
// secret search. Stopping twice is harmless.
func (e *env) stopDaemon(d *daemonProc) string {
	d.stop.Do(func() {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		timer := time.NewTimer(30 * time.Second)
		defer timer.Stop()
		select {
		case err := <-d.exited:
			if err != nil {
				e.t.Errorf("the daemon exited with %v after SIGTERM, want 0", err)
			}
		case <-timer.C:
			_ = d.cmd.Process.Kill()
			<-d.exited
			e.t.Errorf("the daemon did not stop within 30 s of SIGTERM")
		}
		e.mu.Lock()
		e.outputs = append(e.outputs, d.out.String())
		e.mu.Unlock()
	})
	return d.out.String()
}

func httpGet(ctx context.Context, url string) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err.Error()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

// metric returns the value of the sample whose line starts with name (labels included).
func metric(t *testing.T, body, name string) float64 {
	t.Helper()
	for line := range strings.Lines(body) {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("metric %s: %v", name, err)
			}
			return v
		}
	}
	t.Fatalf("no metric %s in /metrics:\n%s", name, body)
	return 0
}

// keyExpiry reads when u's API key expires, as u may: GET /v3/tokens/<name>, expiresAt.
func (e *env) keyExpiry(u rancherreal.User) time.Time {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), 30*time.Second)
	defer cancel()
	var tok struct {
		ExpiresAt string `json:"expiresAt"`
	}
	if err := e.srv.V3(ctx, u.Key, http.MethodGet, "/v3/tokens/"+u.KeyName, nil, &tok); err != nil {
		e.t.Fatalf("the user reads its own token: %v", err)
	}
	exp, err := time.Parse(time.RFC3339, tok.ExpiresAt)
	if err != nil {
		e.t.Fatalf("expiresAt %q: %v", tok.ExpiresAt, err)
	}
	return exp
}

// The daemon reads its own API key's expiry from the real /v3/tokens/<name> and exports it:
// rancher_ecr_credentials_rancher_token_expiry_timestamp_seconds equals the key's expiresAt. The
// key is a Project Member's, which may read its own token. /readyz and the ECR token expiry too.
func TestRancher_TokenExpiryMetric(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p := e.srv.NewProject(t, "metric-"+rancherreal.Suffix())
	u := e.newUser("metric")
	e.srv.BindProject(t, u, p, "project-member", atLeast212(e.srv.Version))
	d := e.startDaemon(e.projectEnv(p, u.Key)...)

	exp := e.keyExpiry(u)
	if left := time.Until(exp); left < keyTTL-time.Hour || left > keyTTL+time.Hour {
		t.Errorf("the key made with ttl %s expires in %s", keyTTL, left.Round(time.Minute))
	}
	code, body := httpGet(t.Context(), d.url+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	if got := metric(t, body, "rancher_ecr_credentials_rancher_token_expiry_timestamp_seconds"); int64(got) != exp.Unix() {
		t.Errorf("rancher token expiry metric %d, want %d (%s from /v3/tokens/%s)", int64(got), exp.Unix(), exp.Format(time.RFC3339), u.KeyName)
	}
	ecrExp := e.ecr.ExpiryOf(e.password())
	if got := metric(t, body, fmt.Sprintf("rancher_ecr_credentials_token_expiry_timestamp_seconds{registry=%q,scope=%q}", host, p.ID)); int64(got) != ecrExp.Unix() {
		t.Errorf("ECR token expiry metric %d, want %d", int64(got), ecrExp.Unix())
	}
	noWarnings(t, e.stopDaemon(d))
}
