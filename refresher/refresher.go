// Package refresher gets ECR login tokens and keeps them written wherever a
// platform reads registry credentials, once (RunOnce) or on a schedule (Run).
// It knows no platform: each place credentials go is a Target (see targets/),
// and ECR is reached through ECRAPI. See docs/architecture.md.
package refresher

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
)

const (
	// DefaultRunTimeout bounds one scheduled run.
	DefaultRunTimeout = 5 * time.Minute
	// DefaultShutdownTimeout is how long a stop waits for a run in flight.
	DefaultShutdownTimeout = 10 * time.Second
	// ScopeConcurrency bounds how many scopes are written at once.
	ScopeConcurrency = 4
	// DefaultRetryMinInterval and DefaultRetryMaxInterval bound the backoff.
	DefaultRetryMinInterval = 30 * time.Second
	DefaultRetryMaxInterval = 15 * time.Minute
)

// Refresher keeps registry credentials fresh. Set the exported fields before the
// first run and do not change them afterwards.
type Refresher struct {
	mu         sync.Mutex
	written    map[string]map[string]Content // scope → object id → what this process last wrote there
	warned     map[string]bool               // hosts already warned about an implausible expiresAt
	pairs      map[pairKey]*pairState
	sources    []sourceState // parallel to Sources
	runStarted time.Time     // zero when no run is in flight
	loopExited bool
	// credsExplained is set once missing AWS credentials were explained in full.
	credsExplained bool
	wake           chan struct{}

	// Sources are the ECR calls made per run, one per region.
	Sources []Source
	// Scopes are the places written into. With Discover set, they are replaced
	// at the start of every full run and on Wake.
	Scopes []Scope
	// Discover, when set, finds the scopes anew at every full run and on Wake
	// (RANCHER_PROJECTS=all, watched namespaces), so new ones are picked up.
	Discover func(ctx context.Context) ([]Scope, error)
	// ProxyHost, when set, is the host credentials are written under instead of
	// the ECR host. Only valid with a single registry.
	ProxyHost string
	// DryRun reads everything and logs the writes it would make, writing nothing.
	DryRun bool
	// RunTimeout bounds each scheduled run.
	RunTimeout time.Duration
	// ShutdownTimeout is how long Run waits for a run in flight once ctx is done.
	ShutdownTimeout time.Duration
	// RetryMinInterval and RetryMaxInterval bound the backoff after a failure;
	// RetryMinInterval is also the shortest time between two refreshes of a pair.
	RetryMinInterval, RetryMaxInterval time.Duration
	// Metrics, when set, receives run and write outcomes.
	Metrics *Metrics
	// Logger receives one line per write and per failure, and one summary per run.
	Logger logrus.FieldLogger
	// Now is the clock; tests replace it.
	Now func() time.Time
	// NewTimer returns a channel that delivers once d has passed on the clock of
	// Now, and a function that stops it; tests replace it to drive Run on a fake
	// clock.
	NewTimer func(d time.Duration) (<-chan time.Time, func() bool)
	// Jitter returns a random duration in [0, d); tests replace it.
	Jitter func(d time.Duration) time.Duration
	// OnRunDone, when set, is called at the end of every run with its result.
	OnRunDone func(err error)
}

// New returns a refresher with defaults for everything but its sources and scopes.
func New(sources []Source, scopes []Scope) *Refresher {
	return &Refresher{
		written:          map[string]map[string]Content{},
		warned:           map[string]bool{},
		pairs:            map[pairKey]*pairState{},
		sources:          make([]sourceState, len(sources)),
		wake:             make(chan struct{}, 1),
		Sources:          sources,
		Scopes:           scopes,
		RunTimeout:       DefaultRunTimeout,
		ShutdownTimeout:  DefaultShutdownTimeout,
		RetryMinInterval: DefaultRetryMinInterval,
		RetryMaxInterval: DefaultRetryMaxInterval,
		Logger:           logrus.StandardLogger(),
		Now:              time.Now,
		NewTimer: func(d time.Duration) (<-chan time.Time, func() bool) {
			t := time.NewTimer(d)
			return t.C, t.Stop
		},
		Jitter: func(d time.Duration) time.Duration { return rand.N(max(d, 1)) },
	}
}

func (r *Refresher) jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return r.Jitter(d)
}

// counts is what one run did, for its summary line.
type counts struct{ written, unchanged atomic.Int64 }

// RunOnce is one full reconcile: fetch a token per registry, find the scopes
// (Discover), and write every token into every scope. A failure on one registry
// or scope does not stop the others. Each failure is logged once, with its scope
// and host; the returned error joins them all.
func (r *Refresher) RunOnce(ctx context.Context) error { return r.run(ctx, true, true) }

// RunDue refreshes only what is due now: pairs whose freshness deadline or retry
// time has come, and registries whose ECR call failed. What is fresh is left alone.
func (r *Refresher) RunDue(ctx context.Context) error { return r.run(ctx, false, false) }

// Wake asks Run to find the scopes again (Discover) and write what is due now,
// new scopes included, without waiting for the schedule: e.g. when a watched
// namespace appears. It never blocks.
func (r *Refresher) Wake() {
	select {
	case r.wake <- struct{}{}:
	default: // a wake is already pending
	}
}

func (r *Refresher) run(ctx context.Context, all, discover bool) error {
	start := r.Now()
	r.setRunning(start)
	sel := r.selectDue(start, all)

	// Every token is fetched, even in a retry run: one call per region, and a
	// credential holding hosts of several regions can only be rewritten whole.
	// What is written is only what sel wants. Regions are asked at once, each
	// call under its own deadline, so one stalled region delays nothing else.
	var errs []error
	var tokens []Token
	fetchedOK := make([]bool, len(r.Sources))
	for i, f := range r.fetchAll(ctx) {
		src := r.Sources[i]
		if f.skipped != "" {
			r.Logger.WithField("region", src.Region).WithField("skipped", f.skipped).
				Warn("ecr answered entries that were not asked for; they are not written")
		}
		if f.err != nil {
			r.recordSource(i, r.Now(), f.err)
			r.logFetchError(src, f.err)
			errs = append(errs, f.err)
			continue
		}
		fetchedOK[i] = true
		// An unusable entry fails the source (it is retried whole); the good
		// entries are still written.
		r.recordSource(i, r.Now(), errors.Join(f.bad...))
		for _, e := range f.bad {
			r.Logger.WithError(e).WithField("region", src.Region).Error("ecr token unusable")
		}
		errs = append(errs, f.bad...)
		for _, t := range f.toks {
			t.source = i
			if r.ProxyHost != "" {
				t.Host = r.ProxyHost
			}
			r.warnClamped(t)
			tokens = append(tokens, t)
		}
	}

	if discover && r.Discover != nil {
		if err := r.discover(ctx); err != nil {
			r.Logger.WithError(err).Error("scope discovery failed; writing into the scopes found before")
			errs = append(errs, err)
		}
	}
	scopes := r.currentScopes()
	if len(scopes) == 0 && len(errs) == 0 {
		err := errors.New("no scope to write into: discovery found no environment, project or namespace to write into")
		r.Logger.WithError(err).Error("nothing written")
		errs = append(errs, err)
	}
	managed := r.managedHosts(tokens)
	var c counts
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, ScopeConcurrency)
	for _, sc := range scopes {
		var due []Token
		for _, t := range tokens {
			if sel.wants(t, sc.Name) {
				due = append(due, t)
			}
		}
		if len(due) == 0 {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			e := r.syncScope(ctx, sc, due, tokens, managed, &c)
			mu.Lock()
			errs = append(errs, e...)
			mu.Unlock()
		})
	}
	wg.Wait()
	errs = append(errs, r.failUnanswered(sel, fetchedOK, tokens)...)
	if err := ctx.Err(); err != nil && len(errs) == 0 {
		errs = append(errs, err)
	}
	end := r.Now()
	l := r.Logger.WithFields(logrus.Fields{
		"written": c.written.Load(), "unchanged": c.unchanged.Load(), "failed": len(errs),
		"registries": len(tokens), "scopes": len(scopes), "duration": end.Sub(start).Round(time.Millisecond).String(),
	})
	if !all {
		l = l.WithField("retry", true)
	}
	if r.DryRun {
		l = l.WithField("dry_run", true)
	}
	if next := r.NextDue(); !next.IsZero() {
		l = l.WithField("next_due", next.UTC().Format(time.RFC3339))
	}
	if len(errs) > 0 {
		l.Warn("run finished with failures")
	} else {
		l.Info("run finished")
	}
	err := errors.Join(errs...)
	r.setRunning(time.Time{})
	r.Metrics.run(end, end.Sub(start), err)
	if r.OnRunDone != nil {
		r.OnRunDone(err)
	}
	return err
}

// syncScope writes the due tokens into one scope through its Target and returns
// one error per failed host. A panic (a bug) fails that scope only: it runs on
// its own goroutine, where nothing else would catch it, and must not take the
// daemon or the other scopes down.
func (r *Refresher) syncScope(ctx context.Context, sc Scope, due, all []Token, managed map[string]bool, c *counts) (errs []error) {
	rec := r.newRecorder(sc.Name, managed, c)
	defer func() {
		if p := recover(); p != nil {
			rec.log.WithField("stack", string(debug.Stack())).Error("scope panicked")
			errs = rec.finish(due, fmt.Errorf("internal error (a bug; the stack is logged): %v", p))
		}
	}()
	return rec.finish(due, sc.Target.Sync(ctx, due, all, rec))
}

// warnClamped warns once per host when ECR's expiresAt could not be trusted.
func (r *Refresher) warnClamped(t Token) {
	if !t.Clamped {
		return
	}
	r.mu.Lock()
	first := !r.warned[t.ECRHost]
	r.warned[t.ECRHost] = true
	r.mu.Unlock()
	if first {
		r.Logger.WithFields(logrus.Fields{"registry": t.ECRHost, "assumed_expires_at": t.ExpiresAt.UTC().Format(time.RFC3339)}).
			Warn("ecr expiresAt is in the past or more than 12h ahead (clock skew or an emulator); assuming a 12h token")
	}
}

// wrote reports whether this process already wrote exactly c under id in scope.
func (r *Refresher) wrote(scope, id string, c Content) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, ok := r.written[scope][id]
	return ok && old == c
}

func (r *Refresher) remember(scope, id string, c Content) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.written[scope]
	if m == nil {
		m = map[string]Content{}
		r.written[scope] = m
	}
	m[id] = c
}

// managedHosts is every host this process writes: this run's tokens and every
// pair it has known.
func (r *Refresher) managedHosts(tokens []Token) map[string]bool {
	m := map[string]bool{}
	for _, t := range tokens {
		m[t.Host] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.pairs {
		m[k.host] = true
	}
	return m
}

// currentScopes returns the scopes of the next run.
func (r *Refresher) currentScopes() []Scope {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.Scopes)
}

// discover replaces the scopes with what Discover finds, and forgets the pairs,
// the remembered writes and the metric series of scopes that are gone, so state
// does not grow with every project or namespace ever seen.
func (r *Refresher) discover(ctx context.Context) error {
	scopes, err := r.Discover(ctx)
	if err != nil {
		return fmt.Errorf("discover scopes: %w", err)
	}
	names := map[string]bool{}
	for _, sc := range scopes {
		names[sc.Name] = true
	}
	var gone []string
	r.mu.Lock()
	for k := range r.pairs {
		if !names[k.scope] {
			delete(r.pairs, k)
		}
	}
	for s := range r.written {
		if !names[s] {
			delete(r.written, s)
		}
	}
	for _, sc := range r.Scopes {
		if !names[sc.Name] {
			gone = append(gone, sc.Name)
		}
	}
	r.Scopes = scopes
	r.mu.Unlock()
	for _, s := range gone {
		r.Metrics.forgetScope(s)
		r.Logger.WithField("scope", s).Info("scope no longer found; what it holds is left as it is")
	}
	return nil
}
