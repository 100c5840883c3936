package kubeapi

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

const kubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: u
  user: {token: "kubeconfig-token-secret"}
contexts:
- name: x
  context: {cluster: c, user: u, namespace: ops}
current-context: x
`

func notInCluster() (*rest.Config, error) { return nil, rest.ErrNotInCluster }

// rules loads only the files given (none: no kubeconfig at all).
func rules(files ...string) *clientcmd.ClientConfigLoadingRules {
	return &clientcmd.ClientConfigLoadingRules{Precedence: files}
}

func TestConfig_Loading(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	kc := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kc, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "namespace"), []byte("team-a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := Options{UserAgent: "test/1", QPS: 50, Burst: 100}

	t.Run("InCluster", func(t *testing.T) {
		t.Parallel()
		cfg, ns, err := load(o, func() (*rest.Config, error) { return &rest.Config{Host: "https://10.0.0.1"}, nil }, rules(kc), dir)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Host != "https://10.0.0.1" || ns != "team-a" || cfg.QPS != 50 || cfg.Burst != 100 || cfg.UserAgent != "test/1" || cfg.WrapTransport == nil {
			t.Errorf("host %s namespace %q QPS %v burst %d agent %q", cfg.Host, ns, cfg.QPS, cfg.Burst, cfg.UserAgent)
		}
	})
	t.Run("InClusterWithoutToken", func(t *testing.T) {
		t.Parallel()
		_, _, err := load(o, func() (*rest.Config, error) { return nil, errors.New("open token: no such file") }, rules(kc), dir)
		if err == nil || !strings.Contains(err.Error(), "automountServiceAccountToken") {
			t.Errorf("err = %v, want the ServiceAccount mount named", err)
		}
	})
	t.Run("Kubeconfig", func(t *testing.T) {
		t.Parallel()
		cfg, ns, err := load(o, notInCluster, rules(kc), dir)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Host != "https://127.0.0.1:6443" || ns != "ops" || cfg.QPS != 50 {
			t.Errorf("host %s namespace %q QPS %v", cfg.Host, ns, cfg.QPS)
		}
	})
	t.Run("Nothing", func(t *testing.T) {
		t.Parallel()
		_, _, err := load(o, notInCluster, rules(filepath.Join(dir, "missing")), dir)
		if err == nil || !strings.Contains(err.Error(), "set KUBECONFIG") {
			t.Errorf("err = %v, want what to set", err)
		}
	})
	t.Run("BadKubeconfig", func(t *testing.T) {
		t.Parallel()
		bad := filepath.Join(t.TempDir(), "kubeconfig")
		if err := os.WriteFile(bad, []byte("current-context: nowhere\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := load(o, notInCluster, rules(bad), dir)
		if err == nil || !strings.Contains(err.Error(), "kubeconfig") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("BadOptions", func(t *testing.T) {
		t.Parallel()
		_, _, err := load(Options{QPS: -1}, notInCluster, rules(kc), dir)
		if err == nil || !strings.Contains(err.Error(), "QPS -1") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestOptions_Validate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{}, ""},
		{Options{QPS: 20, Burst: 40}, ""},
		{Options{QPS: -1}, "QPS -1: must be positive"},
		{Options{Burst: -2}, "burst -2: must be positive"},
		{Options{QPS: 50, Burst: 10}, "burst 10 is below QPS 50"},
	} {
		err := tc.o.Validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v.Validate() = %v, want %q", tc.o, err, tc.want)
		}
	}
}

func TestSafeText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{`secrets "a" is forbidden`, `secrets "a" is forbidden`},
		{"line\nbreak\x00", "line break"},
		{"token eyJhbGciOiJSUzI1NiIsImtpZCI6IjEyMyJ9abcdef here", "token [redacted] here"},
		{strings.Repeat("a-", 300), strings.Repeat("a-", 200) + "…"},
	} {
		if got := safeText(tc.in); got != tc.want {
			t.Errorf("safeText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
