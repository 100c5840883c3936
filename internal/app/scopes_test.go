package main

import (
	"net/http/httptest"
	"testing"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi/ranchertest"
)

// TestRun_Rancher2AllProjects: a Rancher 2.x URL with a bearer token and
// RANCHER_PROJECTS=all writes a dockerCredential into every project the key
// sees but Rancher's System project, and picks up a project created before the
// next run.
func TestRun_Rancher2AllProjects(t *testing.T) {
	w := newWorld(t)
	w.rancher = ranchertest.New(ranchertest.Key{Access: "token-e2e", Secret: e2eRancherSK, Projects: []string{"*"}})
	w.rancher.AddProject("c-abcde:p-fghij")
	w.rancher.AddProject("local:p-x1")
	w.rancher.AddSystemProject("local:p-system")
	srv := httptest.NewServer(w.rancher)
	t.Cleanup(srv.Close)
	w.env["CATTLE_URL"] = srv.URL + "/v3"
	w.env["CATTLE_ACCESS_KEY"] = ""
	w.env["CATTLE_SECRET_KEY"] = "token-e2e:" + e2eRancherSK
	w.env["RANCHER_PROJECTS"] = "all"
	out, logs, err := w.run(t.Context(), "--once")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, logs)
	}
	for _, p := range []string{"c-abcde:p-fghij", "local:p-x1"} {
		got := w.rancher.DockerCredentials(p)
		if len(got) != 1 || got[0].Name != "ecr-111122223333-us-east-1" || got[0].Registries[w.ecr.Host(e2eAccount)].Password != w.ecr.Password(e2eAccount) {
			t.Errorf("%s: %+v", p, got)
		}
	}
	if got := w.rancher.DockerCredentials("local:p-system"); len(got) != 0 {
		t.Errorf("RANCHER_PROJECTS=all wrote into Rancher's System project: %+v", got)
	}
	w.rancher.AddProject("c-abcde:p-new")
	if _, logs, err := w.run(t.Context(), "--once"); err != nil {
		t.Fatalf("second run: %v\n%s", err, logs)
	}
	if got := w.rancher.DockerCredentials("c-abcde:p-new"); len(got) != 1 {
		t.Errorf("project created between runs: %+v", got)
	}
	noSecrets(t, out+logs, w.ecr.Password(e2eAccount), "token-e2e:"+e2eRancherSK)
}

// TestRun_Rancher1Environments: an account key on a Rancher 1.x URL writes into
// each environment named in RANCHER_PROJECTS, or every one with all.
func TestRun_Rancher1Environments(t *testing.T) {
	for _, projects := range []string{"1a5,1a7", "all"} {
		t.Run(projects, func(t *testing.T) {
			w := newWorld(t)
			w.rancher = ranchertest.New(ranchertest.Key{Access: "ak", Secret: e2eRancherSK, Project: "1a1", Projects: []string{"1a5", "1a7"}})
			srv := httptest.NewServer(w.rancher)
			t.Cleanup(srv.Close)
			for _, env := range []string{"1a5", "1a7"} {
				w.rancher.AddProject(env)
				w.rancher.AddRegistry(env, w.ecr.Host(e2eAccount), "")
			}
			w.rancher.AddProject("1a9") // not the key's: never listed, never written
			w.rancher.AddRegistry("1a9", w.ecr.Host(e2eAccount), "")
			w.env["CATTLE_URL"] = srv.URL + "/v2-beta"
			w.env["RANCHER_PROJECTS"] = projects
			if _, logs, err := w.run(t.Context(), "--once"); err != nil {
				t.Fatalf("run: %v\n%s", err, logs)
			}
			for env, want := range map[string]int{"1a5": 1, "1a7": 1, "1a9": 0, "1a1": 0} {
				if got := len(w.rancher.Credentials(env)); got != want {
					t.Errorf("environment %s: %d credentials, want %d", env, got, want)
				}
			}
		})
	}
}
