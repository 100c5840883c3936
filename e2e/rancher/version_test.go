package rancher

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/rancherreal"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testskip"
)

// atLeast212 reports whether version (v2.12.3) is Rancher 2.12 or later.
func atLeast212(version string) bool {
	var major, minor int
	if _, err := fmt.Sscanf(strings.TrimPrefix(version, "v"), "%d.%d", &major, &minor); err != nil {
		return true // a development build is newer than every release
	}
	return major > 2 || (major == 2 && minor >= 12)
}

// rancher212 is what a test of Rancher 2.12+ project-scoped Secrets needs. A run of the suite
// against an older binary proves the /v3 path only: its skips are counted and reported, and
// REQUIRE_RANCHER_212=1 makes them failures.
var rancher212 = testskip.Server{Name: "Rancher 2.12 or later", Require: "REQUIRE_RANCHER_212",
	Provide: "build Rancher " + rancherreal.DefaultVersion + " as docs/testing-rancher.md says"}

// need212 skips a test of what only Rancher 2.12+ does, when the server is older.
func need212(t *testing.T, srv *rancherreal.Server) {
	t.Helper()
	if !atLeast212(srv.Version) {
		testskip.Skip(t, rancher212, fmt.Sprintf("Rancher %s: this test is about Rancher 2.12+ project-scoped Secrets", srv.Version))
	}
}

// setup212 is setup for a test of what only Rancher 2.12+ does (need212).
func setup212(t *testing.T) *env {
	t.Helper()
	e := setup(t)
	need212(t, e.srv)
	return e
}

// The version decides the way: on 2.12+ the real server answers /v3/settings/server-version only
// with authentication (401 without), the daemon reads it with its key and writes Secrets through
// Kubernetes; before 2.12 it keeps /v3.
func TestRancher_VersionDetection(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var setting struct {
		Value string `json:"value"`
	}
	err := e.srv.V3(ctx, "", http.MethodGet, "/v3/settings/server-version", nil, &setting)
	if atLeast212(e.srv.Version) && rancherreal.StatusOf(err) != http.StatusUnauthorized {
		t.Errorf("GET /v3/settings/server-version without a token: %v, want 401 (Rancher 2.12 needs authentication)", err)
	}
	if err := e.srv.V3(ctx, e.srv.AdminToken, http.MethodGet, "/v3/settings/server-version", nil, &setting); err != nil || setting.Value != e.srv.Version {
		t.Fatalf("server-version with the admin key: %q, %v; want %s", setting.Value, err, e.srv.Version)
	}

	p := e.srv.NewProject(t, "version-"+rancherreal.Suffix())
	out := e.mustRun(e.projectEnv(p, e.srv.AdminToken)...)
	noWarnings(t, out)
	want := "rancher_secret_api=v3"
	if atLeast212(e.srv.Version) {
		want = "rancher_secret_api=kubernetes"
	}
	if lines := outLines(out, want, "server_version="+e.srv.Version); len(lines) != 1 {
		t.Errorf("want one line saying %s server_version=%s, got %d:\n%s", want, e.srv.Version, len(lines), out)
	}
}
