package main

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/target/kube/kubetest"
)

// chartServiceAccountConfig renders the chart as release with --set values, applies its
// ServiceAccount and RBAC objects to srv (creating the namespaces they live in), and returns a config
// holding a TokenRequest token of the chart's ServiceAccount: the identity the daemon's Pod would have.
// kubetest.WriteKubeconfig turns it into a KUBECONFIG file for running the daemon as that Pod.
func chartServiceAccountConfig(t *testing.T, srv *kubetest.Server, release string, set ...string) *rest.Config {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := renderChart(t, release, set...)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := kubernetes.NewForConfig(srv.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	ensureNamespace := func(ns string) {
		_, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	var sa *corev1.ServiceAccount
	for _, obj := range decodeManifest(t, out).objects {
		var err error
		switch o := obj.(type) {
		case *corev1.ServiceAccount:
			ensureNamespace(o.Namespace)
			sa, err = admin.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.ClusterRole:
			_, err = admin.RbacV1().ClusterRoles().Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.ClusterRoleBinding:
			_, err = admin.RbacV1().ClusterRoleBindings().Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.Role:
			ensureNamespace(o.Namespace)
			_, err = admin.RbacV1().Roles(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.RoleBinding:
			ensureNamespace(o.Namespace)
			_, err = admin.RbacV1().RoleBindings(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		}
		if err != nil {
			t.Fatalf("apply the chart's %T: %v", obj, err)
		}
	}
	if sa == nil {
		t.Fatal("the chart rendered no ServiceAccount")
	}
	cfg, err := srv.ServiceAccountConfig(ctx, sa.Namespace, sa.Name)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// access is one request the daemon's ServiceAccount may or may not make.
type access struct {
	verb, group, resource, namespace, name string
}

func (a access) String() string {
	return fmt.Sprintf("%s %s/%s %q in namespace %q", a.verb, a.group, a.resource, a.name, a.namespace)
}

// checkAccess asks the server (SelfSubjectAccessReview, as the ServiceAccount) about each access.
func checkAccess(t *testing.T, cfg *rest.Config, allowed bool, list []access) {
	t.Helper()
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range list {
		review, err := client.AuthorizationV1().SelfSubjectAccessReviews().Create(t.Context(), &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: a.verb, Group: a.group, Resource: a.resource, Namespace: a.namespace, Name: a.name,
			}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if review.Status.Allowed != allowed {
			t.Errorf("the chart's ServiceAccount: %s allowed = %v, want %v", a, review.Status.Allowed, allowed)
		}
	}
}

func accesses(verbs []string, group, resource, namespace, name string) []access {
	var out []access
	for _, v := range verbs {
		out = append(out, access{v, group, resource, namespace, name})
	}
	return out
}

// TestChart_RBAC applies the chart's ServiceAccount and RBAC to a real apiserver and checks, as that
// ServiceAccount, that it can do what the daemon needs and nothing else.
func TestChart_RBAC(t *testing.T) {
	helmBinary(t) // skip before starting a server when helm is missing
	srv := kubetest.Start(t)
	read := []string{"get", "list", "watch"}
	write := []string{"create", "update", "patch"}
	// Nobody gets these: they would let the daemon destroy, escalate or read beyond its job.
	never := slices.Concat(
		accesses([]string{"delete", "deletecollection"}, "", "secrets", "team-a", ""),
		accesses([]string{"create", "update", "delete"}, "", "namespaces", "", ""),
		accesses([]string{"get", "create"}, "", "configmaps", "team-a", ""),
		accesses([]string{"get", "list"}, "", "pods", "team-a", ""),
		accesses([]string{"create"}, "", "serviceaccounts", "team-a", ""),
		accesses([]string{"create"}, "", "serviceaccounts/token", "team-a", "default"),
		accesses([]string{"create", "bind", "escalate"}, "rbac.authorization.k8s.io", "clusterroles", "", ""),
		accesses([]string{"impersonate"}, "", "users", "", ""),
		accesses([]string{"delete"}, "coordination.k8s.io", "leases", chartNS, "rancher-ecr-credentials"),
		accesses([]string{"get", "update"}, "coordination.k8s.io", "leases", chartNS, "someone-elses-lease"),
		accesses([]string{"create", "update"}, "coordination.k8s.io", "leases", "team-a", "rancher-ecr-credentials"),
	)

	t.Run("namespaces mode, two replicas, service accounts", func(t *testing.T) {
		cfg := chartServiceAccountConfig(t, srv, "ns-full", "replicaCount=2", "kube.serviceAccounts={default}")
		checkAccess(t, cfg, true, slices.Concat(
			accesses(read, "", "namespaces", "", ""),
			accesses(read, "", "secrets", "", ""), // the daemon's own Secrets of every namespace (label-selected)
			accesses(slices.Concat(read, write), "", "secrets", "team-a", "ecr-credentials"),
			accesses(slices.Concat(read, []string{"update", "patch"}), "", "serviceaccounts", "team-a", "default"),
			accesses([]string{"create"}, "coordination.k8s.io", "leases", chartNS, ""),
			accesses([]string{"get", "update"}, "coordination.k8s.io", "leases", chartNS, "rancher-ecr-credentials"),
		))
		checkAccess(t, cfg, false, never)
		checkDaemonCalls(t, srv, cfg)
	})

	t.Run("namespaces mode, defaults", func(t *testing.T) {
		cfg := chartServiceAccountConfig(t, srv, "ns-default")
		checkAccess(t, cfg, true, slices.Concat(
			accesses(read, "", "namespaces", "", ""),
			accesses(slices.Concat(read, write), "", "secrets", "team-a", ""),
		))
		checkAccess(t, cfg, false, slices.Concat(never,
			accesses([]string{"update", "patch"}, "", "serviceaccounts", "team-a", "default"),
			accesses([]string{"create"}, "coordination.k8s.io", "leases", chartNS, ""),
		))
	})

	t.Run("rancher project secrets mode", func(t *testing.T) {
		cfg := chartServiceAccountConfig(t, srv, "projects", "mode=rancherProjectSecrets", "rancher.projects={local:p-abcde}")
		checkAccess(t, cfg, true, slices.Concat(
			accesses(read, "management.cattle.io", "projects", "local", "p-abcde"),
			accesses(slices.Concat(read, write), "", "secrets", "p-abcde", "ecr-123456789012-us-east-1"),
		))
		checkAccess(t, cfg, false, slices.Concat(never,
			accesses(read, "", "namespaces", "", ""),
			accesses([]string{"update", "delete"}, "management.cattle.io", "projects", "local", "p-abcde"),
			accesses([]string{"patch"}, "", "serviceaccounts", "team-a", "default"),
		))
	})
}

// checkDaemonCalls makes, as the chart's ServiceAccount, the calls the namespaces-mode daemon makes:
// a label-selected list of Secrets, a Secret created and updated in place, a ServiceAccount patched,
// its Lease taken; and a delete that must be refused.
func checkDaemonCalls(t *testing.T, srv *kubetest.Server, cfg *rest.Config) {
	t.Helper()
	ctx := t.Context()
	admin, err := kubernetes.NewForConfig(srv.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// No controller-manager runs: create the default ServiceAccount as it would.
	if _, err := admin.CoreV1().ServiceAccounts("team-a").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	daemon, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := daemon.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("list namespaces: %v", err)
	}
	if _, err := daemon.CoreV1().Secrets("").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=rancher-ecr-credentials"}); err != nil {
		t.Errorf("list the daemon's Secrets: %v", err)
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "ecr-credentials", Labels: map[string]string{"app.kubernetes.io/managed-by": "rancher-ecr-credentials"}},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{}}`)},
	}
	created, err := daemon.CoreV1().Secrets("team-a").Create(ctx, secret, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create a Secret: %v", err)
	}
	created.Data[corev1.DockerConfigJsonKey] = []byte(`{"auths":{"example":{}}}`)
	if _, err := daemon.CoreV1().Secrets("team-a").Update(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Errorf("update the Secret: %v", err)
	}
	patch := []byte(`{"imagePullSecrets":[{"name":"ecr-credentials"}]}`)
	if _, err := daemon.CoreV1().ServiceAccounts("team-a").Patch(ctx, "default", types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Errorf("patch the default ServiceAccount: %v", err)
	}
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "rancher-ecr-credentials"}}
	if _, err := daemon.CoordinationV1().Leases(chartNS).Create(ctx, lease, metav1.CreateOptions{}); err != nil {
		t.Errorf("create the Lease: %v", err)
	}
	if err := daemon.CoreV1().Secrets("team-a").Delete(ctx, "ecr-credentials", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("delete the Secret: err = %v, want 403 Forbidden", err)
	}
}
