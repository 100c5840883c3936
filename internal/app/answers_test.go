package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/apptest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testbin"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
)

// Issue 18 item 5 is about answers a person can act on; these tests run the
// daemon as wired, on a real kube-apiserver where Kubernetes is involved.

// readyz returns the status and body of the daemon's /readyz on port, or 0
// while it does not answer yet.
func readyz(port string) (int, string) {
	resp, err := http.Get("http://127.0.0.1:" + port + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// daemonUntil runs the daemon with env until stop (or the end of the test),
// which returns its logs and exit.
func daemonUntil(t *testing.T, env map[string]string) (stop func() string) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan string, 1)
	go func() {
		_, l, err := run(ctx, env)
		done <- fmt.Sprintf("%s\nexit: %v", l, err)
	}()
	var once sync.Once
	var out string
	stop = func() string {
		once.Do(func() {
			cancel()
			out = testwait.Recv(t, done)
		})
		return out
	}
	t.Cleanup(func() { stop() })
	return stop
}

// A selector that matches no namespace is named, with what to do, in the
// --once run's error line (exit 1) and in /readyz; nothing speaks of Rancher
// or of "no environment, project or namespace". Labelling a namespace makes
// the daemon ready.
func TestRun_SelectorMatchesNothing(t *testing.T) {
	srv := kubetest.Start(t)
	admin := kubetest.Clientset(t, srv.AdminConfig())
	apptest.NewWorld(t) // the ECR stand-in
	t.Setenv("KUBECONFIG", kubetest.WriteKubeconfig(t, srv.AdminConfig(), "default"))
	env := map[string]string{"KUBE_NAMESPACE_SELECTOR": "team=nobody", "AWS_REGION": "us-east-1", "AWS_ECR_REGISTRY_IDS": apptest.Account}
	const named = `no namespace matches KUBE_NAMESPACE_SELECTOR \"team=nobody\" (KUBE_EXCLUDE_NAMESPACES \"kube-system,kube-public,kube-node-lease\"): create or label a namespace to match, or change the setting`

	_, logs, err := run(t.Context(), env, "--once")
	if got := exitCode(err); got != 1 {
		t.Errorf("--once exit %d, want 1\n%s", got, logs)
	}
	if line := firstLine(logs, `msg="nothing written"`); !strings.Contains(line, `level=error`) || !strings.Contains(line, `error="`+named+`"`) {
		t.Errorf("the error line does not name the selector: %q\n%s", line, logs)
	}
	for _, wrong := range []string{"no environment, project or namespace", "CATTLE_", "Rancher"} {
		if strings.Contains(logs, wrong) {
			t.Errorf("--once output speaks of %q:\n%s", wrong, logs)
		}
	}

	port := testbin.FreePort(t)
	stop := daemonUntil(t, apptest.With(env, "LISTEN_PORT", port))
	var body string
	testwait.For(t, 30*time.Second, "/readyz naming the selector", func() bool {
		var code int
		code, body = readyz(port)
		return code == http.StatusServiceUnavailable && strings.Contains(body, `"reason": "`+named+`"`)
	})
	if _, err := admin.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: "team-nobody", Labels: map[string]string{"team": "nobody"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 30*time.Second, "/readyz 200 once a namespace matches", func() bool {
		code, _ := readyz(port)
		return code == http.StatusOK
	})
	if logs := stop(); strings.Contains(logs, "no environment, project or namespace") || !strings.Contains(logs, "exit: <nil>") {
		t.Errorf("daemon logs:\n%s", logs)
	}
}

// A Kubernetes-only setup, valid or not, hears nothing of CATTLE_URL or the
// Rancher keys: an invalid selector is one line naming KUBE_NAMESPACE_SELECTOR
// (exit 2, before any network call), and a valid setup runs without any
// Rancher line.
func TestRun_KubernetesOnlyNoRancherLines(t *testing.T) {
	w := apptest.NewWorld(t)
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none")) // nothing may be reached
	for name, env := range map[string]map[string]string{
		"BadSelector":             {"AWS_REGION": "us-east-1", "KUBE_NAMESPACE_SELECTOR": "team in (a"},
		"BadSelectorAndNamespace": {"AWS_REGION": "us-east-1", "KUBE_NAMESPACE_SELECTOR": "!", "KUBE_NAMESPACES": "a,all"},
		// Keys left in the environment (an agent's, a copied .env) turn no Rancher target on.
		"BadSelectorRancherKeysLeft": {"AWS_REGION": "us-east-1", "KUBE_NAMESPACE_SELECTOR": "a in (", "CATTLE_ACCESS_KEY": "x", "CATTLE_SECRET_KEY": "y"},
	} {
		t.Run(name, func(t *testing.T) {
			stdout, logs, err := run(t.Context(), env, "--once")
			if got := exitCode(err); got != 2 || err == nil {
				t.Fatalf("exit %d (%v), want 2", got, err)
			}
			all := err.Error() + stdout + logs
			if !strings.Contains(all, "KUBE_NAMESPACE_SELECTOR: ") {
				t.Errorf("the error does not name KUBE_NAMESPACE_SELECTOR:\n%s", all)
			}
			for _, wrong := range []string{"CATTLE_", "PLATFORM_", "required"} {
				if strings.Contains(all, wrong) {
					t.Errorf("a Kubernetes-only setup hears of %q:\n%s", wrong, all)
				}
			}
		})
	}
	if w.ECR.Calls() != 0 {
		t.Error("ECR was called before the configuration was valid")
	}
}

// A replica that may not read or write the Lease says so on /readyz and in
// its log as every RBAC refusal is said: the verb, leases.coordination.k8s.io,
// the namespace and the grant; not "no replica holds the lease", not
// client-go's raw text.
func TestRun_LeaseRefusedNamedOnReadyz(t *testing.T) {
	srv := kubetest.Start(t)
	w := apptest.NewWorld(t) // Rancher is the target: the replica never leads, so never writes
	t.Setenv("KUBECONFIG", kubetest.WriteKubeconfig(t, srv.UserConfig("no-lease-grants"), "default"))
	port := testbin.FreePort(t)
	env := apptest.With(apptest.With(apptest.With(w.Env, "LEADER_ELECTION", "true"), "LEADER_ELECTION_NAMESPACE", "default"), "LISTEN_PORT", port)
	stop := daemonUntil(t, env)
	const grant = `cannot get leases.coordination.k8s.io in namespace default: grant verbs [get create update] on leases.coordination.k8s.io in that namespace (Role/ClusterRole with a RoleBinding)`
	var body string
	testwait.For(t, 30*time.Second, "/readyz naming the Lease grant", func() bool {
		var code int
		code, body = readyz(port)
		return code == http.StatusServiceUnavailable && strings.Contains(body, grant)
	})
	if !strings.Contains(body, `"reason": "follower: leader election cannot use its Lease: leases.coordination.k8s.io \"rancher-ecr-credentials\" is forbidden: `+grant) {
		t.Errorf("/readyz reason:\n%s", body)
	}
	if strings.Contains(body, "no replica holds the lease") {
		t.Errorf("/readyz says no replica holds the lease:\n%s", body)
	}
	logs := stop()
	line := firstLine(logs, `msg="leader election: lease call failed; retrying"`)
	if !strings.Contains(line, "level=error") || !strings.Contains(line, grant) {
		t.Errorf("no error line naming the grant: %q\n%s", line, logs)
	}
	if w.Rancher.Requests() != 0 {
		t.Errorf("a replica that never led made %d Rancher requests", w.Rancher.Requests())
	}
}

// A CATTLE_URL that points at a Kubernetes API server (a real kube-apiserver,
// its CA trusted through RANCHER_CA_FILE) is named as such, in the Rancher
// 1.x and 2.x URL forms, with a key pair and with an API token: not "the key
// pair was rejected", not "does the project exist".
func TestRun_CattleURLIsKubernetesAPIServer(t *testing.T) {
	srv := kubetest.Start(t)
	apptest.NewWorld(t) // the ECR stand-in
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, srv.CAData(), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, env := range map[string]map[string]string{
		"Rancher1BareHost": {"CATTLE_URL": srv.URL, "CATTLE_ACCESS_KEY": "ak", "CATTLE_SECRET_KEY": apptest.RancherSecret},
		"Rancher2Token":    {"CATTLE_URL": srv.URL + "/v3/project/c-abcde:p-fghij", "CATTLE_SECRET_KEY": "token-abcde:" + apptest.RancherSecret},
		"Rancher2KeyPair":  {"CATTLE_URL": srv.URL + "/v3", "RANCHER_PROJECTS": "c-abcde:p-fghij", "CATTLE_ACCESS_KEY": "token-abcde", "CATTLE_SECRET_KEY": apptest.RancherSecret},
	} {
		t.Run(name, func(t *testing.T) {
			env["AWS_REGION"], env["RANCHER_CA_FILE"] = "us-east-1", ca
			_, logs, err := run(t.Context(), env, "--once")
			if got := exitCode(err); got != 1 {
				t.Errorf("exit %d, want 1", got)
			}
			line := firstLine(logs, `msg="scope failed"`)
			for _, want := range []string{"this does not look like a Rancher API (it answered 40", "as a Kubernetes API server does",
				"Rancher 1.x answers at https://<rancher>/v2-beta", "Rancher 2.x at https://<rancher>/v3", "set KUBE_NAMESPACES"} {
				if !strings.Contains(line, want) {
					t.Errorf("the failure line lacks %q: %s\n%s", want, line, logs)
				}
			}
			for _, wrong := range []string{"key pair", "API token", "does the environment or project exist"} {
				if strings.Contains(logs, wrong) {
					t.Errorf("the logs say %q:\n%s", wrong, logs)
				}
			}
			apptest.NoSecrets(t, logs)
		})
	}
}
