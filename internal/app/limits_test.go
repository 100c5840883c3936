package app

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/apptest"
)

// Rate and concurrency settings: each bad value is named with the fix.
func TestCheck_LimitsInvalid(t *testing.T) {
	t.Parallel()
	apptest.Problems(t, []apptest.Problem{
		{Name: "ConcurrencyZero", Env: with(minimal(), "WRITE_CONCURRENCY", "0"), Want: []string{`WRITE_CONCURRENCY: "0" is not a number of scopes from 1 to 256`}},
		{Name: "ConcurrencyHuge", Env: with(minimal(), "WRITE_CONCURRENCY", "1000"), Want: []string{`WRITE_CONCURRENCY: "1000" is not a number of scopes from 1 to 256`}},
		{Name: "ConcurrencyText", Args: []string{"--write-concurrency", "many"}, Env: minimal(), Want: []string{`--write-concurrency (WRITE_CONCURRENCY): "many" is not a number of scopes`}},
		{Name: "QPSZero", Env: with(minimal(), "KUBE_API_QPS", "0"), Want: []string{`KUBE_API_QPS: "0" is not a rate of 1 to 10000 requests per second`}},
		{Name: "QPSNegative", Env: with(minimal(), "KUBE_API_QPS", "-5"), Want: []string{`KUBE_API_QPS: "-5" is not a rate of 1 to 10000`}},
		{Name: "QPSHuge", Env: with(minimal(), "KUBE_API_QPS", "1e6"), Want: []string{`KUBE_API_QPS: "1e6" is not a rate of 1 to 10000`}},
		{Name: "QPSNaN", Env: with(minimal(), "KUBE_API_QPS", "NaN"), Want: []string{`KUBE_API_QPS: "NaN" is not a rate of 1 to 10000`}},
		{Name: "QPSInf", Env: with(minimal(), "KUBE_API_QPS", "+Inf"), Want: []string{`KUBE_API_QPS: "+Inf" is not a rate of 1 to 10000`}},
		{Name: "QPSTiny", Env: with(minimal(), "KUBE_API_QPS", "1e-30"), Want: []string{`KUBE_API_QPS: "1e-30" is not a rate of 1 to 10000`}},
		{Name: "BurstZero", Env: with(minimal(), "KUBE_API_BURST", "0"), Want: []string{`KUBE_API_BURST: "0" is not a whole number of requests of 1 or more`}},
		{Name: "BurstBelowQPS", Env: with(with(minimal(), "KUBE_API_QPS", "100"), "KUBE_API_BURST", "50"),
			Want: []string{"KUBE_API_BURST: 50 is below KUBE_API_QPS 100: set it to at least that (or leave it unset for twice KUBE_API_QPS)"}},
		{Name: "Both", Env: with(with(minimal(), "WRITE_CONCURRENCY", "-1"), "KUBE_API_QPS", "fast"),
			Want: []string{`WRITE_CONCURRENCY: "-1"`, `KUBE_API_QPS: "fast"`}},
	}, wantProblems)
}

// The settings reach what they limit: the refresher's workers and the
// Kubernetes client's rate; an unset burst is twice the rate. (Not parallel:
// the client's configuration is read from KUBECONFIG.)
func TestConfigure_Limits(t *testing.T) {
	t.Setenv("KUBECONFIG", kubeconfigFile(t))
	for _, tc := range []struct {
		name    string
		env     map[string]string
		workers int
		qps     float32
		burst   int
	}{
		{"Defaults", minimal(), 32, 2000, 4000},
		{"Set", with(with(with(minimal(), "WRITE_CONCURRENCY", "3"), "KUBE_API_QPS", "7.5"), "KUBE_API_BURST", "9"), 3, 7.5, 9},
		{"BurstFromQPS", with(minimal(), "KUBE_API_QPS", "50"), 32, 50, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDaemon(t, tc.env, io.Discard)
			if d.r.Workers != tc.workers {
				t.Errorf("refresher workers = %d, want %d", d.r.Workers, tc.workers)
			}
			c := &cluster{limits: d.cfg.Limits}
			cfg, _, err := c.config()
			if err != nil {
				t.Fatal(err)
			}
			if cfg.QPS != tc.qps || cfg.Burst != tc.burst {
				t.Errorf("kubernetes client rate %v burst %d, want %v and %d", cfg.QPS, cfg.Burst, tc.qps, tc.burst)
			}
		})
	}
}

// kubeconfigFile writes a kubeconfig naming a server nothing is asked of.
func kubeconfigFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	const kc = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\ncontexts:\n- name: c\n  context:\n    cluster: c\n    namespace: default\ncurrent-context: c\n"
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
