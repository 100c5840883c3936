package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/kube"
)

// envOf turns a map into a getenv.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// minimal is the old image's required environment.
func minimal() map[string]string {
	return map[string]string{
		"CATTLE_URL":        "http://rancher.example.com:8080/v1",
		"CATTLE_ACCESS_KEY": "access",
		"CATTLE_SECRET_KEY": "secret",
		"AWS_REGION":        "us-east-1",
	}
}

func TestParseConfig_Defaults(t *testing.T) {
	t.Parallel()
	got, err := ParseConfig(nil, envOf(minimal()))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		CattleURL: "http://rancher.example.com:8080/v1", CattleAccessKey: "access", CattleSecretKey: "secret",
		Region: "us-east-1", RoleSessionName: DefaultRoleSessionName,
		SecretAPI:  DefaultSecretAPI,
		ListenPort: DefaultListenPort, LogLevel: logrus.InfoLevel, LogFormat: "text", RefreshSchedule: "@every 6h",
		ShutdownTimeout: 10 * time.Second, RetryMinInterval: 30 * time.Second, RetryMaxInterval: 15 * time.Minute,
		KubeSelection: kube.Selection{Exclude: kube.DefaultExclude}, KubeSecretName: kube.DefaultSecretName,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("config (-want +got):\n%s", d)
	}
}

// The old image's environment, all of it, is accepted unchanged.
func TestParseConfig_OldImageEnvironment(t *testing.T) {
	t.Parallel()
	env := minimal()
	env["AWS_ECR_REGISTRY_IDS"] = "111122223333, 444455556666:eu-west-1"
	env["AWS_ROLE_ARN"] = "arn:aws:iam::111122223333:role/ecr-read"
	env["AUTO_CREATE"] = "true"
	env["LISTEN_PORT"] = "9090"
	env["LOG_LEVEL"] = "debug"
	got, err := ParseConfig(nil, envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]RegistrySpec{{"111122223333", "us-east-1"}, {"444455556666", "eu-west-1"}}, got.Registries); d != "" {
		t.Errorf("registries (-want +got):\n%s", d)
	}
	if !got.AutoCreate || got.ListenPort != 9090 || got.LogLevel != logrus.DebugLevel || got.RoleARN != env["AWS_ROLE_ARN"] {
		t.Errorf("config = %+v", got)
	}
}

func TestParseConfig_Rancher2(t *testing.T) {
	t.Parallel()
	env := with(with(with(minimal(), "CATTLE_URL", "https://rancher.example.com/v3"), "CATTLE_ACCESS_KEY", ""), "CATTLE_SECRET_KEY", "token-abcde:secret")
	env["RANCHER_PROJECTS"] = "c-abcde:p-fghij, local:p-x1"
	got, err := ParseConfig(nil, envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"c-abcde:p-fghij", "local:p-x1"}, got.RancherProjects); d != "" {
		t.Errorf("projects (-want +got):\n%s", d)
	}
	env["RANCHER_PROJECTS"] = "ALL"
	if got, err := ParseConfig(nil, envOf(env)); err != nil || !got.AllProjects {
		t.Errorf("all: %+v, %v", got, err)
	}
	env["RANCHER_PROJECTS"] = ""
	env["CATTLE_URL"] = "https://rancher.example.com/v3/project/c-abcde:p-fghij"
	if _, err := ParseConfig(nil, envOf(env)); err != nil {
		t.Errorf("a project URL without RANCHER_PROJECTS: %v", err)
	}
}

func TestParseConfig_FlagsWin(t *testing.T) {
	t.Parallel()
	env := minimal()
	env["LISTEN_PORT"] = "9090"
	env["RUN_ONCE"] = "true"
	got, err := ParseConfig([]string{"--listen-port", "7070", "--auto-create", "--once=false", "--cattle-url=http://other.example.com/v2-beta"}, envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	if got.ListenPort != 7070 || !got.AutoCreate || got.Once || got.CattleURL != "http://other.example.com/v2-beta" {
		t.Errorf("config = %+v, want the flags' values", got)
	}
}

func TestParseConfig_DefaultRegion(t *testing.T) {
	t.Parallel()
	env := minimal()
	delete(env, "AWS_REGION")
	env["AWS_DEFAULT_REGION"] = "eu-central-1"
	got, err := ParseConfig(nil, envOf(env))
	if err != nil || got.Region != "eu-central-1" {
		t.Errorf("region = %q, %v", got.Region, err)
	}
}

func TestParseConfig_KeyFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ak, sk := filepath.Join(dir, "ak"), filepath.Join(dir, "sk")
	if err := os.WriteFile(ak, []byte("file-access\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sk, []byte("file-secret\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := minimal()
	env["CATTLE_ACCESS_KEY_FILE"], env["CATTLE_SECRET_KEY_FILE"] = ak, sk
	got, err := ParseConfig(nil, envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	if got.CattleAccessKey != "file-access" || got.CattleSecretKey != "file-secret" {
		t.Errorf("keys = %q/%q, want the files' contents without the newline", got.CattleAccessKey, got.CattleSecretKey)
	}
	env["CATTLE_SECRET_KEY_FILE"] = filepath.Join(dir, "missing")
	_, err = ParseConfig(nil, envOf(env))
	if err == nil || !strings.Contains(err.Error(), "CATTLE_SECRET_KEY_FILE: cannot read") {
		t.Errorf("err = %v, want the unreadable file named", err)
	}
}

// Every problem is reported at once, one line each, naming the variable.
func TestParseConfig_Invalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{name: "Empty", env: map[string]string{}, want: []string{
			"CATTLE_URL: required", "CATTLE_ACCESS_KEY: required", "CATTLE_SECRET_KEY: required", "AWS_REGION: required"}},
		{name: "Everything", env: map[string]string{
			"CATTLE_URL": "ftp://x", "CATTLE_ACCESS_KEY": "a", "CATTLE_SECRET_KEY": "s", "AWS_REGION": "useast1",
			"AWS_ECR_REGISTRY_IDS": "12345,111122223333:mars", "AUTO_CREATE": "yes please", "LISTEN_PORT": "99999",
			"LOG_LEVEL": "loud", "LOG_FORMAT": "xml", "REFRESH_SCHEDULE": "every day", "SHUTDOWN_TIMEOUT": "10",
			"RETRY_MIN_INTERVAL": "1h", "RETRY_MAX_INTERVAL": "1m", "AWS_ROLE_ARN": "role/x", "RANCHER_CA_FILE": "/nonexistent/ca.pem",
		}, want: []string{
			"CATTLE_URL: scheme must be http or https", "AWS_REGION: \"useast1\" is not an AWS region",
			"AWS_ECR_REGISTRY_IDS: \"12345\" is not a 12-digit", "AWS_ECR_REGISTRY_IDS: \"111122223333:mars\"",
			"AUTO_CREATE: \"yes please\" is not true or false", "LISTEN_PORT: \"99999\"", "LOG_LEVEL: \"loud\"",
			"LOG_FORMAT: \"xml\"", "REFRESH_SCHEDULE: invalid cron spec", "SHUTDOWN_TIMEOUT: \"10\" is not a positive Go duration",
			"RETRY_MAX_INTERVAL: 1m0s is shorter than RETRY_MIN_INTERVAL", "AWS_ROLE_ARN: \"role/x\" is not an ARN",
			"RANCHER_CA_FILE: cannot read",
		}},
		{name: "Rancher2WithoutProject", env: with(minimal(), "CATTLE_URL", "https://rancher.example.com/v3"), want: []string{"RANCHER_PROJECTS: required with a Rancher 2.x URL that names no project"}},
		{name: "Rancher2ProjectIDs", env: with(with(minimal(), "CATTLE_URL", "https://rancher.example.com/v3"), "RANCHER_PROJECTS", "1a5,c-abcde:p-fghij"),
			want: []string{"RANCHER_PROJECTS: \"1a5\" is not a Rancher 2.x project id"}},
		{name: "Rancher1ProjectIDs", env: with(minimal(), "RANCHER_PROJECTS", "1a5, c-abcde:p-fghij"),
			want: []string{"CATTLE_URL: http://rancher.example.com:8080/v1 is not a Rancher 2.x API URL, but RANCHER_PROJECTS names c-abcde:p-fghij, a Rancher 2.x project (<cluster id>:<project id>): use CATTLE_URL=http://rancher.example.com:8080/v3"}},
		// The URL mistakes people make with Rancher 2.x project ids: each answer names the …/v3 URL to use.
		{name: "BareHostWith2xProject", env: with(with(minimal(), "CATTLE_URL", "https://rancher.example.com"), "RANCHER_PROJECTS", "c-m-abc123:p-vwxyz"),
			want: []string{"CATTLE_URL: https://rancher.example.com is a bare host, which means Rancher 1.x, but RANCHER_PROJECTS names c-m-abc123:p-vwxyz, a Rancher 2.x project (<cluster id>:<project id>): use CATTLE_URL=https://rancher.example.com/v3"}},
		{name: "UIPathWith2xProject", env: with(with(minimal(), "CATTLE_URL", "https://rancher.example.com/dashboard/c/local/explorer"), "RANCHER_PROJECTS", "local:p-abcde"),
			want: []string{"is not a Rancher 2.x API URL (path \"/dashboard/c/local/explorer\" is the Rancher UI, not its API; use https://<rancher>/v3 (Rancher 2.x) or https://<rancher>/v2-beta (Rancher 1.x)), but RANCHER_PROJECTS names local:p-abcde, a Rancher 2.x project (<cluster id>:<project id>): use CATTLE_URL=https://rancher.example.com/v3"}},
		{name: "KubePathWith2xProject", env: with(with(minimal(), "CATTLE_URL", "https://rancher.example.com/k8s/clusters/local"), "RANCHER_PROJECTS", "local:p-abcde"),
			want: []string{"use CATTLE_URL=https://rancher.example.com/v3"}},
		{name: "2xProjectInPath", env: with(minimal(), "CATTLE_URL", "https://example.com/rancher/v2-beta/projects/c-abcde:p-fghij"),
			want: []string{"its path names c-abcde:p-fghij, a Rancher 2.x project (<cluster id>:<project id>): use CATTLE_URL=https://example.com/rancher/v3/project/c-abcde:p-fghij"}},
		{name: "2xProjectNoVersion", env: with(minimal(), "CATTLE_URL", "https://rancher.example.com/c-abcde:p-fghij"),
			want: []string{"use CATTLE_URL=https://rancher.example.com/v3/project/c-abcde:p-fghij"}},
		{name: "SecretAPIUnknown", env: with(with(minimal(), "CATTLE_URL", "https://rancher.example.com/v3/project/c-abcde:p-fghij"), "RANCHER_SECRET_API", "steve"),
			want: []string{"RANCHER_SECRET_API: \"steve\" is not auto, v3 or kubernetes"}},
		{name: "SecretAPIOnRancher1", env: with(minimal(), "RANCHER_SECRET_API", "kubernetes"), want: []string{"RANCHER_SECRET_API: \"kubernetes\" applies to Rancher 2.x only"}},
		{name: "InClusterV3", env: map[string]string{"AWS_REGION": "us-east-1", "RANCHER_PROJECTS": "local:p-abcde", "RANCHER_SECRET_API": "v3"},
			want: []string{"RANCHER_SECRET_API: v3 needs CATTLE_URL"}},
		{name: "InCluster1xID", env: map[string]string{"AWS_REGION": "us-east-1", "RANCHER_PROJECTS": "1a5"},
			want: []string{"RANCHER_PROJECTS: \"1a5\" is not a Rancher 2.x project id"}},
		{name: "AllNotAlone", env: with(minimal(), "RANCHER_PROJECTS", "all,1a5"), want: []string{"RANCHER_PROJECTS: \"all\" must stand alone"}},
		{name: "KubernetesURL", env: with(minimal(), "CATTLE_URL", "https://rancher.example.com/k8s/clusters/local"), want: []string{"CATTLE_URL: path \"/k8s/clusters/local\" is a Kubernetes API"}},
		{name: "Rancher1BearerOnly", env: with(with(minimal(), "CATTLE_ACCESS_KEY", ""), "CATTLE_SECRET_KEY", "token-abc:xyz"), want: []string{"CATTLE_ACCESS_KEY: required"}},
		{name: "ProxyWithTwoRegistries", env: with(with(minimal(), "ECR_PROXY_HOST", "proxy.example.com"), "AWS_ECR_REGISTRY_IDS", "111122223333,444455556666"),
			want: []string{"ECR_PROXY_HOST: set, but AWS_ECR_REGISTRY_IDS names 2 registries"}},
		{name: "ProxyNotAHost", env: with(minimal(), "ECR_PROXY_HOST", "a b"), want: []string{"ECR_PROXY_HOST: \"a b\" is not a host"}},
		{name: "TooManyIDs", env: with(minimal(), "AWS_ECR_REGISTRY_IDS", strings.Repeat("111122223333,", 1)+"100000000001,100000000002,100000000003,100000000004,100000000005,100000000006,100000000007,100000000008,100000000009,100000000010"),
			want: []string{"AWS_ECR_REGISTRY_IDS: more than 10 registry ids in region us-east-1"}},
		{name: "UnknownFlag", env: minimal(), args: []string{"--cattle-uri=x"}, want: []string{"command line: flag provided but not defined: -cattle-uri"}},
		{name: "StrayArgument", env: minimal(), args: []string{"once"}, want: []string{"unexpected argument \"once\""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantConfigErrors(t, tt.args, tt.env, tt.want...)
		})
	}
}

// wantConfigErrors parses the configuration and wants exactly one error line
// holding each of want, none of them printing a secret.
func wantConfigErrors(t *testing.T, args []string, env map[string]string, want ...string) {
	t.Helper()
	_, err := ParseConfig(args, envOf(env))
	if err == nil {
		t.Fatal("ParseConfig accepted it")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Errorf("got %d lines, want %d:\n%s", len(lines), len(want), err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%s", w, err)
		}
	}
	for _, secret := range []string{"secret", "pw@"} {
		if strings.Contains(err.Error(), secret) && (env["CATTLE_SECRET_KEY"] == "secret" || secret == "pw@") {
			t.Errorf("error prints a secret (%s)", secret)
		}
	}
}

func with(m map[string]string, k, v string) map[string]string {
	c := map[string]string{}
	for a, b := range m {
		c[a] = b
	}
	c[k] = v
	return c
}

// --help names every variable of the contract with its default.
func TestWriteHelp(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	writeHelp(&b)
	for _, env := range []string{"CATTLE_URL", "CATTLE_ACCESS_KEY", "CATTLE_SECRET_KEY", "CATTLE_ACCESS_KEY_FILE", "CATTLE_SECRET_KEY_FILE",
		"AWS_REGION", "AWS_ECR_REGISTRY_IDS", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME", "AWS_ROLE_EXTERNAL_ID", "AUTO_CREATE",
		"ECR_PROXY_HOST", "LISTEN_PORT", "LOG_LEVEL", "LOG_FORMAT", "REFRESH_SCHEDULE", "SHUTDOWN_TIMEOUT", "RETRY_MIN_INTERVAL",
		"RETRY_MAX_INTERVAL", "RANCHER_PROJECTS", "RANCHER_CA_FILE", "RANCHER_INSECURE_SKIP_VERIFY", "RUN_ONCE", "DRY_RUN",
		"AWS_ENDPOINT_URL_ECR", "HTTPS_PROXY"} {
		if !strings.Contains(b.String(), env) {
			t.Errorf("help does not mention %s", env)
		}
	}
	for _, f := range []string{"--once", "--dry-run", "--demo", "--version", "--help", "--cattle-url VALUE", "default @every 6h", "default 8080",
		"LISTEN_ADDRESS; default all interfaces", "PLATFORM_URL when CATTLE_URL is unset", "PLATFORM_ACCESS_KEY", "PLATFORM_SECRET_KEY",
		"CATTLE_URL is unset; required)", "AWS_REGION; required unless every registry id names its region)",
		"AWS_ECR_REGISTRY_IDS; default the caller's own)", "RANCHER_PROJECTS; default the URL's own scope)",
		"https://rancher.example.com/v3/project/c-abcde:p-fghij", "https://rancher.example.com/v2-beta/projects/1a5",
		"CATTLE_ACCESS_KEY unset, CATTLE_SECRET_KEY=token-xxxxx:yyyyyyyy",
		"Rancher 2.x writes a dockerCredential into every project that lacks one for an ECR host, whatever AUTO_CREATE",
		"Exit codes:\n  0  ", "\n  1  ", "\n  2  bad configuration", "at least 1m0s apart", "RETRY_MIN_INTERVAL is at least 5s"} {
		if !strings.Contains(b.String(), f) {
			t.Errorf("help does not mention %q", f)
		}
	}
	// One default per setting: no "(default: …)" inside a usage that then says "default none".
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.Count(line, "default") > 1 || strings.Contains(line, "(default:") {
			t.Errorf("help line with two defaults: %s", line)
		}
	}
}

func TestConfig_LogFields(t *testing.T) {
	t.Parallel()
	c, err := ParseConfig(nil, envOf(minimal()))
	if err != nil {
		t.Fatal(err)
	}
	f := c.LogFields()
	if f["cattle_secret_key"] != "REDACTED" {
		t.Errorf("cattle_secret_key = %v, want REDACTED", f["cattle_secret_key"])
	}
	for k, v := range f {
		if v == "secret" {
			t.Errorf("field %s holds the secret key", k)
		}
	}
}

// TestREADME_ConfigTable keeps the README's configuration table true: every
// setting with its flag and default, and nothing the code does not know.
func TestREADME_ConfigTable(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 4 {
			continue
		}
		for i := range cells {
			cells[i] = strings.Trim(strings.TrimSpace(cells[i]), "`")
		}
		rows[cells[0]] = cells
	}
	known := map[string]bool{}
	for _, s := range settings() {
		if s.noEnv {
			continue
		}
		known[s.env] = true
		row, ok := rows[s.env]
		if !ok {
			t.Errorf("README table lacks %s", s.env)
			continue
		}
		if row[1] != "--"+s.flagName() {
			t.Errorf("README: %s flag = %q, want --%s", s.env, row[1], s.flagName())
		}
		if row[2] != s.helpDefault() {
			t.Errorf("README: %s default = %q, want %q", s.env, row[2], s.helpDefault())
		}
	}
	for env := range rows {
		if !known[env] && strings.ToUpper(env) == env {
			t.Errorf("README table documents %s, which the code does not read", env)
		}
	}
}
