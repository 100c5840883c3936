package refresher_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
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

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// fakeSource hands out a new password per host at every fetch, or what
// FetchFunc says.
type fakeSource struct {
	region   string
	hosts    []string
	identity string
	life     time.Duration
	pwLen    int // pad passwords to this length (ECR's are ~2,400 characters)
	clock    *clock
	calls    atomic.Int64
	// FetchFunc, when set, answers instead.
	FetchFunc func(ctx context.Context, n int64) refresher.Fetched
}

// sourceA is a source of hostA in us-east-1 whose tokens live 12 hours, as
// ECR's do.
func sourceA() *fakeSource {
	return &fakeSource{region: "us-east-1", hosts: []string{hostA}, life: 12 * time.Hour}
}

func (s *fakeSource) Region() string { return s.region }
func (s *fakeSource) Label() string  { return "fake " + s.region + " " + s.identity }

func (s *fakeSource) Fetch(ctx context.Context) refresher.Fetched {
	n := s.calls.Add(1)
	if s.FetchFunc != nil {
		return s.FetchFunc(ctx, n)
	}
	return s.answer(n)
}

// answer is the n-th answer: a new password per host, expiring after life.
func (s *fakeSource) answer(n int64) refresher.Fetched {
	now := s.clock.Now()
	var f refresher.Fetched
	for _, h := range s.hosts {
		f.Tokens = append(f.Tokens, refresher.Token{Host: h, ECRHost: h, Region: s.region, Username: "AWS",
			Password: password(h, s.identity, n, s.pwLen), FetchedAt: now, ExpiresAt: now.Add(s.life), Identity: s.identity})
	}
	return f
}

// password is the n-th password of a host for an identity, padded to size.
func password(host, identity string, n int64, size int) string {
	pw := fmt.Sprintf("pw-%s-%s-%d", host, identity, n)
	if len(pw) < size {
		pw += strings.Repeat("x", size-len(pw))
	}
	return pw
}

// fakeTarget plans one object per scope holding every token, and records
// what it was made to hold.
type fakeTarget struct {
	mu      sync.Mutex
	holds   map[string]refresher.Token // host → token written
	applies int
	checks  int
	// PlanFunc and ApplyFunc, when set, replace the defaults; an ApplyFunc
	// that returns "" and no error lets the write happen.
	PlanFunc  func(ctx context.Context, want refresher.Input) (refresher.Plan, error)
	ApplyFunc func(ctx context.Context, n int) (refresher.Result, error)
}

func (f *fakeTarget) Plan(ctx context.Context, want refresher.Input) (refresher.Plan, error) {
	if f.PlanFunc != nil {
		return f.PlanFunc(ctx, want)
	}
	return refresher.Plan{Writes: []refresher.Write{f.write("obj", want.Tokens)}}, nil
}

// write is a Write of toks into object obj of this target.
func (f *fakeTarget) write(obj string, toks []refresher.Token) refresher.Write {
	return refresher.Write{
		What: "secret", Object: obj, Tokens: toks, Action: refresher.ResultUpdated,
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
				f.holds = map[string]refresher.Token{}
			}
			for _, t := range toks {
				f.holds[t.Host] = t
			}
			return refresher.ResultUpdated, nil
		},
		Check: func(context.Context) (refresher.Result, error) {
			f.mu.Lock()
			f.checks++
			f.mu.Unlock()
			return refresher.ResultCreated, nil
		},
	}
}

func (f *fakeTarget) held(host string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.holds[host].Password
}

// heldToken is the token last written for host (zero if none).
func (f *fakeTarget) heldToken(host string) refresher.Token {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.holds[host]
}

func (f *fakeTarget) applied() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applies
}

func (f *fakeTarget) checked() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.checks
}

// tempErr is an error retrying soon may fix (a 503): Temporary() is true.
type tempErr string

func (e tempErr) Error() string   { return string(e) }
func (e tempErr) Temporary() bool { return true }

type env struct {
	r     *refresher.Refresher
	clock *clock
	log   *logbuf.Buffer

	mu     sync.Mutex
	sleeps []time.Duration // each wait the loop asked its timer for (start)
}

// slept returns the waits the loop asked for so far.
func (e *env) slept() []time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]time.Duration(nil), e.sleeps...)
}

func newEnv(t testing.TB, sources []refresher.Source, scopes ...refresher.Scope) *env {
	t.Helper()
	c := &clock{now: t0}
	for _, s := range sources {
		if fs, ok := s.(*fakeSource); ok && fs.clock == nil {
			fs.clock = c
		}
	}
	r := refresher.New(sources, scopes)
	r.Now = c.Now
	r.Jitter = func(time.Duration) time.Duration { return 0 }
	e := &env{r: r, clock: c}
	e.newLog()
	return e
}

// newLog gives the refresher a new, empty debug-level log.
func (e *env) newLog() {
	e.log = &logbuf.Buffer{}
	l := logrus.New()
	l.SetOutput(e.log)
	l.SetLevel(logrus.DebugLevel)
	e.r.Logger = l
}

// count is how many log lines hold every one of parts.
func (e *env) count(parts ...string) int {
	n := 0
lines:
	for l := range strings.SplitSeq(e.log.String(), "\n") {
		for _, p := range parts {
			if !strings.Contains(l, p) {
				continue lines
			}
		}
		n++
	}
	return n
}

// noSecrets fails the test when out holds a secret, plain or as the base64
// of a docker login.
func noSecrets(t testing.TB, what, out string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s == "" {
			continue
		}
		if strings.Contains(out, s) {
			t.Errorf("%s holds the secret %q", what, s)
		}
		if b64 := base64.StdEncoding.EncodeToString([]byte("AWS:" + s)); strings.Contains(out, b64) {
			t.Errorf("%s holds the encoded login of %q", what, s)
		}
	}
}

func scope(name string, tg refresher.Target) refresher.Scope {
	return refresher.Scope{Name: name, Target: tg}
}
