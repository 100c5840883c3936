package rancher

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/rancherreal"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/tenantrole"
)

// A project annotated rancher-ecr-credentials/role-arn is read as the real server shows it, both
// ways: /v3 (GET /v3/projects/<id>) and, in the Kubernetes mode, the same /v3 read (the daemon
// writes through Rancher's proxy). A role AWS_ALLOWED_ROLE_ARNS does not allow (here: the list is
// empty) is refused: --once exits 1 naming the annotation, the project and the fix, and the project
// gets no credential, never the daemon's own, while the unannotated project of the same run is
// written.
func TestRancher_ProjectRoleRefused(t *testing.T) {
	t.Parallel()
	e := setup(t)
	const role = "arn:aws:iam::999999999999:role/outsider"
	kc := e.srv.KubeClient(t)
	for _, mode := range []string{"v3", "kubernetes"} {
		t.Run(mode, func(t *testing.T) {
			// Projects of its own: what the other mode wrote proves nothing here.
			refused := e.srv.NewProject(t, "role-"+rancherreal.Suffix())
			plain := e.srv.NewProject(t, "plain-"+rancherreal.Suffix())
			e.srv.AnnotateProject(t, refused, tenantrole.Annotation, role)
			out, code := e.runOnce(append(keyEnv(e.srv.AdminToken), "CATTLE_URL="+e.srv.URL+"/v3",
				"RANCHER_PROJECTS="+refused.ID+","+plain.ID, "RANCHER_SECRET_API="+mode)...)
			want := "scope " + refused.ID + ": annotation " + tenantrole.Annotation + " names role " + role + ", but AWS_ALLOWED_ROLE_ARNS is empty"
			if code != 1 || !strings.Contains(out, want) {
				t.Fatalf("exit %d, want 1 and %q:\n%s", code, want, out)
			}
			if creds := e.v3Credentials(refused, e.srv.AdminToken, ourName); len(creds) != 0 {
				t.Errorf("the refused project holds a /v3 credential: %+v", creds)
			}
			if _, err := kc.CoreV1().Secrets(refused.BackingNamespace).Get(context.Background(), ourName, metav1.GetOptions{}); err == nil {
				t.Errorf("the refused project holds the Secret %s", ourName)
			}
			written := len(e.v3Credentials(plain, e.srv.AdminToken, ourName)) == 1
			if _, err := kc.CoreV1().Secrets(plain.BackingNamespace).Get(context.Background(), ourName, metav1.GetOptions{}); err == nil {
				written = true
			}
			if !written {
				t.Errorf("the unannotated project was not written")
			}
		})
	}
}

// A project that held the daemon's own credential, then names a role the allow list refuses, gets
// no credential at all (CONTRACT, "An AWS identity per tenant"): its credential is emptied of the
// daemon's registries, both ways, on the real server — the /v3 dockerCredential and, on 2.12+,
// the project-scoped Secret. Another host in it that the daemon does not manage would keep it
// untouched (never rewritten); here it holds only the daemon's.
func TestRancher_ProjectRoleTakesBackOwn(t *testing.T) {
	t.Parallel()
	e := setup212(t)
	const role = "arn:aws:iam::999999999999:role/outsider"
	for _, mode := range []string{"v3", "kubernetes"} {
		t.Run(mode, func(t *testing.T) {
			p := e.srv.NewProject(t, "takeback-"+mode+"-"+rancherreal.Suffix())
			env := append(keyEnv(e.srv.AdminToken), "CATTLE_URL="+e.srv.URL+"/v3", "RANCHER_PROJECTS="+p.ID, "RANCHER_SECRET_API="+mode)
			if out, code := e.runOnce(env...); code != 0 {
				t.Fatalf("unannotated: exit %d, want 0:\n%s", code, out)
			}
			if got := passwordOf(e.mustGet(p.BackingNamespace, ourName), host); got == "" {
				t.Fatalf("the unannotated project does not hold %s", host)
			}
			e.srv.AnnotateProject(t, p, tenantrole.Annotation, role)
			out, code := e.runOnce(env...)
			if code != 1 || !strings.Contains(out, "AWS_ALLOWED_ROLE_ARNS is empty") || !strings.Contains(out, "emptied of this daemon's registries") {
				t.Fatalf("refused: exit %d, want 1, the refusal and the take-back:\n%s", code, out)
			}
			if got := auths(e.mustGet(p.BackingNamespace, ourName)); len(got) != 0 {
				t.Errorf("the refused project's Secret still holds %v", slices.Collect(maps.Keys(got)))
			}
			if mode == "v3" {
				for _, c := range e.v3Credentials(p, e.srv.AdminToken, ourName) {
					if len(c.Registries) != 0 {
						t.Errorf("the refused project's dockerCredential still holds %v", slices.Collect(maps.Keys(c.Registries)))
					}
				}
			}
		})
	}
}
