package refresher_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// After a first failure, what comes back when: a source that cannot be used
// (refused, misconfigured) at RETRY_MAX_INTERVAL, one that may recover at
// RETRY_MIN_INTERVAL; a write the platform refuses within a minute, one that
// may recover at RETRY_MIN_INTERVAL. Classified by Temporary() anywhere in the
// chain, refresher.Permanent, network and context errors.
func TestRefresher_RetryCadence(t *testing.T) {
	t.Parallel()
	const minI, maxI = 30 * time.Second, 15 * time.Minute
	tests := []struct {
		name  string
		fetch error // the source's failure, or
		write error // the target's
		want  time.Duration
	}{
		{"FetchTemporary", tempErr("ThrottlingException (HTTP 400)"), nil, minI},
		{"FetchNetwork", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, nil, minI},
		{"FetchDeadline", fmt.Errorf("fetch: %w", context.DeadlineExceeded), nil, minI},
		{"FetchUnclassified", errors.New("something odd"), nil, minI},
		{"FetchPermanent", refresher.Permanent(errors.New("AccessDeniedException (HTTP 400)")), nil, maxI},
		{"FetchNotTemporary", notTemp("no AWS credentials found"), nil, maxI},
		{"WriteTemporary", nil, tempErr("503 Service Unavailable"), minI},
		{"WriteConflict", nil, fmt.Errorf("update secret: %w", tempErr("409 Conflict")), minI},
		{"WriteRefused", nil, refresher.Permanent(errors.New("403: secrets is forbidden")), refresher.RefusedRetryInterval},
		{"WriteNotTemporary", nil, notTemp("422 Unprocessable"), refresher.RefusedRetryInterval},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := sourceA()
			if tt.fetch != nil {
				src.FetchFunc = func(context.Context, int64) refresher.Fetched { return refresher.Fetched{Err: tt.fetch} }
			}
			tg := &fakeTarget{ApplyFunc: func(context.Context, int) (refresher.Result, error) { return "", tt.write }}
			e := newEnv(t, []refresher.Source{src}, scope("a", tg))
			e.r.Jitter = func(d time.Duration) time.Duration { return d - 1 } // the most backoff jitter can add
			err := e.r.RunOnce(t.Context())
			if err == nil {
				t.Fatal("RunOnce = nil, want the failure")
			}
			if got := e.r.NextDue().Sub(t0); got != tt.want {
				t.Errorf("next attempt at +%s, want +%s (%v)", got, tt.want, err)
			}
			rd := e.r.Readiness(t0)
			if rd.Ready {
				t.Error("ready after a failed first run")
			}
		})
	}
}

// notTemp is an error that answers Temporary() false, as clients' 4xx do.
type notTemp string

func (e notTemp) Error() string   { return string(e) }
func (e notTemp) Temporary() bool { return false }

func TestPermanent(t *testing.T) {
	t.Parallel()
	if refresher.Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
	cause := errors.New("no registry")
	err := refresher.Permanent(cause)
	var te interface{ Temporary() bool }
	if !errors.Is(err, cause) || err.Error() != "no registry" || !errors.As(err, &te) || te.Temporary() {
		t.Errorf("Permanent(%v) = %v: want the cause, its text, Temporary() false", cause, err)
	}
}

// A retry touches only what failed: the scopes that were written are not
// planned again, and the tokens in hand serve it.
func TestRefresher_RunDue_OnlyWhatFailed(t *testing.T) {
	t.Parallel()
	src := sourceA()
	fine := &fakeTarget{}
	failing := &fakeTarget{ApplyFunc: func(_ context.Context, n int) (refresher.Result, error) {
		if n == 1 {
			return "", tempErr("503 Service Unavailable")
		}
		return "", nil
	}}
	e := newEnv(t, []refresher.Source{src}, scope("fine", fine), scope("failing", failing))
	_ = e.r.RunOnce(t.Context())
	e.clock.Set(e.r.NextDue())
	if err := e.r.RunDue(t.Context()); err != nil {
		t.Fatal(err)
	}
	if fine.applied() != 1 || failing.applied() != 2 || src.calls.Load() != 1 {
		t.Errorf("applies fine=%d failing=%d, fetches %d; want 1, 2, 1", fine.applied(), failing.applied(), src.calls.Load())
	}
	if rd := e.r.Readiness(e.clock.Now()); !rd.Ready {
		t.Errorf("not ready after the retry: %s", rd.Reason)
	}
}

// The freshness guard: tokens are fetched again at half their remaining life
// (less jitter) whatever the schedule says, never sooner than
// RETRY_MIN_INTERVAL however short they live.
func TestRefresher_FreshnessGuard(t *testing.T) {
	t.Parallel()
	src := &fakeSource{region: "us-east-1", hosts: []string{hostA}, life: 2 * time.Hour}
	e := newEnv(t, []refresher.Source{src}, scope("a", &fakeTarget{}))
	e.r.Jitter = func(d time.Duration) time.Duration { return d / 2 }
	if err := e.r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, want := e.r.NextDue(), t0.Add(time.Hour-3*time.Minute); !got.Equal(want) {
		t.Errorf("next fetch at +%s, want +%s (half of 2h, less half of the tenth of jitter)", got.Sub(t0), want.Sub(t0))
	}
	src.life = 10 * time.Second
	e.clock.Set(e.r.NextDue())
	if err := e.r.RunDue(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := e.r.NextDue().Sub(e.clock.Now()); got != e.r.RetryMinInterval {
		t.Errorf("next fetch in %s, want RETRY_MIN_INTERVAL %s", got, e.r.RetryMinInterval)
	}
}

// A token never prints its password, whatever the verb.
func TestToken_String(t *testing.T) {
	t.Parallel()
	tok := refresher.Token{Host: hostA, Username: "AWS", Password: "pw-secret", ExpiresAt: t0}
	s := fmt.Sprintf("%v %+v %#v %s", tok, tok, tok, tok)
	if strings.Contains(s, "pw-secret") || !strings.Contains(s, hostA) {
		t.Errorf("formatted token: %s", s)
	}
}

// A source that does not answer fails alone after FetchTimeout (or a little
// later, if it ignores its context): the other region's scopes are written in
// the same run.
func TestRefresher_StalledSourceFailsAlone(t *testing.T) {
	t.Parallel()
	for _, ignoresCtx := range []bool{false, true} {
		t.Run(map[bool]string{false: "HonoursContext", true: "IgnoresContext"}[ignoresCtx], func(t *testing.T) {
			t.Parallel()
			release := make(chan struct{})
			t.Cleanup(func() { close(release) })
			stalled := &fakeSource{region: "us-east-1", hosts: []string{hostA}, life: 12 * time.Hour,
				FetchFunc: func(ctx context.Context, _ int64) refresher.Fetched {
					if ignoresCtx {
						<-release
					} else {
						<-ctx.Done()
					}
					return refresher.Fetched{Err: ctx.Err()}
				}}
			healthy := &fakeSource{region: "eu-west-1", hosts: []string{hostB}, life: 12 * time.Hour}
			tg := &fakeTarget{}
			e := newEnv(t, []refresher.Source{stalled, healthy}, scope("a", tg))
			healthy.clock = e.clock
			e.r.FetchTimeout = 10 * time.Millisecond
			done := make(chan error, 1)
			go func() { done <- e.r.RunOnce(t.Context()) }()
			err := testwait.Recv(t, done)
			if err == nil || !strings.Contains(err.Error(), "us-east-1") {
				t.Errorf("err = %v, want the stalled source named", err)
			}
			if tg.held(hostB) == "" {
				t.Error("the healthy region was not written")
			}
		})
	}
}
