package e2e

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/ecrsource/ecrtest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/apptest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testproc"
)

// BenchmarkCompare_Nabsul1000Namespaces runs this daemon and
// nabsul/k8s-ecr-login-renew side by side (issue 22): the same real
// kube-apiserver, the same 1,000 namespaces, the same ECR stand-in, each
// tool's first run into Secrets that do not exist yet (a new Secret name per
// repetition), 3 repetitions each, interleaved, and reports the medians:
//
//   - ours-requests, ours-s: this daemon with --once (its informer's list,
//     then one create per namespace), process start to exit;
//   - nabsul-requests, nabsul-s: nabsul's job (a namespace list, then per
//     namespace a read and a create), process start to exit.
//
// Requests are the API server's audit log's, per tool (each its own
// client-certificate user). nabsul uses the AWS SDK for Go v1, which has no
// endpoint setting, so both reach ECR as api.ecr.us-east-1.amazonaws.com
// through an HTTPS proxy (HTTPS_PROXY) that answers with the stand-in,
// trusted through AWS_CA_BUNDLE; nabsul reads ~/.kube/config of its user's
// passwd entry, written there for the benchmark when there is none. NABSUL_BIN
// names nabsul's binary, built from its own repository (go build . in a
// checkout of github.com/nabsul/k8s-ecr-login-renew); it is not part of this
// one, and without it the benchmark skips, saying so.
//
//	NABSUL_BIN=/path/to/k8s-ecr-login-renew KUBEBUILDER_ASSETS=$(scripts/kube-testenv.sh | tail -1) \
//	  go test -run '^$' -bench Compare_Nabsul -benchtime 1x ./e2e/
func BenchmarkCompare_Nabsul1000Namespaces(b *testing.B) {
	const n, reps = 1000, 3
	nabsul := os.Getenv("NABSUL_BIN")
	if nabsul == "" {
		b.Skip("SKIP: NABSUL_BIN is not set: build github.com/nabsul/k8s-ecr-login-renew and name its binary there to compare")
	}
	srv := kubetest.Start(b)
	bin := footprintBinary(b)
	admin := kubetest.Clientset(b, srv.AdminConfig())
	createNamespaces(b, admin, "cmp", n)
	proxy, caFile, ecrCalls := startECRProxy(b)
	dir := b.TempDir()
	common := []string{"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=y", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "none"),
		"HTTPS_PROXY=" + proxy, "NO_PROXY=127.0.0.1,localhost", "AWS_CA_BUNDLE=" + caFile}
	// nabsul reads ~/.kube/config of the user's passwd entry (os/user), not
	// $HOME: the kubeconfig goes there for the benchmark's length, and only
	// where there is none (a kubeconfig of the user's is never touched).
	u, err := user.Current()
	if err != nil {
		b.Fatal(err)
	}
	nabsulHome := u.HomeDir
	nabsulConfig := filepath.Join(nabsulHome, ".kube", "config")
	if _, err := os.Stat(nabsulConfig); err == nil {
		b.Skipf("SKIP: %s exists: nabsul would read it; move it away to compare", nabsulConfig)
	}
	if _, err := os.Stat(filepath.Dir(nabsulConfig)); err != nil {
		if err := os.Mkdir(filepath.Dir(nabsulConfig), 0o700); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = os.Remove(filepath.Dir(nabsulConfig)) })
	}
	kc, err := kubetest.Kubeconfig(srv.UserConfig("nabsul", "system:masters"), "")
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(nabsulConfig, kc, 0o600); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.Remove(nabsulConfig) })
	oursEnv := append([]string{"HOME=" + dir, "KUBECONFIG=" + kubetest.WriteKubeconfig(b, srv.UserConfig(benchUser, "system:masters"), ""),
		"AWS_ECR_REGISTRY_IDS=" + apptest.Account, "KUBE_NAMESPACES=cmp-*", "LOG_LEVEL=warn"}, common...)
	nabsulEnv := append([]string{"HOME=" + nabsulHome, "TARGET_NAMESPACE=cmp-*"}, common...)

	type result struct{ requests, seconds []float64 }
	var ours, theirs result
	run := func(who string, r *result, user string, cmd *exec.Cmd) {
		before := requests(b, srv, user)[""]
		calls := ecrCalls.Load()
		start := time.Now()
		out, err := cmd.CombinedOutput()
		took := time.Since(start)
		if err != nil {
			b.Fatalf("%s: %v\n%s", who, err, testproc.LastLines(string(out), 20))
		}
		r.seconds = append(r.seconds, took.Seconds())
		r.requests = append(r.requests, float64(requests(b, srv, user)[""]-before))
		if got := ecrCalls.Load() - calls; got != 1 {
			b.Errorf("%s asked ECR %d times, want once", who, got)
		}
	}
	for i := 0; b.Loop(); i++ {
		if i > 0 {
			continue // the repetitions are the measurement
		}
		for rep := range reps {
			name := "rep-" + strconv.Itoa(rep)
			runOurs := func() {
				cmd := exec.Command(bin, "--once")
				cmd.Env = append(oursEnv, "KUBE_SECRET_NAME=ours-"+name)
				run("this daemon", &ours, benchUser, cmd)
			}
			runNabsul := func() {
				cmd := exec.Command(nabsul)
				cmd.Env = append(nabsulEnv, "DOCKER_SECRET_NAME=nabsul-"+name)
				run("nabsul", &theirs, "nabsul", cmd)
			}
			if rep%2 == 0 {
				runOurs()
				runNabsul()
			} else {
				runNabsul()
				runOurs()
			}
		}
	}
	b.Logf("this daemon: %v requests, %v s; nabsul: %v requests, %v s", ours.requests, ours.seconds, theirs.requests, theirs.seconds)
	b.ReportMetric(median(ours.requests), "ours-requests")
	b.ReportMetric(median(ours.seconds), "ours-s")
	b.ReportMetric(median(theirs.requests), "nabsul-requests")
	b.ReportMetric(median(theirs.seconds), "nabsul-s")
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// startECRProxy serves the ECR stand-in (real-size passwords) as
// https://api.ecr.us-east-1.amazonaws.com to clients that go through the
// returned HTTPS proxy URL and trust the CA in the returned PEM file.
func startECRProxy(b *testing.B) (proxyURL, caFile string, calls *atomic.Int64) {
	b.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		b.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "api.ecr.us-east-1.amazonaws.com"},
		DNSNames: []string{"api.ecr.us-east-1.amazonaws.com"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		b.Fatal(err)
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		b.Fatal(err)
	}
	caFile = filepath.Join(b.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		b.Fatal(err)
	}
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}}}

	s := ecrtest.New(apptest.Account, "us-east-1")
	calls = &atomic.Int64{}
	s.SetIntercept(func(w http.ResponseWriter, _ *http.Request) bool {
		k := calls.Add(1)
		ecrtest.WriteAnswer(w, time.Now().Add(12*time.Hour), ecrtest.Login{Host: s.Host(apptest.Account), Password: realPassword(k)})
		return true
	})
	inner := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	tunnels := &chanListener{conns: make(chan net.Conn), done: make(chan struct{})}
	go func() { _ = inner.Serve(tunnels) }()
	b.Cleanup(func() { _ = inner.Close() })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil || req.Method != http.MethodConnect || req.Host != "api.ecr.us-east-1.amazonaws.com:443" {
					_, _ = c.Write([]byte("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"))
					_ = c.Close()
					return
				}
				if _, err := c.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
					_ = c.Close()
					return
				}
				select {
				case tunnels.conns <- tls.Server(c, tlsCfg):
				case <-tunnels.done:
					_ = c.Close()
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String(), caFile, calls
}

// chanListener is a net.Listener of the connections the proxy tunnels.
type chanListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  atomic.Bool
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	if l.once.CompareAndSwap(false, true) {
		close(l.done)
	}
	return nil
}

func (l *chanListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
