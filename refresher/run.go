package refresher

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/sirupsen/logrus"
)

// Run is the daemon loop, until ctx is done:
//
//   - a full run now, and one per tick of the cron spec;
//   - between ticks, the freshness guard: each pair is written again no later
//     than half of its token's remaining life, whatever the spec says;
//   - a failure is retried with capped exponential backoff and jitter, touching
//     only what failed, instead of waiting for the next tick.
//
// All runs happen one at a time on one goroutine. Once ctx is done, a run in
// flight gets ShutdownTimeout to finish before its context is cancelled; Run then
// returns nil.
func (r *Refresher) Run(ctx context.Context, spec string) error {
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return fmt.Errorf("refresh schedule %q: %w", spec, err)
	}
	r.logScheduleGaps(sched, spec)

	tick := make(chan struct{}, 1)
	l := &cronLogger{l: r.Logger}
	defer l.close()
	// robfig/cron v3.0.1 installs an empty chain by default: set it explicitly.
	c := cron.New(cron.WithLocation(time.UTC), cron.WithLogger(l), cron.WithChain(cron.Recover(l), cron.SkipIfStillRunning(l)))
	c.Schedule(sched, cron.FuncJob(func() {
		select {
		case tick <- struct{}{}:
		default: // a full run is already pending
		}
	}))
	c.Start()
	defer c.Stop()

	// Runs outlive ctx by up to ShutdownTimeout, so they get their own context.
	runCtx, cancelRuns := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRuns()
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		r.loop(ctx, runCtx, tick)
	}()

	<-ctx.Done()
	r.Logger.Info("stopping")
	grace := time.AfterFunc(r.ShutdownTimeout, cancelRuns)
	defer grace.Stop()
	<-loopDone
	return nil
}

// loop runs a full run at start and on every tick, and RunDue whenever the
// freshness guard or a retry is due.
func (r *Refresher) loop(ctx, runCtx context.Context, tick <-chan struct{}) {
	defer func() {
		r.mu.Lock()
		r.loopExited = true
		r.mu.Unlock()
	}()
	full := true
	for {
		r.safeRun(runCtx, full)
		var wake <-chan time.Time
		var timer *time.Timer
		if next := r.NextDue(); !next.IsZero() {
			timer = time.NewTimer(max(next.Sub(r.Now()), 0))
			wake = timer.C
		}
		select {
		case <-ctx.Done():
		case <-tick:
			full = true
		case <-wake:
			full = false
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// safeRun runs under RunTimeout and turns a panic into a logged failure.
func (r *Refresher) safeRun(ctx context.Context, full bool) {
	ctx, cancel := context.WithTimeout(ctx, r.RunTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			r.setRunning(time.Time{})
			r.Logger.WithField("panic", p).Error("run panicked")
		}
	}()
	_ = r.run(ctx, full) // run logs its own failures
	// Hours pass between runs: hand the run's garbage back to the OS now
	// rather than keep it resident until the next.
	debug.FreeOSMemory()
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
