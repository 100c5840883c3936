package refresher_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// start runs the daemon loop with a timer that never fires: only the first
// run, Wake and AddScope make it write. It returns a count of ended runs and
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
	e.r.NewTimer = func(time.Duration) (<-chan time.Time, func() bool) { return nil, func() bool { return true } }
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
	src := &fakeSource{region: "us-east-1", hosts: []string{hostA}, life: 12 * time.Hour}
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
	src := &fakeSource{region: "us-east-1", hosts: []string{hostA}, life: 12 * time.Hour}
	g := newGate()
	tg := &fakeTarget{ApplyFunc: g.applyFunc}
	var plans atomic.Int64
	counting := &fakeTarget{PlanFunc: func(ctx context.Context, in refresher.Input) (refresher.Plan, error) {
		plans.Add(1)
		return tg.Plan(ctx, in)
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
