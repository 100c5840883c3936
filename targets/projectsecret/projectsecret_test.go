package projectsecret_test

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/targettest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi/ranchertest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/projectsecret"
)

// chosen is the Target the wiring makes for a Rancher 2.x project: /v3 (here
// a stand-in that counts its plans: the norman target is tested in its own
// package) or Secrets through the proxy, by server version and mode.
func (e *env) chosen(mode string) refresher.Target {
	c := e.client()
	ch := &projectsecret.Chooser{Mode: mode, Version: c.GetServerVersion, Log: e.Log}
	return ch.Target(&e.v3, &projectsecret.Target{Cluster: e.proxied(), Project: e.id})
}

// v3Target stands for the /v3 target: it plans nothing and counts its plans.
type v3Target struct{ plans atomic.Int32 }

func (v *v3Target) Plan(context.Context, refresher.Input) (refresher.Plan, error) {
	v.plans.Add(1)
	return refresher.Plan{}, nil
}

// lastPassword is the last password e.tokens handed out (NoLog's last secret).
func (e *env) lastPassword() string {
	s := e.Secrets()
	return s[len(s)-1]
}

// checkWritten checks the project's Secret as Rancher 2.12+ needs it to copy it
// into the project's namespaces, holding the last password handed out.
func (e *env) checkWritten() *corev1.Secret {
	e.T.Helper()
	s := e.secret(secretName)
	if s.Type != corev1.SecretTypeDockerConfigJson || s.Labels[projectsecret.ProjectScopedLabel] != e.project || s.Labels[kubesecret.ManagedByLabel] != kubesecret.ManagedBy {
		e.T.Fatalf("secret %s/%s: type %s, labels %v", s.Namespace, s.Name, s.Type, s.Labels)
	}
	a := targettest.Auths(e.T, s)[host]
	if a.Username != "AWS" || a.Password != e.lastPassword() || a.Auth == "" {
		e.T.Fatalf("secret entry for %s: %+v", host, a)
	}
	return s
}

// Rancher before 2.12 gets /v3 dockerCredentials; 2.12 and later get Secrets
// through the proxy, at once; RANCHER_SECRET_API overrides both ways.
func TestVersionMatrix(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		version, mode string
		secret        bool
	}{
		{"v2.11.4", "auto", false},
		{"v2.12.0", "auto", true},
		{"v2.14.4", "auto", true},
		{"v2.15.0", "auto", true},
		{"v2.13.0-rc1", "auto", true},
		{"master-head", "auto", true},
		{"v2.15.0", "v3", false},
		{"v2.11.4", "kubernetes", true},
	} {
		t.Run(tc.version+"/"+tc.mode, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tc.version, true)
			if err := e.run(e.chosen(tc.mode)); err != nil {
				t.Fatal(err)
			}
			list, err := e.Admin.CoreV1().Secrets(e.backing).List(context.Background(), metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			v3 := e.v3.plans.Load()
			if tc.secret {
				e.checkWritten()
				if v3 != 0 {
					t.Errorf("the /v3 target planned too")
				}
			} else if v3 != 1 || len(list.Items) != 0 {
				t.Errorf("want the /v3 target and no Secret; got %d /v3 plans, %d secrets", v3, len(list.Items))
			}
			want := "written as /v3 dockerCredentials"
			if tc.secret {
				want = "written as project-scoped Secrets through the Kubernetes API"
			}
			if !strings.Contains(e.Logs.String(), want) || !strings.Contains(e.Logs.String(), tc.version) && tc.mode == "auto" {
				t.Errorf("the choice line lacks %q and the version", want)
			}
		})
	}
}

// A project made before Rancher 2.9.9 has no status.backingNamespace: its
// Secrets live in the namespace named like the project.
func TestBackingNamespaceFallback(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "v2.12.3", false)
	if err := e.run(e.chosen("auto")); err != nil {
		t.Fatal(err)
	}
	if s := e.checkWritten(); s.Namespace != e.project {
		t.Errorf("secret in %s, want %s", s.Namespace, e.project)
	}
}

// A Secret holding any host this process does not manage is never rewritten:
// not when it bears our name (the host fails, naming it), not when it is
// another /v3 Secret (left alone, reported, and our own Secret written beside it).
func TestNeverRewritesForeignHosts(t *testing.T) {
	t.Parallel()
	norm := map[string]string{projectsecret.CreatorLabel: projectsecret.CreatorNorman}

	t.Run("OurName", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, "v2.12.3", true)
		old := e.put(secretName, norm, host, "registry.example.com")
		err := e.run(e.chosen("auto"))
		if err == nil || !strings.Contains(err.Error(), secretName) || !strings.Contains(err.Error(), "registry.example.com") {
			t.Fatalf("err = %v, want one naming the secret and the foreign host", err)
		}
		if s := e.secret(secretName); s.ResourceVersion != old.ResourceVersion {
			t.Errorf("resourceVersion %s → %s: the secret was changed", old.ResourceVersion, s.ResourceVersion)
		}
	})
	t.Run("OtherName", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, "v2.12.3", true)
		old := e.put("team-pull", norm, host, "registry.example.com")
		if err := e.run(e.chosen("auto")); err != nil {
			t.Fatal(err)
		}
		e.checkWritten()
		if s := e.secret("team-pull"); s.ResourceVersion != old.ResourceVersion {
			t.Errorf("resourceVersion %s → %s: the shared secret was changed", old.ResourceVersion, s.ResourceVersion)
		}
		if !strings.Contains(e.Logs.String(), "team-pull") {
			t.Error("the untouched secret is not reported")
		}
	})
	t.Run("Dashboard", func(t *testing.T) { // made by hand: neither ours nor /v3's
		t.Parallel()
		e := newEnv(t, "v2.12.3", true)
		old := e.put(secretName, map[string]string{projectsecret.ProjectScopedLabel: "x"}, host)
		err := e.run(e.chosen("auto"))
		if err == nil || !strings.Contains(err.Error(), "is never changed") {
			t.Fatalf("err = %v", err)
		}
		if s := e.secret(secretName); s.ResourceVersion != old.ResourceVersion {
			t.Error("a hand-made secret was changed")
		}
	})
}

// Refusals name the verb, the resource, the namespace and the Rancher role that grants them.
func TestForbiddenSaysWhatToGrant(t *testing.T) {
	t.Parallel()
	t.Run("Secrets", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, "v2.12.3", true)
		e.revoke(e.backing, "secrets")
		err := e.run(e.chosen("kubernetes"))
		t.Logf("the error: %v", err)
		for _, want := range []string{"forbidden", "list secrets in namespace " + e.backing, "Project Member", "project " + e.id} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v, want %q in it", err, want)
			}
		}
	})
	t.Run("Create", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, "v2.12.3", true)
		e.revoke(e.backing, "secrets")
		e.grant(e.backing, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"list"}})
		err := e.run(e.chosen("kubernetes"))
		t.Logf("the error: %v", err)
		for _, want := range []string{"cannot create secrets in namespace " + e.backing, "Project Member", "Manage Secrets"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v, want %q in it", err, want)
			}
		}
	})
	t.Run("Project", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, "v2.12.3", true)
		e.revoke(e.cluster, "projects")
		err := e.run(e.chosen("kubernetes"))
		t.Logf("the error: %v", err)
		for _, want := range []string{"get projects.management.cattle.io", "in namespace " + e.cluster, "Project Member"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v, want %q in it", err, want)
			}
		}
	})
}

// A token scoped to a downstream cluster is refused by the local cluster's
// proxy; the error says so and what token to use.
func TestTokenScopedToAnotherCluster(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "v2.12.3", true)
	e.rancher.SetToken(e.access, ranchertest.TokenInfo{KubeUser: e.user, ClusterID: "c-other"})
	err := e.run(e.chosen("auto"))
	t.Logf("the error: %v", err)
	if err == nil || !strings.Contains(err.Error(), "scoped to one cluster") || !strings.Contains(err.Error(), "No Scope") {
		t.Fatalf("err = %v", err)
	}
}

// A project id that names no project says so.
func TestProjectMissing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "v2.12.3", true)
	missing := e.cluster + ":p-nope"
	err := e.run(&projectsecret.Target{Cluster: e.serviceAccount(e.cluster), Project: missing})
	if err == nil || !strings.Contains(err.Error(), "project "+missing+" does not exist") {
		t.Fatalf("err = %v", err)
	}
}

// Inside the local cluster: a ServiceAccount's own token, no Rancher in the
// path, the same Secret.
func TestInClusterServiceAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "", true)
	c := e.serviceAccount(e.cluster)
	if err := e.run(&projectsecret.Target{Cluster: c, Project: e.id}); err != nil {
		t.Fatal(err)
	}
	e.checkWritten()
}

// RANCHER_PROJECTS=all in the cluster lists the projects CRD, but not
// Rancher's System project (its namespaces are Rancher's own).
func TestListProjects(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "", true)
	c, err := projectsecret.NewCluster(kubeapi.Prepare(e.Srv.AdminConfig(), kubeapi.Options{UserAgent: "test"}), false)
	if err != nil {
		t.Fatal(err)
	}
	sys := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "management.cattle.io/v3", "kind": "Project",
		"metadata": map[string]any{"name": "p-system", "namespace": e.cluster, "labels": map[string]any{rancherapi.SystemProjectLabel: "true"}},
		"spec":     map[string]any{"clusterName": e.cluster, "displayName": "System"}}}
	dyn, err := dynamic.NewForConfig(e.Srv.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(projectsecret.ProjectsResource).Namespace(e.cluster).Create(t.Context(), sys, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, project, _ := projectsecret.SplitProject(e.id)
	patch := `{"metadata":{"annotations":{"rancher-ecr-credentials/role-arn":"arn:aws:iam::111122223333:role/team-a"}}}`
	if _, err := dyn.Resource(projectsecret.ProjectsResource).Namespace(e.cluster).Patch(t.Context(), project, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	projects, err := c.ListProjects(t.Context())
	ids := make([]string, len(projects))
	for i, p := range projects {
		ids[i] = p.ID
		if p.ID == e.id && p.Annotations["rancher-ecr-credentials/role-arn"] != "arn:aws:iam::111122223333:role/team-a" {
			t.Errorf("%s listed with annotations %v", p.ID, p.Annotations)
		}
	}
	if err != nil || !slices.Contains(ids, e.id) || slices.Contains(ids, e.cluster+":p-system") {
		t.Errorf("ListProjects = %v, %v; want %s among them and not the System project", ids, err, e.id)
	}
	if a, err := c.Annotations(t.Context(), e.id); err != nil || a["rancher-ecr-credentials/role-arn"] == "" {
		t.Errorf("Annotations(%s) = %v, %v", e.id, a, err)
	}
	if _, err := c.Annotations(t.Context(), e.cluster+":p-nothere"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Annotations of a missing project: %v", err)
	}
}

// Rancher's proxy to the local cluster is a Kubernetes client like any other:
// KUBE_API_QPS and KUBE_API_BURST (here through kubeapi.Options) limit it.
func TestProxyConfig_RateLimit(t *testing.T) {
	t.Parallel()
	c, err := rancherapi.NewClient("https://rancher.example.com/v3", "", "token-x:sk", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := projectsecret.ProxyConfig(c, kubeapi.Options{UserAgent: "ua", QPS: 7, Burst: 9})
	if cfg.QPS != 7 || cfg.Burst != 9 || cfg.UserAgent != "ua" || cfg.Host != "https://rancher.example.com/k8s/clusters/local" {
		t.Errorf("proxy config: host %s, QPS %v, burst %d, user agent %q; want Rancher's /k8s/clusters/local at 7/9 with ua", cfg.Host, cfg.QPS, cfg.Burst, cfg.UserAgent)
	}
}
