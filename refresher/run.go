package refresher

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
)

// Run is the daemon loop: one run now, then one per tick of the cron spec, until
// ctx is done. A tick that comes while a run is still going is skipped, and a
// panic in a run is logged, not fatal. Once ctx is done, a run in flight gets
// ShutdownTimeout to finish before its context is cancelled; Run then returns nil.
func (r *Refresher) Run(ctx context.Context, spec string) error {
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return fmt.Errorf("refresh schedule %q: %w", spec, err)
	}
	// Runs outlive ctx by up to ShutdownTimeout, so they get their own context.
	runCtx, cancelRuns := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRuns()

	l := cronLogger{r.Logger}
	// robfig/cron v3.0.1 installs an empty chain by default: set it explicitly.
	job := cron.NewChain(cron.Recover(l), cron.SkipIfStillRunning(l)).Then(cron.FuncJob(func() {
		jctx, cancel := context.WithTimeout(runCtx, r.RunTimeout)
		defer cancel()
		_ = r.RunOnce(jctx) // RunOnce logs its own failures
	}))
	c := cron.New(cron.WithLocation(time.UTC), cron.WithLogger(l))
	c.Schedule(sched, job)
	c.Start()
	var first sync.WaitGroup
	first.Go(job.Run)

	<-ctx.Done()
	r.Logger.Info("stopping")
	stopped := c.Stop() // done when scheduled runs in flight are
	grace := time.AfterFunc(r.ShutdownTimeout, cancelRuns)
	defer grace.Stop()
	// Runs return promptly once runCtx is cancelled, at the latest after the grace.
	first.Wait()
	<-stopped.Done()
	return nil
}
