package refresher

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// scopeState is what the refresher knows of a scope between runs: a few
// hundred bytes, whatever the platform holds (fields ordered to pack: there
// is one per namespace).
type scopeState struct {
	Scope
	ident *identity
	// prev is the scope of that name that was removed or replaced while a
	// pass wrote it: this one is not written before that pass ends, so the
	// last word is this one's (a namespace whose role changed never keeps
	// the former identity's token).
	prev *scopeState
	// gen is the identity's token generation of the last pass that wrote
	// everything; the scope is due again when the identity's moves on.
	gen     uint64
	pairs   []pairState
	written []objectContent // what this process last wrote, per object
	// retryAt is when the next pass is due after a failure (zero while
	// nothing fails); failures counts passes in a row that failed.
	retryAt time.Time
	// fail is what its last pass failed with (nil while nothing fails): a
	// pointer, as few of 10,000 scopes fail at once.
	fail *scopeFail
	// pushes counts AddScope calls for the scope since it was created (its
	// pusher saw it change); seen is that count as of the last pass. The
	// scope is due again while they differ.
	pushes, seen uint32
	failures     int32
	origin       origin
	planned      bool // a pass has completed at least once
	// settled is set once a pass wrote everything with the scope's identity
	// (not refused, not dry): no take-back is planned after that.
	settled bool
	busy    bool // a pass is writing it
	removed bool // dropped while busy: its outcome is not booked
}

// scopeFail is how a scope's last pass failed.
type scopeFail struct {
	// lastErr is a failure of the scope as a whole: a refused identity, a
	// plan that could not read the scope.
	lastErr string
	// cause is the failure, shared with the scopes of its group that failed
	// alike.
	cause *cause
}

// lastErr is the scope's failure as a whole, "" when none.
func (sc *scopeState) lastErr() string {
	if sc.fail == nil {
		return ""
	}
	return sc.fail.lastErr
}

// cause is what the scope's last pass failed with, nil when it did not.
func (sc *scopeState) cause() *cause {
	if sc.fail == nil {
		return nil
	}
	return sc.fail.cause
}

// parked reports whether the scope waits for its cause's probe.
func (sc *scopeState) parked() bool {
	c := sc.cause()
	return c != nil && c.probe != nil && c.probe != sc
}

// pairState is one (registry host, scope) pair: 48 bytes, of which there is
// one per registry and namespace.
type pairState struct {
	host    string
	lastErr string
	// lastSuccess and expiresAt are Unix nanoseconds (0: none), not
	// time.Time's 24 bytes each.
	lastSuccess, expiresAt stamp
}

// held reports whether the pair holds an unexpired credential this process
// wrote (PairStatus.ready).
func (p *pairState) held(now time.Time) bool {
	return PairStatus{LastSuccess: p.lastSuccess.time(), ExpiresAt: p.expiresAt.time()}.ready(now)
}

// stamp is an instant in Unix nanoseconds; 0 is the zero time.
type stamp int64

func stampOf(t time.Time) stamp {
	if t.IsZero() {
		return 0
	}
	return stamp(t.UnixNano())
}

func (s stamp) time() time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(s)).UTC()
}

type objectContent struct {
	object  string
	content Content
}

// remembered reports whether this process last wrote c to object.
func (sc *scopeState) remembered(object string, c Content) bool {
	for _, o := range sc.written {
		if o.object == object {
			return o.content == c
		}
	}
	return false
}

func (sc *scopeState) remember(object string, c Content) {
	for i := range sc.written {
		if sc.written[i].object == object {
			sc.written[i].content = c
			return
		}
	}
	sc.written = append(sc.written, objectContent{object, c})
}

func (sc *scopeState) pair(host string) *pairState {
	for i := range sc.pairs {
		if sc.pairs[i].host == host {
			return &sc.pairs[i]
		}
	}
	return nil
}

// due reports whether a pass should write the scope at now: never planned,
// its identity's tokens moved on, or its retry time has come.
func (sc *scopeState) due(now time.Time) bool {
	switch {
	case sc.busy || sc.prev != nil:
		return false
	case sc.stale():
		return true
	}
	return !sc.retryAt.IsZero() && !now.Before(sc.retryAt)
}

// stale reports whether the scope is due whatever the time: never planned,
// its identity's tokens moved on since its last pass, or pushed again.
func (sc *scopeState) stale() bool {
	return !sc.planned || sc.gen != sc.ident.gen || sc.pushes != sc.seen
}

// writable reports whether a pass can do anything for the scope now: its
// identity is refused (the pass fails it, saying why) or has answered.
func (sc *scopeState) writable(now time.Time) bool {
	id := sc.ident
	return id.refused != nil || id.fetched() || id.hasTokens(now)
}

// guardAt is when a token fetched at now, expiring at exp, must be fetched
// again: no later than half of its remaining life (less jitter, so many
// sources do not move in lockstep), and never sooner than RetryMinInterval.
func (r *Refresher) guardAt(now, exp time.Time) time.Time {
	half := exp.Sub(now) / 2
	d := half - r.jitter(half/10)
	return now.Add(max(d, r.RetryMinInterval))
}

// retryAt is when something that failed for the n-th time in a row is tried
// again: capped exponential backoff with jitter from RetryMinInterval, or
// straight after permanentWait for errors that retrying soon will not fix.
func (r *Refresher) retryAt(now time.Time, n int, err error, permanentWait time.Duration) time.Time {
	if permanent(err) {
		return now.Add(permanentWait)
	}
	d := r.RetryMinInterval
	for i := 1; i < n && d < r.RetryMaxInterval; i++ {
		d *= 2
	}
	d = min(d, r.RetryMaxInterval)
	d = d/2 + r.jitter(d/2+1)
	return now.Add(max(d, r.RetryMinInterval))
}

// refusedWait is how long a scope the platform refused waits: RefusedRetryInterval
// within the configured bounds.
func (r *Refresher) refusedWait() time.Duration {
	return min(max(RefusedRetryInterval, r.RetryMinInterval), r.RetryMaxInterval)
}

// outcome is what one pass did to one scope.
type outcome struct {
	hostErrs map[string][]error // every host the scope holds → its failures (none: written)
	tokens   map[string]Token   // host → the token written
	scopeErr error              // the scope as a whole failed
	// identityRefused: scopeErr is its identity's refusal, which nothing
	// changes but a new AddScope (another role) or a restart.
	identityRefused bool
	gen             uint64 // the identity's generation planned with
	pushes          uint32 // the scope's pushes as of the plan
	scope           Scope  // the scope as planned (AddScope may replace it meanwhile)
	counts          counts
	lines           []failLine // its failures, logged once booked
}

// failed reports whether the pass met any failure.
func (o *outcome) failed() bool {
	if o.scopeErr != nil {
		return true
	}
	for _, errs := range o.hostErrs {
		if len(errs) > 0 {
			return true
		}
	}
	return false
}

// book records a pass's outcome in the scope's state and returns its
// failures; those of pairs whose host ECR no longer returns (no write of the
// pass named them) come apart too, as lines for the caller to log. joined
// is set when the scope took on a cause other scopes of its group had
// already. Call with r.mu held.
func (r *Refresher) book(sc *scopeState, o *outcome, now time.Time) (missing []failLine, joined bool, err error) {
	defer r.release(sc)
	if sc.removed {
		return nil, false, nil
	}
	sc.seen = o.pushes
	sc.planned = true
	var errs []error
	if o.scopeErr != nil {
		errs = append(errs, o.scopeErr)
		if sc.fail == nil {
			sc.fail = &scopeFail{}
		}
		sc.fail.lastErr = o.scopeErr.Error()
	} else if sc.fail != nil {
		sc.fail.lastErr = ""
	}
	kept := sc.pairs[:0]
	for _, p := range sc.pairs {
		if _, held := o.hostErrs[p.host]; held || o.scopeErr != nil {
			kept = append(kept, p)
			continue
		}
		if since, ok := r.missingSince(sc.ident, p.host); ok {
			text := "ecr no longer returns a token for this registry (since " + since.UTC().Format(time.RFC3339) + ")"
			m := errors.New(p.host + " in scope " + sc.Name + ": " + text)
			missing = append(missing, failLine{msg: "credential not refreshed", err: m, hosts: []string{p.host}, repeat: p.lastErr == text})
			p.lastErr = text
			errs = append(errs, m)
			kept = append(kept, p)
		}
	}
	sc.pairs = kept
	for _, host := range slices.Sorted(maps.Keys(o.hostErrs)) {
		herrs := o.hostErrs[host]
		p := sc.pair(host)
		if p == nil {
			sc.pairs = append(sc.pairs, pairState{host: host})
			p = &sc.pairs[len(sc.pairs)-1]
		}
		switch {
		case o.scopeErr != nil:
			p.lastErr = o.scopeErr.Error()
		case len(herrs) > 0:
			err := errors.Join(herrs...)
			p.lastErr = err.Error()
			errs = append(errs, fmt.Errorf("%s in scope %s: %w", host, sc.Name, err))
		case r.DryRun:
			p.lastErr = ""
		default:
			t := o.tokens[host]
			p.lastSuccess, p.expiresAt, p.lastErr = stampOf(now), stampOf(t.ExpiresAt), ""
		}
	}
	// Whatever the outcome, these tokens were tried: a failure comes back at
	// its retry time (or sooner, with newer tokens), not at every wake.
	sc.gen = o.gen
	if len(errs) == 0 {
		sc.settled = sc.settled || !r.DryRun && !o.identityRefused
		sc.failures, sc.retryAt = 0, time.Time{}
		r.track(sc, nil, false, now)
		return missing, false, nil
	}
	err = errors.Join(errs...)
	sc.failures++
	wait := r.refusedWait()
	if o.identityRefused {
		wait = r.RetryMaxInterval
	}
	sc.retryAt = r.retryAt(now, int(sc.failures), err, wait)
	joined = r.track(sc, err, !o.identityRefused && allPermanent(errs), now)
	return missing, joined, err
}

// release ends a pass over sc: a scope pushed again while it was written, or
// the one that replaced it meanwhile, is written next. Call with r.mu held.
func (r *Refresher) release(sc *scopeState) {
	sc.busy = false
	if !sc.removed {
		if sc.pushes != sc.seen {
			r.requeue(sc.Name)
		}
		return
	}
	if r.leaving[sc.Name] == sc {
		delete(r.leaving, sc.Name)
	}
	if next := r.scopes[sc.Name]; next != nil && next.prev == sc {
		next.prev = nil
		r.requeue(next.Name)
	}
}

// requeue has a scope written soon beside any run: by the express lane while
// Run runs (RunOnce and RunDue callers take it on their next pass). Call with
// r.mu held.
func (r *Refresher) requeue(name string) {
	if !r.expressOn {
		return
	}
	select {
	case r.express <- name:
	default: // the lane is full: the loop takes it (it is stale: due now)
		r.pokeLoop()
	}
}

// missingSince reports when ECR stopped returning host for the identity, if
// it has. Call with r.mu held.
func (r *Refresher) missingSince(id *identity, host string) (time.Time, bool) {
	for _, s := range id.sources {
		if since, ok := s.missing[host]; ok {
			return since, true
		}
	}
	return time.Time{}, false
}
