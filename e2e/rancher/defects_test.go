package rancher

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/rancherreal"
)

// proxyKubeconfig writes a kubeconfig for Rancher's proxy to the local cluster with key, as
// Rancher's "Download KubeConfig" makes one (server <rancher>/k8s/clusters/local, token: the key).
func (e *env) proxyKubeconfig(key string) string {
	e.t.Helper()
	data, err := kubetest.Kubeconfig(&rest.Config{Host: e.srv.URL + "/k8s/clusters/" + rancherreal.LocalCluster,
		TLSClientConfig: rest.TLSClientConfig{CAData: e.srv.CAPEM}, BearerToken: key}, "")
	if err != nil {
		e.t.Fatal(err)
	}
	path := filepath.Join(e.t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// TestRancher_NamespacesTargetLeavesCopies is issue 17's second defect. Rancher's copies of a
// project Secret carry every label of the source, the daemon's ownership label included, plus the
// annotation management.cattle.io/project-scoped-secret-copy: "true". With KUBE_NAMESPACES covering
// a project's namespaces (and KUBE_SECRET_NAME the project Secret's name), the namespaces target must
// not take a copy for its own: it never writes one (Rancher would not copy the source over it again
// until the source changes) and reports it; other namespaces are written as usual.
func TestRancher_NamespacesTargetLeavesCopies(t *testing.T) {
	t.Parallel()
	e := setup212(t)
	p := e.srv.NewProject(t, "covered-"+rancherreal.Suffix())
	ns := e.srv.NewNamespace(t, p, "covered")
	plain := "plain-" + rancherreal.Suffix() // in no project
	if _, err := e.srv.KubeClient(t).CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: plain}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	e.mustRun(e.projectEnv(p, e.srv.AdminToken)...)
	src := e.checkSource(p)
	copied := e.waitCopy(src, ns)

	out, code := e.runOnce("KUBECONFIG="+e.proxyKubeconfig(e.srv.AdminToken), "RANCHER_CA_FILE=",
		"KUBE_NAMESPACES="+ns+","+plain, "KUBE_SECRET_NAME="+ourName)
	t.Logf("namespaces target run exited %d", code)
	after := e.mustGet(ns, ourName)
	if after.ResourceVersion != copied.ResourceVersion {
		t.Errorf("the namespaces target rewrote Rancher's copy %s/%s (resourceVersion %s → %s; it now holds the source's token: %v):\n%s",
			ns, ourName, copied.ResourceVersion, after.ResourceVersion, passwordOf(after, host) == passwordOf(src, host),
			strings.Join(outLines(out, ns), "\n"))
	}
	if lines := outLines(strings.ToLower(out), ns, "copy"); len(lines) != 1 {
		t.Errorf("want one line reporting %s/%s as Rancher's copy, got %d:\n%s", ns, ourName, len(lines), out)
	}
	written := false
	for _, line := range outLines(out, plain) {
		written = written || strings.Contains(line, "written")
	}
	if !written {
		t.Errorf("the namespace outside any project (%s) was not written:\n%s", plain, out)
	}
}

// TestRancher_NewSecretLogsNoWarning is issue 17's third defect: creating a project's Secret (no
// Secret of its name yet) logged "secret also holds a managed host whose token could not be fetched
// … (unreadable .dockerconfigjson)", from the empty Secret standing in for the one to create. A
// clean first run logs no warning at all.
func TestRancher_NewSecretLogsNoWarning(t *testing.T) {
	t.Parallel()
	e := setup212(t)
	p := e.srv.NewProject(t, "nowarn-"+rancherreal.Suffix())
	out := e.mustRun(e.projectEnv(p, e.srv.AdminToken)...)
	e.checkSource(p)
	if lines := outLines(out, "unreadable"); len(lines) > 0 {
		t.Errorf("the first run names an unreadable Secret that does not exist:\n%s", strings.Join(lines, "\n"))
	}
	noWarnings(t, out)
}
