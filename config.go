package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/kube"
)

// Defaults, as documented in README.md and --help.
const (
	DefaultListenPort       = 8080
	DefaultRefreshSchedule  = "@every 6h"
	DefaultShutdownTimeout  = refresher.DefaultShutdownTimeout
	DefaultRetryMinInterval = 30 * time.Second
	DefaultRetryMaxInterval = 15 * time.Minute
	DefaultRoleSessionName  = "rancher-ecr-credentials"
	DefaultLogLevel         = "info"
	DefaultLogFormat        = "text"
)

// Floors below which a setting would hammer ECR and Rancher: refused at start.
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

// RegistrySpec is one entry of AWS_ECR_REGISTRY_IDS.
type RegistrySpec struct {
	ID     string
	Region string
}

// Config is every setting of the daemon, from flags over environment over defaults.
type Config struct {
	CattleURL       string
	CattleAccessKey string
	CattleSecretKey string

	Region          string
	Registries      []RegistrySpec // empty: the caller's own registry in Region
	RoleARN         string
	RoleSessionName string
	RoleExternalID  string
	// WebIdentity is true when AWS_WEB_IDENTITY_TOKEN_FILE is set: the SDK's
	// web-identity chain then owns AWS_ROLE_ARN.
	WebIdentity bool

	AutoCreate      bool
	ProxyHost       string
	RancherProjects []string
	// AllProjects is RANCHER_PROJECTS=all: every scope the key can see, found again each run.
	AllProjects     bool
	KubeAll         bool // KUBE_NAMESPACES=all
	RancherCAFile   string
	RancherInsecure bool
	// SecretAPI is RANCHER_SECRET_API: auto, v3 or kubernetes (Rancher 2.x).
	SecretAPI string
	// InCluster is Rancher 2.x project-scoped Secrets written from inside the
	// local cluster: no CATTLE_URL, RANCHER_PROJECTS set, the ServiceAccount's token.
	InCluster bool

	// Kubernetes target (on when KubeNamespaces or the selector is set).
	KubeSelection       kube.Selection
	KubeSecretName      string
	KubeServiceAccounts []string
	// LeaderElection: only the holder of the Lease writes (any mode; needs a cluster).
	LeaderElection          bool
	LeaderElectionNamespace string // empty: the Pod's (or kubeconfig context's) namespace

	ListenAddress    string // "" binds every interface
	ListenPort       int
	LogLevel         logrus.Level
	LogFormat        string
	RefreshSchedule  string
	ShutdownTimeout  time.Duration
	RetryMinInterval time.Duration
	RetryMaxInterval time.Duration

	Once         bool
	DryRun       bool
	Demo         bool
	DemoRancher2 bool
	Version      bool
	Help         bool

	// Warnings are problems the configuration survives (a project listed
	// twice), logged once at start.
	Warnings []string
}

// setting is one configurable value: its env var, the flag named after it, its
// default and help. Every env var has a flag; a flag wins over the environment.
type setting struct {
	env, def, usage string
	// defHelp is what --help and the README say when def is empty: "required",
	// or what the empty value means ("the caller's own"). Empty: "none".
	defHelp string
	// alias is read when env is unset (PLATFORM_URL for CATTLE_URL).
	alias  string
	isBool bool
	noEnv  bool // flag only (--demo, --version)
	flag   string
}

func (s setting) flagName() string {
	if s.flag != "" {
		return s.flag
	}
	return strings.ReplaceAll(strings.ToLower(s.env), "_", "-")
}

func settings() []setting {
	return []setting{
		{env: "CATTLE_URL", alias: "PLATFORM_URL", defHelp: "required", usage: "Rancher API URL (forms below)"},
		{env: "CATTLE_ACCESS_KEY", alias: "PLATFORM_ACCESS_KEY", defHelp: "required", usage: "Rancher API access key (leave empty on Rancher 2.x when CATTLE_SECRET_KEY is a whole token-xxxxx:yyyy bearer token)"},
		{env: "CATTLE_ACCESS_KEY_FILE", usage: "file holding the access key (wins over CATTLE_ACCESS_KEY)"},
		{env: "CATTLE_SECRET_KEY", alias: "PLATFORM_SECRET_KEY", defHelp: "required", usage: "Rancher API secret key, or on Rancher 2.x a bearer token token-xxxxx:yyyy"},
		{env: "CATTLE_SECRET_KEY_FILE", usage: "file holding the secret key (wins over CATTLE_SECRET_KEY)"},
		{env: "AWS_REGION", defHelp: "required unless every registry id names its region", usage: "region of the ECR registries (AWS_DEFAULT_REGION is read when unset)"},
		{env: "AWS_ECR_REGISTRY_IDS", defHelp: "the caller's own", usage: "comma list of 12-digit registry ids, each optionally id:region"},
		{env: "AWS_ROLE_ARN", usage: "IAM role to assume for ECR (ignored when AWS_WEB_IDENTITY_TOKEN_FILE is set: the SDK assumes it)"},
		{env: "AWS_ROLE_SESSION_NAME", def: DefaultRoleSessionName, usage: "session name for the assumed role"},
		{env: "AWS_ROLE_EXTERNAL_ID", usage: "external id for the assumed role"},
		{env: "AUTO_CREATE", def: "false", isBool: true, usage: "Rancher 1.x: create the registry when none matches the ECR host (Rancher 2.x always creates a missing credential)"},
		{env: "ECR_PROXY_HOST", usage: "write credentials under this host instead of the ECR host (one registry only)"},
		{env: "RANCHER_PROJECTS", defHelp: "the URL's own scope", usage: "comma list of Rancher 1.x environment ids (1a5) or Rancher 2.x project ids (c-abcde:p-fghij) to write into, or all (every one the key can see, found again at every run; Rancher 2.x's System project only when named)"},
		{env: "RANCHER_CA_FILE", usage: "PEM bundle trusted for Rancher's TLS, on top of the system roots"},
		{env: "RANCHER_INSECURE_SKIP_VERIFY", def: "false", isBool: true, usage: "do not verify Rancher's TLS certificate (unsafe)"},
		{env: "LISTEN_ADDRESS", defHelp: "all interfaces", usage: "IP address or host name the HTTP server binds, e.g. 127.0.0.1"},
		{env: "RANCHER_SECRET_API", def: DefaultSecretAPI, usage: "Rancher 2.x: auto (Kubernetes Secrets from Rancher 2.12 on, /v3 dockerCredentials before), v3 or kubernetes"},
		{env: "KUBE_NAMESPACES", usage: "Kubernetes target: comma list of namespace names or globs (team-*), or all"},
		{env: "KUBE_NAMESPACE_SELECTOR", usage: "Kubernetes target: label selector a namespace must also match (alone: every namespace that matches)"},
		{env: "KUBE_EXCLUDE_NAMESPACES", def: strings.Join(kube.DefaultExclude, ","), usage: "namespace names or globs never written"},
		{env: "KUBE_SECRET_NAME", def: kube.DefaultSecretName, usage: "name of the Secret written into each namespace"},
		{env: "KUBE_SERVICE_ACCOUNTS", usage: "ServiceAccount names in each selected namespace whose imagePullSecrets get the Secret"},
		{env: "LEADER_ELECTION", def: "false", isBool: true, usage: "with several replicas, only the holder of the Lease rancher-ecr-credentials writes"},
		{env: "LEADER_ELECTION_NAMESPACE", defHelp: "the pod's own namespace", usage: "namespace of that Lease"},
		{env: "LISTEN_PORT", def: strconv.Itoa(DefaultListenPort), usage: "HTTP port for /ping, /healthz, /readyz and /metrics (0: any free port)"},
		{env: "LOG_LEVEL", def: DefaultLogLevel, usage: "debug, info, warn or error"},
		{env: "LOG_FORMAT", def: DefaultLogFormat, usage: "text or json"},
		{env: "REFRESH_SCHEDULE", def: DefaultRefreshSchedule, usage: "cron spec (5 fields, or @every 4h style); runs at least " + MinRefreshGap.String() + " apart"},
		{env: "SHUTDOWN_TIMEOUT", def: DefaultShutdownTimeout.String(), usage: "how long a stop waits for a run in flight"},
		{env: "RETRY_MIN_INTERVAL", def: DefaultRetryMinInterval.String(), usage: "first wait before retrying a failure; also the shortest time between two refreshes of a registry (at least " + MinRetryMinInterval.String() + ")"},
		{env: "RETRY_MAX_INTERVAL", def: DefaultRetryMaxInterval.String(), usage: "longest wait before retrying a failure, and the wait after errors retrying will not fix (at least " + MinRetryMaxInterval.String() + ")"},
		{env: "RUN_ONCE", flag: "once", def: "false", isBool: true, usage: "one run, then exit 0 if every registry was written everywhere, 1 otherwise"},
		{env: "DRY_RUN", flag: "dry-run", def: "false", isBool: true, usage: "read everything and log the planned writes, write nothing"},
		{env: "DEMO", flag: "demo", def: "false", isBool: true, noEnv: true, usage: "run against built-in local stand-ins of ECR and Rancher"},
		{env: "DEMO_RANCHER2", flag: "demo-rancher2", def: "false", isBool: true, noEnv: true, usage: "with --demo: stand in for Rancher 2.x (projects, dockerCredentials) instead of Rancher 1.x"},
		{env: "VERSION", flag: "version", def: "false", isBool: true, noEnv: true, usage: "print the version and exit"},
		{env: "HELP", flag: "help", def: "false", isBool: true, noEnv: true, usage: "print this help and exit"},
	}
}

// rawValue is a flag.Value that remembers its string; bool ones take no argument.
type rawValue struct {
	s      *string
	isBool bool
}

func (v rawValue) String() string {
	if v.s == nil {
		return ""
	}
	return *v.s
}
func (v rawValue) Set(s string) error { *v.s = s; return nil }
func (v rawValue) IsBoolFlag() bool   { return v.isBool }

// ParseConfig reads settings from getenv, then args, over the defaults, and
// validates them all at once. Its errors name the variable (and the flag or
// alias the value came from), one per line.
func ParseConfig(args []string, getenv func(string) string) (Config, error) {
	raw := map[string]string{}
	from := map[string]string{} // env → where its value came from, when not env itself
	for _, s := range settings() {
		raw[s.env] = s.def
		if s.noEnv {
			continue
		}
		if v := getenv(s.env); v != "" {
			raw[s.env] = v
		} else if v := getenv(s.alias); s.alias != "" && v != "" {
			raw[s.env], from[s.env] = v, s.alias
		}
	}
	fs := flag.NewFlagSet("rancher-ecr-credentials", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	flagged := map[string]*string{}
	envOfFlag := map[string]string{}
	for _, s := range settings() {
		p := new(string)
		*p = raw[s.env]
		flagged[s.env] = p
		envOfFlag[s.flagName()] = s.env
		fs.Var(rawValue{p, s.isBool}, s.flagName(), s.usage)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Config{Help: true}, nil
		}
		return Config{}, fmt.Errorf("command line: %w (see --help)", err)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("command line: unexpected argument %q (settings are flags or environment variables, see --help)", fs.Arg(0))
	}
	for env, p := range flagged {
		raw[env] = *p
	}
	fs.Visit(func(f *flag.Flag) { from[envOfFlag[f.Name]] = "--" + f.Name + " (" + envOfFlag[f.Name] + ")" })
	if raw["AWS_REGION"] == "" {
		raw["AWS_REGION"] = getenv("AWS_DEFAULT_REGION")
	}
	c, err := parseRaw(raw, from)
	c.WebIdentity = getenv("AWS_WEB_IDENTITY_TOKEN_FILE") != ""
	return c, err
}

var (
	idRE     = regexp.MustCompile(`^[0-9]{12}$`)
	regionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
)

// parseRaw converts and validates every value, collecting every problem.
// from names where a value came from when that was not its variable: a flag
// or an alias; errors name that.
func parseRaw(raw, from map[string]string) (Config, error) {
	var errs []error
	bad := func(env, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{cmp.Or(from[env], env)}, args...)...))
	}
	boolean := func(env string) bool {
		v := raw[env]
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad(env, "%q is not true or false", v)
		}
		return b
	}
	duration := func(env string) time.Duration {
		d, err := time.ParseDuration(raw[env])
		if err != nil || d <= 0 {
			bad(env, "%q is not a positive Go duration such as 30s or 15m", raw[env])
		}
		return d
	}
	c := Config{
		CattleURL:       strings.TrimSpace(raw["CATTLE_URL"]),
		CattleAccessKey: raw["CATTLE_ACCESS_KEY"],
		CattleSecretKey: raw["CATTLE_SECRET_KEY"],
		Region:          strings.TrimSpace(raw["AWS_REGION"]),
		RoleARN:         strings.TrimSpace(raw["AWS_ROLE_ARN"]),
		RoleSessionName: raw["AWS_ROLE_SESSION_NAME"],
		RoleExternalID:  raw["AWS_ROLE_EXTERNAL_ID"],
		RancherCAFile:   raw["RANCHER_CA_FILE"],
		SecretAPI:       strings.ToLower(strings.TrimSpace(raw["RANCHER_SECRET_API"])),
		RefreshSchedule: strings.TrimSpace(raw["REFRESH_SCHEDULE"]),
		LogFormat:       strings.ToLower(raw["LOG_FORMAT"]),
		AutoCreate:      boolean("AUTO_CREATE"),
		RancherInsecure: boolean("RANCHER_INSECURE_SKIP_VERIFY"),
		LeaderElection:  boolean("LEADER_ELECTION"),
		Once:            boolean("RUN_ONCE"),
		DryRun:          boolean("DRY_RUN"),
		Demo:            boolean("DEMO"),
		DemoRancher2:    boolean("DEMO_RANCHER2"),
		Version:         boolean("VERSION"),
		Help:            boolean("HELP"),
	}
	c.ShutdownTimeout = duration("SHUTDOWN_TIMEOUT")
	c.RetryMinInterval = duration("RETRY_MIN_INTERVAL")
	c.RetryMaxInterval = duration("RETRY_MAX_INTERVAL")
	switch {
	case c.RetryMinInterval > 0 && c.RetryMinInterval < MinRetryMinInterval:
		bad("RETRY_MIN_INTERVAL", "%s would retry and refresh too often: use %s or more", c.RetryMinInterval, MinRetryMinInterval)
	case c.RetryMaxInterval > 0 && c.RetryMaxInterval < MinRetryMaxInterval:
		bad("RETRY_MAX_INTERVAL", "%s would retry errors that retrying cannot fix (a rejected key) too often: use %s or more", c.RetryMaxInterval, MinRetryMaxInterval)
	case c.RetryMinInterval > 0 && c.RetryMaxInterval > 0 && c.RetryMinInterval > c.RetryMaxInterval:
		bad("RETRY_MAX_INTERVAL", "%s is shorter than RETRY_MIN_INTERVAL %s", c.RetryMaxInterval, c.RetryMinInterval)
	}
	if c.Help || c.Version {
		return c, nil
	}

	for _, k := range []struct {
		env string
		dst *string
	}{{"CATTLE_ACCESS_KEY", &c.CattleAccessKey}, {"CATTLE_SECRET_KEY", &c.CattleSecretKey}} {
		if f := raw[k.env+"_FILE"]; f != "" {
			b, err := os.ReadFile(f)
			if err != nil {
				bad(k.env+"_FILE", "cannot read %s: %v", f, errors.Unwrap(err))
				continue
			}
			*k.dst = strings.TrimRight(string(b), "\r\n")
		}
	}
	c.Registries = parseRegistries(raw["AWS_ECR_REGISTRY_IDS"], c.Region, bad)
	parseKube(&c, raw, bad)
	var api rancherapi.APIURL
	c.InCluster = !c.Demo && c.CattleURL == "" && strings.TrimSpace(raw["RANCHER_PROJECTS"]) != ""
	if c.InCluster {
		api.Rancher2 = true // project ids of the local cluster's Rancher
	} else if !c.Demo && (c.CattleURL != "" || !c.Kube()) {
		api = parseCattleURL(c.CattleURL, splitList(raw["RANCHER_PROJECTS"]), bad)
		// Rancher 2.x takes a whole bearer token ("token-xxxxx:secret") as the secret key alone.
		bearer := api.Rancher2 && c.CattleAccessKey == "" && strings.Contains(c.CattleSecretKey, ":")
		if c.CattleAccessKey == "" && !bearer {
			bad("CATTLE_ACCESS_KEY", "required (or CATTLE_ACCESS_KEY_FILE, or PLATFORM_ACCESS_KEY)")
		}
		if c.CattleSecretKey == "" {
			bad("CATTLE_SECRET_KEY", "required (or CATTLE_SECRET_KEY_FILE, or PLATFORM_SECRET_KEY)")
		}
	}
	if !c.Demo && c.Region == "" && !allNameRegion(c.Registries) {
		bad("AWS_REGION", "required (or AWS_DEFAULT_REGION), e.g. us-east-1, unless every AWS_ECR_REGISTRY_IDS entry names its region as id:region")
	}
	if c.Region == "" && allNameRegion(c.Registries) {
		c.Region = c.Registries[0].Region // for the SDK's own calls (STS)
	}
	if c.Region != "" && !regionRE.MatchString(c.Region) {
		bad("AWS_REGION", "%q is not an AWS region name such as us-east-1", c.Region)
	}

	if p := strings.TrimSpace(raw["ECR_PROXY_HOST"]); p != "" {
		h, err := refresher.NormalizeHost(p)
		switch {
		case err != nil:
			bad("ECR_PROXY_HOST", "%q is not a host: %v", p, err)
		case len(c.Registries) > 1:
			bad("ECR_PROXY_HOST", "set, but AWS_ECR_REGISTRY_IDS names %d registries: one proxy host can only stand for one registry", len(c.Registries))
		}
		c.ProxyHost = h
	}
	c.RancherProjects, c.AllProjects, c.Warnings = parseProjects(raw["RANCHER_PROJECTS"], api, bad)
	checkSecretAPI(c, api, bad)
	if c.RancherCAFile != "" {
		if _, err := os.Stat(c.RancherCAFile); err != nil {
			bad("RANCHER_CA_FILE", "cannot read %s: %v", c.RancherCAFile, errors.Unwrap(err))
		}
	}
	c.ListenAddress = parseListenAddress(raw["LISTEN_ADDRESS"], bad)
	port, err := strconv.Atoi(strings.TrimSpace(raw["LISTEN_PORT"]))
	if err != nil || port < 0 || port > 65535 {
		bad("LISTEN_PORT", "%q is not a port number (0-65535)", raw["LISTEN_PORT"])
	}
	c.ListenPort = port
	c.LogLevel = parseLogLevel(raw["LOG_LEVEL"], bad)
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("LOG_FORMAT", "%q is not text or json", raw["LOG_FORMAT"])
	}
	checkSchedule(c.RefreshSchedule, bad)
	if c.RoleARN != "" && !strings.HasPrefix(c.RoleARN, "arn:") {
		bad("AWS_ROLE_ARN", "%q is not an ARN such as arn:aws:iam::111122223333:role/ecr-read", c.RoleARN)
	}
	return c, errors.Join(errs...)
}

func allNameRegion(rs []RegistrySpec) bool {
	for _, r := range rs {
		if r.Region == "" {
			return false
		}
	}
	return len(rs) > 0
}

// parseRegistries reads "id[,id:region]…", reporting every bad entry.
func parseRegistries(v, defRegion string, bad func(env, format string, args ...any)) []RegistrySpec {
	const env = "AWS_ECR_REGISTRY_IDS"
	var out []RegistrySpec
	seen := map[RegistrySpec]bool{}
	perRegion := map[string]int{}
	for _, e := range splitList(v) {
		id, region, hasRegion := strings.Cut(e, ":")
		if !hasRegion {
			region = defRegion
		}
		switch {
		case !idRE.MatchString(id):
			bad(env, "%q is not a 12-digit AWS account id", id)
			continue
		case hasRegion && !regionRE.MatchString(region):
			bad(env, "%q: %q is not an AWS region name such as eu-west-1", e, region)
			continue
		}
		r := RegistrySpec{ID: id, Region: region}
		if seen[r] {
			continue
		}
		seen[r] = true
		perRegion[region]++
		if perRegion[region] == 11 { // GetAuthorizationToken takes at most 10 ids
			bad(env, "more than 10 registry ids in region %s (ECR's limit per request)", region)
		}
		out = append(out, r)
	}
	return out
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// LogFields is the configuration as logged at start, secrets replaced by REDACTED.
func (c Config) LogFields() logrus.Fields {
	redact := func(s string) string {
		if s == "" {
			return ""
		}
		return "REDACTED"
	}
	ids := make([]string, 0, len(c.Registries))
	for _, r := range c.Registries {
		ids = append(ids, r.ID+":"+r.Region)
	}
	// The URL as used: no query or fragment, which could hold something secret.
	cattleURL := "(invalid)"
	a, err := rancherapi.ParseURL(c.CattleURL)
	if err == nil {
		cattleURL = a.Base.String()
	} else if c.InCluster {
		cattleURL = "(none: in-cluster Kubernetes API)"
	}
	f := logrus.Fields{
		"cattle_url": cattleURL, "cattle_access_key": c.CattleAccessKey, "cattle_secret_key": redact(c.CattleSecretKey),
		"aws_region": c.Region, "aws_ecr_registry_ids": strings.Join(ids, ","), "aws_role_arn": c.RoleARN,
		"auto_create": c.AutoCreate, "ecr_proxy_host": c.ProxyHost, "rancher_projects": projectsField(c), "rancher_secret_api": c.SecretAPI,
		"refresh_schedule": c.RefreshSchedule, "listen_address": c.ListenAddress, "listen_port": c.ListenPort, "dry_run": c.DryRun, "once": c.Once,
		"kube_namespaces": c.kubeNamespacesField(), "kube_namespace_selector": selectorField(c.KubeSelection),
		"kube_exclude_namespaces": strings.Join(c.KubeSelection.Exclude, ","), "kube_secret_name": c.KubeSecretName,
		"kube_service_accounts": strings.Join(c.KubeServiceAccounts, ","), "leader_election": c.LeaderElection,
	}
	if a.Rancher2 {
		f["missing_credentials"] = "created in every project, whatever AUTO_CREATE says"
	}
	return f
}

func (c Config) kubeNamespacesField() string {
	if c.KubeAll {
		return "all"
	}
	return strings.Join(c.KubeSelection.Include, ",")
}

func selectorField(s kube.Selection) string {
	if s.Selector == nil {
		return ""
	}
	return s.Selector.String()
}

func projectsField(c Config) string {
	if c.AllProjects {
		return "all"
	}
	return strings.Join(c.RancherProjects, ",")
}
