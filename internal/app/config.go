package app

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/sirupsen/logrus"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/ecrsource"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/httpapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/setup"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/registryhost"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/tenantrole"
)

// Defaults of the settings every mode shares, as documented in README.md and --help.
const (
	DefaultListenPort       = 8080
	DefaultRefreshSchedule  = "@every 6h"
	DefaultShutdownTimeout  = refresher.DefaultShutdownTimeout
	DefaultRetryMinInterval = refresher.DefaultRetryMinInterval
	DefaultRetryMaxInterval = refresher.DefaultRetryMaxInterval
	DefaultRoleSessionName  = "rancher-ecr-credentials"
	DefaultLogLevel         = "info"
	DefaultLogFormat        = "text"
)

// Floors below which a setting would hammer ECR and the platforms: refused at start.
const (
	// MinRefreshGap is the shortest gap REFRESH_SCHEDULE may leave between two
	// runs: cron's own granularity. ECR tokens live 12 h, so more is never needed.
	MinRefreshGap = time.Minute
	// MinRetryMinInterval is the shortest RETRY_MIN_INTERVAL: the first retry of a
	// failure, and the shortest time between two refreshes of one registry.
	MinRetryMinInterval = 5 * time.Second
	// MinRetryMaxInterval is the shortest RETRY_MAX_INTERVAL, the wait after
	// errors that retrying will not fix (a rejected key): at most one try a minute.
	MinRetryMaxInterval = time.Minute
)

// ecrSection is the settings of ECR every mode shares.
func ecrSection() setup.Section {
	return setup.Section{
		Title: "ECR (every mode)",
		Requires: "AWS_REGION (or AWS_DEFAULT_REGION) unless every AWS_ECR_REGISTRY_IDS entry names its region, and AWS credentials " +
			"from the SDK's chain: keys, a profile, IRSA, EKS Pod Identity or an instance role",
		Settings: []setup.Setting{
			{Env: "AWS_REGION", Alias: "AWS_DEFAULT_REGION", DefaultHelp: "required unless every registry id names its region", Usage: "region of the ECR registries"},
			{Env: "AWS_ECR_REGISTRY_IDS", DefaultHelp: "the caller's own", Usage: "comma list of 12-digit registry ids, each optionally id:region"},
			{Env: "AWS_ROLE_ARN", Usage: "IAM role to assume for ECR (ignored when AWS_WEB_IDENTITY_TOKEN_FILE is set: the SDK assumes it)"},
			{Env: "AWS_ROLE_SESSION_NAME", Default: DefaultRoleSessionName, Usage: "session name for the assumed role"},
			{Env: "AWS_ROLE_EXTERNAL_ID", Usage: "external id for the assumed role, and for every tenant role"},
			{Env: tenantrole.EnvAllowed, DefaultHelp: "none: every tenant role refused", Usage: "comma list of IAM role ARNs or globs (arn:aws:iam::111122223333:role/team-*) " +
				"a namespace or Rancher project may name in its annotation " + tenantrole.Annotation + " to get that role's tokens instead of the daemon's; any other role is refused and gets no credential"},
			{Env: "ECR_PROXY_HOST", Usage: "write credentials under this host instead of the ECR host (one registry only)"},
			{Env: "AWS_ECR_PUBLIC", Default: "false", Bool: true, Usage: "also keep public.ecr.aws (ECR Public) written wherever the ECR hosts are, with its own token from us-east-1"},
		},
		Notes: []string{
			"The AWS SDK's own variables (AWS_ACCESS_KEY_ID, AWS_PROFILE, AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ENDPOINT_URL_ECR,",
			"AWS_ENDPOINT_URL_ECR_PUBLIC, AWS_ENDPOINT_URL_STS, ...) and HTTPS_PROXY / NO_PROXY are honoured as they are.",
			"ECR Public is asked in us-east-1 whatever AWS_REGION says (its API is there only); ECR_PROXY_HOST stands for the",
			"ECR registry, never for public.ecr.aws.",
		},
	}
}

// daemonSection is the settings of the daemon itself, every mode's.
func daemonSection() setup.Section {
	return setup.Section{
		Title: "Daemon (every mode)",
		Settings: []setup.Setting{
			{Env: "LISTEN_ADDRESS", DefaultHelp: "all interfaces", Usage: "IP address or host name the HTTP server binds, e.g. 127.0.0.1"},
			{Env: "LISTEN_PORT", Default: strconv.Itoa(DefaultListenPort), Usage: "HTTP port for /ping, /healthz, /readyz and /metrics (0: any free port)"},
			{Env: "LOG_LEVEL", Default: DefaultLogLevel, Usage: "debug, info, warn or error"},
			{Env: "LOG_FORMAT", Default: DefaultLogFormat, Usage: "text or json"},
			{Env: "REFRESH_SCHEDULE", Default: DefaultRefreshSchedule, Usage: "cron spec (5 fields, or @every 4h style); runs at least " + MinRefreshGap.String() + " apart"},
			{Env: "SHUTDOWN_TIMEOUT", Default: DefaultShutdownTimeout.String(), Usage: "how long a stop waits for a run in flight"},
			{Env: "RETRY_MIN_INTERVAL", Default: DefaultRetryMinInterval.String(), Usage: "first wait before retrying a failure; also the shortest time between two refreshes of a registry (at least " + MinRetryMinInterval.String() + ")"},
			{Env: "RETRY_MAX_INTERVAL", Default: DefaultRetryMaxInterval.String(), Usage: "longest wait before retrying a failure, and the wait after errors retrying will not fix (at least " + MinRetryMaxInterval.String() + ")"},
			{Env: "RUN_ONCE", Flag: "once", Default: "false", Bool: true, Usage: "one run, then exit 0 if every registry was written everywhere, 1 otherwise"},
			{Env: "DRY_RUN", Flag: "dry-run", Default: "false", Bool: true, Usage: "read everything and log the planned writes, write nothing"},
			{Env: "METRICS_PER_SCOPE", Default: "false", Bool: true, Usage: "label metric series with each scope (namespace, project) instead of its target kind: one series per scope, for small clusters"},
			{Env: "LEADER_ELECTION", Default: "false", Bool: true, Usage: "with several replicas, only the holder of the Lease rancher-ecr-credentials writes (needs a Kubernetes cluster)"},
			{Env: "LEADER_ELECTION_NAMESPACE", DefaultHelp: "the pod's own namespace", Usage: "namespace of that Lease"},
			{Env: "DEMO", Flag: "demo", Default: "false", Bool: true, FlagOnly: true, Usage: "run against built-in local stand-ins of ECR and Rancher"},
			{Env: "DEMO_RANCHER2", Flag: "demo-rancher2", Default: "false", Bool: true, FlagOnly: true, Usage: "with --demo: stand in for Rancher 2.x (projects, dockerCredentials) instead of Rancher 1.x"},
			{Env: "VERSION", Flag: "version", Default: "false", Bool: true, FlagOnly: true, Usage: "print the version and exit (also: the version subcommand)"},
			{Env: "HELP", Flag: "help", Default: "false", Bool: true, FlagOnly: true, Usage: "print this help and exit (also: the help subcommand)"},
		},
	}
}

// Registry is one entry of AWS_ECR_REGISTRY_IDS.
type Registry struct {
	ID     string
	Region string
}

// Config is the settings every mode shares, checked.
type Config struct {
	Region     string
	Registries []Registry // empty: the caller's own registry in Region
	RoleARN    string
	// RoleSessionName and RoleExternalID go with RoleARN.
	RoleSessionName, RoleExternalID string
	// AllowedRoles are the roles a tenant may name (AWS_ALLOWED_ROLE_ARNS).
	AllowedRoles tenantrole.AllowList
	// WebIdentity is true when AWS_WEB_IDENTITY_TOKEN_FILE is set: the SDK's
	// web-identity chain then owns AWS_ROLE_ARN.
	WebIdentity bool
	ProxyHost   string
	// Public adds ECR Public's host, public.ecr.aws, with its own token.
	Public bool

	ListenAddress    string // "" binds every interface
	ListenPort       int
	LogLevel         logrus.Level
	LogFormat        string
	RefreshSchedule  string
	ShutdownTimeout  time.Duration
	RetryMinInterval time.Duration
	RetryMaxInterval time.Duration

	Once, DryRun    bool
	MetricsPerScope bool
	// Limits are how fast the daemon writes.
	Limits Limits
	// LeaderElection: only the holder of the Lease writes (any mode; needs a cluster).
	LeaderElection          bool
	LeaderElectionNamespace string // empty: the Pod's (or kubeconfig context's) namespace
}

var (
	accountRE = regexp.MustCompile(`^[0-9]{12}$`)
	regionRE  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
)

// parseShared reads and checks the settings every mode shares, reporting
// every problem through v. getenv is read for what the AWS SDK owns.
func parseShared(v setup.Values, getenv func(string) string) Config {
	c := Config{
		Region: v.Get("AWS_REGION"), RoleARN: v.Get("AWS_ROLE_ARN"),
		RoleSessionName: v.Get("AWS_ROLE_SESSION_NAME"), RoleExternalID: v.Get("AWS_ROLE_EXTERNAL_ID"),
		WebIdentity:     getenv("AWS_WEB_IDENTITY_TOKEN_FILE") != "",
		RefreshSchedule: v.Get("REFRESH_SCHEDULE"), LogFormat: strings.ToLower(v.Get("LOG_FORMAT")),
		ShutdownTimeout: v.Duration("SHUTDOWN_TIMEOUT"), RetryMinInterval: v.Duration("RETRY_MIN_INTERVAL"),
		RetryMaxInterval: v.Duration("RETRY_MAX_INTERVAL"), Once: v.Bool("RUN_ONCE"), DryRun: v.Bool("DRY_RUN"), Public: v.Bool("AWS_ECR_PUBLIC"),
		MetricsPerScope: v.Bool("METRICS_PER_SCOPE"), LeaderElection: v.Bool("LEADER_ELECTION"),
		LeaderElectionNamespace: v.Get("LEADER_ELECTION_NAMESPACE"),
	}
	switch {
	case c.RetryMinInterval > 0 && c.RetryMinInterval < MinRetryMinInterval:
		v.Problem("RETRY_MIN_INTERVAL", "%s would retry and refresh too often: use %s or more", c.RetryMinInterval, MinRetryMinInterval)
	case c.RetryMaxInterval > 0 && c.RetryMaxInterval < MinRetryMaxInterval:
		v.Problem("RETRY_MAX_INTERVAL", "%s would retry errors that retrying cannot fix (a rejected key) too often: use %s or more", c.RetryMaxInterval, MinRetryMaxInterval)
	case c.RetryMinInterval > 0 && c.RetryMaxInterval > 0 && c.RetryMinInterval > c.RetryMaxInterval:
		v.Problem("RETRY_MAX_INTERVAL", "%s is shorter than RETRY_MIN_INTERVAL %s", c.RetryMaxInterval, c.RetryMinInterval)
	}
	c.Limits = parseLimits(v)
	c.Registries = parseRegistries(v, c.Region)
	switch {
	case c.Region == "" && allNameRegion(c.Registries):
		c.Region = c.Registries[0].Region // for the SDK's own calls (STS)
	case c.Region == "":
		v.Problem("AWS_REGION", "required (or AWS_DEFAULT_REGION), e.g. us-east-1, unless every AWS_ECR_REGISTRY_IDS entry names its region as id:region")
	case !regionRE.MatchString(c.Region):
		v.Problem("AWS_REGION", "%q is not an AWS region name such as us-east-1", c.Region)
	}
	c.AllowedRoles = parseAllowedRoles(v)
	if c.RoleARN != "" && !strings.HasPrefix(c.RoleARN, "arn:") {
		v.Problem("AWS_ROLE_ARN", "%q is not an ARN such as arn:aws:iam::111122223333:role/ecr-read", c.RoleARN)
	}
	if p := v.Get("ECR_PROXY_HOST"); p != "" {
		h, err := registryhost.NormalizeHost(p)
		switch {
		case err != nil:
			v.Problem("ECR_PROXY_HOST", "%q is not a host: %v", p, err)
		case len(c.Registries) > 1:
			v.Problem("ECR_PROXY_HOST", "set, but AWS_ECR_REGISTRY_IDS names %d registries: one proxy host can only stand for one registry", len(c.Registries))
		case c.Public && h == ecrsource.PublicHost:
			v.Problem("ECR_PROXY_HOST", "%q is ECR Public's own host, which AWS_ECR_PUBLIC=true writes: name the host of the proxy in front of the ECR registry, or unset one of them", p)
		}
		c.ProxyHost = h
	}
	addr, err := httpapi.ParseListenAddress(v.Get("LISTEN_ADDRESS"))
	if err != nil {
		v.Problem("LISTEN_ADDRESS", "%v", err)
	}
	c.ListenAddress = addr
	port, err := strconv.Atoi(v.Get("LISTEN_PORT"))
	if err != nil || port < 0 || port > 65535 {
		v.Problem("LISTEN_PORT", "%q is not a port number (0-65535)", v.Get("LISTEN_PORT"))
	}
	c.ListenPort = port
	c.LogLevel = parseLogLevel(v)
	if c.LogFormat != "text" && c.LogFormat != "json" {
		v.Problem("LOG_FORMAT", "%q is not text or json", v.Get("LOG_FORMAT"))
	}
	checkSchedule(v, c.RefreshSchedule)
	if ns := c.LeaderElectionNamespace; ns != "" {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			v.Problem("LEADER_ELECTION_NAMESPACE", "%q is not a namespace name: %s", ns, strings.Join(errs, "; "))
		}
	}
	return c
}

// parseAllowedRoles reads AWS_ALLOWED_ROLE_ARNS, reporting every bad entry and
// warning about entries that let a tenant name every role of an account.
func parseAllowedRoles(v setup.Values) tenantrole.AllowList {
	a, errs := tenantrole.ParseAllowList(v.List(tenantrole.EnvAllowed))
	for _, err := range errs {
		v.Problem(tenantrole.EnvAllowed, "%v", err)
	}
	for _, p := range a.Broad() {
		v.Warn("%s: %s lets a namespace or project name any role of that account, another team's included; list each tenant's role (or a prefix such as role/team-*) instead", tenantrole.EnvAllowed, p)
	}
	return a
}

func allNameRegion(rs []Registry) bool {
	for _, r := range rs {
		if r.Region == "" {
			return false
		}
	}
	return len(rs) > 0
}

// parseRegistries reads "id[,id:region]…", reporting every bad entry.
func parseRegistries(v setup.Values, defRegion string) []Registry {
	const env = "AWS_ECR_REGISTRY_IDS"
	var out []Registry
	seen := map[Registry]bool{}
	perRegion := map[string]int{}
	for _, e := range v.List(env) {
		id, region, hasRegion := strings.Cut(e, ":")
		if !hasRegion {
			region = defRegion
		}
		switch {
		case !accountRE.MatchString(id):
			v.Problem(env, "%q is not a 12-digit AWS account id", id)
			continue
		case hasRegion && !regionRE.MatchString(region):
			v.Problem(env, "%q: %q is not an AWS region name such as eu-west-1", e, region)
			continue
		}
		r := Registry{ID: id, Region: region}
		if seen[r] {
			continue
		}
		seen[r] = true
		perRegion[region]++
		if perRegion[region] == 11 { // GetAuthorizationToken takes at most 10 ids
			v.Problem(env, "more than 10 registry ids in region %s (ECR's limit per request)", region)
		}
		out = append(out, r)
	}
	return out
}

// parseLogLevel reads LOG_LEVEL, refusing the levels that would hide errors.
// A bad value reads as info, for the lines that say so.
func parseLogLevel(v setup.Values) logrus.Level {
	l, err := logrus.ParseLevel(v.Get("LOG_LEVEL"))
	switch {
	case err != nil:
		v.Problem("LOG_LEVEL", "%q is not one of debug, info, warn, error", v.Get("LOG_LEVEL"))
		return logrus.InfoLevel
	case l < logrus.ErrorLevel:
		v.Problem("LOG_LEVEL", "%q would hide every error: use error, or a more verbose level (warn, info, debug)", v.Get("LOG_LEVEL"))
		return logrus.InfoLevel
	}
	return l
}

// checkSchedule parses REFRESH_SCHEDULE, refusing a schedule that runs more than
// once per MinRefreshGap, and names the fix for a bare duration.
func checkSchedule(v setup.Values, spec string) {
	const env = "REFRESH_SCHEDULE"
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		d, derr := time.ParseDuration(strings.TrimPrefix(spec, "every "))
		if derr == nil && d > 0 {
			v.Problem(env, "invalid cron spec %q: a bare duration needs @every, e.g. REFRESH_SCHEDULE=\"@every %s\"", spec, strings.TrimPrefix(spec, "every "))
			return
		}
		v.Problem(env, "invalid cron spec %q: %v (use 5 fields such as \"0 */6 * * *\", or \"@every 6h\")", spec, err)
		return
	}
	if gap := shortestGap(sched); gap < MinRefreshGap {
		v.Problem(env, "%q runs every %s: use a schedule at least %s apart, e.g. \"@every 6h\" (tokens are refreshed before they expire whatever the schedule)", spec, gap, MinRefreshGap)
	}
}

// shortestGap is the shortest time between two runs of sched, looked for over
// a year of a 5-field spec's runs (cron's own search horizon is five years).
func shortestGap(sched cron.Schedule) time.Duration {
	if c, ok := sched.(cron.ConstantDelaySchedule); ok {
		return c.Delay
	}
	t := sched.Next(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	end := t.AddDate(1, 0, 0)
	gap := time.Duration(1<<63 - 1)
	for i := 0; i < 4096 && t.Before(end) && !t.IsZero(); i++ {
		next := sched.Next(t)
		if next.IsZero() {
			break
		}
		gap = min(gap, next.Sub(t))
		if gap <= time.Minute { // a 5-field spec's finest step: no shorter gap to find
			break
		}
		t = next
	}
	return gap
}
