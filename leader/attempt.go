package leader

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// heldError is a Lease held by another replica: no retry can help before the
// holder stops renewing.
type heldError struct{ holder string }

func (h heldError) Error() string {
	return fmt.Sprintf("leader election: the lease is held by %s", h.holder)
}

// attempt takes or renews the Lease once, giving up at deadline (on the
// elector's clock). On success this replica leads.
func (e *Elector) attempt(ctx context.Context, deadline time.Time) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if d := deadline.Sub(e.Clock.Now()); d > 0 {
		t := e.Clock.AfterFunc(d, cancel)
		defer t.Stop()
	} else {
		cancel()
	}
	err := e.tryAcquireOrRenew(ctx)
	if ctx.Err() != nil && err != nil && !errors.As(err, new(heldError)) {
		err = fmt.Errorf("leader election: no answer from the API server by the deadline: %w", err)
	}
	e.record(err)
	return err
}

// tryAcquireOrRenew is one round of client-go's algorithm
// (https://github.com/kubernetes/client-go/blob/master/tools/leaderelection/leaderelection.go):
// a leader updates the Lease it last wrote (its resourceVersion makes any
// change since a conflict); otherwise the Lease is read, and taken when it
// does not exist, has no holder, is this replica's, or was not renewed for
// LeaseDuration as this replica has observed it.
func (e *Elector) tryAcquireOrRenew(ctx context.Context) error {
	now := metav1.NewMicroTime(e.Clock.Now())
	e.mu.Lock()
	held := e.held
	e.mu.Unlock()
	if held != nil {
		l := held.DeepCopy()
		l.Spec.RenewTime = &now
		got, err := e.leases.Update(ctx, l, metav1.UpdateOptions{})
		if err == nil {
			e.took(got)
			return nil
		}
		if !apierrors.IsConflict(err) {
			return err
		}
		// Changed by someone else: read it and decide anew.
	}
	cur, err := e.leases.Get(ctx, e.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if held != nil {
			return heldError{holder: "nobody (the lease was deleted)"}
		}
		secs := int32(e.times.LeaseDuration / time.Second)
		transitions := int32(0)
		got, err := e.leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: e.name},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &e.identity, LeaseDurationSeconds: &secs,
				AcquireTime: &now, RenewTime: &now, LeaseTransitions: &transitions},
		}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		e.took(got)
		return nil
	}
	if err != nil {
		return err
	}
	holder := e.observe(cur)
	if held != nil && holder != e.identity {
		return heldError{holder: holder} // taken over: stop at once
	}
	if holder != "" && holder != e.identity && e.fresh(e.Clock.Now()) {
		return heldError{holder: holder}
	}
	l := cur.DeepCopy()
	if holder != e.identity {
		l.Spec.HolderIdentity = &e.identity
		l.Spec.AcquireTime = &now
		transitions := int32(1)
		if l.Spec.LeaseTransitions != nil {
			transitions = *l.Spec.LeaseTransitions + 1
		}
		l.Spec.LeaseTransitions = &transitions
	}
	secs := int32(e.times.LeaseDuration / time.Second)
	l.Spec.LeaseDurationSeconds = &secs
	l.Spec.RenewTime = &now
	got, err := e.leases.Update(ctx, l, metav1.UpdateOptions{}) // cur's resourceVersion: a conflict if another got there first
	if err != nil {
		return err
	}
	e.took(got)
	return nil
}

// took records the Lease as this replica wrote it: it leads.
func (e *Elector) took(l *coordinationv1.Lease) {
	e.observe(l)
	e.mu.Lock()
	e.held = l
	e.mu.Unlock()
	e.leading.Store(true)
}

// observe records who holds l and when this replica saw that change, and
// returns the holder.
func (e *Elector) observe(l *coordinationv1.Lease) string {
	holder := ""
	if l.Spec.HolderIdentity != nil {
		holder = *l.Spec.HolderIdentity
	}
	var renewed metav1.MicroTime
	if l.Spec.RenewTime != nil {
		renewed = *l.Spec.RenewTime
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if holder != e.holder || !renewed.Equal(&e.renewed) || e.seenAt.IsZero() {
		if holder != e.holder && holder != "" && holder != e.identity {
			e.Logger.WithField("leader", holder).Info("following: another replica writes")
		}
		e.holder, e.renewed, e.seenAt = holder, renewed, e.Clock.Now()
	}
	return holder
}

// fresh reports whether the holder renewed within LeaseDuration of now, as
// this replica observed it.
func (e *Elector) fresh(now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return !e.seenAt.IsZero() && now.Sub(e.seenAt) < e.times.LeaseDuration
}

// record keeps the outcome of a call for LastError, and logs a failure: at
// Error level the first time it reads so (a refusal names the grant), then
// at Debug while it repeats.
func (e *Elector) record(err error) {
	if errors.As(err, new(heldError)) {
		err = nil // being a follower is not a failure
	}
	e.mu.Lock()
	e.lastErr = err
	shown := e.errShown
	if err == nil {
		e.errShown = ""
	} else {
		e.errShown = err.Error()
	}
	e.mu.Unlock()
	if err == nil {
		return
	}
	log := e.Logger.WithFields(logrus.Fields{"lease": e.name, "identity": e.identity}).WithError(err)
	if err.Error() == shown {
		log.Debug("leader election: lease call failed again; retrying")
		return
	}
	log.Error("leader election: lease call failed; retrying")
}

// release hands the Lease over on a clean stop: an empty holder, which a
// follower takes at its next try. It carries the resourceVersion of this
// replica's last write, so a Lease taken since is left alone.
func (e *Elector) release(ctx context.Context) {
	e.mu.Lock()
	held := e.held
	e.held = nil
	e.mu.Unlock()
	if held == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.times.RenewDeadline)
	defer cancel()
	now := metav1.NewMicroTime(e.Clock.Now())
	l := held.DeepCopy()
	empty, one := "", int32(1)
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime = &empty, &one, &now
	log := e.Logger.WithFields(logrus.Fields{"lease": e.name, "identity": e.identity})
	if _, err := e.leases.Update(ctx, l, metav1.UpdateOptions{}); err != nil {
		log.WithError(err).Warn("leader election: lease not released; a follower takes over when it expires")
		return
	}
	log.Info("lease released")
}
