package rancher

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/apptest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/settings"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/setup"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
)

// sections are the kind's settings, as the daemon's table adds them.
func sections() []setup.Section {
	k := Kind()
	return append([]setup.Section{k.Section}, k.More...)
}

// values parses args and env as the daemon does, with the kind's settings only.
func values(t testing.TB, args []string, env map[string]string) *settings.Values {
	t.Helper()
	v, err := settings.Parse(sections(), args, func(k string) string { return env[k] }, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// parseEnv is parse over env, with every problem it reported.
func parseEnv(args []string, env map[string]string) (config, error) {
	v, err := settings.Parse(sections(), args, func(k string) string { return env[k] }, nil)
	if err != nil {
		return config{}, err
	}
	c := parse(v)
	return c, v.Err()
}

// minimal is the old image's Rancher environment.
func minimal() map[string]string {
	return map[string]string{
		"CATTLE_URL":        "http://rancher.example.com:8080/v1",
		"CATTLE_ACCESS_KEY": "access",
		"CATTLE_SECRET_KEY": "secret",
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

// wantProblems parses the settings and wants exactly one problem line holding
// each of want, none of them printing a secret.
func wantProblems(t *testing.T, args []string, env map[string]string, want ...string) {
	t.Helper()
	_, err := parseEnv(args, env)
	apptest.WantLines(t, err, want...)
	for _, secret := range []string{"secret", "pw@"} {
		if err != nil && strings.Contains(err.Error(), secret) && (env["CATTLE_SECRET_KEY"] == "secret" || secret == "pw@") {
			t.Errorf("error prints a secret (%s)", secret)
		}
	}
}

func TestKind_On(t *testing.T) {
	t.Parallel()
	for env, want := range map[string]bool{"CATTLE_URL": true, "PLATFORM_URL": true, "RANCHER_PROJECTS": true, "CATTLE_ACCESS_KEY": false, "AUTO_CREATE": false} {
		if got := Kind().On(values(t, nil, map[string]string{env: "x"})); got != want {
			t.Errorf("On with %s set = %v, want %v", env, got, want)
		}
	}
}

func TestParse_Defaults(t *testing.T) {
	t.Parallel()
	c, err := parseEnv(nil, minimal())
	if err != nil {
		t.Fatal(err)
	}
	if c.url != "http://rancher.example.com:8080/v1" || c.accessKey != "access" || c.secretKey != "secret" || c.api.Rancher2 ||
		c.autoCreate || c.all || c.inCluster || c.insecure || c.roots != nil || c.secretAPI != "auto" || len(c.projects) != 0 {
		t.Errorf("config = %v", c)
	}
}

func TestParse_Rancher2(t *testing.T) {
	t.Parallel()
	env := with(with(with(minimal(), "CATTLE_URL", "https://rancher.example.com/v3"), "CATTLE_ACCESS_KEY", ""), "CATTLE_SECRET_KEY", "token-abcde:secret")
	env["RANCHER_PROJECTS"] = "c-abcde:p-fghij, local:p-x1"
	got, err := parseEnv(nil, env)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"c-abcde:p-fghij", "local:p-x1"}, got.projects); d != "" || !got.api.Rancher2 {
		t.Errorf("projects (-want +got):\n%s", d)
	}
	env["RANCHER_PROJECTS"] = "ALL"
	if got, err := parseEnv(nil, env); err != nil || !got.all {
		t.Errorf("all: %v, %v", got, err)
	}
	env["RANCHER_PROJECTS"] = ""
	env["CATTLE_URL"] = "https://rancher.example.com/v3/project/c-abcde:p-fghij"
	if _, err := parseEnv(nil, env); err != nil {
		t.Errorf("a project URL without RANCHER_PROJECTS: %v", err)
	}
}

func TestParse_KeyFiles(t *testing.T) {
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
	got, err := parseEnv(nil, env)
	if err != nil {
		t.Fatal(err)
	}
	if got.accessKey != "file-access" || got.secretKey != "file-secret" {
		t.Errorf("keys = %q/%q, want the files' contents without the newline", got.accessKey, got.secretKey)
	}
	env["CATTLE_SECRET_KEY_FILE"] = filepath.Join(dir, "missing")
	_, err = parseEnv(nil, env)
	if err == nil || !strings.Contains(err.Error(), "CATTLE_SECRET_KEY_FILE: cannot read") {
		t.Errorf("err = %v, want the unreadable file named", err)
	}
}

// Every problem is reported at once, one line each, naming the variable.
func TestParse_Invalid(t *testing.T) {
	t.Parallel()
	apptest.Problems(t, []apptest.Problem{
		{Name: "Everything", Env: map[string]string{"CATTLE_URL": "ftp://x", "CATTLE_ACCESS_KEY": "a", "CATTLE_SECRET_KEY": "s",
			"AUTO_CREATE": "yes please", "RANCHER_CA_FILE": "/nonexistent/ca.pem", "RANCHER_INSECURE_SKIP_VERIFY": "nope"}, Want: []string{
			"CATTLE_URL: scheme must be http or https", "AUTO_CREATE: \"yes please\" is not true or false",
			"RANCHER_INSECURE_SKIP_VERIFY: \"nope\" is not true or false", "RANCHER_CA_FILE: cannot read",
		}},
		{Name: "NoKeys", Env: map[string]string{"CATTLE_URL": "https://rancher.example.com/v2-beta"}, Want: []string{
			"CATTLE_ACCESS_KEY: required (or CATTLE_ACCESS_KEY_FILE, or PLATFORM_ACCESS_KEY)", "CATTLE_SECRET_KEY: required"}},
		{Name: "BlankURL", Env: with(minimal(), "CATTLE_URL", "  "), Want: []string{"CATTLE_URL: required: the Rancher API URL"}},
		{Name: "Rancher2WithoutProject", Env: with(minimal(), "CATTLE_URL", "https://rancher.example.com/v3"), Want: []string{"RANCHER_PROJECTS: required with a Rancher 2.x URL that names no project"}},
		{Name: "Rancher2ProjectIDs", Env: with(with(minimal(), "CATTLE_URL", "https://rancher.example.com/v3"), "RANCHER_PROJECTS", "1a5,c-abcde:p-fghij"),
			Want: []string{"RANCHER_PROJECTS: \"1a5\" is not a Rancher 2.x project id"}},
		{Name: "Rancher1ProjectIDs", Env: with(minimal(), "RANCHER_PROJECTS", "1a5, c-abcde:p-fghij"),
			Want: []string{"CATTLE_URL: http://rancher.example.com:8080/v1 is not a Rancher 2.x API URL, but RANCHER_PROJECTS names c-abcde:p-fghij, a Rancher 2.x project (<cluster id>:<project id>): use CATTLE_URL=http://rancher.example.com:8080/v3"}},
		// The URL mistakes people make with Rancher 2.x project ids: each answer names the …/v3 URL to use.
		{Name: "BareHostWith2xProject", Env: with(with(minimal(), "CATTLE_URL", "https://rancher.example.com"), "RANCHER_PROJECTS", "c-m-abc123:p-vwxyz"),
			Want: []string{"CATTLE_URL: https://rancher.example.com is a bare host, which means Rancher 1.x, but RANCHER_PROJECTS names c-m-abc123:p-vwxyz, a Rancher 2.x project (<cluster id>:<project id>): use CATTLE_URL=https://rancher.example.com/v3"}},
		{Name: "UIPathWith2xProject", Env: with(with(minimal(), "CATTLE_URL", "https://rancher.example.com/dashboard/c/local/explorer"), "RANCHER_PROJECTS", "local:p-abcde"),
			Want: []string{"is not a Rancher 2.x API URL (path \"/dashboard/c/local/explorer\" is the Rancher UI, not its API; use https://<rancher>/v3 (Rancher 2.x) or https://<rancher>/v2-beta (Rancher 1.x)), but RANCHER_PROJECTS names local:p-abcde, a Rancher 2.x project (<cluster id>:<project id>): use CATTLE_URL=https://rancher.example.com/v3"}},
		{Name: "KubePathWith2xProject", Env: with(with(minimal(), "CATTLE_URL", "https://rancher.example.com/k8s/clusters/local"), "RANCHER_PROJECTS", "local:p-abcde"),
			Want: []string{"use CATTLE_URL=https://rancher.example.com/v3"}},
		{Name: "2xProjectInPath", Env: with(minimal(), "CATTLE_URL", "https://example.com/rancher/v2-beta/projects/c-abcde:p-fghij"),
			Want: []string{"its path names c-abcde:p-fghij, a Rancher 2.x project (<cluster id>:<project id>): use CATTLE_URL=https://example.com/rancher/v3/project/c-abcde:p-fghij"}},
		{Name: "2xProjectNoVersion", Env: with(minimal(), "CATTLE_URL", "https://rancher.example.com/c-abcde:p-fghij"),
			Want: []string{"use CATTLE_URL=https://rancher.example.com/v3/project/c-abcde:p-fghij"}},
		{Name: "SecretAPIUnknown", Env: with(with(minimal(), "CATTLE_URL", "https://rancher.example.com/v3/project/c-abcde:p-fghij"), "RANCHER_SECRET_API", "steve"),
			Want: []string{"RANCHER_SECRET_API: \"steve\" is not auto, v3 or kubernetes"}},
		{Name: "SecretAPIOnRancher1", Env: with(minimal(), "RANCHER_SECRET_API", "kubernetes"), Want: []string{"RANCHER_SECRET_API: \"kubernetes\" applies to Rancher 2.x only"}},
		{Name: "InClusterV3", Env: map[string]string{"RANCHER_PROJECTS": "local:p-abcde", "RANCHER_SECRET_API": "v3"},
			Want: []string{"RANCHER_SECRET_API: v3 needs CATTLE_URL"}},
		{Name: "InCluster1xID", Env: map[string]string{"RANCHER_PROJECTS": "1a5"},
			Want: []string{"RANCHER_PROJECTS: \"1a5\" is not a Rancher 2.x project id"}},
		{Name: "AllNotAlone", Env: with(minimal(), "RANCHER_PROJECTS", "all,1a5"), Want: []string{"RANCHER_PROJECTS: \"all\" must stand alone"}},
		{Name: "KubernetesURL", Env: with(minimal(), "CATTLE_URL", "https://rancher.example.com/k8s/clusters/local"), Want: []string{"CATTLE_URL: path \"/k8s/clusters/local\" is a Kubernetes API"}},
		{Name: "Rancher1BearerOnly", Env: with(with(minimal(), "CATTLE_ACCESS_KEY", ""), "CATTLE_SECRET_KEY", "token-abc:xyz"), Want: []string{"CATTLE_ACCESS_KEY: required"}},
	}, wantProblems)
}

// Values that name no real scope are refused, each with the variable (or
// flag) and the fix.
func TestParse_Refused(t *testing.T) {
	t.Parallel()
	v3 := with(with(with(minimal(), "CATTLE_URL", "https://rancher.example.com/v3"), "CATTLE_ACCESS_KEY", ""), "CATTLE_SECRET_KEY", "token-abcde:secret")
	apptest.Problems(t, []apptest.Problem{
		{Name: "BoolFlag", Env: minimal(), Args: []string{"--auto-create=maybe"}, Want: []string{`--auto-create (AUTO_CREATE): "maybe" is not true or false`}},
		{Name: "ProjectPercent", Env: with(minimal(), "RANCHER_PROJECTS", "%ff"), Want: []string{`RANCHER_PROJECTS: "%ff" is not a Rancher 1.x environment id such as 1a5`}},
		{Name: "ProjectDotDot", Env: with(minimal(), "RANCHER_PROJECTS", ".."), Want: []string{`RANCHER_PROJECTS: ".." is not a Rancher 1.x environment id`}},
		{Name: "ProjectSlash", Env: with(minimal(), "RANCHER_PROJECTS", "1a5/../1a6"), Want: []string{`RANCHER_PROJECTS: "1a5/../1a6" is not`}},
		{Name: "ProjectSpace", Env: with(minimal(), "RANCHER_PROJECTS", "1a 5"), Want: []string{`RANCHER_PROJECTS: "1a 5" is not`}},
		{Name: "V3ProjectPercent", Env: with(v3, "RANCHER_PROJECTS", "c-x:p-%ff"), Want: []string{`RANCHER_PROJECTS: "c-x:p-%ff" is not a Rancher 2.x project id such as c-abcde:p-fghij`}},
		{Name: "V3NoColon", Env: with(v3, "RANCHER_PROJECTS", "nocolon"), Want: []string{`RANCHER_PROJECTS: "nocolon" is not a Rancher 2.x project id`}},
		{Name: "V3Slash", Env: with(v3, "RANCHER_PROJECTS", "c-x/p-y"), Want: []string{`RANCHER_PROJECTS: "c-x/p-y" is not a Rancher 2.x project id`}},
		{Name: "V3URLProjectPercent", Env: with(v3, "CATTLE_URL", "https://rancher.example.com/v3/project/c-x:p-%25ff"), Want: []string{`CATTLE_URL: "c-x:p-%ff" is not a Rancher 2.x project id`}},
		{Name: "V1URLProjectDotDot", Env: with(minimal(), "CATTLE_URL", "https://rancher.example.com/v1/projects/.."), Want: []string{`CATTLE_URL: ".." is not a Rancher 1.x environment id`}},
		{Name: "V1URLWithV3Project", Env: with(minimal(), "CATTLE_URL", "https://rancher.example.com/v2-beta/projects/c-abcde:p-fghij"),
			Want: []string{`CATTLE_URL: https://rancher.example.com/v2-beta/projects/c-abcde:p-fghij is not a Rancher 2.x API URL, but its path names c-abcde:p-fghij, a Rancher 2.x project (<cluster id>:<project id>): use CATTLE_URL=https://rancher.example.com/v3/project/c-abcde:p-fghij`}},
		{Name: "BareHostWithV3Projects", Env: with(minimal(), "RANCHER_PROJECTS", "c-abcde:p-fghij"),
			Want: []string{`CATTLE_URL: http://rancher.example.com:8080/v1 is not a Rancher 2.x API URL, but RANCHER_PROJECTS names c-abcde:p-fghij, a Rancher 2.x project (<cluster id>:<project id>): use CATTLE_URL=http://rancher.example.com:8080/v3`}},
		{Name: "WrongPathWithV3Projects", Env: with(with(minimal(), "CATTLE_URL", "https://rancher.example.com/v2"), "RANCHER_PROJECTS", "c-abcde:p-fghij"),
			Want: []string{`names no API version: use https://rancher.example.com/v2-beta (Rancher 1.x) or https://rancher.example.com/v3 (Rancher 2.x), after any proxy prefix; the forms are Rancher 1.x: https://<rancher>, …/v1, …/v2-beta, …/v1/projects/<environment id>, …/v2-beta/projects/<environment id>; Rancher 2.x: https://<rancher>/v3, …/v3/project/<cluster id>:<project id>), but RANCHER_PROJECTS names c-abcde:p-fghij, a Rancher 2.x project (<cluster id>:<project id>): use CATTLE_URL=https://rancher.example.com/v3`}},
		{Name: "URLPathV2", Env: with(minimal(), "CATTLE_URL", "https://rancher.example.com/v2"), Want: []string{`CATTLE_URL: path "/v2" names no API version: use https://rancher.example.com/v2-beta (Rancher 1.x) or https://rancher.example.com/v3 (Rancher 2.x)`}},
		{Name: "URLNoScheme", Env: with(minimal(), "CATTLE_URL", "rancher.example.com:8080/v1"), Want: []string{`CATTLE_URL: "rancher.example.com:8080/v1" has no scheme: use https://rancher.example.com:8080/v1 (or http://rancher.example.com:8080/v1 if Rancher answers plain HTTP)`}},
		{Name: "URLNoSchemeWithPassword", Env: with(minimal(), "CATTLE_URL", "user:pw@rancher.example.com/v1"), Want: []string{"CATTLE_URL: has no scheme: start it with https://"}},
		{Name: "URLFlag", Env: minimal(), Args: []string{"--cattle-url", "ftp://x"}, Want: []string{"--cattle-url (CATTLE_URL): scheme must be http or https"}},
		{Name: "AliasURL", Env: with(with(minimal(), "CATTLE_URL", ""), "PLATFORM_URL", "https://rancher.example.com/v9"), Want: []string{`PLATFORM_URL: path "/v9" names no API version`}},
	}, wantProblems)
}

func TestParse_DuplicateProjects(t *testing.T) {
	t.Parallel()
	v := values(t, nil, with(minimal(), "RANCHER_PROJECTS", "1a5, 1a7,1a5,1a7, 1a5"))
	got := parse(v)
	err := v.Err()
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"1a5", "1a7"}, got.projects); d != "" {
		t.Errorf("projects (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"RANCHER_PROJECTS lists 1a5, 1a7 more than once: each is written once"}, v.Warnings()); d != "" {
		t.Errorf("warnings (-want +got):\n%s", d)
	}
}

// Rancher 2.6+ provisions clusters with ids such as c-m-abcd1234.
func TestParse_ProvisionedClusterID(t *testing.T) {
	t.Parallel()
	env := with(with(with(minimal(), "CATTLE_URL", "https://rancher.example.com/v3"), "CATTLE_ACCESS_KEY", ""), "CATTLE_SECRET_KEY", "token-abcde:secret")
	got, err := parseEnv(nil, with(env, "RANCHER_PROJECTS", "c-m-abcd1234:p-xyz12"))
	if err != nil || len(got.projects) != 1 {
		t.Errorf("projects = %v, %v", got.projects, err)
	}
}

// The maintained Rancher 1.6 fork's sidecar reads PLATFORM_*: used when the
// CATTLE_* name is unset, never over it.
func TestParse_PlatformAliases(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"PLATFORM_URL": "https://platform.example.com/v2-beta", "PLATFORM_ACCESS_KEY": "pak", "PLATFORM_SECRET_KEY": "psk",
	}
	got, err := parseEnv(nil, env)
	if err != nil {
		t.Fatal(err)
	}
	if got.url != env["PLATFORM_URL"] || got.accessKey != "pak" || got.secretKey != "psk" {
		t.Errorf("config = %q %q %q, want the PLATFORM_* values", got.url, got.accessKey, got.secretKey)
	}
	env["CATTLE_URL"], env["CATTLE_ACCESS_KEY"], env["CATTLE_SECRET_KEY"] = "https://cattle.example.com/v1", "cak", "csk"
	got, err = parseEnv(nil, env)
	if err != nil {
		t.Fatal(err)
	}
	if got.url != env["CATTLE_URL"] || got.accessKey != "cak" || got.secretKey != "csk" {
		t.Errorf("config = %q %q %q, want the CATTLE_* values", got.url, got.accessKey, got.secretKey)
	}
}

// FuzzParse: whatever the URL and projects, parsing never panics, never prints the secret key, and a value it accepts
// for a Rancher 2.x URL is a project id.
func FuzzParse(f *testing.F) {
	for _, s := range [][2]string{
		{"https://rancher.example.com/v3", "c-abcde:p-fghij"},
		{"http://rancher.example.com:8080/v1", "1a5,1a5"},
		{"rancher.example.com/v2", "c-x:p-%ff"},
		{"https://u:pw@rancher.example.com/v3/project/..", ".."},
		{"", "local:p-abcde,all"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, url, projects string) {
		env := map[string]string{"CATTLE_URL": url, "CATTLE_ACCESS_KEY": "ak", "CATTLE_SECRET_KEY": "sk-FUZZ-SECRET",
			"RANCHER_PROJECTS": projects}
		c, err := parseEnv(nil, env)
		if err != nil {
			if strings.Contains(err.Error(), "sk-FUZZ-SECRET") {
				t.Fatalf("error prints the secret key: %v", err)
			}
			return
		}
		for _, p := range c.projects {
			if !environmentIDPattern.MatchString(p) && !rancherapi.ProjectIDPattern.MatchString(p) {
				t.Fatalf("accepted project %q", p)
			}
		}
	})
}
