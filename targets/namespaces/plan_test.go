package namespaces_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/targettest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/namespaces"
)

// plan plans ns's scope as the refresher would, with a fresh real-size token
// for host; managed says which hosts this process manages.
func (e *env) plan(tg *namespaces.Target, ns string, managed func(string) bool) refresher.Plan {
	e.T.Helper()
	tok := e.Src.Fetch(e.T.Context()).Tokens
	p, err := tg.Scope(ns).Target.Plan(e.T.Context(), refresher.Input{Tokens: tok, Managed: managed, Log: e.Log})
	if err != nil {
		e.T.Fatalf("Plan(%s): %v", ns, err)
	}
	return p
}

func onlyHost(h string) bool { return h == host }

func foreignSecret(ns, data string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: namespaces.DefaultSecretName, Namespace: ns},
		Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(data)}}
}

// A Secret of that name without the label is never changed: the namespace
// fails, naming it and the fixes, in Apply and in Check alike. Plan reads
// nothing.
func TestTarget_ForeignSecretUntouched(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.namespaces(map[string]map[string]string{"foreign-a": nil, "foreign-b": nil})
	foreign := e.Create(foreignSecret("foreign-a", `{"auths":{"other.example.com":{"auth":"eDp5"}}}`))
	tg := e.target(namespaces.Options{Selection: mustSelection(t, []string{"foreign-*"}, "", nil)})
	e.Watch(tg, e.Refresher())

	p := e.plan(tg, "foreign-a", onlyHost)
	if len(p.Writes) != 1 || len(p.Failures) != 0 {
		t.Fatalf("plan %+v, want one write", p)
	}
	w := p.Writes[0]
	if w.What != "secret" || w.Object != "foreign-a/ecr-credentials" || w.Action != refresher.ResultCreated || !w.Stale || w.Check == nil {
		t.Errorf("write %s %s action %s stale %v", w.What, w.Object, w.Action, w.Stale)
	}
	for name, call := range map[string]func(context.Context) (refresher.Result, error){"Apply": w.Apply, "Check": w.Check} {
		_, err := call(t.Context())
		targettest.WantErr(t, err, "foreign-a/ecr-credentials", "not managed by this daemon", kubesecret.ManagedByLabel, "KUBE_SECRET_NAME", "KUBE_ADOPT_SECRETS=true")
		var te interface{ Temporary() bool }
		if !errors.As(err, &te) || te.Temporary() {
			t.Errorf("%s: the refusal is not permanent: %v", name, err)
		}
	}
	if after, _ := e.secret("foreign-a", namespaces.DefaultSecretName); after.ResourceVersion != foreign.ResourceVersion {
		t.Errorf("foreign secret changed: resourceVersion %s → %s", foreign.ResourceVersion, after.ResourceVersion)
	}
}

// Issue 18, defect 2: --dry-run meets the refusals the real run meets (it
// reads what it decides on, through the server's dry run) and writes nothing;
// the real run then fails the same way and writes the rest.
func TestTarget_DryRunFailsAsTheRunDoes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.namespaces(map[string]map[string]string{"dry-foreign": nil, "dry-free": nil})
	e.Create(foreignSecret("dry-foreign", `{"auths":{}}`))
	sel := mustSelection(t, []string{"dry-*"}, "", nil)

	dry := e.Refresher()
	dry.DryRun = true
	e.Watch(e.target(namespaces.Options{Selection: sel, DryRun: true}), dry)
	err := dry.RunOnce(t.Context())
	targettest.WantErr(t, err, "dry-foreign/ecr-credentials", "not managed by this daemon")
	if _, ok := e.secret("dry-free", namespaces.DefaultSecretName); ok {
		t.Fatal("the dry run wrote a secret")
	}
	if !strings.Contains(e.Logs.String(), `msg="dry run: would create secret" namespace=dry-free`) {
		t.Error("the dry run did not say what it would write")
	}

	real := e.Refresher()
	e.Watch(e.target(namespaces.Options{Selection: sel}), real)
	targettest.WantErr(t, real.RunOnce(t.Context()), "dry-foreign/ecr-credentials", "not managed by this daemon")
	if s, ok := e.secret("dry-free", namespaces.DefaultSecretName); !ok {
		t.Fatal("the real run did not write the free namespace")
	} else {
		password(t, s)
	}
}

// Issue 17, defect 2: a Secret Rancher copied into a project's namespace
// carries the ownership label of its source; it is never written, whatever
// KUBE_ADOPT_SECRETS says. The namespace fails naming it and the fixes; the
// target itself logs nothing about it (the refresher reports the failure).
func TestTarget_RancherCopyNeverWrittenReportedOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.namespaces(map[string]map[string]string{"copy-a": nil, "copy-b": nil})
	cp := e.Create(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: namespaces.DefaultSecretName, Namespace: "copy-a",
			Labels:      map[string]string{kubesecret.ManagedByLabel: kubesecret.ManagedBy, "management.cattle.io/project-scoped-secret": "p-x1"},
			Annotations: map[string]string{kubesecret.RancherCopyAnnotation: "true"}},
		Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"` + host + `":{"username":"AWS","password":"rancher's","auth":"x"}}}`)},
	})
	tg := e.target(namespaces.Options{Selection: mustSelection(t, []string{"copy-*"}, "", nil), Adopt: true})
	var mu sync.Mutex
	now := time.Now()
	r := e.Refresher()
	r.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e.Watch(tg, r)

	_, err := e.plan(tg, "copy-a", onlyHost).Writes[0].Apply(t.Context())
	targettest.WantErr(t, err, "copy-a/ecr-credentials is a copy Rancher made of a project Secret", kubesecret.RancherCopyAnnotation, "KUBE_EXCLUDE_NAMESPACES", "KUBE_SECRET_NAME")
	if !errors.Is(err, kubesecret.ErrRancherCopy) {
		t.Errorf("errors.Is(%v, ErrRancherCopy) = false", err)
	}

	targettest.WantErr(t, r.RunOnce(t.Context()), "copy-a/ecr-credentials is a copy Rancher made")
	for range 3 { // the refused scope is retried every RefusedRetryInterval
		mu.Lock()
		now = now.Add(refresher.RefusedRetryInterval + time.Second)
		mu.Unlock()
		targettest.WantErr(t, r.RunDue(t.Context()), "copy-a/ecr-credentials is a copy Rancher made")
	}
	if after, _ := e.secret("copy-a", namespaces.DefaultSecretName); after.ResourceVersion != cp.ResourceVersion {
		t.Error("Rancher's copy was written")
	}
	if s, ok := e.secret("copy-b", namespaces.DefaultSecretName); !ok {
		t.Error("the other namespace was not written")
	} else {
		password(t, s)
	}
	for _, line := range strings.Split(e.Logs.String(), "\n") {
		if strings.Contains(line, "is a copy Rancher made") && !strings.Contains(line, `msg="credential not written"`) {
			t.Errorf("the target logged the copy itself: %s", line)
		}
	}
}
