package app

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/apptest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/buildinfo"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/settings"
)

// help is what --help prints.
func help(t *testing.T, args ...string) string {
	t.Helper()
	var o bytes.Buffer
	if err := Run(t.Context(), buildinfo.Stamp{}, args, apptest.EnvOf(nil), &o, io.Discard); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return o.String()
}

// --help names every variable of the contract with its one default, by mode:
// the settings every mode shares, then each kind with what it requires.
func TestHelp(t *testing.T) {
	t.Parallel()
	h := help(t, "--help")
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help", "--once"}} {
		if got := help(t, args...); got != h {
			t.Errorf("%v prints another help than --help", args)
		}
	}
	for _, env := range []string{"CATTLE_URL", "CATTLE_ACCESS_KEY", "CATTLE_SECRET_KEY", "CATTLE_ACCESS_KEY_FILE", "CATTLE_SECRET_KEY_FILE",
		"AWS_REGION", "AWS_ECR_REGISTRY_IDS", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME", "AWS_ROLE_EXTERNAL_ID", "AUTO_CREATE",
		"ECR_PROXY_HOST", "LISTEN_PORT", "LOG_LEVEL", "LOG_FORMAT", "REFRESH_SCHEDULE", "SHUTDOWN_TIMEOUT", "RETRY_MIN_INTERVAL",
		"RETRY_MAX_INTERVAL", "RANCHER_PROJECTS", "RANCHER_CA_FILE", "RANCHER_INSECURE_SKIP_VERIFY", "RANCHER_SECRET_API", "RUN_ONCE", "DRY_RUN",
		"METRICS_PER_SCOPE", "LEADER_ELECTION", "KUBE_NAMESPACES", "AWS_ENDPOINT_URL_ECR", "HTTPS_PROXY", "AWS_ECR_PUBLIC",
		"AWS_ENDPOINT_URL_ECR_PUBLIC"} {
		if !strings.Contains(h, env) {
			t.Errorf("help does not mention %s", env)
		}
	}
	for _, f := range []string{"--once", "--dry-run", "--demo", "--version", "--help", "--cattle-url VALUE", "default @every 6h", "default 8080",
		"LISTEN_ADDRESS; default all interfaces", "PLATFORM_URL when CATTLE_URL is unset", "PLATFORM_ACCESS_KEY", "PLATFORM_SECRET_KEY",
		"CATTLE_URL is unset; required)", "AWS_REGION is unset; required unless every registry id names its region)",
		"AWS_ECR_REGISTRY_IDS; default the caller's own)", "RANCHER_PROJECTS; default the URL's own scope)",
		"https://rancher.example.com/v3/project/c-abcde:p-fghij", "https://rancher.example.com/v2-beta/projects/1a5",
		"CATTLE_ACCESS_KEY unset, CATTLE_SECRET_KEY=token-xxxxx:yyyyyyyy",
		"Rancher 2.x writes a dockerCredential into every project that lacks one for an ECR host, whatever AUTO_CREATE",
		"rancher-ecr-credentials help", "rancher-ecr-credentials version", "rancher-ecr-credentials healthcheck",
		"Exit codes:\n  0  ", "\n  1  ", "\n  2  bad configuration", "at least 1m0s apart", "RETRY_MIN_INTERVAL is at least 5s"} {
		if !strings.Contains(h, f) {
			t.Errorf("help does not mention %q", f)
		}
	}
	// By mode, in this order, each kind with what it requires.
	last := -1
	for _, title := range []string{"\nECR (every mode)\n  Requires: ", "\nDaemon (every mode)\n", "\nRate and concurrency (every mode)\n", "\nRancher 1.x: ", "\nRancher 2.x: ", "\nKubernetes namespaces"} {
		i := strings.Index(h, title)
		if i < last {
			t.Errorf("section %q missing or out of order", strings.TrimSpace(title))
		}
		last = i
	}
	for _, sec := range Sections(Kinds())[len(shared()):] {
		if sec.Requires == "" || !strings.Contains(h, "  Requires: "+sec.Requires+"\n") {
			t.Errorf("section %q does not say what it requires", sec.Title)
		}
	}
	// One default per setting: no "(default: …)" inside a usage that then says "default none".
	for _, line := range strings.Split(h, "\n") {
		if strings.Count(line, "default") > 1 || strings.Contains(line, "(default:") {
			t.Errorf("help line with two defaults: %s", line)
		}
	}
}

// Both spellings of version print the same block; the daemon's registry carries the gauge.
func TestVersion(t *testing.T) {
	t.Parallel()
	flag, sub := help(t, "--version"), help(t, "version")
	if flag != sub || !strings.HasPrefix(sub, "rancher-ecr-credentials ") || !strings.Contains(sub, "  go:      go1.") {
		t.Errorf("--version:\n%s\nversion:\n%s", flag, sub)
	}
	var o bytes.Buffer
	if err := Run(t.Context(), buildinfo.Stamp{Version: "v1.2.3", Commit: "abc", Date: "2025-06-01T00:00:00Z"}, []string{"version"}, apptest.EnvOf(nil), &o, io.Discard); err != nil ||
		!strings.HasPrefix(o.String(), "rancher-ecr-credentials v1.2.3\n  commit:  abc\n  built:   2025-06-01T00:00:00Z\n") {
		t.Errorf("stamped version: %q, %v", o.String(), err)
	}
}

// TestREADME_ConfigTable keeps the README's configuration table true: every
// setting with its flag and default, and nothing the code does not know.
func TestREADME_ConfigTable(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
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
	for _, s := range Settings() {
		if s.FlagOnly {
			continue
		}
		known[s.Env] = true
		row, ok := rows[s.Env]
		if !ok {
			t.Errorf("README table lacks %s", s.Env)
			continue
		}
		if row[1] != "--"+settings.FlagName(s) {
			t.Errorf("README: %s flag = %q, want --%s", s.Env, row[1], settings.FlagName(s))
		}
		if row[2] != settings.DefaultHelp(s) {
			t.Errorf("README: %s default = %q, want %q", s.Env, row[2], settings.DefaultHelp(s))
		}
	}
	for env := range rows {
		if !known[env] && strings.ToUpper(env) == env {
			t.Errorf("README table documents %s, which the code does not read", env)
		}
	}
}
