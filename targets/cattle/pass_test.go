package cattle_test

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/plantest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/cattle"
)

// An ECR host with no registry while AUTO_CREATE is off fails that host,
// naming the fix, as an error retrying soon will not fix; a registry being
// removed does not count; nothing is written.
func TestTarget_NoRegistry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hub := e.rancher.AddRegistry(project, "index.docker.io", "")
	hubCred := e.rancher.AddCredential(project, hub, "someone", "hub-password", "")
	e.rancher.AddRegistry(project, hostA, "removing")
	o, err := e.run(t, tokA)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Plan.Failures) != 1 || len(o.Plan.Writes) != 0 {
		t.Fatalf("plan = %+v, want one failure and no write", o.Plan)
	}
	f := o.Plan.Failures[0]
	if f.Host != hostA || !errors.Is(f.Err, cattle.ErrNoRegistry) || !plantest.Permanent(f.Err) {
		t.Fatalf("failure = %v (permanent %v), want a permanent ErrNoRegistry of %s", f.Err, plantest.Permanent(f.Err), hostA)
	}
	for _, want := range []string{hostA, "AUTO_CREATE=true"} {
		if !strings.Contains(f.Err.Error(), want) {
			t.Errorf("error %q does not name %q", f.Err, want)
		}
	}
	if len(e.rancher.Registries(project)) != 2 || e.cred(t, hubCred).Writes != 0 {
		t.Errorf("something was written without AUTO_CREATE")
	}
}

// AUTO_CREATE makes the registry and its credential once; the next pass
// updates that credential in place.
func TestTarget_AutoCreateOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.tg.AutoCreate = true
	o := e.ok(t, plantest.Token(hostA, "pw-1"))
	if w := o.Write(t, "registry "+hostA); w.Action != refresher.ResultCreated || o.Results[0] != refresher.ResultCreated {
		t.Errorf("first pass: %+v, %v", w, o.Results)
	}
	e.ok(t, plantest.Token(hostA, "pw-2"))
	regs := e.rancher.Registries(project)
	if len(regs) != 1 || regs[0].ServerAddress != hostA {
		t.Fatalf("registries = %+v, want exactly one for %s", regs, hostA)
	}
	creds := e.rancher.Credentials(project)
	if len(creds) != 1 || creds[0].SecretValue != "pw-2" || creds[0].Writes != 2 || creds[0].Email != cattle.DefaultEmail {
		t.Errorf("credentials = %+v, want one, created then updated in place", creds)
	}
}

// Another writer creates the registry between our list and our create: Rancher
// answers ServerAddressUsed, and we write into the registry it made.
func TestTarget_AutoCreateRace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.tg.AutoCreate = true
	var theirs string
	e.rancher.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/registries") && theirs == "" {
			theirs = e.rancher.AddRegistry(project, strings.ToUpper(hostA), "")
			w.WriteHeader(http.StatusBadRequest)
			b, _ := os.ReadFile("../../rancherapi/testdata/v2beta-error-400-server-address-used.json")
			_, _ = w.Write(b)
			return true
		}
		return false
	})
	e.ok(t, tokA)
	regs := e.rancher.Registries(project)
	creds := e.rancher.Credentials(project)
	if theirs == "" || len(regs) != 1 || len(creds) != 1 || creds[0].RegistryID != theirs || creds[0].SecretValue != "pw-A" {
		t.Errorf("registries %+v, credentials %+v: want one registry (theirs) with our credential", regs, creds)
	}
}

// When Rancher answers ServerAddressUsed and one of the registries found
// cannot be read, the others are still written; the write fails naming the
// one that could not be.
func TestTarget_AutoCreateRaceOneUnreadable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.tg.AutoCreate = true
	var broken, fine string
	e.rancher.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/registries") && broken == "":
			broken = e.rancher.AddRegistry(project, strings.ToUpper(hostA), "")
			fine = e.rancher.AddRegistry(project, "https://"+hostA, "")
			w.WriteHeader(http.StatusBadRequest)
			b, _ := os.ReadFile("../../rancherapi/testdata/v2beta-error-400-server-address-used.json")
			_, _ = w.Write(b)
			return true
		case r.Method == http.MethodGet && broken != "" && r.URL.Query().Get("registryId") == broken:
			w.WriteHeader(http.StatusInternalServerError)
			return true
		}
		return false
	})
	p, err := e.tg.Plan(t.Context(), plantest.Input(e.logger, []refresher.Token{tokA}))
	if err != nil || len(p.Writes) != 1 {
		t.Fatalf("plan = %+v, %v; want one write", p, err)
	}
	_, err = p.Writes[0].Apply(t.Context())
	if err == nil || !strings.Contains(err.Error(), "registry "+broken) {
		t.Errorf("apply = %v, want a failure naming registry %s", err, broken)
	}
	creds := e.rancher.Credentials(project)
	if len(creds) != 1 || creds[0].RegistryID != fine || creds[0].SecretValue != "pw-A" {
		t.Errorf("credentials %+v: want ours in registry %s, the one that could be read", creds, fine)
	}
}

// With ECR_PROXY_HOST the token's host is the proxy's: its registry is
// written, the ECR host's is not.
func TestTarget_ProxyHost(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	proxy := e.rancher.AddRegistry(project, "ecr-proxy.example.com:5000", "")
	proxyCred := e.rancher.AddCredential(project, proxy, "AWS", "old", "")
	direct := e.rancher.AddRegistry(project, hostA, "")
	directCred := e.rancher.AddCredential(project, direct, "AWS", "old", "")
	tok := tokA
	tok.Host = "ecr-proxy.example.com:5000"
	e.ok(t, tok)
	if c := e.cred(t, proxyCred); c.SecretValue != "pw-A" {
		t.Errorf("proxy host credential = %+v, want the ECR password", c)
	}
	if c := e.cred(t, directCred); c.Writes != 0 {
		t.Errorf("ECR host credential written although ECR_PROXY_HOST is set: %+v", c)
	}
}

// Planning only reads: what a dry run reports (update, create registry) is
// planned, and nothing is written until the writes are applied.
func TestTarget_PlanWritesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.tg.AutoCreate = true
	reg := e.rancher.AddRegistry(project, hostA, "")
	cred := e.rancher.AddCredential(project, reg, "AWS", "old", "")
	var writes int
	e.rancher.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet {
			writes++
		}
		return false
	})
	p, err := e.tg.Plan(t.Context(), plantest.Input(e.logger, []refresher.Token{tokA, plantest.Token(hostB, "pw-B")}))
	if err != nil {
		t.Fatal(err)
	}
	if writes != 0 || e.cred(t, cred).Writes != 0 || len(e.rancher.Registries(project)) != 1 {
		t.Errorf("planning wrote: %d requests other than GET", writes)
	}
	got := map[string]refresher.Result{}
	for _, w := range p.Writes {
		got[w.What+" "+w.Object] = w.Action
		if w.Check != nil {
			t.Errorf("%s has a Check: Rancher 1.x has no dry run", w.Object)
		}
	}
	want := map[string]refresher.Result{"registry credential credential " + cred: refresher.ResultUpdated,
		"registry and its credential registry " + hostB: refresher.ResultCreated}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("planned %v, want %v", got, want)
	}
	noSecrets(t, "log", e.log.String(), "pw-A", "pw-B")
}

// The same token twice is written once: Rancher cannot tell what it holds, so
// the write is the same content on the same object, which the refresher
// skips. A changed user name shows it holds something else: stale.
func TestTarget_Unchanged(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	reg := e.rancher.AddRegistry(project, hostA, "")
	cred := e.rancher.AddCredential(project, reg, "AWS", "old", "")
	e.ok(t, tokA)
	if o := e.ok(t, tokA); o.Count(refresher.ResultUnchanged) != 1 {
		t.Errorf("second pass results = %v, want unchanged", o.Results)
	}
	if c := e.cred(t, cred); c.Writes != 1 {
		t.Errorf("writes = %d, want 1", c.Writes)
	}
	other := e.rancher.AddCredential(project, reg, "someone-else", "x", "")
	o := e.ok(t, tokA)
	if w := o.Write(t, "credential "+other); !w.Stale {
		t.Errorf("credential with user someone-else is not stale: %+v", w)
	}
	if c := e.cred(t, other); c.Writes != 1 || c.PublicValue != "AWS" {
		t.Errorf("credential = %+v, want rewritten", c)
	}
}

// One registry failing does not stop the others and keeps what it had.
func TestTarget_Isolation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ra := e.rancher.AddRegistry(project, hostA, "")
	ca := e.rancher.AddCredential(project, ra, "AWS", "old-A", "")
	rb := e.rancher.AddRegistry(project, hostB, "")
	cb := e.rancher.AddCredential(project, rb, "AWS", "old-B", "")
	e.rancher.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/"+ca) {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"type":"error","status":500,"code":"Internal Server Error"}`))
			return true
		}
		return false
	})
	o, err := e.run(t, tokA, plantest.Token(hostB, "pw-B"))
	if err != nil {
		t.Fatal(err)
	}
	err = o.Err()
	if err == nil || !strings.Contains(err.Error(), hostA) || strings.Contains(err.Error(), hostB) || !strings.Contains(err.Error(), "credential "+ca) {
		t.Fatalf("err = %v, want a failure of %s's credential only", err, hostA)
	}
	if c := e.cred(t, ca); c.SecretValue != "old-A" {
		t.Errorf("failed credential changed: %+v", c)
	}
	if c := e.cred(t, cb); c.SecretValue != "pw-B" {
		t.Errorf("other registry not written: %+v", c)
	}
	noSecrets(t, "log", e.log.String(), "pw-A", "pw-B", "old-A", "old-B")
	noSecrets(t, "error", err.Error(), "pw-A", "pw-B", "old-A", "old-B")
}

// A refused key fails the whole scope at planning, naming the 401.
func TestTarget_RancherDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.rancher.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"type":"error","status":401,"code":"Unauthorized","message":"Unauthorized"}`))
		return true
	})
	_, err := e.run(t, tokA)
	if err == nil || !strings.Contains(err.Error(), "401 Unauthorized") || !plantest.Permanent(err) {
		t.Fatalf("err = %v, want the 401 named, permanent", err)
	}
	noSecrets(t, "error", err.Error(), "pw-A")
}
