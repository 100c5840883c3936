package app

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/apptest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/httpapi"
)

// The README's alert rules read series the daemon exports with its default
// settings (per-group series, issue 22): every metric the first three
// expressions name is on /metrics after one run, and the credential is fresh.
// The last two read tenant-role series, exported only with tenant roles
// (tenantrole's tests).
func TestREADME_AlertRules(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for line := range strings.SplitSeq(string(b), "\n") {
		if e, ok := strings.CutPrefix(strings.TrimSpace(line), "expr: "); ok {
			exprs = append(exprs, e)
		}
	}
	if len(exprs) != 5 {
		t.Fatalf("%d alert expressions in the README, want 5: %q", len(exprs), exprs)
	}
	exprs = exprs[:3]
	w := apptest.NewWorld(t)
	reg := w.Rancher.AddRegistry(apptest.Project, w.ECR.Host(apptest.Account), "")
	w.Rancher.AddCredential(apptest.Project, reg, "AWS", "old", "")
	d := newDaemon(t, w.Env, io.Discard)
	if err := d.r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, metrics := get(t, httpapi.Handler(d.r, nil, d.reg), "/metrics")
	name := regexp.MustCompile(`rancher_ecr_credentials_[a-z_]+`)
	for _, e := range exprs {
		for _, m := range name.FindAllString(e, -1) {
			if !strings.Contains(metrics, "\n"+m+"{") {
				t.Errorf("alert %q reads %s, which /metrics does not export", e, m)
			}
		}
	}
	if regexp.MustCompile(`\nrancher_ecr_credentials_credential_fresh\{[^}]*\} 0\n`).MatchString(metrics) {
		t.Error("credential_fresh is 0 right after a good run: ECRCredentialExpired would fire")
	}
}
