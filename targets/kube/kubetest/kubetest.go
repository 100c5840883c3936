// Package kubetest runs a real kube-apiserver backed by a real etcd on loopback ports for tests, the
// way sigs.k8s.io/controller-runtime/pkg/envtest does, with real authentication and RBAC:
//
//   - AdminConfig: a bearer token from the server's token file, in group system:masters;
//   - UserConfig: a client certificate for any user and groups (RBAC applies to it as to anyone);
//   - ServiceAccountConfig: a token minted through the TokenRequest API for a ServiceAccount;
//   - AuditEvents / Requests: the server's audit log, to count requests per user.
//
// The binaries come from the folder named by KUBEBUILDER_ASSETS (kube-apiserver and etcd), which
// scripts/kube-testenv.sh builds and prints. When they are missing, Start skips the test naming that
// script, unless REQUIRE_KUBE=1 makes that a failure (CI).
//
// A start takes a few seconds. Start gives each test its own server (full isolation, stopped by t.Cleanup);
// Shared starts one per test binary on first use, for packages whose tests isolate themselves by
// namespace and user name. See docs/testing-kubernetes.md.
package kubetest

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const (
	// EnvAssets names the folder holding the kube-apiserver and etcd binaries (envtest's variable).
	EnvAssets = "KUBEBUILDER_ASSETS"
	// EnvRequire set to 1 turns a skip for missing binaries into a failure.
	EnvRequire = "REQUIRE_KUBE"
	// Script builds the binaries and prints the folder to put in KUBEBUILDER_ASSETS.
	Script = "scripts/kube-testenv.sh"

	// StartTimeout bounds a start: etcd and kube-apiserver up and /readyz answering 200.
	StartTimeout = 90 * time.Second
	// ServiceAccountIssuer is the issuer of the server's ServiceAccount tokens.
	ServiceAccountIssuer = "https://kubernetes.default.svc"
	// AdminUser is the user of AdminConfig, in group system:masters.
	AdminUser = "kubetest-admin"

	stopTimeout = 15 * time.Second
	attempts    = 3 // a free port picked can be taken before the server binds it
)

// ErrNoBinaries is returned (wrapped) by Assets and New when KUBEBUILDER_ASSETS does not name a folder
// holding kube-apiserver and etcd.
var ErrNoBinaries = errors.New("kube-apiserver and etcd not found")

// Server is a running kube-apiserver and its etcd.
type Server struct {
	// URL is the apiserver's base URL, https://127.0.0.1:<port>.
	URL string
	// Dir holds the server's files: keys, token and audit files, logs, etcd data.
	Dir string

	ca         *authority
	adminToken string
	auditFile  string
	etcd       *process
	apiserver  *process
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

// SkipIfMissing skips t when the binaries are missing, or fails it when REQUIRE_KUBE=1.
func SkipIfMissing(t testing.TB) {
	t.Helper()
	if _, err := Assets(); err != nil {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("%v (%s=1 makes this a failure)", err, EnvRequire)
		}
		t.Skipf("%v", err)
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

// New starts etcd and kube-apiserver with their files in dir and returns once /readyz answers 200 or
// ctx ends. The caller calls Stop (and removes dir).
func New(ctx context.Context, dir string) (*Server, error) {
	assets, err := Assets()
	if err != nil {
		return nil, err
	}
	var errs []error
	for i := range attempts {
		attemptDir := filepath.Join(dir, "attempt-"+strconv.Itoa(i))
		s, err := start(ctx, assets, attemptDir)
		if err == nil {
			return s, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

func start(ctx context.Context, assets, dir string) (_ *Server, err error) {
	if err := os.MkdirAll(filepath.Join(dir, "etcd"), 0o700); err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, auditFile: filepath.Join(dir, "audit.log"), adminToken: randomToken()}
	defer func() {
		if err != nil {
			_ = s.Stop()
		}
	}()
	if s.ca, err = newAuthority(); err != nil {
		return nil, err
	}
	files, err := s.writeFiles()
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	s.URL = fmt.Sprintf("https://127.0.0.1:%d", ports[2])

	s.etcd, err = startProcess(filepath.Join(assets, "etcd"), filepath.Join(dir, "etcd.log"),
		"--name=kubetest",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL,
		"--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=kubetest="+peerURL,
		"--logger=zap", "--log-level=warn",
	)
	if err != nil {
		return nil, err
	}
	s.apiserver, err = startProcess(filepath.Join(assets, "kube-apiserver"), filepath.Join(dir, "kube-apiserver.log"),
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(ports[2]),
		"--cert-dir="+filepath.Join(dir, "certs"),
		"--tls-cert-file="+files.servingCert,
		"--tls-private-key-file="+files.servingKey,
		"--client-ca-file="+files.ca,
		"--token-auth-file="+files.tokens,
		"--authorization-mode=RBAC",
		"--service-account-issuer="+ServiceAccountIssuer,
		"--service-account-key-file="+files.saPub,
		"--service-account-signing-key-file="+files.saKey,
		"--service-cluster-ip-range=10.0.0.0/24",
		// Debian's etcd 3.4 is too old for the watch cache of kube-apiserver 1.34: a plain watch on
		// a quiet resource would fail with "Too large resource version".
		"--watch-cache=false",
		"--audit-policy-file="+files.auditPolicy,
		"--audit-log-path="+s.auditFile,
		"--audit-log-mode=blocking",
	)
	if err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

type serverFiles struct {
	ca, servingCert, servingKey, tokens, saKey, saPub, auditPolicy string
}

func (s *Server) writeFiles() (serverFiles, error) {
	f := serverFiles{
		ca:          filepath.Join(s.Dir, "ca.crt"),
		servingCert: filepath.Join(s.Dir, "serving.crt"),
		servingKey:  filepath.Join(s.Dir, "serving.key"),
		tokens:      filepath.Join(s.Dir, "tokens.csv"),
		auditPolicy: filepath.Join(s.Dir, "audit-policy.yaml"),
	}
	certPEM, keyPEM, err := s.ca.issue(pkix.Name{CommonName: "kube-apiserver"}, x509.ExtKeyUsageServerAuth,
		[]net.IP{net.ParseIP("127.0.0.1")}, []string{"localhost"})
	if err != nil {
		return f, err
	}
	// Token file format: token,user,uid,"group1,group2"
	// (https://kubernetes.io/docs/reference/access-authn-authz/authentication/#static-token-file).
	tokens := fmt.Sprintf("%s,%s,%s,\"system:masters\"\n", s.adminToken, AdminUser, AdminUser)
	// Metadata of every request, written once the response is complete (and when a watch starts).
	policy := "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n"
	for name, content := range map[string][]byte{
		f.ca: s.ca.certPEM, f.servingCert: certPEM, f.servingKey: keyPEM,
		f.tokens: []byte(tokens), f.auditPolicy: []byte(policy),
	} {
		if err := os.WriteFile(name, content, 0o600); err != nil {
			return f, err
		}
	}
	f.saKey, f.saPub, err = writeServiceAccountKeys(s.Dir)
	return f, err
}

// waitReady polls /readyz until it answers 200, a process exits, or ctx ends.
func (s *Server) waitReady(ctx context.Context) error {
	client, err := rest.HTTPClientFor(s.AdminConfig())
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
			var body bytes.Buffer
			_, _ = body.ReadFrom(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%s: %s", resp.Status, lastLines(body.String(), 5))
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver not ready at %s/readyz: %w (last answer: %s)\n%s",
				s.URL, ctx.Err(), last, s.apiserver.tail())
		case <-s.etcd.done:
			return fmt.Errorf("etcd exited: %v\n%s", s.etcd.err, s.etcd.tail())
		case <-s.apiserver.done:
			return fmt.Errorf("kube-apiserver exited: %v\n%s", s.apiserver.err, s.apiserver.tail())
		case <-tick.C:
		}
	}
}

// Stop stops kube-apiserver, then etcd, each with SIGTERM and, after 15 s, SIGKILL.
func (s *Server) Stop() error {
	return errors.Join(s.apiserver.stop(), s.etcd.stop())
}

// AdminConfig returns a config for a member of system:masters (RBAC does not apply to it), with a
// client-side rate limit high enough for tests that create many objects.
func (s *Server) AdminConfig() *rest.Config {
	cfg := s.baseConfig()
	cfg.BearerToken = s.adminToken
	cfg.QPS, cfg.Burst = 1000, 2000
	return cfg
}

// UserConfig returns a config authenticating as user name in the given groups, with a client
// certificate signed by the server's client CA. Nothing is granted to it until a test binds a role.
// The config keeps client-go's default rate limit.
func (s *Server) UserConfig(name string, groups ...string) *rest.Config {
	certPEM, keyPEM, err := s.ca.issue(pkix.Name{CommonName: name, Organization: groups}, x509.ExtKeyUsageClientAuth, nil, nil)
	if err != nil {
		panic(fmt.Sprintf("kubetest: issue a client certificate: %v", err)) // only crypto/rand could fail here
	}
	cfg := s.baseConfig()
	cfg.CertData, cfg.KeyData = certPEM, keyPEM
	return cfg
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
	cfg := s.baseConfig()
	cfg.BearerToken = tr.Status.Token
	return cfg, nil
}

func (s *Server) baseConfig() *rest.Config {
	return &rest.Config{
		Host:            s.URL,
		TLSClientConfig: rest.TLSClientConfig{CAData: s.ca.certPEM},
	}
}

// CAData returns the PEM certificate of the CA that signed the server's serving certificate.
func (s *Server) CAData() []byte { return s.ca.certPEM }

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

// process is a child process whose output goes to a log file.
type process struct {
	name    string
	cmd     *exec.Cmd
	logFile string
	done    chan struct{}
	err     error // set before done is closed
}

func startProcess(path, logFile string, args ...string) (*process, error) {
	out, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = out, out
	// Killed with the test binary, so a crashed or timed-out test leaves no server behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = out.Close()
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	p := &process{name: filepath.Base(path), cmd: cmd, logFile: logFile, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = out.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *process) stop() error {
	if p == nil {
		return nil
	}
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return nil
	case <-timer.C:
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %s of SIGTERM; killed", p.name, stopTimeout)
	}
}

// tail returns the last lines of the process's log, for start failures.
func (p *process) tail() string {
	data, err := os.ReadFile(p.logFile)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("last lines of %s:\n%s", p.logFile, lastLines(string(data), 20))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
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
