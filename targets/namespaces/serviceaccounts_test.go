package kube_test

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/kube"
)

func pullSecrets(t *testing.T, e *env, ns, name string) []string {
	t.Helper()
	sa, err := e.admin.CoreV1().ServiceAccounts(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	var out []string
	for _, r := range sa.ImagePullSecrets {
		out = append(out, r.Name)
	}
	return out
}

// The Secret is appended once to each named ServiceAccount, every other entry
// kept; a ServiceAccount created later is patched when it appears; other
// ServiceAccounts and unselected namespaces are left alone.
func TestNamespaces_ServiceAccounts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.namespaces(map[string]map[string]string{"sa-a": nil, "sa-b": nil, "sa-off": nil})
	ctx := t.Context()
	mk := func(ns, name string, refs ...string) {
		t.Helper()
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}
		for _, r := range refs {
			sa.ImagePullSecrets = append(sa.ImagePullSecrets, corev1.LocalObjectReference{Name: r})
		}
		if _, err := e.admin.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mk("sa-a", "default", "dockerhub")
	mk("sa-a", "builder")
	mk("sa-a", "unnamed", "dockerhub")
	mk("sa-b", "default", kube.DefaultSecretName) // already there: not added twice
	mk("sa-off", "default")

	sel, _ := kube.ParseSelection([]string{"sa-a", "sa-b"}, "", nil)
	n := kube.New(e.admin, sel, kube.DefaultSecretName, []string{"default", "builder"})
	r := e.refresher(n)
	if err := r.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ns, name string
		want     []string
	}{
		{"sa-a", "default", []string{"dockerhub", kube.DefaultSecretName}},
		{"sa-a", "builder", []string{kube.DefaultSecretName}},
		{"sa-a", "unnamed", []string{"dockerhub"}},
		{"sa-b", "default", []string{kube.DefaultSecretName}},
		{"sa-off", "default", nil},
	} {
		if got := pullSecrets(t, e, c.ns, c.name); !slices.Equal(got, c.want) {
			t.Errorf("%s/%s imagePullSecrets = %v, want %v", c.ns, c.name, got, c.want)
		}
	}
	// A second run adds nothing.
	if err := r.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := pullSecrets(t, e, "sa-a", "default"); !slices.Equal(got, []string{"dockerhub", kube.DefaultSecretName}) {
		t.Errorf("after a second run: %v", got)
	}

	// A ServiceAccount created later is patched by the patcher loop.
	loopCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.RunServiceAccounts(loopCtx) }()
	t.Cleanup(func() { cancel(); <-done })
	mk("sa-b", "builder", "quay")
	waitFor(t, 10*time.Second, "the late serviceaccount patched", func() bool {
		return slices.Equal(pullSecrets(t, e, "sa-b", "builder"), []string{"quay", kube.DefaultSecretName})
	})
}
