package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/ecrsource/ecrtest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/apptest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testbin"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
)

// Issue 18 on a real kube-apiserver: a second --once with the same tokens
// finds every Secret holding them already, rewrites none, and its summary
// counts what its lines say: unchanged, not written.
func TestRun_KubeSecondOnceUnchanged(t *testing.T) {
	srv := kubetest.Start(t)
	admin := kubetest.Clientset(t, srv.AdminConfig())
	for _, ns := range []string{"team-a", "team-b"} {
		if _, err := admin.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	w := apptest.NewWorld(t)
	exp := time.Now().Add(12 * time.Hour)
	w.ECR.SetIntercept(func(rw http.ResponseWriter, _ *http.Request) bool { // the same token at every call
		ecrtest.WriteAnswer(rw, exp, ecrtest.Login{Host: w.ECR.Host(apptest.Account), Password: "SAME-PASSWORD"})
		return true
	})
	t.Setenv("KUBECONFIG", kubetest.WriteKubeconfig(t, srv.AdminConfig(), "default"))
	env := map[string]string{"KUBE_NAMESPACES": "team-a,team-b", "AWS_REGION": "us-east-1", "AWS_ECR_REGISTRY_IDS": apptest.Account, "LOG_LEVEL": "debug"}
	for i := range 2 {
		_, logs, err := run(t.Context(), env, "--once")
		if err != nil {
			t.Fatalf("run %d: %v\n%s", i+1, err, logs)
		}
		written, unchanged := summaryMatchesLines(t, i+1, logs)
		if first := i == 0; first && (written != 2 || unchanged != 0) || !first && (written != 0 || unchanged != 2) {
			t.Errorf("run %d: %d written, %d unchanged; want 2 written, then 2 unchanged:\n%s", i+1, written, unchanged, logs)
		}
		apptest.NoSecrets(t, logs, "SAME-PASSWORD")
	}
}

// With LEADER_ELECTION the daemon takes the Lease on a real kube-apiserver,
// then writes, says it leads on /readyz, and stops cleanly.
func TestRun_LeaderElection(t *testing.T) {
	srv := kubetest.Start(t)
	admin := kubetest.Clientset(t, srv.AdminConfig())
	w := apptest.NewWorld(t)
	written := puts(w)
	w.Rancher.AddCredential(apptest.Project, w.Rancher.AddRegistry(apptest.Project, w.ECR.Host(apptest.Account), ""), "AWS", "old", "")
	t.Setenv("KUBECONFIG", kubetest.WriteKubeconfig(t, srv.AdminConfig(), ""))
	port := testbin.FreePort(t)
	w.Env["LEADER_ELECTION"], w.Env["LEADER_ELECTION_NAMESPACE"], w.Env["LISTEN_PORT"] = "true", "default", port
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, logs, err := run(ctx, w.Env)
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, logs)
		}
		done <- err
	}()
	testwait.Recv(t, written)
	lease, err := admin.CoordinationV1().Leases("default").Get(t.Context(), "rancher-ecr-credentials", metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		t.Fatalf("the Lease is not held while the daemon writes: %+v, %v", lease, err)
	}
	resp, err := http.Get("http://127.0.0.1:" + port + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"role": "leader"`) {
		t.Errorf("/readyz = %s, want this replica named the leader", body)
	}
	cancel()
	if err := testwait.Recv(t, done); err != nil {
		t.Errorf("daemon exit: %v, want 0", err)
	}
}

// Issue 18 item 4 on a real kube-apiserver: once the cause of a refusal is
// gone, /readyz recovers within a minute, not at RETRY_MAX_INTERVAL (15 min):
// a foreign Secret of that name deleted (team-a), a missing grant added
// (team-b). The daemon runs as a user with only what these namespaces need.
func TestRun_RefusalsRecoverWithinAMinute(t *testing.T) {
	srv := kubetest.Start(t)
	admin := kubetest.Clientset(t, srv.AdminConfig())
	ctx := t.Context()
	const user = "recovering-daemon"
	for _, ns := range []string{"team-a", "team-b"} {
		if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "secrets"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "create", "update"}}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := admin.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: user},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	subjects := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: user}, Subjects: subjects}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bind := func(ns string) {
		t.Helper()
		if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "secrets"},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "secrets"}, Subjects: subjects}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	bind("team-a") // team-b: not yet
	kubetest.WaitAllowed(t, admin, user, nil, "", "list", "", "namespaces")
	kubetest.WaitAllowed(t, admin, user, nil, "team-a", "update", "", "secrets")
	if _, err := admin.CoreV1().Secrets("team-a").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "ecr-credentials"},
		StringData: map[string]string{"someone": "else's"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	apptest.NewWorld(t) // the ECR stand-in
	t.Setenv("KUBECONFIG", kubetest.WriteKubeconfig(t, srv.UserConfig(user), "default"))
	port := testbin.FreePort(t)
	stop := daemonUntil(t, map[string]string{"KUBE_NAMESPACES": "team-a,team-b", "AWS_REGION": "us-east-1",
		"AWS_ECR_REGISTRY_IDS": apptest.Account, "LISTEN_PORT": port})
	var body string
	testwait.For(t, 30*time.Second, "/readyz naming both refusals", func() bool {
		var code int
		code, body = readyz(port)
		return code == http.StatusServiceUnavailable && strings.Contains(body, "secret team-a/ecr-credentials exists and is not managed by this daemon") &&
			strings.Contains(body, `secrets in namespace team-b: grant verbs [get create update] on secrets in that namespace`)
	})
	if err := admin.CoreV1().Secrets("team-a").Delete(ctx, "ecr-credentials", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	bind("team-b")
	fixed := time.Now()
	testwait.For(t, time.Minute, "/readyz 200 within a minute of the causes going away", func() bool {
		code, _ := readyz(port)
		return code == http.StatusOK
	})
	t.Logf("ready %s after the causes went away", time.Since(fixed).Round(time.Second))
	for _, ns := range []string{"team-a", "team-b"} {
		if s, err := admin.CoreV1().Secrets(ns).Get(ctx, "ecr-credentials", metav1.GetOptions{}); err != nil || s.Labels["app.kubernetes.io/managed-by"] != "rancher-ecr-credentials" {
			t.Errorf("%s: %v, %v", ns, s, err)
		}
	}
	if logs := stop(); !strings.Contains(logs, "exit: <nil>") {
		t.Errorf("daemon:\n%s", logs)
	}
}

// Issue 18 item 2 as the command line shows it, on a real kube-apiserver:
// --dry-run exits as --once then does (1: a foreign Secret of that name in
// team-a), says what it would write (team-b) and writes nothing; --once then
// writes team-b and fails team-a the same way.
func TestRun_DryRunExitsAsOnceDoes(t *testing.T) {
	srv := kubetest.Start(t)
	admin := kubetest.Clientset(t, srv.AdminConfig())
	for _, ns := range []string{"team-a", "team-b"} {
		if _, err := admin.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := admin.CoreV1().Secrets("team-a").Create(t.Context(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "ecr-credentials"},
		StringData: map[string]string{"someone": "else's"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	apptest.NewWorld(t) // the ECR stand-in
	t.Setenv("KUBECONFIG", kubetest.WriteKubeconfig(t, srv.AdminConfig(), "default"))
	env := map[string]string{"KUBE_NAMESPACES": "team-a,team-b", "AWS_REGION": "us-east-1", "AWS_ECR_REGISTRY_IDS": apptest.Account}
	const refused = "secret team-a/ecr-credentials exists and is not managed by this daemon"

	_, logs, err := run(t.Context(), env, "--dry-run")
	if got := exitCode(err); got != 1 || !strings.Contains(logs, refused) || !strings.Contains(logs, `msg="dry run: would create secret" namespace=team-b`) {
		t.Errorf("--dry-run: exit %d, want 1 naming team-a's Secret and planning team-b's:\n%s", got, logs)
	}
	if _, err := admin.CoreV1().Secrets("team-b").Get(t.Context(), "ecr-credentials", metav1.GetOptions{}); err == nil {
		t.Fatal("--dry-run wrote team-b's Secret")
	}
	_, logs, err = run(t.Context(), env, "--once")
	if got := exitCode(err); got != 1 || !strings.Contains(logs, refused) {
		t.Errorf("--once: exit %d, want 1 naming team-a's Secret:\n%s", got, logs)
	}
	if _, err := admin.CoreV1().Secrets("team-b").Get(t.Context(), "ecr-credentials", metav1.GetOptions{}); err != nil {
		t.Errorf("--once did not write team-b: %v", err)
	}
}
