package settings

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/setup"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// sections are two modes' worth of settings of every sort.
var sections = []setup.Section{
	{Title: "Shared", Settings: []setup.Setting{
		{Env: "LISTEN_PORT", Default: "8080", Usage: "port"},
		{Env: "RETRY_MIN_INTERVAL", Default: "30s", Usage: "retry"},
		{Env: "RUN_ONCE", Flag: "once", Default: "false", Bool: true, Usage: "one run"},
		{Env: "DEMO", Flag: "demo", Default: "false", Bool: true, FlagOnly: true, Usage: "demo"},
		{Env: "AWS_REGION", Alias: "AWS_DEFAULT_REGION", DefaultHelp: "required", Usage: "region"},
	}},
	{Title: "Rancher", Requires: "CATTLE_URL and a key", Notes: []string{"a note"}, Settings: []setup.Setting{
		{Env: "CATTLE_URL", Alias: "PLATFORM_URL", DefaultHelp: "required", Usage: "url"},
		{Env: "CATTLE_SECRET_KEY", Alias: "PLATFORM_SECRET_KEY", Secret: true, File: true, Usage: "key"},
		{Env: "RANCHER_PROJECTS", DefaultHelp: "the URL's own scope", Usage: "projects"},
	}},
}

func parse(t *testing.T, args []string, env map[string]string) *Values {
	t.Helper()
	v, err := Parse(sections, args, envOf(env), nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Environment over defaults, flags over environment, an alias only when its
// variable is unset, a file over the plain value.
func TestParse_Precedence(t *testing.T) {
	t.Parallel()
	key := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(key, []byte("from-file\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	v := parse(t, []string{"--listen-port", "7070", "--once"}, map[string]string{
		"LISTEN_PORT": "9090", "AWS_DEFAULT_REGION": "eu-west-1", "CATTLE_URL": "https://a.example.com/v3",
		"PLATFORM_URL": "https://b.example.com/v3", "CATTLE_SECRET_KEY": "plain", "CATTLE_SECRET_KEY_FILE": key,
	})
	for env, want := range map[string]string{"LISTEN_PORT": "7070", "RETRY_MIN_INTERVAL": "30s", "RUN_ONCE": "true",
		"AWS_REGION": "eu-west-1", "CATTLE_URL": "https://a.example.com/v3", "CATTLE_SECRET_KEY": "from-file", "RANCHER_PROJECTS": ""} {
		if got := v.Get(env); got != want {
			t.Errorf("%s = %q, want %q", env, got, want)
		}
	}
	for env, want := range map[string]bool{"LISTEN_PORT": true, "RETRY_MIN_INTERVAL": false, "AWS_REGION": true, "RANCHER_PROJECTS": false, "CATTLE_SECRET_KEY": true} {
		if got := v.IsSet(env); got != want {
			t.Errorf("IsSet(%s) = %v, want %v", env, got, want)
		}
	}
	if !v.Bool("RUN_ONCE") || v.Duration("RETRY_MIN_INTERVAL") != 30*time.Second || v.Err() != nil {
		t.Errorf("conversions: %v %v %v", v.Bool("RUN_ONCE"), v.Duration("RETRY_MIN_INTERVAL"), v.Err())
	}
	// A flag-only setting ignores the environment; an override wins over everything.
	v, err := Parse(sections, nil, envOf(map[string]string{"DEMO": "true", "CATTLE_URL": "x"}), map[string]string{"CATTLE_URL": "https://demo/v3"})
	if err != nil || v.Bool("DEMO") || v.Get("CATTLE_URL") != "https://demo/v3" {
		t.Errorf("DEMO=%v CATTLE_URL=%q, %v", v.Bool("DEMO"), v.Get("CATTLE_URL"), err)
	}
}

// Every problem is reported at once, in the order of the settings, naming the
// flag, alias or file the value came from; one problem reported twice is one line.
func TestValues_Problems(t *testing.T) {
	t.Parallel()
	v := parse(t, []string{"--retry-min-interval=1"}, map[string]string{
		"PLATFORM_URL": "ftp://x", "RUN_ONCE": "maybe", "CATTLE_SECRET_KEY_FILE": "/nonexistent/key", "LISTEN_PORT": "x",
	})
	v.Problem("CATTLE_URL", "scheme must be http or https")
	v.Bool("RUN_ONCE")
	v.Bool("RUN_ONCE")
	v.Duration("RETRY_MIN_INTERVAL")
	v.Problem("LISTEN_PORT", "%q is not a port number", v.Get("LISTEN_PORT"))
	v.Warn("twice")
	v.Warn("twice")
	want := []string{
		`LISTEN_PORT: "x" is not a port number`,
		`--retry-min-interval (RETRY_MIN_INTERVAL): "1" is not a positive Go duration such as 30s or 15m`,
		`RUN_ONCE: "maybe" is not true or false`,
		`PLATFORM_URL: scheme must be http or https`,
		`CATTLE_SECRET_KEY_FILE: cannot read /nonexistent/key: no such file or directory`,
	}
	if d := cmp.Diff(want, strings.Split(v.Err().Error(), "\n")); d != "" {
		t.Errorf("problems (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"twice"}, v.Warnings()); d != "" {
		t.Errorf("warnings (-want +got):\n%s", d)
	}
}

func TestParse_CommandLine(t *testing.T) {
	t.Parallel()
	for args, want := range map[string]string{
		"--cattle-uri=x": "command line: flag provided but not defined: -cattle-uri (see --help)",
		"once":           `command line: unexpected argument "once" (settings are flags or environment variables, see --help)`,
	} {
		if _, err := Parse(sections, strings.Fields(args), envOf(nil), nil); err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %q", args, err, want)
		}
	}
	if _, err := Parse(sections, []string{"-h"}, envOf(nil), nil); !errors.Is(err, ErrHelp) {
		t.Errorf("-h: %v, want ErrHelp", err)
	}
}

func TestValues_List(t *testing.T) {
	t.Parallel()
	v := parse(t, nil, map[string]string{"RANCHER_PROJECTS": " 1a5, ,1a7 ,"})
	if d := cmp.Diff([]string{"1a5", "1a7"}, v.List("RANCHER_PROJECTS")); d != "" {
		t.Errorf("list (-want +got):\n%s", d)
	}
}

// The start-up line: given and defaulted settings, secrets REDACTED, URLs
// without user information or query.
func TestValues_Fields(t *testing.T) {
	t.Parallel()
	v := parse(t, nil, map[string]string{"CATTLE_URL": "https://user:pw-DO-NOT-LEAK@rancher.example.com/v3?token=t-DO-NOT-LEAK",
		"CATTLE_SECRET_KEY": "sk-DO-NOT-LEAK"})
	f := v.Fields(sections...)
	if f["cattle_url"] != "https://REDACTED@rancher.example.com/v3" || f["cattle_secret_key"] != "REDACTED" || f["listen_port"] != "8080" {
		t.Errorf("fields = %v", f)
	}
	if _, ok := f["rancher_projects"]; ok {
		t.Errorf("an unset setting without default is logged: %v", f)
	}
	if _, ok := f["demo"]; ok {
		t.Errorf("a flag-only setting is logged: %v", f)
	}
}

// --help: each section with what it requires, each setting once with one
// default, the <Env>_FILE variant after its setting.
func TestWriteSections(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	WriteSections(&b, sections)
	for _, want := range []string{
		"Shared\n  --listen-port VALUE\n      port (env LISTEN_PORT; default 8080)\n",
		"  --once\n      one run (env RUN_ONCE; default false)\n",
		"  --demo\n      demo (flag only; default false)\n",
		"region (env AWS_REGION, or AWS_DEFAULT_REGION when AWS_REGION is unset; required)",
		"Rancher\n  Requires: CATTLE_URL and a key\n",
		"  --cattle-secret-key-file VALUE\n      file holding the value of CATTLE_SECRET_KEY, trailing newline trimmed (wins over CATTLE_SECRET_KEY) (env CATTLE_SECRET_KEY_FILE; default none)\n",
		"projects (env RANCHER_PROJECTS; default the URL's own scope)\n  a note\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, b.String())
		}
	}
}

// A value with commas, such as a label selector (which Helm's --set needs
// escaped as \, but hands over unescaped), is read whole; only List splits.
func TestValues_CommasKeptInValues(t *testing.T) {
	t.Parallel()
	const sel = "team=a,tier in (web,api)"
	for _, v := range []*Values{
		parse(t, nil, map[string]string{"RANCHER_PROJECTS": sel}),
		parse(t, []string{"--rancher-projects", sel}, nil),
		parse(t, []string{"--rancher-projects=" + sel}, nil),
	} {
		if got := v.Get("RANCHER_PROJECTS"); got != sel {
			t.Errorf("Get = %q, want %q", got, sel)
		}
	}
}
