package app

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/apptest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/buildinfo"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
)

// run runs the command with env, as main does.
func run(ctx context.Context, env map[string]string, args ...string) (stdout, stderr string, err error) {
	var o, e bytes.Buffer
	err = Run(ctx, buildinfo.Stamp{}, args, apptest.EnvOf(env), &o, &e)
	return o.String(), e.String(), err
}

func exitCode(err error) int {
	var ee *ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.Code
	}
	return 1
}

var (
	writeLine     = regexp.MustCompile(`level=info msg="[^"]* (created|updated|written)"`)
	unchangedLine = regexp.MustCompile(`level=debug msg="[^"]* unchanged"`)
	summaryLine   = regexp.MustCompile(`msg="run finished[^"]*".*`)
	fieldRE       = regexp.MustCompile(` (written|unchanged)=(\d+)`)
)

// summaryMatchesLines checks that the summary line of a run's logs counts
// what its lines say, and returns the written and unchanged objects.
func summaryMatchesLines(t *testing.T, run int, logs string) (written, unchanged int) {
	t.Helper()
	summary := summaryLine.FindString(logs)
	if summary == "" {
		t.Fatalf("run %d: no summary line:\n%s", run, logs)
	}
	counts := map[string]string{}
	for _, m := range fieldRE.FindAllStringSubmatch(summary, -1) {
		counts[m[1]] = m[2]
	}
	written, unchanged = len(writeLine.FindAllString(logs, -1)), len(unchangedLine.FindAllString(logs, -1))
	if counts["written"] != strconv.Itoa(written) || counts["unchanged"] != strconv.Itoa(unchanged) {
		t.Errorf("run %d: summary %s, but %d write lines and %d unchanged lines:\n%s", run, summary, written, unchanged, logs)
	}
	return written, unchanged
}

func TestRun_Once(t *testing.T) {
	w := apptest.NewWorld(t)
	reg := w.Rancher.AddRegistry(apptest.Project, w.ECR.Host(apptest.Account), "")
	cred := w.Rancher.AddCredential(apptest.Project, reg, "AWS", "old", "")
	out, logs, err := run(t.Context(), w.Env, "--once")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, logs)
	}
	c, _ := w.Rancher.Credential(cred)
	if c.SecretValue == "" || c.SecretValue != w.ECR.Password(apptest.Account) {
		t.Errorf("credential = %+v, want the token ECR handed out", c)
	}
	if !strings.Contains(logs, `msg="run finished"`) || !strings.Contains(logs, "written=1") {
		t.Errorf("no summary line:\n%s", logs)
	}
	// The start-up line: the settings, secrets REDACTED, the version.
	start := firstLine(logs, `msg=starting`)
	for _, want := range []string{"cattle_secret_key=REDACTED", "cattle_url=\"http://127.0.0.1:", "aws_region=us-east-1", "version="} {
		if !strings.Contains(start, want) {
			t.Errorf("start-up line lacks %s: %s", want, start)
		}
	}
	apptest.NoSecrets(t, out+logs, w.ECR.Password(apptest.Account))
}

func firstLine(logs, with string) string {
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, with) {
			return l
		}
	}
	return ""
}

func TestRun_OnceFailureExitsOne(t *testing.T) {
	w := apptest.NewWorld(t)
	_, logs, err := run(t.Context(), w.Env, "--once")
	if got := exitCode(err); got != 1 {
		t.Fatalf("exit = %d (%v), want 1", got, err)
	}
	if !strings.Contains(logs, "set AUTO_CREATE=true") {
		t.Errorf("the log does not name the fix:\n%s", logs)
	}
	apptest.NoSecrets(t, logs, w.ECR.Password(apptest.Account))
}

func TestRun_AutoCreateFromEnv(t *testing.T) {
	w := apptest.NewWorld(t)
	w.Env["AUTO_CREATE"] = "true"
	w.Env["AWS_ECR_REGISTRY_IDS"] = "111122223333,444455556666"
	if _, logs, err := run(t.Context(), w.Env, "--once"); err != nil {
		t.Fatalf("run: %v\n%s", err, logs)
	}
	regs := w.Rancher.Registries(apptest.Project)
	creds := w.Rancher.Credentials(apptest.Project)
	if len(regs) != 2 || len(creds) != 2 {
		t.Errorf("registries %+v credentials %+v, want two of each", regs, creds)
	}
}

func TestRun_BadConfigExitsTwoWithoutNetwork(t *testing.T) {
	w := apptest.NewWorld(t)
	w.Env["REFRESH_SCHEDULE"] = "whenever"
	w.Env["AWS_ECR_REGISTRY_IDS"] = "42"
	_, _, err := run(t.Context(), w.Env, "--once")
	if got := exitCode(err); got != 2 {
		t.Fatalf("exit = %d (%v), want 2", got, err)
	}
	if lines := strings.Split(err.Error(), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], "AWS_ECR_REGISTRY_IDS: ") || !strings.HasPrefix(lines[1], "REFRESH_SCHEDULE: ") {
		t.Errorf("error = %q, want one line per variable", err)
	}
	if w.Rancher.Requests() != 0 || w.ECR.Calls() != 0 {
		t.Errorf("network was used before the configuration was valid")
	}
}

func TestRun_DryRun(t *testing.T) {
	w := apptest.NewWorld(t)
	reg := w.Rancher.AddRegistry(apptest.Project, w.ECR.Host(apptest.Account), "")
	cred := w.Rancher.AddCredential(apptest.Project, reg, "AWS", "old", "")
	out, logs, err := run(t.Context(), w.Env, "--dry-run")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, logs)
	}
	if c, _ := w.Rancher.Credential(cred); c.Writes != 0 {
		t.Errorf("dry run wrote: %+v", c)
	}
	if !strings.Contains(logs, "dry run: would update registry credential") {
		t.Errorf("no planned write in the output:\n%s", logs)
	}
	apptest.NoSecrets(t, out+logs, w.ECR.Password(apptest.Account))
}

// puts delivers on each credential write (PUT) the Rancher stand-in of w
// receives, dropping what is not taken at once.
func puts(w *apptest.World) <-chan struct{} {
	written := make(chan struct{}, 1)
	w.Rancher.SetIntercept(func(_ http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut {
			select {
			case written <- struct{}{}:
			default:
			}
		}
		return false
	})
	return written
}

func TestRun_Daemon(t *testing.T) {
	w := apptest.NewWorld(t)
	reg := w.Rancher.AddRegistry(apptest.Project, w.ECR.Host(apptest.Account), "")
	w.Rancher.AddCredential(apptest.Project, reg, "AWS", "old", "")
	written := puts(w)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() {
		_, _, err := run(ctx, w.Env)
		done <- err
	}()
	testwait.Recv(t, written) // the first run happens at start, not at the first cron tick
	cancel()                  // SIGTERM
	if err := testwait.Recv(t, done); err != nil {
		t.Fatalf("daemon exit: %v, want 0", err)
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
			// The caller's own Rancher and AWS settings do not reach the demo.
			env := map[string]string{"CATTLE_URL": "https://rancher.invalid/v3", "RANCHER_PROJECTS": "c-x:p-y", "AWS_REGION": "eu-west-1"}
			out, logs, err := run(t.Context(), env, tt.args...)
			if err != nil {
				t.Fatalf("demo: %v\n%s", err, logs)
			}
			for _, want := range tt.want {
				if !strings.Contains(out, want) {
					t.Errorf("demo output lacks %q:\n%s", want, out)
				}
			}
			if first, _, _ := strings.Cut(out, "\n"); !strings.HasPrefix(first, "demo: a full refresh cycle") {
				t.Errorf("the demo does not start by saying what it is: %q", first)
			}
			if strings.Contains(out+logs, "ECRTEST-PASSWORD") || strings.Contains(out+logs, "hand-kept-password") {
				t.Errorf("demo prints a password")
			}
		})
	}
}

// An unscoped Rancher 1.x URL (…/v2-beta) writes into the key's own
// environment; logs name it by its id, not "default".
func TestRun_UnscopedURLNamesTheEnvironment(t *testing.T) {
	w := apptest.NewWorld(t)
	w.Rancher.AddProject(apptest.Project) // an environment key lists its own environment
	reg := w.Rancher.AddRegistry(apptest.Project, w.ECR.Host(apptest.Account), "")
	w.Rancher.AddCredential(apptest.Project, reg, "AWS", "old", "")
	w.Env["CATTLE_URL"] = strings.TrimSuffix(w.Env["CATTLE_URL"], "/projects/"+apptest.Project)
	_, logs, err := run(t.Context(), w.Env, "--once")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, logs)
	}
	if !strings.Contains(logs, "scope="+apptest.Project) || strings.Contains(logs, "scope=default") {
		t.Errorf("the scope is not named by the key's environment %s:\n%s", apptest.Project, logs)
	}
}

// A project listed twice is written once, and said once.
func TestRun_DuplicateProjectsWrittenOnce(t *testing.T) {
	w := apptest.NewWorld(t)
	reg := w.Rancher.AddRegistry(apptest.Project, w.ECR.Host(apptest.Account), "")
	w.Env["RANCHER_PROJECTS"] = apptest.Project + "," + apptest.Project + " ," + apptest.Project
	_, logs, err := run(t.Context(), w.Env, "--once")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, logs)
	}
	if got := strings.Count(logs, "more than once"); got != 1 {
		t.Errorf("%d warnings, want 1:\n%s", got, logs)
	}
	if creds := w.Rancher.Credentials(apptest.Project); len(creds) != 1 || creds[0].RegistryID != reg {
		t.Errorf("credentials %+v, want one for %s", creds, reg)
	}
}
