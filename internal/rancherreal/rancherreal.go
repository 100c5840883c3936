// Package rancherreal runs the real Rancher 2.x server for tests: a binary built from
// github.com/rancher/rancher (v2.12.3 by default), cached outside the clone, on a real etcd and
// kube-apiserver (targets/kube/kubetest), every listener on 127.0.0.1. It waits until the server
// accepts the admin login, creates an admin API key, and stops everything when the test binary ends.
//
// What runs is Rancher as `--add-local=true` makes it: the /v3 API, the local cluster with its
// Default and System projects, the proxy /k8s/clusters/local (which impersonates the token's user,
// so Kubernetes RBAC decides) and the project-scoped-secret controller. Not there: kubelet,
// kube-controller-manager, rancher-webhook, fleet. So a project's status.backingNamespace stays
// empty unless a test sets it (NewProjectWithBackingNamespace), and the aggregated ClusterRoles
// admin, edit and view are filled by AggregateClusterRoles, as the clusterrole-aggregation
// controller would. See docs/testing-rancher.md.
//
// When the binary is missing, Start skips the test naming how to build it, unless
// REQUIRE_RANCHER=1 makes that a failure (CI sets it where the binary is cached).
package rancherreal

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testproc"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testskip"
)

const (
	// EnvBinary names the Rancher server binary to run, overriding DefaultBinary.
	EnvBinary = "RANCHER_REAL_BIN"
	// DefaultVersion is the Rancher release the suite is written against.
	DefaultVersion = "v2.12.3"
	// BuildHint says how the binary is made; it is not built by the tests (13 minutes on 2 cores).
	BuildHint = "build it once with `rancher-real.sh build MIRRORS` (github.com/rancher/rancher " + DefaultVersion +
		" from source, listeners patched to bind 127.0.0.1; docs/testing-rancher.md), or set " + EnvBinary + " to a built binary"

	// AdminPassword is the bootstrap password of the admin user (Rancher wants at least 12 characters).
	AdminPassword = "rancherreal-admin-password"

	// StartTimeout bounds a start: the apiserver, then Rancher accepting the admin login, its Default
	// project, and the aggregated ClusterRoles filled.
	StartTimeout = 5 * time.Minute
	stopTimeout  = 20 * time.Second
)

// ErrNoBinary is returned (wrapped) when the Rancher binary is not there.
var ErrNoBinary = errors.New("real Rancher server binary not found")

// DefaultBinary is where the build puts the binary: ~/.cache/rancher-real/rancher-<version>.
func DefaultBinary() string {
	home, err := os.UserHomeDir()
	if err != nil {
		home = "~"
	}
	return filepath.Join(home, ".cache", "rancher-real", "rancher-"+DefaultVersion)
}

// Binary returns the Rancher binary to run ($RANCHER_REAL_BIN, else DefaultBinary) after checking
// it is an executable file.
func Binary() (string, error) {
	bin := os.Getenv(EnvBinary)
	if bin == "" {
		bin = DefaultBinary()
	}
	fi, err := os.Stat(bin)
	if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%w at %s: %s", ErrNoBinary, bin, BuildHint)
	}
	return bin, nil
}

// SkipIfMissing skips t loudly when the Rancher binary (or the kube-apiserver and etcd it runs on) is
// missing, or fails it under REQUIRE_RANCHER=1.
func SkipIfMissing(t testing.TB) {
	t.Helper()
	_, err := Binary()
	if err == nil {
		_, err = kubetest.Assets() // Rancher runs on the kube-apiserver and etcd the Kubernetes tests use
	}
	if err != nil {
		testskip.Skip(t, testskip.Rancher, err.Error())
	}
}

// Server is a running Rancher with its kube-apiserver and etcd.
type Server struct {
	// URL is Rancher's base URL, https://127.0.0.1:<port> (the API is URL+"/v3").
	URL string
	// CAFile holds the CA of Rancher's serving certificate (the cacerts setting), for RANCHER_CA_FILE.
	CAFile string
	// CAPEM is that CA.
	CAPEM []byte
	// AdminToken is an API key of the admin user, token-xxxxx:secret, with no scope.
	AdminToken string
	// AdminID is the admin user's id (user-xxxxx).
	AdminID string
	// Version is the server version the binary reports (the server-version setting), e.g. v2.12.3.
	Version string
	// Kube is the kube-apiserver Rancher runs on, the local cluster: its AdminConfig bypasses
	// Rancher (system:masters), and its audit log records every request Rancher makes for a user.
	Kube *kubetest.Server
	// Dir holds the server's files; LogFile is Rancher's log.
	Dir, LogFile string

	rancher *testproc.Process
	api     *apiClient
}

// New starts the kube-apiserver and Rancher with their files in dir, and returns once Rancher
// is ready (admin API key made, Default project there, aggregated ClusterRoles filled) or ctx
// ends. The caller calls Stop.
func New(ctx context.Context, dir string) (_ *Server, err error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	version, err := binaryVersion(ctx, bin)
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, LogFile: filepath.Join(dir, "rancher.log"), Version: version}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Stop())
		}
	}()
	if s.Kube, err = kubetest.New(ctx, filepath.Join(dir, "kube")); err != nil {
		return nil, fmt.Errorf("start kube-apiserver for Rancher: %w", err)
	}
	kubeconfig, err := kubetest.Kubeconfig(s.Kube.AdminConfig(), "")
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"home", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "kubeconfig"), kubeconfig, 0o600); err != nil {
		return nil, err
	}
	ports, err := freePorts()
	if err != nil {
		return nil, err
	}
	s.URL = fmt.Sprintf("https://127.0.0.1:%d", ports[1])
	s.rancher, err = startRancher(bin, dir, version, ports)
	if err != nil {
		return nil, err
	}
	s.api = newAPIClient(s.URL)
	if err := s.bootstrap(ctx); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, s.rancher.Tail(30))
	}
	return s, nil
}

// startRancher runs the binary as rancher-real.sh does: dev mode (driver paths relative to the
// working directory), the imperative API served directly (no remotedialer port-forward to a pod that
// cannot exist), no aggregation deadline (nothing can reach the ext.cattle.io APIService), and every
// listener on 127.0.0.1 (CATTLE_BIND_HOST and CATTLE_EXT_LISTEN_ADDRESS exist in the patched build).
func startRancher(bin, dir, version string, ports []int) (*testproc.Process, error) {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + filepath.Join(dir, "home"),
		"TMPDIR=" + filepath.Join(dir, "tmp"),
		"CATTLE_DEV_MODE=yes",
		"CATTLE_SERVER_VERSION=" + version, // as Rancher's image sets it; the setting says "dev" otherwise
		"CATTLE_BOOTSTRAP_PASSWORD=" + AdminPassword,
		"IMPERATIVE_API_DIRECT=true",
		"CATTLE_BIND_HOST=127.0.0.1",
		"CATTLE_EXT_LISTEN_ADDRESS=127.0.0.1:" + strconv.Itoa(ports[2]),
	}
	args := []string{
		"--kubeconfig", filepath.Join(dir, "kubeconfig"),
		"--add-local=true",
		"--http-listen-port=" + strconv.Itoa(ports[0]),
		"--https-listen-port=" + strconv.Itoa(ports[1]),
		"--profile-listen-address=",
		"--aggregation-registration-timeout=87600h",
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Env = dir, env
	return testproc.Start(cmd, filepath.Join(dir, "rancher.log"))
}

// binaryVersion asks the binary for its version: `rancher --version` prints
// "rancher version v2.12.3 (abcdef0)".
func binaryVersion(ctx context.Context, bin string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w: %s", bin, err, testproc.LastLines(string(out), 5))
	}
	for f := range strings.FieldsSeq(string(out)) {
		if strings.HasPrefix(f, "v") && strings.Count(f, ".") >= 2 {
			return f, nil
		}
	}
	return "", fmt.Errorf("%s --version printed no version: %q", bin, out)
}

// Stop stops Rancher (its whole process group), then the apiserver and etcd.
func (s *Server) Stop() error {
	var errs []error
	if s.rancher != nil {
		errs = append(errs, s.rancher.Stop(stopTimeout))
	}
	if s.api != nil {
		s.api.http.CloseIdleConnections()
	}
	if s.Kube != nil {
		errs = append(errs, s.Kube.Stop())
	}
	return errors.Join(errs...)
}

// Alive reports an error when the Rancher process has exited.
func (s *Server) Alive() error {
	select {
	case <-s.rancher.Done():
		return fmt.Errorf("rancher exited: %v\n%s", s.rancher.Err(), s.rancher.Tail(30))
	default:
		return nil
	}
}

// LogTail returns the last n lines of Rancher's log, for failures.
func (s *Server) LogTail(n int) string { return s.rancher.Tail(n) }

// poll calls f every interval until it returns done or an error, ctx ends, or the server exits.
func (s *Server) poll(ctx context.Context, interval time.Duration, what string, f func() (bool, error)) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var last error
	for {
		done, err := f()
		if done {
			return err
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last error: %v)", what, ctx.Err(), last)
		case <-s.rancher.Done():
			return fmt.Errorf("%s: rancher exited: %v", what, s.rancher.Err())
		case <-tick.C:
		}
	}
}

// freePorts picks Rancher's HTTP, HTTPS and extension API ports: free, and
// with the port after the HTTPS one free too, which Rancher binds for its
// internal listener (fleet): pkg/tls/tls.go in rancher/rancher,
// internalPort = httpsPort + 1. Ports the kernel hands out one after another
// would otherwise give that port to the extension API.
func freePorts() ([]int, error) {
	for range 20 {
		https, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		port := https.Addr().(*net.TCPAddr).Port
		next, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+1))
		if err != nil {
			https.Close()
			continue
		}
		// Both held, so the other two cannot be either.
		others, err := testproc.FreePorts(2)
		https.Close()
		next.Close()
		if err != nil {
			return nil, err
		}
		return []int{others[0], port, others[1]}, nil
	}
	return nil, errors.New("no free port whose next port is free too, for Rancher's HTTPS and internal listeners")
}
