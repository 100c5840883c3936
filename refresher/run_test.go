package refresher_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/robfig/cron/v3"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/cattle"
)

func TestRefresher_Run(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	e := newEnv(t, &fakeECR{GetAuthorizationTokenFunc: func(ctx context.Context, _ *ecr.GetAuthorizationTokenInput) (*ecr.GetAuthorizationTokenOutput, error) {
		close(entered)
		select {
		case <-release:
			return tokens(t0.Add(12*time.Hour), login{Host: hostA, Password: "pw-A"}), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}})
	reg := e.rancher.AddRegistry(project, hostA, "")
	e.r.ShutdownTimeout = time.Hour
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- e.r.Run(ctx, "@every 6h") }()
	testwait.Recv(t, entered)
	cancel() // SIGTERM during the first run: it must be allowed to finish
	close(release)
	if err := testwait.Recv(t, done); err != nil {
		t.Fatalf("Run = %v, want nil on shutdown", err)
	}
	creds := e.rancher.Credentials(project)
	if len(creds) != 1 || creds[0].RegistryID != reg || creds[0].SecretValue != "pw-A" {
		t.Errorf("the run in flight did not finish its write: %+v", creds)
	}
}

func TestRefresher_Run_ShutdownTimeout(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	e := newEnv(t, &fakeECR{GetAuthorizationTokenFunc: func(ctx context.Context, _ *ecr.GetAuthorizationTokenInput) (*ecr.GetAuthorizationTokenOutput, error) {
		close(entered)
		<-ctx.Done() // a stuck call: only cancellation ends it
		return nil, ctx.Err()
	}})
	e.r.ShutdownTimeout = time.Millisecond
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- e.r.Run(ctx, "@every 6h") }()
	testwait.Recv(t, entered)
	cancel()
	if err := testwait.Recv(t, done); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if !strings.Contains(e.log.String(), "context canceled") {
		t.Errorf("stuck run not cancelled after the shutdown timeout:\n%s", e.log)
	}
}

func TestRefresher_Run_BadSchedule(t *testing.T) {
	t.Parallel()
	e := newEnv(t, staticECR())
	if err := e.r.Run(t.Context(), "every day"); err == nil {
		t.Fatal("Run accepted a bad cron spec")
	}
}

// In the daemon, a failure is retried after the backoff, not at the next tick.
func TestRefresher_Run_RetriesBeforeTheNextTick(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	done := make(chan struct{})
	e := newEnv(t, &fakeECR{GetAuthorizationTokenFunc: func(ctx context.Context, _ *ecr.GetAuthorizationTokenInput) (*ecr.GetAuthorizationTokenOutput, error) {
		if calls.Add(1) == 1 {
			return nil, &types.ServerException{Message: aws.String("boom")}
		}
		return tokens(t0.Add(12*time.Hour), login{Host: hostA, Password: "pw-A"}), nil
	}})
	e.rancher.AddRegistry(project, hostA, "")
	e.r.Now = time.Now
	e.r.RetryMinInterval, e.r.RetryMaxInterval = time.Millisecond, time.Millisecond
	e.r.OnRunDone = func(err error) {
		if err == nil {
			close(done)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = e.r.Run(ctx, "@every 24h") }()
	testwait.Recv(t, done)
	if got := calls.Load(); got != 2 {
		t.Errorf("ECR calls = %d, want 2 (a failure, then the retry)", got)
	}
	if creds := e.rancher.Credentials(project); len(creds) != 1 || creds[0].SecretValue != "pw-A" {
		t.Errorf("credentials = %+v", creds)
	}
}

func TestRefresher_LogScheduleGaps(t *testing.T) {
	t.Parallel()
	for spec, wantNote := range map[string]bool{"@every 6h": false, "@every 4h": false, "0 3 * * *": true, "@every 7h": true} {
		e := newEnv(t, staticECR())
		s, err := cron.ParseStandard(spec)
		if err != nil {
			t.Fatal(err)
		}
		e.r.LogScheduleGaps(s, spec)
		if got := strings.Contains(e.log.String(), "the freshness guard refreshes each registry in time"); got != wantNote {
			t.Errorf("%s: note logged = %v, want %v:\n%s", spec, got, wantNote, e.log)
		}
	}
}

func TestRefresher_Healthy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, staticECR())
	if !e.r.Healthy(t0) {
		t.Error("idle refresher not healthy")
	}
	e.r.SetRunning(t0)
	if !e.r.Healthy(t0.Add(time.Minute)) {
		t.Error("refresher one minute into a run not healthy")
	}
	if e.r.Healthy(t0.Add(time.Hour)) {
		t.Error("refresher stuck an hour in a run still healthy")
	}
	e.r.SetRunning(time.Time{})
	e.r.SetLoopExited()
	if e.r.Healthy(t0) {
		t.Error("refresher whose loop exited still healthy")
	}
}

// panicStore is a RegistryStore with a bug.
type panicStore struct{ *listStore }

func (panicStore) ListRegistries(context.Context) ([]rancherapi.Registry, error) {
	panic("a bug in a store")
}

// A bug met while writing one scope fails that scope only: the others are
// written, and the daemon keeps running.
func TestRefresher_PanicInOneScope(t *testing.T) {
	t.Parallel()
	e := newEnv(t, staticECR(login{Host: hostA, Password: "pw-A"}))
	reg := e.rancher.AddRegistry(project, hostA, "")
	e.r.Scopes = append(e.r.Scopes, refresher.Scope{Name: "1a9", Target: &cattle.Target{Store: panicStore{&listStore{}}}})
	err := e.r.RunOnce(t.Context())
	if err == nil || !strings.Contains(err.Error(), "scope 1a9") || !strings.Contains(err.Error(), "a bug in a store") {
		t.Fatalf("err = %v, want the panicking scope's failure", err)
	}
	if creds := e.rancher.Credentials(project); len(creds) != 1 || creds[0].RegistryID != reg {
		t.Errorf("the healthy scope was not written: %+v", creds)
	}
	if st := e.r.Readiness(t0); st.Ready {
		t.Error("ready although a scope failed")
	}
}

// blockingTarget writes nothing until released, then reports every due token.
type blockingTarget struct {
	entered, release chan struct{}
}

func (b blockingTarget) Sync(ctx context.Context, due, _ []refresher.Token, rec *refresher.Recorder) error {
	close(b.entered)
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, t := range due {
		rec.Done(t, nil)
	}
	return nil
}

// While the first run has written one scope but not another, the daemon is
// not ready: every (registry, scope) pair must hold a credential, not just the
// ones written so far.
func TestRefresher_NotReadyUntilEveryScopeIsWritten(t *testing.T) {
	t.Parallel()
	e := newEnv(t, staticECR(login{Host: hostA, Password: "pw-A"}))
	e.rancher.AddRegistry(project, hostA, "")
	slow := blockingTarget{entered: make(chan struct{}), release: make(chan struct{})}
	e.r.Scopes = append(e.r.Scopes, refresher.Scope{Name: "slow", Target: slow})
	done := make(chan error, 1)
	go func() { done <- e.r.RunOnce(t.Context()) }()
	testwait.Recv(t, slow.entered)
	testwait.For(t, time.Minute, "the fast scope written", func() bool { return len(e.r.Status()) == 1 })
	if rd := e.r.Readiness(t0); rd.Ready || !strings.Contains(rd.Reason, "in scope slow") {
		t.Errorf("readiness with scope slow unwritten = %v (%s), want not ready naming it", rd.Ready, rd.Reason)
	}
	close(slow.release)
	if err := testwait.Recv(t, done); err != nil {
		t.Fatal(err)
	}
	if rd := e.r.Readiness(t0); !rd.Ready {
		t.Errorf("not ready after every scope was written: %s", rd.Reason)
	}
}
