package refresher

import (
	"cmp"
	"slices"
	"time"
)

// PairStatus is the state of one (registry host, scope) pair, as /readyz shows it.
// It never holds a secret.
type PairStatus struct {
	Host        string    `json:"host"`
	Scope       string    `json:"scope"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	ExpiresAt   time.Time `json:"expires_at,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	// NextAttempt is when the pair is refreshed next, whatever the cron spec says.
	NextAttempt time.Time `json:"next_attempt,omitzero"`
}

// SourceStatus is the state of one ECR call (a region's registries).
type SourceStatus struct {
	Region      string    `json:"region"`
	RegistryIDs []string  `json:"registry_ids,omitempty"`
	LastError   string    `json:"last_error,omitempty"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
}

type pairKey struct{ host, scope string }

// pairState is what the refresher knows of a pair between runs.
type pairState struct {
	PairStatus
	source   int // index into Sources
	failures int
	// missingSince is when ECR first answered without a token for this host;
	// zero while it returns one.
	missingSince time.Time
}

// sourceState is what the refresher knows of an ECR call between runs.
type sourceState struct {
	failures int
	lastErr  string
	nextAt   time.Time
	ok       bool // fetched successfully at least once
}

// guardAt is when a credential written at now, expiring at exp, must be written
// again: no later than half of its remaining life (less jitter, so many
// registries do not move in lockstep), and never sooner than RetryMinInterval.
func (r *Refresher) guardAt(now, exp time.Time) time.Time {
	half := exp.Sub(now) / 2
	d := half - r.jitter(half/10)
	return now.Add(max(d, r.RetryMinInterval))
}

// retryAt is when something that failed for the n-th time in a row is tried
// again: capped exponential backoff with jitter from RetryMinInterval, or straight
// at RetryMaxInterval for errors that retrying soon will not fix (4xx other than
// 408/429, no registry, access denied), so Rancher and ECR are not hammered.
func (r *Refresher) retryAt(now time.Time, n int, err error) time.Time {
	if permanent(err) {
		return now.Add(r.RetryMaxInterval)
	}
	d := r.RetryMinInterval
	for i := 1; i < n && d < r.RetryMaxInterval; i++ {
		d *= 2
	}
	d = min(d, r.RetryMaxInterval)
	d = d/2 + r.jitter(d/2+1)
	return now.Add(max(d, r.RetryMinInterval))
}

// recordSource updates an ECR call's state after an attempt.
func (r *Refresher) recordSource(i int, now time.Time, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &r.sources[i]
	if err == nil {
		*s = sourceState{ok: true}
		return
	}
	s.failures++
	s.lastErr = err.Error()
	r.Metrics.ecrError(r.Sources[i].Region, ecrErrorCode(err))
	s.nextAt = r.retryAt(now, s.failures, err)
	for _, p := range r.pairs {
		if p.source == i {
			p.LastError = s.lastErr
			p.NextAttempt = s.nextAt
		}
	}
}

// recordPair updates a pair's state after a write attempt.
func (r *Refresher) recordPair(t Token, scope string, now time.Time, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := pairKey{t.Host, scope}
	p := r.pairs[k]
	if p == nil {
		p = &pairState{PairStatus: PairStatus{Host: t.Host, Scope: scope}, source: t.source}
		r.pairs[k] = p
	}
	p.missingSince = time.Time{} // a token for the host came
	switch {
	case err != nil:
		p.failures++
		p.LastError = err.Error()
		p.NextAttempt = r.retryAt(now, p.failures, err)
	case r.DryRun:
	default:
		p.failures = 0
		p.LastSuccess, p.ExpiresAt, p.LastError = now, t.ExpiresAt, ""
		p.NextAttempt = r.guardAt(now, t.ExpiresAt)
	}
}

// selection is what one run writes.
type selection struct {
	all    bool
	wholly []bool           // every pair of source i is due (its last fetch failed)
	pairs  map[pairKey]bool // known pairs: due or not; unknown pairs are always due
}

func (s selection) wants(t Token, scope string) bool {
	if s.all || s.wholly[t.source] {
		return true
	}
	due, known := s.pairs[pairKey{t.Host, scope}]
	return !known || due
}

// selectDue returns what is due at now: failed sources whose retry time has
// come, and pairs whose freshness deadline or retry time has.
func (r *Refresher) selectDue(now time.Time, all bool) selection {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := selection{all: all, wholly: make([]bool, len(r.Sources)), pairs: map[pairKey]bool{}}
	for i, st := range r.sources {
		s.wholly[i] = (st.failures > 0 || !st.ok) && !now.Before(st.nextAt)
	}
	for k, p := range r.pairs {
		s.pairs[k] = !now.Before(p.NextAttempt)
	}
	return s
}

// NextDue is when something must be refreshed next regardless of the cron spec:
// the earliest freshness deadline or retry time. Zero when nothing is pending.
func (r *Refresher) NextDue() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var next time.Time
	earlier := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, s := range r.sources {
		if s.failures > 0 {
			earlier(s.nextAt)
		}
	}
	for _, p := range r.pairs {
		earlier(p.NextAttempt)
	}
	return next
}

// Status returns every known pair, sorted by host then scope.
func (r *Refresher) Status() []PairStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]PairStatus, 0, len(r.pairs))
	for _, p := range r.pairs {
		out = append(out, p.PairStatus)
	}
	slices.SortFunc(out, func(a, b PairStatus) int {
		return cmp.Or(cmp.Compare(a.Host, b.Host), cmp.Compare(a.Scope, b.Scope))
	})
	return out
}

// Readiness is the answer /readyz gives.
type Readiness struct {
	Ready   bool           `json:"ready"`
	Reason  string         `json:"reason,omitempty"`
	Pairs   []PairStatus   `json:"pairs"`
	Sources []SourceStatus `json:"sources"`
}

// Readiness reports whether every configured (registry, scope) pair holds a
// credential this process wrote that has not expired at now, and why not.
func (r *Refresher) Readiness(now time.Time) Readiness {
	rd := Readiness{Ready: true, Pairs: r.Status()}
	notReady := func(reason string) {
		if rd.Ready {
			rd.Ready, rd.Reason = false, reason
		}
	}
	r.mu.Lock()
	for i, s := range r.sources {
		src := r.Sources[i]
		rd.Sources = append(rd.Sources, SourceStatus{Region: src.Region, RegistryIDs: src.RegistryIDs, LastError: s.lastErr, NextAttempt: s.nextAt})
		switch {
		case !s.ok && s.lastErr != "":
			notReady("ecr: " + s.lastErr)
		case !s.ok:
			notReady("no ECR token fetched yet for the " + src.label())
		}
	}
	r.mu.Unlock()
	if len(rd.Pairs) == 0 {
		notReady("no registry credential written yet")
	}
	scopes := r.currentScopes()
	if len(scopes) == 0 {
		notReady("no scope configured")
	}
	// Every scope must hold every host: a pair not yet written (a scope the
	// first run has not reached, a namespace just found) is not ready either.
	hosts := map[string]bool{}
	have := map[pairKey]bool{}
	for _, p := range rd.Pairs {
		hosts[p.Host] = true
		have[pairKey{p.Host, p.Scope}] = true
	}
	for _, sc := range scopes {
		for h := range hosts {
			if !have[pairKey{h, sc.Name}] {
				notReady("no credential written yet for " + h + " in scope " + sc.Name)
			}
		}
	}
	for _, p := range rd.Pairs {
		switch {
		case p.LastSuccess.IsZero():
			notReady("no credential written for " + p.Host + " in scope " + p.Scope)
		case !now.Before(p.ExpiresAt):
			notReady("the credential for " + p.Host + " in scope " + p.Scope + " has expired")
		}
	}
	return rd
}

// Healthy reports whether the daemon loop is alive and not stuck in a run.
func (r *Refresher) Healthy(now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.loopExited {
		return false
	}
	return r.runStarted.IsZero() || now.Sub(r.runStarted) < r.RunTimeout+r.ShutdownTimeout+time.Minute
}

func (r *Refresher) setRunning(t time.Time) {
	r.mu.Lock()
	r.runStarted = t
	r.mu.Unlock()
}
