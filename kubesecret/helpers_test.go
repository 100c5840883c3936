package kubesecret_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
)

var server kubetest.Shared

func TestMain(m *testing.M) { os.Exit(server.Run(m)) }

const host = "111122223333.dkr.ecr.us-east-1.amazonaws.com"

var managed = map[string]string{kubesecret.ManagedByLabel: kubesecret.ManagedBy}

func auths(pw string) map[string]kubesecret.Auth {
	return map[string]kubesecret.Auth{host: {Username: "AWS", Password: pw}}
}

// env is one test's view of the shared server: an admin client, and every
// request a writer made (method and path), for counting.
type env struct {
	t     *testing.T
	srv   *kubetest.Server
	admin kubernetes.Interface
	mu    sync.Mutex
	calls []string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := server.Start(t)
	return &env{t: t, srv: srv, admin: kubetest.Clientset(t, srv.AdminConfig())}
}

// writer returns a Writer over cfg whose requests e counts.
func (e *env) writer(cfg *rest.Config) *kubesecret.Writer {
	c := e.core(cfg)
	return kubesecret.NewWriter(func(ns string) kubesecret.SecretsAPI { return c.Secrets(ns) })
}

// core returns a core/v1 client over cfg whose requests e counts.
func (e *env) core(cfg *rest.Config) corev1client.CoreV1Interface {
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			e.mu.Lock()
			e.calls = append(e.calls, req.Method+" "+req.URL.Path)
			e.mu.Unlock()
			return rt.RoundTrip(req)
		})
	})
	return kubetest.Clientset(e.t, cfg).CoreV1()
}

// requests returns the requests made since the last call, as "METHOD path".
func (e *env) requests() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.calls
	e.calls = nil
	return out
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

func (e *env) namespace(name string) {
	e.t.Helper()
	_, err := e.admin.CoreV1().Namespaces().Create(e.t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) secret(ns, name string) *corev1.Secret {
	e.t.Helper()
	s, err := e.admin.CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get secret %s/%s: %v", ns, name, err)
	}
	return s
}

func (e *env) create(s *corev1.Secret) *corev1.Secret {
	e.t.Helper()
	out, err := e.admin.CoreV1().Secrets(s.Namespace).Create(e.t.Context(), s, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// grant binds a Role of rules in ns to user.
func (e *env) grant(ns, user string, rules ...rbacv1.PolicyRule) {
	e.t.Helper()
	ctx := e.t.Context()
	if _, err := e.admin.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: user}, Rules: rules}, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	_, err := e.admin.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: user},
		Subjects:   []rbacv1.Subject{{Kind: "User", Name: user, APIGroup: "rbac.authorization.k8s.io"}},
	}, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
}

// entries returns a dockerconfigjson Secret's auths, by key.
func entries(t *testing.T, s *corev1.Secret) map[string]struct{ Username, Password, Auth string } {
	t.Helper()
	var cfg struct {
		Auths map[string]struct{ Username, Password, Auth string } `json:"auths"`
	}
	if err := json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg); err != nil {
		t.Fatalf("secret %s/%s: %v", s.Namespace, s.Name, err)
	}
	return cfg.Auths
}

// password returns the password for host, after checking the Secret is a
// whole labelled dockerconfigjson entry.
func password(t *testing.T, s *corev1.Secret) string {
	t.Helper()
	if s.Type != corev1.SecretTypeDockerConfigJson || s.Labels[kubesecret.ManagedByLabel] != kubesecret.ManagedBy {
		t.Fatalf("secret %s/%s: type %s labels %v", s.Namespace, s.Name, s.Type, s.Labels)
	}
	a := entries(t, s)[host]
	if a.Username != "AWS" || a.Password == "" || a.Auth == "" {
		t.Fatalf("secret %s/%s: entry for %s is %+v", s.Namespace, s.Name, host, a)
	}
	return a.Password
}

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q lacks %q", err, p)
		}
	}
}
