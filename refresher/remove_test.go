package refresher_test

import (
	"context"
	"testing"
	"time"

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
