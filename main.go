// Command rancher-ecr-credentials keeps Rancher registry credentials for private
// Amazon ECR registries fresh. main only wires: configuration in config.go, the
// work in refresher/ and rancherapi/.
package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/sirupsen/logrus"
	// CA roots built into the binary, used only when the system has none: the image is FROM scratch
	// (no /etc/ssl), yet the daemon must verify AWS's and Rancher's TLS. A host or Pod that provides
	// roots (SSL_CERT_FILE, /etc/ssl/certs) still wins. https://pkg.go.dev/golang.org/x/crypto/x509roots/fallback
	_ "golang.org/x/crypto/x509roots/fallback"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/cattle"
)

// version is stamped at build time with -ldflags "-X main.version=…".
var version string

// exitError carries a process exit code out of run.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		code := 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		if ee == nil || ee.err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		os.Exit(code)
	}
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// run does all the wiring. Configuration problems return exit code 2 before any
// network call; a --once run that did not write everything returns exit code 1.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "healthcheck" {
		return healthcheck(ctx, args[1:], getenv, stdout)
	}
	if len(args) > 0 && args[0] == "version" {
		writeVersion(stdout, currentBuildInfo())
		return nil
	}
	cfg, err := ParseConfig(args, getenv)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	switch {
	case cfg.Help:
		writeHelp(stdout)
		return nil
	case cfg.Version:
		writeVersion(stdout, currentBuildInfo())
		return nil
	}

	log := newLogger(cfg, stderr)
	if !cfg.Demo {
		warnLegacyAWSFiles(log, getenv)
	}
	var demo *demoStandIns
	var ecrOpts []func(*ecr.Options)
	var awsOpts []func(*awsconfig.LoadOptions) error
	if cfg.Demo {
		demo = startDemo(stdout, cfg.DemoRancher2)
		defer demo.Close()
		cfg = demo.configure(cfg)
		ecrOpts = append(ecrOpts, demo.ecrOption)
	}

	kc, err := newKube(cfg, log)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	r, reg, err := newRefresher(ctx, cfg, log, awsOpts, ecrOpts)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	kc.attach(r)
	if demo != nil {
		r.OnRunDone = func(error) {
			demo.report(stdout)
			demo.next(stdout, r.NextDue(), r.Now(), cfg.Once)
		}
	}
	log.WithFields(cfg.LogFields()).WithField("version", buildVersion()).Info("starting")
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}

	if cfg.Once || cfg.DryRun {
		if kc != nil && kc.target != nil {
			kc.target.Start(ctx)
		}
		return runOnce(ctx, r)
	}

	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.ListenAddress, strconv.Itoa(cfg.ListenPort)))
	if err != nil && demo != nil {
		ln, err = net.Listen("tcp", "127.0.0.1:0") // the demo must run on a busy machine too
	}
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("LISTEN_ADDRESS, LISTEN_PORT: %w", err)}
	}
	if demo != nil {
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		fmt.Fprintf(stdout, "demo: daemon endpoints: http://127.0.0.1:%s/readyz, /healthz, /metrics, /ping (Ctrl-C to stop)\n", port)
	}
	var st state = r
	if kc != nil && kc.elector != nil {
		st = electedState{r, kc.elector}
	}
	srv := serveHTTP(ctx, ln, newHandler(st, reg), log)
	defer srv.Close()
	return kc.run(ctx, r, func(ctx context.Context) error { return r.Run(ctx, cfg.RefreshSchedule) })
}

// runOnce is --once: one run, bounded like a scheduled run (RunTimeout) so it
// cannot hang forever.
func runOnce(ctx context.Context, r *refresher.Refresher) error {
	ctx, cancel := context.WithTimeout(ctx, r.RunTimeout)
	defer cancel()
	if err := r.RunOnce(ctx); err != nil {
		return &exitError{code: 1} // each failure was logged by RunOnce
	}
	return nil
}

// newRefresher builds the refresher and its metrics registry from the
// configuration. Nothing here touches the network.
func newRefresher(ctx context.Context, cfg Config, log logrus.FieldLogger, awsOpts []func(*awsconfig.LoadOptions) error, ecrOpts []func(*ecr.Options)) (*refresher.Refresher, *prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	scopes, discover, err := newScopes(cfg, log, reg)
	if err != nil {
		return nil, nil, err
	}
	sources, err := newSources(ctx, cfg, append(awsOpts, awsconfig.WithLogger(sdkLogger(log))), ecrOpts)
	if err != nil {
		return nil, nil, err
	}
	r := refresher.New(sources, scopes)
	r.Discover = discover
	r.Logger = log
	r.ProxyHost, r.DryRun = cfg.ProxyHost, cfg.DryRun
	r.ShutdownTimeout = cfg.ShutdownTimeout
	r.RetryMinInterval, r.RetryMaxInterval = cfg.RetryMinInterval, cfg.RetryMaxInterval
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerBuildInfo(reg, currentBuildInfo())
	r.Metrics = refresher.NewMetrics(reg)
	reg.MustRegister(r.Collector())
	return r, reg, nil
}

func newLogger(cfg Config, out io.Writer) *logrus.Logger {
	l := logrus.New()
	l.SetOutput(out)
	l.SetLevel(cfg.LogLevel)
	if cfg.LogFormat == "json" {
		l.SetFormatter(&logrus.JSONFormatter{})
	} else {
		l.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, DisableColors: true})
	}
	return l
}

// newScopes builds one Rancher client per scope: the URL's own, one per
// RANCHER_PROJECTS entry, or, for RANCHER_PROJECTS=all, a discover function that
// lists the projects the key can see at every full run.
func newScopes(cfg Config, log logrus.FieldLogger, reg prometheus.Registerer) ([]refresher.Scope, func(context.Context) ([]refresher.Scope, error), error) {
	if cfg.InCluster {
		return newInClusterScopes(cfg, log)
	}
	if cfg.CattleURL == "" && !cfg.Demo {
		return nil, nil, nil // Kubernetes only
	}
	hc, err := rancherHTTPClient(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	client, err := rancherapi.NewClient(cfg.CattleURL, cfg.CattleAccessKey, cfg.CattleSecretKey, hc)
	if err != nil {
		return nil, nil, fmt.Errorf("CATTLE_URL: %w", err)
	}
	client.UserAgent = "rancher-ecr-credentials/" + buildVersion()
	client.Debugf = log.Debugf
	r2, err := newRancher2(cfg, client, log, reg)
	if err != nil {
		return nil, nil, err
	}
	if cfg.AllProjects {
		discover := func(ctx context.Context) ([]refresher.Scope, error) {
			projects, err := client.ListProjects(ctx)
			if err != nil {
				return nil, err
			}
			var scopes []refresher.Scope
			for _, p := range projects {
				switch {
				case p.State != "" && p.State != "active":
				case client.Rancher2() && p.System():
					// Rancher's System project holds cattle-system and kube-system:
					// never written unless named in RANCHER_PROJECTS.
					log.WithField("project", p.ID).Debug("RANCHER_PROJECTS=all skips Rancher's System project; name it to write there")
				default:
					scopes = append(scopes, scopeFor(cfg, client.WithProject(p.ID), r2))
				}
			}
			return scopes, nil
		}
		return nil, discover, nil
	}
	if len(cfg.RancherProjects) == 0 {
		own := scopeFor(cfg, client, r2)
		if client.ProjectID() != "" || client.Rancher2() {
			return []refresher.Scope{own}, nil, nil
		}
		return nil, ownEnvironment(cfg, client, r2, own, log), nil
	}
	var scopes []refresher.Scope
	for _, p := range cfg.RancherProjects {
		scopes = append(scopes, scopeFor(cfg, client.WithProject(p), r2))
	}
	return scopes, nil, nil
}

// ownEnvironment names the scope of an unscoped Rancher 1.x URL (…/v1,
// …/v2-beta) by the environment the key belongs to, so logs, /readyz and
// metrics say "1a5", not "default": an environment key lists exactly its own
// environment. A key that sees several (an account key writes into its default
// environment, which the API does not name) or a failed listing keeps "default".
func ownEnvironment(cfg Config, client *rancherapi.Client, r2 *rancher2, own refresher.Scope, log logrus.FieldLogger) func(context.Context) ([]refresher.Scope, error) {
	return func(ctx context.Context) ([]refresher.Scope, error) {
		projects, err := client.ListProjects(ctx)
		if err != nil || len(projects) != 1 {
			l := log.WithField("environments", len(projects))
			if err != nil {
				l = l.WithError(err)
			}
			l.Debug("the API key's own environment is not known; its scope is named \"default\"")
			return []refresher.Scope{own}, nil
		}
		return []refresher.Scope{scopeFor(cfg, client.WithProject(projects[0].ID), r2)}, nil
	}
}

// scopeFor names a client's scope and picks its target: the one place that
// knows every kind (litestream's newReplicaFromConfig has the same role).
// Registries and credentials on Rancher 1.x, dockerCredentials on Rancher 2.x.
func scopeFor(cfg Config, c *rancherapi.Client, r2 *rancher2) refresher.Scope {
	name := c.ProjectID()
	if name == "" {
		name = "default"
	}
	if c.Rancher2() {
		return refresher.Scope{Name: name, Target: r2.target(c)}
	}
	return refresher.Scope{Name: name, Target: &cattle.Target{Store: &rancherapi.Cattle{Client: c}, AutoCreate: cfg.AutoCreate}}
}

// rancherHTTPClient honours RANCHER_CA_FILE and RANCHER_INSECURE_SKIP_VERIFY, and
// keeps the default transport's proxy-from-environment and keep-alives.
func rancherHTTPClient(cfg Config, log logrus.FieldLogger) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = rancherapi.DefaultMaxIdleConnsPerHost
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.RancherCAFile != "" {
		pem, err := os.ReadFile(cfg.RancherCAFile)
		if err != nil {
			return nil, fmt.Errorf("RANCHER_CA_FILE: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("RANCHER_CA_FILE: %s holds no PEM certificate", cfg.RancherCAFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	if cfg.RancherInsecure {
		log.Warn("RANCHER_INSECURE_SKIP_VERIFY is true: Rancher's TLS certificate is NOT verified; anyone on the path can read the API keys and tokens")
		tr.TLSClientConfig.InsecureSkipVerify = true
	}
	return &http.Client{Transport: tr, Timeout: rancherapi.DefaultTimeout}, nil
}

// newSources builds one ECR client per region. AWS credentials come from the SDK's
// default chain; AWS_ROLE_ARN is assumed through STS unless web identity owns it.
// Nothing here touches the network.
func newSources(ctx context.Context, cfg Config, awsOpts []func(*awsconfig.LoadOptions) error, ecrOpts []func(*ecr.Options)) ([]refresher.Source, error) {
	awsCfg := demoAWSConfig(cfg.Region)
	if !cfg.Demo {
		var err error
		awsCfg, err = awsconfig.LoadDefaultConfig(ctx, append([]func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(cfg.Region)}, awsOpts...)...)
		if err != nil {
			return nil, fmt.Errorf("aws configuration: %w", err)
		}
		awsCfg.Credentials = refresher.ExplainCredentials(awsCfg.Credentials, os.Getenv)
	}
	if cfg.RoleARN != "" && !cfg.WebIdentity {
		p := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(awsCfg), cfg.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = cfg.RoleSessionName
			if cfg.RoleExternalID != "" {
				o.ExternalID = aws.String(cfg.RoleExternalID)
			}
		})
		awsCfg.Credentials = aws.NewCredentialsCache(p)
	}
	var order []string
	ids := map[string][]string{}
	if len(cfg.Registries) == 0 {
		order = []string{cfg.Region}
	}
	for _, r := range cfg.Registries {
		if _, ok := ids[r.Region]; !ok {
			order = append(order, r.Region)
		}
		ids[r.Region] = append(ids[r.Region], r.ID)
	}
	var sources []refresher.Source
	for _, region := range order {
		opts := append([]func(*ecr.Options){func(o *ecr.Options) { o.Region = region }}, ecrOpts...)
		sources = append(sources, refresher.Source{Region: region, RegistryIDs: ids[region], Client: ecr.NewFromConfig(awsCfg, opts...)})
	}
	return sources, nil
}

// serveHTTP serves h on ln until the returned server is closed.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, log logrus.FieldLogger) *http.Server {
	srv := newHTTPServer(ctx, h)
	log.WithField("address", ln.Addr().String()).Info("http listening")
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.WithError(err).Error("http server stopped")
		}
	}()
	return srv
}

// healthcheck GETs /healthz on the daemon's address (LISTEN_ADDRESS and
// LISTEN_PORT, or --listen-address and --listen-port after the subcommand):
// exit 0 when it answers 200, 1 otherwise — never 2, which Docker reserves.
func healthcheck(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	port := fs.String("listen-port", cmp.Or(getenv("LISTEN_PORT"), strconv.Itoa(DefaultListenPort)), "port of the daemon")
	addr := fs.String("listen-address", getenv("LISTEN_ADDRESS"), "address the daemon binds")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 1, err: fmt.Errorf("healthcheck: %w", err)}
	}
	u, err := healthcheckURL(*addr, *port)
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("healthcheck: %w", err)}
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("healthcheck: %w", err)}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("healthcheck: %w", err)}
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &exitError{code: 1, err: fmt.Errorf("healthcheck: %s", resp.Status)}
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}
