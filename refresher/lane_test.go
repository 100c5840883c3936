package refresher_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// start runs the daemon loop with a timer that fires only when it is asked to
// wait for nothing (something is due now), and records every wait asked for:
// only the first run, what is due at once, Wake and AddScope make it write. It returns a count of ended runs and
// a stop that waits for Run to return.
func (e *env) start(t testing.TB) (runs *atomic.Int64, stop func()) {
	t.Helper()
	runs = &atomic.Int64{}
	prev := e.r.OnRunDone
	e.r.OnRunDone = func(err error) {
		runs.Add(1)
		if prev != nil {
			prev(err)
		}
	}
	e.r.NewTimer = func(d time.Duration) (<-chan time.Time, func() bool) {
		e.mu.Lock()
		e.sleeps = append(e.sleeps, d)
		e.mu.Unlock()
		if d > 0 {
			return nil, func() bool { return true }
		}
		c := make(chan time.Time, 1)
		c <- e.clock.Now()
		return c, func() bool { return true }
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- e.r.Run(ctx, "@every 6h") }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := testwait.Recv(t, done); err != nil {
			t.Errorf("Run = %v", err)
		}
	}
	t.Cleanup(stop)
	return runs, stop
}

// gate blocks a target's first apply until released, and says when it entered.
type gate struct{ entered, release chan struct{} }

func newGate() gate { return gate{entered: make(chan struct{}), release: make(chan struct{})} }

// applyFunc blocks the first apply (n == 1) until the gate opens.
func (g gate) applyFunc(ctx context.Context, n int) (refresher.Result, error) {
	if n != 1 {
		return "", nil
	}
	close(g.entered)
	select {
	case <-g.release:
		return "", nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// A scope added while a long run is blocked in a slow write elsewhere is
// written at once with the tokens in hand, before that run ends, and costs no
// fetch (issue 22, item 5).
func TestRefresher_AddScope_ExpressLaneBesideASlowRun(t *testing.T) {
	t.Parallel()
	src := sourceA()
	g := newGate()
	slow := &fakeTarget{ApplyFunc: g.applyFunc}
	e := newEnv(t, []refresher.Source{src}, scope("slow", slow))
	runs, stop := e.start(t)
	testwait.Recv(t, g.entered)

	fresh := &fakeTarget{}
	e.r.AddScope(refresher.Scope{Name: "new", Group: "namespaces", Target: fresh})
	testwait.For(t, testwait.Limit, "the new scope written", func() bool { return fresh.held(hostA) != "" })
	if n := runs.Load(); n != 0 {
		t.Errorf("%d runs ended before the new scope was written; want it written beside the first", n)
	}
	close(g.release)
	testwait.For(t, testwait.Limit, "the first run to end", func() bool { return runs.Load() >= 1 })
	stop()
	if got := src.calls.Load(); got != 1 {
		t.Errorf("fetches = %d, want 1: a new scope is written with the tokens in hand", got)
	}
	if got, want := fresh.held(hostA), slow.held(hostA); got != want {
		t.Errorf("the new scope holds %q, the other %q: want the same token", got, want)
	}
}

// Beside the running loop too: a scope pushed again during its write is
// planned again once that write ends (what it holds is the target's to judge:
// a write it marks Stale is applied again).
func TestRefresher_AddScope_AgainWhileWriting_Run(t *testing.T) {
	t.Parallel()
	src := sourceA()
	g := newGate()
	tg := &fakeTarget{ApplyFunc: g.applyFunc}
	var plans atomic.Int64
	counting := &fakeTarget{PlanFunc: func(ctx context.Context, want refresher.Input) (refresher.Plan, error) {
		plans.Add(1)
		return tg.Plan(ctx, want)
	}}
	sc := refresher.Scope{Name: "ns", Group: "namespaces", Target: counting}
	e := newEnv(t, []refresher.Source{src}, sc)
	_, stop := e.start(t)
	testwait.Recv(t, g.entered)
	e.r.AddScope(sc) // e.g. its Secret was deleted meanwhile
	close(g.release)
	testwait.For(t, testwait.Limit, "the scope planned again", func() bool { return plans.Load() == 2 })
	stop()
}

// A new scope whose write fails in the express lane is retried on time: the
// loop, asleep until the next refresh, wakes for the retry (a refused one
// within a minute, so readiness follows a person's fix).
func TestRefresher_AddScope_ExpressFailureRetriedOnTime(t *testing.T) {
	t.Parallel()
	src := sourceA()
	e := newEnv(t, []refresher.Source{src}, scope("a", &fakeTarget{}))
	runs, stop := e.start(t)
	testwait.For(t, testwait.Limit, "the first run", func() bool { return runs.Load() == 1 })
	g := newGate()
	refused := &fakeTarget{ApplyFunc: func(ctx context.Context, n int) (refresher.Result, error) {
		_, _ = g.applyFunc(ctx, n)
		return "", refresher.Permanent(errors.New("secret ns/ecr-credentials is someone else's"))
	}}
	e.r.AddScope(refresher.Scope{Name: "ns", Group: "namespaces", Target: refused})
	testwait.Recv(t, g.entered)
	before := len(e.slept())
	close(g.release)
	testwait.For(t, testwait.Limit, "the loop to wake for the retry", func() bool {
		for _, d := range e.slept()[before:] {
			if d <= refresher.RefusedRetryInterval {
				return true
			}
		}
		return false
	})
	stop()
}

// A new scope of a tenant identity no scope used before: its tokens are
// fetched at once, and it is written.
func TestRefresher_AddScope_NewIdentityFetchedAtOnce(t *testing.T) {
	t.Parallel()
	src := sourceA()
	e := newEnv(t, []refresher.Source{src}, scope("a", &fakeTarget{}))
	srcs := tenants(e, []string{hostA}, roleA)
	runs, stop := e.start(t)
	testwait.For(t, testwait.Limit, "the first run", func() bool { return runs.Load() == 1 })
	tg := &fakeTarget{}
	e.r.AddScope(refresher.Scope{Name: "team-a", Group: "namespaces", Identity: roleA, Target: tg})
	testwait.For(t, testwait.Limit, "the tenant's scope written", func() bool { return tg.held(hostA) != "" })
	stop()
	if got := tg.heldToken(hostA).Identity; got != roleA {
		t.Errorf("written with %q's token, want %q's", got, roleA)
	}
	if n := srcs[roleA].calls.Load(); n != 1 {
		t.Errorf("the tenant's source was asked %d times, want 1", n)
	}
}

// A scope the express lane writes does not make the loop run as well: a new
// namespace costs what that one namespace costs, not a pass over all of them.
func TestRefresher_AddScope_NoRunForAnExpressWrite(t *testing.T) {
	t.Parallel()
	src := sourceA()
	e := newEnv(t, []refresher.Source{src}, scope("a", &fakeTarget{}))
	discovers := atomic.Int64{}
	e.r.Discover = func(context.Context) ([]refresher.Scope, error) {
		discovers.Add(1)
		return nil, nil
	}
	runs, stop := e.start(t)
	testwait.For(t, testwait.Limit, "the first run", func() bool { return runs.Load() == 1 })
	var tgs []*fakeTarget
	for i := range 20 {
		tg := &fakeTarget{}
		tgs = append(tgs, tg)
		e.r.AddScope(refresher.Scope{Name: fmt.Sprint("ns", i), Group: "namespaces", Target: tg})
	}
	testwait.For(t, testwait.Limit, "every new scope written", func() bool {
		for _, tg := range tgs {
			if tg.applied() == 0 {
				return false
			}
		}
		return true
	})
	// A marker: the next Wake must be the only reason for a second run.
	e.r.Wake()
	testwait.For(t, testwait.Limit, "the woken run", func() bool { return runs.Load() >= 2 })
	stop()
	if n, d := runs.Load(), discovers.Load(); n != 2 || d != 2 {
		t.Errorf("%d runs and %d discoveries for 20 added scopes and one Wake; want 2 and 2 (the start and the Wake)", n, d)
	}
}

// A burst of new namespaces is written Workers at a time by the express lane,
// not one after the other: a slow write does not hold up the next namespace.
func TestRefresher_AddScope_BurstWrittenInParallel(t *testing.T) {
	t.Parallel()
	src := sourceA()
	e := newEnv(t, []refresher.Source{src}, scope("a", &fakeTarget{}))
	e.r.Workers = 4
	runs, stop := e.start(t)
	testwait.For(t, testwait.Limit, "the first run", func() bool { return runs.Load() == 1 })
	all := make(chan struct{})
	var entered atomic.Int64
	var tgs []*fakeTarget
	for i := range 4 {
		tg := &fakeTarget{ApplyFunc: func(ctx context.Context, _ int) (refresher.Result, error) {
			if entered.Add(1) == 4 {
				close(all)
			}
			select { // each write waits until all four are in flight
			case <-all:
				return "", nil
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}}
		tgs = append(tgs, tg)
		e.r.AddScope(refresher.Scope{Name: fmt.Sprint("ns", i), Group: "namespaces", Target: tg})
	}
	testwait.For(t, 10*time.Second, "four express writes in flight at once", func() bool { return entered.Load() == 4 })
	testwait.For(t, testwait.Limit, "the four written", func() bool {
		for _, tg := range tgs {
			if tg.held(hostA) == "" {
				return false
			}
		}
		return true
	})
	stop()
}
