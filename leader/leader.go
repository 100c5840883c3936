// Package leader runs work only while this replica holds a Lease, so that of
// several replicas one writes. See docs/kubernetes.md.
package leader

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
	"github.com/sirupsen/logrus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// LeaseName is the Lease the replicas compete for.
const LeaseName = "rancher-ecr-credentials"

// LeaseTimes are the leader election's timings: a follower takes over at the
// latest LeaseDuration after the leader last renewed; a leader that could not
// renew for RenewDeadline stops writing (before any follower can take over);
// RetryPeriod is how often each replica tries.
type LeaseTimes struct {
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// DefaultLeaseTimes are client-go's customary values (those of
// kube-controller-manager).
var DefaultLeaseTimes = LeaseTimes{LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second}

// ErrLeaseLost is returned by Elector.Run when this process stopped being the
// leader while it was meant to go on: it stopped writing at once.
var ErrLeaseLost = errors.New("leader election: the lease was lost (not renewed in time); writing stopped")

// Elector runs work only while this process holds the Lease, with client-go's
// tools/leaderelection.
type Elector struct {
	lock    *observedLock
	times   LeaseTimes
	leading atomic.Bool

	// Logger receives leadership changes.
	Logger logrus.FieldLogger
}

// NewElector returns an elector for the Lease LeaseName in namespace, this
// process being identity (its Pod name: unique among the replicas).
func NewElector(client kubeapi.Client, namespace, identity string, times LeaseTimes) *Elector {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metavObjectMeta(namespace),
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
	}
	return &Elector{lock: &observedLock{Interface: lock}, times: times, Logger: logrus.StandardLogger()}
}

// Run campaigns until ctx is done. While this process leads it runs lead with
// a context that is cancelled the moment the lease is lost or ctx is done;
// lead must stop writing when it is. Run returns nil once ctx is done (lead
// returned, then the lease released so a follower takes over at once), and
// ErrLeaseLost when the lease was lost: the caller should exit, to come back as
// a follower with a clean slate.
func (e *Elector) Run(ctx context.Context, lead func(context.Context)) error {
	// The election outlives ctx until lead has returned: only then is the
	// lease released, so two replicas never write at once.
	elCtx, stopElection := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElection()
	var lost atomic.Bool
	var (
		mu     sync.Mutex
		closed bool // no lead may start any more
		wg     sync.WaitGroup
	)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            e.lock,
		Name:            LeaseName,
		LeaseDuration:   e.times.LeaseDuration,
		RenewDeadline:   e.times.RenewDeadline,
		RetryPeriod:     e.times.RetryPeriod,
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) {
				mu.Lock()
				if closed || ctx.Err() != nil {
					mu.Unlock()
					return
				}
				wg.Add(1)
				mu.Unlock()
				defer wg.Done()
				lctx, cancel := context.WithCancel(lctx)
				defer cancel()
				stop := context.AfterFunc(ctx, cancel)
				defer stop()
				e.leading.Store(true)
				e.Logger.WithField("lease", e.lock.Describe()).Info("leading: this replica writes")
				lead(lctx)
				e.leading.Store(false)
				if ctx.Err() == nil {
					lost.Store(true)
				}
				stopElection()
			},
			OnStoppedLeading: func() {},
			OnNewLeader: func(id string) {
				if id != e.lock.Identity() {
					e.Logger.WithField("leader", id).Info("following: another replica writes")
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		le.Run(elCtx)
	}()
	select {
	case <-ctx.Done():
	case <-done:
	}
	mu.Lock()
	closed = true
	mu.Unlock()
	wg.Wait() // lead has returned: nothing more is written
	stopElection()
	<-done
	if lost.Load() {
		return ErrLeaseLost
	}
	return nil
}

// Role is this replica's part, for /readyz: "leader", or "follower" with the
// leader's identity and whether it renewed the lease within the lease
// duration (as this replica observed it, on its own clock).
func (e *Elector) Role(now time.Time) (role, leader string, fresh bool) {
	if e.leading.Load() {
		return "leader", e.lock.Identity(), true
	}
	holder, changed := e.lock.observed()
	return "follower", holder, holder != "" && !changed.IsZero() && now.Sub(changed) < e.times.LeaseDuration
}

// observedLock remembers, from the reads the elector makes anyway, who holds
// the lease and when its record last changed on this replica's clock.
type observedLock struct {
	resourcelock.Interface
	mu      sync.Mutex
	last    resourcelock.LeaderElectionRecord
	changed time.Time
}

func (l *observedLock) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	rec, raw, err := l.Interface.Get(ctx)
	if err == nil && rec != nil {
		l.mu.Lock()
		if rec.HolderIdentity != l.last.HolderIdentity || !rec.RenewTime.Equal(&l.last.RenewTime) || l.changed.IsZero() {
			l.last, l.changed = *rec, time.Now()
		}
		l.mu.Unlock()
	}
	return rec, raw, err
}

func (l *observedLock) observed() (string, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last.HolderIdentity, l.changed
}

func metavObjectMeta(namespace string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: namespace, Name: LeaseName}
}
