package refresher_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

const (
	roleA = "arn:aws:iam::111122223333:role/team-a"
	roleB = "arn:aws:iam::444455556666:role/team-b"
)

// tenants makes Sources hand out one fake source per allowed role and refuse
// the others.
func tenants(e *env, hosts []string, allowed ...string) map[string]*fakeSource {
	srcs := map[string]*fakeSource{}
	for _, role := range allowed {
		srcs[role] = &fakeSource{region: "us-east-1", hosts: hosts, identity: role, life: 12 * time.Hour, clock: e.clock}
	}
	e.r.Sources = func(identity, scope string) ([]refresher.Source, error) {
		if s := srcs[identity]; s != nil {
			return []refresher.Source{s}, nil
		}
		return nil, fmt.Errorf("namespace %s: annotation rancher-ecr-credentials/role-arn names %s, which AWS_ALLOWED_ROLE_ARNS does not allow", scope, identity)
	}
	return srcs
}

// A namespace naming a role that is not allowed gets no credential at all,
// never the daemon's own; it fails with the refusal, and costs no ECR call.
func TestRefresher_RefusedIdentity(t *testing.T) {
	t.Parallel()
	own := sourceA()
	e := newEnv(t, []refresher.Source{own}, scope("plain", &fakeTarget{}))
	tenants(e, []string{hostA}) // none allowed
	bad := &fakeTarget{}
	e.r.AddScope(refresher.Scope{Name: "team-x", Group: "namespaces", Identity: "arn:aws:iam::999999999999:role/x", Target: bad})
	err := e.r.RunOnce(t.Context())
	if err == nil || !strings.Contains(err.Error(), "AWS_ALLOWED_ROLE_ARNS") || !strings.Contains(err.Error(), "scope team-x") {
		t.Fatalf("err = %v, want the refusal of team-x", err)
	}
	if bad.held(hostA) != "" || bad.checked() != 0 {
		t.Error("a refused identity's scope was written a token")
	}
	rd := e.r.Readiness(e.clock.Now())
	if rd.Ready || !strings.Contains(rd.Reason, "AWS_ALLOWED_ROLE_ARNS") {
		t.Errorf("readiness = %v (%s), want not ready naming the refusal", rd.Ready, rd.Reason)
	}
	// Nothing but another AddScope (another role) or a restart changes a
	// refusal: it is said again at RETRY_MAX_INTERVAL, not every 30 seconds,
	// never with the daemon's own tokens.
	runs := e.simulate(t, "@every 6h", t0.Add(time.Hour), nil)
	if n := e.count("level=error", "scope=team-x"); n > 5 {
		t.Errorf("%d failure lines of the refused scope in an hour (%d runs), want at most one per RETRY_MAX_INTERVAL", n, runs)
	}
	if bad.held(hostA) != "" || bad.applied() != 1 || own.calls.Load() != 2 {
		t.Errorf("after retries: %d applies of the refused scope (holding %q), %d fetches; want 1 (taking back, no token) and 2 (RunOnce, Run's first run)", bad.applied(), bad.held(hostA), own.calls.Load())
	}
	// The role annotation fixed: written at once, with the role's tokens.
	srcs := tenants(e, []string{hostA}, roleA)
	e.r.AddScope(refresher.Scope{Name: "team-x", Group: "namespaces", Identity: roleA, Target: bad})
	if err := e.r.RunDue(t.Context()); err != nil {
		t.Fatalf("RunDue after the fix = %v", err)
	}
	if got := bad.heldToken(hostA); got.Identity != roleA || srcs[roleA].calls.Load() != 1 {
		t.Errorf("after the fix the scope holds %q's token, want %q's", got.Identity, roleA)
	}
}

// Tokens are fetched once per identity and region per refresh, whatever the
// number of scopes of each, and every scope holds its own identity's.
func TestRefresher_TwoTenants(t *testing.T) {
	t.Parallel()
	own := sourceA()
	e := newEnv(t, []refresher.Source{own})
	srcs := tenants(e, []string{hostA}, roleA, roleB)
	tgs := map[string][]*fakeTarget{}
	for i := range 15 {
		role := []string{"", roleA, roleB}[i%3]
		tg := &fakeTarget{}
		tgs[role] = append(tgs[role], tg)
		e.r.AddScope(refresher.Scope{Name: fmt.Sprint("ns", i), Group: "namespaces", Identity: role, Target: tg})
	}
	for refresh := int64(1); refresh <= 3; refresh++ {
		if refresh == 1 {
			if err := e.r.RunOnce(t.Context()); err != nil {
				t.Fatal(err)
			}
		} else {
			e.clock.Set(e.r.NextDue())
			if err := e.r.RunDue(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		for role, s := range map[string]*fakeSource{"": own, roleA: srcs[roleA], roleB: srcs[roleB]} {
			if got := s.calls.Load(); got != refresh {
				t.Errorf("refresh %d: identity %q fetched %d times, want %d", refresh, role, got, refresh)
			}
			for i, tg := range tgs[role] {
				if got := tg.heldToken(hostA); got.Identity != role || got.Password != password(hostA, role, refresh, 0) {
					t.Errorf("refresh %d: scope %d of %q holds %s's token %q", refresh, i, role, got.Identity, got.Password)
				}
			}
		}
	}
}

// Nothing secret in logs, errors or /readyz, whatever fails: passwords the
// size of ECR's, errors quoting nothing of them.
func TestRefresher_NoSecretsInOutput(t *testing.T) {
	t.Parallel()
	src := &fakeSource{region: "us-east-1", hosts: []string{hostA, hostB}, life: 12 * time.Hour, pwLen: 2400}
	failing := &fakeTarget{ApplyFunc: func(context.Context, int) (refresher.Result, error) { return "", tempErr("500") }}
	panicking := &fakeTarget{PlanFunc: func(context.Context, refresher.Input) (refresher.Plan, error) { panic("bug") }}
	e := newEnv(t, []refresher.Source{src}, scope("ok", &fakeTarget{}), scope("failing", failing), scope("panicking", panicking))
	e.r.AddScope(refresher.Scope{Name: "refused", Identity: roleA, Target: &fakeTarget{}})
	err := e.r.RunOnce(t.Context())
	e.r.DryRun = true
	err = errors.Join(err, e.r.RunOnce(t.Context()))
	rd, _ := json.Marshal(e.r.Readiness(e.clock.Now()))
	var secrets []string
	for n := int64(1); n <= src.calls.Load(); n++ {
		for _, h := range src.hosts {
			pw := password(h, "", n, 2400)
			secrets = append(secrets, pw, pw[:40])
		}
	}
	for what, out := range map[string]string{"log": e.log.String(), "error": err.Error(), "readiness": string(rd)} {
		noSecrets(t, what, out, secrets...)
	}
}

// ECR stops returning a host it returned (the account behind the caller's
// default registry changed): the pairs of that host fail, each saying so, are
// retried with backoff instead of at every turn of the loop, and after a
// whole token lifetime are dropped with one line; readiness recovers.
func TestRefresher_VanishedHost(t *testing.T) {
	t.Parallel()
	const hostX = "999988887777.dkr.ecr.us-east-1.amazonaws.com"
	src := &fakeSource{region: "us-east-1", life: 12 * time.Hour}
	tgs := []*fakeTarget{{}, {}, {}}
	e := newEnv(t, []refresher.Source{src}, scope("a", tgs[0]), scope("b", tgs[1]), scope("c", tgs[2]))
	src.FetchFunc = func(_ context.Context, n int64) refresher.Fetched {
		src.hosts = []string{hostA}
		if e.clock.Now().After(t0.Add(time.Hour)) {
			src.hosts = []string{hostX}
		}
		return src.answer(n)
	}
	runs := e.simulate(t, "@every 6h", t0.Add(36*time.Hour), nil)
	if n := src.calls.Load(); n > 20 {
		t.Errorf("%d fetches in 36h: the vanished host is retried too often", n)
	}
	if runs > 300 {
		t.Errorf("%d runs in 36h: the vanished host is retried too often", runs)
	}
	for _, p := range e.r.Status() {
		if p.Host == hostA {
			t.Errorf("the vanished host is still kept at +36h: %+v", p)
		}
	}
	if got := e.count("it is no longer refreshed"); got != 1 {
		t.Errorf("%d lines say the vanished host is dropped, want 1:\n%s", got, e.log)
	}
	if got := e.count("ecr no longer returns a token for this registry", "scope=b"); got == 0 {
		t.Errorf("the failing pair of scope b is never logged:\n%s", e.log)
	}
	for i, tg := range tgs {
		if tg.held(hostX) == "" {
			t.Errorf("scope %d: the new account's host was not written", i)
		}
	}
	if rd := e.r.Readiness(e.clock.Now()); !rd.Ready {
		t.Errorf("not ready once the vanished host is forgotten: %s", rd.Reason)
	}
	t.Logf("%d runs, %d fetches in 36h", runs, src.calls.Load())
}

// A host one identity stops getting while another still holds it stays
// managed: a scope planning with a token in hand is never told its host is
// someone else's.
func TestRefresher_VanishedHostStillManagedByAnother(t *testing.T) {
	t.Parallel()
	own := sourceA()
	var mu sync.Mutex
	var wrong []string
	checking := func(inner *fakeTarget) *fakeTarget {
		return &fakeTarget{PlanFunc: func(ctx context.Context, want refresher.Input) (refresher.Plan, error) {
			for _, tk := range want.Tokens {
				if !want.Managed(tk.Host) {
					mu.Lock()
					wrong = append(wrong, tk.Host)
					mu.Unlock()
				}
			}
			return inner.Plan(ctx, want)
		}}
	}
	// The own scope keeps failing, so it is planned often.
	flaky := &fakeTarget{ApplyFunc: func(context.Context, int) (refresher.Result, error) { return "", tempErr("503") }}
	e := newEnv(t, []refresher.Source{own}, scope("own", checking(flaky)))
	srcs := tenants(e, []string{hostA}, roleA)
	tenant := srcs[roleA]
	tenant.FetchFunc = func(_ context.Context, n int64) refresher.Fetched {
		if e.clock.Now().After(t0.Add(time.Hour)) {
			tenant.hosts = []string{hostB}
		}
		return tenant.answer(n)
	}
	e.r.AddScope(refresher.Scope{Name: "team-a", Identity: roleA, Target: checking(&fakeTarget{})})
	e.simulate(t, "@every 6h", t0.Add(30*time.Hour), nil)
	if !strings.Contains(e.log.String(), "it is no longer refreshed") {
		t.Fatalf("the tenant's vanished host was never dropped:\n%s", e.log)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(wrong) > 0 {
		t.Errorf("%d plans were told a host in hand is not managed: %v", len(wrong), wrong[:1])
	}
}

// A scope found by Discover that names a tenant identity no scope used before
// is written in the run that found it: its tokens are fetched then
// (RANCHER_PROJECTS=all with a project's role annotation, under --once).
func TestRefresher_DiscoveredTenantWrittenInTheSameRun(t *testing.T) {
	t.Parallel()
	own := sourceA()
	e := newEnv(t, []refresher.Source{own})
	srcs := tenants(e, []string{hostA}, roleA)
	tg := &fakeTarget{}
	e.r.Discover = func(context.Context) ([]refresher.Scope, error) {
		return []refresher.Scope{{Name: "c-1:p-team", Identity: roleA, Target: tg}}, nil
	}
	if err := e.r.RunOnce(t.Context()); err != nil {
		t.Fatalf("RunOnce = %v", err)
	}
	if got := tg.heldToken(hostA); got.Identity != roleA {
		t.Errorf("the discovered tenant scope holds %q's token %q, want %q's", got.Identity, got.Password, roleA)
	}
	if n := srcs[roleA].calls.Load(); n != 1 {
		t.Errorf("the tenant's source was asked %d times, want 1", n)
	}
}
