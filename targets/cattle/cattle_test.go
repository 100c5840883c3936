package cattle_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/logbuf"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/plantest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi/ranchertest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/cattle"
)

const (
	hostA      = "111122223333.dkr.ecr.us-east-1.amazonaws.com"
	hostB      = "444455556666.dkr.ecr.us-east-1.amazonaws.com"
	project    = "1a5"
	rancherKey = "rancher-secret-key-DO-NOT-LEAK"
)

// env is one test's Rancher 1.x environment: the stand-in, a client on it
// (per-request timeout as given), the target, and the debug-level log of
// what the plan noticed.
type env struct {
	rancher *ranchertest.Server
	client  *rancherapi.Cattle
	hc      *http.Client
	tg      *cattle.Target
	log     *logbuf.Buffer
	logger  *logrus.Logger
	mem     plantest.Memory
}

func newEnv(t *testing.T) *env { return newEnvTimeout(t, 10*time.Second) }

func newEnvTimeout(t *testing.T, timeout time.Duration) *env {
	t.Helper()
	e := &env{rancher: ranchertest.New(ranchertest.Key{Access: "ak", Secret: rancherKey, Project: project}), log: &logbuf.Buffer{}}
	srv := httptest.NewServer(e.rancher)
	t.Cleanup(srv.Close)
	e.logger = logrus.New()
	e.logger.SetOutput(e.log)
	e.logger.SetLevel(logrus.DebugLevel)
	e.hc = &http.Client{Timeout: timeout}
	c, err := rancherapi.NewCattle(srv.URL+"/v2-beta/projects/"+project, "ak", rancherKey, e.hc)
	if err != nil {
		t.Fatal(err)
	}
	c.Debugf = e.logger.Debugf
	e.client, e.tg = c, &cattle.Target{Store: c}
	return e
}

// run is one pass (plan, then apply every write) with one token per login,
// remembering what it wrote like the refresher does.
func (e *env) run(t *testing.T, toks ...refresher.Token) (plantest.Outcome, error) {
	t.Helper()
	return e.mem.Run(t.Context(), e.tg, plantest.Input(e.logger, toks))
}

// ok is run, failing the test on any failure.
func (e *env) ok(t *testing.T, toks ...refresher.Token) plantest.Outcome {
	t.Helper()
	o, err := e.run(t, toks...)
	if err == nil {
		err = o.Err()
	}
	if err != nil {
		t.Fatalf("pass: %v", err)
	}
	return o
}

var tokA = plantest.Token(hostA, "pw-A")

// noSecrets fails the test if any secret (raw or base64 as Basic auth and
// docker configs hold it) is in text.
func noSecrets(t *testing.T, what, text string, secrets ...string) {
	t.Helper()
	for _, s := range append(secrets, rancherKey) {
		for _, f := range []string{s, base64.StdEncoding.EncodeToString([]byte("AWS:" + s)), base64.StdEncoding.EncodeToString([]byte("ak:" + s))} {
			if strings.Contains(text, f) {
				t.Errorf("%s holds secret %q", what, s)
			}
		}
	}
	for _, line := range strings.Split(text, "\n") {
		if len(line) > 4096 {
			t.Errorf("%s has a %d-byte line: %.200q…", what, len(line), line)
		}
	}
}

func (e *env) cred(t *testing.T, id string) ranchertest.Credential {
	t.Helper()
	c, ok := e.rancher.Credential(id)
	if !ok {
		t.Fatalf("credential %s not found", id)
	}
	return c
}

func TestTarget_UnrelatedUntouched(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hub := e.rancher.AddRegistry(project, "index.docker.io", "")
	hubCred := e.rancher.AddCredential(project, hub, "someone", "hub-password", "")
	other := e.rancher.AddRegistry(project, "registry.example.com:5000", "")
	otherCred := e.rancher.AddCredential(project, other, "AWS", "other-password", "")
	ecrReg := e.rancher.AddRegistry(project, hostA, "")
	ecrCred := e.rancher.AddCredential(project, ecrReg, "AWS", "old-token", "")

	o := e.ok(t, tokA)
	if c := e.cred(t, ecrCred); c.SecretValue != "pw-A" || c.PublicValue != "AWS" {
		t.Errorf("ECR credential = %+v, want the new password", c)
	}
	for id, pw := range map[string]string{hubCred: "hub-password", otherCred: "other-password"} {
		if c := e.cred(t, id); c.SecretValue != pw || c.Writes != 0 {
			t.Errorf("unrelated credential %s = %+v, want untouched", id, c)
		}
	}
	if got := len(e.rancher.Registries(project)); got != 3 {
		t.Errorf("registries = %d, want 3 (none created)", got)
	}
	if len(o.Plan.Writes) != 1 || o.Count(refresher.ResultUpdated) != 1 {
		t.Errorf("writes %+v, results %v: want one credential updated", o.Plan.Writes, o.Results)
	}
	if w := o.Write(t, "credential "+ecrCred); w.Action != refresher.ResultUpdated || w.Stale {
		t.Errorf("write = %+v, want an update, not stale (the user name is AWS already)", w)
	}
	noSecrets(t, "log", e.log.String(), "pw-A", "hub-password", "other-password", "old-token")
}

func TestTarget_EveryMatchWritten(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r1 := e.rancher.AddRegistry(project, hostA, "")
	r2 := e.rancher.AddRegistry(project, "HTTPS://"+strings.ToUpper(hostA)+"/", "")
	r3 := e.rancher.AddRegistry(project, hostA+"/some/path", "")
	c1 := e.rancher.AddCredential(project, r1, "AWS", "old", "")
	c1b := e.rancher.AddCredential(project, r1, "AWS", "old", "")
	c2 := e.rancher.AddCredential(project, r2, "AWS", "old", "")
	c3 := e.rancher.AddCredential(project, r3, "AWS", "old", "")
	e.ok(t, tokA)
	for _, id := range []string{c1, c1b, c2, c3} {
		if c := e.cred(t, id); c.SecretValue != "pw-A" || c.Writes != 1 {
			t.Errorf("credential %s = %+v, want written once with the new password", id, c)
		}
	}
}

func TestTarget_RegistryWithoutCredential(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	reg := e.rancher.AddRegistry(project, hostA, "")
	o := e.ok(t, tokA)
	creds := e.rancher.Credentials(project)
	if len(creds) != 1 {
		t.Fatalf("credentials = %+v, want one created", creds)
	}
	if c := creds[0]; c.RegistryID != reg || c.SecretValue != "pw-A" || c.PublicValue != "AWS" || c.Email != cattle.DefaultEmail {
		t.Errorf("created credential = %+v", c)
	}
	if o.Count(refresher.ResultCreated) != 1 {
		t.Errorf("results = %v, want created", o.Results)
	}
}

// Rancher's /v1 requires a non-empty email on create; the old image sent none.
func TestTarget_V1EmailRequired(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	reg := e.rancher.AddRegistry(project, hostA, "")
	c, err := rancherapi.NewCattle(strings.Replace(e.client.BaseURL(), "/v2-beta/", "/v1/", 1), "ak", rancherKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.tg = &cattle.Target{Store: c}
	e.ok(t, tokA)
	creds := e.rancher.Credentials(project)
	if len(creds) != 1 || creds[0].RegistryID != reg || creds[0].Email != cattle.DefaultEmail {
		t.Errorf("credentials = %+v, want one with email %q", creds, cattle.DefaultEmail)
	}
}

func TestTarget_InactiveAndRemoved(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	removed := e.rancher.AddRegistry(project, hostA, "removing")
	removedCred := e.rancher.AddCredential(project, removed, "AWS", "old", "")
	reg := e.rancher.AddRegistry(project, hostA, "")
	inactive := e.rancher.AddCredential(project, reg, "AWS", "kept-off", "inactive")
	active := e.rancher.AddCredential(project, reg, "AWS", "old", "")
	e.ok(t, tokA)
	if c := e.cred(t, active); c.SecretValue != "pw-A" {
		t.Errorf("active credential not written: %+v", c)
	}
	if c := e.cred(t, inactive); c.Writes != 0 || c.SecretValue != "kept-off" {
		t.Errorf("inactive credential was written: %+v", c)
	}
	if c := e.cred(t, removedCred); c.Writes != 0 {
		t.Errorf("credential of a registry being removed was written: %+v", c)
	}
}

func TestTarget_UnparsableAddressMidList(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.rancher.AddRegistry(project, "index.docker.io", "")
	e.rancher.AddRegistry(project, "http://[::1", "")
	e.rancher.AddRegistry(project, "my_registry:port", "")
	reg := e.rancher.AddRegistry(project, hostA, "")
	cred := e.rancher.AddCredential(project, reg, "AWS", "old", "")
	e.ok(t, tokA)
	if c := e.cred(t, cred); c.SecretValue != "pw-A" {
		t.Errorf("credential after unparsable addresses not written: %+v", c)
	}
	if got := strings.Count(e.log.String(), "unparsable server address skipped"); got != 1 || !strings.Contains(e.log.String(), "count=2") {
		t.Errorf("warnings = %d, want one saying count=2:\n%s", got, e.log)
	}
}

func TestTarget_MatchOnLastPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.client.PageSize = 100
	for i := range 250 {
		e.rancher.AddRegistry(project, fmt.Sprintf("r%d.example.com", i), "")
	}
	reg := e.rancher.AddRegistry(project, hostA, "")
	cred := e.rancher.AddCredential(project, reg, "AWS", "old", "")
	e.ok(t, tokA)
	if c := e.cred(t, cred); c.SecretValue != "pw-A" {
		t.Errorf("credential of the registry on page 3 not written: %+v", c)
	}
}
