package refresher_test

import (
	"context"
	"errors"
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
	src := sourceA()
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
	src := sourceA()
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
	src := sourceA()
	tg := &fakeTarget{}
	var e *env
	tg.PlanFunc = func(ctx context.Context, want refresher.Input) (refresher.Plan, error) {
		first := tg.write("first", want.Tokens)
		apply := first.Apply
		first.Apply = func(ctx context.Context) (refresher.Result, error) {
			e.r.RemoveScope("ns") // the namespace left the selection meanwhile
			return apply(ctx)
		}
		return refresher.Plan{Writes: []refresher.Write{first, tg.write("second", want.Tokens)}}, nil
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
	src := sourceA()
	g := newGate()
	plans := 0
	var mu sync.Mutex
	tg := &fakeTarget{ApplyFunc: g.applyFunc}
	counting := &fakeTarget{PlanFunc: func(ctx context.Context, want refresher.Input) (refresher.Plan, error) {
		mu.Lock()
		plans++
		mu.Unlock()
		return tg.Plan(ctx, want)
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

// platform is one namespace's Secret shared by the scope states that write
// it: it records whose token each write left there.
type platform struct {
	mu     sync.Mutex
	writes []string // identity of each write, in order
}

func (p *platform) target(g *gate) *fakeTarget {
	return &fakeTarget{PlanFunc: func(ctx context.Context, want refresher.Input) (refresher.Plan, error) {
		toks := want.Tokens
		return refresher.Plan{Writes: []refresher.Write{{What: "secret", Object: "ns/ecr", Tokens: toks,
			Apply: func(ctx context.Context) (refresher.Result, error) {
				if g != nil {
					close(g.entered)
					<-g.release
				}
				p.mu.Lock()
				defer p.mu.Unlock()
				p.writes = append(p.writes, toks[0].Identity)
				return refresher.ResultUpdated, nil
			}}}}, nil
	}}
}

func (p *platform) log() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.writes...)
}

// A namespace whose role annotation changes while its write is in flight is
// written with the new identity's tokens only after that write: never two
// writes of one scope at once, so the last word is the new identity's. The
// same when it leaves the selection and comes back with the new role.
func TestRefresher_AddScope_NewIdentityWaitsForTheWriteInFlight(t *testing.T) {
	t.Parallel()
	for _, removeFirst := range []bool{false, true} {
		t.Run(map[bool]string{false: "Replaced", true: "RemovedAndAdded"}[removeFirst], func(t *testing.T) {
			t.Parallel()
			const role = "arn:aws:iam::111122223333:role/team-a"
			own := sourceA()
			tenant := &fakeSource{region: "us-east-1", hosts: []string{hostA}, identity: role, life: 12 * time.Hour}
			g := newGate()
			p := &platform{}
			e := newEnv(t, []refresher.Source{own}, refresher.Scope{Name: "ns", Target: p.target(&g)})
			tenant.clock = e.clock
			e.r.Sources = func(identity, _ string) ([]refresher.Source, error) {
				if identity != role {
					return nil, errors.New("not allowed")
				}
				return []refresher.Source{tenant}, nil
			}
			e.r.AddScope(refresher.Scope{Name: "other", Identity: role, Target: &fakeTarget{}})
			done := make(chan error, 1)
			go func() { done <- e.r.RunOnce(t.Context()) }()
			testwait.Recv(t, g.entered) // the own-identity write of ns is in flight
			if removeFirst {
				e.r.RemoveScope("ns")
			}
			e.r.AddScope(refresher.Scope{Name: "ns", Identity: role, Target: p.target(nil)})
			if err := e.r.RunDue(t.Context()); err != nil { // beside the run, as the express lane is
				t.Fatalf("RunDue = %v", err)
			}
			close(g.release)
			if err := testwait.Recv(t, done); err != nil {
				t.Fatal(err)
			}
			if err := e.r.RunDue(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := p.log(); len(got) != 2 || got[0] != "" || got[1] != role {
				t.Errorf("writes of ns by identity = %q, want the daemon's own then %q (the new one last)", got, role)
			}
		})
	}
}
