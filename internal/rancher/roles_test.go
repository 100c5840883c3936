package rancher

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi/ranchertest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/tenantrole"
)

const (
	teamRole  = "arn:aws:iam::222222222222:role/team-a"
	otherRole = "arn:aws:iam::999999999999:role/outsider"
)

// fixed is a source handing out one host's token as an identity.
type fixed struct{ host, identity string }

func (f fixed) Label() string  { return "registries of " + f.host }
func (f fixed) Region() string { return "us-east-1" }
func (f fixed) Fetch(context.Context) refresher.Fetched {
	now := time.Now()
	return refresher.Fetched{Tokens: []refresher.Token{{Host: f.host, ECRHost: f.host, Region: "us-east-1", Username: "AWS",
		Password: "pw-of-" + f.host, FetchedAt: now, ExpiresAt: now.Add(12 * time.Hour), Identity: f.identity}}}
}

// Rancher 2.x projects named in RANCHER_PROJECTS and found by
// RANCHER_PROJECTS=all: the annotation rancher-ecr-credentials/role-arn on
// the project sets its scope's identity, read at every discovery. A named
// project whose annotations cannot be read is never written (it may name a
// role); once they can, it is.
func TestBuild_ProjectRoles(t *testing.T) {
	t.Parallel()
	rs := ranchertest.New(ranchertest.Key{Access: "token-x", Secret: "sk", Projects: []string{"*"}})
	rs.SetServerVersion("v2.11.2") // /v3 dockerCredentials
	for _, p := range []string{"c-a:p-own", "c-a:p-team", "c-a:p-out"} {
		rs.AddProject(p)
	}
	rs.SetProjectAnnotations("c-a:p-team", map[string]string{tenantrole.Annotation: teamRole, "field.cattle.io/creatorId": "u-1"})
	rs.SetProjectAnnotations("c-a:p-out", map[string]string{tenantrole.Annotation: " " + otherRole + " "})
	url := standIn(t, rs)
	env := map[string]string{"CATTLE_URL": url + "/v3", "CATTLE_SECRET_KEY": "token-x:sk"}

	identities := func(t *testing.T, discover func(context.Context) ([]refresher.Scope, error)) string {
		t.Helper()
		scopes, err := discover(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, sc := range scopes {
			got = append(got, sc.Name+"="+sc.Identity)
		}
		return strings.Join(got, " ")
	}
	want := "c-a:p-own= c-a:p-team=" + teamRole + " c-a:p-out=" + otherRole
	for name, e := range map[string]map[string]string{
		"Named": with(env, "RANCHER_PROJECTS", "c-a:p-own,c-a:p-team,c-a:p-out,c-a:p-later"),
		"All":   with(env, "RANCHER_PROJECTS", "all"),
	} {
		t.Run(name, func(t *testing.T) {
			v := values(t, nil, e)
			p, err := Kind().Build(v, deps(""))
			if err != nil || v.Err() != nil || len(p.Scopes) != 0 || p.Discover == nil {
				t.Fatalf("build: %+v, %v, %v", p, err, v.Err())
			}
			w := want
			if name == "Named" {
				w += " c-a:p-later="
			}
			if got := identities(t, p.Discover); got != w {
				t.Errorf("discovered %s, want %s", got, w)
			}
		})
	}

	// The whole way: written by the refresher with each identity's tokens;
	// the project that does not exist yet fails, then is written once it does.
	v := values(t, nil, with(env, "RANCHER_PROJECTS", "c-a:p-own,c-a:p-team,c-a:p-out,c-a:p-later"))
	p, err := Kind().Build(v, deps(""))
	if err != nil {
		t.Fatal(err)
	}
	r := refresher.New([]refresher.Source{fixed{"111122223333.dkr.ecr.us-east-1.amazonaws.com", ""}}, nil)
	log := logrus.New()
	log.SetOutput(io.Discard)
	r.Logger, r.Discover = log, p.Discover
	allow, _ := tenantrole.ParseAllowList([]string{"arn:aws:iam::222222222222:role/team-*"})
	r.Sources = func(identity, _ string) ([]refresher.Source, error) {
		if err := allow.Check(identity); err != nil {
			return nil, err
		}
		return []refresher.Source{fixed{"222222222222.dkr.ecr.us-east-1.amazonaws.com", identity}}, nil
	}
	// One run: the discovery that finds a project's role comes before the
	// fetch, so that role's tokens are fetched and written in the same run.
	err = r.RunOnce(t.Context())
	for _, part := range []string{
		"scope c-a:p-out: annotation " + tenantrole.Annotation + " names role " + otherRole + ", which AWS_ALLOWED_ROLE_ARNS",
		"scope c-a:p-later: project c-a:p-later: its annotation " + tenantrole.Annotation + " could not be read",
	} {
		if err == nil || !strings.Contains(err.Error(), part) {
			t.Errorf("run error %v lacks %q", err, part)
		}
	}
	hosts := func(project string) string {
		var out []string
		for _, d := range rs.DockerCredentials(project) {
			for h, a := range d.Registries {
				out = append(out, fmt.Sprintf("%s:%s", h, a.Password))
			}
		}
		return strings.Join(out, " ")
	}
	for project, want := range map[string]string{
		"c-a:p-own":   "111122223333.dkr.ecr.us-east-1.amazonaws.com:pw-of-111122223333.dkr.ecr.us-east-1.amazonaws.com",
		"c-a:p-team":  "222222222222.dkr.ecr.us-east-1.amazonaws.com:pw-of-222222222222.dkr.ecr.us-east-1.amazonaws.com",
		"c-a:p-out":   "",
		"c-a:p-later": "",
	} {
		if got := hosts(project); got != want {
			t.Errorf("%s holds %q, want %q", project, got, want)
		}
	}
	rs.AddProject("c-a:p-later")
	rs.SetProjectAnnotations("c-a:p-later", map[string]string{tenantrole.Annotation: teamRole})
	_ = r.RunOnce(t.Context())
	if got := hosts("c-a:p-later"); !strings.HasPrefix(got, "222222222222.dkr.ecr") {
		t.Errorf("the project, once readable, holds %q, want its role's registry", got)
	}
}

// A named project the key's user has no role on: its annotations cannot be
// read, so it is never written, and the failure names the Rancher role to give.
func TestBuild_ProjectRoleUnreadable(t *testing.T) {
	t.Parallel()
	rs := ranchertest.New(ranchertest.Key{Access: "token-x", Secret: "sk", Projects: []string{"c-a:p-mine"}})
	rs.AddProject("c-a:p-mine")
	rs.AddProject("c-a:p-theirs")
	v := values(t, nil, map[string]string{"CATTLE_URL": standIn(t, rs) + "/v3", "CATTLE_SECRET_KEY": "token-x:sk", "RANCHER_PROJECTS": "c-a:p-theirs"})
	p, err := Kind().Build(v, deps(""))
	if err != nil {
		t.Fatal(err)
	}
	scopes, err := p.Discover(t.Context())
	if err != nil || len(scopes) != 1 {
		t.Fatalf("discover: %v, %v", scopes, err)
	}
	_, err = scopes[0].Target.Plan(t.Context(), refresher.Input{})
	for _, part := range []string{"project c-a:p-theirs: its annotation " + tenantrole.Annotation + " could not be read", "403",
		"give the API key's user a role on project c-a:p-theirs (Project Member, or Project Owner)"} {
		if err == nil || !strings.Contains(err.Error(), part) {
			t.Errorf("plan error %v lacks %q", err, part)
		}
	}
}
