package refresher

import (
	"net/http"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher/ecrtest"
)

// TestRefresher_SimulatedDay plays 24 hours on a fake clock, the way Run drives
// the refresher (a full run at start and on each cron tick, RunDue when the
// freshness guard or a retry is due), with a 5-hour fault in the middle. At every
// moment the credential Rancher holds must be unexpired, and the daemon must not
// spin.
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
			sched, err := cron.ParseStandard(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			end := t0.Add(24 * time.Hour)
			nextTick := sched.Next(t0)
			runs := 0
			if err := s.r.RunOnce(t.Context()); err != nil {
				t.Fatalf("first run: %v", err)
			}
			for now := t0; ; {
				runs++
				if runs > 500 {
					t.Fatalf("more than 500 runs in a day: the daemon spins (at +%s)", now.Sub(t0))
				}
				next, full := s.r.NextDue(), false
				if next.IsZero() || !nextTick.After(next) {
					next, full = nextTick, true
				}
				if next.Before(now) {
					next = now
				}
				// Until the next run, Rancher holds what it holds now: it must
				// stay valid until then.
				pw := s.secret(t, s.cred)
				exp := s.ecr.ExpiryOf(pw)
				if tt.lifetime < 0 { // what moto announces is meaningless; tokens live 12h
					exp = exp.Add(-tt.lifetime).Add(TokenLifetime)
				}
				horizon := next
				if end.Before(horizon) {
					horizon = end
				}
				if !exp.After(horizon) {
					t.Fatalf("the credential expires at +%s but the next write is at +%s", exp.Sub(t0), next.Sub(t0))
				}
				if !next.Before(end) {
					break
				}
				now = next
				s.clock.Set(now)
				if full {
					nextTick = sched.Next(now)
					_ = s.r.RunOnce(t.Context())
				} else {
					_ = s.r.RunDue(t.Context())
				}
				if rd := s.r.Readiness(now); !rd.Ready {
					// Ready means every credential is valid; that is what
					// the check above guarantees, so it must agree.
					t.Fatalf("not ready at +%s: %s", now.Sub(t0), rd.Reason)
				}
			}
			if calls := s.ecr.Calls(); calls > 200 {
				t.Errorf("%d ECR calls in a day: backoff does not hold", calls)
			}
			s.untouched(t)
			t.Logf("%d runs, %d ECR calls, %d Rancher requests", runs, s.ecr.Calls(), s.rancher.Requests())
		})
	}
}
