package kubesecret_test

import (
	"encoding/json"
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
)

var server kubetest.Shared

func TestMain(m *testing.M) { os.Exit(server.Run(m)) }

const host = "111122223333.dkr.ecr.us-east-1.amazonaws.com"

// env is one test's real kube-apiserver and its admin client.
type env struct {
	t     *testing.T
	srv   *kubetest.Server
	admin kubernetes.Interface
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := server.Start(t)
	return &env{t: t, srv: srv, admin: client(t, srv.AdminConfig())}
}

var client = kubetest.Clientset

// namespaces creates namespaces (name → labels).
func (e *env) namespaces(nss map[string]map[string]string) {
	e.t.Helper()
	for name, labels := range nss {
		_, err := e.admin.CoreV1().Namespaces().Create(e.t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
		if err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *env) secret(ns, name string) (*corev1.Secret, bool) {
	e.t.Helper()
	s, err := e.admin.CoreV1().Secrets(ns).Get(e.t.Context(), name, metav1.GetOptions{})
	if err != nil {
		return nil, false
	}
	return s, true
}

// password returns the password for host in a dockerconfigjson Secret, after
// checking the entry is whole (username, password, auth).
func password(t *testing.T, s *corev1.Secret) string {
	t.Helper()
	if s.Type != corev1.SecretTypeDockerConfigJson || s.Labels[kubesecret.ManagedByLabel] != kubesecret.ManagedBy {
		t.Fatalf("secret %s/%s: type %s labels %v", s.Namespace, s.Name, s.Type, s.Labels)
	}
	var cfg struct {
		Auths map[string]struct{ Username, Password, Auth string } `json:"auths"`
	}
	if err := json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg); err != nil {
		t.Fatal(err)
	}
	a := cfg.Auths[host]
	if a.Username != "AWS" || a.Password == "" || a.Auth == "" {
		t.Fatalf("secret %s/%s: entry for %s is %+v", s.Namespace, s.Name, host, a)
	}
	return a.Password
}
