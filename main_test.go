package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi/ranchertest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/ecrsource/ecrtest"
)

const (
	e2eAccount   = "111122223333"
	e2eProject   = "1a5"
	e2eRancherSK = "rancher-secret-DO-NOT-LEAK"
	e2eAWSSecret = "aws-secret-DO-NOT-LEAK"
)

// world is an ECR stand-in and a Rancher stand-in on 127.0.0.1, with the AWS SDK's
// environment pointed at the former. It sets process env, so tests using it do
// not run in parallel.
type world struct {
	ecr     *ecrtest.Server
	rancher *ranchertest.Server
	env     map[string]string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{
		ecr:     ecrtest.New(e2eAccount, "us-east-1"),
		rancher: ranchertest.New(ranchertest.Key{Access: "ak", Secret: e2eRancherSK, Project: e2eProject}),
	}
	ecrSrv := httptest.NewServer(w.ecr)
	rSrv := httptest.NewServer(w.rancher)
	t.Cleanup(ecrSrv.Close)
	t.Cleanup(rSrv.Close)
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_ECR": ecrSrv.URL, "AWS_ACCESS_KEY_ID": "AKIDE2E", "AWS_SECRET_ACCESS_KEY": e2eAWSSecret,
		"AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_CONFIG_FILE": filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"), "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_USE_FIPS_ENDPOINT": "", "AWS_USE_DUALSTACK_ENDPOINT": "", "AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_ENDPOINT_URL": "",
	} {
		t.Setenv(k, v)
	}
	w.env = map[string]string{
		"CATTLE_URL": rSrv.URL + "/v2-beta/projects/" + e2eProject, "CATTLE_ACCESS_KEY": "ak", "CATTLE_SECRET_KEY": e2eRancherSK,
		"AWS_REGION": "us-east-1", "LOG_LEVEL": "debug", "LISTEN_PORT": "0",
	}
	return w
}

func (w *world) run(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	var o, e bytes.Buffer
	err = run(ctx, args, envOf(w.env), &o, &e)
	return o.String(), e.String(), err
}

func exitCode(err error) int {
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	}
	return 1
}

func noSecrets(t *testing.T, out string, secrets ...string) {
	t.Helper()
	for _, s := range append(secrets, e2eRancherSK, e2eAWSSecret) {
		if s != "" && strings.Contains(out, s) {
			t.Errorf("output holds secret %q:\n%s", s, out)
		}
	}
}

func TestRun_Once(t *testing.T) {
	w := newWorld(t)
	reg := w.rancher.AddRegistry(e2eProject, w.ecr.Host(e2eAccount), "")
	cred := w.rancher.AddCredential(e2eProject, reg, "AWS", "old", "")
	out, logs, err := w.run(t.Context(), "--once")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, logs)
	}
	c, _ := w.rancher.Credential(cred)
	if c.SecretValue == "" || c.SecretValue != w.ecr.Password(e2eAccount) {
		t.Errorf("credential = %+v, want the token ECR handed out", c)
	}
	if !strings.Contains(logs, `msg="run finished"`) || !strings.Contains(logs, "written=1") {
		t.Errorf("no summary line:\n%s", logs)
	}
	noSecrets(t, out+logs, w.ecr.Password(e2eAccount))
}

func TestRun_OnceFailureExitsOne(t *testing.T) {
	w := newWorld(t)
	_, logs, err := w.run(t.Context(), "--once")
	if got := exitCode(err); got != 1 {
		t.Fatalf("exit = %d (%v), want 1", got, err)
	}
	if !strings.Contains(logs, "set AUTO_CREATE=true") {
		t.Errorf("the log does not name the fix:\n%s", logs)
	}
	noSecrets(t, logs, w.ecr.Password(e2eAccount))
}

func TestRun_AutoCreateFromEnv(t *testing.T) {
	w := newWorld(t)
	w.env["AUTO_CREATE"] = "true"
	w.env["AWS_ECR_REGISTRY_IDS"] = "111122223333,444455556666"
	if _, logs, err := w.run(t.Context(), "--once"); err != nil {
		t.Fatalf("run: %v\n%s", err, logs)
	}
	regs := w.rancher.Registries(e2eProject)
	creds := w.rancher.Credentials(e2eProject)
	if len(regs) != 2 || len(creds) != 2 {
		t.Errorf("registries %+v credentials %+v, want two of each", regs, creds)
	}
}

func TestRun_BadConfigExitsTwoWithoutNetwork(t *testing.T) {
	w := newWorld(t)
	w.env["REFRESH_SCHEDULE"] = "whenever"
	w.env["AWS_ECR_REGISTRY_IDS"] = "42"
	_, _, err := w.run(t.Context(), "--once")
	if got := exitCode(err); got != 2 {
		t.Fatalf("exit = %d (%v), want 2", got, err)
	}
	if lines := strings.Split(err.Error(), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], "AWS_ECR_REGISTRY_IDS: ") || !strings.HasPrefix(lines[1], "REFRESH_SCHEDULE: ") {
		t.Errorf("error = %q, want one line per variable", err)
	}
	if w.rancher.Requests() != 0 || w.ecr.Calls() != 0 {
		t.Errorf("network was used before the configuration was valid")
	}
}

func TestRun_DryRun(t *testing.T) {
	w := newWorld(t)
	reg := w.rancher.AddRegistry(e2eProject, w.ecr.Host(e2eAccount), "")
	cred := w.rancher.AddCredential(e2eProject, reg, "AWS", "old", "")
	out, logs, err := w.run(t.Context(), "--dry-run")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, logs)
	}
	if c, _ := w.rancher.Credential(cred); c.Writes != 0 {
		t.Errorf("dry run wrote: %+v", c)
	}
	if !strings.Contains(logs, "dry run: would update registry credential") {
		t.Errorf("no planned write in the output:\n%s", logs)
	}
	noSecrets(t, out+logs, w.ecr.Password(e2eAccount))
}

func TestRun_Daemon(t *testing.T) {
	w := newWorld(t)
	reg := w.rancher.AddRegistry(e2eProject, w.ecr.Host(e2eAccount), "")
	w.rancher.AddCredential(e2eProject, reg, "AWS", "old", "")
	written := make(chan struct{}, 1)
	w.rancher.SetIntercept(func(_ http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut {
			select {
			case written <- struct{}{}:
			default:
			}
		}
		return false
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() {
		_, _, err := w.run(ctx)
		done <- err
	}()
	testwait.Recv(t, written) // the first run happens at start, not at the first cron tick
	cancel()                  // SIGTERM
	if err := testwait.Recv(t, done); err != nil {
		t.Fatalf("daemon exit: %v, want 0", err)
	}
}

func TestRun_VersionAndHelp(t *testing.T) {
	t.Parallel()
	var o bytes.Buffer
	if err := run(t.Context(), []string{"--version"}, envOf(nil), &o, io.Discard); err != nil || !strings.HasPrefix(o.String(), "rancher-ecr-credentials ") {
		t.Errorf("--version: %q, %v", o.String(), err)
	}
	o.Reset()
	if err := run(t.Context(), []string{"--help"}, envOf(nil), &o, io.Discard); err != nil || !strings.Contains(o.String(), "CATTLE_URL") {
		t.Errorf("--help: %q, %v", o.String(), err)
	}
}

// The README's first command, as one cycle, for either Rancher.
func TestRun_Demo(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		args []string
		want []string
	}{
		"Rancher1": {[]string{"--demo", "--once"}, []string{"stand-in Rancher 1.x API at http://127.0.0.1:", "fresh ECR token for 111122223333",
			"fresh ECR token for 444455556666", "credential 1c2   user someone  password: kept as it was",
			`"http://[bad address" is no host: skipped with one warning`, "AUTO_CREATE=true (set by the demo) creates it",
			"as a daemon the next refresh would be at ", "local time (in 5h"}},
		"Rancher2": {[]string{"--demo", "--demo-rancher2", "--once"}, []string{"stand-in Rancher 2.x API at http://127.0.0.1:",
			"Rancher project c-demo1:p-batch now holds", "dockerCredential hub-and-ecr                  (written 0 times by the demo)",
			"password: fresh ECR token for 444455556666", "its other password cannot be read back, so it is left alone"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var o, e bytes.Buffer
			if err := run(t.Context(), tt.args, envOf(nil), &o, &e); err != nil {
				t.Fatalf("demo: %v\n%s", err, e.String())
			}
			for _, want := range tt.want {
				if !strings.Contains(o.String(), want) {
					t.Errorf("demo output lacks %q:\n%s", want, o.String())
				}
			}
			if first, _, _ := strings.Cut(o.String(), "\n"); !strings.HasPrefix(first, "demo: a full refresh cycle") {
				t.Errorf("the demo does not start by saying what it is: %q", first)
			}
			if strings.Contains(o.String()+e.String(), "ECRTEST-PASSWORD") || strings.Contains(o.String()+e.String(), "hand-kept-password") {
				t.Errorf("demo prints a password")
			}
		})
	}
}

// An unscoped Rancher 1.x URL (…/v2-beta) writes into the key's own
// environment; logs name it by its id, not "default".
func TestRun_UnscopedURLNamesTheEnvironment(t *testing.T) {
	w := newWorld(t)
	w.rancher.AddProject(e2eProject) // an environment key lists its own environment
	reg := w.rancher.AddRegistry(e2eProject, w.ecr.Host(e2eAccount), "")
	w.rancher.AddCredential(e2eProject, reg, "AWS", "old", "")
	w.env["CATTLE_URL"] = strings.TrimSuffix(w.env["CATTLE_URL"], "/projects/"+e2eProject)
	_, logs, err := w.run(t.Context(), "--once")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, logs)
	}
	if !strings.Contains(logs, "scope="+e2eProject) || strings.Contains(logs, "scope=default") {
		t.Errorf("the scope is not named by the key's environment %s:\n%s", e2eProject, logs)
	}
}
