package refresher_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// simulate runs the real daemon loop (Run) on the env's fake clock until end:
// its one timer makes the clock jump to when it would fire. Before each jump
// check is given the time the loop sleeps until; returning false stops the
// loop. It returns how many runs ended.
func (e *env) simulate(t *testing.T, spec string, end time.Time, check func(next time.Time) bool) int {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	runs := 0
	prev := e.r.OnRunDone
	e.r.OnRunDone = func(err error) {
		if runs++; runs > 2000 {
			t.Errorf("more than 2,000 runs by +%s: the loop spins", e.clock.Now().Sub(t0))
			cancel()
		}
		if prev != nil {
			prev(err)
		}
	}
	e.r.NewTimer = func(d time.Duration) (<-chan time.Time, func() bool) {
		next := e.clock.Now().Add(d)
		if (check != nil && !check(next)) || !next.Before(end) {
			cancel()
			return nil, func() bool { return true }
		}
		e.clock.Set(next)
		c := make(chan time.Time, 1)
		c <- next
		return c, func() bool { return true }
	}
	if err := e.r.Run(ctx, spec); err != nil {
		t.Fatal(err)
	}
	return runs
}

// between fails from +8h to +13h on the clock: a five-hour outage.
func between(c *clock) bool {
	now := c.Now()
	return !now.Before(t0.Add(8*time.Hour)) && now.Before(t0.Add(13*time.Hour))
}

// TestRefresher_Run_SimulatedDay plays 24 hours of the real loop with a
// five-hour fault in the middle. At every moment every scope holds an
// unexpired credential (what the freshness guarantee promises while tokens
// live 12h), /readyz agrees after every run, and neither the loop nor the
// source calls spin.
func TestRefresher_Run_SimulatedDay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		spec  string
		life  time.Duration
		fault func(e *env, src *fakeSource, tg *fakeTarget)
	}{
		{name: "Quiet", spec: "@every 6h"},
		{name: "SourceOutage", spec: "@every 6h", fault: func(e *env, src *fakeSource, _ *fakeTarget) {
			src.FetchFunc = func(_ context.Context, n int64) refresher.Fetched {
				if between(e.clock) {
					return refresher.Fetched{Err: tempErr("ServerException (HTTP 500): internal")}
				}
				return src.answer(n)
			}
		}},
		{name: "SourceThrottledDailyCron", spec: "0 3 * * *", fault: func(e *env, src *fakeSource, _ *fakeTarget) {
			src.FetchFunc = func(_ context.Context, n int64) refresher.Fetched {
				if between(e.clock) {
					return refresher.Fetched{Err: tempErr("ThrottlingException (HTTP 400): Rate exceeded")}
				}
				return src.answer(n)
			}
		}},
		{name: "SourceRefuses", spec: "@every 6h", fault: func(e *env, src *fakeSource, _ *fakeTarget) {
			src.FetchFunc = func(_ context.Context, n int64) refresher.Fetched {
				if between(e.clock) {
					return refresher.Fetched{Err: refresher.Permanent(errors.New("AccessDeniedException (HTTP 400)"))}
				}
				return src.answer(n)
			}
		}},
		{name: "TargetOutage", spec: "@every 6h", fault: func(e *env, _ *fakeSource, tg *fakeTarget) {
			tg.ApplyFunc = func(context.Context, int) (refresher.Result, error) {
				if between(e.clock) {
					return "", tempErr("503 Service Unavailable")
				}
				return "", nil
			}
		}},
		{name: "TargetRefuses", spec: "@every 6h", fault: func(e *env, _ *fakeSource, tg *fakeTarget) {
			tg.ApplyFunc = func(context.Context, int) (refresher.Result, error) {
				if between(e.clock) {
					return "", refresher.Permanent(errors.New("401 Unauthorized"))
				}
				return "", nil
			}
		}},
		// A schedule that alone would let tokens expire: the guard covers it.
		{name: "RareCronShortTokens", spec: "@every 24h", life: 3 * time.Hour},
		{name: "ShortTokens", spec: "@every 6h", life: 16 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := &fakeSource{region: "us-east-1", hosts: []string{hostA, hostB}, life: 12 * time.Hour}
			if tt.life != 0 {
				src.life = tt.life
			}
			var tgs []*fakeTarget
			var scopes []refresher.Scope
			for i := range 5 {
				tg := &fakeTarget{}
				tgs = append(tgs, tg)
				scopes = append(scopes, refresher.Scope{Name: fmt.Sprint("ns", i), Group: "namespaces", Target: tg})
			}
			e := newEnv(t, []refresher.Source{src}, scopes...)
			e.r.Jitter = func(d time.Duration) time.Duration { return d / 2 }
			if tt.fault != nil {
				for _, tg := range tgs {
					tt.fault(e, src, tg)
				}
			}
			end := t0.Add(24 * time.Hour)
			reg := prometheus.NewRegistry()
			e.r.Metrics = refresher.NewMetrics(reg)
			reg.MustRegister(e.r.Collector())
			e.r.OnRunDone = func(error) {
				if rd := e.r.Readiness(e.clock.Now()); !rd.Ready {
					t.Errorf("not ready at +%s: %s", e.clock.Now().Sub(t0), rd.Reason)
				}
				// The alerts agree: nothing expired, nothing about to.
				for _, h := range src.hosts {
					pair := map[string]string{"registry": h, "scope": "namespaces"}
					if got := value(t, reg, "rancher_ecr_credentials_credential_fresh", pair); got != 1 {
						t.Errorf("credential_fresh{%s} = %v at +%s while ready", h, got, e.clock.Now().Sub(t0))
					}
					if exp := value(t, reg, "rancher_ecr_credentials_token_expiry_timestamp_seconds", pair); exp < float64(e.clock.Now().Unix()) {
						t.Errorf("token_expiry{%s} = %v at +%s: in the past while ready", h, exp, e.clock.Now().Sub(t0))
					}
				}
			}
			runs := e.simulate(t, tt.spec, end, func(next time.Time) bool {
				// Until the loop wakes, each scope holds what it holds now:
				// it must still be valid then.
				horizon := next
				if end.Before(horizon) {
					horizon = end
				}
				for i, tg := range tgs {
					for _, h := range src.hosts {
						if exp := tg.heldToken(h).ExpiresAt; !exp.After(horizon) {
							t.Errorf("ns%d: the credential for %s expires at +%s, the loop sleeps until +%s", i, h, exp.Sub(t0), next.Sub(t0))
							return false
						}
					}
				}
				return true
			})
			// A 12h token is refreshed at half its life: about 4 a day, and
			// 5 hours of backoff capped at 15 minutes add at most 20 more.
			perDay := int64(24*time.Hour/(src.life/2)) + 1
			if n := src.calls.Load(); n > perDay+25 {
				t.Errorf("%d fetches in a day, want at most %d: refreshes do not come together or backoff does not hold", n, perDay+25)
			}
			t.Logf("%d runs, %d fetches, %d applies in ns0", runs, src.calls.Load(), tgs[0].applied())
		})
	}
}

// A source that does not clamp an expiresAt in the past (moto answers
// 2015-01-01) gives tokens that are never in hand: the loop must not spin,
// and the source is asked no more often than RetryMinInterval allows.
func TestRefresher_Run_ExpiredTokensNoTightLoop(t *testing.T) {
	t.Parallel()
	src := &fakeSource{region: "us-east-1", hosts: []string{hostA}, life: -100000 * time.Hour}
	tg := &fakeTarget{}
	e := newEnv(t, []refresher.Source{src}, scope("a", tg))
	end := t0.Add(6 * time.Hour)
	runs := e.simulate(t, "@every 6h", end, nil)
	if max := int64(6*time.Hour/e.r.RetryMinInterval) + 1; src.calls.Load() > max {
		t.Errorf("%d fetches in 6h, want at most %d (one per RetryMinInterval)", src.calls.Load(), max)
	}
	if tg.applied() != 0 {
		t.Errorf("an expired token was written %d times", tg.applied())
	}
	if rd := e.r.Readiness(e.clock.Now()); rd.Ready {
		t.Error("ready with nothing but expired tokens")
	}
	t.Logf("%d runs, %d fetches in 6h", runs, src.calls.Load())
}

// Issue 22, item 1, on the real loop: namespaces appear one every 6 seconds
// over a minute of 16-second tokens. Each is written as it appears, by the
// express lane with the token in hand; refreshes come together, about one
// fetch per half token life whatever the number of namespaces (the old
// per-namespace schedule made 67 fetches for 10), and at every wake every
// namespace holds a valid token.
func TestRefresher_Run_NamespacesAppearOverAMinute(t *testing.T) {
	t.Parallel()
	const life = 16 * time.Second
	src := &fakeSource{region: "us-east-1", hosts: []string{hostA}, life: life}
	e := newEnv(t, []refresher.Source{src})
	e.r.RetryMinInterval = 5 * time.Second
	var tgs []*fakeTarget
	appear := func(at time.Time) { // add the namespaces due by at, each written before going on
		for len(tgs) < 10 {
			when := t0.Add(time.Duration(len(tgs)+1) * 6 * time.Second)
			if when.After(at) {
				return
			}
			e.clock.Set(when)
			tg := &fakeTarget{}
			tgs = append(tgs, tg)
			e.r.AddScope(refresher.Scope{Name: fmt.Sprint("ns", len(tgs)), Group: "namespaces", Target: tg})
			testwait.For(t, testwait.Limit, "the new namespace written", func() bool { return tg.held(hostA) != "" })
		}
	}
	end := t0.Add(70 * time.Second)
	e.simulate(t, "@every 6h", end, func(next time.Time) bool {
		horizon := next
		if end.Before(horizon) {
			horizon = end
		}
		appear(horizon)
		for i, tg := range tgs {
			if exp := tg.heldToken(hostA).ExpiresAt; !exp.After(horizon) {
				t.Errorf("ns%d: its token expires at +%s, the loop sleeps until +%s", i+1, exp.Sub(t0), next.Sub(t0))
				return false
			}
		}
		return true
	})
	if len(tgs) != 10 {
		t.Fatalf("%d namespaces appeared, want 10", len(tgs))
	}
	// 70 seconds at a fetch per ~8 seconds, and the first.
	if n := src.calls.Load(); n > 10 {
		t.Errorf("%d fetches in 70 seconds of 16-second tokens for 10 namespaces, want about 9", n)
	}
	t.Logf("%d fetches", src.calls.Load())
}
