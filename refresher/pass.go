package refresher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// RunOnce is one full run: find the scopes (Discover), fetch every source in
// use, and have every scope written. A failure on one source or scope does not
// stop the others; each is logged once, and the returned error joins them.
func (r *Refresher) RunOnce(ctx context.Context) error { return r.run(ctx, true, true) }

// RunDue writes only what is due now: sources whose freshness guard or retry
// time has come, scopes that are new, whose tokens moved on, or whose retry
// time has come. What is fresh is left alone.
func (r *Refresher) RunDue(ctx context.Context) error { return r.run(ctx, false, false) }

// counts is what one run did, for its summary line: objects, as the write
// lines name them; fresh counts the failures logged at Error (new ones).
type counts struct{ written, unchanged, failed, fresh int }

func (c *counts) add(o counts) {
	c.written += o.written
	c.unchanged += o.unchanged
	c.failed += o.failed
	c.fresh += o.fresh
}

func (r *Refresher) run(ctx context.Context, full, discover bool) error {
	start := r.Now()
	r.setRunning(start)
	defer r.setRunning(time.Time{})
	var errs []error
	fresh := 0 // failures logged at Error: new ones
	// Scopes first: a scope found now with a tenant identity no scope used
	// before has its tokens fetched in this run, and one gone costs no fetch.
	if discover && r.Discover != nil {
		scopes, err := r.Discover(ctx)
		if err != nil {
			err = fmt.Errorf("discover scopes: %w", err)
			r.Logger.WithError(err).Error("scope discovery failed; writing into the scopes found before")
			errs = append(errs, err)
			fresh++
		} else {
			r.setDiscovered(scopes)
		}
	}
	ferrs, ffresh := r.fetch(ctx, r.dueSources(start, full))
	errs, fresh = append(errs, ferrs...), fresh+ffresh
	r.dropMissing(start)
	due, total := r.takeDue(r.Now(), full)
	if total == 0 && len(errs) == 0 {
		err := errors.New(r.noScopes())
		r.Logger.WithError(err).Error("nothing written")
		errs = append(errs, err)
		fresh++
	}
	c, werrs, cut := r.writeAll(ctx, due, full)
	errs = append(errs, werrs...)
	fresh += c.fresh
	if cut {
		fresh++
	}
	fresh += r.logJoined()
	if err := ctx.Err(); err != nil && len(errs) == 0 && full {
		errs = append(errs, err)
	}
	end := r.Now()
	l := r.Logger.WithFields(logrus.Fields{
		"written": c.written, "unchanged": c.unchanged, "failed": c.failed, "errors": len(errs),
		"scopes": total, "duration": end.Sub(start).Round(time.Millisecond).String(),
	})
	if !full {
		l = l.WithField("retry", true)
	}
	if r.DryRun {
		l = l.WithField("dry_run", true)
	}
	if next := r.NextDue(); !next.IsZero() {
		l = l.WithField("next_due", next.UTC().Format(time.RFC3339))
	}
	switch {
	case len(errs) > 0 && (full || fresh > 0):
		l.Warn("run finished with failures")
	case len(errs) > 0:
		// A retry that met only failures logged before: they repeat.
		l.Debug("run finished with failures")
	case full || c.written > 0 || c.failed > 0:
		l.Info("run finished")
	default:
		l.Debug("run finished")
	}
	err := errors.Join(errs...)
	r.Metrics.run(end, end.Sub(start), err)
	if r.OnRunDone != nil {
		r.OnRunDone(err)
	}
	return err
}

// noScopes explains a run that found nothing to write into.
func (r *Refresher) noScopes() string {
	if r.ExplainNoScopes != nil {
		if s := r.ExplainNoScopes(); s != "" {
			return s
		}
	}
	return "no scope to write into"
}

// takeDue marks busy and returns the scopes a run writes, sorted by name, and
// how many scopes there are.
func (r *Refresher) takeDue(now time.Time, full bool) ([]*scopeState, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var due []*scopeState
	for _, sc := range r.scopes {
		if !sc.busy && sc.prev == nil && (full || sc.due(now)) && sc.writable(now) {
			sc.busy = true
			due = append(due, sc)
		}
	}
	slices.SortFunc(due, func(a, b *scopeState) int { return cmp.Compare(a.Name, b.Name) })
	return due, len(r.scopes)
}

// writeAll writes scopes with Workers at once. When ctx ends first, what was
// not reached stays due (a full run reports it as a failure), and cut is set.
func (r *Refresher) writeAll(ctx context.Context, scopes []*scopeState, full bool) (_ counts, _ []error, cut bool) {
	var (
		mu   sync.Mutex
		c    counts
		errs []error
		next int
		wg   sync.WaitGroup
	)
	stopAt := softDeadline(ctx)
	handed := 0 // scopes whose writes the deadline cut
	take := func() *scopeState {
		r.lane.wait(ctx) // a new namespace's write goes first
		mu.Lock()
		defer mu.Unlock()
		if next == len(scopes) || ctx.Err() != nil || !time.Now().Before(stopAt) {
			return nil
		}
		next++
		return scopes[next-1]
	}
	for range min(max(r.Workers, 1), len(scopes)) {
		wg.Go(func() {
			for sc := take(); sc != nil; sc = take() {
				oc, err := r.writeScope(ctx, sc)
				mu.Lock()
				c.add(oc)
				switch {
				case errors.Is(err, errCut):
					handed++
				case err != nil:
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if rest := scopes[next:]; len(rest)+handed > 0 {
		r.mu.Lock()
		for _, sc := range rest {
			r.release(sc)
		}
		r.mu.Unlock()
		err := fmt.Errorf("%d of %d scopes not reached within the run timeout (%s); they are written next", len(rest)+handed, len(scopes), r.RunTimeout)
		r.Logger.WithError(err).Warn("run cut short")
		if full {
			errs = append(errs, err)
		}
		cut = true
	}
	return c, errs, cut
}

// writeScope plans one busy scope with its identity's tokens in hand, applies
// the plan and books the outcome, then logs its failures (new ones at Error,
// repeats at Debug). A panic (a bug) fails that scope only. A scope removed
// since the run took it is not written at all.
// DefaultScopeTimeout bounds the writing of one scope: its plan's reads and
// its writes take milliseconds each, so what has not answered in a minute has
// stalled (the Kubernetes client bounds no request of its own: its watches
// share it).
const DefaultScopeTimeout = time.Minute

func (r *Refresher) writeScope(ctx context.Context, sc *scopeState) (counts, error) {
	r.mu.Lock()
	if sc.removed {
		r.release(sc)
		r.mu.Unlock()
		return counts{}, nil
	}
	now := r.Now()
	o := &outcome{hostErrs: map[string][]error{}, tokens: map[string]Token{}, gen: sc.ident.gen, pushes: sc.pushes, scope: sc.Scope}
	toks, refused, takeBack := sc.ident.inHand(now), sc.ident.refused, !sc.settled
	r.mu.Unlock()
	log := r.Logger.WithField("scope", sc.Name)
	var stack string // of a panic
	if refused != nil {
		// It gets no credential at all: planned with no token, its target
		// takes back what the scope held (written once: remembered after).
		toks = nil
	}
	switch {
	case refused == nil && len(toks) == 0:
		o.scopeErr = fmt.Errorf("scope %s: no token in hand for it yet (see the ECR errors)", sc.Name)
	default:
		func() {
			defer func() {
				if p := recover(); p != nil {
					stack = string(debug.Stack())
					o.scopeErr = fmt.Errorf("scope %s: internal error (a bug; the stack is logged): %v", sc.Name, p)
				}
			}()
			// A platform that stops answering holds one scope this long,
			// not the run: the scope then fails and is retried with backoff.
			sctx, cancel := context.WithTimeout(ctx, cmp.Or(r.ScopeTimeout, DefaultScopeTimeout))
			defer cancel()
			r.apply(sctx, sc, Input{Tokens: toks, Managed: r.isManaged, Log: log, TakeBack: takeBack || refused != nil}, o, log)
		}()
		if refused != nil {
			o.scopeErr, o.identityRefused = errors.Join(fmt.Errorf("scope %s: %w", sc.Name, refused), o.scopeErr), true
		}
	}
	if o.scopeErr != nil {
		o.counts.failed++
		for _, t := range toks {
			o.hostErrs[t.Host] = nil
			r.Metrics.write(t.Host, r.Metrics.label(o.scope), ResultFailed)
		}
		o.lines = append(o.lines, failLine{log: log, msg: "scope failed", err: o.scopeErr, stack: stack})
	}
	r.mu.Lock()
	if ctx.Err() != nil && o.failed() {
		// The run's deadline (or the shutdown) cut the pass: it is handed to
		// the next run as not reached, not booked as the scope's failure.
		r.release(sc)
		r.mu.Unlock()
		for _, l := range o.lines {
			l.log.WithError(l.err).Debug("write cut by the run's deadline; the next run writes it")
		}
		return counts{}, errCut
	}
	for i := range o.lines {
		o.lines[i].repeat = sc.metBefore(&o.lines[i])
	}
	missing, joined, err := r.book(sc, o, r.Now())
	removed := sc.removed && r.scopes[sc.Name] == nil
	r.mu.Unlock()
	if removed {
		// Removed during the pass (and not back), whose writes booked
		// series again.
		r.Metrics.forgetScope(sc.Name, slices.Collect(maps.Keys(o.hostErrs)))
	}
	for i := range missing {
		o.counts.failed++
		missing[i].log = log
	}
	o.counts.fresh += logFailures(append(o.lines, missing...), joined)
	return o.counts, err
}

// apply plans the scope and carries the plan out: each write is skipped when
// this process already wrote exactly that, checked in a dry run, applied
// otherwise; every outcome lands in o.
func (r *Refresher) apply(ctx context.Context, sc *scopeState, in Input, o *outcome, log logrus.FieldLogger) {
	plan, err := o.scope.Target.Plan(ctx, in)
	if err != nil {
		o.scopeErr = fmt.Errorf("scope %s: %w", sc.Name, err)
		return
	}
	label := r.Metrics.label(o.scope)
	for _, f := range plan.Failures {
		o.hostErrs[f.Host] = append(o.hostErrs[f.Host], f.Err)
		o.counts.failed++
		r.Metrics.write(f.Host, label, ResultFailed)
		o.lines = append(o.lines, failLine{log: log.WithField("registry", f.Host), msg: "credential not written", err: f.Err, hosts: []string{f.Host}})
	}
	for i := range plan.Writes {
		if r.gone(sc) {
			return // it left the selection while planned: nothing more is written there
		}
		w := &plan.Writes[i]
		res, err := r.applyWrite(ctx, sc, w, log.WithFields(w.Fields), o)
		switch {
		case err != nil:
			o.counts.failed++
			res = ResultFailed
		case res == ResultUnchanged:
			o.counts.unchanged++
		default:
			o.counts.written++
		}
		for _, t := range w.Tokens {
			o.tokens[t.Host] = t
			o.hostErrs[t.Host] = append(o.hostErrs[t.Host], err) // a nil is dropped by errors.Join
			r.Metrics.write(t.Host, label, res)
		}
	}
	for h, errs := range o.hostErrs {
		o.hostErrs[h] = slices.DeleteFunc(errs, func(e error) bool { return e == nil })
	}
}

// gone reports whether the scope was removed since a pass took it.
func (r *Refresher) gone(sc *scopeState) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return sc.removed
}

// applyWrite carries one write out: skipped when this process already wrote
// exactly that there, asked of the platform in a dry run, applied otherwise.
// A failure becomes a line of o, logged once the pass is booked.
func (r *Refresher) applyWrite(ctx context.Context, sc *scopeState, w *Write, log logrus.FieldLogger, o *outcome) (Result, error) {
	c := w.content()
	r.mu.Lock()
	known := !w.Stale && sc.remembered(w.Object, c)
	r.mu.Unlock()
	if known {
		log.Debug(w.What + " unchanged")
		return ResultUnchanged, nil
	}
	if r.DryRun {
		res := w.Action
		if w.Check != nil {
			var err error
			if res, err = w.Check(ctx); err != nil {
				o.lines = append(o.lines, writeFailed(log, w, err))
				return ResultFailed, err
			}
		}
		log.Info("dry run: would " + verb(res) + " " + w.What)
		return res, nil
	}
	res, err := w.Apply(ctx)
	if err != nil {
		o.lines = append(o.lines, writeFailed(log, w, err))
		return ResultFailed, err
	}
	r.mu.Lock()
	sc.remember(w.Object, c)
	r.mu.Unlock()
	if res == ResultUnchanged {
		log.Debug(w.What + " unchanged")
		return res, nil
	}
	msg := w.What + " " + string(res)
	if w.Written != "" {
		msg = w.Written
	}
	log.WithFields(logrus.Fields{"result": res, "expires_at": earliestExpiry(w.Tokens, r.Now()).UTC().Format(time.RFC3339)}).Info(msg)
	return res, nil
}

// writeFailed is the line of a write that failed: one per object, as the
// run's summary counts them, worded as every failure to write is.
func writeFailed(log logrus.FieldLogger, w *Write, err error) failLine {
	hosts := make([]string, len(w.Tokens))
	for i, t := range w.Tokens {
		hosts[i] = t.Host
	}
	return failLine{log: log.WithFields(logrus.Fields{"registry": strings.Join(hosts, ","), "object": w.What}),
		msg: "credential not written", err: err, hosts: hosts}
}

// verb is a result as a dry run says it: "create", "update", "leave".
func verb(res Result) string {
	switch res {
	case ResultCreated:
		return "create"
	case ResultUnchanged:
		return "leave unchanged"
	}
	return "update"
}
