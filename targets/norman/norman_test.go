package norman_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/logbuf"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/plantest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/multihost"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi/ranchertest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/norman"
)

const (
	hostA      = "111122223333.dkr.ecr.us-east-1.amazonaws.com"
	hostB      = "444455556666.dkr.ecr.us-east-1.amazonaws.com"
	hostC      = "555566667777.dkr.ecr.eu-west-1.amazonaws.com"
	nameA      = "ecr-111122223333-us-east-1"
	nameB      = "ecr-444455556666-us-east-1"
	p1         = "c-abcde:p-fghij"
	p2         = "c-abcde:p-klmno"
	rancherKey = "rancher-secret-key-DO-NOT-LEAK"
)

var (
	tokA = plantest.Token(hostA, "pw-A")
	tokB = plantest.Token(hostB, "pw-B")
)

// env is a Rancher 2.x stand-in with two projects, the target of p1, and the
// debug-level log of what its plans noticed.
type env struct {
	rancher *ranchertest.Server
	url     string
	tg      *norman.Target
	log     *logbuf.Buffer
	logger  *logrus.Logger
	mem     plantest.Memory
}

func newEnv(t *testing.T) *env {
	t.Helper()
	rs := ranchertest.New(ranchertest.Key{Access: "token-abcde", Secret: rancherKey, Projects: []string{"*"}})
	rs.AddProject(p1)
	rs.AddProject(p2)
	srv := httptest.NewServer(rs)
	t.Cleanup(srv.Close)
	e := &env{rancher: rs, url: srv.URL + "/v3", log: &logbuf.Buffer{}}
	e.logger = logrus.New()
	e.logger.SetOutput(e.log)
	e.logger.SetLevel(logrus.DebugLevel)
	e.tg = e.target(t, p1)
	return e
}

func (e *env) target(t *testing.T, project string) *norman.Target {
	t.Helper()
	c, err := rancherapi.NewNorman(e.url, "token-abcde", rancherKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &norman.Target{Store: c.WithProject(project)}
}

// run is one pass of p1's target; also are managed hosts whose token is not
// in hand.
func (e *env) run(t *testing.T, toks []refresher.Token, also ...string) (plantest.Outcome, error) {
	t.Helper()
	return e.mem.Run(t.Context(), e.tg, plantest.Input(e.logger, toks, also...))
}

// ok is run, failing the test on any failure.
func (e *env) ok(t *testing.T, toks ...refresher.Token) plantest.Outcome {
	t.Helper()
	o, err := e.run(t, toks)
	if err == nil {
		err = o.Err()
	}
	if err != nil {
		t.Fatalf("pass: %v", err)
	}
	return o
}

// noSecrets fails the test if a secret is in text.
func noSecrets(t *testing.T, what, text string, secrets ...string) {
	t.Helper()
	for _, s := range append(secrets, rancherKey) {
		if strings.Contains(text, s) {
			t.Errorf("%s holds secret %q", what, s)
		}
	}
}

func byID(creds []ranchertest.DockerCred) map[string]ranchertest.DockerCred {
	m := map[string]ranchertest.DockerCred{}
	for _, c := range creds {
		m[c.ID] = c
	}
	return m
}

// A project with no credential gets one per registry, named
// ecr-<account>-<region>; the next pass with the same tokens finds them by
// name and host, plans the same content on the same objects (skipped), and
// creates nothing.
func TestTarget_CreatesOwnCredentials(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := e.ok(t, tokA, tokB)
	if o.Count(refresher.ResultCreated) != 2 {
		t.Errorf("results = %v, want two created", o.Results)
	}
	got := e.rancher.DockerCredentials(p1)
	if len(got) != 2 || got[0].Name != nameA || got[1].Name != nameB {
		t.Fatalf("credentials = %+v, want one per registry, named ecr-<account>-<region>", got)
	}
	if a := got[0].Registries[hostA]; a.Username != "AWS" || a.Password != "pw-A" || len(got[0].Registries) != 1 {
		t.Errorf("credential = %+v", got[0])
	}
	o = e.ok(t, tokA, tokB)
	if o.Count(refresher.ResultUnchanged) != 2 {
		t.Errorf("second pass results = %v, want both unchanged", o.Results)
	}
	if w := o.Write(t, "dockerCredential "+nameA); w.Stale || w.Action != refresher.ResultUpdated {
		t.Errorf("second pass write = %+v, want an update of the same object, not stale", w)
	}
	if got := e.rancher.DockerCredentials(p1); len(got) != 2 || got[0].Writes != 1 {
		t.Errorf("second pass: %+v, want the same two, unchanged", got)
	}
	if len(e.rancher.DockerCredentials(p2)) != 0 {
		t.Error("another project was written")
	}
}

// After a restart (nothing remembered) our credentials are found again, by
// host or by name, and updated in place.
func TestTarget_UpdatesOwnInPlaceAfterRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	byHost := e.rancher.AddDockerCredential(p1, "team-ecr", map[string]ranchertest.Auth{"https://" + hostA: {Username: "AWS", Password: "old-A"}})
	byName := e.rancher.AddDockerCredential(p1, nameB, map[string]ranchertest.Auth{})
	o := e.ok(t, tokA, tokB)
	if w := o.Write(t, "dockerCredential "+nameB); !w.Stale {
		t.Errorf("the credential that lost its host is not stale: %+v", w)
	}
	got := e.rancher.DockerCredentials(p1)
	if len(got) != 2 {
		t.Fatalf("credentials = %+v, want the two that were there, no new one", got)
	}
	for _, c := range got {
		switch c.ID {
		case byHost:
			if a := c.Registries["https://"+hostA]; a.Password != "pw-A" || len(c.Registries) != 1 || c.Writes != 1 {
				t.Errorf("found by host: %+v, want its key kept and the password new", c)
			}
		case byName:
			if a := c.Registries[hostB]; a.Password != "pw-B" || c.Writes != 1 {
				t.Errorf("found by name: %+v, want the host put back", c)
			}
		default:
			t.Errorf("unexpected credential %+v", c)
		}
	}
}

// A credential that also holds a host we do not manage is never rewritten:
// its other password cannot be read back and would be lost. It is noted once,
// as information; a credential holding two managed hosts is written once
// with both.
func TestTarget_ForeignHostsUntouched(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	shared := e.rancher.AddDockerCredential(p1, "shared", map[string]ranchertest.Auth{hostA: {Username: "AWS", Password: "old"}, hostB: {Username: "AWS", Password: "old"},
		"index.docker.io": {Username: "someone", Password: "hub-password"}})
	both := e.rancher.AddDockerCredential(p1, "both-ecr", map[string]ranchertest.Auth{hostA: {Username: "AWS", Password: "old-A"}, hostB: {Username: "AWS", Password: "old-B"}})
	o := e.ok(t, tokA, tokB)
	if len(o.Plan.Writes) != 1 {
		t.Errorf("writes = %d, want one (both-ecr, with both hosts)", len(o.Plan.Writes))
	}
	for _, c := range e.rancher.DockerCredentials(p1) {
		switch c.ID {
		case shared:
			if c.Writes != 0 || c.Registries["index.docker.io"].Password != "hub-password" {
				t.Errorf("shared credential rewritten: %+v", c)
			}
		case both:
			if c.Writes != 1 || c.Registries[hostA].Password != "pw-A" || c.Registries[hostB].Password != "pw-B" {
				t.Errorf("credential holding two managed hosts = %+v, want one write with both passwords", c)
			}
		default:
			t.Errorf("unexpected credential %s: both hosts are already in a credential wholly ours", c.Name)
		}
	}
	out := e.log.String()
	if strings.Count(out, "left untouched") != 1 || !strings.Contains(out, "credential=shared") || !strings.Contains(out, "level=warning") {
		t.Errorf("the log does not warn once why shared was left alone:\n%s", out)
	}
	noSecrets(t, "log", out, "hub-password", "pw-A", "pw-B")
}

// Our own name taken by a credential holding a foreign host: that host fails,
// naming the credential and the fix; nothing is written.
func TestTarget_OwnNameTakenByForeign(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.rancher.AddDockerCredential(p1, nameA, map[string]ranchertest.Auth{"index.docker.io": {Username: "someone", Password: "hub-password"}})
	o, err := e.run(t, []refresher.Token{tokA})
	if err != nil {
		t.Fatal(err)
	}
	err = o.Err()
	if err == nil || !strings.Contains(err.Error(), "dockerCredential "+nameA+" exists and also holds hosts this process does not manage (\"index.docker.io\")") ||
		!plantest.Permanent(err) || len(o.Plan.Writes) != 0 {
		t.Fatalf("err = %v, writes %d", err, len(o.Plan.Writes))
	}
	if c := e.rancher.DockerCredentials(p1); len(c) != 1 || c[0].Writes != 0 {
		t.Errorf("credentials = %+v, want untouched", c)
	}
}

// A dockerCredential listed with registries: null holds nothing known, so it
// is not "wholly ours": even under our own name it is not replaced whole.
func TestTarget_NullRegistriesNotOurs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var writes int
	e.rancher.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		path := strings.ToLower(r.URL.Path)
		switch {
		case r.Method == http.MethodPut || r.Method == http.MethodPost:
			writes++
			_, _ = w.Write([]byte(`{"id":"p-fghij:` + nameA + `"}`))
		case strings.HasSuffix(path, "/namespaceddockercredentials"):
			_, _ = w.Write([]byte(`{"type":"collection","data":[]}`))
		case strings.HasSuffix(path, "/dockercredentials"):
			_, _ = w.Write([]byte(`{"type":"collection","data":[{"id":"p-fghij:` + nameA + `","name":"` + nameA + `","registries":null}]}`))
		default:
			return false
		}
		return true
	})
	o, err := e.run(t, []refresher.Token{tokA})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Err(); err == nil || !strings.Contains(err.Error(), "registries: null") || !plantest.Permanent(err) {
		t.Fatalf("pass = %v, want the credential refused for its null registries", err)
	}
	if writes != 0 {
		t.Errorf("%d writes, want none", writes)
	}
}

// namespacedDockerCredentials that already hold a managed host are refreshed in
// place (the whole map, when it is wholly ours) and never created; one that also
// holds another host is left alone and noted.
func TestTarget_NamespacedCredentials(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ours := e.rancher.AddNamespacedDockerCredential(p1, "web", "ecr", map[string]ranchertest.Auth{hostA: {Username: "AWS", Password: "old"}})
	mixed := e.rancher.AddNamespacedDockerCredential(p1, "batch", "mixed", map[string]ranchertest.Auth{
		hostA: {Username: "AWS", Password: "old"}, "index.docker.io": {Username: "someone", Password: "hub-password"}})
	o := e.ok(t, tokA, tokB)
	if w := o.Write(t, "namespacedDockerCredential "+ours); w.Action != refresher.ResultUpdated {
		t.Errorf("write = %+v", w)
	}
	var names []string
	for _, c := range e.rancher.DockerCredentials(p1) {
		switch c.ID {
		case ours:
			if c.Writes != 1 || c.Registries[hostA].Password != "pw-A" {
				t.Errorf("namespaced credential wholly ours = %+v, want refreshed", c)
			}
		case mixed:
			if c.Writes != 0 || c.Registries["index.docker.io"].Password != "hub-password" {
				t.Errorf("mixed namespaced credential rewritten: %+v", c)
			}
		default:
			if c.Namespace != "" {
				t.Errorf("a namespaced credential was created: %+v", c)
			}
			names = append(names, c.Name)
		}
	}
	// The project-scoped ones are still made, so every namespace is covered.
	if len(names) != 2 {
		t.Errorf("project-scoped credentials = %v, want ours for both hosts", names)
	}
	if !strings.Contains(e.log.String(), "credential=batch/mixed") {
		t.Errorf("the log does not name the mixed credential:\n%s", e.log)
	}
}

// A credential holding hosts of two regions (two ECR calls) is rewritten
// whole, with both tokens, whenever either changes; while one host's token is
// not in hand it cannot be (its password would be lost): the host in hand
// fails with multihost.ErrKept and the credential is left as it is.
func TestTarget_TwoRegionCredential(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	both := e.rancher.AddDockerCredential(p1, "both-regions", map[string]ranchertest.Auth{hostA: {Username: "AWS"}, hostC: {Username: "AWS"}})
	tokC := plantest.Token(hostC, "pw-C")
	e.ok(t, tokA, tokC)
	e.ok(t, plantest.Token(hostA, "pw-A-2"), tokC)
	c := byID(e.rancher.DockerCredentials(p1))[both]
	if c.Writes != 2 || c.Registries[hostA].Password != "pw-A-2" || c.Registries[hostC].Password != "pw-C" {
		t.Errorf("credential = %+v, want two whole writes", c)
	}

	o, err := e.run(t, []refresher.Token{plantest.Token(hostA, "pw-A-3")}, hostC)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Plan.Failures) != 1 || o.Plan.Failures[0].Host != hostA || len(o.Plan.Writes) != 0 {
		t.Fatalf("plan = %+v, want %s failing, nothing written", o.Plan, hostA)
	}
	if err := o.Plan.Failures[0].Err; !strings.Contains(err.Error(), "dockerCredential both-regions") || !strings.Contains(err.Error(), hostC) ||
		!strings.Contains(err.Error(), multihost.ErrKept.Error()) {
		t.Errorf("failure = %v, want ErrKept naming the credential and %s", err, hostC)
	}
	if c := byID(e.rancher.DockerCredentials(p1))[both]; c.Writes != 2 || c.Registries[hostC].Password != "pw-C" {
		t.Errorf("credential = %+v, want untouched", c)
	}
}

// One project failing does not touch another's credentials: each project is
// its own target.
func TestTarget_ProjectFailingAlone(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.rancher.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/"+p2+"/") {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"type":"error","status":500,"code":"ServerError","message":"boom"}`))
			return true
		}
		return false
	})
	if _, err := plantest.Run(t.Context(), e.target(t, p2), plantest.Input(e.logger, []refresher.Token{tokA})); err == nil ||
		!strings.Contains(err.Error(), "500") || plantest.Permanent(err) {
		t.Fatalf("plan of %s = %v, want a temporary 500", p2, err)
	}
	e.ok(t, tokA)
	if got := e.rancher.DockerCredentials(p1); len(got) != 1 {
		t.Errorf("%s: %d credentials, want 1", p1, len(got))
	}
}
