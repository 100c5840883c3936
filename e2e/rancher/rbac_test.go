package rancher

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/rancherreal"
)

const keyTTL = 30 * 24 * time.Hour

// newUser makes a Rancher user whose API key lives keyTTL, recording its secrets.
func (e *env) newUser(prefix string) rancherreal.User {
	e.t.Helper()
	u := e.srv.NewUser(e.t, prefix, keyTTL)
	e.secret("user "+u.Username+"'s API key", u.Key)
	e.secret("user "+u.Username+"'s password", u.Password)
	return u
}

// grantsOf returns what user asked the local cluster's apiserver for through Rancher's proxy, and
// fails the test for each request RBAC refused.
func (e *env) grantsOf(u rancherreal.User) []string {
	e.t.Helper()
	reqs, err := e.srv.Requests(u.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, r := range reqs {
		if r.ResponseStatus != nil && r.ResponseStatus.Code == http.StatusForbidden {
			e.t.Errorf("RBAC refused %s", rancherreal.Grant(r))
		}
	}
	return rancherreal.Grants(reqs)
}

// leastGrants is what --once runs into project p may ask the local cluster for: read the project
// (for its backing namespace), list the Secrets there, create, read and update its own; and, through
// /v3/settings/server-version, Rancher reads that setting as the user (every user may). Nothing else
// cluster-wide, nothing in another namespace, no delete, no watch.
func leastGrants(p rancherreal.Project) []string {
	in := " in namespace " + p.BackingNamespace
	return []string{
		"create secrets " + ourName + in,
		"get projects.management.cattle.io " + p.Name + " in namespace " + rancherreal.LocalCluster,
		"get secrets " + ourName + in,
		"get settings.management.cattle.io server-version in cluster",
		"list secrets" + in,
		"update secrets " + ourName + in,
	}
}

// A user who is only Project Member of a project writes its Secret through Rancher's proxy:
// Rancher's own RBAC (the role's secrets rules copied into the backing namespace) is all it takes.
// The requests the real apiserver served for that user are logged: what the daemon needs.
func TestRancher_ProjectMemberWrites(t *testing.T) {
	t.Parallel()
	e := setup212(t)
	p := e.srv.NewProject(t, "member-"+rancherreal.Suffix())
	ns := e.srv.NewNamespace(t, p, "member")
	m := e.newUser("member")
	e.srv.BindProject(t, m, p, "project-member", true)

	for run := 1; run <= 2; run++ {
		out := e.mustRun(e.projectEnv(p, m.Key)...)
		noWarnings(t, out)
		e.waitCopy(e.checkSource(p), ns)
	}
	grants := e.grantsOf(m)
	t.Logf("what two --once runs of a Project Member asked the local cluster for:\n  %s", strings.Join(grants, "\n  "))
	for _, g := range grants {
		if !slices.Contains(leastGrants(p), g) {
			t.Errorf("the daemon asked for %q, beyond %v", g, leastGrants(p))
		}
	}
}

// The least privilege that works through the proxy: a custom project role holding only get, list,
// create and update on secrets (Rancher: Cluster → Projects/Namespaces → Members → Custom). Rancher
// lets every member of a project read the project itself.
func TestRancher_LeastPrivilegeProjectRole(t *testing.T) {
	t.Parallel()
	e := setup212(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var role struct {
		ID string `json:"id"`
	}
	if err := e.srv.V3(ctx, e.srv.AdminToken, http.MethodPost, "/v3/roletemplates", map[string]any{
		"type": "roleTemplate", "name": "ECR credentials writer " + rancherreal.Suffix(), "context": "project",
		"rules": []map[string]any{{"apiGroups": []string{""}, "resources": []string{"secrets"}, "verbs": []string{"get", "list", "create", "update"}}},
	}, &role); err != nil {
		t.Fatalf("create role template: %v", err)
	}
	p := e.srv.NewProject(t, "least-"+rancherreal.Suffix())
	ns := e.srv.NewNamespace(t, p, "least")
	u := e.newUser("least")
	e.srv.BindProject(t, u, p, role.ID, true)
	out := e.mustRun(e.projectEnv(p, u.Key)...)
	noWarnings(t, out)
	e.waitCopy(e.checkSource(p), ns)
	t.Logf("a custom role with get/list/create/update on secrets suffices; asked for:\n  %s", strings.Join(e.grantsOf(u), "\n  "))
}

// A user with no role on the project: the run fails (exit 1) with an error that names the project
// and the Rancher role to grant, and nothing is written.
func TestRancher_NoRoleNamesTheRole(t *testing.T) {
	t.Parallel()
	e := setup212(t)
	p := e.srv.NewProject(t, "norole-"+rancherreal.Suffix())
	u := e.newUser("norole")
	out, code := e.runOnce(e.projectEnv(p, u.Key)...)
	if code != 1 {
		t.Errorf("--once exited %d, want 1", code)
	}
	if lines := outLines(out, "level=error", p.ID, "Project Member"); len(lines) == 0 {
		t.Errorf("no error line names project %s and the role Project Member:\n%s", p.ID, out)
	}
	if e.get(p.BackingNamespace, ourName) != nil {
		t.Errorf("a Secret was written without a role")
	}
}
