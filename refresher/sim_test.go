package refresher_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher/ecrtest"
)

// TestRefresher_SimulatedDay plays 24 hours of the real daemon loop (Run) on a
// fake clock: its one timer makes the clock jump to when it would fire. A
// 5-hour fault sits in the middle. At every moment the credential Rancher holds
// must be unexpired, and the daemon must not spin.
func TestRefresher_SimulatedDay(t *testing.T) {
	t.Parallel()
	// during answers with fail from +8h to +13h on the stand's clock.
	during := func(s *stand, fail func(http.ResponseWriter, *http.Request)) func(http.ResponseWriter, *http.Request) bool {
		return func(w http.ResponseWriter, r *http.Request) bool {
			now := s.clock.Now()
			if now.Before(t0.Add(8*time.Hour)) || !now.Before(t0.Add(13*time.Hour)) {
				return false
			}
			fail(w, r)
			return true
		}
	}
	tests := []struct {
		name     string
		spec     string
		lifetime time.Duration
		fault    func(s *stand)
	}{
		{name: "ECROutage", spec: "@every 6h", fault: func(s *stand) {
			s.ecr.SetIntercept(during(s, func(w http.ResponseWriter, _ *http.Request) {
				ecrtest.WriteError(w, 500, "ServerException", "internal")
			}))
		}},
		{name: "ECRThrottledDaily", spec: "0 3 * * *", fault: func(s *stand) {
			s.ecr.SetIntercept(during(s, func(w http.ResponseWriter, _ *http.Request) {
				ecrtest.WriteError(w, 400, "ThrottlingException", "Rate exceeded")
			}))
		}},
		{name: "RancherOutage", spec: "@every 6h", fault: func(s *stand) { s.rancher.SetIntercept(during(s, cattleError(503, "Service Unavailable"))) }},
		{name: "RancherAuthBroken", spec: "@every 6h", fault: func(s *stand) { s.rancher.SetIntercept(during(s, cattleError(401, "Unauthorized"))) }},
		// moto's expiresAt: 2015-01-01, taken as 12h from fetch.
		{name: "ExpiresAtInThePast", spec: "@every 6h", lifetime: -100000 * time.Hour, fault: func(*stand) {}},
		// A schedule that alone would leave tokens to expire: the guard covers it.
		{name: "RareCronShortTokens", spec: "@every 24h", lifetime: 3 * time.Hour, fault: func(*stand) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStand(t)
			if tt.lifetime != 0 {
				s.ecr.Lifetime = tt.lifetime
			}
			tt.fault(s)
			end := t0.Add(24 * time.Hour)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			runs := 0
			s.r.OnRunDone = func(error) {
				runs++
				if rd := s.r.Readiness(s.clock.Now()); !rd.Ready {
					// Ready means every credential is valid; that is what
					// the check below guarantees, so it must agree.
					t.Errorf("not ready at +%s: %s", s.clock.Now().Sub(t0), rd.Reason)
					cancel()
				}
				if runs > 500 {
					t.Errorf("more than 500 runs in a day: the daemon spins (at +%s)", s.clock.Now().Sub(t0))
					cancel()
				}
			}
			// The loop's one timer: the clock jumps to when it would fire.
			s.r.NewTimer = func(d time.Duration) (<-chan time.Time, func() bool) {
				now := s.clock.Now()
				next := now.Add(d)
				// Until the next run, Rancher holds what it holds now: it must
				// stay valid until then.
				exp := s.ecr.ExpiryOf(s.secret(t, s.cred))
				if tt.lifetime < 0 { // what moto announces is meaningless; tokens live 12h
					exp = exp.Add(-tt.lifetime).Add(refresher.TokenLifetime)
				}
				horizon := next
				if end.Before(horizon) {
					horizon = end
				}
				if !exp.After(horizon) {
					t.Errorf("the credential expires at +%s but the next write is at +%s", exp.Sub(t0), next.Sub(t0))
					cancel()
				}
				return s.jump(next, end, cancel)
			}
			if err := s.r.Run(ctx, tt.spec); err != nil {
				t.Fatal(err)
			}
			if calls := s.ecr.Calls(); calls > 200 {
				t.Errorf("%d ECR calls in a day: backoff does not hold", calls)
			}
			s.untouched(t)
			t.Logf("%d runs, %d ECR calls, %d Rancher requests", runs, s.ecr.Calls(), s.rancher.Requests())
		})
	}
}

// jump is the loop's timer on the fake clock: it sets the clock to next and
// fires at once, or, at end, cancels the loop and never fires.
func (s *stand) jump(next, end time.Time, cancel func()) (<-chan time.Time, func() bool) {
	if !next.Before(end) {
		cancel()
		return nil, func() bool { return true }
	}
	s.clock.Set(next)
	c := make(chan time.Time, 1)
	c <- next
	return c, func() bool { return true }
}
