package refresher_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

func TestRefresher_Run_BadSchedule(t *testing.T) {
	t.Parallel()
	e := newEnv(t, []refresher.Source{sourceA()})
	if err := e.r.Run(t.Context(), "every day"); err == nil || !strings.Contains(err.Error(), `"every day"`) {
		t.Fatalf("Run = %v, want the bad cron spec named", err)
	}
}

// At start, a schedule that alone would let tokens age past half their life
// is said once, with that the freshness guard covers it.
func TestRefresher_Run_ScheduleGapNote(t *testing.T) {
	t.Parallel()
	for spec, wantNote := range map[string]bool{"@every 6h": false, "@every 4h": false, "0 3 * * *": true, "@every 7h": true} {
		t.Run(strings.ReplaceAll(spec, " ", "_"), func(t *testing.T) {
			t.Parallel()
			src := sourceA()
			e := newEnv(t, []refresher.Source{src}, scope("a", &fakeTarget{}))
			e.simulate(t, spec, t0.Add(time.Minute), nil)
			if got := e.count("the freshness guard refreshes each registry in time regardless"); got != map[bool]int{false: 0, true: 1}[wantNote] {
				t.Errorf("%s: %d notes, want note %v:\n%s", spec, got, wantNote, e.log)
			}
		})
	}
}

// While the first run has written one scope but not another, the daemon is
// not ready: every (registry, scope) pair must hold a credential, not just
// those written so far.
func TestRefresher_NotReadyUntilEveryScopeIsWritten(t *testing.T) {
	t.Parallel()
	src := sourceA()
	g := newGate()
	fast := &fakeTarget{}
	e := newEnv(t, []refresher.Source{src}, scope("fast", fast), scope("slow", &fakeTarget{ApplyFunc: g.applyFunc}))
	done := make(chan error, 1)
	go func() { done <- e.r.RunOnce(t.Context()) }()
	testwait.Recv(t, g.entered)
	testwait.For(t, testwait.Limit, "the fast scope written", func() bool { return fast.held(hostA) != "" && len(e.r.Status()) == 1 })
	if rd := e.r.Readiness(t0); rd.Ready || !strings.Contains(rd.Reason, "scope slow") {
		t.Errorf("readiness with scope slow unwritten = %v (%s), want not ready naming it", rd.Ready, rd.Reason)
	}
	close(g.release)
	if err := testwait.Recv(t, done); err != nil {
		t.Fatal(err)
	}
	if rd := e.r.Readiness(t0); !rd.Ready {
		t.Errorf("not ready after every scope was written: %s", rd.Reason)
	}
}

// No scope at all: the run fails, saying why (ExplainNoScopes names what
// selected nothing), and readiness says so too.
func TestRefresher_NoScopes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, []refresher.Source{sourceA()})
	e.r.ExplainNoScopes = func() string { return `KUBE_NAMESPACE_SELECTOR "team=a" matches no namespace` }
	err := e.r.RunOnce(t.Context())
	if err == nil || !strings.Contains(err.Error(), "matches no namespace") {
		t.Errorf("RunOnce = %v, want the explanation", err)
	}
	if rd := e.r.Readiness(t0); rd.Ready || !strings.Contains(rd.Reason, "matches no namespace") {
		t.Errorf("readiness = %v (%s)", rd.Ready, rd.Reason)
	}
}

// Scopes found by Discover replace those found before: a project gone is
// forgotten (its pairs, its state), a new one written; what it holds is left.
func TestRefresher_Discover(t *testing.T) {
	t.Parallel()
	src := sourceA()
	a, b := &fakeTarget{}, &fakeTarget{}
	found := []refresher.Scope{{Name: "c-1:p-a", Target: a}}
	e := newEnv(t, []refresher.Source{src}, scope("1a5", &fakeTarget{}))
	e.r.Discover = func(context.Context) ([]refresher.Scope, error) { return found, nil }
	if err := e.r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	found = []refresher.Scope{{Name: "c-1:p-b", Target: b}}
	e.r.Wake()
	if err := e.r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(e.r.Scopes(), ","); got != "1a5,c-1:p-b" {
		t.Errorf("scopes = %s, want the configured one and the one found now", got)
	}
	if a.applied() != 1 || b.applied() != 1 {
		t.Errorf("applies a=%d b=%d, want 1 each", a.applied(), b.applied())
	}
	if e.count("scope no longer found", `scope="c-1:p-a"`) != 1 {
		t.Errorf("the project gone is not said once:\n%s", e.log)
	}
}
