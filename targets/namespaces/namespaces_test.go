package kube_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/kube"
)

func TestNamespaces_Selection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.namespaces(map[string]map[string]string{
		"sel-team-a": {"ecr": "yes"}, "sel-team-b": nil, "sel-team-skip": {"ecr": "yes"},
		"sel-other": {"ecr": "yes"}, "sel-plain": nil,
	})
	for _, tc := range []struct {
		name             string
		include, exclude []string
		selector         string
		want             []string
	}{
		{"glob", []string{"sel-team-*"}, []string{"sel-team-skip"}, "", []string{"sel-team-a", "sel-team-b"}},
		{"names and globs", []string{"sel-plain", "sel-team-?"}, nil, "", []string{"sel-plain", "sel-team-a", "sel-team-b"}},
		{"glob and selector", []string{"sel-*"}, []string{"sel-team-skip"}, "ecr=yes", []string{"sel-other", "sel-team-a"}},
		{"selector alone", nil, []string{"kube-*", "sel-team-skip"}, "ecr=yes", []string{"sel-other", "sel-team-a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sel, err := kube.ParseSelection(tc.include, tc.selector, tc.exclude)
			if err != nil {
				t.Fatal(err)
			}
			n := e.start(kube.New(e.admin, sel, kube.DefaultSecretName, nil))
			var got []string
			for _, s := range scopeNames(t, n) {
				if len(s) > 4 && s[:4] == "sel-" {
					got = append(got, s)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("selected %v, want %v", got, tc.want)
			}
		})
	}

	// A run writes exactly the selected ones.
	sel, _ := kube.ParseSelection([]string{"sel-team-*"}, "", []string{"sel-team-skip"})
	n := kube.New(e.admin, sel, kube.DefaultSecretName, nil)
	if err := e.refresher(n).RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"sel-team-a", "sel-team-b"} {
		s, ok := e.secret(ns, kube.DefaultSecretName)
		if !ok {
			t.Fatalf("no secret in %s", ns)
		}
		password(t, s)
	}
	for _, ns := range []string{"sel-team-skip", "sel-other", "sel-plain"} {
		if _, ok := e.secret(ns, kube.DefaultSecretName); ok {
			t.Errorf("secret written into %s, which is not selected", ns)
		}
	}
}

// A namespace created (or labelled) while the daemon runs gets its Secret
// within seconds, through the watch and Wake, not at the next scheduled run.
func TestNamespaces_NewNamespaceGetsSecret(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.namespaces(map[string]map[string]string{"late-first": nil, "late-labelled": nil})
	sel, _ := kube.ParseSelection([]string{"late-*"}, "", nil)
	n := kube.New(e.admin, sel, kube.DefaultSecretName, nil)
	r := e.refresher(n)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, "@every 24h") }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, 20*time.Second, "the first run", func() bool { _, ok := e.secret("late-first", kube.DefaultSecretName); return ok })

	start := time.Now()
	e.namespaces(map[string]map[string]string{"late-second": nil})
	waitFor(t, 10*time.Second, "the secret in a namespace created later", func() bool {
		_, ok := e.secret("late-second", kube.DefaultSecretName)
		return ok
	})
	t.Logf("new namespace → secret: %s", time.Since(start).Round(time.Millisecond))
	if _, ok := e.secret("not-selected", kube.DefaultSecretName); ok {
		t.Fatal("unexpected")
	}

	// A namespace that comes to match the selector is picked up too.
	sel2, _ := kube.ParseSelection(nil, "pick=me", nil)
	n2 := kube.New(e.admin, sel2, "ecr-by-label", nil)
	r2 := e.refresher(n2)
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2 := make(chan error, 1)
	go func() { done2 <- r2.Run(ctx2, "@every 24h") }()
	t.Cleanup(func() { cancel2(); <-done2 })
	ns, err := e.admin.CoreV1().Namespaces().Get(t.Context(), "late-labelled", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns.Labels = map[string]string{"pick": "me"}
	if _, err := e.admin.CoreV1().Namespaces().Update(t.Context(), ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the secret in a namespace labelled later", func() bool {
		_, ok := e.secret("late-labelled", "ecr-by-label")
		return ok
	})
}

// A Secret of the same name without the label is never changed: the
// namespace fails, naming it and what to do; the others are still written.
func TestNamespaces_ForeignSecretUntouched(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.namespaces(map[string]map[string]string{"foreign-a": nil, "foreign-b": nil})
	foreign, err := e.admin.CoreV1().Secrets("foreign-a").Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: kube.DefaultSecretName},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"other.example.com":{"auth":"eDp5"}}}`)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sel, _ := kube.ParseSelection([]string{"foreign-*"}, "", nil)
	n := kube.New(e.admin, sel, kube.DefaultSecretName, nil)
	err = e.refresher(n).RunOnce(t.Context())
	if err == nil {
		t.Fatal("run succeeded over a foreign secret")
	}
	for _, want := range []string{"foreign-a/ecr-credentials", "not managed by this daemon", kube.ManagedByLabel, "KUBE_SECRET_NAME"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	after, _ := e.secret("foreign-a", kube.DefaultSecretName)
	if after.ResourceVersion != foreign.ResourceVersion {
		t.Errorf("foreign secret changed: resourceVersion %s → %s", foreign.ResourceVersion, after.ResourceVersion)
	}
	if s, ok := e.secret("foreign-b", kube.DefaultSecretName); !ok {
		t.Error("the other namespace was not written")
	} else {
		password(t, s)
	}
}
