package app

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/apptest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/httpapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi/ranchertest"
)

// TestRun_Rancher2AllProjects: a Rancher 2.x URL with a bearer token and
// RANCHER_PROJECTS=all writes a dockerCredential into every project the key
// sees but Rancher's System project, and picks up a project created before the
// next run.
func TestRun_Rancher2AllProjects(t *testing.T) {
	w := apptest.NewWorld(t)
	w.Rancher = ranchertest.New(ranchertest.Key{Access: "token-e2e", Secret: apptest.RancherSecret, Projects: []string{"*"}})
	w.Rancher.AddProject("c-abcde:p-fghij")
	w.Rancher.AddProject("local:p-x1")
	w.Rancher.AddSystemProject("local:p-system")
	srv := httptest.NewServer(w.Rancher)
	t.Cleanup(srv.Close)
	w.Env["CATTLE_URL"] = srv.URL + "/v3"
	w.Env["CATTLE_ACCESS_KEY"] = ""
	w.Env["CATTLE_SECRET_KEY"] = "token-e2e:" + apptest.RancherSecret
	w.Env["RANCHER_PROJECTS"] = "all"
	out, logs, err := run(t.Context(), w.Env, "--once")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, logs)
	}
	for _, p := range []string{"c-abcde:p-fghij", "local:p-x1"} {
		got := w.Rancher.DockerCredentials(p)
		if len(got) != 1 || got[0].Name != "ecr-111122223333-us-east-1" || got[0].Registries[w.ECR.Host(apptest.Account)].Password != w.ECR.Password(apptest.Account) {
			t.Errorf("%s: %+v", p, got)
		}
	}
	if got := w.Rancher.DockerCredentials("local:p-system"); len(got) != 0 {
		t.Errorf("RANCHER_PROJECTS=all wrote into Rancher's System project: %+v", got)
	}
	w.Rancher.AddProject("c-abcde:p-new")
	if _, logs, err := run(t.Context(), w.Env, "--once"); err != nil {
		t.Fatalf("second run: %v\n%s", err, logs)
	}
	if got := w.Rancher.DockerCredentials("c-abcde:p-new"); len(got) != 1 {
		t.Errorf("project created between runs: %+v", got)
	}
	apptest.NoSecrets(t, out+logs, w.ECR.Password(apptest.Account), "token-e2e:"+apptest.RancherSecret)
}

// TestRun_Rancher1Environments: an account key on a Rancher 1.x URL writes into
// each environment named in RANCHER_PROJECTS, or every one with all.
func TestRun_Rancher1Environments(t *testing.T) {
	for _, projects := range []string{"1a5,1a7", "all"} {
		t.Run(projects, func(t *testing.T) {
			w := apptest.NewWorld(t)
			w.Rancher = ranchertest.New(ranchertest.Key{Access: "ak", Secret: apptest.RancherSecret, Project: "1a1", Projects: []string{"1a5", "1a7"}})
			srv := httptest.NewServer(w.Rancher)
			t.Cleanup(srv.Close)
			for _, env := range []string{"1a5", "1a7"} {
				w.Rancher.AddProject(env)
				w.Rancher.AddRegistry(env, w.ECR.Host(apptest.Account), "")
			}
			w.Rancher.AddProject("1a9") // not the key's: never listed, never written
			w.Rancher.AddRegistry("1a9", w.ECR.Host(apptest.Account), "")
			w.Env["CATTLE_URL"] = srv.URL + "/v2-beta"
			w.Env["RANCHER_PROJECTS"] = projects
			if _, logs, err := run(t.Context(), w.Env, "--once"); err != nil {
				t.Fatalf("run: %v\n%s", err, logs)
			}
			for env, want := range map[string]int{"1a5": 1, "1a7": 1, "1a9": 0, "1a1": 0} {
				if got := len(w.Rancher.Credentials(env)); got != want {
					t.Errorf("environment %s: %d credentials, want %d", env, got, want)
				}
			}
		})
	}
}

// Scopes that come and go with Rancher (RANCHER_PROJECTS=all) are counted
// under one group in the metrics, unless METRICS_PER_SCOPE asks for a series
// per scope.
func TestDaemon_MetricsPerScope(t *testing.T) {
	for perScope, want := range map[string][]string{"false": {`scope="rancher-projects"`}, "true": {`scope="c-abcde:p-fghij"`, `scope="local:p-x1"`}} {
		t.Run("METRICS_PER_SCOPE="+perScope, func(t *testing.T) {
			w := apptest.NewWorld(t)
			w.Rancher = ranchertest.New(ranchertest.Key{Access: "token-e2e", Secret: apptest.RancherSecret, Projects: []string{"*"}})
			w.Rancher.AddProject("c-abcde:p-fghij")
			w.Rancher.AddProject("local:p-x1")
			srv := httptest.NewServer(w.Rancher)
			t.Cleanup(srv.Close)
			w.Env["CATTLE_URL"], w.Env["CATTLE_ACCESS_KEY"], w.Env["CATTLE_SECRET_KEY"] = srv.URL+"/v3", "", "token-e2e:"+apptest.RancherSecret
			w.Env["RANCHER_PROJECTS"], w.Env["METRICS_PER_SCOPE"] = "all", perScope
			d := newDaemon(t, w.Env, io.Discard)
			if err := d.r.RunOnce(t.Context()); err != nil {
				t.Fatal(err)
			}
			_, metrics := get(t, httpapi.Handler(d.r, nil, d.reg), "/metrics")
			for _, l := range want {
				if !strings.Contains(metrics, `rancher_ecr_credentials_writes_total{registry="`+w.ECR.Host(apptest.Account)+`",result="created",`+l+`}`) {
					t.Errorf("/metrics lacks writes_total with %s:\n%s", l, metrics)
				}
			}
		})
	}
}
