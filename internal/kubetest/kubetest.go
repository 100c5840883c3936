// Package kubetest runs a real kube-apiserver backed by a real etcd on loopback ports for tests, with
// real authentication and RBAC, through controller-runtime's envtest
// (https://pkg.go.dev/sigs.k8s.io/controller-runtime/pkg/envtest), which starts and stops the pair,
// provisions client-certificate users (AddUser) and takes the server's flags (Configure). On top of it
// this package adds what the project's tests need:
//
//   - AdminConfig: a client certificate for AdminUser, in group system:masters;
//   - UserConfig: a client certificate for any user and groups (RBAC applies to it as to anyone);
//   - ServiceAccountConfig: a token minted through the TokenRequest API for a ServiceAccount;
//   - AuditEvents / Requests: the server's audit log, to count requests per user;
//   - --watch-cache=false: Debian's etcd 3.4 is too old for kube-apiserver 1.34's watch cache;
//   - the binaries killed with the test binary (envtest starts them in their own process group and
//     never signals them when the test binary dies: a timed-out test would leave them running);
//   - Shared: one server per test binary, fresh again on a repeated run (go test -count=N).
//
// The binaries come from the folder named by KUBEBUILDER_ASSETS (kube-apiserver and etcd), which
// scripts/kube-testenv.sh builds and prints; envtest's downloader is never used (it cannot reach
// anything here). When they are missing, Start skips the test naming that script, unless REQUIRE_KUBE=1
// makes that a failure (CI). See docs/testing-kubernetes.md.
package kubetest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testskip"
)

const (
	// EnvAssets names the folder holding the kube-apiserver and etcd binaries (envtest's variable).
	EnvAssets = "KUBEBUILDER_ASSETS"
	// Script builds the binaries and prints the folder to put in KUBEBUILDER_ASSETS.
	Script = "scripts/kube-testenv.sh"

	// StartTimeout bounds a start: etcd and kube-apiserver up and /readyz answering 200 (19 s measured
	// on two cores at load 30).
	StartTimeout = 90 * time.Second
	// ServiceAccountIssuer is the issuer of the server's ServiceAccount tokens.
	ServiceAccountIssuer = "https://kubernetes.default.svc"
	// AdminUser is the user of AdminConfig, in group system:masters.
	AdminUser = "kubetest-admin"

	stopTimeout = 15 * time.Second
)

// ErrNoBinaries is returned (wrapped) by Assets and New when KUBEBUILDER_ASSETS does not name a folder
// holding kube-apiserver and etcd.
var ErrNoBinaries = errors.New("kube-apiserver and etcd not found")

// Server is a running kube-apiserver and its etcd.
type Server struct {
	users     sync.Mutex // envtest's AddUser is not safe for concurrent use (its CA's serial counter)
	env       *envtest.Environment
	admin     *rest.Config
	auditFile string

	// URL is the apiserver's base URL, https://127.0.0.1:<port>.
	URL string
	// Dir holds the server's files: certificates, audit file, logs, etcd data.
	Dir string
}

// Assets returns the folder named by KUBEBUILDER_ASSETS after checking it holds both binaries.
func Assets() (string, error) {
	dir := os.Getenv(EnvAssets)
	if dir == "" {
		return "", fmt.Errorf("%w: %s is not set; run %s and set %s to the folder it prints last",
			ErrNoBinaries, EnvAssets, Script, EnvAssets)
	}
	for _, name := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return "", fmt.Errorf("%w: %s=%s has no %s; run %s", ErrNoBinaries, EnvAssets, dir, name, Script)
		}
	}
	return dir, nil
}

// SkipIfMissing skips t when the binaries are missing, or fails it when REQUIRE_KUBE=1. The skip is
// counted: the package's TestMain (Shared.Run, or testskip.Main) tells the terminal how many skipped.
func SkipIfMissing(t testing.TB) {
	t.Helper()
	if _, err := Assets(); err != nil {
		testskip.Skip(t, testskip.Kube, err.Error())
	}
}

// Start starts a server for t in t.TempDir() and stops it when t ends. It skips t (or fails it under
// REQUIRE_KUBE=1) when the binaries are missing.
func Start(t testing.TB) *Server {
	t.Helper()
	SkipIfMissing(t)
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	began := time.Now()
	s, err := New(ctx, t.TempDir())
	if err != nil {
		t.Fatalf("start kube-apiserver: %v", err)
	}
	t.Logf("kube-apiserver %s ready in %s", s.URL, time.Since(began).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop kube-apiserver: %v", err)
		}
	})
	return s
}

// quietEnvtest gives controller-runtime's logger a sink once: without one, envtest's first log line
// after 30 s of the test binary's life prints a stack trace to stderr. What envtest would log (a
// failed start attempt) is in the error New returns, with the tail of the server's log.
var quietEnvtest = sync.OnceFunc(func() { ctrllog.SetLogger(logr.Discard()) })

// New starts etcd and kube-apiserver with their files in dir and returns once /readyz answers 200 or
// ctx ends. The caller calls Stop (and removes dir).
func New(ctx context.Context, dir string) (*Server, error) {
	assets, err := Assets()
	if err != nil {
		return nil, err
	}
	quietEnvtest()
	s := &Server{Dir: dir, auditFile: filepath.Join(dir, "audit.log")}
	for _, sub := range []string{"certs", "etcd", "bin"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, err
		}
	}
	policy := filepath.Join(dir, "audit-policy.yaml")
	// Metadata of every request, written once the response is complete (and when a watch starts).
	if err := os.WriteFile(policy, []byte("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n"), 0o600); err != nil {
		return nil, err
	}
	apiLog, err := os.Create(filepath.Join(dir, "kube-apiserver.log"))
	if err != nil {
		return nil, err
	}
	defer apiLog.Close() // the child process holds its own descriptor
	etcdLog, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		return nil, err
	}
	defer etcdLog.Close()
	apiPath, err := dieWithParent(dir, assets, "kube-apiserver")
	if err != nil {
		return nil, err
	}
	etcdPath, err := dieWithParent(dir, assets, "etcd")
	if err != nil {
		return nil, err
	}

	api := &envtest.APIServer{Path: apiPath, CertDir: filepath.Join(dir, "certs"), Out: apiLog, Err: apiLog}
	api.Configure().
		// Debian's etcd 3.4 is too old for the watch cache of kube-apiserver 1.34: a plain watch on a
		// quiet resource would fail with "Too large resource version".
		Set("watch-cache", "false").
		Set("service-account-issuer", ServiceAccountIssuer).
		Set("audit-policy-file", policy).
		Set("audit-log-path", s.auditFile).
		Set("audit-log-mode", "blocking")
	etcd := &envtest.Etcd{Path: etcdPath, DataDir: filepath.Join(dir, "etcd"), Out: etcdLog, Err: etcdLog}
	etcd.Configure().Set("logger", "zap").Set("log-level", "warn")
	timeout := StartTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	s.env = &envtest.Environment{
		ControlPlane:             envtest.ControlPlane{APIServer: api, Etcd: etcd},
		BinaryAssetsDirectory:    assets,
		ControlPlaneStartTimeout: timeout,
		ControlPlaneStopTimeout:  stopTimeout,
	}
	if _, err := s.env.Start(); err != nil {
		err = fmt.Errorf("%w\n%s", err, tail(apiLog.Name()))
		return nil, errors.Join(err, s.env.Stop())
	}
	user, err := s.env.AddUser(envtest.User{Name: AdminUser, Groups: []string{"system:masters"}}, &rest.Config{QPS: 1000, Burst: 2000})
	if err != nil {
		_ = s.env.Stop()
		return nil, err
	}
	s.admin = user.Config()
	s.URL = strings.TrimSuffix(s.admin.Host, "/")
	if err := s.waitReady(ctx); err != nil {
		err = fmt.Errorf("%w\n%s", err, tail(apiLog.Name()))
		return nil, errors.Join(err, s.env.Stop())
	}
	return s, nil
}

// dieWithParent returns the path to start name from: a wrapper that makes the kernel kill it when the
// test binary dies (setpriv --pdeathsig, util-linux; it execs, so envtest's signals still reach the
// server itself), or the binary itself where setpriv is missing.
func dieWithParent(dir, assets, name string) (string, error) {
	bin := filepath.Join(assets, name)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		return bin, nil
	}
	wrapper := filepath.Join(dir, "bin", name)
	script := fmt.Sprintf("#!/bin/sh\nexec %q --pdeathsig KILL -- %q \"$@\"\n", setpriv, bin)
	return wrapper, os.WriteFile(wrapper, []byte(script), 0o700)
}

// waitReady polls /readyz until it answers 200 or ctx ends: envtest waits for /healthz and the
// default namespace, and RBAC's bootstrap roles may still be on their way then.
func (s *Server) waitReady(ctx context.Context) error {
	client, err := rest.HTTPClientFor(s.admin)
	if err != nil {
		return err
	}
	defer client.CloseIdleConnections()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := "no answer yet"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/readyz", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver not ready at %s/readyz: %w (last answer: %s)", s.URL, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// Stop stops kube-apiserver, then etcd, each with SIGTERM and, after 15 s, SIGKILL.
func (s *Server) Stop() error {
	return s.env.Stop()
}

// AdminConfig returns a config for a member of system:masters (RBAC does not apply to it), with a
// client-side rate limit high enough for tests that create many objects.
func (s *Server) AdminConfig() *rest.Config {
	return rest.CopyConfig(s.admin)
}

// UserConfig returns a config authenticating as user name in the given groups, with a client
// certificate signed by the server's client CA. Nothing is granted to it until a test binds a role.
// The config keeps client-go's default rate limit.
func (s *Server) UserConfig(name string, groups ...string) *rest.Config {
	s.users.Lock()
	defer s.users.Unlock()
	user, err := s.env.AddUser(envtest.User{Name: name, Groups: groups}, &rest.Config{})
	if err != nil {
		panic(fmt.Sprintf("kubetest: issue a client certificate: %v", err)) // only crypto/rand could fail here
	}
	return user.Config()
}

// ServiceAccountConfig returns a config with a one-hour token of the existing ServiceAccount
// namespace/name, minted through the TokenRequest API (what the kubelet mounts into a Pod). The user
// is system:serviceaccount:<namespace>:<name>. The config keeps client-go's default rate limit.
func (s *Server) ServiceAccountConfig(ctx context.Context, namespace, name string) (*rest.Config, error) {
	client, err := kubernetes.NewForConfig(s.AdminConfig())
	if err != nil {
		return nil, err
	}
	expiry := int64(3600)
	tr, err := client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("token for serviceaccount %s/%s: %w", namespace, name, err)
	}
	return &rest.Config{Host: s.URL, TLSClientConfig: rest.TLSClientConfig{CAData: s.CAData()}, BearerToken: tr.Status.Token}, nil
}

// CAData returns the PEM certificate of the CA that signed the server's serving certificate.
func (s *Server) CAData() []byte { return s.admin.CAData }

// Kubeconfig returns a kubeconfig file's content for cfg (server, CA, and its bearer token or client
// certificate), with namespace as the context's namespace when not empty: for running a process with
// KUBECONFIG.
func Kubeconfig(cfg *rest.Config, namespace string) ([]byte, error) {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["kubetest"] = &clientcmdapi.AuthInfo{
		Token:                 cfg.BearerToken,
		ClientCertificateData: cfg.CertData,
		ClientKeyData:         cfg.KeyData,
	}
	kc.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: "kubetest", Namespace: namespace}
	kc.CurrentContext = "kubetest"
	return clientcmd.Write(*kc)
}

// WriteKubeconfig writes Kubeconfig(cfg, namespace) into a file in t.TempDir() and returns its path.
func WriteKubeconfig(t testing.TB, cfg *rest.Config, namespace string) string {
	t.Helper()
	data, err := Kubeconfig(cfg, namespace)
	if err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}
	return path
}

// tail returns the last lines of a log file, for start failures.
func tail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return fmt.Sprintf("last lines of %s:\n%s", path, strings.Join(lines, "\n"))
}

// Clientset is a full client for cfg (AdminConfig, UserConfig, …), failing the
// test when it cannot be built.
func Clientset(t testing.TB, cfg *rest.Config) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// InstallCRDs installs the CustomResourceDefinitions in the YAML files at paths and waits until the
// server serves them (envtest's InstallCRDs): custom resources of other projects, such as Rancher's
// ClusterRepos, as those projects install them.
func (s *Server) InstallCRDs(paths ...string) error {
	_, err := envtest.InstallCRDs(s.AdminConfig(), envtest.CRDInstallOptions{Paths: paths, ErrorIfPathMissing: true, MaxTime: StartTimeout})
	return err
}
