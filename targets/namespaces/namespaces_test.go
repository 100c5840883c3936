package namespaces_test

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/targettest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/namespaces"
)

// The scopes pushed are exactly the selected namespaces, and a run writes
// exactly those.
func TestTarget_Selection(t *testing.T) {
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
		{"Glob", []string{"sel-team-*"}, []string{"sel-team-skip"}, "", []string{"sel-team-a", "sel-team-b"}},
		{"NamesAndGlobs", []string{"sel-plain", "sel-team-?"}, nil, "", []string{"sel-plain", "sel-team-a", "sel-team-b"}},
		{"GlobAndSelector", []string{"sel-*"}, []string{"sel-team-skip"}, "ecr=yes", []string{"sel-other", "sel-team-a"}},
		{"SelectorAlone", nil, []string{"kube-*", "sel-team-skip"}, "ecr=yes", []string{"sel-other", "sel-team-a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.Refresher()
			e.Watch(e.target(namespaces.Options{Selection: mustSelection(t, tc.include, tc.selector, tc.exclude)}), r)
			got := slices.DeleteFunc(r.Scopes(), func(s string) bool { return !strings.HasPrefix(s, "sel-") })
			if !slices.Equal(got, tc.want) {
				t.Errorf("scopes %v, want %v", got, tc.want)
			}
		})
	}

	r := e.Refresher()
	e.Watch(e.target(namespaces.Options{Selection: mustSelection(t, []string{"sel-team-*"}, "", []string{"sel-team-skip"}), ScopePrefix: namespaces.ScopePrefix}), r)
	if got, want := r.Scopes(), []string{"namespace/sel-team-a", "namespace/sel-team-b"}; !slices.Equal(got, want) {
		t.Errorf("scopes with the prefix %v, want %v", got, want)
	}
	if err := r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"sel-team-a", "sel-team-b"} {
		s, ok := e.secret(ns, namespaces.DefaultSecretName)
		if !ok {
			t.Fatalf("no secret in %s", ns)
		}
		password(t, s)
	}
	for _, ns := range []string{"sel-team-skip", "sel-other", "sel-plain"} {
		if _, ok := e.secret(ns, namespaces.DefaultSecretName); ok {
			t.Errorf("secret written into %s, which is not selected", ns)
		}
	}
	if got := r.Readiness(time.Now()).Summary; len(got) != 1 || got[0].Group != namespaces.Group || got[0].Fresh != 2 {
		t.Errorf("readiness summary %+v, want the group %q with 2 fresh", got, namespaces.Group)
	}
}

// Namespaces come and go while the daemon runs: one created or labelled gets
// its Secret within seconds (the refresher's express lane, not the next
// run); one relabelled out of the selection or deleted stops being a scope.
// When none is left, Empty names the settings.
func TestTarget_ScopesFollowTheNamespaces(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.namespaces(map[string]map[string]string{"follow-first": {"pick": "me"}, "follow-later": nil})
	r := e.Refresher()
	tg := e.target(namespaces.Options{Selection: mustSelection(t, []string{"follow-*"}, "pick=me", nil)})
	e.Watch(tg, r)
	e.Run(r)
	secretIn := func(ns string) func() bool {
		return func() bool { _, ok := e.secret(ns, namespaces.DefaultSecretName); return ok }
	}
	waitFor(t, 20*time.Second, "the first run's secret", secretIn("follow-first"))

	start := time.Now()
	e.namespaces(map[string]map[string]string{"follow-new": {"pick": "me"}})
	waitFor(t, 10*time.Second, "the secret in a namespace created later", secretIn("follow-new"))
	t.Logf("new namespace → secret: %s", time.Since(start).Round(time.Millisecond))
	e.relabel("follow-later", map[string]string{"pick": "me"})
	waitFor(t, 10*time.Second, "the secret in a namespace labelled later", secretIn("follow-later"))

	e.relabel("follow-later", nil)
	waitFor(t, 10*time.Second, "the relabelled namespace's scope to go", func() bool { return !targettest.HasScope(r, "follow-later") })
	if err := e.Admin.CoreV1().Namespaces().Delete(t.Context(), "follow-new", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the deleted namespace's scope to go", func() bool { return !targettest.HasScope(r, "follow-new") })
	if got := tg.Empty(); got != "" {
		t.Errorf("Empty() = %q with follow-first selected", got)
	}
	e.relabel("follow-first", map[string]string{"pick": "no"})
	waitFor(t, 10*time.Second, "no scope left", func() bool { return len(r.Scopes()) == 0 })
	want := `no namespace matches KUBE_NAMESPACES "follow-*" with KUBE_NAMESPACE_SELECTOR "pick=me"`
	if got := tg.Empty(); !strings.HasPrefix(got, want) {
		t.Errorf("Empty() = %q, want %q…", got, want)
	}
	if got := r.Readiness(time.Now()).Reason; !strings.Contains(got, want) {
		t.Errorf("readiness reason %q does not name the selector", got)
	}
}

// Issue 18, defect 1: a namespace that leaves the selection while a retry for
// it is pending is not written at that retry, nor ever after; one that stays
// is (the control: the retry is real).
func TestTarget_LeavingTheSelectionDropsAPendingRetry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.namespaces(map[string]map[string]string{"retry-stays": {"ecr": "yes"}, "retry-leaves": {"ecr": "yes"}})
	for _, ns := range []string{"retry-stays", "retry-leaves"} {
		e.Create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: namespaces.DefaultSecretName, Namespace: ns},
			Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{}}`)}})
	}
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	r := e.Refresher()
	r.Now = clock
	e.Watch(e.target(namespaces.Options{Selection: mustSelection(t, []string{"retry-*"}, "ecr=yes", nil)}), r)
	if err := r.RunOnce(t.Context()); err == nil {
		t.Fatal("the run succeeded over foreign secrets")
	}
	if next := r.NextDue(); next.IsZero() || next.Sub(clock()) > time.Minute {
		t.Fatalf("no retry pending within a minute (next due %v)", next)
	}
	// The causes go away: the foreign Secrets are deleted. One namespace also
	// leaves the selection before the retry.
	for _, ns := range []string{"retry-stays", "retry-leaves"} {
		if err := e.Admin.CoreV1().Secrets(ns).Delete(t.Context(), namespaces.DefaultSecretName, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	e.relabel("retry-leaves", map[string]string{"ecr": "no"})
	waitFor(t, 10*time.Second, "the target to see the namespace leave", func() bool {
		return strings.Contains(e.Logs.String(), `msg="namespace no longer selected; what it holds is left as it is" namespace=retry-leaves`)
	})
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if err := r.RunDue(t.Context()); err != nil {
		t.Fatalf("the retry: %v", err)
	}
	if s, ok := e.secret("retry-stays", namespaces.DefaultSecretName); !ok {
		t.Fatal("the retry did not write the namespace that stayed")
	} else {
		password(t, s)
	}
	if _, ok := e.secret("retry-leaves", namespaces.DefaultSecretName); ok {
		t.Fatal("the namespace that left the selection was written at its retry")
	}
	if targettest.HasScope(r, "retry-leaves") {
		t.Error("the namespace that left the selection is still a scope")
	}
}
