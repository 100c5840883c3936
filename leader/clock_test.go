package leader

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
)

// fakeLeases is one namespace's Leases in memory, with resourceVersions as
// the API server keeps them; calls can be made to fail or to hang.
type fakeLeases struct {
	mu       sync.Mutex
	lease    *coordinationv1.Lease
	rv       int
	fail     error
	hang     bool
	inflight atomic.Int64
}

var leaseGR = schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}

func (f *fakeLeases) call(ctx context.Context, op func() (*coordinationv1.Lease, error)) (*coordinationv1.Lease, error) {
	f.inflight.Add(1)
	defer f.inflight.Add(-1)
	f.mu.Lock()
	fail, hang := f.fail, f.hang
	f.mu.Unlock()
	if hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if fail != nil {
		return nil, fail
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return op()
}

func (f *fakeLeases) Get(ctx context.Context, name string, _ metav1.GetOptions) (*coordinationv1.Lease, error) {
	return f.call(ctx, func() (*coordinationv1.Lease, error) {
		if f.lease == nil {
			return nil, apierrors.NewNotFound(leaseGR, name)
		}
		return f.lease.DeepCopy(), nil
	})
}

func (f *fakeLeases) Create(ctx context.Context, l *coordinationv1.Lease, _ metav1.CreateOptions) (*coordinationv1.Lease, error) {
	return f.call(ctx, func() (*coordinationv1.Lease, error) {
		if f.lease != nil {
			return nil, apierrors.NewAlreadyExists(leaseGR, l.Name)
		}
		return f.store(l), nil
	})
}

func (f *fakeLeases) Update(ctx context.Context, l *coordinationv1.Lease, _ metav1.UpdateOptions) (*coordinationv1.Lease, error) {
	return f.call(ctx, func() (*coordinationv1.Lease, error) {
		if f.lease == nil {
			return nil, apierrors.NewNotFound(leaseGR, l.Name)
		}
		if l.ResourceVersion != f.lease.ResourceVersion {
			return nil, apierrors.NewConflict(leaseGR, l.Name, errors.New("the object has been modified"))
		}
		return f.store(l), nil
	})
}

// store keeps l with a new resourceVersion; f.mu is held.
func (f *fakeLeases) store(l *coordinationv1.Lease) *coordinationv1.Lease {
	f.rv++
	f.lease = l.DeepCopy()
	f.lease.ResourceVersion = strconv.Itoa(f.rv)
	return f.lease.DeepCopy()
}

// set changes the stored Lease as another writer would.
func (f *fakeLeases) set(holder string, renew time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, secs := metav1.NewMicroTime(renew), int32(15)
	f.store(&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "lease"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, RenewTime: &t, LeaseDurationSeconds: &secs}})
}

func (f *fakeLeases) holder() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lease == nil || f.lease.Spec.HolderIdentity == nil {
		return ""
	}
	return *f.lease.Spec.HolderIdentity
}

func (f *fakeLeases) spec() coordinationv1.LeaseSpec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return *f.lease.Spec.DeepCopy()
}

func (f *fakeLeases) setFault(fail error, hang bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail, f.hang = fail, hang
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeWorld is a fake clock at t0 and an empty Lease store.
func fakeWorld() (*clocktesting.FakeClock, *fakeLeases) {
	return clocktesting.NewFakeClock(t0), &fakeLeases{}
}

// replica is one elector running on the fake clock.
type replica struct {
	e       *Elector
	leadCtx chan context.Context
	done    chan error
	cancel  context.CancelFunc
	logs    *logtest.Hook
}

func startReplica(t *testing.T, fc *clocktesting.FakeClock, leases *fakeLeases, identity string) *replica {
	t.Helper()
	e := newElector(leases, "lease", identity, DefaultTimes)
	e.Clock = fc
	log, hook := logtest.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	e.Logger = log
	r := &replica{e: e, leadCtx: make(chan context.Context, 1), done: make(chan error, 1), logs: hook}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		r.done <- e.Run(ctx, func(ctx context.Context) {
			r.leadCtx <- ctx
			<-ctx.Done()
		})
	}()
	t.Cleanup(cancel)
	return r
}

// settle waits until r's elector waits on the clock again after its
// waits-th wait: it has done what the last step made due.
func (r *replica) settle(t *testing.T, waits int64) int64 {
	t.Helper()
	testwait.For(t, 10*time.Second, r.e.identity+" to wait on the clock", func() bool { return r.e.waits.Load() > waits })
	return r.e.waits.Load()
}

// step steps fc by d once r waits (its timer set), and waits until r waits
// again.
func (r *replica) step(t *testing.T, fc *clocktesting.FakeClock, d time.Duration) {
	t.Helper()
	w := r.settle(t, 0)
	fc.Step(d)
	r.settle(t, w)
}

// A leader that cannot renew stops exactly at the renew deadline counted
// from the start of its last successful renewal: not before, not after,
// whether the API server refuses at once or never answers.
func TestElector_StopsAtRenewDeadline(t *testing.T) {
	for _, hang := range []bool{false, true} {
		name := map[bool]string{false: "Refused", true: "NoAnswer"}[hang]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fc, leases := fakeWorld()
			a := startReplica(t, fc, leases, "a")
			leadCtx := testwait.Recv(t, a.leadCtx)
			a.step(t, fc, DefaultTimes.RetryPeriod) // a renewal that succeeds, started at t0+2s
			renewed := fc.Now()
			if got := leases.spec().RenewTime.Time; !got.Equal(renewed) {
				t.Fatalf("renew time %s, want %s", got, renewed)
			}
			leases.setFault(errors.New("connection refused"), hang)
			stopAt := renewed.Add(DefaultTimes.RenewDeadline)
			w := a.settle(t, 0)
			if hang {
				fc.Step(DefaultTimes.RetryPeriod) // the next renewal hangs
				testwait.For(t, 10*time.Second, "a renewal to hang", func() bool { return leases.inflight.Load() == 1 })
			}
			for fc.Now().Before(stopAt.Add(-time.Millisecond)) {
				step := min(DefaultTimes.RetryPeriod, stopAt.Add(-time.Millisecond).Sub(fc.Now()))
				fc.Step(step)
				if !hang && step == DefaultTimes.RetryPeriod {
					w = a.settle(t, w) // a renewal failed; it waits to retry
				}
				if leadCtx.Err() != nil {
					t.Fatalf("lead stopped at %s, before the renew deadline %s", fc.Now().Sub(renewed), DefaultTimes.RenewDeadline)
				}
				if role, _, _ := a.e.Role(fc.Now()); role != "leader" {
					t.Fatalf("role %s before the renew deadline", role)
				}
			}
			fc.Step(time.Millisecond)
			if err := testwait.Recv(t, a.done); !errors.Is(err, ErrLeaseLost) {
				t.Fatalf("Run = %v, want ErrLeaseLost", err)
			}
			if leadCtx.Err() == nil {
				t.Fatal("Run returned with lead's context alive")
			}
			if lost := fc.Now().Sub(renewed); lost != DefaultTimes.RenewDeadline || lost >= DefaultTimes.LeaseDuration {
				t.Errorf("stopped %s after the last renewal started, want the renew deadline %s", lost, DefaultTimes.RenewDeadline)
			}
			if role, _, _ := a.e.Role(fc.Now()); role != "follower" {
				t.Errorf("role %s after losing the lease", role)
			}
		})
	}
}

// A follower takes a held Lease only LeaseDuration after it last saw it
// change, and a renewal it sees starts that wait again.
func TestElector_FollowerWaitsLeaseDuration(t *testing.T) {
	t.Parallel()
	fc, leases := fakeWorld()
	leases.set("other", t0)
	b := startReplica(t, fc, leases, "b")
	step := func(until time.Time) {
		t.Helper()
		for fc.Now().Before(until) {
			b.step(t, fc, DefaultTimes.RetryPeriod)
		}
	}
	step(t0.Add(10 * time.Second))
	if role, leader, fresh := b.e.Role(fc.Now()); role != "follower" || leader != "other" || !fresh {
		t.Fatalf("Role = %s %s %v, want a follower seeing a fresh leader", role, leader, fresh)
	}
	leases.set("other", fc.Now()) // the holder renews at t0+10s; b sees it at once
	b.step(t, fc, DefaultTimes.RetryPeriod)
	seen := fc.Now()
	for fc.Now().Add(DefaultTimes.RetryPeriod).Before(seen.Add(DefaultTimes.LeaseDuration)) {
		b.step(t, fc, DefaultTimes.RetryPeriod)
		if role, _, _ := b.e.Role(fc.Now()); role != "follower" || leases.holder() != "other" {
			t.Fatalf("took the lease %s after seeing it renewed, before the lease duration", fc.Now().Sub(seen))
		}
	}
	if _, _, fresh := b.e.Role(seen.Add(DefaultTimes.LeaseDuration)); fresh {
		t.Error("Role reports the leader fresh a lease duration after its last renewal")
	}
	w := b.settle(t, 0)
	fc.Step(DefaultTimes.RetryPeriod) // the first try at or after the lease duration
	testwait.Recv(t, b.leadCtx)
	b.settle(t, w)
	if d := fc.Now().Sub(seen); d < DefaultTimes.LeaseDuration || d >= DefaultTimes.LeaseDuration+DefaultTimes.RetryPeriod {
		t.Errorf("took the lease %s after seeing it renewed, want its first try after the lease duration %s", d, DefaultTimes.LeaseDuration)
	}
	if leases.holder() != "b" || *leases.spec().LeaseTransitions != 1 || !leases.spec().AcquireTime.Time.Equal(fc.Now()) {
		t.Errorf("lease after takeover: %+v", leases.spec())
	}
}

// A clean stop releases the Lease and a follower takes it at its next try.
func TestElector_ReleasedLeaseTakenAtOnce(t *testing.T) {
	t.Parallel()
	fc, leases := fakeWorld()
	a := startReplica(t, fc, leases, "a")
	testwait.Recv(t, a.leadCtx)
	a.settle(t, 0)
	b := startReplica(t, fc, leases, "b")
	w := b.settle(t, 0)
	if leases.holder() != "a" {
		t.Fatalf("holder %q", leases.holder())
	}
	a.cancel()
	if err := testwait.Recv(t, a.done); err != nil {
		t.Fatalf("Run after a clean stop = %v", err)
	}
	if h := leases.holder(); h != "" {
		t.Fatalf("holder after release %q, want none", h)
	}
	fc.Step(DefaultTimes.RetryPeriod)
	testwait.Recv(t, b.leadCtx)
	b.settle(t, w)
	if leases.holder() != "b" {
		t.Errorf("holder %q", leases.holder())
	}
}

// A leader that finds the Lease taken by another stops at that renewal, not
// at the deadline.
func TestElector_TakenOverStopsAtOnce(t *testing.T) {
	t.Parallel()
	fc, leases := fakeWorld()
	a := startReplica(t, fc, leases, "a")
	leadCtx := testwait.Recv(t, a.leadCtx)
	a.settle(t, 0)
	leases.set("intruder", fc.Now())
	fc.Step(DefaultTimes.RetryPeriod)
	if err := testwait.Recv(t, a.done); !errors.Is(err, ErrLeaseLost) || leadCtx.Err() == nil {
		t.Fatalf("Run = %v, lead ctx %v", err, leadCtx.Err())
	}
	if leases.holder() != "intruder" {
		t.Errorf("the stopped leader overwrote the lease: holder %q", leases.holder())
	}
}

// A refused call is reported by LastError and logged once at Error level,
// then at Debug while it repeats.
func TestElector_FailureLoggedOnce(t *testing.T) {
	t.Parallel()
	fc, leases := fakeWorld()
	refused := apierrors.NewForbidden(leaseGR, "lease", errors.New("no grant"))
	leases.setFault(refused, false)
	a := startReplica(t, fc, leases, "a")
	for range 3 {
		a.step(t, fc, DefaultTimes.RetryPeriod)
	}
	if err := a.e.LastError(); !apierrors.IsForbidden(err) {
		t.Errorf("LastError = %v", err)
	}
	errorsLogged := 0
	for _, e := range a.logs.AllEntries() {
		if e.Level == logrus.ErrorLevel {
			errorsLogged++
		}
	}
	if errorsLogged != 1 {
		t.Errorf("%d errors logged for one repeated refusal, want 1", errorsLogged)
	}
}

func TestTimes_Validate(t *testing.T) {
	t.Parallel()
	s := time.Second
	for _, tc := range []struct {
		times Times
		ok    bool
	}{
		{DefaultTimes, true},
		{Times{3 * s, 2 * s, s / 4}, true},
		{Times{10 * s, 10 * s, 2 * s}, false},
		{Times{15 * s, 2 * s, 2 * s}, false},
		{Times{15 * s, 10 * s, 0}, false},
		{Times{15*s + s/2, 10 * s, 2 * s}, false},
	} {
		if err := tc.times.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v.Validate() = %v", tc.times, err)
		}
	}
}
