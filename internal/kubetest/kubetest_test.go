package kubetest_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
)

func clientset(t *testing.T, cfg *rest.Config) *kubernetes.Clientset {
	t.Helper()
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// RBAC is real: a user with no binding is refused; a RoleBinding grants exactly its rules.
func TestUserConfig_RBACEnforced(t *testing.T) {
	t.Parallel()
	srv := kube.Start(t)
	ctx := ctxFor(t)
	admin := clientset(t, srv.AdminConfig())
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "rbac-test"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("admin creates a namespace: %v", err)
	}
	alice := clientset(t, srv.UserConfig("alice", "team-a"))
	_, err := alice.CoreV1().Secrets("rbac-test").List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("alice lists secrets without a binding: err = %v, want 403 Forbidden", err)
	}
	if _, err := admin.RbacV1().Roles("rbac-test").Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "secret-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"list"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Bound to alice's group, so the certificate's groups are proven to count too.
	if _, err := admin.RbacV1().RoleBindings("rbac-test").Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "team-a-secret-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "secret-reader"},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "Group", Name: "team-a"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Asked by the admin, so alice's requests stay three.
	kubetest.WaitAllowed(t, admin, "alice", []string{"team-a"}, "rbac-test", "list", "", "secrets")
	if _, err := alice.CoreV1().Secrets("rbac-test").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("alice lists secrets with a binding to her group: %v", err)
	}
	_, err = alice.CoreV1().Secrets("default").List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("alice lists secrets in another namespace: err = %v, want 403 Forbidden", err)
	}

	n, err := srv.Requests("alice")
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("audit log counts %d requests by alice, want 3", n)
	}
}

// A ServiceAccount token minted through TokenRequest authenticates as that ServiceAccount, also through
// a kubeconfig file.
func TestServiceAccountConfig(t *testing.T) {
	t.Parallel()
	srv := kube.Start(t)
	ctx := ctxFor(t)
	admin := clientset(t, srv.AdminConfig())
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "sa-test"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.ServiceAccountConfig(ctx, "sa-test", "robot"); !apierrors.IsNotFound(err) {
		t.Fatalf("token for a missing ServiceAccount: err = %v, want 404", err)
	}
	if _, err := admin.CoreV1().ServiceAccounts("sa-test").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "robot"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg, err := srv.ServiceAccountConfig(ctx, "sa-test", "robot")
	if err != nil {
		t.Fatal(err)
	}
	path := kubetest.WriteKubeconfig(t, cfg, "sa-test")
	fromFile, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	review, err := clientset(t, fromFile).AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("self subject review through the kubeconfig: %v", err)
	}
	if got, want := review.Status.UserInfo.Username, "system:serviceaccount:sa-test:robot"; got != want {
		t.Errorf("authenticated as %q, want %q", got, want)
	}
	_, err = clientset(t, fromFile).CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("ServiceAccount lists namespaces without a binding: err = %v, want 403 Forbidden", err)
	}
}

// Without the binaries the helper skips, naming the script (or fails under REQUIRE_KUBE=1: not tested
// here, since it would fail this test).
func TestAssets_Missing(t *testing.T) {
	t.Setenv(kubetest.EnvAssets, t.TempDir())
	_, err := kubetest.Assets()
	if err == nil {
		t.Fatal("Assets with an empty folder: no error")
	}
	if got := err.Error(); !strings.Contains(got, kubetest.Script) || !strings.Contains(got, "kube-apiserver") {
		t.Errorf("error %q does not name the script and the missing binary", got)
	}
}

// A test binary that dies (a timeout, a crash, SIGKILL) takes its servers with it: envtest alone
// would leave them running in their own process group.
func TestNew_ServerDiesWithTestBinary(t *testing.T) {
	if dir := os.Getenv("KUBETEST_CHILD_DIR"); dir != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		srv, err := kubetest.New(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println("URL", srv.URL)
		<-ctx.Done() // killed by the parent long before
		return
	}
	kubetest.SkipIfMissing(t)
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^TestNew_ServerDiesWithTestBinary$", "-test.count=1")
	cmd.Env = append(os.Environ(), "KUBETEST_CHILD_DIR="+t.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "URL "); ok {
				urls <- u
			}
		}
		close(urls)
	}()
	u := testwait.Recv(t, urls)
	if u == "" {
		t.Fatal("the child test binary started no server")
	}
	host := strings.TrimPrefix(u, "https://")
	if c, err := net.Dial("tcp", host); err != nil {
		t.Fatalf("the child's server is not listening: %v", err)
	} else {
		c.Close()
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 30*time.Second, "the killed test binary's kube-apiserver to stop listening", func() bool {
		c, err := net.Dial("tcp", host)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
}
