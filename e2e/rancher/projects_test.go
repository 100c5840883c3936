package rancher

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/rancherreal"
)

// systemProject returns Rancher's System project of the local cluster.
func (e *env) systemProject() rancherreal.Project {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), 30*time.Second)
	defer cancel()
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := e.srv.V3(ctx, e.srv.AdminToken, http.MethodGet, "/v3/projects?name=System&clusterId="+rancherreal.LocalCluster, nil, &list); err != nil || len(list.Data) != 1 {
		e.t.Fatalf("the System project: %+v, %v", list.Data, err)
	}
	return e.srv.Project(e.t, list.Data[0].ID)
}

// RANCHER_PROJECTS=all writes into every project the key can see except Rancher's System project
// (cattle-system, kube-system), which is written only when named. The key is a user's who is
// Project Member of two fresh projects and of System, so no other test's project is in "all".
func TestRancher_AllProjectsWithoutSystem(t *testing.T) {
	t.Parallel()
	e := setup212(t)
	sys := e.systemProject()
	p1 := e.srv.NewProject(t, "all-1-"+rancherreal.Suffix())
	p2 := e.srv.NewProjectWithBackingNamespace(t, "all-2-"+rancherreal.Suffix())
	u := e.newUser("all")
	for _, p := range []rancherreal.Project{p1, p2, sys} {
		e.srv.BindProject(t, u, p, "project-member", true)
	}
	out := e.mustRun(append(keyEnv(u.Key), "CATTLE_URL="+e.srv.URL+"/v3", "RANCHER_PROJECTS=all")...)
	noWarnings(t, out)
	e.checkSource(p1)
	e.checkSource(p2)
	if s := e.get(sys.BackingNamespace, ourName); s != nil {
		t.Errorf("RANCHER_PROJECTS=all wrote into the System project (%s/%s)", sys.BackingNamespace, ourName)
	}
	if lines := outLines(out, sys.ID); len(lines) > 0 {
		t.Logf("lines naming the System project %s:\n%v", sys.ID, lines)
	}
}
