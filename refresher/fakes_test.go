package refresher_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/logbuf"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

var t0 = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

// clock is a fake clock the tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fakeSource hands out a new password per host at every fetch, or what
// FetchFunc says.
type fakeSource struct {
	region   string
	hosts    []string
	identity string
	life     time.Duration
	clock    *clock
	calls    atomic.Int64
	// FetchFunc, when set, answers instead.
	FetchFunc func(ctx context.Context, n int64) refresher.Fetched
}

func (s *fakeSource) Region() string { return s.region }
func (s *fakeSource) Label() string  { return "fake " + s.region + " " + s.identity }

func (s *fakeSource) Fetch(ctx context.Context) refresher.Fetched {
	n := s.calls.Add(1)
	if s.FetchFunc != nil {
		return s.FetchFunc(ctx, n)
	}
	now := s.clock.Now()
	var f refresher.Fetched
	for _, h := range s.hosts {
		f.Tokens = append(f.Tokens, refresher.Token{Host: h, ECRHost: h, Region: s.region, Username: "AWS",
			Password: fmt.Sprintf("pw-%s-%s-%d", h, s.identity, n), FetchedAt: now, ExpiresAt: now.Add(s.life), Identity: s.identity})
	}
	return f
}

// fakeTarget plans one object per scope holding every token, and records
// what it was made to hold.
type fakeTarget struct {
	mu      sync.Mutex
	holds   map[string]string // host → password written
	applies int
	checks  int
	// PlanFunc and ApplyFunc, when set, replace the defaults.
	PlanFunc  func(ctx context.Context, in refresher.Input) (refresher.Plan, error)
	ApplyFunc func(ctx context.Context, n int) (refresher.Result, error)
}

func (f *fakeTarget) Plan(ctx context.Context, in refresher.Input) (refresher.Plan, error) {
	if f.PlanFunc != nil {
		return f.PlanFunc(ctx, in)
	}
	toks := in.Tokens
	return refresher.Plan{Writes: []refresher.Write{{
		What: "secret", Object: "obj", Tokens: toks, Action: refresher.ResultUpdated,
		Apply: func(ctx context.Context) (refresher.Result, error) {
			f.mu.Lock()
			f.applies++
			n := f.applies
			f.mu.Unlock()
			if f.ApplyFunc != nil {
				if res, err := f.ApplyFunc(ctx, n); err != nil || res != "" {
					return res, err
				}
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.holds == nil {
				f.holds = map[string]string{}
			}
			for _, t := range toks {
				f.holds[t.Host] = t.Password
			}
			return refresher.ResultUpdated, nil
		},
		Check: func(context.Context) (refresher.Result, error) {
			f.mu.Lock()
			f.checks++
			f.mu.Unlock()
			return refresher.ResultCreated, nil
		},
	}}}, nil
}

func (f *fakeTarget) held(host string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.holds[host]
}

func (f *fakeTarget) applied() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applies
}

type env struct {
	r     *refresher.Refresher
	clock *clock
	log   *logbuf.Buffer
}

func newEnv(t *testing.T, sources []refresher.Source, scopes ...refresher.Scope) *env {
	t.Helper()
	c := &clock{now: t0}
	for _, s := range sources {
		if fs, ok := s.(*fakeSource); ok && fs.clock == nil {
			fs.clock = c
		}
	}
	r := refresher.New(sources, scopes)
	log := &logbuf.Buffer{}
	l := logrus.New()
	l.SetOutput(log)
	l.SetLevel(logrus.DebugLevel)
	r.Logger = l
	r.Now = c.Now
	r.Jitter = func(time.Duration) time.Duration { return 0 }
	return &env{r: r, clock: c, log: log}
}

func scope(name string, tg refresher.Target) refresher.Scope {
	return refresher.Scope{Name: name, Target: tg}
}
