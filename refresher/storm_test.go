package refresher_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// refusing is one namespace's target that a cluster-wide cause (a missing
// RBAC grant) refuses while refuse is set, naming the namespace as the API
// server does; why, when set, gives a namespace its own cause instead.
type refusing struct {
	ns      string
	refuse  *atomic.Bool
	applies *atomic.Int64
	why     func(ns string) error
}

func (f *refusing) Plan(_ context.Context, in refresher.Input) (refresher.Plan, error) {
	return refresher.Plan{Writes: []refresher.Write{{What: "secret", Object: f.ns + "/ecr-credentials", Tokens: in.Tokens,
		Apply: func(context.Context) (refresher.Result, error) {
			f.applies.Add(1)
			if f.why != nil {
				if err := f.why(f.ns); err != nil {
					return "", err
				}
			}
			if f.refuse.Load() {
				return "", refresher.Permanent(fmt.Errorf(`create secrets %s/ecr-credentials: secrets is forbidden: User "system:serviceaccount:ops:ecr" cannot create resource "secrets" in API group "" in the namespace %q: add the grant`, f.ns, f.ns))
			}
			return refresher.ResultCreated, nil
		}}}}, nil
}

// refusedEnv is n namespaces of one group, refused alike while refuse is set.
func refusedEnv(t *testing.T, n int) (e *env, refuse *atomic.Bool, applies *atomic.Int64, tgs []*refusing) {
	t.Helper()
	refuse, applies = &atomic.Bool{}, &atomic.Int64{}
	refuse.Store(true)
	src := sourceA()
	var scopes []refresher.Scope
	for i := range n {
		tg := &refusing{ns: fmt.Sprintf("team-%04d", i), refuse: refuse, applies: applies}
		tgs = append(tgs, tg)
		scopes = append(scopes, refresher.Scope{Name: tg.ns, Group: "namespaces", Target: tg})
	}
	return newEnv(t, []refresher.Source{src}, scopes...), refuse, applies, tgs
}

// runUntil runs what is due, on the fake clock, until end.
func (e *env) runUntil(t *testing.T, end time.Time) {
	t.Helper()
	for {
		next := e.r.NextDue()
		if next.IsZero() || next.After(end) {
			e.clock.Set(end)
			return
		}
		e.clock.Set(next)
		_ = e.r.RunDue(t.Context())
	}
}

// A missing grant refuses 1,000 namespaces alike: one line names the cause
// (one scope's failure, then how many more failed alike), not one per
// namespace; one probe namespace is retried every RefusedRetryInterval, not
// all 1,000 (issue 22, item 6: 333 refused writes a second at 10,000). Once
// the grant is added, every namespace is written within a minute (issue 18,
// item 4), with no ECR call.
func TestRefresher_RefusedAlike_OneProbeThenAllWithinAMinute(t *testing.T) {
	t.Parallel()
	const n = 1000
	e, refuse, applies, _ := refusedEnv(t, n)
	if err := e.r.RunOnce(t.Context()); err == nil {
		t.Fatal("a refused run succeeded")
	}
	if got := applies.Load(); got != n {
		t.Fatalf("first run: %d writes, want %d", got, n)
	}
	if got := e.count("level=error"); got != 2 {
		t.Errorf("first run: %d error lines, want 2 (one namespace's failure, then how many failed alike):\n%s", got, lastLog(e, 10))
	}
	if e.count("level=error", `msg="more scopes failed alike"`, "more=999", "scopes=1000", `cannot create resource \"secrets\"`, `namespace \"…\"`) != 1 {
		t.Errorf("no line saying 999 more failed alike, naming the cause:\n%s", lastLog(e, 10))
	}
	if e.count("level=warning", "refused alike", "target=namespaces") != 1 {
		t.Errorf("no line saying the namespaces are refused alike and probed:\n%s", lastLog(e, 10))
	}

	// Five minutes refused: one write per RefusedRetryInterval, no new error line.
	start := e.clock.Now()
	errLines := e.count("level=error")
	e.runUntil(t, start.Add(5*time.Minute))
	probes := applies.Load() - n
	if want := int64(5 * time.Minute / refresher.RefusedRetryInterval); probes < want-1 || probes > want+1 {
		t.Errorf("%d writes in 5 minutes of refusal, want about %d (one probe every %s)", probes, want, refresher.RefusedRetryInterval)
	}
	if got := e.count("level=error"); got != errLines {
		t.Errorf("%d new error lines while the same refusal repeats, want none:\n%s", got-errLines, lastLog(e, 10))
	}
	if rd := e.r.Readiness(e.clock.Now()); rd.Ready || !strings.Contains(rd.Reason, "forbidden") {
		t.Errorf("readiness while refused: %v %q", rd.Ready, rd.Reason)
	}

	refuse.Store(false) // the grant is added
	gone := e.clock.Now()
	e.runUntil(t, gone.Add(time.Minute))
	if rd := e.r.Readiness(e.clock.Now()); !rd.Ready {
		t.Errorf("not ready a minute after the grant was added: %s", rd.Reason)
	}
	if got := e.count("level=info", "the others are retried now", "scopes=999"); got != 1 {
		t.Errorf("no line saying the 999 others are retried:\n%s", lastLog(e, 5))
	}
}

// The parked namespaces are still retried on their own, at RetryMaxInterval:
// a cause that goes away in one namespace only (its foreign Secret deleted)
// heals it within that, even while the probe stays refused.
func TestRefresher_RefusedAlike_ParkedRetriedAtMaxInterval(t *testing.T) {
	t.Parallel()
	e, _, applies, tgs := refusedEnv(t, 100)
	fixed := tgs[len(tgs)-1]
	fixed.refuse = &atomic.Bool{}
	fixed.refuse.Store(true)
	_ = e.r.RunOnce(t.Context())
	fixed.refuse.Store(false) // its own cause went away; the probe's did not
	before := applies.Load()
	e.runUntil(t, e.clock.Now().Add(e.r.RetryMaxInterval))
	if got := applies.Load() - before; got < 99 {
		t.Errorf("%d writes in %s, want each of the 99 parked namespaces retried", got, e.r.RetryMaxInterval)
	}
	for _, p := range e.r.Status() {
		if p.Scope == fixed.ns && p.LastSuccess.IsZero() {
			t.Errorf("%s not written within %s of its cause going away: %s", fixed.ns, e.r.RetryMaxInterval, p.LastError)
		}
	}
}

// Fewer than ParkMinScopes refused alike, or a minority of the group: each is
// retried every RefusedRetryInterval on its own.
func TestRefresher_RefusedAlike_FewAreEachRetried(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name            string
		scopes, refused int
	}{
		{"Few", refresher.ParkMinScopes - 1, refresher.ParkMinScopes - 1},
		{"Minority", 100, 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, _, applies, tgs := refusedEnv(t, tc.scopes)
			for i, tg := range tgs {
				if i >= tc.refused {
					tg.why = func(string) error { return nil }
					tg.refuse = &atomic.Bool{}
				}
			}
			_ = e.r.RunOnce(t.Context())
			before := applies.Load()
			e.runUntil(t, e.clock.Now().Add(refresher.RefusedRetryInterval))
			if got := applies.Load() - before; got != int64(tc.refused) {
				t.Errorf("%d retries after %s, want each of the %d refused retried", got, refresher.RefusedRetryInterval, tc.refused)
			}
			if e.count("refused alike") != 0 {
				t.Errorf("parked:\n%s", lastLog(e, 5))
			}
		})
	}
}

// The probe going (its namespace deleted) or failing otherwise releases the
// parked namespaces at once: they are retried, and park again behind a new
// probe while the cause lasts.
func TestRefresher_RefusedAlike_ProbeGoneOrOtherwise(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"Removed", "FailsOtherwise"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			e, _, applies, tgs := refusedEnv(t, 50)
			_ = e.r.RunOnce(t.Context())
			probe := probeName(t, e)
			switch how {
			case "Removed":
				e.r.RemoveScope(probe)
			case "FailsOtherwise":
				for _, tg := range tgs {
					if tg.ns == probe {
						tg.why = func(string) error { return refresher.Permanent(errors.New("secret is a copy Rancher made")) }
					}
				}
				e.clock.Set(e.r.NextDue())
				_ = e.r.RunDue(t.Context()) // the probe alone
			}
			before := applies.Load()
			if next := e.r.NextDue(); next.After(e.clock.Now()) {
				t.Fatalf("the parked namespaces are due at %s, want now (%s)", next, e.clock.Now())
			}
			_ = e.r.RunDue(t.Context())
			if got := applies.Load() - before; got != 49 {
				t.Errorf("%d released writes, want the 49 others", got)
			}
			e.newLog()
			e.runUntil(t, e.clock.Now().Add(refresher.RefusedRetryInterval))
			if got := applies.Load() - before - 49; got > 2 {
				t.Errorf("%d writes in the next %s: not parked again behind a new probe", got, refresher.RefusedRetryInterval)
			}
		})
	}
}

// probeName is the probe the parking line names.
func probeName(t *testing.T, e *env) string {
	t.Helper()
	for l := range strings.SplitSeq(e.log.String(), "\n") {
		if strings.Contains(l, "refused alike") {
			if _, rest, ok := strings.Cut(l, "probe="); ok {
				name, _, _ := strings.Cut(rest, " ")
				return name
			}
		}
	}
	t.Fatalf("no probe named:\n%s", lastLog(e, 10))
	return ""
}

// A failure repeated at every retry (a Rancher copy, a foreign Secret) is
// logged at Error once, when it is new or its text changes, and at Debug
// while it repeats; so is a source's.
func TestRefresher_RepeatedFailureLoggedOnce(t *testing.T) {
	t.Parallel()
	src := sourceA()
	why := "secret team-a/ecr-credentials is a copy Rancher made of a project Secret"
	tg := &fakeTarget{ApplyFunc: func(context.Context, int) (refresher.Result, error) {
		if why == "" {
			return "", nil
		}
		return "", refresher.Permanent(errors.New(why))
	}}
	e := newEnv(t, []refresher.Source{src}, scope("team-a", tg))
	errorsAfter := func(what string, want int) {
		t.Helper()
		if got := e.count("level=error"); got != want {
			t.Errorf("%s: %d error lines, want %d:\n%s", what, got, want, e.log)
		}
	}
	_ = e.r.RunOnce(t.Context())
	errorsAfter("first run", 1)
	for range 4 {
		e.clock.Set(e.r.NextDue())
		_ = e.r.RunDue(t.Context())
	}
	errorsAfter("four retries", 1)
	if got := e.count("level=debug", "copy Rancher made"); got != 4 {
		t.Errorf("%d debug lines of the repeats, want 4:\n%s", got, e.log)
	}
	if got := e.count("level=warning", "run finished with failures"); got != 1 {
		t.Errorf("%d run summaries at warning, want 1 (the retries met only repeats):\n%s", got, e.log)
	}
	why = "secret team-a/ecr-credentials exists and is not managed by this daemon"
	e.clock.Set(e.r.NextDue())
	_ = e.r.RunDue(t.Context())
	errorsAfter("a new text", 2)
	why = ""
	e.clock.Set(e.r.NextDue())
	_ = e.r.RunDue(t.Context())
	why = "secret team-a/ecr-credentials exists and is not managed by this daemon"
	_ = e.r.RunOnce(t.Context())
	errorsAfter("the same text after a success", 3)

	// A source failing alike at every retry.
	e2 := newEnv(t, []refresher.Source{&fakeSource{region: "eu-west-1", FetchFunc: func(context.Context, int64) refresher.Fetched {
		return refresher.Fetched{Err: refresher.Permanent(errors.New("AccessDeniedException: not authorized to perform ecr:GetAuthorizationToken"))}
	}}}, scope("a", &fakeTarget{}))
	_ = e2.r.RunOnce(t.Context())
	for range 3 {
		e2.clock.Set(e2.r.NextDue())
		_ = e2.r.RunDue(t.Context())
	}
	if got, debug := e2.count("level=error", "ecr token fetch failed"), e2.count("level=debug", "ecr token fetch failed"); got != 1 || debug != 3 {
		t.Errorf("fetch failures: %d at error, %d at debug, want 1 and 3:\n%s", got, debug, e2.log)
	}
}

// A namespace added while its group is parked fails like the others: no
// error line of its own, parked behind the probe.
func TestRefresher_RefusedAlike_NewScopeJoins(t *testing.T) {
	t.Parallel()
	e, refuse, applies, _ := refusedEnv(t, 40)
	_ = e.r.RunOnce(t.Context())
	errLines := e.count("level=error")
	late := &refusing{ns: "team-late", refuse: refuse, applies: applies}
	e.r.AddScope(refresher.Scope{Name: late.ns, Group: "namespaces", Target: late})
	_ = e.r.RunDue(t.Context())
	if got := e.count("level=error"); got != errLines+1 || e.count("more=1", "scopes=41") != 1 {
		t.Errorf("the late namespace: %d new error lines, want only the 'more failed alike' one:\n%s", got-errLines, lastLog(e, 5))
	}
	before := applies.Load()
	e.runUntil(t, e.clock.Now().Add(2*refresher.RefusedRetryInterval))
	if got := applies.Load() - before; got > 2 {
		t.Errorf("%d writes in a minute, want the probe's only", got)
	}
}

func lastLog(e *env, n int) string {
	lines := strings.Split(strings.TrimSpace(e.log.String()), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
