package deploy_test

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/consumertest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/argocd"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/labelled"
)

// clusterRepoCRD is Rancher's ClusterRepo CRD as the real Rancher v2.12.3 installs it.
const clusterRepoCRD = "../targets/rancherapps/testdata/clusterrepos.catalog.cattle.io.yaml"

// clusterRole returns the rendered ClusterRole named name, nil when there is none.
func (r rendered) clusterRole(name string) *rbacv1.ClusterRole {
	for _, o := range r.objects {
		if cr, ok := o.(*rbacv1.ClusterRole); ok && cr.Name == name {
			return cr
		}
	}
	return nil
}

// TestChart_Consumers checks what each consumer adds: the variables, and the RBAC it needs and no
// more — Secrets per named namespace in a Role, or in a ClusterRole for globs and all; ClusterRepos read
// only, and only with rancher-apps.
func TestChart_Consumers(t *testing.T) {
	t.Parallel()
	const name = chartRelease + "-consumers"
	watch := []string{"/secrets:get", "/secrets:list", "/secrets:update", "/secrets:watch"}
	repos := []string{"catalog.cattle.io/clusterrepos:get", "catalog.cattle.io/clusterrepos:list", "catalog.cattle.io/clusterrepos:watch"}
	for _, tt := range []struct {
		name        string
		set         []string
		clusterRole []string            // the consumers' ClusterRole; nil: none
		roles       map[string][]string // namespace → the consumers' Role rules
		env         map[string]string
		noEnv       []string
	}{
		{name: "labelled beside namespaces", set: []string{"consumers={labelled}"}, clusterRole: watch,
			env: map[string]string{"KUBE_CONSUMERS": "labelled", "KUBE_NAMESPACES": "all"}, noEnv: []string{"KUBE_CONSUMER_NAMESPACES"}},
		{name: "argocd in its namespace", set: []string{"mode=consumers", "consumers={argocd}", "consumerNamespaces={argocd}"},
			roles: map[string][]string{"argocd": watch}, env: map[string]string{"KUBE_CONSUMERS": "argocd", "KUBE_CONSUMER_NAMESPACES": "argocd"},
			noEnv: []string{"KUBE_NAMESPACES", "RANCHER_PROJECTS"}},
		{name: "rancher apps", set: []string{"mode=consumers", "consumers={rancher-apps}", "consumerNamespaces={cattle-system}"}, clusterRole: repos,
			roles: map[string][]string{"cattle-system": {"/secrets:get", "/secrets:update"}}, env: map[string]string{"KUBE_CONSUMERS": "rancher-apps"}},
		{name: "all by glob", set: []string{"mode=consumers", "consumers={all}", "consumerNamespaces={team-*}"}, clusterRole: slices.Concat(repos, watch),
			env: map[string]string{"KUBE_CONSUMERS": "all", "KUBE_CONSUMER_NAMESPACES": "team-*"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := renderChart(t, chartRelease, tt.set...)
			if err != nil {
				t.Fatal(err)
			}
			r := decodeManifest(t, out)
			cr := r.clusterRole(name)
			switch {
			case tt.clusterRole == nil && cr != nil:
				t.Errorf("a consumers ClusterRole is rendered: %v", sortedRules(cr.Rules))
			case tt.clusterRole != nil && cr == nil:
				t.Errorf("no consumers ClusterRole")
			case cr != nil:
				if got := sortedRules(cr.Rules); !slices.Equal(got, slices.Sorted(slices.Values(tt.clusterRole))) {
					t.Errorf("consumers ClusterRole rules:\n got %v\nwant %v", got, tt.clusterRole)
				}
			}
			if main := r.clusterRole(chartRelease); (main == nil) != strings.Contains(strings.Join(tt.set, ","), "mode=consumers") {
				t.Errorf("the mode's ClusterRole rendered: %v", main != nil)
			}
			got := map[string][]string{}
			for _, role := range r.roles() {
				got[role.Namespace] = sortedRules(role.Rules)
			}
			for ns, rules := range tt.roles {
				if !slices.Equal(got[ns], slices.Sorted(slices.Values(rules))) {
					t.Errorf("Role in %s: %v, want %v", ns, got[ns], rules)
				}
			}
			if len(got) != len(tt.roles) {
				t.Errorf("Roles in %v, want in %v", got, tt.roles)
			}
			env := containerEnv(only[*appsv1.Deployment](t, r))
			for k, v := range tt.env {
				if env[k] != v {
					t.Errorf("env %s = %q, want %q", k, env[k], v)
				}
			}
			for _, k := range tt.noEnv {
				if _, ok := env[k]; ok {
					t.Errorf("env %s is set", k)
				}
			}
		})
	}
	for set, want := range map[string]string{
		"consumers={flux}": `consumers: "flux" is not a consumer; use labelled, argocd, rancher-apps or all`,
		"mode=consumers":   "consumers: name the consumers to keep fresh",
	} {
		if _, err := renderChart(t, chartRelease, set); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--set %s: %v, want %q", set, err, want)
		}
	}
}

// TestChart_ConsumersRBAC applies the chart's RBAC for consumers={all} in two named namespaces to a real
// apiserver holding Rancher's ClusterRepo CRD, checks as the chart's ServiceAccount what it may and may
// not do, and runs the daemon (--once) as that ServiceAccount: an Argo CD repository Secret, a labelled
// Secret and a ClusterRepo's clientSecret are written; Secrets elsewhere cannot even be listed.
func TestChart_ConsumersRBAC(t *testing.T) {
	helmBinary(t)
	srv := kubetest.Start(t)
	if err := srv.InstallCRDs(clusterRepoCRD); err != nil {
		t.Fatal(err)
	}
	cfg := chartServiceAccountConfig(t, srv, "consumers", "mode=consumers", "consumers={all}", "consumerNamespaces={argocd,cattle-system}")
	read := []string{"get", "list", "watch"}
	checkAccess(t, cfg, true, slices.Concat(
		accesses([]string{"get", "list", "watch", "update"}, "", "secrets", "argocd", ""),
		accesses([]string{"get", "list", "watch", "update"}, "", "secrets", "cattle-system", ""),
		accesses(read, "catalog.cattle.io", "clusterrepos", "", ""),
	))
	checkAccess(t, cfg, false, slices.Concat(
		accesses([]string{"get", "list", "watch", "update"}, "", "secrets", "team-a", ""),
		accesses([]string{"list", "watch"}, "", "secrets", "", ""),
		accesses([]string{"create", "delete", "patch"}, "", "secrets", "argocd", ""),
		accesses([]string{"create", "update", "patch", "delete"}, "catalog.cattle.io", "clusterrepos", "", ""),
		accesses(read, "", "namespaces", "", ""),
	))

	ctx := t.Context()
	admin := kubetest.Clientset(t, srv.AdminConfig())
	w := newWorld(t)
	host := w.ecr.Host(e2eAccount)
	create := func(s *corev1.Secret) {
		t.Helper()
		if _, err := admin.CoreV1().Secrets(s.Namespace).Create(ctx, s, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "ecr", Namespace: "argocd", Labels: map[string]string{argocd.TypeLabel: argocd.TypeRepoCreds}},
		StringData: map[string]string{"url": host, "type": "helm", "enableOCI": "true"}})
	create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "fleet-helm", Namespace: "cattle-system", Labels: map[string]string{labelled.HostLabel: host}},
		Type: corev1.SecretTypeBasicAuth, StringData: map[string]string{"username": "x", "password": "x"}})
	create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "ecr-charts", Namespace: "cattle-system"}, Type: corev1.SecretTypeBasicAuth,
		StringData: map[string]string{"username": "AWS", "password": "pending"}})
	consumertest.ClusterRepo(t, srv.AdminConfig(), "ecr-charts", "oci://"+host+"/charts", "cattle-system", "ecr-charts")
	t.Setenv("KUBECONFIG", kubetest.WriteKubeconfig(t, cfg, chartNS))
	w.env = map[string]string{"KUBE_CONSUMERS": "all", "KUBE_CONSUMER_NAMESPACES": "argocd,cattle-system", "AWS_REGION": "us-east-1",
		"AWS_ECR_REGISTRY_IDS": e2eAccount, "LISTEN_PORT": "0", "LOG_LEVEL": "debug"}
	out, logs, err := w.run(ctx, "--once")
	if err != nil {
		t.Fatalf("the daemon as the chart's ServiceAccount: %v\n%s", err, logs)
	}
	for _, s := range [][2]string{{"argocd", "ecr"}, {"cattle-system", "fleet-helm"}, {"cattle-system", "ecr-charts"}} {
		got, err := admin.CoreV1().Secrets(s[0]).Get(ctx, s[1], metav1.GetOptions{})
		if err != nil || string(got.Data["username"]) != "AWS" || string(got.Data["password"]) != w.ecr.Password(e2eAccount) {
			t.Errorf("secret %s/%s does not hold the fresh token (%v)\n%s", s[0], s[1], err, logs)
		}
	}
	noSecrets(t, out+logs, w.ecr.Password(e2eAccount))
}
