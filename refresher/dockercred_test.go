package refresher_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi/ranchertest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/norman"
)

const (
	p1 = "c-abcde:p-fghij"
	p2 = "c-abcde:p-klmno"
	p3 = "local:p-qrstu"
)

// v3Env is a Rancher 2.x stand-in with three projects, a refresher writing
// into the given ones, and its log.
type v3Env struct {
	rancher *ranchertest.Server
	url     string
	r       *refresher.Refresher
	log     *syncBuffer
}

func newV3Env(t *testing.T, e refresher.ECRAPI, projects ...string) *v3Env {
	t.Helper()
	rs := ranchertest.New(ranchertest.Key{Access: "token-abcde", Secret: rancherKey, Projects: []string{"*"}})
	for _, p := range []string{p1, p2, p3} {
		rs.AddProject(p)
	}
	srv := httptest.NewServer(rs)
	t.Cleanup(srv.Close)
	v := &v3Env{rancher: rs, url: srv.URL + "/v3", log: &syncBuffer{}}
	l := logrus.New()
	l.SetOutput(v.log)
	l.SetLevel(logrus.DebugLevel)
	v.r = refresher.New([]refresher.Source{{Region: "us-east-1", RegistryIDs: []string{"111122223333", "444455556666"}, Client: e}}, nil)
	v.r.Logger, v.r.Now = l, func() time.Time { return t0 }
	v.r.Jitter = func(d time.Duration) time.Duration { return 0 }
	for _, p := range projects {
		v.r.Scopes = append(v.r.Scopes, v.scope(t, p))
	}
	return v
}

func (v *v3Env) scope(t *testing.T, project string) refresher.Scope {
	t.Helper()
	c, err := rancherapi.NewNorman(v.url, "token-abcde", rancherKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	return refresher.Scope{Name: project, Target: &norman.Target{Store: c.WithProject(project)}}
}

func twoLogins() *fakeECR {
	return staticECR(login{Host: hostA, Password: "pw-A"}, login{Host: hostB, Password: "pw-B"})
}

func TestRefresher_V3_CreatesOwnCredentials(t *testing.T) {
	t.Parallel()
	v := newV3Env(t, twoLogins(), p1)
	if err := v.r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := v.rancher.DockerCredentials(p1)
	if len(got) != 2 || got[0].Name != "ecr-111122223333-us-east-1" || got[1].Name != "ecr-444455556666-us-east-1" {
		t.Fatalf("credentials = %+v, want one per registry, named ecr-<account>-<region>", got)
	}
	if a := got[0].Registries[hostA]; a.Username != "AWS" || a.Password != "pw-A" || len(got[0].Registries) != 1 {
		t.Errorf("credential = %+v", got[0])
	}
	// A second run with the same tokens finds them by name and host and writes nothing.
	if err := v.r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := v.rancher.DockerCredentials(p1); len(got) != 2 || got[0].Writes != 1 {
		t.Errorf("second run: %+v, want the same two, unchanged", got)
	}
}

// After a restart (a new refresher, nothing in memory) our credentials are found
// again, by host or by name, and updated in place.
func TestRefresher_V3_UpdatesOwnInPlaceAfterRestart(t *testing.T) {
	t.Parallel()
	v := newV3Env(t, twoLogins(), p1)
	byHost := v.rancher.AddDockerCredential(p1, "team-ecr", map[string]ranchertest.Auth{"https://" + hostA: {Username: "AWS", Password: "old-A"}})
	byName := v.rancher.AddDockerCredential(p1, "ecr-444455556666-us-east-1", map[string]ranchertest.Auth{})
	if err := v.r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := v.rancher.DockerCredentials(p1)
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

// A credential that also holds a host we do not manage is never rewritten: its
// other password cannot be read back and would be lost.
func TestRefresher_V3_ForeignHostsUntouched(t *testing.T) {
	t.Parallel()
	v := newV3Env(t, twoLogins(), p1)
	shared := v.rancher.AddDockerCredential(p1, "shared", map[string]ranchertest.Auth{hostA: {Username: "AWS", Password: "old"}, "index.docker.io": {Username: "someone", Password: "hub-password"}})
	both := v.rancher.AddDockerCredential(p1, "both-ecr", map[string]ranchertest.Auth{hostA: {Username: "AWS", Password: "old-A"}, hostB: {Username: "AWS", Password: "old-B"}})
	if err := v.r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, c := range v.rancher.DockerCredentials(p1) {
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
	if !strings.Contains(v.log.String(), "left untouched") || !strings.Contains(v.log.String(), "credentials=shared") {
		t.Errorf("the log does not say why shared was left alone:\n%s", v.log)
	}
	if strings.Contains(v.log.String(), "hub-password") || strings.Contains(v.log.String(), "pw-A") {
		t.Error("log holds a password")
	}
}

func TestRefresher_V3_OwnNameTakenByForeign(t *testing.T) {
	t.Parallel()
	v := newV3Env(t, staticECR(login{Host: hostA, Password: "pw-A"}), p1)
	v.r.Sources[0].RegistryIDs = []string{"111122223333"}
	v.rancher.AddDockerCredential(p1, "ecr-111122223333-us-east-1", map[string]ranchertest.Auth{"index.docker.io": {Username: "someone", Password: "hub-password"}})
	err := v.r.RunOnce(t.Context())
	if err == nil || !strings.Contains(err.Error(), "dockerCredential ecr-111122223333-us-east-1 exists and holds hosts this process does not manage") {
		t.Fatalf("err = %v", err)
	}
	if c := v.rancher.DockerCredentials(p1); len(c) != 1 || c[0].Writes != 0 {
		t.Errorf("credentials = %+v, want untouched", c)
	}
}

// Three projects, one failing with 500: the other two are written, the failing
// one is reported, retried after the backoff, and then written; the retry does
// not write the others again.
func TestRefresher_V3_ThreeScopesOneFailing(t *testing.T) {
	t.Parallel()
	v := newV3Env(t, twoLogins(), p1, p2, p3)
	var failing atomic.Bool
	failing.Store(true)
	v.rancher.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if failing.Load() && strings.Contains(r.URL.Path, "/"+p2+"/") {
			cattleError(500, "ServerError")(w, r)
			return true
		}
		return false
	})
	err := v.r.RunOnce(t.Context())
	if err == nil || !strings.Contains(err.Error(), "scope "+p2) || strings.Contains(err.Error(), "scope "+p1) {
		t.Fatalf("err = %v, want a failure of %s only", err, p2)
	}
	for _, p := range []string{p1, p3} {
		if got := v.rancher.DockerCredentials(p); len(got) != 2 {
			t.Errorf("%s: %d credentials, want 2", p, len(got))
		}
	}
	rd := v.r.Readiness(t0)
	if rd.Ready || !strings.Contains(rd.Reason, p2) {
		t.Errorf("readiness = %+v, want not ready because of %s", rd, p2)
	}
	failing.Store(false)
	next := v.r.NextDue()
	if d := next.Sub(t0); d < v.r.RetryMinInterval/2 || d > v.r.RetryMinInterval {
		t.Errorf("retry in %s, want about RETRY_MIN_INTERVAL", d)
	}
	v.r.Now = func() time.Time { return next }
	if err := v.r.RunDue(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := v.rancher.DockerCredentials(p2); len(got) != 2 {
		t.Errorf("%s after the retry: %+v", p2, got)
	}
	if got := v.rancher.DockerCredentials(p1); got[0].Writes != 1 {
		t.Errorf("the retry wrote %s again", p1)
	}
	if rd := v.r.Readiness(next); !rd.Ready {
		t.Errorf("not ready after the retry: %s", rd.Reason)
	}
}

// RANCHER_PROJECTS=all: the scopes are discovered at every full run, so a
// project created between runs is written at the next one, and one removed is
// forgotten.
func TestRefresher_Discover(t *testing.T) {
	t.Parallel()
	v := newV3Env(t, twoLogins())
	visible := []string{p1}
	v.r.Discover = func(ctx context.Context) ([]refresher.Scope, error) {
		var out []refresher.Scope
		for _, p := range visible {
			out = append(out, v.scope(t, p))
		}
		return out, nil
	}
	if err := v.r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	visible = []string{p1, p3}
	if err := v.r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := v.rancher.DockerCredentials(p3); len(got) != 2 {
		t.Errorf("new project: %d credentials, want 2", len(got))
	}
	visible = []string{p3}
	if err := v.r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, p := range v.r.Status() {
		if p.Scope == p1 {
			t.Errorf("status still reports %s after it went away", p1)
		}
	}
	if rd := v.r.Readiness(t0); !rd.Ready {
		t.Errorf("not ready: %s", rd.Reason)
	}
	visible = nil // the key lost its projects: nothing to write is a failure, not a success
	if err := v.r.RunOnce(t.Context()); err == nil || !strings.Contains(err.Error(), "no scope to write into") {
		t.Errorf("run with no project = %v", err)
	}
	if rd := v.r.Readiness(t0); rd.Ready {
		t.Error("ready with no project to write into")
	}
}

// namespacedDockerCredentials that already hold a managed host are refreshed in
// place (the whole map, when it is wholly ours) and never created; one that also
// holds another host is left alone.
func TestRefresher_V3_NamespacedCredentials(t *testing.T) {
	t.Parallel()
	v := newV3Env(t, twoLogins(), p1)
	ours := v.rancher.AddNamespacedDockerCredential(p1, "web", "ecr", map[string]ranchertest.Auth{hostA: {Username: "AWS", Password: "old"}})
	mixed := v.rancher.AddNamespacedDockerCredential(p1, "batch", "mixed", map[string]ranchertest.Auth{
		hostA: {Username: "AWS", Password: "old"}, "index.docker.io": {Username: "someone", Password: "hub-password"}})
	if err := v.r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range v.rancher.DockerCredentials(p1) {
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
	if !strings.Contains(v.log.String(), "credentials=batch/mixed") {
		t.Errorf("the log does not name the mixed credential:\n%s", v.log)
	}
}

// A credential holding hosts from two regions (two ECR calls) is rewritten in a
// retry run where only one of its hosts is due: every run fetches every token,
// and writes only what is due.
func TestRefresher_V3_MultiRegionCredentialInRetryRun(t *testing.T) {
	t.Parallel()
	hostC := "555566667777.dkr.ecr.eu-west-1.amazonaws.com"
	var n atomic.Int32
	short := &fakeECR{GetAuthorizationTokenFunc: func(context.Context, *ecr.GetAuthorizationTokenInput) (*ecr.GetAuthorizationTokenOutput, error) {
		// A new password each call, valid 2h: due again after about an hour.
		return tokens(t0.Add(2*time.Hour), login{Host: hostA, Password: fmt.Sprintf("pw-A-%d", n.Add(1))}), nil
	}}
	long := staticECR(login{Host: hostC, Password: "pw-C"}) // due again after ~6h
	v := newV3Env(t, short, p1)
	v.r.Sources = []refresher.Source{{Region: "us-east-1", RegistryIDs: []string{"111122223333"}, Client: short},
		{Region: "eu-west-1", RegistryIDs: []string{"555566667777"}, Client: long}}
	v.r.ResetSources()
	both := v.rancher.AddDockerCredential(p1, "both-regions", map[string]ranchertest.Auth{hostA: {Username: "AWS"}, hostC: {Username: "AWS"}})
	v.r.Metrics = refresher.NewMetrics(prometheus.NewRegistry())
	if err := v.r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	// One write carried both hosts: both expiries are known.
	for h, exp := range map[string]time.Time{hostA: t0.Add(2 * time.Hour), hostC: t0.Add(12 * time.Hour)} {
		if got := v.r.Metrics.Expiry(h, p1); got != float64(exp.Unix()) {
			t.Errorf("token_expiry{registry=%s} = %v, want %v", h, got, exp.Unix())
		}
	}
	next := v.r.NextDue()
	if next.After(t0.Add(time.Hour)) {
		t.Fatalf("next due at +%s, want hostA's guard within an hour", next.Sub(t0))
	}
	v.r.Now = func() time.Time { return next }
	if err := v.r.RunDue(t.Context()); err != nil {
		t.Fatalf("retry run: %v", err)
	}
	for _, c := range v.rancher.DockerCredentials(p1) {
		if c.ID == both && (c.Writes != 2 || c.Registries[hostA].Password != "pw-A-2" || c.Registries[hostC].Password != "pw-C") {
			t.Errorf("credential after the retry run = %+v, want a second whole write", c)
		}
	}
}

// A scope that disappears leaves nothing behind: its metric series go, and
// what this process remembered writing there is forgotten, so the scope is
// written afresh if it comes back.
func TestRefresher_DiscoverForgetsGoneScopes(t *testing.T) {
	t.Parallel()
	v := newV3Env(t, twoLogins())
	m := refresher.NewMetrics(prometheus.NewRegistry())
	v.r.Metrics = m
	visible := []string{p1, p3}
	v.r.Discover = func(ctx context.Context) ([]refresher.Scope, error) {
		var out []refresher.Scope
		for _, p := range visible {
			out = append(out, v.scope(t, p))
		}
		return out, nil
	}
	for range 2 { // written, then unchanged
		if err := v.r.RunOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if got := m.Writes(hostA, p1, "unchanged"); got != 1 {
		t.Fatalf("writes_total{%s,unchanged} = %v, want 1", p1, got)
	}
	visible = []string{p3}
	if err := v.r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, res := range []string{"created", "updated", "unchanged"} {
		if got := m.Writes(hostA, p1, res); got != -1 {
			t.Errorf("writes_total{%s,%s} still exported after the scope went away: %v", p1, res, got)
		}
	}
	before := v.rancher.DockerCredentials(p1)[0].Writes
	visible = []string{p1, p3}
	if err := v.r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if after := v.rancher.DockerCredentials(p1)[0].Writes; after != before+1 {
		t.Errorf("a scope that came back was not written afresh (writes %d → %d): its remembered writes were kept", before, after)
	}
}
