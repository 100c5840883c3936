package deploy_test

import (
	"maps"
	"path"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
)

// rancherProxySet is mode rancherProjectSecrets as the README sets it up for Rancher 2.12: through
// Rancher's API with a token from a Secret, Rancher's CA from a ConfigMap.
var rancherProxySet = []string{"mode=rancherProjectSecrets", "rancher.projects={local:p-abcde,c-m-xyz:p-fghij}",
	"rancher.url=https://rancher.example.com/v3", "rancher.token.existingSecret=rancher-api-token", "rancher.ca.configMap=rancher-ca"}

// rbacOf returns what the rendered RBAC grants: "ClusterRole <name>" or "Role <namespace>/<name>" →
// its rules (sortedRules), after checking that a binding of the same name binds each to the chart's
// ServiceAccount, and nothing else.
func rbacOf(t *testing.T, r rendered) map[string][]string {
	t.Helper()
	sa := only[*corev1.ServiceAccount](t, r)
	grants, bound := map[string][]string{}, map[string]bool{}
	check := func(key string, ref rbacv1.RoleRef, subjects []rbacv1.Subject) {
		name := key[strings.LastIndex(key, "/")+1:]
		if ref.Name != name[strings.Index(name, " ")+1:] || len(subjects) != 1 || subjects[0].Kind != "ServiceAccount" ||
			subjects[0].Name != sa.Name || subjects[0].Namespace != sa.Namespace {
			t.Errorf("%s binds %s to %+v, want the chart's ServiceAccount %s/%s", key, ref.Name, subjects, sa.Namespace, sa.Name)
		}
		bound[key] = true
	}
	for _, o := range r.objects {
		switch o := o.(type) {
		case *rbacv1.ClusterRole:
			grants["ClusterRole "+o.Name] = sortedRules(o.Rules)
		case *rbacv1.Role:
			grants["Role "+o.Namespace+"/"+o.Name] = sortedRules(o.Rules)
		case *rbacv1.ClusterRoleBinding:
			check("ClusterRole "+o.Name, o.RoleRef, o.Subjects)
		case *rbacv1.RoleBinding:
			check("Role "+o.Namespace+"/"+o.Name, o.RoleRef, o.Subjects)
		}
	}
	if !maps.Equal(bound, maps.Collect(func(yield func(string, bool) bool) {
		for k := range grants {
			if !yield(k, true) {
				return
			}
		}
	})) {
		t.Errorf("roles %v, bindings %v: want one binding per role", slices.Sorted(maps.Keys(grants)), slices.Sorted(maps.Keys(bound)))
	}
	return grants
}

// fileSource says where the file at p in the container comes from: "Secret <name>/<key>" or
// "ConfigMap <name>/<key>", through the volume mounted at p's directory.
func fileSource(d *appsv1.Deployment, p string) string {
	pod := d.Spec.Template.Spec
	for _, m := range pod.Containers[0].VolumeMounts {
		if m.MountPath != path.Dir(p) || !m.ReadOnly {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name != m.Name {
				continue
			}
			kind, name, items := "", "", []corev1.KeyToPath(nil)
			switch {
			case v.Secret != nil:
				kind, name, items = "Secret", v.Secret.SecretName, v.Secret.Items
			case v.ConfigMap != nil:
				kind, name, items = "ConfigMap", v.ConfigMap.Name, v.ConfigMap.Items
			}
			for _, it := range items {
				if it.Path == path.Base(p) {
					return kind + " " + name + "/" + it.Key
				}
			}
		}
	}
	return ""
}

// TestChart_RancherModes checks what mode rancherProjectSecrets renders. Through Rancher's API (the
// default): no RBAC at all but leader election's, no ServiceAccount token in the Pod unless leader
// election needs it, the token and the CA mounted as files. Inside the local cluster: get on the named
// projects, the Secret verbs in their backing namespaces only; with all, cluster-wide (said in the README).
func TestChart_RancherModes(t *testing.T) {
	t.Parallel()
	const fullname = chartRelease
	leaseRole := "Role " + chartNS + "/" + fullname + "-leader-election"
	leases := []string{"coordination.k8s.io/leases:create", "coordination.k8s.io/leases:get[rancher-ecr-credentials]", "coordination.k8s.io/leases:update[rancher-ecr-credentials]"}
	secretVerbs := []string{"/secrets:create", "/secrets:get", "/secrets:list", "/secrets:update"}
	for _, tt := range []struct {
		name      string
		set       []string
		rbac      map[string][]string
		automount bool
		env       map[string]string
		noEnv     []string
		files     map[string]string // env → fileSource
	}{{
		name: "through Rancher's API",
		set:  rancherProxySet,
		rbac: map[string][]string{},
		env: map[string]string{"RANCHER_PROJECTS": "local:p-abcde,c-m-xyz:p-fghij", "CATTLE_URL": "https://rancher.example.com/v3",
			"CATTLE_SECRET_KEY_FILE": "/var/run/secrets/rancher-ecr-credentials/rancher/token", "RANCHER_CA_FILE": "/etc/rancher-ecr-credentials/rancher-ca/ca.crt"},
		noEnv: []string{"CATTLE_SECRET_KEY", "CATTLE_ACCESS_KEY", "KUBE_NAMESPACES", "LEADER_ELECTION", "RANCHER_SECRET_API"},
		files: map[string]string{"CATTLE_SECRET_KEY_FILE": "Secret rancher-api-token/token", "RANCHER_CA_FILE": "ConfigMap rancher-ca/ca.crt"},
	}, {
		name:      "through Rancher's API, two replicas, the CA in a Secret, /v3 forced",
		set:       append(slices.Clone(rancherProxySet), "replicaCount=2", "rancher.ca.configMap=", "rancher.ca.secret=rancher-tls", "rancher.ca.key=cacerts.pem", "rancher.token.key=bearer", "rancher.secretApi=v3"),
		rbac:      map[string][]string{leaseRole: leases},
		automount: true,
		env:       map[string]string{"LEADER_ELECTION": "true", "RANCHER_SECRET_API": "v3"},
		files:     map[string]string{"CATTLE_SECRET_KEY_FILE": "Secret rancher-api-token/bearer", "RANCHER_CA_FILE": "Secret rancher-tls/cacerts.pem"},
	}, {
		name: "inside the local cluster",
		set: []string{"mode=rancherProjectSecrets", "rancher.inCluster=true", "rancher.projects={local:p-abcde,local:p-fghij,c-m-xyz:p-klmno}",
			"rancher.backingNamespaces={local-p-abcde,p-fghij,c-m-xyz-p-klmno}"},
		rbac: map[string][]string{
			"Role local/" + fullname + "-rancher-project":           {"management.cattle.io/projects:get[p-abcde,p-fghij]"},
			"Role c-m-xyz/" + fullname + "-rancher-project":         {"management.cattle.io/projects:get[p-klmno]"},
			"Role local-p-abcde/" + fullname + "-rancher-secrets":   secretVerbs,
			"Role p-fghij/" + fullname + "-rancher-secrets":         secretVerbs,
			"Role c-m-xyz-p-klmno/" + fullname + "-rancher-secrets": secretVerbs,
		},
		automount: true,
		env:       map[string]string{"RANCHER_PROJECTS": "local:p-abcde,local:p-fghij,c-m-xyz:p-klmno"},
		noEnv:     []string{"CATTLE_URL", "CATTLE_SECRET_KEY_FILE", "RANCHER_CA_FILE"},
	}, {
		name:      "inside the local cluster, every project",
		set:       []string{"mode=rancherProjectSecrets", "rancher.inCluster=true", "rancher.projects={all}"},
		rbac:      map[string][]string{"ClusterRole " + fullname + "-rancher-projects": slices.Sorted(slices.Values(slices.Concat([]string{"management.cattle.io/projects:get", "management.cattle.io/projects:list"}, secretVerbs)))},
		automount: true,
		env:       map[string]string{"RANCHER_PROJECTS": "all"},
	}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, d := renderHardened(t, tt.set...)
			if got := rbacOf(t, r); !maps.EqualFunc(got, tt.rbac, slices.Equal) {
				t.Errorf("RBAC:\n got %v\nwant %v", got, tt.rbac)
			}
			if a := d.Spec.Template.Spec.AutomountServiceAccountToken; a == nil || *a != tt.automount {
				t.Errorf("automountServiceAccountToken %v, want %v", a, tt.automount)
			}
			checkEnv(t, d, tt.env, tt.noEnv)
			env := containerEnv(d)
			for name, want := range tt.files {
				if got := fileSource(d, env[name]); got != want {
					t.Errorf("%s=%s comes from %q, want %q", name, env[name], got, want)
				}
			}
		})
	}
}

// TestChart_RancherValues checks what mode rancherProjectSecrets refuses, each naming the value and the fix.
func TestChart_RancherValues(t *testing.T) {
	t.Parallel()
	mode, projects := "mode=rancherProjectSecrets", "rancher.projects={local:p-abcde}"
	inCluster := []string{mode, projects, "rancher.inCluster=true"}
	for _, tt := range []struct {
		set  []string
		want string
	}{
		{[]string{mode}, "rancher.projects: name the projects"},
		{[]string{mode, projects}, `rancher.url: set Rancher's API URL (https://<rancher>/v3) and rancher.token.existingSecret`},
		{[]string{mode, projects, "rancher.url=https://rancher.example.com/v3"}, "rancher.token.existingSecret: name the Secret holding the Rancher API token (never the token itself in values): kubectl create namespace " + chartNS},
		{append(slices.Clone(rancherProxySet), "rancher.url=https://rancher.example.com/v2-beta"), `rancher.url: "https://rancher.example.com/v2-beta" is not Rancher's API URL`},
		{append(slices.Clone(rancherProxySet), "rancher.ca.secret=ca"), "rancher.ca: set configMap or secret, not both"},
		{append(slices.Clone(inCluster), "rancher.url=https://rancher.example.com/v3"), "set one of them"},
		{inCluster, "rancher.backingNamespaces: name the backing namespace of each of rancher.projects (helm template cannot look them up; helm install does)"},
		{[]string{mode, "rancher.inCluster=true", "rancher.projects={p-abcde}"}, `rancher.projects: "p-abcde" is not a project id`},
	} {
		_, err := renderChart(t, chartRelease, tt.set...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("--set %v: err = %v\nwant it to say %q", tt.set, err, tt.want)
		}
	}
}

// TestChart_RancherInstall installs mode rancherProjectSecrets through Rancher's API with helm on a
// real apiserver: the install looks up the token's Secret (and the CA's ConfigMap) first and stops,
// naming what to create, until both exist with their keys. e2e/rancher installs it into the real
// Rancher's local cluster and runs the daemon as it is configured there.
func TestChart_RancherInstall(t *testing.T) {
	helmBinary(t) // skip before starting a server when helm is missing
	srv := kubetest.Start(t)
	kubeconfig := kubetest.WriteKubeconfig(t, srv.AdminConfig(), chartNS)
	install := func(extra ...string) error {
		args := []string{"install", chartRelease, chartDir, "--namespace", chartNS, "--kubeconfig", kubeconfig, "--set", "image.repository=" + testImage}
		for _, s := range rancherProxySet {
			args = append(args, "--set", s)
		}
		_, err := helm(t, append(args, extra...)...)
		return err
	}
	ctx := t.Context()
	admin := kubetest.Clientset(t, srv.AdminConfig())
	for _, step := range []struct {
		want   string
		create func() error
	}{{
		want: "rancher.token.existingSecret: no Secret rancher-api-token in namespace " + chartNS + ". Create it first: kubectl create namespace " + chartNS +
			"; kubectl -n " + chartNS + " create secret generic rancher-api-token --from-literal=token=<token-xxxxx:yyyy>",
		create: func() error {
			if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: chartNS}}, metav1.CreateOptions{}); err != nil {
				return err
			}
			_, err := admin.CoreV1().Secrets(chartNS).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "rancher-api-token"},
				StringData: map[string]string{"bearer": "token-abcde:x"}}, metav1.CreateOptions{})
			return err
		},
	}, {
		want: "rancher.token.existingSecret: Secret " + chartNS + "/rancher-api-token has no key token (it has bearer); add it, or name the key in rancher.token.key",
		create: func() error {
			_, err := admin.CoreV1().Secrets(chartNS).Update(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "rancher-api-token"},
				StringData: map[string]string{"token": "token-abcde:x"}}, metav1.UpdateOptions{})
			return err
		},
	}, {
		want: "rancher.ca: no ConfigMap rancher-ca in namespace " + chartNS + ". Create it first: kubectl -n " + chartNS + " create configmap rancher-ca --from-file=ca.crt=rancher-ca.pem",
		create: func() error {
			_, err := admin.CoreV1().ConfigMaps(chartNS).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "rancher-ca"},
				Data: map[string]string{"ca.crt": "-----BEGIN CERTIFICATE-----"}}, metav1.CreateOptions{})
			return err
		},
	}} {
		if err := install("--dry-run=server"); err == nil || !strings.Contains(err.Error(), step.want) {
			t.Fatalf("install: err = %v\nwant it to say %q", err, step.want)
		}
		if err := step.create(); err != nil {
			t.Fatal(err)
		}
	}
	if err := install(); err != nil {
		t.Fatal(err)
	}
	crs, err := admin.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + chartRelease})
	if err != nil || len(crs.Items) > 0 {
		t.Errorf("the install made ClusterRoles %v (%v), want none", crs, err)
	}
}
