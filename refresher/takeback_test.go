package refresher_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// A scope whose identity is refused gets no credential at all, never the
// daemon's own: it is planned with no token, so its target can take back
// what it held before (a namespace that held the daemon's own credential and
// now names a role AWS_ALLOWED_ROLE_ARNS does not allow), and it fails with
// the refusal. The take-back is written once, not at every retry.
func TestRefresher_RefusedIdentityPlannedWithNoToken(t *testing.T) {
	t.Parallel()
	own := sourceA()
	e := newEnv(t, []refresher.Source{own})
	tenants(e, []string{hostA}) // none allowed
	tg := &fakeTarget{}
	var emptied int
	tg.PlanFunc = func(_ context.Context, in refresher.Input) (refresher.Plan, error) {
		if len(in.Tokens) > 0 {
			return refresher.Plan{Writes: []refresher.Write{tg.write("obj", in.Tokens)}}, nil
		}
		return refresher.Plan{Writes: []refresher.Write{{What: "secret", Object: "obj", Detail: "none", Action: refresher.ResultUpdated,
			Apply: func(context.Context) (refresher.Result, error) {
				tg.mu.Lock()
				defer tg.mu.Unlock()
				emptied++
				tg.holds = nil
				return refresher.ResultUpdated, nil
			}}}}, nil
	}
	e.r.AddScope(refresher.Scope{Name: "team-x", Group: "namespaces", Target: tg})
	if err := e.r.RunOnce(t.Context()); err != nil || tg.held(hostA) == "" {
		t.Fatalf("RunOnce = %v; the scope holds %q", err, tg.held(hostA))
	}
	e.r.AddScope(refresher.Scope{Name: "team-x", Group: "namespaces", Identity: "arn:aws:iam::999999999999:role/x", Target: tg})
	err := e.r.RunDue(t.Context())
	if err == nil || !strings.Contains(err.Error(), "AWS_ALLOWED_ROLE_ARNS") {
		t.Fatalf("RunDue = %v, want the refusal", err)
	}
	if got := tg.held(hostA); got != "" || emptied != 1 {
		t.Errorf("after the refusal the scope holds %q (taken back %d times), want nothing, taken back once", got, emptied)
	}
	for range 3 {
		e.clock.Set(e.r.NextDue())
		_ = e.r.RunDue(t.Context())
	}
	if emptied != 1 {
		t.Errorf("taken back %d times over the retries, want once (the write is remembered)", emptied)
	}
	if rd := e.r.Readiness(e.clock.Now()); rd.Ready || !strings.Contains(rd.Reason, "AWS_ALLOWED_ROLE_ARNS") {
		t.Errorf("readiness %v: %s", rd.Ready, rd.Reason)
	}
}

// Input.TakeBack is set until a scope is first written in full with its
// identity, again once its identity changes, and while it is refused: a
// target takes another identity's hosts out then, and otherwise keeps a host
// whose token is only late.
func TestRefresher_TakeBackUntilSettled(t *testing.T) {
	t.Parallel()
	const role = "arn:aws:iam::111111111111:role/team-a"
	e := newEnv(t, []refresher.Source{sourceA()})
	tenants(e, []string{hostB}, role)
	tg := &fakeTarget{}
	var asked []bool
	tg.PlanFunc = func(_ context.Context, in refresher.Input) (refresher.Plan, error) {
		asked = append(asked, in.TakeBack)
		return refresher.Plan{Writes: []refresher.Write{tg.write("obj", in.Tokens)}}, nil
	}
	pass := func(sc refresher.Scope) {
		t.Helper()
		e.r.AddScope(sc)
		e.clock.Set(e.r.NextDue())
		_ = e.r.RunDue(t.Context())
	}
	sc := refresher.Scope{Name: "team", Group: "namespaces", Target: tg}
	pass(sc) // new: take back
	pass(sc) // written in full before: keep
	sc.Identity = role
	pass(sc) // identity changed: take back
	pass(sc) // settled again: keep
	sc.Identity = "arn:aws:iam::999999999999:role/not-allowed"
	pass(sc) // refused: take back
	if want := []bool{true, false, true, false, true}; !slices.Equal(asked, want) {
		t.Errorf("TakeBack at each plan = %v, want %v", asked, want)
	}
}
