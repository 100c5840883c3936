package argocd_test

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/consumertest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/targettest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/argocd"
)

// The registries of consumertest.Hosts: two private, ECR Public.
var hostA, hostB, public = consumertest.Hosts[0], consumertest.Hosts[1], consumertest.Hosts[2]

// repoSecret is a repository Secret as Argo CD's declarative setup documents
// it (https://github.com/argoproj/argo-cd/blob/master/docs/operator-manual/declarative-setup.md#helm):
// name, url, type, enableOCI, and a project, with labels and annotations of
// its owner.
func repoSecret(ns, name, secretType, url string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
			Labels:      map[string]string{argocd.TypeLabel: secretType, "app.kubernetes.io/part-of": "argocd"},
			Annotations: map[string]string{"managed-by": "argocd.argoproj.io"}},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{"name": []byte(name), argocd.URLKey: []byte(url), "type": []byte("helm"), "enableOCI": []byte("true"), "project": []byte("default")},
	}
}

// repository is the fields Argo CD reads of a repository Secret (util/db
// secretToRepository: url, username, password, type, enableOCI).
type repository struct{ url, username, password, typ, enableOCI string }

func read(s *corev1.Secret) repository {
	return repository{string(s.Data["url"]), string(s.Data["username"]), string(s.Data["password"]), string(s.Data["type"]), string(s.Data["enableOCI"])}
}

func start(e *targettest.Env, glob string) *argocd.Target {
	t := argocd.New(e.Client(nil), argocd.Options{Namespaces: consumertest.Namespaces(e.T, glob)})
	t.Logger = e.Log
	return t
}

// Repository and repo-creds Secrets whose url names a managed registry, in
// each spelling (oci://, https://, bare), get username AWS and the token as
// password, as Argo CD reads them; nothing else changes. Those of other
// hosts are not consumers: not scopes, never written; one of an ECR
// registry this daemon does not manage is reported once and left alone.
func TestArgoCD_Repositories(t *testing.T) {
	t.Parallel()
	e := consumertest.New(t, &server, "argo-repos")
	written := map[string]string{
		"oci":      "oci://" + hostA + "/charts",
		"creds":    "https://" + hostB,
		"bare":     public + "/my-alias",
		"preowned": hostA + "/team",
	}
	before := map[string]*corev1.Secret{}
	for name, url := range written {
		typ := argocd.TypeRepository
		if name == "creds" {
			typ = argocd.TypeRepoCreds
		}
		s := repoSecret("argo-repos", name, typ, url)
		if name == "preowned" {
			s.Data["username"], s.Data["password"] = []byte("someone"), []byte("stale")
		}
		before[name] = e.Create(s)
	}
	left := map[string]*corev1.Secret{
		"github":  e.Create(repoSecret("argo-repos", "github", argocd.TypeRepository, "https://github.com/argoproj/argocd-example-apps")),
		"foreign": e.Create(repoSecret("argo-repos", "foreign", argocd.TypeRepository, "oci://"+consumertest.Unmanaged+"/charts")),
		"cluster": e.Create(repoSecret("argo-repos", "cluster", "cluster", "oci://"+hostA+"/charts")),
	}
	tg := start(e, "argo-repos")
	r := e.Started(tg)
	hosts := map[string]string{"oci": hostA, "creds": hostB, "bare": public, "preowned": hostA}
	for name := range written {
		s := e.WaitWritten("argo-repos", name, "password", func() string { return e.Src.Password(hosts[name]) })
		got := read(s)
		if want := (repository{written[name], "AWS", e.Src.Password(hosts[name]), "helm", "true"}); got != want {
			t.Errorf("%s: Argo CD reads url %q username %q type %q enableOCI %q", name, got.url, got.username, got.typ, got.enableOCI)
		}
		consumertest.SameButFields(t, before[name], s, "username", "password")
		if !targettest.HasScope(r, argocd.ScopeName("argo-repos", name)) {
			t.Errorf("%s is no scope", name)
		}
	}
	testwait.For(t, testwait.Limit, "the foreign registry's Secret to leave the scopes", func() bool {
		return !targettest.HasScope(r, argocd.ScopeName("argo-repos", "foreign"))
	})
	for name, s := range left {
		if targettest.HasScope(r, argocd.ScopeName("argo-repos", name)) || e.Secret("argo-repos", name).ResourceVersion != s.ResourceVersion {
			t.Errorf("%s: a repository Secret of another host is a scope or was written", name)
		}
	}
	logs := e.Logs.String()
	if n := strings.Count(logs, "consumer left alone"); n != 1 || !strings.Contains(logs, consumertest.Unmanaged) || strings.Contains(logs, "github.com") {
		t.Errorf("want one line for the foreign ECR registry and none for github.com:\n%s", logs)
	}
	testwait.For(t, testwait.Limit, "readiness", func() bool { return r.Readiness(time.Now()).Ready })
}

// A repository Secret created after start is written within seconds; one
// whose url moves to another managed registry gets that registry's token.
func TestArgoCD_WatchedWithinSeconds(t *testing.T) {
	t.Parallel()
	e := consumertest.New(t, &server, "argo-watch")
	tg := start(e, "argo-watch")
	e.Started(tg)
	testwait.For(t, testwait.Limit, "the first fetch", func() bool { return e.Src.Password(hostA) != "" })
	began := time.Now()
	e.Create(repoSecret("argo-watch", "late", argocd.TypeRepository, "oci://"+hostA+"/charts"))
	e.WaitWritten("argo-watch", "late", "password", func() string { return e.Src.Password(hostA) })
	t.Logf("a repository Secret created after start was written %s later", time.Since(began).Round(time.Millisecond))

	s := e.Secret("argo-watch", "late")
	s.Data["url"] = []byte("oci://" + hostB + "/charts")
	if _, err := e.Admin.CoreV1().Secrets("argo-watch").Update(t.Context(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.WaitWritten("argo-watch", "late", "password", func() string { return e.Src.Password(hostB) })
}
