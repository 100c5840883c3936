package rancherapps_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/consumertest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/targettest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/rancherapps"
)

// CRD is Rancher's ClusterRepo resource as the real Rancher v2.12.3 installs it.
const CRD = "testdata/clusterrepos.catalog.cattle.io.yaml"

// Two private registries of consumertest.Hosts.
var hostA, hostB = consumertest.Hosts[0], consumertest.Hosts[1]

// env is a targettest.Env with the ClusterRepo CRD installed. ClusterRepos
// are cluster-scoped, so the tests of this package run one at a time and
// each removes its own.
type env struct {
	*targettest.Env
	repos dynamic.NamespaceableResourceInterface
}

func newEnv(t *testing.T) *env {
	e := &env{Env: consumertest.New(t, &server)}
	if err := e.Srv.InstallCRDs(CRD); err != nil {
		t.Fatalf("install Rancher's ClusterRepo CRD: %v", err)
	}
	dyn, err := dynamic.NewForConfig(e.Srv.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	e.repos = dyn.Resource(rancherapps.ClusterRepos)
	return e
}

// clusterRepo creates a ClusterRepo with spec.url and, when secret is not
// nil, spec.clientSecret; it is deleted when the test ends.
func (e *env) clusterRepo(name, url string, secret map[string]any) *unstructured.Unstructured {
	e.T.Helper()
	var ns, n string
	if secret != nil {
		ns, n = secret["namespace"].(string), secret["name"].(string)
	}
	out := consumertest.ClusterRepo(e.T, e.Srv.AdminConfig(), name, url, ns, n)
	e.T.Cleanup(func() { _ = e.repos.Delete(context.Background(), name, metav1.DeleteOptions{}) })
	return out
}

func (e *env) repo(name string) *unstructured.Unstructured {
	e.T.Helper()
	u, err := e.repos.Get(e.T.Context(), name, metav1.GetOptions{})
	if err != nil {
		e.T.Fatal(err)
	}
	return u
}

// basicAuth is a clientSecret as a user creates it before the ClusterRepo.
func basicAuth(ns, name string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"team": "a"}, Annotations: map[string]string{"note": "for Rancher"}},
		Type: corev1.SecretTypeBasicAuth, Data: map[string][]byte{"username": []byte("AWS"), "password": []byte("pending")}}
}

func ref(ns, name string) map[string]any { return map[string]any{"name": name, "namespace": ns} }

func (e *env) target(glob string, c *targettest.Env) *rancherapps.Target {
	t := rancherapps.New(c.Client(nil), rancherapps.Options{Namespaces: consumertest.Namespaces(e.T, glob)})
	t.Logger = e.Log
	return t
}

// A ClusterRepo of a managed registry has its clientSecret written
// (username AWS, the token), nothing else in it changes, and the ClusterRepo
// itself is never touched. ClusterRepos of other registries, of http(s) or
// git repositories, are no consumers; one without a clientSecret is reported
// once with the fix and never edited.
func TestRancherApps_ClientSecret(t *testing.T) {
	e := newEnv(t)
	e.Namespace("apps-main")
	before := e.Create(basicAuth("apps-main", "ecr-charts"))
	repo := e.clusterRepo("ecr-charts", "oci://"+hostA+"/charts", ref("apps-main", "ecr-charts"))
	others := map[string]*unstructured.Unstructured{
		"no-secret": e.clusterRepo("no-secret", "oci://"+hostB+"/charts", nil),
		"https":     e.clusterRepo("https", "https://charts.example.com", ref("apps-main", "ecr-charts")),
		"foreign":   e.clusterRepo("foreign", "oci://"+consumertest.Unmanaged+"/charts", ref("apps-main", "foreign")),
	}
	tg := e.target("apps-main", e.Env)
	r := e.Started(tg)
	s := e.WaitWritten("apps-main", "ecr-charts", "password", func() string { return e.Src.Password(hostA) })
	if string(s.Data["username"]) != "AWS" || s.Type != corev1.SecretTypeBasicAuth {
		t.Errorf("clientSecret: username %q type %s", s.Data["username"], s.Type)
	}
	consumertest.SameButFields(t, before, s, "username", "password")
	testwait.For(t, testwait.Limit, "the foreign registry's ClusterRepo to leave the scopes", func() bool {
		return !targettest.HasScope(r, rancherapps.ScopeName("foreign"))
	})
	if got := r.Scopes(); len(got) != 1 || got[0] != rancherapps.ScopeName("ecr-charts") {
		t.Errorf("scopes %v, want only %s", got, rancherapps.ScopeName("ecr-charts"))
	}
	for name, u := range map[string]*unstructured.Unstructured{"ecr-charts": repo, "no-secret": others["no-secret"]} {
		if now := e.repo(name); now.GetResourceVersion() != u.GetResourceVersion() {
			t.Errorf("ClusterRepo %s was changed", name)
		}
	}
	// A change to the ClusterRepo that leaves it without clientSecret does not report it again.
	u := e.repo("no-secret")
	u.SetLabels(map[string]string{"touched": "yes"})
	if _, err := e.repos.Update(t.Context(), u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, testwait.Limit, "readiness", func() bool { return r.Readiness(time.Now()).Ready })
	logs := e.Logs.String()
	if n := strings.Count(logs, "ClusterRepo no-secret has no spec.clientSecret"); n != 1 || !strings.Contains(logs, "kubectl -n cattle-system create secret generic no-secret-ecr --type=kubernetes.io/basic-auth") {
		t.Errorf("the ClusterRepo without clientSecret was reported %d times (want once, with the fix)", n)
	}
}

// A ClusterRepo created after start has its clientSecret written within
// seconds; pointing it at another registry rewrites it.
func TestRancherApps_WatchedWithinSeconds(t *testing.T) {
	e := newEnv(t)
	e.Namespace("apps-watch")
	e.Create(basicAuth("apps-watch", "late"))
	tg := e.target("apps-watch", e.Env)
	e.Started(tg)
	testwait.For(t, testwait.Limit, "the first fetch", func() bool { return e.Src.Password(hostA) != "" })
	began := time.Now()
	e.clusterRepo("late", "oci://"+hostA+"/charts", ref("apps-watch", "late"))
	e.WaitWritten("apps-watch", "late", "password", func() string { return e.Src.Password(hostA) })
	t.Logf("a ClusterRepo created after start had its clientSecret written %s later", time.Since(began).Round(time.Millisecond))
	u := e.repo("late")
	_ = unstructured.SetNestedField(u.Object, "oci://"+hostB+"/charts", "spec", "url")
	if _, err := e.repos.Update(t.Context(), u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.WaitWritten("apps-watch", "late", "password", func() string { return e.Src.Password(hostB) })
}

// What cannot be written fails the ClusterRepo's scope with the fix: a
// clientSecret that does not exist, one outside KUBE_CONSUMER_NAMESPACES,
// one of a type Rancher does not log in with, one two registries share.
func TestRancherApps_Refusals(t *testing.T) {
	e := newEnv(t)
	e.Namespace("apps-refuse")
	e.Namespace("apps-elsewhere")
	tls := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "tls", Namespace: "apps-refuse"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": nil, "tls.key": nil}}
	e.Create(tls)
	e.Create(basicAuth("apps-refuse", "shared"))
	e.Create(basicAuth("apps-elsewhere", "outside"))
	e.clusterRepo("missing", "oci://"+hostA+"/charts", ref("apps-refuse", "missing"))
	e.clusterRepo("outside", "oci://"+hostA+"/charts", ref("apps-elsewhere", "outside"))
	e.clusterRepo("tls", "oci://"+hostA+"/charts", ref("apps-refuse", "tls"))
	e.clusterRepo("shared-a", "oci://"+hostA+"/charts", ref("apps-refuse", "shared"))
	e.clusterRepo("shared-b", "oci://"+hostB+"/charts", ref("apps-refuse", "shared"))
	tg := e.target("apps-refuse", e.Env)
	r := e.Started(tg)
	for repo, want := range map[string]string{
		"missing":  "secret apps-refuse/missing does not exist; create it: kubectl -n apps-refuse create secret generic missing --type=kubernetes.io/basic-auth",
		"outside":  "its clientSecret apps-elsewhere/outside is in a namespace KUBE_CONSUMER_NAMESPACES (apps-refuse) leaves out",
		"tls":      "has type kubernetes.io/tls; Rancher logs in to an OCI repository with a kubernetes.io/basic-auth Secret",
		"shared-a": "is also the clientSecret of ClusterRepo shared-b, of another registry",
	} {
		testwait.For(t, testwait.Limit, "the refusal of "+repo, func() bool { return lastError(r, rancherapps.ScopeName(repo), want) })
	}
	if s := e.Secret("apps-elsewhere", "outside"); string(s.Data["password"]) != "pending" {
		t.Error("a clientSecret outside KUBE_CONSUMER_NAMESPACES was written")
	}
}

func lastError(r *refresher.Refresher, scope, want string) bool {
	for _, p := range r.Status() {
		if p.Scope == scope && strings.Contains(p.LastError, want) {
			return true
		}
	}
	return false
}

// ClusterRepos are only read: a user granted get, list and watch on them,
// and get and update on Secrets in the clientSecret's namespace, is all the
// target needs.
func TestRancherApps_ReadOnlyClusterRepos(t *testing.T) {
	e := newEnv(t)
	e.Namespace("apps-rbac")
	e.Create(basicAuth("apps-rbac", "ecr"))
	e.clusterRepo("rbac", "oci://"+hostA+"/charts", ref("apps-rbac", "ecr"))
	ctx := t.Context()
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "apps-rbac-reader"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"catalog.cattle.io"}, Resources: []string{"clusterrepos"}, Verbs: []string{"get", "list", "watch"}}}}
	if _, err := e.Admin.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "apps-rbac-reader"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: "User", Name: "apps-rbac-daemon", APIGroup: "rbac.authorization.k8s.io"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kubetest.WaitAllowed(t, e.Admin, "apps-rbac-daemon", nil, "", "list", "catalog.cattle.io", "clusterrepos")
	e.Grant("apps-rbac", "apps-rbac-daemon", targettest.SecretRule("get", "update"))
	tg := rancherapps.New(e.Client(e.Srv.UserConfig("apps-rbac-daemon")), rancherapps.Options{Namespaces: consumertest.Namespaces(t, "apps-rbac")})
	tg.Logger = e.Log
	e.Started(tg)
	e.WaitWritten("apps-rbac", "ecr", "password", func() string { return e.Src.Password(hostA) })
}

// Without Rancher there is no ClusterRepo resource: Start says so at once,
// with the fix, rather than waiting for its timeout.
func TestRancherApps_NoRancher(t *testing.T) {
	srv := kubetest.Start(t) // a server of its own: no CRD installed
	c := &targettest.Env{T: t, Srv: srv}
	tg := rancherapps.New(c.Client(nil), rancherapps.Options{})
	tg.SyncTimeout = testwait.Limit
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := tg.Start(ctx, refresher.New(nil, nil))
	if err == nil || !strings.Contains(err.Error(), "this cluster has no ClusterRepo resource (clusterrepos.catalog.cattle.io), so Rancher is not installed in it") {
		t.Errorf("Start without Rancher: %v", err)
	}
}
