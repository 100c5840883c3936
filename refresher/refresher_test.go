package refresher_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/logbuf"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi/ranchertest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher/ecrtest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/cattle"
)

const (
	hostA      = "111122223333.dkr.ecr.us-east-1.amazonaws.com"
	hostB      = "444455556666.dkr.ecr.us-east-1.amazonaws.com"
	project    = "1a5"
	rancherKey = "rancher-secret-key-DO-NOT-LEAK"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// fakeECR answers GetAuthorizationToken through a function field.
type fakeECR = ecrtest.Fake

// login is one authorizationData entry: host and password, user AWS.
type login = ecrtest.Login

func tokens(exp time.Time, logins ...login) *ecr.GetAuthorizationTokenOutput {
	return ecrtest.Output(exp, logins...)
}

// staticECR always returns the same logins, valid 12h from t0.
func staticECR(logins ...login) *fakeECR { return ecrtest.Static(t0.Add(12*time.Hour), logins...) }

// syncBuffer is the shared log sink, safe for concurrent writes and reads.
type syncBuffer = logbuf.Buffer

// env is one test's world: a Rancher stand-in, a client on it, a refresher, and
// its debug-level log.
type env struct {
	rancher *ranchertest.Server
	client  *rancherapi.Cattle
	tg      *cattle.Target
	r       *refresher.Refresher
	log     *syncBuffer
}

func newEnv(t *testing.T, e refresher.ECRAPI) *env {
	t.Helper()
	rs := ranchertest.New(ranchertest.Key{Access: "ak", Secret: rancherKey, Project: project})
	srv := httptest.NewServer(rs)
	t.Cleanup(srv.Close)
	log := &syncBuffer{}
	l := logrus.New()
	l.SetOutput(log)
	l.SetLevel(logrus.DebugLevel)
	c, err := rancherapi.NewCattle(srv.URL+"/v2-beta/projects/"+project, "ak", rancherKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Debugf = l.Debugf
	tg := &cattle.Target{Store: c}
	r := refresher.New([]refresher.Source{{Region: "us-east-1", RegistryIDs: []string{"111122223333"}, Client: e}}, []refresher.Scope{{Name: project, Target: tg}})
	r.Logger = l
	r.Now = func() time.Time { return t0 }
	return &env{rancher: rs, client: c, tg: tg, r: r, log: log}
}

// secrets fails the test if any secret is in the captured log.
func (e *env) noSecrets(t *testing.T, secrets ...string) {
	t.Helper()
	out := e.log.String()
	for _, s := range append(secrets, rancherKey) {
		if strings.Contains(out, s) {
			t.Errorf("log holds secret %q:\n%s", s, out)
		}
		if b64 := base64.StdEncoding.EncodeToString([]byte("AWS:" + s)); strings.Contains(out, b64) {
			t.Errorf("log holds the encoded token of %q", s)
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

func TestRefresher_RunOnce_UnrelatedUntouched(t *testing.T) {
	t.Parallel()
	e := newEnv(t, staticECR(login{Host: hostA, Password: "pw-A"}))
	hub := e.rancher.AddRegistry(project, "index.docker.io", "")
	hubCred := e.rancher.AddCredential(project, hub, "someone", "hub-password", "")
	other := e.rancher.AddRegistry(project, "registry.example.com:5000", "")
	otherCred := e.rancher.AddCredential(project, other, "AWS", "other-password", "")
	ecrReg := e.rancher.AddRegistry(project, hostA, "")
	ecrCred := e.rancher.AddCredential(project, ecrReg, "AWS", "old-token", "")

	if err := e.r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
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
	if !strings.Contains(e.log.String(), "written=1") {
		t.Errorf("summary line does not say written=1:\n%s", e.log)
	}
	e.noSecrets(t, "pw-A", "hub-password", "other-password", "old-token")
}

func TestRefresher_RunOnce_EveryMatchWritten(t *testing.T) {
	t.Parallel()
	e := newEnv(t, staticECR(login{Host: hostA, Password: "pw-A"}))
	r1 := e.rancher.AddRegistry(project, hostA, "")
	r2 := e.rancher.AddRegistry(project, "HTTPS://"+strings.ToUpper(hostA)+"/", "")
	r3 := e.rancher.AddRegistry(project, hostA+"/some/path", "")
	c1 := e.rancher.AddCredential(project, r1, "AWS", "old", "")
	c1b := e.rancher.AddCredential(project, r1, "AWS", "old", "")
	c2 := e.rancher.AddCredential(project, r2, "AWS", "old", "")
	c3 := e.rancher.AddCredential(project, r3, "AWS", "old", "")
	if err := e.r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{c1, c1b, c2, c3} {
		if c := e.cred(t, id); c.SecretValue != "pw-A" || c.Writes != 1 {
			t.Errorf("credential %s = %+v, want written once with the new password", id, c)
		}
	}
}

func TestRefresher_RunOnce_RegistryWithoutCredential(t *testing.T) {
	t.Parallel()
	e := newEnv(t, staticECR(login{Host: hostA, Password: "pw-A"}))
	reg := e.rancher.AddRegistry(project, hostA, "")
	if err := e.r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	creds := e.rancher.Credentials(project)
	if len(creds) != 1 {
		t.Fatalf("credentials = %+v, want one created", creds)
	}
	if c := creds[0]; c.RegistryID != reg || c.SecretValue != "pw-A" || c.PublicValue != "AWS" {
		t.Errorf("created credential = %+v", c)
	}
}

// Rancher's /v1 requires a non-empty email on create; the old image sent none.
func TestRefresher_RunOnce_V1EmailRequired(t *testing.T) {
	t.Parallel()
	e := newEnv(t, staticECR(login{Host: hostA, Password: "pw-A"}))
	reg := e.rancher.AddRegistry(project, hostA, "")
	c, err := rancherapi.NewCattle(strings.Replace(e.client.BaseURL(), "/v2-beta/", "/v1/", 1), "ak", rancherKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.r.Scopes = []refresher.Scope{{Name: project, Target: &cattle.Target{Store: c}}}
	if err := e.r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	creds := e.rancher.Credentials(project)
	if len(creds) != 1 || creds[0].RegistryID != reg || creds[0].Email != cattle.DefaultEmail {
		t.Errorf("credentials = %+v, want one with email %q", creds, cattle.DefaultEmail)
	}
}

func TestRefresher_RunOnce_InactiveAndRemoved(t *testing.T) {
	t.Parallel()
	e := newEnv(t, staticECR(login{Host: hostA, Password: "pw-A"}))
	removed := e.rancher.AddRegistry(project, hostA, "removing")
	removedCred := e.rancher.AddCredential(project, removed, "AWS", "old", "")
	reg := e.rancher.AddRegistry(project, hostA, "")
	inactive := e.rancher.AddCredential(project, reg, "AWS", "kept-off", "inactive")
	active := e.rancher.AddCredential(project, reg, "AWS", "old", "")
	if err := e.r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
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

func TestRefresher_RunOnce_UnparsableAddressMidList(t *testing.T) {
	t.Parallel()
	e := newEnv(t, staticECR(login{Host: hostA, Password: "pw-A"}))
	e.rancher.AddRegistry(project, "index.docker.io", "")
	e.rancher.AddRegistry(project, "http://[::1", "")
	e.rancher.AddRegistry(project, "my_registry:port", "")
	reg := e.rancher.AddRegistry(project, hostA, "")
	cred := e.rancher.AddCredential(project, reg, "AWS", "old", "")
	if err := e.r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c := e.cred(t, cred); c.SecretValue != "pw-A" {
		t.Errorf("credential after unparsable addresses not written: %+v", c)
	}
	if got := strings.Count(e.log.String(), "unparsable server address skipped"); got != 1 || !strings.Contains(e.log.String(), "count=2") {
		t.Errorf("warnings = %d, want one saying count=2:\n%s", got, e.log)
	}
}

func TestRefresher_RunOnce_MatchOnLastPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, staticECR(login{Host: hostA, Password: "pw-A"}))
	e.client.PageSize = 100
	for i := range 250 {
		e.rancher.AddRegistry(project, fmt.Sprintf("r%d.example.com", i), "")
	}
	reg := e.rancher.AddRegistry(project, hostA, "")
	cred := e.rancher.AddCredential(project, reg, "AWS", "old", "")
	if err := e.r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c := e.cred(t, cred); c.SecretValue != "pw-A" {
		t.Errorf("credential of the registry on page 3 not written: %+v", c)
	}
}

func TestRefresher_RunOnce_NoRegistry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, staticECR(login{Host: hostA, Password: "pw-A"}))
	hub := e.rancher.AddRegistry(project, "index.docker.io", "")
	hubCred := e.rancher.AddCredential(project, hub, "someone", "hub-password", "")
	err := e.r.RunOnce(t.Context())
	if !errors.Is(err, cattle.ErrNoRegistry) {
		t.Fatalf("err = %v, want cattle.ErrNoRegistry", err)
	}
	for _, want := range []string{hostA, "AUTO_CREATE=true", "scope " + project} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if !strings.Contains(e.log.String(), "level=error") || !strings.Contains(e.log.String(), "failed=1") {
		t.Errorf("failure not logged:\n%s", e.log)
	}
	if len(e.rancher.Registries(project)) != 1 || e.cred(t, hubCred).Writes != 0 {
		t.Errorf("something was written without AUTO_CREATE")
	}
}

func TestRefresher_RunOnce_AutoCreateOnce(t *testing.T) {
	t.Parallel()
	n := 0
	e := newEnv(t, &fakeECR{GetAuthorizationTokenFunc: func(context.Context, *ecr.GetAuthorizationTokenInput) (*ecr.GetAuthorizationTokenOutput, error) {
		n++
		return tokens(t0.Add(12*time.Hour), login{Host: hostA, Password: fmt.Sprintf("pw-%d", n)}), nil
	}})
	e.tg.AutoCreate = true
	for range 2 {
		if err := e.r.RunOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	regs := e.rancher.Registries(project)
	if len(regs) != 1 || regs[0].ServerAddress != hostA {
		t.Fatalf("registries = %+v, want exactly one for %s", regs, hostA)
	}
	creds := e.rancher.Credentials(project)
	if len(creds) != 1 || creds[0].SecretValue != "pw-2" || creds[0].Writes != 2 {
		t.Errorf("credentials = %+v, want one, created then updated in place", creds)
	}
}

// Another writer creates the registry between our list and our create: Rancher
// answers ServerAddressUsed, and we write into the registry it made.
func TestRefresher_RunOnce_AutoCreateRace(t *testing.T) {
	t.Parallel()
	e := newEnv(t, staticECR(login{Host: hostA, Password: "pw-A"}))
	e.tg.AutoCreate = true
	var theirs string
	e.rancher.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/registries") && theirs == "" {
			theirs = e.rancher.AddRegistry(project, strings.ToUpper(hostA), "")
			w.WriteHeader(http.StatusBadRequest)
			b, _ := os.ReadFile("../rancherapi/testdata/v2beta-error-400-server-address-used.json")
			_, _ = w.Write(b)
			return true
		}
		return false
	})
	if err := e.r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	regs := e.rancher.Registries(project)
	creds := e.rancher.Credentials(project)
	if len(regs) != 1 || len(creds) != 1 || creds[0].RegistryID != theirs || creds[0].SecretValue != "pw-A" {
		t.Errorf("registries %+v, credentials %+v: want one registry (theirs) with our credential", regs, creds)
	}
}

func TestRefresher_RunOnce_ProxyHost(t *testing.T) {
	t.Parallel()
	e := newEnv(t, staticECR(login{Host: hostA, Password: "pw-A"}))
	e.r.ProxyHost = "ecr-proxy.example.com:5000"
	proxy := e.rancher.AddRegistry(project, "ecr-proxy.example.com:5000", "")
	proxyCred := e.rancher.AddCredential(project, proxy, "AWS", "old", "")
	direct := e.rancher.AddRegistry(project, hostA, "")
	directCred := e.rancher.AddCredential(project, direct, "AWS", "old", "")
	if err := e.r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c := e.cred(t, proxyCred); c.SecretValue != "pw-A" {
		t.Errorf("proxy host credential = %+v, want the ECR password", c)
	}
	if c := e.cred(t, directCred); c.Writes != 0 {
		t.Errorf("ECR host credential written although ECR_PROXY_HOST is set: %+v", c)
	}
}

func TestRefresher_RunOnce_DryRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, staticECR(login{Host: hostA, Password: "pw-A"}, login{Host: hostB, Password: "pw-B"}))
	e.r.Sources[0].RegistryIDs = []string{"111122223333", "444455556666"}
	e.r.DryRun, e.tg.AutoCreate = true, true
	reg := e.rancher.AddRegistry(project, hostA, "")
	cred := e.rancher.AddCredential(project, reg, "AWS", "old", "")
	if err := e.r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c := e.cred(t, cred); c.Writes != 0 || len(e.rancher.Registries(project)) != 1 {
		t.Errorf("dry run wrote something: %+v", c)
	}
	for _, want := range []string{"dry run: would update registry credential", "dry run: would create registry"} {
		if !strings.Contains(e.log.String(), want) {
			t.Errorf("dry run log lacks %q:\n%s", want, e.log)
		}
	}
	e.noSecrets(t, "pw-A", "pw-B")
}

// The same token twice is written once: Rancher cannot tell us what it holds, so
// the refresher remembers what it wrote.
func TestRefresher_RunOnce_Unchanged(t *testing.T) {
	t.Parallel()
	e := newEnv(t, staticECR(login{Host: hostA, Password: "pw-A"}))
	reg := e.rancher.AddRegistry(project, hostA, "")
	cred := e.rancher.AddCredential(project, reg, "AWS", "old", "")
	for range 2 {
		if err := e.r.RunOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if c := e.cred(t, cred); c.Writes != 1 {
		t.Errorf("writes = %d, want 1", c.Writes)
	}
	if !strings.Contains(e.log.String(), "unchanged=1") {
		t.Errorf("second summary does not say unchanged=1:\n%s", e.log)
	}
}

// One registry failing does not stop the others and keeps what it had.
func TestRefresher_RunOnce_Isolation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &fakeECR{GetAuthorizationTokenFunc: func(_ context.Context, in *ecr.GetAuthorizationTokenInput) (*ecr.GetAuthorizationTokenOutput, error) {
		return tokens(t0.Add(12*time.Hour), login{Host: hostA, Password: "pw-A"}, login{Host: hostB, Password: "pw-B"}), nil
	}})
	e.r.Sources[0].RegistryIDs = []string{"111122223333", "444455556666"}
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
	err := e.r.RunOnce(t.Context())
	if err == nil || !strings.Contains(err.Error(), hostA) || strings.Contains(err.Error(), hostB) {
		t.Fatalf("err = %v, want a failure of %s only", err, hostA)
	}
	if c := e.cred(t, ca); c.SecretValue != "old-A" {
		t.Errorf("failed credential changed: %+v", c)
	}
	if c := e.cred(t, cb); c.SecretValue != "pw-B" {
		t.Errorf("other registry not written: %+v", c)
	}
	e.noSecrets(t, "pw-A", "pw-B", "old-A", "old-B")
}

func TestRefresher_RunOnce_RancherDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, staticECR(login{Host: hostA, Password: "pw-A"}))
	e.rancher.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"type":"error","status":401,"code":"Unauthorized","message":"Unauthorized"}`))
		return true
	})
	err := e.r.RunOnce(t.Context())
	if err == nil || !strings.Contains(err.Error(), "401 Unauthorized") {
		t.Fatalf("err = %v, want the 401 named", err)
	}
	st := e.r.Status()
	if len(st) != 1 || st[0].LastError == "" || !st[0].LastSuccess.IsZero() {
		t.Errorf("status = %+v, want one failed pair", st)
	}
	e.noSecrets(t, "pw-A")
}

func TestRefresher_RunOnce_ECRFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &fakeECR{GetAuthorizationTokenFunc: func(context.Context, *ecr.GetAuthorizationTokenInput) (*ecr.GetAuthorizationTokenOutput, error) {
		return nil, &types.ServerException{Message: aws.String("boom")}
	}})
	reg := e.rancher.AddRegistry(project, hostA, "")
	cred := e.rancher.AddCredential(project, reg, "AWS", "old", "")
	before := e.rancher.Requests()
	err := e.r.RunOnce(t.Context())
	if err == nil || !strings.Contains(err.Error(), "111122223333") {
		t.Fatalf("err = %v, want the registry named", err)
	}
	if e.rancher.Requests() != before || e.cred(t, cred).SecretValue != "old" {
		t.Errorf("Rancher was touched although ECR failed")
	}
}

func TestRefresher_RunOnce_MalformedToken(t *testing.T) {
	t.Parallel()
	bad := base64.StdEncoding.EncodeToString([]byte("no-colon-SECRETISH"))
	e := newEnv(t, &fakeECR{GetAuthorizationTokenFunc: func(context.Context, *ecr.GetAuthorizationTokenInput) (*ecr.GetAuthorizationTokenOutput, error) {
		out := tokens(t0.Add(12*time.Hour), login{Host: hostA, Password: "x"}, login{Host: hostB, Password: "pw-B"})
		out.AuthorizationData[0].AuthorizationToken = aws.String(bad)
		return out, nil
	}})
	e.r.Sources[0].RegistryIDs = []string{"111122223333", "444455556666"}
	ra := e.rancher.AddRegistry(project, hostA, "")
	ca := e.rancher.AddCredential(project, ra, "AWS", "old-A", "")
	rb := e.rancher.AddRegistry(project, hostB, "")
	cb := e.rancher.AddCredential(project, rb, "AWS", "old-B", "")
	err := e.r.RunOnce(t.Context())
	if err == nil || !strings.Contains(err.Error(), hostA) || !strings.Contains(err.Error(), "no user:password separator") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "SECRETISH") || strings.Contains(err.Error(), bad) {
		t.Errorf("error prints the token: %v", err)
	}
	if e.cred(t, ca).SecretValue != "old-A" || e.cred(t, cb).SecretValue != "pw-B" {
		t.Errorf("want A untouched and B written")
	}
	e.noSecrets(t, "SECRETISH", bad, "pw-B")
}

// moto answers expiresAt 2015-01-01: plan with 12h from fetch, and warn once.
func TestRefresher_RunOnce_ExpiresAtInThePast(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &fakeECR{GetAuthorizationTokenFunc: func(context.Context, *ecr.GetAuthorizationTokenInput) (*ecr.GetAuthorizationTokenOutput, error) {
		return tokens(time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC), login{Host: hostA, Password: "pw-A"}), nil
	}})
	e.rancher.AddRegistry(project, hostA, "")
	for range 2 {
		if err := e.r.RunOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	st := e.r.Status()
	if len(st) != 1 || !st[0].ExpiresAt.Equal(t0.Add(refresher.TokenLifetime)) {
		t.Errorf("status = %+v, want expiry t0+12h", st)
	}
	if got := strings.Count(e.log.String(), "assuming a 12h token"); got != 1 {
		t.Errorf("clamp warnings = %d, want 1", got)
	}
}
