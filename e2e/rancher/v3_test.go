package rancher

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/rancherreal"
)

// v3Credentials lists the project's dockerCredentials named name through /v3.
func (e *env) v3Credentials(p rancherreal.Project, token, name string) []v3Credential {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), 30*time.Second)
	defer cancel()
	var list struct {
		Data []v3Credential `json:"data"`
	}
	if err := e.srv.V3(ctx, token, http.MethodGet, "/v3/project/"+p.ID+"/dockercredentials?name="+name, nil, &list); err != nil {
		e.t.Fatalf("list /v3 dockerCredentials of %s: %v", p.ID, err)
	}
	return list.Data
}

type v3Credential struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	CreatorID  string `json:"creatorId"`
	ProjectID  string `json:"projectId"`
	Registries map[string]struct {
		Username string `json:"username"`
		Password string `json:"password"`
	} `json:"registries"`
}

// RANCHER_SECRET_API=v3 goes through the real /v3 store: a project-scoped dockerCredential, which
// the server stores as a Secret of the backing namespace (label cattle.io/creator=norman,
// annotations creatorId and projectId), updated in place by a second run. Before 2.12 Rancher copies
// it into the project's namespaces at once; on 2.12 only after it relabels it at a namespace event.
func TestRancher_V3Store(t *testing.T) {
	t.Parallel()
	e := setup(t)
	p := e.srv.NewProject(t, "v3-"+rancherreal.Suffix())
	nsA := e.srv.NewNamespace(t, p, "v3-a")
	v3 := append(e.projectEnv(p, e.srv.AdminToken), "RANCHER_SECRET_API=v3")

	out := e.mustRun(v3...)
	noWarnings(t, out)
	creds := e.v3Credentials(p, e.srv.AdminToken, ourName)
	if len(creds) != 1 || creds[0].Registries[host].Username != "AWS" || creds[0].Registries[host].Password != "" {
		t.Fatalf("/v3 dockerCredentials named %s: %+v, want one holding %s for AWS (password write-only)", ourName, creds, host)
	}
	src := e.mustGet(p.BackingNamespace, ourName)
	if src.Labels[creatorLabel] != "norman" && src.Labels[projectScopedLabel] != p.Name {
		t.Errorf("/v3-made Secret labels %v, want %s=norman (or, relabelled, %s=%s)", src.Labels, creatorLabel, projectScopedLabel, p.Name)
	}
	if src.Annotations[creatorIDAnno] != e.srv.AdminID || src.Annotations[projectIDAnno] != p.ID {
		t.Errorf("/v3-made Secret annotations %v, want %s=%s and %s=%s", src.Annotations, creatorIDAnno, e.srv.AdminID, projectIDAnno, p.ID)
	}
	if passwordOf(src, host) != e.password() {
		t.Errorf("/v3-made Secret does not hold the password handed out")
	}

	if atLeast212(e.srv.Version) {
		// 2.12 copies only labelled Secrets: a namespace event of the project relabels it.
		e.srv.NewNamespace(t, p, "v3-b")
		src = e.waitRelabelled(p, ourName)
	}
	e.waitCopy(src, nsA)

	first := e.password()
	out = e.mustRun(v3...)
	noWarnings(t, out)
	again := e.mustGet(p.BackingNamespace, ourName)
	if again.UID != src.UID || passwordOf(again, host) != e.password() || e.password() == first {
		t.Errorf("second /v3 run: uid %s → %s, holds the new password: %v; want an update in place", src.UID, again.UID, passwordOf(again, host) == e.password())
	}
	if creds := e.v3Credentials(p, e.srv.AdminToken, ourName); len(creds) != 1 || creds[0].ID != p.BackingNamespace+":"+ourName {
		t.Errorf("/v3 dockerCredentials after the second run: %+v, want the same one (id %s:%s)", creds, p.BackingNamespace, ourName)
	}
	if c := e.waitCopy(again, nsA); passwordOf(c, host) != e.password() {
		t.Errorf("the copy in %s does not hold the new token", nsA)
	}
}
