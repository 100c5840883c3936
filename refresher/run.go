package refresher

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/sirupsen/logrus"
)

// Run is the daemon loop, until ctx is done:
//
//   - a full run now, and one at each time of the cron spec;
//   - between them, the freshness guard: each source is asked again no later
//     than half of its tokens' remaining life, whatever the spec says, and
//     every scope of its identity is written with what it gave, in one run;
//   - a failure is retried with capped exponential backoff and jitter,
//     touching only what failed, instead of waiting for the next scheduled time;
//   - Wake finds the scopes again and writes what is due at once; a scope
//     added by AddScope is written at once with the tokens in hand, beside any
//     run in flight (the express lane), so it never waits for a bulk refresh.
//
// One goroutine and one timer drive the runs: the loop sleeps until the
// earlier of the schedule's next time (Schedule.Next, on the refresher's own
// clock) and the next due source or scope, so a fake clock drives this very
// loop in tests. Once ctx is done, a run in flight gets ShutdownTimeout to
// finish before its context is cancelled; Run then returns nil.
func (r *Refresher) Run(ctx context.Context, spec string) error {
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return fmt.Errorf("refresh schedule %q: %w", spec, err)
	}
	r.logScheduleGaps(sched, spec)

	// Runs outlive ctx by up to ShutdownTimeout, so they get their own context.
	runCtx, cancelRuns := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRuns()
	var wg sync.WaitGroup
	wg.Go(func() { r.loop(ctx, runCtx, sched) })
	r.mu.Lock()
	r.expressOn = true
	r.mu.Unlock()
	wg.Go(func() { r.expressLane(ctx, runCtx) })

	<-ctx.Done()
	r.Logger.Info("stopping")
	grace := time.AfterFunc(r.ShutdownTimeout, cancelRuns)
	defer grace.Stop()
	wg.Wait()
	r.mu.Lock()
	r.expressOn = false
	r.mu.Unlock()
	return nil
}

// loop runs a full run at start and at each scheduled time, RunDue whenever a
// freshness guard or a retry is due, and a discovering RunDue on Wake.
func (r *Refresher) loop(ctx, runCtx context.Context, sched cron.Schedule) {
	defer func() {
		r.mu.Lock()
		r.loopExited = true
		r.mu.Unlock()
	}()
	run, full, discover := true, true, true
	var nextFull time.Time
	for {
		if run {
			if full {
				// robfig/cron runs schedules in UTC here, as the daemon always has.
				nextFull = sched.Next(r.Now().UTC())
			}
			r.safeRun(runCtx, full, discover)
		}
		wakeAt := nextFull
		if due := r.NextDue(); !due.IsZero() && due.Before(wakeAt) {
			wakeAt = due
		}
		timer, stopTimer := r.NewTimer(max(wakeAt.Sub(r.Now()), 0))
		run, discover = true, false
		select {
		case <-ctx.Done():
		case <-timer:
		case <-r.wake:
			discover = true
		case <-r.poke:
			run = false // something changed beside the loop: only when to wake is computed again
		}
		stopTimer()
		if ctx.Err() != nil {
			return
		}
		full = run && !r.Now().Before(nextFull)
		discover = discover || full
	}
}

// expressLane writes each scope AddScope names as it comes, with the tokens in
// hand, Workers at a time, while the loop may be busy with a run; the loop
// does not run for it. A scope a pass is writing is left to that pass (which
// hands it back if it was pushed again meanwhile). One whose identity has no
// token yet, and one whose write failed, make the loop compute when to wake
// again: it fetches the first's tokens at once and retries the second on
// time. It returns once ctx is done and its writes in flight have ended.
func (r *Refresher) expressLane(ctx, runCtx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, max(r.Workers, 1))
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		var name string
		select {
		case name = <-r.express:
		case <-ctx.Done():
			return
		}
		r.mu.Lock()
		now := r.Now()
		sc := r.scopes[name]
		due := sc != nil && sc.due(now)
		ok := due && sc.writable(now)
		if ok {
			sc.busy = true
		}
		r.mu.Unlock()
		if !ok {
			<-slots
			if due {
				r.pokeLoop()
			}
			continue
		}
		r.lane.enter()
		wg.Go(func() {
			defer func() { <-slots }()
			defer r.lane.leave()
			wctx, cancel := context.WithTimeout(runCtx, r.runTimeout())
			defer cancel()
			if _, err := r.writeScope(wctx, sc); err != nil { // writeScope logs its own failures
				r.pokeLoop()
			}
		})
	}
}

// pokeLoop has Run's loop compute again when it must wake (something changed
// beside it), without a run. It never blocks.
func (r *Refresher) pokeLoop() {
	select {
	case r.poke <- struct{}{}:
	default: // a poke is already pending
	}
}

// runTimeout bounds a run, or one express write.
func (r *Refresher) runTimeout() time.Duration {
	if r.RunTimeout <= 0 {
		return DefaultRunTimeout
	}
	return r.RunTimeout
}

// errCut is writeScope's answer for a pass the run's deadline cut: not a
// failure of the scope, which stays due.
var errCut = errors.New("cut by the run's deadline")

// softDeadline is when a run stops taking up scopes: a little before its
// deadline, so the writes in flight end within it (a write cut midway is
// handed to the next run, but costs its request).
func softDeadline(ctx context.Context) time.Time {
	d, ok := ctx.Deadline()
	if !ok {
		return time.Now().Add(100 * 365 * 24 * time.Hour)
	}
	return d.Add(-min(time.Until(d)/10, 30*time.Second))
}

// safeRun runs under RunTimeout and turns a panic into a logged, counted
// failure. A run always gets time to write something: what it does not reach
// is due at once (NextDue), so a run with no time at all would spin.
func (r *Refresher) safeRun(ctx context.Context, full, discover bool) {
	ctx, cancel := context.WithTimeout(ctx, r.runTimeout())
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			r.setRunning(time.Time{})
			r.Logger.WithField("stack", string(debug.Stack())).WithField("panic", fmt.Sprint(p)).Error("run panicked")
			r.Metrics.run(r.Now(), 0, fmt.Errorf("panic: %v", p))
		}
	}()
	_ = r.run(ctx, full, discover) // run logs its own failures
	if full {
		// Hours pass between full runs: hand the run's garbage back to the OS
		// now rather than keep it resident until the next.
		debug.FreeOSMemory()
	}
}

// logScheduleGaps says once, at start, when the cron spec alone would leave a
// token older than half its life, and that the freshness guard covers it.
func (r *Refresher) logScheduleGaps(s cron.Schedule, spec string) {
	t := r.Now().UTC()
	var gap time.Duration
	for range 64 {
		n := s.Next(t)
		if n.IsZero() {
			break
		}
		gap = max(gap, n.Sub(t))
		t = n
	}
	log := r.Logger.WithFields(logrus.Fields{"refresh_schedule": spec, "longest_gap": gap.String()})
	if gap > TokenLifetime/2 {
		log.Info("the schedule alone leaves gaps longer than half a token's life; the freshness guard refreshes each registry in time regardless")
		return
	}
	log.Debug("schedule")
}
