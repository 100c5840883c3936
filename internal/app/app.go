// Package app is the daemon's wiring: it reads the settings, builds the part
// of every kind of target they turn on (the one table is Kinds), the ECR
// sources, the refresher, leader election and the HTTP endpoints, and runs
// them: as a daemon, --once or --dry-run, or --demo. See docs/architecture.md.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/buildinfo"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/demo"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/httpapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/logging"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/settings"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/setup"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/leader"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// ExitError carries a process exit code out of Run; a nil Err means every
// failure was logged already.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// Main runs the command line and returns the process's exit code, having
// printed on stderr what was not logged already.
func Main(ctx context.Context, stamp buildinfo.Stamp, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	err := runCommand(ctx, stamp, args, getenv, stdout, stderr, true)
	if err == nil {
		return 0
	}
	code := 1
	var ee *ExitError
	if errors.As(err, &ee) {
		code = ee.Code
	}
	if ee == nil || ee.Err != nil {
		fmt.Fprintln(stderr, err)
	}
	return code
}

// Run is the command: a subcommand (healthcheck, version, help), or the
// daemon. Bad settings return exit code 2 before any network call; a --once
// or --dry-run run that did not write (or plan) everything returns exit code 1.
func Run(ctx context.Context, stamp buildinfo.Stamp, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return runCommand(ctx, stamp, args, getenv, stdout, stderr, false)
}

// runCommand is Run; process is true when it is the whole process (Main), which
// alone sets process-wide state: client-go's klog logger.
func runCommand(ctx context.Context, stamp buildinfo.Stamp, args []string, getenv func(string) string, stdout, stderr io.Writer, process bool) error {
	info := buildinfo.Current(stamp)
	kinds := Kinds()
	if len(args) > 0 {
		switch args[0] {
		case "healthcheck":
			return healthcheck(ctx, args[1:], getenv, stdout)
		case "version":
			buildinfo.Write(stdout, info)
			return nil
		case "help":
			writeHelp(stdout, kinds)
			return nil
		}
	}
	v, err := settings.Parse(Sections(kinds), args, getenv, nil)
	switch {
	case errors.Is(err, settings.ErrHelp):
		writeHelp(stdout, kinds)
		return nil
	case err != nil:
		return &ExitError{Code: 2, Err: err}
	case v.Bool("HELP"):
		writeHelp(stdout, kinds)
		return nil
	case v.Bool("VERSION"):
		buildinfo.Write(stdout, info)
		return nil
	}
	m := realMode(getenv)
	if v.Bool("DEMO") {
		d := demo.Start(stdout, v.Bool("DEMO_RANCHER2"))
		defer d.Close()
		m = demoMode(d, stdout)
		if v, err = settings.Parse(Sections(kinds), args, getenv, d.Settings()); err != nil {
			return &ExitError{Code: 2, Err: err}
		}
	}
	m.process = process
	dm, err := configure(ctx, v, kinds, getenv, m, info, stderr)
	if err != nil {
		return &ExitError{Code: 2, Err: err}
	}
	return dm.run(ctx)
}

// Check reads and checks the settings in args and getenv as the daemon does,
// building every part they turn on (no network call), and returns the shared
// settings and every problem found.
func Check(args []string, getenv func(string) string) (Config, error) {
	kinds := Kinds()
	v, err := settings.Parse(Sections(kinds), args, getenv, nil)
	if err != nil {
		return Config{}, err
	}
	cfg := parseShared(v, getenv)
	d, _ := deps(cfg, logging.New(io.Discard, cfg.LogLevel, cfg.LogFormat), prometheus.NewRegistry(), buildinfo.Current(buildinfo.Stamp{}), false)
	_, err = buildParts(v, kinds, d)
	return cfg, errors.Join(v.Err(), err)
}

// daemon is everything built, nothing started.
type daemon struct {
	cfg     Config
	mode    mode
	log     logrus.FieldLogger
	reg     *prometheus.Registry
	parts   parts
	r       *refresher.Refresher
	elector *leader.Elector // nil without LEADER_ELECTION
}

// deps are what every kind is built with, and the cluster they share with
// leader election; routeKlog sends client-go's log lines to log.
func deps(cfg Config, log logrus.FieldLogger, reg prometheus.Registerer, info buildinfo.Info, routeKlog bool) (setup.Deps, *cluster) {
	c := &cluster{userAgent: info.UserAgent(), limits: cfg.Limits, log: log, routeKlog: routeKlog}
	return setup.Deps{Log: log, Metrics: reg, UserAgent: info.UserAgent(), DryRun: cfg.DryRun, Kubernetes: c.config,
		KubeQPS: cfg.Limits.KubeQPS, KubeBurst: cfg.Limits.KubeBurst}, c
}

// configure checks every setting and builds the daemon; nothing here touches
// the network. Every problem is returned at once.
func configure(ctx context.Context, v *settings.Values, kinds []setup.Kind, getenv func(string) string, m mode, info buildinfo.Info, stderr io.Writer) (*daemon, error) {
	cfg := parseShared(v, getenv)
	log := logging.New(stderr, cfg.LogLevel, cfg.LogFormat)
	reg := prometheus.NewRegistry()
	d, cl := deps(cfg, log, reg, info, m.process)
	ps, err := buildParts(v, kinds, d)
	if err := errors.Join(v.Err(), err); err != nil {
		return nil, err
	}
	elector, err := newElector(cfg, cl, log)
	if err != nil {
		return nil, err
	}
	a := m.aws(log)
	own, err := ownConfig(ctx, cfg, a)
	if err != nil {
		return nil, err
	}
	r := refresher.New(sourcesOf(own, cfg, a, "", log), ps.scopes())
	r.Discover, r.ExplainNoScopes = ps.discover(), ps.explainNoScopes
	r.Sources = newResolver(own, cfg, a, reg, log).Sources
	r.DryRun, r.Logger = cfg.DryRun, log
	r.ShutdownTimeout = cfg.ShutdownTimeout
	r.Workers = cfg.Limits.WriteConcurrency
	r.RetryMinInterval, r.RetryMaxInterval = cfg.RetryMinInterval, cfg.RetryMaxInterval
	r.Metrics = refresher.NewMetrics(reg)
	r.Metrics.PerScope = cfg.MetricsPerScope
	reg.MustRegister(r.Collector(), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildinfo.Register(reg, info)
	if m.runDone != nil {
		r.OnRunDone = m.runDone(r, cfg.Once || cfg.DryRun)
	}

	if m.legacyAWSFiles {
		warnLegacyAWSFiles(log, getenv)
	}
	log.WithFields(ps.fields).WithField("version", info.String()).Info("starting")
	for _, w := range v.Warnings() {
		log.Warn(w)
	}
	return &daemon{cfg: cfg, mode: m, log: log, reg: reg, parts: ps, r: r, elector: elector}, nil
}

// run runs the daemon until ctx is done, or one run with --once or --dry-run.
func (d *daemon) run(ctx context.Context) error {
	if d.cfg.Once || d.cfg.DryRun {
		return d.once(ctx)
	}
	ln, err := d.mode.listen(net.JoinHostPort(d.cfg.ListenAddress, strconv.Itoa(d.cfg.ListenPort)))
	if err != nil {
		return &ExitError{Code: 2, Err: fmt.Errorf("LISTEN_ADDRESS, LISTEN_PORT: %w", err)}
	}
	if d.mode.listening != nil {
		d.mode.listening(ln.Addr())
	}
	var e httpapi.Elected
	if d.elector != nil {
		e = d.elector
	}
	srv := httpapi.Serve(ctx, ln, httpapi.Handler(d.r, e, d.reg), d.log)
	defer srv.Close()
	if err := d.parts.start(ctx, d.r); err != nil {
		d.log.WithError(err).Error("a target could not start watching its platform; its scopes are found at each run")
	}
	// Only the leader writes; losing the lease stops every write at once.
	write := func(ctx context.Context) error {
		return d.parts.lead(ctx, func(ctx context.Context) error { return d.r.Run(ctx, d.cfg.RefreshSchedule) })
	}
	if d.elector == nil {
		return write(ctx)
	}
	// A lost lease must stop a run in flight now, not after the shutdown
	// grace: the new leader rewrites whatever this one did not finish.
	d.r.ShutdownTimeout = 0
	var werr error
	err = d.elector.Run(ctx, func(ctx context.Context) { werr = write(ctx) })
	if errors.Is(err, leader.ErrLeaseLost) {
		return &ExitError{Code: 1, Err: fmt.Errorf("%w; exiting so this replica restarts as a follower", err)}
	}
	return errors.Join(err, werr)
}

// once is --once and --dry-run: the watches' first listing and one run, both
// bounded like a scheduled run (RunTimeout) so that it cannot hang.
func (d *daemon) once(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, d.r.RunTimeout)
	defer cancel()
	startErr := d.parts.start(ctx, d.r)
	if startErr != nil {
		d.log.WithError(startErr).Error("a target could not list its platform")
	}
	if err := d.r.RunOnce(ctx); err != nil || startErr != nil {
		return &ExitError{Code: 1} // each failure was logged
	}
	return nil
}
