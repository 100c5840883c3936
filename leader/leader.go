// Package leader runs work on one replica at a time: the holder of a
// coordination.k8s.io/v1 Lease, taken and renewed with optimistic
// concurrency (every write carries the resourceVersion read, so of two
// replicas writing at once one gets 409 Conflict). It is client-go's
// tools/leaderelection algorithm on kubeapi, without the generated clients
// that package links (see kubeapi's package comment).
//
// Safety: a leader that has not renewed for RenewDeadline stops its work
// (cancels lead's context and waits for it to return) before any follower
// may take over, which is LeaseDuration after the follower last saw the
// Lease change; LeaseDuration > RenewDeadline leaves the margin. A leader
// that stops cleanly releases the Lease (empty holder), and a follower takes
// it at its next try. See docs/kubernetes.md.
package leader

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
)

// DefaultLeaseName is the Lease the replicas compete for.
const DefaultLeaseName = "rancher-ecr-credentials"

// Times are the election's timings: a follower takes over LeaseDuration
// after it last saw the leader renew; a leader that could not renew for
// RenewDeadline stops (before any follower can take over); RetryPeriod is
// how often each replica tries.
type Times struct {
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// DefaultTimes are client-go's customary values (those of
// kube-controller-manager).
var DefaultTimes = Times{LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second}

// Validate names what makes t unsafe: two leaders at once, or a leader that
// cannot renew in time.
func (t Times) Validate() error {
	switch {
	case t.RetryPeriod <= 0:
		return fmt.Errorf("leader election: retry period %s must be positive", t.RetryPeriod)
	case t.RenewDeadline <= t.RetryPeriod:
		return fmt.Errorf("leader election: renew deadline %s must be longer than the retry period %s, or a leader cannot retry a failed renewal", t.RenewDeadline, t.RetryPeriod)
	case t.LeaseDuration <= t.RenewDeadline:
		return fmt.Errorf("leader election: lease duration %s must be longer than the renew deadline %s, or a follower may take over before the leader stops", t.LeaseDuration, t.RenewDeadline)
	case t.LeaseDuration%time.Second != 0:
		return fmt.Errorf("leader election: lease duration %s must be whole seconds (the Lease records seconds)", t.LeaseDuration)
	}
	return nil
}

// ErrLeaseLost is returned by Run when this replica stopped leading while it
// was meant to go on: lead's context was cancelled and lead has returned.
var ErrLeaseLost = errors.New("leader election: the lease was lost (not renewed within the renew deadline, or taken by another replica); writing stopped")

// Leases are the calls the elector makes on its Lease's namespace;
// kubeapi.Client.Leases provides them.
type Leases interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*coordinationv1.Lease, error)
	Create(ctx context.Context, lease *coordinationv1.Lease, opts metav1.CreateOptions) (*coordinationv1.Lease, error)
	Update(ctx context.Context, lease *coordinationv1.Lease, opts metav1.UpdateOptions) (*coordinationv1.Lease, error)
}

var _ Leases = kubeapi.Typed[*coordinationv1.Lease, *coordinationv1.LeaseList]{}

// Verbs are what the elector needs on leases in its namespace.
var Verbs = []string{"get", "create", "update"}

// Elector runs work only while this replica holds the Lease.
type Elector struct {
	leases   Leases
	name     string
	identity string
	times    Times
	leading  atomic.Bool
	waits    atomic.Int64 // times a wait on Clock began, for tests stepping a fake clock

	mu       sync.Mutex
	held     *coordinationv1.Lease // as the server returned it after our last write, while leading
	holder   string                // the holder last seen
	renewed  metav1.MicroTime      // its renew time last seen
	seenAt   time.Time             // when holder or renewed last changed, on this replica's clock
	lastErr  error                 // the last failed call, nil after a success
	errShown string                // the last error logged at Error level

	// Logger receives leadership changes and failed calls.
	Logger logrus.FieldLogger
	// Clock times the election (a fake one in tests).
	Clock clock.WithDelayedExecution
}

// New returns an elector for the Lease DefaultLeaseName in namespace, this
// replica being identity (unique among the replicas: the Pod name with a
// random suffix).
func New(c *kubeapi.Client, namespace, identity string, times Times) *Elector {
	return newElector(c.Leases(namespace).Needs(Verbs...), DefaultLeaseName, identity, times)
}

func newElector(leases Leases, name, identity string, times Times) *Elector {
	return &Elector{leases: leases, name: name, identity: identity, times: times,
		Logger: logrus.StandardLogger(), Clock: clock.RealClock{}}
}

// Identity is this replica's name in the Lease.
func (e *Elector) Identity() string { return e.identity }

// Run campaigns until ctx is done. While this replica leads it runs lead
// with a context cancelled the moment the lease is lost or ctx is done; lead
// must stop writing when it is. Run returns nil once ctx is done or lead has
// returned by itself (lead returned, then the Lease released so a follower
// takes over at once), and ErrLeaseLost when the lease was lost: the caller
// should exit, to come back as a follower with a clean slate.
func (e *Elector) Run(ctx context.Context, lead func(context.Context)) error {
	if err := e.times.Validate(); err != nil {
		return err
	}
	var took time.Time
	for {
		took = e.Clock.Now()
		if err := e.attempt(ctx, took.Add(e.times.RenewDeadline)); err == nil {
			break
		}
		if !e.wait(ctx, e.times.RetryPeriod) {
			return nil
		}
	}
	e.Logger.WithFields(logrus.Fields{"lease": e.name, "identity": e.identity}).Info("leading: this replica writes")
	leadCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		lead(leadCtx)
	}()
	lost := e.renew(leadCtx, done, took)
	cancel()
	<-done // lead has returned: nothing more is written
	e.leading.Store(false)
	if lost {
		e.mu.Lock()
		e.held = nil
		e.mu.Unlock()
		e.Logger.WithFields(logrus.Fields{"lease": e.name, "identity": e.identity}).WithError(e.LastError()).Error("lease lost: this replica stopped writing")
		return ErrLeaseLost
	}
	e.release(ctx)
	return nil
}

// renew keeps the lease until ctx is done or lead returns (false) or a
// renewal did not succeed within RenewDeadline of the start of the last one
// that did (the first being the one that took the lease at last), or another
// replica holds the lease (true). Deadlines count from the start of a write,
// never from its answer: the server may have stored it at any time between.
func (e *Elector) renew(ctx context.Context, done <-chan struct{}, last time.Time) bool {
	for {
		select {
		case <-done:
			return false
		default:
		}
		if !e.waitOr(ctx, done, e.times.RetryPeriod) {
			return false
		}
		deadline := last.Add(e.times.RenewDeadline)
		for {
			start := e.Clock.Now()
			if !start.Before(deadline) {
				return ctx.Err() == nil
			}
			err := e.attempt(ctx, deadline)
			if err == nil {
				last = start
				break
			}
			var held heldError
			if errors.As(err, &held) || ctx.Err() != nil || !e.Clock.Now().Before(deadline) {
				return ctx.Err() == nil
			}
			if !e.waitOr(ctx, done, min(e.times.RetryPeriod, deadline.Sub(e.Clock.Now()))) {
				return false
			}
		}
	}
}

// wait waits d on the elector's clock; false when ctx ended first.
func (e *Elector) wait(ctx context.Context, d time.Duration) bool {
	return e.waitOr(ctx, nil, d)
}

func (e *Elector) waitOr(ctx context.Context, done <-chan struct{}, d time.Duration) bool {
	t := e.Clock.NewTimer(d)
	defer t.Stop()
	e.waits.Add(1)
	select {
	case <-ctx.Done():
		return false
	case <-done:
		return false
	case <-t.C():
		return true
	}
}

// Role is this replica's part, for /readyz: "leader", or "follower" with the
// holder's identity and whether it renewed the lease within the lease
// duration (as this replica observed it, on its own clock). LastError says
// why a follower sees no holder when a call fails.
func (e *Elector) Role(now time.Time) (role, leader string, fresh bool) {
	if e.leading.Load() {
		return "leader", e.identity, true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return "follower", e.holder, e.holder != "" && !e.seenAt.IsZero() && now.Sub(e.seenAt) < e.times.LeaseDuration
}

// LastError is the last failed call on the Lease (a *kubeapi.Error: a
// refusal names the grant to add), or nil when the last call succeeded.
func (e *Elector) LastError() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lastErr
}
