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
