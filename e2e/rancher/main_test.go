// Package rancher is the conformance suite of the daemon against the real Rancher 2.x server
// (internal/rancherreal): the binary built from this checkout, run with --once (and as a daemon for
// its HTTP endpoints), writing into fresh projects of one real server per test process. Every test
// greps all the daemon's output for every token, password and key it handled. See
// docs/testing-rancher.md.
package rancher

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/ecrsource/ecrtest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/rancherreal"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testbin"
)

const (
	account   = "111122223333"
	region    = "us-east-1"
	awsSecret = "e2e-aws-secret-DO-NOT-LEAK"
	// ourName is the Secret (and /v3 credential) name the daemon gives account's registry.
	ourName = "ecr-" + account + "-" + region
	// runTimeout bounds one --once run.
	runTimeout = 3 * time.Minute
)

var host = account + ".dkr.ecr." + region + ".amazonaws.com"

var rancher rancherreal.Shared

var daemon struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := rancher.Run(m)
	if daemon.dir != "" {
		_ = os.RemoveAll(daemon.dir)
	}
	os.Exit(code)
}

// daemonBinary builds the daemon from this checkout once per test process.
func daemonBinary(t *testing.T) string {
	t.Helper()
	daemon.once.Do(func() {
		daemon.dir, daemon.err = os.MkdirTemp("", "rancher-e2e-bin-")
		if daemon.err != nil {
			return
		}
		daemon.path = filepath.Join(daemon.dir, "rancher-ecr-credentials")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", daemon.path, ".")
		cmd.Dir = filepath.Join("..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			daemon.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if daemon.err != nil {
		t.Fatal(daemon.err)
	}
	return daemon.path
}

// env is one test's world: the real Rancher, an ECR stand-in, and every secret value handed out.
type env struct {
	t      *testing.T
	srv    *rancherreal.Server
	ecr    *ecrtest.Server
	ecrURL string
	bin    string

	mu      sync.Mutex
	secrets map[string]string // value → what it is; never to appear in output
	outputs []string          // everything the daemon printed
}

// setup starts (or joins) the real Rancher, starts an ECR stand-in, and builds the daemon. At the
// end of the test every output is searched for every secret.
func setup(t *testing.T) *env {
	t.Helper()
	srv := rancher.Start(t)
	e := &env{t: t, srv: srv, ecr: ecrtest.New(account, region), bin: daemonBinary(t)}
	ecrSrv := httptest.NewServer(e.ecr)
	t.Cleanup(ecrSrv.Close)
	e.ecrURL = ecrSrv.URL
	e.secret("the AWS secret key", awsSecret)
	e.secret("the admin API key", srv.AdminToken)
	t.Cleanup(e.checkNoSecrets)
	return e
}

// secret records values that must never be printed, under what (which names them in a failure,
// never the value). An API key (token-xxxxx:secret) counts whole and by its secret part; every
// value also in base64 (as in an auth entry or a Basic header).
func (e *env) secret(what string, values ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.secrets == nil {
		e.secrets = map[string]string{}
	}
	for _, v := range values {
		if v == "" {
			continue
		}
		e.secrets[v] = what
		e.secrets[base64.StdEncoding.EncodeToString([]byte(v))] = what + " (base64)"
		if _, sk, ok := strings.Cut(v, ":"); ok && len(sk) >= 16 {
			e.secrets[sk] = what + " (secret part)"
		}
	}
}

// password returns the ECR password last handed out, recording it (and its auth) as a secret.
func (e *env) password() string {
	pw := e.ecr.Password(account)
	if pw == "" {
		e.t.Fatal("the ECR stand-in handed out no password")
	}
	e.secret("an ECR password", pw, "AWS:"+pw)
	return pw
}

func (e *env) checkNoSecrets() {
	e.secret("an ECR password", e.ecr.Password(account))
	e.mu.Lock()
	defer e.mu.Unlock()
	all := strings.Join(e.outputs, "\n")
	for v, what := range e.secrets {
		if strings.Contains(all, v) {
			e.t.Errorf("%s appears in the daemon's output", what)
		}
	}
}

// keyEnv is the environment that hands the daemon a Rancher API key (CATTLE_ACCESS_KEY holds
// the token name, CATTLE_SECRET_KEY its secret, as Rancher's UI shows them).
func keyEnv(key string) []string {
	ak, sk, _ := strings.Cut(key, ":")
	return []string{"CATTLE_ACCESS_KEY=" + ak, "CATTLE_SECRET_KEY=" + sk}
}

// projectEnv is what writes into project p with key: CATTLE_URL naming the project.
func (e *env) projectEnv(p rancherreal.Project, key string) []string {
	return append(keyEnv(key), "CATTLE_URL="+e.srv.URL+"/v3/project/"+p.ID)
}

// base is the environment every run gets: the ECR stand-in, static AWS keys, Rancher's CA, debug
// logs (so the secret search covers them), the HTTP server on loopback.
func (e *env) base(dir string) []string {
	return []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + dir,
		"AWS_REGION=" + region, "AWS_ACCESS_KEY_ID=AKIDE2ERANCHER", "AWS_SECRET_ACCESS_KEY=" + awsSecret,
		"AWS_ENDPOINT_URL_ECR=" + e.ecrURL, "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "none"),
		"AWS_ECR_REGISTRY_IDS=" + account,
		"RANCHER_CA_FILE=" + e.srv.CAFile,
		"LOG_LEVEL=debug", "LISTEN_ADDRESS=127.0.0.1", "LISTEN_PORT=" + testbin.FreePort(e.t),
	}
}

// runOnce runs the daemon with --once and env (later entries win) and returns its output and exit code.
func (e *env) runOnce(env ...string) (string, int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), runTimeout)
	defer cancel()
	dir := e.t.TempDir()
	cmd := exec.CommandContext(ctx, e.bin, "--once")
	cmd.Env = append(e.base(dir), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	began := time.Now()
	err := cmd.Run()
	e.mu.Lock()
	e.outputs = append(e.outputs, out.String())
	e.mu.Unlock()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run the daemon: %v\n%s", err, out.String())
	}
	if ctx.Err() != nil {
		e.t.Fatalf("--once did not finish within %s:\n%s", runTimeout, out.String())
	}
	e.t.Logf("--once exited %d after %s", code, time.Since(began).Round(time.Millisecond))
	return out.String(), code
}

// mustRun runs --once and fails the test unless it exits 0.
func (e *env) mustRun(env ...string) string {
	e.t.Helper()
	out, code := e.runOnce(env...)
	if code != 0 {
		e.t.Fatalf("--once exited %d, want 0:\n%s", code, out)
	}
	return out
}

var warningLine = regexp.MustCompile(`(?m)^.*level=(warning|error|fatal).*$`)

// noWarnings fails the test (without stopping it) for each warning or error line: a clean run
// logs none.
func noWarnings(t *testing.T, out string) {
	t.Helper()
	if lines := warningLine.FindAllString(out, -1); len(lines) > 0 {
		t.Errorf("a clean run logged %d warning/error line(s), want none:\n%s", len(lines), strings.Join(lines, "\n"))
	}
}
