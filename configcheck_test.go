package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Settings that would hammer ECR and Rancher, hide errors, or name no real
// scope are refused, each with the variable (or flag) and the fix.
func TestParseConfig_Refused(t *testing.T) {
	t.Parallel()
	v3 := with(with(with(minimal(), "CATTLE_URL", "https://rancher.example.com/v3"), "CATTLE_ACCESS_KEY", ""), "CATTLE_SECRET_KEY", "token-abcde:secret")
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"ScheduleEvery0s", with(minimal(), "REFRESH_SCHEDULE", "@every 0s"), nil, `REFRESH_SCHEDULE: "@every 0s" runs every 1s: use a schedule at least 1m0s apart`},
		{"ScheduleEvery1ns", with(minimal(), "REFRESH_SCHEDULE", "@every 1ns"), nil, `REFRESH_SCHEDULE: "@every 1ns" runs every 1s`},
		{"ScheduleEvery59s", with(minimal(), "REFRESH_SCHEDULE", "@every 59s"), nil, `REFRESH_SCHEDULE: "@every 59s" runs every 59s`},
		{"ScheduleBareDuration", with(minimal(), "REFRESH_SCHEDULE", "6h"), nil, `REFRESH_SCHEDULE: invalid cron spec "6h": a bare duration needs @every, e.g. REFRESH_SCHEDULE="@every 6h"`},
		{"ScheduleFlag", minimal(), []string{"--refresh-schedule", "@every 1s"}, `--refresh-schedule (REFRESH_SCHEDULE): "@every 1s" runs every 1s`},
		{"RetryMinTooShort", with(minimal(), "RETRY_MIN_INTERVAL", "1s"), nil, "RETRY_MIN_INTERVAL: 1s would retry and refresh too often: use 5s or more"},
		{"RetryMinNanosecond", with(minimal(), "RETRY_MIN_INTERVAL", "1ns"), nil, "RETRY_MIN_INTERVAL: 1ns would retry"},
		{"RetryMaxTooShort", with(with(minimal(), "RETRY_MIN_INTERVAL", "5s"), "RETRY_MAX_INTERVAL", "10s"), nil, "RETRY_MAX_INTERVAL: 10s would retry errors that retrying cannot fix (a rejected key) too often: use 1m0s or more"},
		{"RetryMinOverMax", with(with(minimal(), "RETRY_MIN_INTERVAL", "2h"), "RETRY_MAX_INTERVAL", "1h"), nil, "RETRY_MAX_INTERVAL: 1h0m0s is shorter than RETRY_MIN_INTERVAL 2h0m0s"},
		{"RetryFlag", minimal(), []string{"--retry-min-interval=10ms"}, "--retry-min-interval (RETRY_MIN_INTERVAL): 10ms would retry"},
		{"BoolFlag", minimal(), []string{"--auto-create=maybe"}, `--auto-create (AUTO_CREATE): "maybe" is not true or false`},
		{"LogLevelPanic", with(minimal(), "LOG_LEVEL", "panic"), nil, `LOG_LEVEL: "panic" would hide every error: use error, or a more verbose level`},
		{"LogLevelFatal", with(minimal(), "LOG_LEVEL", "FATAL"), nil, `LOG_LEVEL: "FATAL" would hide every error`},
		{"ProjectPercent", with(minimal(), "RANCHER_PROJECTS", "%ff"), nil, `RANCHER_PROJECTS: "%ff" is not a Rancher 1.x environment id such as 1a5`},
		{"ProjectDotDot", with(minimal(), "RANCHER_PROJECTS", ".."), nil, `RANCHER_PROJECTS: ".." is not a Rancher 1.x environment id`},
		{"ProjectSlash", with(minimal(), "RANCHER_PROJECTS", "1a5/../1a6"), nil, `RANCHER_PROJECTS: "1a5/../1a6" is not`},
		{"ProjectSpace", with(minimal(), "RANCHER_PROJECTS", "1a 5"), nil, `RANCHER_PROJECTS: "1a 5" is not`},
		{"V3ProjectPercent", with(v3, "RANCHER_PROJECTS", "c-x:p-%ff"), nil, `RANCHER_PROJECTS: "c-x:p-%ff" is not a Rancher 2.x project id such as c-abcde:p-fghij`},
		{"V3NoColon", with(v3, "RANCHER_PROJECTS", "nocolon"), nil, `RANCHER_PROJECTS: "nocolon" is not a Rancher 2.x project id`},
		{"V3Slash", with(v3, "RANCHER_PROJECTS", "c-x/p-y"), nil, `RANCHER_PROJECTS: "c-x/p-y" is not a Rancher 2.x project id`},
		{"V3URLProjectPercent", with(v3, "CATTLE_URL", "https://rancher.example.com/v3/project/c-x:p-%25ff"), nil, `CATTLE_URL: "c-x:p-%ff" is not a Rancher 2.x project id`},
		{"V1URLProjectDotDot", with(minimal(), "CATTLE_URL", "https://rancher.example.com/v1/projects/.."), nil, `CATTLE_URL: ".." is not a Rancher 1.x environment id`},
		{"V1URLWithV3Project", with(minimal(), "CATTLE_URL", "https://rancher.example.com/v2-beta/projects/c-abcde:p-fghij"), nil,
			`CATTLE_URL: https://rancher.example.com/v2-beta/projects/c-abcde:p-fghij is not a Rancher 2.x API URL, but its path names c-abcde:p-fghij, a Rancher 2.x project (<cluster id>:<project id>): use CATTLE_URL=https://rancher.example.com/v3/project/c-abcde:p-fghij`},
		{"BareHostWithV3Projects", with(minimal(), "RANCHER_PROJECTS", "c-abcde:p-fghij"), nil,
			`CATTLE_URL: http://rancher.example.com:8080/v1 is not a Rancher 2.x API URL, but RANCHER_PROJECTS names c-abcde:p-fghij, a Rancher 2.x project (<cluster id>:<project id>): use CATTLE_URL=http://rancher.example.com:8080/v3`},
		{"WrongPathWithV3Projects", with(with(minimal(), "CATTLE_URL", "https://rancher.example.com/v2"), "RANCHER_PROJECTS", "c-abcde:p-fghij"), nil,
			`names no API version: use https://rancher.example.com/v2-beta (Rancher 1.x) or https://rancher.example.com/v3 (Rancher 2.x), after any proxy prefix; the forms are Rancher 1.x: https://<rancher>, …/v1, …/v2-beta, …/v1/projects/<environment id>, …/v2-beta/projects/<environment id>; Rancher 2.x: https://<rancher>/v3, …/v3/project/<cluster id>:<project id>), but RANCHER_PROJECTS names c-abcde:p-fghij, a Rancher 2.x project (<cluster id>:<project id>): use CATTLE_URL=https://rancher.example.com/v3`},
		{"URLPathV2", with(minimal(), "CATTLE_URL", "https://rancher.example.com/v2"), nil, `CATTLE_URL: path "/v2" names no API version: use https://rancher.example.com/v2-beta (Rancher 1.x) or https://rancher.example.com/v3 (Rancher 2.x)`},
		{"URLNoScheme", with(minimal(), "CATTLE_URL", "rancher.example.com:8080/v1"), nil, `CATTLE_URL: "rancher.example.com:8080/v1" has no scheme: use https://rancher.example.com:8080/v1 (or http://rancher.example.com:8080/v1 if Rancher answers plain HTTP)`},
		{"URLNoSchemeWithPassword", with(minimal(), "CATTLE_URL", "user:pw@rancher.example.com/v1"), nil, "CATTLE_URL: has no scheme: start it with https://"},
		{"URLFlag", minimal(), []string{"--cattle-url", "ftp://x"}, "--cattle-url (CATTLE_URL): scheme must be http or https"},
		{"AliasURL", with(with(minimal(), "CATTLE_URL", ""), "PLATFORM_URL", "https://rancher.example.com/v9"), nil, `PLATFORM_URL: path "/v9" names no API version`},
		{"ListenAddressPort", with(minimal(), "LISTEN_ADDRESS", "127.0.0.1:8080"), nil, `LISTEN_ADDRESS: "127.0.0.1:8080" holds a port: set LISTEN_ADDRESS=127.0.0.1 and LISTEN_PORT=8080`},
		{"ListenAddressJunk", with(minimal(), "LISTEN_ADDRESS", "http://0.0.0.0"), nil, `LISTEN_ADDRESS: "http://0.0.0.0" is not an IP address or host name`},
		{"ListenAddressFlag", minimal(), []string{"--listen-address", "a b"}, `--listen-address (LISTEN_ADDRESS): "a b" is not an IP address or host name`},
		{"RegionMissingForOneID", with(with(minimal(), "AWS_REGION", ""), "AWS_ECR_REGISTRY_IDS", "111122223333:eu-west-1,444455556666"), nil,
			"AWS_REGION: required (or AWS_DEFAULT_REGION), e.g. us-east-1, unless every AWS_ECR_REGISTRY_IDS entry names its region as id:region"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantConfigErrors(t, tt.args, tt.env, tt.want)
		})
	}
}

// The floors themselves, and the finest cron spec, are accepted.
func TestParseConfig_Floors(t *testing.T) {
	t.Parallel()
	for _, env := range []map[string]string{
		with(minimal(), "REFRESH_SCHEDULE", "@every 1m"),
		with(minimal(), "REFRESH_SCHEDULE", "* * * * *"),
		with(minimal(), "REFRESH_SCHEDULE", "@hourly"),
		with(with(minimal(), "RETRY_MIN_INTERVAL", "5s"), "RETRY_MAX_INTERVAL", "1m"),
		with(minimal(), "LOG_LEVEL", "error"),
		with(minimal(), "LOG_LEVEL", "trace"),
	} {
		if _, err := ParseConfig(nil, envOf(env)); err != nil {
			t.Errorf("%v: %v", env, err)
		}
	}
}

func TestParseConfig_DuplicateProjects(t *testing.T) {
	t.Parallel()
	got, err := ParseConfig(nil, envOf(with(minimal(), "RANCHER_PROJECTS", "1a5, 1a7,1a5,1a7, 1a5")))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"1a5", "1a7"}, got.RancherProjects); d != "" {
		t.Errorf("projects (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"RANCHER_PROJECTS lists 1a5, 1a7 more than once: each is written once"}, got.Warnings); d != "" {
		t.Errorf("warnings (-want +got):\n%s", d)
	}
}

// Rancher 2.6+ provisions clusters with ids such as c-m-abcd1234.
func TestParseConfig_ProvisionedClusterID(t *testing.T) {
	t.Parallel()
	env := with(with(with(minimal(), "CATTLE_URL", "https://rancher.example.com/v3"), "CATTLE_ACCESS_KEY", ""), "CATTLE_SECRET_KEY", "token-abcde:secret")
	got, err := ParseConfig(nil, envOf(with(env, "RANCHER_PROJECTS", "c-m-abcd1234:p-xyz12")))
	if err != nil || len(got.RancherProjects) != 1 {
		t.Errorf("projects = %v, %v", got.RancherProjects, err)
	}
}

// The maintained Rancher 1.6 fork's sidecar reads PLATFORM_*: used when the
// CATTLE_* name is unset, never over it.
func TestParseConfig_PlatformAliases(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"PLATFORM_URL": "https://platform.example.com/v2-beta", "PLATFORM_ACCESS_KEY": "pak", "PLATFORM_SECRET_KEY": "psk",
		"AWS_REGION": "us-east-1",
	}
	got, err := ParseConfig(nil, envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	if got.CattleURL != env["PLATFORM_URL"] || got.CattleAccessKey != "pak" || got.CattleSecretKey != "psk" {
		t.Errorf("config = %q %q %q, want the PLATFORM_* values", got.CattleURL, got.CattleAccessKey, got.CattleSecretKey)
	}
	env["CATTLE_URL"], env["CATTLE_ACCESS_KEY"], env["CATTLE_SECRET_KEY"] = "https://cattle.example.com/v1", "cak", "csk"
	got, err = ParseConfig(nil, envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	if got.CattleURL != env["CATTLE_URL"] || got.CattleAccessKey != "cak" || got.CattleSecretKey != "csk" {
		t.Errorf("config = %q %q %q, want the CATTLE_* values", got.CattleURL, got.CattleAccessKey, got.CattleSecretKey)
	}
}

// AWS_REGION is not needed when every registry id names its region; the first
// one's region serves the SDK's own calls (STS).
func TestParseConfig_RegionFromRegistryIDs(t *testing.T) {
	t.Parallel()
	env := with(minimal(), "AWS_ECR_REGISTRY_IDS", "111122223333:eu-west-1, 444455556666:ap-south-1")
	delete(env, "AWS_REGION")
	got, err := ParseConfig(nil, envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]RegistrySpec{{"111122223333", "eu-west-1"}, {"444455556666", "ap-south-1"}}, got.Registries); d != "" || got.Region != "eu-west-1" {
		t.Errorf("region %q, registries (-want +got):\n%s", got.Region, d)
	}
}

func TestParseConfig_ListenAddress(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"": "", "127.0.0.1": "127.0.0.1", "::1": "::1", "[::1]": "::1", "0.0.0.0": "0.0.0.0", "localhost": "localhost"} {
		got, err := ParseConfig(nil, envOf(with(minimal(), "LISTEN_ADDRESS", in)))
		if err != nil || got.ListenAddress != want {
			t.Errorf("LISTEN_ADDRESS=%q: %q, %v, want %q", in, got.ListenAddress, err, want)
		}
	}
}

// The start-up line says that Rancher 2.x creates missing credentials.
func TestConfig_LogFieldsRancher2(t *testing.T) {
	t.Parallel()
	env := with(with(with(minimal(), "CATTLE_URL", "https://rancher.example.com/v3/project/c-abcde:p-fghij"), "CATTLE_ACCESS_KEY", ""), "CATTLE_SECRET_KEY", "token-abcde:secret")
	c, err := ParseConfig(nil, envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.LogFields()["missing_credentials"]; got != "created in every project, whatever AUTO_CREATE says" {
		t.Errorf("missing_credentials = %v", got)
	}
	c, _ = ParseConfig(nil, envOf(minimal()))
	if _, ok := c.LogFields()["missing_credentials"]; ok {
		t.Errorf("a Rancher 1.x start-up line says Rancher 2.x creates credentials")
	}
}

// A project listed twice is written once, and said once.
func TestRun_DuplicateProjectsWrittenOnce(t *testing.T) {
	w := newWorld(t)
	reg := w.rancher.AddRegistry(e2eProject, w.ecr.Host(e2eAccount), "")
	w.env["RANCHER_PROJECTS"] = e2eProject + "," + e2eProject + " ," + e2eProject
	_, logs, err := w.run(t.Context(), "--once")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, logs)
	}
	if got := strings.Count(logs, "more than once"); got != 1 {
		t.Errorf("%d warnings, want 1:\n%s", got, logs)
	}
	if creds := w.rancher.Credentials(e2eProject); len(creds) != 1 || creds[0].RegistryID != reg {
		t.Errorf("credentials %+v, want one for %s", creds, reg)
	}
}

// FuzzParseConfig: whatever the URL, projects, schedule and listen address,
// parsing never panics, never prints the secret key, and a value it accepts
// for a Rancher 2.x URL is a project id.
func FuzzParseConfig(f *testing.F) {
	for _, s := range [][4]string{
		{"https://rancher.example.com/v3", "c-abcde:p-fghij", "@every 6h", ""},
		{"http://rancher.example.com:8080/v1", "1a5,1a5", "0 */6 * * *", "127.0.0.1"},
		{"rancher.example.com/v2", "c-x:p-%ff", "6h", "::1"},
		{"https://u:pw@rancher.example.com/v3/project/..", "..", "@every 0s", "a b:1"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, url, projects, schedule, addr string) {
		env := map[string]string{"CATTLE_URL": url, "CATTLE_ACCESS_KEY": "ak", "CATTLE_SECRET_KEY": "sk-FUZZ-SECRET",
			"AWS_REGION": "us-east-1", "RANCHER_PROJECTS": projects, "REFRESH_SCHEDULE": schedule, "LISTEN_ADDRESS": addr}
		c, err := ParseConfig(nil, envOf(env))
		if err != nil {
			if strings.Contains(err.Error(), "sk-FUZZ-SECRET") {
				t.Fatalf("error prints the secret key: %v", err)
			}
			return
		}
		for _, p := range c.RancherProjects {
			if !envIDRE.MatchString(p) && !projectIDRE.MatchString(p) {
				t.Fatalf("accepted project %q", p)
			}
		}
	})
}
