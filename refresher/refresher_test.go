package refresher_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

const hostA, hostB = "111122223333.dkr.ecr.us-east-1.amazonaws.com", "444455556666.dkr.ecr.eu-west-1.amazonaws.com"

func TestRefresher_RunOnce_WritesEveryScopeOnceThenSkips(t *testing.T) {
	t.Parallel()
	src := sourceA()
	a, b := &fakeTarget{}, &fakeTarget{}
	e := newEnv(t, []refresher.Source{src}, scope("a", a), scope("b", b))
	if err := e.r.RunOnce(t.Context()); err != nil {
		t.Fatalf("RunOnce = %v", err)
	}
	if got, want := src.calls.Load(), int64(1); got != want {
		t.Errorf("fetches = %d, want %d", got, want)
	}
	if a.held(hostA) == "" || b.held(hostA) == "" {
		t.Fatalf("not written into every scope: a=%q b=%q", a.held(hostA), b.held(hostA))
	}
	if !strings.Contains(e.log.String(), "unchanged=0 written=2") {
		t.Errorf("summary does not count 2 writes:\n%s", e.log)
	}
	// Due but unchanged tokens: nothing is fetched or applied again.
	if err := e.r.RunDue(t.Context()); err != nil {
		t.Fatalf("RunDue = %v", err)
	}
	if src.calls.Load() != 1 || a.applied() != 1 {
		t.Errorf("RunDue with nothing due fetched %d times, applied %d times", src.calls.Load(), a.applied())
	}
	// A full run fetches new tokens and writes them; the same tokens again are skipped.
	if err := e.r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, want := a.held(hostA), fmt.Sprintf("pw-%s--2", hostA); got != want {
		t.Errorf("held %q, want %q", got, want)
	}
}

func TestRefresher_AddScope_UsesTokensInHand(t *testing.T) {
	t.Parallel()
	src := sourceA()
	e := newEnv(t, []refresher.Source{src}, scope("a", &fakeTarget{}))
	if err := e.r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		tg := &fakeTarget{}
		e.r.AddScope(refresher.Scope{Name: fmt.Sprint("ns", i), Group: "namespaces", Target: tg})
		e.clock.Add(time.Second)
		if err := e.r.RunDue(t.Context()); err != nil {
			t.Fatal(err)
		}
		if tg.held(hostA) == "" {
			t.Fatalf("scope ns%d not written by the run after it was added", i)
		}
	}
	if got := src.calls.Load(); got != 1 {
		t.Errorf("ten new scopes made %d fetches, want 1 (tokens in hand)", got)
	}
}

func TestRefresher_RefreshesComeTogether(t *testing.T) {
	t.Parallel()
	src := &fakeSource{region: "us-east-1", hosts: []string{hostA}, life: 4 * time.Minute}
	e := newEnv(t, []refresher.Source{src})
	e.r.RetryMinInterval = 5 * time.Second
	var tgs []*fakeTarget
	// Namespaces appear over two minutes, a few seconds apart.
	for i := range 24 {
		tg := &fakeTarget{}
		tgs = append(tgs, tg)
		e.r.AddScope(refresher.Scope{Name: fmt.Sprint("ns", i), Group: "namespaces", Target: tg})
		if err := e.r.RunDue(t.Context()); err != nil {
			t.Fatal(err)
		}
		e.clock.Add(5 * time.Second)
	}
	// Then run whenever something is due, for ten minutes.
	end := e.clock.Now().Add(10 * time.Minute)
	for e.clock.Now().Before(end) {
		next := e.r.NextDue()
		e.clock.Add(max(next.Sub(e.clock.Now()), 0))
		if err := e.r.RunDue(t.Context()); err != nil {
			t.Fatal(err)
		}
		for i, tg := range tgs {
			if tg.held(hostA) != fmt.Sprintf("pw-%s--%d", hostA, src.calls.Load()) {
				t.Fatalf("at %s ns%d holds %q, not the newest token (fetch %d)", e.clock.Now().Sub(t0), i, tg.held(hostA), src.calls.Load())
			}
		}
	}
	// 12 minutes of 4-minute tokens refreshed at half life: about 6 fetches,
	// whatever the number of namespaces.
	if n := src.calls.Load(); n < 5 || n > 8 {
		t.Errorf("fetches = %d in 12 minutes of 4-minute tokens, want about 6", n)
	}
}
