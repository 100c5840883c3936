package rancher

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/rancherreal"
)

// The chart's default for Rancher 2.12 (mode rancherProjectSecrets through Rancher's API), installed
// with helm into the real Rancher's local cluster: the install stops until the token's Secret exists,
// then grants nothing at all (no ClusterRole, no Role, no ServiceAccount token in the Pod); the daemon,
// run with the Deployment's environment and the files it mounts (a Project Member's API key, Rancher's
// CA), writes the project's Secret, which Rancher copies; it asked only for what a Project Member has;
// /readyz and the token-expiry metric say so, as the README's checks do.
func TestRancher_ChartThroughRancher(t *testing.T) {
	t.Parallel()
	e := setup212(t)
	p := e.srv.NewProjectWithBackingNamespace(t, "chart-api-"+rancherreal.Suffix())
	nsP := e.srv.NewNamespace(t, p, "chart-api")
	m := e.newUser("chart-api")
	e.srv.BindProject(t, m, p, "project-member", true)
	release := "recc-api-" + rancherreal.Suffix()
	set := []string{"mode=rancherProjectSecrets", "rancher.projects={" + p.ID + "}", "rancher.url=" + e.srv.URL + "/v3",
		"rancher.token.existingSecret=rancher-api-token", "rancher.ca.configMap=rancher-ca"}

	e.namespace(release)
	if _, err := e.installChart(release, true, set...); err == nil || !strings.Contains(err.Error(), "rancher.token.existingSecret: no Secret rancher-api-token in namespace "+release) {
		t.Fatalf("install without the token's Secret: err = %v, want it to name the Secret and how to create it", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	kc := e.srv.KubeClient(t)
	if _, err := kc.CoreV1().Secrets(release).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "rancher-api-token"},
		StringData: map[string]string{"token": m.Key}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.CoreV1().ConfigMaps(release).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "rancher-ca"},
		Data: map[string]string{"ca.crt": string(e.srv.CAPEM)}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	notes, err := e.installChart(release, false, set...)
	if err != nil {
		t.Fatal(err)
	}
	in := e.release(release)
	if len(in.grants) > 0 {
		t.Errorf("the chart granted %v in the cluster it runs in, want nothing", in.grants)
	}
	if a := in.deployment.Spec.Template.Spec.AutomountServiceAccountToken; a == nil || *a {
		t.Errorf("automountServiceAccountToken %v, want false: the Pod has no use for a token of this cluster", a)
	}
	sa, err := e.srv.Kube.ServiceAccountConfig(ctx, in.sa.Namespace, in.sa.Name)
	if err != nil {
		t.Fatal(err)
	}
	e.secret("the ServiceAccount token", sa.BearerToken)
	for _, a := range [][4]string{{"get", "", "secrets", p.BackingNamespace}, {"list", "", "secrets", p.BackingNamespace},
		{"get", "management.cattle.io", "projects", rancherreal.LocalCluster}, {"create", "", "secrets", nsP}} {
		if may(t, sa, a[0], a[1], a[2], a[3], "") {
			t.Errorf("the chart's ServiceAccount may %s %s in %s", a[0], a[2], a[3])
		}
	}

	noWarnings(t, e.runChart(in))
	e.waitCopy(e.checkSource(p), nsP)
	d := e.startDaemon(in.env(e, t.TempDir())...) // the refresh, as the Deployment's container runs
	again := e.checkSource(p)
	e.waitCopy(again, nsP)
	if code, body := httpGet(t.Context(), d.url+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz %d: %s", code, body)
	}
	_, body := httpGet(t.Context(), d.url+"/metrics")
	if got, exp := int64(metric(t, body, "rancher_ecr_credentials_rancher_token_expiry_timestamp_seconds")), e.keyExpiry(m); got != exp.Unix() {
		t.Errorf("the token-expiry metric %d is not the key's expiresAt %s", got, exp.Format(time.RFC3339))
	}
	noWarnings(t, e.stopDaemon(d))
	grants := e.grantsOf(m)
	t.Logf("the chart through Rancher's API grants nothing here; the daemon asked, as the Project Member:\n  %s", strings.Join(grants, "\n  "))
	for _, g := range grants {
		if !slices.Contains(leastGrants(p), g) {
			t.Errorf("the daemon asked for %q, beyond %v", g, leastGrants(p))
		}
	}
	if !strings.Contains(notes, "rancher_token_expiry_timestamp_seconds") {
		t.Errorf("the install notes do not say how to check the token's expiry:\n%s", notes)
	}
}

// The chart inside the local cluster (rancher.inCluster=true), installed with helm into the real
// Rancher's local cluster: the install looks up each project's backing namespace (one of each
// layout: <cluster>-<project> and the project id) and grants get on those two projects and the Secret
// verbs in their backing namespaces, nothing else; the daemon, as that ServiceAccount with the
// Deployment's environment, writes both projects' Secrets, which Rancher copies; what it asked for is
// all the chart grants need, and a Secret outside the backing namespaces stays out of reach.
func TestRancher_ChartInCluster(t *testing.T) {
	t.Parallel()
	e := setup212(t)
	p1 := e.srv.NewProjectWithBackingNamespace(t, "chart-in-1-"+rancherreal.Suffix())
	p2 := e.srv.NewProject(t, "chart-in-2-"+rancherreal.Suffix())
	other := e.srv.NewProjectWithBackingNamespace(t, "chart-in-other-"+rancherreal.Suffix())
	ns1, ns2 := e.srv.NewNamespace(t, p1, "chart-in-1"), e.srv.NewNamespace(t, p2, "chart-in-2")
	release := "recc-in-" + rancherreal.Suffix()
	e.namespace(release)
	if _, err := e.installChart(release, false, "mode=rancherProjectSecrets", "rancher.inCluster=true", "rancher.projects={"+p1.ID+","+p2.ID+"}"); err != nil {
		t.Fatal(err)
	}
	in := e.release(release)
	full := release + "-rancher-ecr-credentials"
	secretRule := []string{"get,list,create,update secrets ()"}
	want := map[string][]string{
		"Role local/" + full + "-rancher-project":                       {"get projects (management.cattle.io) [" + p1.Name + "," + p2.Name + "]"},
		"Role " + p1.BackingNamespace + "/" + full + "-rancher-secrets": secretRule,
		"Role " + p2.BackingNamespace + "/" + full + "-rancher-secrets": secretRule,
	}
	if !maps.EqualFunc(in.grants, want, slices.Equal) {
		t.Errorf("the chart granted\n  %v\nwant\n  %v", in.grants, want)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	sa, err := e.srv.Kube.ServiceAccountConfig(ctx, in.sa.Namespace, in.sa.Name)
	if err != nil {
		t.Fatal(err)
	}
	e.secret("the ServiceAccount token", sa.BearerToken)
	kubeconfig := kubetest.WriteKubeconfig(t, sa, in.sa.Namespace) // what the Pod's in-cluster config holds
	for run := 1; run <= 2; run++ {                                // create, then refresh
		noWarnings(t, e.runChart(in, "KUBECONFIG="+kubeconfig, "RANCHER_CA_FILE="))
		e.waitCopy(e.checkSource(p1), ns1)
		e.waitCopy(e.checkSource(p2), ns2)
	}

	user := "system:serviceaccount:" + in.sa.Namespace + ":" + in.sa.Name
	reqs, err := e.srv.Requests(user)
	if err != nil {
		t.Fatal(err)
	}
	allowed := []string{}
	for _, p := range []rancherreal.Project{p1, p2} {
		at := " in namespace " + p.BackingNamespace
		allowed = append(allowed, "get projects.management.cattle.io "+p.Name+" in namespace "+rancherreal.LocalCluster,
			"list secrets"+at, "create secrets "+ourName+at, "get secrets "+ourName+at, "update secrets "+ourName+at)
	}
	grants := rancherreal.Grants(reqs)
	t.Logf("the chart in the cluster grants\n  %v\ntwo --once runs into %s and %s asked for:\n  %s", in.grants, p1.ID, p2.ID, strings.Join(grants, "\n  "))
	for _, r := range reqs {
		if r.ResponseStatus != nil && r.ResponseStatus.Code == http.StatusForbidden {
			t.Errorf("RBAC refused the chart's ServiceAccount: %s", rancherreal.Grant(r))
		}
		if g := rancherreal.Grant(r); !slices.Contains(allowed, g) {
			t.Errorf("the daemon asked for %q, beyond %v", g, allowed)
		}
	}
	for _, a := range [][5]string{
		{"get", "", "secrets", other.BackingNamespace, ourName}, {"list", "", "secrets", other.BackingNamespace, ""},
		{"create", "", "secrets", ns1, ""}, {"get", "", "secrets", "cattle-system", ""}, {"list", "", "secrets", "", ""},
		{"delete", "", "secrets", p1.BackingNamespace, ourName}, {"watch", "", "secrets", p1.BackingNamespace, ""},
		{"get", "management.cattle.io", "projects", rancherreal.LocalCluster, other.Name},
		{"list", "management.cattle.io", "projects", rancherreal.LocalCluster, ""},
	} {
		if may(t, sa, a[0], a[1], a[2], a[3], a[4]) {
			t.Errorf("the chart's ServiceAccount may %s %s %q in namespace %q", a[0], a[2], a[4], a[3])
		}
	}
}
