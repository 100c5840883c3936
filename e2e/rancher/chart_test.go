package rancher

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/rancherreal"
)

// renderChart renders the chart (helm template, the helm scripts/kube-testenv.sh puts beside
// kube-apiserver) into the release namespace ns and returns its objects.
func renderChart(t *testing.T, ns string, set ...string) []any {
	t.Helper()
	args := []string{"template", "recc", filepath.Join("..", "..", "deploy", "chart", "rancher-ecr-credentials"), "--namespace", ns, "--kube-version", "v1.34.2"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	home := t.TempDir()
	cmd := exec.CommandContext(t.Context(), filepath.Join(os.Getenv(kubetest.EnvAssets), "helm"), args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm %v: %v\n%s", args, err, stderr.String())
	}
	var objs []any
	dec := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	for {
		doc, err := dec.Read()
		if err != nil {
			break
		}
		if obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil); err == nil {
			objs = append(objs, obj)
		}
	}
	return objs
}

// The chart's in-cluster Rancher mode (mode=rancherProjectSecrets: the daemon in Rancher's local
// cluster, its ServiceAccount, no CATTLE_URL) against the real server: the ServiceAccount with
// exactly the chart's RBAC writes the project's Secret, which Rancher copies. The requests it made
// are logged beside what the chart grants: the chart grants Secrets of every namespace, the run
// needs them in the project's backing namespace only.
func TestRancher_ChartInClusterMode(t *testing.T) {
	t.Parallel()
	e := setup(t)
	need212(t, e.srv)
	p := e.srv.NewProjectWithBackingNamespace(t, "chart-"+rancherreal.Suffix())
	nsP := e.srv.NewNamespace(t, p, "chart")
	release := "recc-" + rancherreal.Suffix()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	kc := e.srv.KubeClient(t)
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: release}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var sa *corev1.ServiceAccount
	var granted []rbacv1.PolicyRule
	for _, obj := range renderChart(t, release, "mode=rancherProjectSecrets", "rancher.projects={"+p.ID+"}", "image.repository=registry.example/rancher-ecr-credentials") {
		var err error
		switch o := obj.(type) {
		case *corev1.ServiceAccount:
			sa, err = kc.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.ClusterRole:
			o.Name += "-" + release // one per test run: ClusterRoles are not namespaced
			granted = o.Rules
			_, err = kc.RbacV1().ClusterRoles().Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.ClusterRoleBinding:
			o.Name += "-" + release
			o.RoleRef.Name += "-" + release
			_, err = kc.RbacV1().ClusterRoleBindings().Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.Role, *rbacv1.RoleBinding:
			t.Fatalf("the chart rendered a %T for one replica", o)
		}
		if err != nil {
			t.Fatalf("apply the chart's %T: %v", obj, err)
		}
	}
	if sa == nil || granted == nil {
		t.Fatal("the chart rendered no ServiceAccount or ClusterRole")
	}
	cfg, err := e.srv.Kube.ServiceAccountConfig(ctx, sa.Namespace, sa.Name)
	if err != nil {
		t.Fatal(err)
	}
	e.secret("the ServiceAccount token", cfg.BearerToken)
	kubeconfig := kubetest.WriteKubeconfig(t, cfg, sa.Namespace)
	for run := 1; run <= 2; run++ { // create, then update
		out := e.mustRun("KUBECONFIG="+kubeconfig, "RANCHER_CA_FILE=", "RANCHER_PROJECTS="+p.ID)
		noWarnings(t, out)
		e.waitCopy(e.checkSource(p), nsP)
	}

	reqs, err := e.srv.Requests("system:serviceaccount:" + sa.Namespace + ":" + sa.Name)
	if err != nil {
		t.Fatal(err)
	}
	var rules []string
	for _, r := range granted {
		rules = append(rules, strings.Join(r.Verbs, ",")+" "+strings.Join(r.Resources, ",")+" ("+strings.Join(r.APIGroups, ",")+") in every namespace")
	}
	t.Logf("the chart grants:\n  %s\ntwo --once runs into %s asked for:\n  %s", strings.Join(rules, "\n  "), p.ID,
		strings.Join(rancherreal.Grants(reqs), "\n  "))
	for _, r := range reqs {
		if r.ResponseStatus != nil && r.ResponseStatus.Code == 403 {
			t.Errorf("RBAC refused the chart's ServiceAccount: %s", rancherreal.Grant(r))
		}
	}
}
