package projectsecret_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/plantest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/targettest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi/ranchertest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/projectsecret"
)

const (
	host        = "111122223333.dkr.ecr.us-east-1.amazonaws.com"
	secretName  = "ecr-111122223333-us-east-1" // registryhost.CredentialName of host
	tokenSecret = "rancher-token-secret-DO-NOT-LEAK"
)

var seq atomic.Int64

// env is one test's Rancher 2.12+ world: a real kube-apiserver holding the
// projects CRD and one project (its own cluster namespace, backing namespace
// and user), a Rancher stand-in proxying /k8s/clusters/local to it as that
// user, tokens with a new password at every pass, and the logs, which at the
// end may hold no password and no token.
type env struct {
	*targettest.Env
	dyn     dynamic.Interface
	cluster string // c-…, the project's cluster id (a namespace of the local cluster)
	project string // p-…
	id      string // cluster:project
	backing string // the backing namespace
	user    string // the Kubernetes user the Rancher token acts as
	access  string // the Rancher token's name
	rancher *ranchertest.Server
	rURL    string

	mem  plantest.Memory
	last plantest.Outcome
	v3   v3Target
}

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installCRD installs projects.management.cattle.io as Rancher defines it
// (namespaced, v3), schemaless, and waits until it is served.
func installCRD(t *testing.T, dyn dynamic.Interface) {
	t.Helper()
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "projects.management.cattle.io"},
		"spec": map[string]any{
			"group": "management.cattle.io", "scope": "Namespaced",
			"names": map[string]any{"plural": "projects", "singular": "project", "kind": "Project", "listKind": "ProjectList"},
			"versions": []any{map[string]any{"name": "v3", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
		},
	}}
	_, err := dyn.Resource(crdResource).Create(context.Background(), crd, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the projects CRD to be served", func() bool {
		_, err := dyn.Resource(projectsecret.ProjectsResource).Namespace("default").List(context.Background(), metav1.ListOptions{Limit: 1})
		return err == nil
	})
}

// newEnv sets up a project whose status.backingNamespace is <cluster>-<project>
// as Rancher 2.12 sets it (newStyle), or empty as on projects made before 2.9.9
// (whose backing namespace is the project id), the user's RBAC as
// Rancher grants a Project Member (secrets in the backing namespace, get on the
// project), and a Rancher stand-in at version.
func newEnv(t *testing.T, version string, newStyle bool) *env {
	t.Helper()
	e := &env{Env: targettest.New(t, &server)}
	e.NoLog(tokenSecret)
	srv, n := e.Srv, seq.Add(1)
	dyn, err := dynamic.NewForConfig(srv.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	e.dyn = dyn
	installCRD(t, dyn)
	e.cluster, e.project = fmt.Sprintf("c-t%d", n), fmt.Sprintf("p-t%d", n)
	e.id = e.cluster + ":" + e.project
	e.backing = e.project
	if newStyle {
		e.backing = e.cluster + "-" + e.project
	}
	e.user, e.access = fmt.Sprintf("u-t%d", n), fmt.Sprintf("token-t%d", n)
	e.Namespace(e.cluster)
	e.Namespace(e.backing)
	obj := map[string]any{"apiVersion": "management.cattle.io/v3", "kind": "Project",
		"metadata": map[string]any{"name": e.project, "namespace": e.cluster},
		"spec":     map[string]any{"clusterName": e.cluster, "displayName": "team " + e.project}}
	if newStyle {
		obj["status"] = map[string]any{"backingNamespace": e.backing}
	}
	if _, err := dyn.Resource(projectsecret.ProjectsResource).Namespace(e.cluster).Create(context.Background(), &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.grant(e.backing, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}})
	e.grant(e.cluster, rbacv1.PolicyRule{APIGroups: []string{"management.cattle.io"}, Resources: []string{"projects"}, Verbs: []string{"get"}, ResourceNames: []string{e.project}})

	e.rancher = ranchertest.New(ranchertest.Key{Access: e.access, Secret: tokenSecret, Projects: []string{"*"}})
	e.rancher.AddProject(e.id)
	e.rancher.SetServerVersion(version)
	e.rancher.SetToken(e.access, ranchertest.TokenInfo{KubeUser: e.user})
	target, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := rest.TransportFor(srv.AdminConfig()) // an admin may impersonate, as Rancher does
	if err != nil {
		t.Fatal(err)
	}
	e.rancher.SetKubeProxy("local", target, rt)
	hs := httptest.NewServer(e.rancher)
	t.Cleanup(hs.Close)
	e.rURL = hs.URL

	return e
}

// grant gives the env's user rule in namespace ns (a Role and RoleBinding).
func (e *env) grant(ns string, rule rbacv1.PolicyRule) {
	e.grantTo(ns, rbacv1.Subject{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: e.user}, rule)
}

func (e *env) grantTo(ns string, subject rbacv1.Subject, rule rbacv1.PolicyRule) {
	e.T.Helper()
	e.GrantTo(ns, fmt.Sprintf("%s-%s", subject.Name, rule.Resources[0]), subject, rule)
}

// revoke removes the user's grant on resource in ns.
func (e *env) revoke(ns, resource string) {
	e.T.Helper()
	if err := e.Admin.RbacV1().RoleBindings(ns).Delete(context.Background(), e.user+"-"+resource, metav1.DeleteOptions{}); err != nil {
		e.T.Fatal(err)
	}
	role, err := e.Admin.RbacV1().Roles(ns).Get(context.Background(), e.user+"-"+resource, metav1.GetOptions{})
	if err != nil {
		e.T.Fatal(err)
	}
	if err := e.Admin.RbacV1().Roles(ns).Delete(context.Background(), e.user+"-"+resource, metav1.DeleteOptions{}); err != nil {
		e.T.Fatal(err)
	}
	kubetest.WaitAuthorized(e.T, e.Admin, e.user, nil, kubetest.RuleAttributes(ns, role.Rules[0]), false)
}

// client is the daemon's Rancher client: the bearer token, /v3 URL of the project.
func (e *env) client() *rancherapi.Client {
	e.T.Helper()
	c, err := rancherapi.NewClient(e.rURL+"/v3/project/"+e.id, "", e.access+":"+tokenSecret, nil)
	if err != nil {
		e.T.Fatal(err)
	}
	return c
}

// proxied is the local cluster through the stand-in Rancher's proxy.
func (e *env) proxied() *projectsecret.Cluster {
	e.T.Helper()
	c, err := projectsecret.NewCluster(projectsecret.ProxyConfig(e.client(), kubeapi.Options{UserAgent: "test"}), true)
	if err != nil {
		e.T.Fatal(err)
	}
	return c
}

// tokens are one token per host (host when none), each with a new password.
func (e *env) tokens(hosts ...string) []refresher.Token {
	if len(hosts) == 0 {
		hosts = []string{host}
	}
	var toks []refresher.Token
	for _, h := range hosts {
		pw := fmt.Sprintf("ecr-password-%d-%d", time.Now().UnixNano(), seq.Add(1))
		e.NoLog(pw)
		toks = append(toks, plantest.Token(h, pw))
	}
	return toks
}

// run is one pass of target into the env's project (plan, then apply every
// write, as the refresher does), with new tokens for hosts; its error is the
// plan's or else every failure's. The outcome is kept in e.last.
func (e *env) run(target refresher.Target, hosts ...string) error {
	o, err := e.mem.Run(e.T.Context(), target, plantest.Input(e.Log, e.tokens(hosts...)))
	e.last = o
	if err == nil {
		err = o.Err()
	}
	if err != nil {
		for _, s := range e.Secrets() {
			if targettest.Leaked(err.Error(), s) {
				e.T.Errorf("a secret (%.12s…) is in the error: %v", s, err)
			}
		}
	}
	return err
}

func (e *env) secret(name string) *corev1.Secret { return e.Secret(e.backing, name) }

// put creates a Secret in the backing namespace holding hosts (password "by-hand").
func (e *env) put(name string, labels map[string]string, hosts ...string) *corev1.Secret {
	e.T.Helper()
	auths := map[string]any{}
	for _, h := range hosts {
		auths[h] = map[string]string{"username": "AWS", "password": "by-hand", "auth": "QVdTOmJ5LWhhbmQ="}
	}
	data, _ := json.Marshal(map[string]any{"auths": auths})
	s, err := e.Admin.CoreV1().Secrets(e.backing).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: data},
	}, metav1.CreateOptions{})
	if err != nil {
		e.T.Fatal(err)
	}
	return s
}

// waitFor polls cond until it holds or d passes.
var waitFor = testwait.For

// serviceAccount is the local cluster as a ServiceAccount of namespace ns
// sees it from a Pod (its own token, no Rancher), with the rights a Project
// Member binding gives it.
func (e *env) serviceAccount(ns string) *projectsecret.Cluster {
	e.T.Helper()
	ctx := context.Background()
	if _, err := e.Admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "ecr"}}, metav1.CreateOptions{}); err != nil {
		e.T.Fatal(err)
	}
	sa := rbacv1.Subject{Kind: "ServiceAccount", Name: "ecr", Namespace: ns}
	e.grantTo(e.backing, sa, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "create", "update"}})
	e.grantTo(e.cluster, sa, rbacv1.PolicyRule{APIGroups: []string{"management.cattle.io"}, Resources: []string{"projects"}, Verbs: []string{"get"}})
	cfg, err := e.Srv.ServiceAccountConfig(ctx, ns, "ecr")
	if err != nil {
		e.T.Fatal(err)
	}
	c, err := projectsecret.NewCluster(kubeapi.Prepare(cfg, kubeapi.Options{UserAgent: "test"}), false)
	if err != nil {
		e.T.Fatal(err)
	}
	return c
}
