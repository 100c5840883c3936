package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/ecrsource/ecrtest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/apptest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/registrytest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testbin"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testskip"
)

// The proof that what the daemon writes opens a real registry, and what it
// wrote before no longer does. The built binary, as deployed with the
// namespaces target (and AWS_ECR_PUBLIC=true), runs --once against a real
// kube-apiserver and the ECR stand-in. Two real OCI registries (CNCF
// distribution, TLS on 127.0.0.1) stand for the ECR host and public.ecr.aws;
// each accepts for user AWS only the password the stand-in handed out last,
// which is how an ECR token that has expired behaves (internal/registrytest).
// The Secret's .dockerconfigjson is then used as consumers use it: read by
// oras-go, the registry library helm is built on, and by the real helm
// binary (helm pull --registry-config, helm registry login with the entry's
// username and password), reaching the registries under their own host names
// through a CONNECT proxy (HTTPS_PROXY), trusting the test CA (--ca-file).
func TestBinary_RegistryAcceptsWrittenCredentials(t *testing.T) {
	srv := kubetest.Start(t)
	admin := kubetest.Clientset(t, srv.AdminConfig())
	const ns = "registry-proof"
	if _, err := admin.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	fake := ecrtest.New(apptest.Account, "us-east-1")
	ecrSrv := httptest.NewServer(fake)
	t.Cleanup(ecrSrv.Close)
	ecrHost := fake.Host(apptest.Account)
	regs := registrytest.Start(t, ecrHost, ecrtest.PublicHost)
	privRef, pubRef := ecrHost+"/charts/app:1.0.0", ecrtest.PublicHost+"/team/tool:2.0.0"
	charts := map[string][]byte{}
	for _, ref := range []string{privRef, pubRef} {
		archive, err := regs.PushChart(t.Context(), ref)
		if err != nil {
			t.Fatal(err)
		}
		charts[ref] = archive
	}

	bin, dir := testbin.Binary(t), t.TempDir()
	kubeconfig := kubetest.WriteKubeconfig(t, srv.AdminConfig(), "")
	var logs strings.Builder
	// refresh runs the daemon once, tells each registry the password the
	// stand-in now hands out (earlier ones expire), and returns the
	// .dockerconfigjson the daemon wrote.
	refresh := func() []byte {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), bin, "--once")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "KUBECONFIG=" + kubeconfig,
			"KUBE_NAMESPACES=" + ns, "AWS_REGION=us-east-1", "AWS_ECR_PUBLIC=true", "LOG_LEVEL=debug",
			"AWS_ENDPOINT_URL_ECR=" + ecrSrv.URL, "AWS_ENDPOINT_URL_ECR_PUBLIC=" + ecrSrv.URL,
			"AWS_ACCESS_KEY_ID=AKIDE2E", "AWS_SECRET_ACCESS_KEY=" + apptest.AWSSecret, "AWS_EC2_METADATA_DISABLED=true",
			"AWS_CONFIG_FILE=" + filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "none")}
		out, err := cmd.CombinedOutput()
		logs.Write(out)
		if err != nil {
			t.Fatalf("--once: %v\n%s", err, out)
		}
		for host, pw := range map[string]string{ecrHost: fake.Password(apptest.Account), ecrtest.PublicHost: fake.PublicPassword()} {
			if err := regs.Registry(host).Accept("AWS", pw); err != nil {
				t.Fatal(err)
			}
		}
		s, err := admin.CoreV1().Secrets(ns).Get(t.Context(), "ecr-credentials", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return s.Data[corev1.DockerConfigJsonKey]
	}
	h := newHelm(t, regs)

	first := refresh()
	for ref, chart := range charts {
		if got, err := regs.PullWithDockerConfig(t.Context(), ref, first); err != nil || !bytes.Equal(got, chart) {
			t.Errorf("oras-go pull of %s with the Secret: %v (the chart pushed: %v)", ref, err, bytes.Equal(got, chart))
		}
	}
	h.pull(t, pubRef, first, charts[pubRef], "")

	second := refresh()
	if bytes.Equal(first, second) {
		t.Fatal("the second run wrote the same credentials: no refresh to prove")
	}
	for ref, chart := range charts {
		if got, err := regs.PullWithDockerConfig(t.Context(), ref, second); err != nil || !bytes.Equal(got, chart) {
			t.Errorf("oras-go pull of %s with the refreshed Secret: %v", ref, err)
		}
		if _, err := regs.PullWithDockerConfig(t.Context(), ref, first); !registrytest.IsUnauthorized(err) {
			t.Errorf("oras-go pull of %s with the Secret as first written: %v, want 401: the earlier token has expired", ref, err)
		}
	}
	// helm registry login with the entry's username and password, then a pull.
	user, password := entry(t, second, ecrHost)
	h.login(t, ecrHost, user, password)
	h.pull(t, privRef, nil, charts[privRef], "")
	h.pull(t, pubRef, second, charts[pubRef], "")
	h.pull(t, pubRef, first, nil, "401")
	apptest.NoSecrets(t, logs.String(), fake.Password(apptest.Account), fake.PublicPassword(), password)
}

// entry is one host's username and password in a Docker config.
func entry(t *testing.T, dockerConfig []byte, host string) (string, string) {
	t.Helper()
	var cfg struct {
		Auths map[string]struct{ Username, Password string } `json:"auths"`
	}
	if err := json.Unmarshal(dockerConfig, &cfg); err != nil || cfg.Auths[host].Password == "" {
		t.Fatalf("no entry for %s in the Secret (%v)", host, err)
	}
	return cfg.Auths[host].Username, cfg.Auths[host].Password
}

// helm runs the real helm binary (the kube-testenv folder's) with a home of
// its own, reaching the registries through the harness's proxy.
type helm struct {
	bin, dir, loginConfig string
	env                   []string
	ca                    string
}

func newHelm(t *testing.T, regs *registrytest.Net) *helm {
	t.Helper()
	assets, err := kubetest.Assets()
	bin := filepath.Join(assets, "helm")
	if _, serr := os.Stat(bin); err != nil || serr != nil {
		if err == nil {
			err = serr
		}
		testskip.Skip(t, testskip.Kube, fmt.Sprintf("no helm binary in the kube-testenv folder (%v): run %s and set %s to prove the credentials with the real helm binary",
			err, kubetest.Script, kubetest.EnvAssets))
	}
	dir := t.TempDir()
	return &helm{bin: bin, dir: dir, loginConfig: filepath.Join(dir, "login.json"), ca: regs.CAFile,
		env: []string{"HOME=" + dir, "HELM_CACHE_HOME=" + filepath.Join(dir, "cache"), "HELM_CONFIG_HOME=" + filepath.Join(dir, "config"),
			"HELM_DATA_HOME=" + filepath.Join(dir, "data"), "HTTPS_PROXY=" + regs.ProxyURL, "NO_PROXY="}}
}

func (h *helm) run(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), h.bin, args...)
	cmd.Env, cmd.Stdin = h.env, strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// login is helm registry login with a username and password, kept in the
// login registry config.
func (h *helm) login(t *testing.T, host, user, password string) {
	t.Helper()
	if out, err := h.run(t, password, "registry", "login", host, "--username", user, "--password-stdin", "--ca-file", h.ca, "--registry-config", h.loginConfig); err != nil {
		t.Fatalf("helm registry login %s: %v\n%s", host, err, out)
	}
}

// pull is helm pull oci://ref with dockerConfig as its registry config (nil:
// the one helm registry login wrote); it wants the chart pushed, or a
// failure saying refusal.
func (h *helm) pull(t *testing.T, ref string, dockerConfig, want []byte, refusal string) {
	t.Helper()
	cfg := h.loginConfig
	if dockerConfig != nil {
		cfg = filepath.Join(t.TempDir(), "config.json")
		if err := os.WriteFile(cfg, dockerConfig, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	name, version, _ := strings.Cut(ref, ":")
	dest := t.TempDir()
	out, err := h.run(t, "", "pull", "oci://"+name, "--version", version, "--registry-config", cfg, "--ca-file", h.ca, "--destination", dest)
	if refusal != "" {
		if err == nil || !strings.Contains(out, refusal) {
			t.Errorf("helm pull %s: %v, want a failure saying %q\n%s", ref, err, refusal, out)
		}
		return
	}
	if err != nil {
		t.Fatalf("helm pull %s: %v\n%s", ref, err, out)
	}
	got, err := os.ReadFile(filepath.Join(dest, name[strings.LastIndex(name, "/")+1:]+"-"+version+".tgz"))
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("helm pull %s: the archive is not the chart pushed (%v)\n%s", ref, err, out)
	}
}
