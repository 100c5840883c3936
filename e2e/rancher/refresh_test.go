package rancher

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/rancherreal"
)

// requestsSince returns what user asked the local cluster's apiserver for after the first skip of
// its requests (Server.Requests lists them in the audit log's order), one Grant per request.
func (e *env) requestsSince(u rancherreal.User, skip int) []string {
	e.t.Helper()
	reqs, err := e.srv.Requests(u.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, r := range reqs[skip:] {
		out = append(out, grantWithCode(r))
	}
	return out
}

// grantWithCode is a request's Grant with its answer's status code.
func grantWithCode(r kubetest.AuditEvent) string {
	if r.ResponseStatus == nil {
		return rancherreal.Grant(r)
	}
	return fmt.Sprintf("%s → %d", rancherreal.Grant(r), r.ResponseStatus.Code)
}

// A fresh process refreshing a project's existing Secret asks the local cluster for the project
// (twice: through /v3 for its annotation rancher-ecr-credentials/role-arn, which decides whose
// tokens it gets, and for its backing namespace), one list of the backing namespace's Secrets and
// one update of the Secret: it writes from the Secret the list returned (with its
// resourceVersion), no create that ends in 409, no second read of the Secret.
// Counted in the real apiserver's audit log, as the Project Member the token belongs to.
func TestRancher_RefreshIsOneUpdate(t *testing.T) {
	t.Parallel()
	e := setup212(t)
	p := e.srv.NewProjectWithBackingNamespace(t, "refresh-"+rancherreal.Suffix())
	ns := e.srv.NewNamespace(t, p, "refresh")
	m := e.newUser("refresh")
	e.srv.BindProject(t, m, p, "project-member", true)

	noWarnings(t, e.mustRun(e.projectEnv(p, m.Key)...))
	first := e.checkSource(p)
	before, err := e.srv.Requests(m.ID)
	if err != nil {
		t.Fatal(err)
	}
	noWarnings(t, e.mustRun(e.projectEnv(p, m.Key)...)) // a new process: nothing in memory
	again := e.checkSource(p)
	if again.UID != first.UID {
		t.Errorf("the refresh replaced the Secret (uid %s → %s), want an update in place", first.UID, again.UID)
	}
	e.waitCopy(again, ns)

	got := e.requestsSince(m, len(before))
	t.Logf("a fresh process refreshing %s/%s asked the local cluster for (%d requests):\n  %s",
		p.BackingNamespace, ourName, len(got), strings.Join(got, "\n  "))
	in := " in namespace " + p.BackingNamespace
	project := "get projects.management.cattle.io " + p.Name + " in namespace " + rancherreal.LocalCluster + " → 200"
	want := []string{
		project, project,
		"get settings.management.cattle.io server-version in cluster → 200",
		"list secrets" + in + " → 200",
		"update secrets " + ourName + in + " → 200",
	}
	if sorted := slices.Sorted(slices.Values(got)); !slices.Equal(sorted, want) {
		t.Errorf("the refresh asked for\n  %s\nwant exactly\n  %s", strings.Join(sorted, "\n  "), strings.Join(want, "\n  "))
	}
}
