package deploy_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
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
			accesses([]string{"get", "create", "update"}, "", "secrets", "team-a", "ecr-credentials"),
			accesses(slices.Concat(read, []string{"update"}), "", "serviceaccounts", "team-a", "default"),
			accesses([]string{"create"}, "coordination.k8s.io", "leases", chartNS, ""),
			accesses([]string{"get", "update"}, "coordination.k8s.io", "leases", chartNS, "rancher-ecr-credentials"),
		))
		checkAccess(t, cfg, false, slices.Concat(never,
			accesses([]string{"list", "watch"}, "", "secrets", "", ""), // no cluster-wide read of Secrets
		))
		runDaemonAsChart(t, srv, cfg)
	})

	t.Run("namespaces mode, defaults", func(t *testing.T) {
		cfg := chartServiceAccountConfig(t, srv, "ns-default")
		checkAccess(t, cfg, true, slices.Concat(
			accesses(read, "", "namespaces", "", ""),
			accesses([]string{"get", "create", "update"}, "", "secrets", "team-a", ""),
		))
		checkAccess(t, cfg, false, slices.Concat(never,
			accesses([]string{"update", "patch"}, "", "serviceaccounts", "team-a", "default"),
			accesses([]string{"create"}, "coordination.k8s.io", "leases", chartNS, ""),
		))
	})

	projectSecrets := accesses([]string{"get", "list", "create", "update"}, "", "secrets", "p-abcde", "ecr-123456789012-us-east-1")
	t.Run("rancher project secrets inside the local cluster", func(t *testing.T) {
		cfg := chartServiceAccountConfig(t, srv, "projects", "mode=rancherProjectSecrets", "rancher.inCluster=true",
			"rancher.projects={local:p-abcde}", "rancher.backingNamespaces={p-abcde}")
		checkAccess(t, cfg, true, slices.Concat(projectSecrets,
			accesses([]string{"get"}, "management.cattle.io", "projects", "local", "p-abcde"),
		))
		checkAccess(t, cfg, false, slices.Concat(never,
			accesses(read, "", "namespaces", "", ""),
			accesses([]string{"list", "update", "delete"}, "management.cattle.io", "projects", "local", "p-abcde"),
			accesses([]string{"get"}, "management.cattle.io", "projects", "local", "p-other"),
			accesses([]string{"get", "list", "create", "update"}, "", "secrets", "kube-system", "ecr-123456789012-us-east-1"),
			accesses([]string{"list"}, "", "secrets", "", ""),
			accesses([]string{"watch", "delete", "patch"}, "", "secrets", "p-abcde", "ecr-123456789012-us-east-1"),
			accesses([]string{"patch"}, "", "serviceaccounts", "team-a", "default"),
		))
	})

	t.Run("rancher project secrets through Rancher's API", func(t *testing.T) {
		cfg := chartServiceAccountConfig(t, srv, "proxy", "mode=rancherProjectSecrets", "rancher.projects={local:p-abcde}",
			"rancher.url=https://rancher.example.com/v3", "rancher.token.existingSecret=rancher-api-token")
		// Nothing: the token's Rancher roles decide, in Rancher.
		checkAccess(t, cfg, false, slices.Concat(never, projectSecrets,
			accesses([]string{"get", "list"}, "management.cattle.io", "projects", "local", "p-abcde"),
			accesses([]string{"create"}, "coordination.k8s.io", "leases", chartNS, ""),
		))
	})
}

// runDaemonAsChart runs the daemon itself (run with --once, Kubernetes namespaces mode) with a
// kubeconfig holding the chart's ServiceAccount token against the real apiserver: the RBAC the chart
// ships is what proves sufficient, and a rule removed from it makes this fail. It checks what a
// cluster operator would: the namespace's pull Secret holds a fresh ECR token, the ServiceAccount
// references it, and the daemon still cannot delete the Secret.
func runDaemonAsChart(t *testing.T, srv *kubetest.Server, cfg *rest.Config) {
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
	if _, err := admin.CoreV1().ServiceAccounts("team-a").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"},
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "someone-elses"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w := newWorld(t)
	t.Setenv("KUBECONFIG", kubetest.WriteKubeconfig(t, cfg, chartNS))
	w.env = map[string]string{
		"KUBE_NAMESPACES": "team-a", "KUBE_SERVICE_ACCOUNTS": "default", "AWS_REGION": "us-east-1",
		"AWS_ECR_REGISTRY_IDS": e2eAccount, "LISTEN_PORT": "0", "LOG_LEVEL": "debug",
	}
	out, logs, err := w.run(ctx, "--once")
	if err != nil {
		t.Fatalf("the daemon as the chart's ServiceAccount: %v\n%s", err, logs)
	}
	sec, err := admin.CoreV1().Secrets("team-a").Get(ctx, "ecr-credentials", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("no pull Secret in team-a: %v\n%s", err, logs)
	}
	if cfg := string(sec.Data[corev1.DockerConfigJsonKey]); sec.Type != corev1.SecretTypeDockerConfigJson ||
		!strings.Contains(cfg, w.ecr.Host(e2eAccount)) || !strings.Contains(cfg, w.ecr.Password(e2eAccount)) {
		t.Errorf("the pull Secret does not hold the fresh token for %s (type %s)", w.ecr.Host(e2eAccount), sec.Type)
	}
	sa, err := admin.CoreV1().ServiceAccounts("team-a").Get(ctx, "default", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := sa.ImagePullSecrets; len(got) != 2 || got[0].Name != "someone-elses" || got[1].Name != "ecr-credentials" {
		t.Errorf("default ServiceAccount imagePullSecrets = %v, want someone-elses kept and ecr-credentials added", got)
	}
	daemon, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := daemon.CoreV1().Secrets("team-a").Delete(ctx, "ecr-credentials", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("delete the Secret: err = %v, want 403 Forbidden", err)
	}
	noSecrets(t, out+logs, w.ecr.Password(e2eAccount))
}

// TestChart_Install installs the chart with helm on the real apiserver, as a user would with static
// AWS keys and two replicas: the install checks the keys' Secret before anything is created (and
// says to create the namespace, then the Secret), the apiserver accepts every object, and NOTES
// tell how to reach the leader.
func TestChart_Install(t *testing.T) {
	helmBinary(t) // skip before starting a server when helm is missing
	srv := kubetest.Start(t)
	kubeconfig := kubetest.WriteKubeconfig(t, srv.AdminConfig(), chartNS)
	install := func(extra ...string) (string, error) {
		return helm(t, append([]string{"install", chartRelease, chartDir, "--namespace", chartNS, "--kubeconfig", kubeconfig,
			"--set", "image.repository=" + testImage, "--set", "aws.existingSecret=aws-keys", "--set", "replicaCount=2"}, extra...)...)
	}
	ctx := t.Context()
	admin := kubetest.Clientset(t, srv.AdminConfig())

	_, err := install("--dry-run=server")
	if want := "aws.existingSecret: no Secret aws-keys in namespace " + chartNS + ". Create it first: kubectl create namespace " + chartNS +
		"; kubectl -n " + chartNS + " create secret generic aws-keys --from-literal=AWS_ACCESS_KEY_ID=... --from-literal=AWS_SECRET_ACCESS_KEY=..."; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("install without the Secret: err = %v\nwant it to say %q", err, want)
	}
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: chartNS}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	keys := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "aws-keys"}, StringData: map[string]string{"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE"}}
	if keys, err = admin.CoreV1().Secrets(chartNS).Create(ctx, keys, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = install("--dry-run=server")
	if want := "aws.existingSecret: Secret " + chartNS + "/aws-keys has no key AWS_SECRET_ACCESS_KEY (it has AWS_ACCESS_KEY_ID)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("install with a Secret lacking a key: err = %v\nwant it to say %q", err, want)
	}
	keys.Data["AWS_SECRET_ACCESS_KEY"] = []byte("example")
	if _, err := admin.CoreV1().Secrets(chartNS).Update(ctx, keys, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	out, err := install()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"leader=$(kubectl -n " + chartNS + " get lease rancher-ecr-credentials -o jsonpath='{.spec.holderIdentity}')",
		`kubectl -n ` + chartNS + ` port-forward "pod/${leader%_*}" 8080 &`,
		"image " + testImage + ":0.1.0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("helm install's NOTES lack %q:\n%s", want, out)
		}
	}
	pdb, err := admin.PolicyV1().PodDisruptionBudgets(chartNS).Get(ctx, chartRelease, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p := pdb.Spec.UnhealthyPodEvictionPolicy; p == nil || *p != policyv1.AlwaysAllow {
		t.Errorf("the PodDisruptionBudget on the apiserver: unhealthyPodEvictionPolicy %v, want AlwaysAllow", p)
	}
	d, err := admin.AppsV1().Deployments(chartNS).Get(ctx, chartRelease, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a := d.Spec.Template.Spec.Affinity; a == nil || a.PodAntiAffinity == nil || len(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 1 {
		t.Errorf("the Deployment on the apiserver: affinity %+v, want one preferred pod anti-affinity", a)
	}
}
