package refresher_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// Failures are retried with capped exponential backoff, never sooner than
// RetryMinInterval nor later than RetryMaxInterval, for a scope's writes and
// a source's fetches alike, and whatever the jitter draws.
func TestRefresher_Backoff(t *testing.T) {
	t.Parallel()
	for _, jitter := range []string{"None", "Most"} {
		for _, what := range []string{"Write", "Fetch"} {
			t.Run(what+"Jitter"+jitter, func(t *testing.T) {
				t.Parallel()
				src := sourceA()
				tg := &fakeTarget{}
				e := newEnv(t, []refresher.Source{src}, scope("a", tg))
				if jitter == "Most" {
					e.r.Jitter = func(d time.Duration) time.Duration { return d - 1 }
				}
				if what == "Write" {
					tg.ApplyFunc = func(context.Context, int) (refresher.Result, error) { return "", tempErr("503 Service Unavailable") }
				} else {
					src.FetchFunc = func(context.Context, int64) refresher.Fetched {
						return refresher.Fetched{Err: tempErr("ServerException (HTTP 500)")}
					}
				}
				_ = e.r.RunOnce(t.Context())
				var waits []time.Duration
				for range 12 {
					next := e.r.NextDue()
					waits = append(waits, next.Sub(e.clock.Now()))
					e.clock.Set(next)
					_ = e.r.RunDue(t.Context())
				}
				for i, w := range waits {
					if w < e.r.RetryMinInterval || w > e.r.RetryMaxInterval {
						t.Errorf("wait %d = %s, outside [%s, %s]", i, w, e.r.RetryMinInterval, e.r.RetryMaxInterval)
					}
					if i > 0 && w < waits[i-1] {
						t.Errorf("wait %d = %s is shorter than the one before (%s)", i, w, waits[i-1])
					}
				}
				if last := waits[len(waits)-1]; last < e.r.RetryMaxInterval/2 {
					t.Errorf("after 12 failures the wait is %s, want the cap (at least half of %s)", last, e.r.RetryMaxInterval)
				}
				if what == "Write" && src.calls.Load() != 1 {
					t.Errorf("write retries fetched %d times; the tokens in hand serve them", src.calls.Load())
				}
				t.Logf("waits: %v", waits)
			})
		}
	}
}

// A scope the platform refuses (refresher.Permanent: a Secret that is someone
// else's, a missing grant) is tried again within a minute, without a fetch,
// so readiness recovers within a minute of the cause going away (issue 18,
// item 4).
func TestRefresher_Refused_RecoversWithinAMinute(t *testing.T) {
	t.Parallel()
	src := sourceA()
	refuse := true
	tg := &fakeTarget{ApplyFunc: func(context.Context, int) (refresher.Result, error) {
		if refuse {
			return "", refresher.Permanent(errors.New("secret ns/ecr-credentials is someone else's"))
		}
		return "", nil
	}}
	e := newEnv(t, []refresher.Source{src}, scope("a", tg))
	_ = e.r.RunOnce(t.Context())
	for range 5 { // refused for a while: the cadence stays short
		e.clock.Set(e.r.NextDue())
		_ = e.r.RunDue(t.Context())
	}
	if rd := e.r.Readiness(e.clock.Now()); rd.Ready || !strings.Contains(rd.Reason, "someone else's") {
		t.Fatalf("readiness while refused = %v (%s), want not ready, saying why", rd.Ready, rd.Reason)
	}
	refuse = false // a person deleted the foreign Secret
	gone := e.clock.Now()
	e.clock.Set(e.r.NextDue())
	if err := e.r.RunDue(t.Context()); err != nil {
		t.Fatal(err)
	}
	if d := e.clock.Now().Sub(gone); d > time.Minute {
		t.Errorf("written again %s after the cause went away, want within a minute", d)
	}
	if rd := e.r.Readiness(e.clock.Now()); !rd.Ready {
		t.Errorf("not ready after the cause went away: %s", rd.Reason)
	}
	if got := src.calls.Load(); got != 1 {
		t.Errorf("fetches = %d, want 1: retrying a refused scope costs no ECR call", got)
	}
}

// SIGTERM during a run lets it finish (within ShutdownTimeout): its writes
// land, and Run returns nil.
func TestRefresher_Run_ShutdownLetsTheRunFinish(t *testing.T) {
	t.Parallel()
	src := sourceA()
	g := newGate()
	tg := &fakeTarget{ApplyFunc: g.applyFunc}
	e := newEnv(t, []refresher.Source{src}, scope("a", tg))
	e.r.ShutdownTimeout = time.Hour
	_, stop := e.start(t)
	testwait.Recv(t, g.entered)
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	testwait.For(t, testwait.Limit, "Run to be stopping", func() bool { return strings.Contains(e.log.String(), "stopping") })
	close(g.release) // released while Run is already stopping
	testwait.Recv(t, stopped)
	if tg.held(hostA) == "" {
		t.Error("the run in flight was cut off by the shutdown")
	}
	if !strings.Contains(e.log.String(), "stopping") {
		t.Errorf("no stopping line:\n%s", e.log)
	}
}

// A run stuck past ShutdownTimeout is cancelled, and Run still returns nil.
func TestRefresher_Run_ShutdownTimeout(t *testing.T) {
	t.Parallel()
	src := sourceA()
	entered := make(chan struct{})
	tg := &fakeTarget{ApplyFunc: func(ctx context.Context, _ int) (refresher.Result, error) {
		close(entered)
		<-ctx.Done() // only cancellation ends it
		return "", ctx.Err()
	}}
	e := newEnv(t, []refresher.Source{src}, scope("a", tg))
	e.r.ShutdownTimeout = time.Millisecond
	_, stop := e.start(t)
	testwait.Recv(t, entered)
	stop()
	if !strings.Contains(e.log.String(), "context canceled") {
		t.Errorf("the stuck write was not cancelled after the shutdown timeout:\n%s", e.log)
	}
}

// A bug in one target (a panic in Plan or in Apply) fails that scope only: the
// others are written, the error names the scope, and the loop lives on.
func TestRefresher_PanicFailsOneScope(t *testing.T) {
	t.Parallel()
	for _, where := range []string{"Plan", "Apply"} {
		t.Run(where, func(t *testing.T) {
			t.Parallel()
			src := sourceA()
			bad := &fakeTarget{}
			if where == "Plan" {
				bad.PlanFunc = func(context.Context, refresher.Input) (refresher.Plan, error) { panic("a bug in a target") }
			} else {
				bad.ApplyFunc = func(context.Context, int) (refresher.Result, error) { panic("a bug in a target") }
			}
			a, c := &fakeTarget{}, &fakeTarget{}
			e := newEnv(t, []refresher.Source{src}, scope("a", a), scope("b", bad), scope("c", c))
			err := e.r.RunOnce(t.Context())
			if err == nil || !strings.Contains(err.Error(), "scope b") || !strings.Contains(err.Error(), "a bug in a target") {
				t.Fatalf("err = %v, want scope b's failure", err)
			}
			if a.held(hostA) == "" || c.held(hostA) == "" {
				t.Error("the healthy scopes were not written")
			}
			if rd := e.r.Readiness(e.clock.Now()); rd.Ready {
				t.Error("ready although a scope failed")
			}
			// The loop survives it too.
			runs, stop := e.start(t)
			testwait.For(t, testwait.Limit, "a run", func() bool { return runs.Load() == 1 })
			if !e.r.Healthy(e.clock.Now()) {
				t.Error("unhealthy after a panicking scope")
			}
			stop()
		})
	}
}

// /healthz: alive while idle or within a run's bounds, not when stuck past
// them, nor once the loop has exited.
func TestRefresher_Healthy(t *testing.T) {
	t.Parallel()
	src := sourceA()
	g := newGate()
	e := newEnv(t, []refresher.Source{src}, scope("a", &fakeTarget{ApplyFunc: g.applyFunc}))
	if !e.r.Healthy(t0) {
		t.Error("an idle refresher is not healthy")
	}
	_, stop := e.start(t)
	testwait.Recv(t, g.entered)
	if !e.r.Healthy(t0.Add(time.Minute)) {
		t.Error("a run one minute old is unhealthy")
	}
	if stuck := t0.Add(e.r.RunTimeout + e.r.ShutdownTimeout + 2*time.Minute); e.r.Healthy(stuck) {
		t.Error("a run stuck past its bounds is healthy")
	}
	close(g.release)
	stop()
	if e.r.Healthy(t0) {
		t.Error("healthy after the loop exited")
	}
}

// A run cut short by its timeout leaves the scopes it did not reach due, and
// the loop takes them at once, not at the next scheduled time (issue 22,
// item 5: a run stays inside its timeout whatever the number of scopes).
func TestRefresher_RunTimeout_UnreachedScopesNext(t *testing.T) {
	t.Parallel()
	src := sourceA()
	// The first write outlasts the run's deadline but succeeds.
	slow := &fakeTarget{ApplyFunc: func(ctx context.Context, n int) (refresher.Result, error) {
		if n == 1 {
			<-ctx.Done()
		}
		return "", nil
	}}
	scopes := []refresher.Scope{scope("a", slow)}
	var rest []*fakeTarget
	for i := range 20 {
		tg := &fakeTarget{}
		rest = append(rest, tg)
		scopes = append(scopes, scope(fmt.Sprintf("b%02d", i), tg))
	}
	e := newEnv(t, []refresher.Source{src}, scopes...)
	e.r.Workers = 1
	e.r.RunTimeout = 50 * time.Millisecond
	var sleeps []time.Duration
	end := t0.Add(time.Hour)
	e.simulate(t, "@every 6h", end, func(next time.Time) bool {
		sleeps = append(sleeps, next.Sub(e.clock.Now()))
		return len(sleeps) < 3
	})
	if len(sleeps) == 0 || sleeps[0] != 0 {
		t.Errorf("after the cut-short run the loop slept %v, want to go on at once", sleeps)
	}
	for i, tg := range rest {
		if tg.applied() != 1 {
			t.Errorf("b%02d applied %d times, want 1 (by the run after the cut-short one)", i, tg.applied())
		}
	}
	if !strings.Contains(e.log.String(), "20 of 21 scopes not reached within the run timeout") {
		t.Errorf("the cut-short run is not explained:\n%s", e.log)
	}
}

// A write the run's deadline cuts is no failure of its scope: nothing is
// logged at Error, nothing booked, and the scope is handed to the next run
// like those the run did not reach.
func TestRefresher_RunTimeout_CutWriteHandedOn(t *testing.T) {
	t.Parallel()
	src := sourceA()
	slow := &fakeTarget{ApplyFunc: func(ctx context.Context, n int) (refresher.Result, error) {
		if n == 1 {
			<-ctx.Done()
			return "", ctx.Err()
		}
		return "", nil
	}}
	e := newEnv(t, []refresher.Source{src}, scope("a", slow), scope("b", &fakeTarget{}))
	e.r.Workers = 1
	e.r.RunTimeout = 50 * time.Millisecond
	ctx, cancel := context.WithTimeout(t.Context(), e.r.RunTimeout) // as Run bounds each run
	defer cancel()
	_ = e.r.RunOnce(ctx)
	if n := e.count("level=error", "credential not written"); n != 0 {
		t.Errorf("%d error lines for a write the deadline cut:\n%s", n, e.log)
	}
	if !strings.Contains(e.log.String(), "2 of 2 scopes not reached within the run timeout") {
		t.Errorf("the cut write is not counted as not reached:\n%s", e.log)
	}
	for _, p := range e.r.Status() {
		if p.LastError != "" {
			t.Errorf("pair %s/%s booked a failure: %s", p.Scope, p.Host, p.LastError)
		}
	}
	if next := e.r.NextDue(); next.After(e.clock.Now()) {
		t.Errorf("next due %s, want now: the cut scope is handed on at once", next)
	}
	if err := e.r.RunDue(t.Context()); err != nil {
		t.Fatal(err)
	}
	if slow.held(hostA) == "" {
		t.Error("the next run did not write the cut scope")
	}
}

// A platform that takes a write and never answers holds that scope for
// ScopeTimeout, not the whole run: the scope fails (logged, on /readyz),
// the other scopes are written, and it is retried after the backoff, not at
// once in a loop of stalled runs.
func TestRefresher_StalledWriteFailsTheScope(t *testing.T) {
	t.Parallel()
	stalled := &fakeTarget{ApplyFunc: func(ctx context.Context, n int) (refresher.Result, error) {
		<-ctx.Done()
		return "", ctx.Err()
	}}
	fine := &fakeTarget{}
	e := newEnv(t, []refresher.Source{sourceA()}, scope("a", stalled), scope("b", fine))
	e.r.Workers = 1
	e.r.ScopeTimeout = 50 * time.Millisecond
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // as Run bounds each run
	defer cancel()
	if err := e.r.RunOnce(ctx); err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Fatalf("RunOnce = %v, want the stalled write's failure", err)
	}
	if fine.held(hostA) == "" {
		t.Error("the other scope was not written")
	}
	if n := e.count("level=error", "credential not written", "scope=a"); n != 1 {
		t.Errorf("%d failure lines for the stalled scope, want 1:\n%s", n, e.log)
	}
	var booked bool
	for _, p := range e.r.Status() {
		booked = booked || p.Scope == "a" && strings.Contains(p.LastError, "deadline exceeded")
	}
	if !booked {
		t.Errorf("the stalled scope's failure is not on its status: %+v", e.r.Status())
	}
	if next := e.r.NextDue(); next.Before(e.clock.Now().Add(e.r.RetryMinInterval)) {
		t.Errorf("next due %s, want the backoff (%s) after now %s", next, e.r.RetryMinInterval, e.clock.Now())
	}
}
