package namespaces_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/namespaces"
)

func pullSecrets(t *testing.T, e *env, ns, name string) []string {
	t.Helper()
	sa, err := e.Admin.CoreV1().ServiceAccounts(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	var out []string
	for _, r := range sa.ImagePullSecrets {
		out = append(out, r.Name)
	}
	return out
}

// The Secret is appended once to each named ServiceAccount when it is
// written, every other entry kept; a dry run patches nothing; while Lead runs
// a ServiceAccount created later, or stripped of the entry, is patched when
// that happens. Other ServiceAccounts and unselected namespaces are left alone.
func TestTarget_ServiceAccounts(t *testing.T) {
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
		if _, err := e.Admin.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mk("sa-a", "default", "dockerhub")
	mk("sa-a", "builder")
	mk("sa-a", "unnamed", "dockerhub")
	mk("sa-b", "default", namespaces.DefaultSecretName) // already there: not added twice
	mk("sa-off", "default")
	o := namespaces.Options{Selection: mustSelection(t, []string{"sa-a", "sa-b"}, "", nil), ServiceAccounts: []string{"default", "builder"}}
	want := func(when string, wants map[string][]string) {
		t.Helper()
		for key, w := range wants {
			ns, name, _ := strings.Cut(key, "/")
			if got := pullSecrets(t, e, ns, name); !slices.Equal(got, w) {
				t.Errorf("%s: %s imagePullSecrets = %v, want %v", when, key, got, w)
			}
		}
	}
	untouched := map[string][]string{"sa-a/default": {"dockerhub"}, "sa-a/builder": nil, "sa-a/unnamed": {"dockerhub"},
		"sa-b/default": {namespaces.DefaultSecretName}, "sa-off/default": nil}

	dry := e.Refresher()
	dry.DryRun = true
	dryOpts := o
	dryOpts.DryRun = true
	e.Watch(e.target(dryOpts), dry)
	if err := dry.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	want("after a dry run", untouched)
	if !strings.Contains(e.Logs.String(), `msg="dry run: would add the secret to the serviceaccount's imagePullSecrets" namespace=sa-a secret=ecr-credentials serviceaccount=builder`) {
		t.Error("the dry run did not say which ServiceAccount it would patch")
	}

	tg := e.target(o)
	r := e.Refresher()
	e.Watch(tg, r)
	if err := r.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	patched := map[string][]string{"sa-a/default": {"dockerhub", namespaces.DefaultSecretName}, "sa-a/builder": {namespaces.DefaultSecretName},
		"sa-a/unnamed": {"dockerhub"}, "sa-b/default": {namespaces.DefaultSecretName}, "sa-off/default": nil}
	want("after a run", patched)
	if err := r.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	want("after a second run", patched)

	leadCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); tg.Lead(leadCtx) }()
	t.Cleanup(func() { cancel(); testwait.Recv(t, done) })
	mk("sa-b", "builder", "quay")
	waitFor(t, 10*time.Second, "the late serviceaccount patched", func() bool {
		return slices.Equal(pullSecrets(t, e, "sa-b", "builder"), []string{"quay", namespaces.DefaultSecretName})
	})
	sa, err := e.Admin.CoreV1().ServiceAccounts("sa-a").Get(ctx, "default", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sa.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "dockerhub"}, {Name: "gcr"}}
	if _, err := e.Admin.CoreV1().ServiceAccounts("sa-a").Update(ctx, sa, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the stripped serviceaccount patched again", func() bool {
		return slices.Equal(pullSecrets(t, e, "sa-a", "default"), []string{"dockerhub", "gcr", namespaces.DefaultSecretName})
	})
}
