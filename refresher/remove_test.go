package refresher_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// A scope removed while a retry is pending is never written again, whatever
// wakes the loop next: its retry time, a Wake, a full run (issue 18, item 1).
func TestRefresher_RemoveScope_DropsPendingRetry(t *testing.T) {
	t.Parallel()
	src := &fakeSource{region: "us-east-1", hosts: []string{hostA}, life: 12 * time.Hour}
	failing := &fakeTarget{ApplyFunc: func(context.Context, int) (refresher.Result, error) {
		return "", tempErr("503 Service Unavailable")
	}}
	e := newEnv(t, []refresher.Source{src}, scope("kept", &fakeTarget{}))
	e.r.AddScope(refresher.Scope{Name: "ns", Group: "namespaces", Target: failing})
	if err := e.r.RunOnce(t.Context()); err == nil {
		t.Fatal("RunOnce = nil, want the write's failure")
	}
	retry := e.r.NextDue()
	e.r.RemoveScope("ns")
	if next := e.r.NextDue(); next.Equal(retry) {
		t.Errorf("NextDue still %s, the removed scope's retry", retry.Sub(t0))
	}
	for name, wake := range map[string]func() error{
		"RetryTime": func() error { e.clock.Set(retry); return e.r.RunDue(t.Context()) },
		"FullRun":   func() error { return e.r.RunOnce(t.Context()) },
		"LaterDue":  func() error { e.clock.Add(time.Hour); return e.r.RunDue(t.Context()) },
	} {
		if err := wake(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if got := failing.applied(); got != 1 {
			t.Fatalf("%s: the removed scope was written again (%d applies)", name, got)
		}
	}
	for _, p := range e.r.Status() {
		if p.Scope == "ns" {
			t.Errorf("the removed scope is still reported: %+v", p)
		}
	}
}

// A scope removed while a run that took it has not reached it yet is not
// written by that run: a namespace that left the selection gets no Secret.
func TestRefresher_RemoveScope_DuringARun(t *testing.T) {
	t.Parallel()
	src := &fakeSource{region: "us-east-1", hosts: []string{hostA}, life: 12 * time.Hour}
	g := newGate()
	planned := false
	var mu sync.Mutex
	gone := &fakeTarget{PlanFunc: func(context.Context, refresher.Input) (refresher.Plan, error) {
		mu.Lock()
		planned = true
		mu.Unlock()
		return refresher.Plan{}, nil
	}}
	e := newEnv(t, []refresher.Source{src}, scope("a", &fakeTarget{ApplyFunc: g.applyFunc}), scope("b", gone))
	e.r.Workers = 1 // a, then b
	done := make(chan error, 1)
	go func() { done <- e.r.RunOnce(t.Context()) }()
	testwait.Recv(t, g.entered)
	e.r.RemoveScope("b")
	close(g.release)
	if err := testwait.Recv(t, done); err != nil {
		t.Fatalf("RunOnce = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if planned {
		t.Error("a scope removed before the run reached it was planned and written")
	}
}

// A scope removed between two of its writes gets the first only.
func TestRefresher_RemoveScope_BetweenWrites(t *testing.T) {
	t.Parallel()
	src := &fakeSource{region: "us-east-1", hosts: []string{hostA}, life: 12 * time.Hour}
	tg := &fakeTarget{}
	var e *env
	tg.PlanFunc = func(ctx context.Context, in refresher.Input) (refresher.Plan, error) {
		first := tg.write("first", in.Tokens)
		apply := first.Apply
		first.Apply = func(ctx context.Context) (refresher.Result, error) {
			e.r.RemoveScope("ns") // the namespace left the selection meanwhile
			return apply(ctx)
		}
		return refresher.Plan{Writes: []refresher.Write{first, tg.write("second", in.Tokens)}}, nil
	}
	e = newEnv(t, []refresher.Source{src}, scope("ns", tg))
	_ = e.r.RunOnce(t.Context())
	if got := tg.applied(); got != 1 {
		t.Errorf("%d writes applied, want 1: nothing more is written once the scope is removed", got)
	}
}

// A scope pushed again while its write is in flight (its pusher saw it
// change) is planned again once that write ends.
func TestRefresher_AddScope_AgainWhileWriting(t *testing.T) {
	t.Parallel()
	src := &fakeSource{region: "us-east-1", hosts: []string{hostA}, life: 12 * time.Hour}
	g := newGate()
	plans := 0
	var mu sync.Mutex
	tg := &fakeTarget{ApplyFunc: g.applyFunc}
	counting := &fakeTarget{PlanFunc: func(ctx context.Context, in refresher.Input) (refresher.Plan, error) {
		mu.Lock()
		plans++
		mu.Unlock()
		return tg.Plan(ctx, in)
	}}
	sc := refresher.Scope{Name: "ns", Group: "namespaces", Target: counting}
	e := newEnv(t, []refresher.Source{src})
	e.r.AddScope(sc)
	done := make(chan error, 1)
	go func() { done <- e.r.RunOnce(t.Context()) }()
	testwait.Recv(t, g.entered)
	e.r.AddScope(sc) // e.g. its Secret was deleted meanwhile
	close(g.release)
	if err := testwait.Recv(t, done); err != nil {
		t.Fatal(err)
	}
	if err := e.r.RunDue(t.Context()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if plans != 2 {
		t.Errorf("plans = %d, want 2: a scope pushed again during its write is planned again", plans)
	}
}
