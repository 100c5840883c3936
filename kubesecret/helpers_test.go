package kubesecret_test

import (
	"net/http"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/targettest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
)

const host = "111122223333.dkr.ecr.us-east-1.amazonaws.com"

var managed = map[string]string{kubesecret.ManagedByLabel: kubesecret.ManagedBy}

func auths(pw string) map[string]kubesecret.Auth {
	return map[string]kubesecret.Auth{host: {Username: "AWS", Password: pw}}
}

// env is one test's view of the shared server (an admin client), and every
// request a writer made (method and path), for counting.
type env struct {
	*targettest.Env
	mu    sync.Mutex
	calls []string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return &env{Env: targettest.New(t, &server, host)}
}

// newEnvIn is newEnv with namespace ns made.
func newEnvIn(t *testing.T, ns string) *env {
	t.Helper()
	e := newEnv(t)
	e.Namespace(ns)
	return e
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
	return kubetest.Clientset(e.T, cfg).CoreV1()
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

// password returns the password for host in s (targettest.Password).
func password(t *testing.T, s *corev1.Secret) string {
	t.Helper()
	return targettest.Password(t, s, host)
}
