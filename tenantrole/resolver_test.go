package tenantrole_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/ecrsource"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/logbuf"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/mototest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/tenantrole"
)

const (
	motoSecret = "moto-secret-DO-NOT-LEAK"
	roleA      = "arn:aws:iam::111111111111:role/team-a"
	roleB      = "arn:aws:iam::222222222222:role/team-b"
	roleSTS    = "arn:aws:iam::333333333333:role/team-untrusting"
	roleECR    = "arn:aws:iam::444444444444:role/team-no-ecr"
	roleX      = "arn:aws:iam::555555555555:role/outsider"
)

var regions = []string{"us-east-1", "eu-west-1"}

func host(account, region string) string { return account + ".dkr.ecr." + region + ".amazonaws.com" }

// holder is a Target that keeps the tokens it was last planned with.
type holder struct {
	mu   sync.Mutex
	toks []refresher.Token
}

func (h *holder) Plan(_ context.Context, in refresher.Input) (refresher.Plan, error) {
	return refresher.Plan{Writes: []refresher.Write{{What: "test", Object: "o", Tokens: in.Tokens,
		Apply: func(context.Context) (refresher.Result, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.toks = in.Tokens
			return refresher.ResultUpdated, nil
		}}}}, nil
}

func (h *holder) held() []refresher.Token {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.toks
}

// world is moto behind the counting proxy, the daemon's own sources in two
// regions, a resolver over the daemon's own configuration and a refresher.
type world struct {
	proxy *mototest.Proxy
	res   *tenantrole.Resolver
	r     *refresher.Refresher
	log   *logbuf.Buffer
	reg   *prometheus.Registry
	now   time.Time
}

func newWorld(t *testing.T, externalID string) *world {
	t.Helper()
	w := &world{proxy: mototest.NewProxy(t, mototest.Start(t)), log: &logbuf.Buffer{}, reg: prometheus.NewRegistry(), now: time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)}
	logger := logrus.New()
	logger.SetOutput(w.log)
	logger.SetLevel(logrus.DebugLevel)
	base := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(w.proxy.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDMOTO", motoSecret, "")}
	sources := func(cfg aws.Config, identity string) []refresher.Source {
		var out []refresher.Source
		for _, region := range regions {
			out = append(out, &ecrsource.Source{Client: ecr.NewFromConfig(cfg, func(o *ecr.Options) { o.Region = region }),
				AWSRegion: region, Identity: identity, Logger: logger, Now: func() time.Time { return w.now }})
		}
		return out
	}
	allow, errs := tenantrole.ParseAllowList([]string{roleA, "arn:aws:iam::222222222222:role/team-*", roleSTS, roleECR})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	w.res = &tenantrole.Resolver{Allow: allow, Base: base, ExternalID: externalID, NewSources: sources,
		Metrics: tenantrole.NewMetrics(w.reg), Logger: logger}
	w.r = refresher.New(sources(base, ""), nil)
	w.r.Sources, w.r.Logger = w.res.Sources, logger
	w.r.Now = func() time.Time { return w.now }
	w.r.Jitter = func(time.Duration) time.Duration { return 0 }
	return w
}

// refresh runs refresh n: a full run, 6 hours after the one before.
func (w *world) refresh(t *testing.T, n int) error {
	t.Helper()
	if n > 1 {
		w.now = w.now.Add(6 * time.Hour)
	}
	return w.r.RunOnce(t.Context())
}

// One AssumeRole per role, however many namespaces (30 here) name it and however many
// regions and refreshes follow; one GetAuthorizationToken per (role, region)
// per refresh; the session named for the first scope and the external id
// sent; each scope holds its own role's tokens. A role STS or ECR denies
// fails only its scopes, naming the AWS error code and the fix; a role the
// allow list does not name costs no AWS call at all. No secret in the log,
// the errors or the metrics.
func TestResolver_Moto(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "ext-42")
	w.proxy.DenySTS(roleSTS)
	w.proxy.DenyECR(roleECR)
	scopes := map[string][]*holder{}
	roles := []string{"", roleA, roleB, roleSTS, roleECR, roleX}
	for i := range 180 { // 30 namespaces per identity
		role := roles[i%len(roles)]
		h := &holder{}
		scopes[role] = append(scopes[role], h)
		w.r.AddScope(refresher.Scope{Name: fmt.Sprintf("ns-%02d", i), Group: "namespaces", Identity: role, Target: h})
	}
	var errs []string
	for n := 1; n <= 3; n++ {
		if err := w.refresh(t, n); err != nil {
			errs = append(errs, err.Error())
		}
		for role, account := range map[string]string{roleA: "111111111111", roleB: "222222222222"} {
			if got := w.proxy.Tokens(role); got != n*len(regions) {
				t.Errorf("refresh %d: %d GetAuthorizationToken calls as %s, want %d (one per region)", n, got, role, n*len(regions))
			}
			for i, h := range scopes[role] {
				toks := h.held()
				if len(toks) != len(regions) || toks[0].Identity != role || toks[0].Host != host(account, "eu-west-1") || toks[1].Host != host(account, "us-east-1") {
					t.Errorf("refresh %d: scope %d of %s holds %v, want its role's account's registries", n, i, role, toks)
				}
			}
		}
		if got := w.proxy.Tokens(""); got != n*len(regions) {
			t.Errorf("refresh %d: %d GetAuthorizationToken calls as the daemon itself, want %d", n, got, n*len(regions))
		}
	}
	for _, role := range []string{roleA, roleB} {
		names, ext := w.proxy.Sessions(role)
		if len(names) != 1 || w.proxy.Assumes(role) != 1 {
			t.Errorf("%s assumed %d times (%v), want once for 3 refreshes, 2 regions and 3 namespaces", role, w.proxy.Assumes(role), names)
		}
		if len(ext) != 1 || ext[0] != "ext-42" || !strings.HasPrefix(names[0], "ns-0") {
			t.Errorf("%s: session %v external id %v, want the first namespace's name and ext-42", role, names, ext)
		}
		if got := w.value(t, "rancher_ecr_credentials_role_assume_total", "role", role, "result", "success"); got != 1 {
			t.Errorf("role_assume_total{%s,success} = %v", role, got)
		}
	}
	if n := w.proxy.Assumes(roleX); n != 0 {
		t.Errorf("the refused role was assumed %d times", n)
	}
	for _, h := range append(append(scopes[roleSTS], scopes[roleECR]...), scopes[roleX]...) {
		if len(h.held()) != 0 {
			t.Errorf("a denied or refused scope holds %v", h.held())
		}
	}
	for _, h := range scopes[""] {
		if toks := h.held(); len(toks) != 2 || toks[0].Identity != "" || toks[0].Host != host(mototest.Account, "eu-west-1") {
			t.Errorf("a scope of the daemon's own identity holds %v", toks)
		}
	}
	all := strings.Join(errs, "\n")
	for _, want := range []string{
		"sts AssumeRole: AccessDenied (HTTP 403): User: arn:aws:iam::123456789012:user/daemon is not authorized to perform: sts:AssumeRole on resource: " + roleSTS,
		"the role's trust policy must allow sts:AssumeRole by the daemon's own AWS identity",
		"AccessDeniedException (HTTP 400)", "the role's permissions policy must allow ecr:GetAuthorizationToken",
		"names role " + roleX + ", which AWS_ALLOWED_ROLE_ARNS",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("the runs' errors lack %q", want)
		}
	}
	for _, line := range strings.Split(all, "\n") {
		if strings.Contains(line, "AccessDenied") && !strings.Contains(line, "team-untrusting") && !strings.Contains(line, "team-no-ecr") {
			t.Errorf("a denial reached a scope of another role: %s", line)
		}
	}
	if got := w.value(t, "rancher_ecr_credentials_role_fetch_success", "role", roleSTS, "region", "us-east-1"); got != 0 {
		t.Errorf("role_fetch_success{untrusting} = %v, want 0", got)
	}
	if got := w.value(t, "rancher_ecr_credentials_role_fetch_success", "role", roleA, "region", "eu-west-1"); got != 1 {
		t.Errorf("role_fetch_success{team-a} = %v, want 1", got)
	}
	if got := w.value(t, "rancher_ecr_credentials_role_assume_total", "role", roleSTS, "result", "AccessDenied"); got < 1 {
		t.Errorf("role_assume_total{untrusting,AccessDenied} = %v", got)
	}
	rd := w.r.Readiness(w.now)
	for _, s := range rd.Sources {
		if s.Identity == roleSTS && !strings.Contains(s.LastError, "AccessDenied") {
			t.Errorf("/readyz source %+v does not say why", s)
		}
	}
	mfs, _ := w.reg.Gather()
	exposition := fmt.Sprint(mfs)
	for what, out := range map[string]string{"log": w.log.String(), "errors": all, "metrics": string(exposition)} {
		if strings.Contains(out, motoSecret) || strings.Contains(out, "SessionToken") || strings.Contains(out, "SecretAccessKey") {
			t.Errorf("the %s holds a secret", what)
		}
	}
	for _, h := range scopes[roleA] {
		for _, tok := range h.held() {
			if strings.Contains(w.log.String(), tok.Password) || strings.Contains(all, tok.Password) {
				t.Error("a password reached the log or an error")
			}
		}
	}
}

// The session is reused until it expires, and renewed then: sessions that
// STS hands out already expired are assumed again at every refresh (where
// TestResolver_Moto's are assumed once for three).
func TestResolver_Moto_SessionRenewedWhenExpired(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "")
	w.proxy.ExpireSessions()
	h := &holder{}
	w.r.AddScope(refresher.Scope{Name: "team-a", Identity: roleA, Target: h})
	for n := 1; n <= 3; n++ {
		if err := w.refresh(t, n); err != nil {
			t.Fatalf("refresh %d: %v", n, err)
		}
	}
	// The regions' fetches of one refresh run at once and share one call.
	if got := w.proxy.Assumes(roleA); got != 3 {
		t.Errorf("%d AssumeRole calls for sessions that expire at once, want one per refresh (3)", got)
	}
	if got := w.proxy.Tokens(roleA); got != 3*len(regions) {
		t.Errorf("%d GetAuthorizationToken calls, want %d", got, 3*len(regions))
	}
	if _, ext := w.proxy.Sessions(roleA); ext[0] != "" {
		t.Errorf("external id %q sent, want none (AWS_ROLE_EXTERNAL_ID unset)", ext[0])
	}
	if toks := h.held(); len(toks) != 2 || toks[0].Identity != roleA {
		t.Errorf("the scope holds %v", toks)
	}
}

// Past MaxRoles the role asked for least recently is forgotten; asked again
// it gets a new session.
func TestResolver_MaxRoles(t *testing.T) {
	t.Parallel()
	allow, _ := tenantrole.ParseAllowList([]string{"arn:aws:iam::111111111111:role/*"})
	made := 0
	res := &tenantrole.Resolver{Allow: allow, MaxRoles: 2, NewSources: func(aws.Config, string) []refresher.Source {
		made++
		return nil
	}}
	for _, name := range []string{"a", "b", "a", "c", "a", "b"} {
		if _, err := res.Sources("arn:aws:iam::111111111111:role/"+name, "ns"); err != nil {
			t.Fatal(err)
		}
	}
	// a, b, (a kept), c evicts b, (a kept), b evicts c.
	if made != 4 {
		t.Errorf("%d sessions made, want 4", made)
	}
}

// value is the value of the series name{labels}; the test fails without one.
func (w *world) value(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := w.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if mf.GetName() == name && maps.Equal(got, want) {
				return m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}
