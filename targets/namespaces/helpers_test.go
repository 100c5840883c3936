package namespaces_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/targettest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/namespaces"
)

const host = "111122223333.dkr.ecr.us-east-1.amazonaws.com"

// env is one test's client, logs and token source for host; at the end no
// password handed out may appear in the logs.
type env struct{ *targettest.Env }

func newEnv(t *testing.T) *env {
	t.Helper()
	return &env{targettest.New(t, &server, host)}
}

// target returns a target over the admin client, logging into e.
func (e *env) target(o namespaces.Options) *namespaces.Target {
	t := namespaces.New(namespaces.API(e.Client(nil)), o)
	t.Logger = e.Log
	return t
}

// namespaces creates namespaces (name → labels).
func (e *env) namespaces(nss map[string]map[string]string) {
	e.T.Helper()
	for name, labels := range nss {
		e.LabelledNamespace(name, labels)
	}
}

// relabel sets a namespace's labels.
func (e *env) relabel(name string, labels map[string]string) {
	e.T.Helper()
	ns, err := e.Admin.CoreV1().Namespaces().Get(e.T.Context(), name, metav1.GetOptions{})
	if err != nil {
		e.T.Fatal(err)
	}
	ns.Labels = labels
	if _, err := e.Admin.CoreV1().Namespaces().Update(e.T.Context(), ns, metav1.UpdateOptions{}); err != nil {
		e.T.Fatal(err)
	}
}

func (e *env) secret(ns, name string) (*corev1.Secret, bool) {
	s, err := e.Admin.CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
	return s, err == nil
}

// password returns the password for host in a dockerconfigjson Secret, after
// checking the entry is whole (username, password, auth) and real-size.
func password(t *testing.T, s *corev1.Secret) string {
	t.Helper()
	pw := targettest.Password(t, s, host)
	if len(pw) != targettest.PasswordSize {
		t.Fatalf("secret %s/%s: the password for %s has %d characters, want %d", s.Namespace, s.Name, host, len(pw), targettest.PasswordSize)
	}
	return pw
}

// waitFor polls cond until it holds or d passes.
var waitFor = testwait.For

func mustSelection(t testing.TB, include []string, selector string, exclude []string) namespaces.Selection {
	t.Helper()
	s, err := namespaces.ParseSelection(include, selector, exclude)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
