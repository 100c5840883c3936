package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/apptest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/settings"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/tenantrole"
)

// minimal is the old image's required environment.
func minimal() map[string]string {
	return map[string]string{
		"CATTLE_URL":        "http://rancher.example.com:8080/v1",
		"CATTLE_ACCESS_KEY": "access",
		"CATTLE_SECRET_KEY": "secret",
		"AWS_REGION":        "us-east-1",
	}
}

// parseSharedEnv is parseShared over args and env, with every problem it reported.
func parseSharedEnv(t *testing.T, args []string, env map[string]string) (Config, error) {
	t.Helper()
	v, err := settings.Parse(shared(), args, apptest.EnvOf(env), nil)
	if err != nil {
		return Config{}, err
	}
	c := parseShared(v, apptest.EnvOf(env))
	return c, v.Err()
}

// wantProblems checks the settings as the daemon does and wants exactly one
// problem line holding each of want, none of them printing a secret.
func wantProblems(t *testing.T, args []string, env map[string]string, want ...string) {
	t.Helper()
	_, err := Check(args, apptest.EnvOf(env))
	apptest.WantLines(t, err, want...)
	if err != nil && env["CATTLE_SECRET_KEY"] == "secret" && strings.Contains(err.Error(), "secret") {
		t.Errorf("error prints the secret key:\n%s", err)
	}
}

func TestParseShared_Defaults(t *testing.T) {
	t.Parallel()
	got, err := parseSharedEnv(t, nil, minimal())
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Region: "us-east-1", RoleSessionName: DefaultRoleSessionName,
		ListenPort: DefaultListenPort, LogLevel: logrus.InfoLevel, LogFormat: "text", RefreshSchedule: "@every 6h",
		ShutdownTimeout: 10 * time.Second, RetryMinInterval: 30 * time.Second, RetryMaxInterval: 15 * time.Minute,
		Limits: Limits{WriteConcurrency: refresher.DefaultWorkers, KubeQPS: kubeapi.DefaultQPS, KubeBurst: 2 * kubeapi.DefaultQPS},
	}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(tenantrole.AllowList{})); d != "" {
		t.Errorf("config (-want +got):\n%s", d)
	}
}

// AWS_ALLOWED_ROLE_ARNS: every bad entry is named with the form to use; an
// entry that allows every role of an account is accepted with a warning.
func TestParseShared_AllowedRoles(t *testing.T) {
	t.Parallel()
	env := with(minimal(), "AWS_ALLOWED_ROLE_ARNS", "arn:aws:iam::111122223333:role/team-*, arn:aws:iam::444455556666:role/*")
	v, err := settings.Parse(shared(), nil, apptest.EnvOf(env), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := parseShared(v, apptest.EnvOf(env))
	if v.Err() != nil || !c.AllowedRoles.Allows("arn:aws:iam::111122223333:role/team-a") || c.AllowedRoles.Allows("arn:aws:iam::111122223333:role/admin") {
		t.Fatalf("allow list %v, %v", c.AllowedRoles.Patterns(), v.Err())
	}
	if w := v.Warnings(); len(w) != 1 || !strings.Contains(w[0], "AWS_ALLOWED_ROLE_ARNS: arn:aws:iam::444455556666:role/* lets a namespace or project name any role of that account") {
		t.Errorf("warnings %q, want one about role/*", w)
	}
	wantProblems(t, nil, with(minimal(), "AWS_ALLOWED_ROLE_ARNS", "team-a,arn:aws:iam::111122223333:user/bob"),
		`AWS_ALLOWED_ROLE_ARNS: "team-a" is not an IAM role ARN or glob such as arn:aws:iam::111122223333:role/team-a`,
		`AWS_ALLOWED_ROLE_ARNS: "arn:aws:iam::111122223333:user/bob" is not an IAM role ARN`)
}

// The old image's environment, all of it, is accepted unchanged.
func TestCheck_OldImageEnvironment(t *testing.T) {
	t.Parallel()
	env := minimal()
	env["AWS_ECR_REGISTRY_IDS"] = "111122223333, 444455556666:eu-west-1"
	env["AWS_ROLE_ARN"] = "arn:aws:iam::111122223333:role/ecr-read"
	env["AUTO_CREATE"] = "true"
	env["LISTEN_PORT"] = "9090"
	env["LOG_LEVEL"] = "debug"
	got, err := Check(nil, apptest.EnvOf(env))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]Registry{{"111122223333", "us-east-1"}, {"444455556666", "eu-west-1"}}, got.Registries); d != "" {
		t.Errorf("registries (-want +got):\n%s", d)
	}
	if got.ListenPort != 9090 || got.LogLevel != logrus.DebugLevel || got.RoleARN != env["AWS_ROLE_ARN"] {
		t.Errorf("config = %+v", got)
	}
}

func TestParseShared_FlagsWin(t *testing.T) {
	t.Parallel()
	env := with(with(minimal(), "LISTEN_PORT", "9090"), "RUN_ONCE", "true")
	got, err := parseSharedEnv(t, []string{"--listen-port", "7070", "--once=false", "--dry-run", "--metrics-per-scope"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if got.ListenPort != 7070 || got.Once || !got.DryRun || !got.MetricsPerScope {
		t.Errorf("config = %+v, want the flags' values", got)
	}
}

func TestParseShared_Region(t *testing.T) {
	t.Parallel()
	env := with(minimal(), "AWS_DEFAULT_REGION", "eu-central-1")
	delete(env, "AWS_REGION")
	if got, err := parseSharedEnv(t, nil, env); err != nil || got.Region != "eu-central-1" {
		t.Errorf("AWS_DEFAULT_REGION: region = %q, %v", got.Region, err)
	}
	// Not needed when every registry id names its region; the first one's
	// serves the SDK's own calls (STS).
	env = with(minimal(), "AWS_ECR_REGISTRY_IDS", "111122223333:eu-west-1, 444455556666:ap-south-1")
	delete(env, "AWS_REGION")
	got, err := parseSharedEnv(t, nil, env)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]Registry{{"111122223333", "eu-west-1"}, {"444455556666", "ap-south-1"}}, got.Registries); d != "" || got.Region != "eu-west-1" {
		t.Errorf("region %q, registries (-want +got):\n%s", got.Region, d)
	}
}

// Every problem is reported at once, one line each, naming the variable (or
// the flag or alias it came from), in the order --help lists them.
func TestCheck_Invalid(t *testing.T) {
	t.Parallel()
	apptest.Problems(t, []apptest.Problem{
		{Name: "Empty", Env: map[string]string{}, Want: []string{"AWS_REGION: required",
			"nothing to write into: no target is configured; set what one of them requires. Rancher 1.x: CATTLE_URL"}},
		{Name: "Everything", Env: map[string]string{
			"CATTLE_URL": "ftp://x", "CATTLE_ACCESS_KEY": "a", "CATTLE_SECRET_KEY": "s", "AWS_REGION": "useast1",
			"AWS_ECR_REGISTRY_IDS": "12345,111122223333:mars", "AUTO_CREATE": "yes please", "LISTEN_PORT": "99999",
			"LOG_LEVEL": "loud", "LOG_FORMAT": "xml", "REFRESH_SCHEDULE": "every day", "SHUTDOWN_TIMEOUT": "10",
			"RETRY_MIN_INTERVAL": "1h", "RETRY_MAX_INTERVAL": "1m", "AWS_ROLE_ARN": "role/x", "RANCHER_CA_FILE": "/nonexistent/ca.pem",
			"METRICS_PER_SCOPE": "some", "LEADER_ELECTION_NAMESPACE": "-x",
		}, Want: []string{
			"AWS_REGION: \"useast1\" is not an AWS region", "AWS_ECR_REGISTRY_IDS: \"12345\" is not a 12-digit",
			"AWS_ECR_REGISTRY_IDS: \"111122223333:mars\"", "AWS_ROLE_ARN: \"role/x\" is not an ARN", "LISTEN_PORT: \"99999\"",
			"LOG_LEVEL: \"loud\"", "LOG_FORMAT: \"xml\"", "REFRESH_SCHEDULE: invalid cron spec", "SHUTDOWN_TIMEOUT: \"10\" is not a positive Go duration",
			"RETRY_MAX_INTERVAL: 1m0s is shorter than RETRY_MIN_INTERVAL", "METRICS_PER_SCOPE: \"some\" is not true or false",
			"LEADER_ELECTION_NAMESPACE: \"-x\" is not a namespace name",
			"CATTLE_URL: scheme must be http or https", "AUTO_CREATE: \"yes please\" is not true or false", "RANCHER_CA_FILE: cannot read",
		}},
		{Name: "ProxyWithTwoRegistries", Env: with(with(minimal(), "ECR_PROXY_HOST", "proxy.example.com"), "AWS_ECR_REGISTRY_IDS", "111122223333,444455556666"),
			Want: []string{"ECR_PROXY_HOST: set, but AWS_ECR_REGISTRY_IDS names 2 registries"}},
		{Name: "ProxyNotAHost", Env: with(minimal(), "ECR_PROXY_HOST", "a b"), Want: []string{"ECR_PROXY_HOST: \"a b\" is not a host"}},
		{Name: "PublicNotABool", Env: with(minimal(), "AWS_ECR_PUBLIC", "yes"), Want: []string{"AWS_ECR_PUBLIC: \"yes\" is not true or false"}},
		{Name: "ProxyIsPublic", Env: with(with(minimal(), "AWS_ECR_PUBLIC", "true"), "ECR_PROXY_HOST", "https://Public.ECR.aws/"),
			Want: []string{"ECR_PROXY_HOST: \"https://Public.ECR.aws/\" is ECR Public's own host, which AWS_ECR_PUBLIC=true writes"}},
		{Name: "TooManyIDs", Env: with(minimal(), "AWS_ECR_REGISTRY_IDS", "111122223333,100000000001,100000000002,100000000003,100000000004,100000000005,100000000006,100000000007,100000000008,100000000009,100000000010"),
			Want: []string{"AWS_ECR_REGISTRY_IDS: more than 10 registry ids in region us-east-1"}},
		{Name: "UnknownFlag", Env: minimal(), Args: []string{"--cattle-uri=x"}, Want: []string{"command line: flag provided but not defined: -cattle-uri"}},
		{Name: "StrayArgument", Env: minimal(), Args: []string{"once"}, Want: []string{"unexpected argument \"once\""}},
		// Issue 18: a Kubernetes-only setup, valid or not, hears nothing of CATTLE_URL.
		{Name: "KubernetesOnlyBadSelector", Env: map[string]string{"AWS_REGION": "us-east-1", "KUBE_NAMESPACE_SELECTOR": "a in ("},
			Want: []string{"KUBE_NAMESPACE_SELECTOR: "}},
	}, wantProblems)
}

// Settings that would hammer ECR and the platforms or hide errors are
// refused, each with the variable (or flag) and the fix.
func TestCheck_Refused(t *testing.T) {
	t.Parallel()
	apptest.Problems(t, []apptest.Problem{
		{Name: "ScheduleEvery0s", Env: with(minimal(), "REFRESH_SCHEDULE", "@every 0s"), Want: []string{`REFRESH_SCHEDULE: "@every 0s" runs every 1s: use a schedule at least 1m0s apart`}},
		{Name: "ScheduleEvery1ns", Env: with(minimal(), "REFRESH_SCHEDULE", "@every 1ns"), Want: []string{`REFRESH_SCHEDULE: "@every 1ns" runs every 1s`}},
		{Name: "ScheduleEvery59s", Env: with(minimal(), "REFRESH_SCHEDULE", "@every 59s"), Want: []string{`REFRESH_SCHEDULE: "@every 59s" runs every 59s`}},
		{Name: "ScheduleBareDuration", Env: with(minimal(), "REFRESH_SCHEDULE", "6h"), Want: []string{`REFRESH_SCHEDULE: invalid cron spec "6h": a bare duration needs @every, e.g. REFRESH_SCHEDULE="@every 6h"`}},
		{Name: "ScheduleFlag", Env: minimal(), Args: []string{"--refresh-schedule", "@every 1s"}, Want: []string{`--refresh-schedule (REFRESH_SCHEDULE): "@every 1s" runs every 1s`}},
		{Name: "RetryMinTooShort", Env: with(minimal(), "RETRY_MIN_INTERVAL", "1s"), Want: []string{"RETRY_MIN_INTERVAL: 1s would retry and refresh too often: use 5s or more"}},
		{Name: "RetryMinNanosecond", Env: with(minimal(), "RETRY_MIN_INTERVAL", "1ns"), Want: []string{"RETRY_MIN_INTERVAL: 1ns would retry"}},
		{Name: "RetryMaxTooShort", Env: with(with(minimal(), "RETRY_MIN_INTERVAL", "5s"), "RETRY_MAX_INTERVAL", "10s"), Want: []string{"RETRY_MAX_INTERVAL: 10s would retry errors that retrying cannot fix (a rejected key) too often: use 1m0s or more"}},
		{Name: "RetryMinOverMax", Env: with(with(minimal(), "RETRY_MIN_INTERVAL", "2h"), "RETRY_MAX_INTERVAL", "1h"), Want: []string{"RETRY_MAX_INTERVAL: 1h0m0s is shorter than RETRY_MIN_INTERVAL 2h0m0s"}},
		{Name: "RetryFlag", Env: minimal(), Args: []string{"--retry-min-interval=10ms"}, Want: []string{"--retry-min-interval (RETRY_MIN_INTERVAL): 10ms would retry"}},
		{Name: "LogLevelPanic", Env: with(minimal(), "LOG_LEVEL", "panic"), Want: []string{`LOG_LEVEL: "panic" would hide every error: use error, or a more verbose level`}},
		{Name: "LogLevelFatal", Env: with(minimal(), "LOG_LEVEL", "FATAL"), Want: []string{`LOG_LEVEL: "FATAL" would hide every error`}},
		{Name: "ListenAddressPort", Env: with(minimal(), "LISTEN_ADDRESS", "127.0.0.1:8080"), Want: []string{`LISTEN_ADDRESS: "127.0.0.1:8080" holds a port: set LISTEN_ADDRESS=127.0.0.1 and LISTEN_PORT=8080`}},
		{Name: "ListenAddressJunk", Env: with(minimal(), "LISTEN_ADDRESS", "http://0.0.0.0"), Want: []string{`LISTEN_ADDRESS: "http://0.0.0.0" is not an IP address or host name`}},
		{Name: "ListenAddressFlag", Env: minimal(), Args: []string{"--listen-address", "a b"}, Want: []string{`--listen-address (LISTEN_ADDRESS): "a b" is not an IP address or host name`}},
		{Name: "RegionFromAlias", Env: with(with(minimal(), "AWS_REGION", ""), "AWS_DEFAULT_REGION", "mars"), Want: []string{`AWS_DEFAULT_REGION: "mars" is not an AWS region name`}},
		{Name: "RegionMissingForOneID", Env: with(with(minimal(), "AWS_REGION", ""), "AWS_ECR_REGISTRY_IDS", "111122223333:eu-west-1,444455556666"),
			Want: []string{"AWS_REGION: required (or AWS_DEFAULT_REGION), e.g. us-east-1, unless every AWS_ECR_REGISTRY_IDS entry names its region as id:region"}},
	}, wantProblems)
}

// AWS_ECR_PUBLIC turns ECR Public on, by variable or flag; a proxy host for
// the one ECR registry goes with it (it never stands for public.ecr.aws).
func TestCheck_ECRPublic(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		env  map[string]string
		args []string
		want bool
	}{
		{minimal(), nil, false},
		{with(minimal(), "AWS_ECR_PUBLIC", "true"), nil, true},
		{minimal(), []string{"--aws-ecr-public"}, true},
		{with(minimal(), "AWS_ECR_PUBLIC", "true"), []string{"--aws-ecr-public=false"}, false},
		{with(with(minimal(), "AWS_ECR_PUBLIC", "true"), "ECR_PROXY_HOST", "ecr-proxy.example.com:5000"), nil, true},
	} {
		got, err := Check(tt.args, apptest.EnvOf(tt.env))
		if err != nil || got.Public != tt.want {
			t.Errorf("%v %v: Public = %v, %v; want %v", tt.env, tt.args, got.Public, err, tt.want)
		}
	}
}

// The floors themselves, and the finest cron spec, are accepted.
func TestCheck_Floors(t *testing.T) {
	t.Parallel()
	for _, env := range []map[string]string{
		with(minimal(), "REFRESH_SCHEDULE", "@every 1m"),
		with(minimal(), "REFRESH_SCHEDULE", "* * * * *"),
		with(minimal(), "REFRESH_SCHEDULE", "@hourly"),
		with(with(minimal(), "RETRY_MIN_INTERVAL", "5s"), "RETRY_MAX_INTERVAL", "1m"),
		with(minimal(), "LOG_LEVEL", "error"),
		with(minimal(), "LOG_LEVEL", "trace"),
	} {
		if _, err := Check(nil, apptest.EnvOf(env)); err != nil {
			t.Errorf("%v: %v", env, err)
		}
	}
}

// Issue 18: a Kubernetes-only setup needs no Rancher setting, and a
// configuration that turns no kind on says so in one line, naming what turns
// each on.
func TestCheck_Kinds(t *testing.T) {
	// A cluster to build the client for; nothing calls it.
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u, namespace: default}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", kubeconfig)
	if _, err := Check(nil, apptest.EnvOf(map[string]string{"KUBE_NAMESPACES": "team-*,web", "AWS_REGION": "eu-west-1"})); err != nil {
		t.Errorf("Kubernetes only: %v", err)
	}
	_, err := Check(nil, apptest.EnvOf(map[string]string{"AWS_REGION": "eu-west-1", "CATTLE_ACCESS_KEY": "a", "CATTLE_SECRET_KEY": "s"}))
	if err == nil || strings.Count(err.Error(), "\n") != 0 {
		t.Fatalf("no kind on: %v, want one line", err)
	}
	for _, want := range []string{"nothing to write into", "Rancher 1.x: CATTLE_URL", "Rancher 2.x: CATTLE_URL https://<rancher>/v3", "RANCHER_PROJECTS alone", "KUBE_NAMESPACES"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the no-kind line lacks %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "CATTLE_URL: required") || strings.Contains(err.Error(), "CATTLE_ACCESS_KEY:") {
		t.Errorf("the no-kind line speaks of a Rancher setting as if Rancher were on: %v", err)
	}
}

func with(m map[string]string, k, v string) map[string]string { return apptest.With(m, k, v) }

// LEADER_ELECTION outside any cluster is a configuration error naming it.
func TestRun_LeaderElectionWithoutCluster(t *testing.T) {
	w := apptest.NewWorld(t)
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	w.Env["LEADER_ELECTION"] = "true"
	_, _, err := run(t.Context(), w.Env)
	if exitCode(err) != 2 || !strings.HasPrefix(err.Error(), "LEADER_ELECTION: ") {
		t.Errorf("err = %v, want exit 2 naming LEADER_ELECTION", err)
	}
	if w.Rancher.Requests() != 0 || w.ECR.Calls() != 0 {
		t.Error("network was used before the configuration was valid")
	}
}
