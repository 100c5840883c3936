package rancher

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/rancherreal"
)

// checkSource checks the daemon's Secret in p's backing namespace: labelled for Rancher's
// controller and as the daemon's own, dockerconfigjson, holding the password last handed out.
func (e *env) checkSource(p rancherreal.Project) *corev1.Secret {
	e.t.Helper()
	s := e.mustGet(p.BackingNamespace, ourName)
	if s.Type != corev1.SecretTypeDockerConfigJson {
		e.t.Errorf("%s/%s type %s, want %s", s.Namespace, s.Name, s.Type, corev1.SecretTypeDockerConfigJson)
	}
	if s.Labels[projectScopedLabel] != p.Name || s.Labels[managedByLabel] != managedBy {
		e.t.Errorf("%s/%s labels %v, want %s=%s and %s=%s", s.Namespace, s.Name, s.Labels, projectScopedLabel, p.Name, managedByLabel, managedBy)
	}
	if a, want := auths(s)[host], e.password(); a.Username != "AWS" || a.Password != want || a.Auth == "" {
		e.t.Errorf("%s/%s entry for %s: user %q, password matches the one handed out: %v, auth set: %v",
			s.Namespace, s.Name, host, a.Username, a.Password == want, a.Auth != "")
	}
	return s
}

// A project's Secret, written through Rancher's proxy, is copied by Rancher into both namespaces
// of the project; a second run with a new ECR token updates it in place (same uid) and Rancher
// carries the new token into both copies.
func TestRancher_CopiesIntoNamespaces(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p := e.srv.NewProject(t, "copies-"+rancherreal.Suffix())
	nsA, nsB := e.srv.NewNamespace(t, p, "copies-a"), e.srv.NewNamespace(t, p, "copies-b")

	out := e.mustRun(e.projectEnv(p, e.srv.AdminToken)...)
	noWarnings(t, out)
	src := e.checkSource(p)
	for _, ns := range []string{nsA, nsB} {
		c := e.waitCopy(src, ns)
		if c.Labels[managedByLabel] != managedBy || c.Labels[projectScopedLabel] != p.Name {
			t.Logf("copy %s/%s labels %v (Rancher copies every label of the source)", ns, c.Name, c.Labels)
		}
	}

	first := e.password()
	out = e.mustRun(e.projectEnv(p, e.srv.AdminToken)...)
	noWarnings(t, out)
	if e.password() == first {
		t.Fatal("the ECR stand-in handed out the same password twice")
	}
	again := e.checkSource(p)
	if again.UID != src.UID {
		t.Errorf("the second run replaced the Secret (uid %s → %s), want an update in place", src.UID, again.UID)
	}
	for _, ns := range []string{nsA, nsB} {
		if c := e.waitCopy(again, ns); passwordOf(c, host) != e.password() {
			t.Errorf("copy in %s does not hold the new token", ns)
		}
	}
}

// A project made by Rancher 2.12 has status.backingNamespace = <cluster>-<project>: the Secret
// goes there (not into a namespace named after the project id) and is copied from there.
func TestRancher_CustomBackingNamespace(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p := e.srv.NewProjectWithBackingNamespace(t, "backing-"+rancherreal.Suffix())
	ns := e.srv.NewNamespace(t, p, "backing")
	out := e.mustRun(e.projectEnv(p, e.srv.AdminToken)...)
	noWarnings(t, out)
	src := e.checkSource(p)
	if !strings.HasPrefix(src.Namespace, rancherreal.LocalCluster+"-") {
		t.Errorf("Secret written into %s, want the backing namespace %s", src.Namespace, p.BackingNamespace)
	}
	if s := e.get(p.Name, ourName); s != nil {
		t.Errorf("a Secret was also written into namespace %s (the project id), which is not the backing namespace", p.Name)
	}
	e.waitCopy(src, ns)
}
