package e2e

import (
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/apptest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testbin"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi/ranchertest"
)

// forwardProxy is a local HTTP proxy: CONNECT tunnels and absolute-URI requests.
// Every host is sent to 127.0.0.1 on the same port, so names that do not
// resolve here (example.com) can only be reached through it.
type forwardProxy struct {
	mu    sync.Mutex
	hosts []string
}

func (p *forwardProxy) seen() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.hosts, " ")
}

func (p *forwardProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.hosts = append(p.hosts, r.Method+" "+r.Host)
	p.mu.Unlock()
	_, port, _ := net.SplitHostPort(r.Host)
	target := net.JoinHostPort("127.0.0.1", port)
	if r.Method == http.MethodConnect {
		dst, err := net.Dial("tcp", target)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			dst.Close()
			return
		}
		_, _ = conn.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n"))
		go func() { _, _ = io.Copy(dst, buf); dst.Close() }()
		_, _ = io.Copy(conn, dst)
		conn.Close()
		return
	}
	r.URL.Host, r.RequestURI = target, ""
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// TestBinary_Proxy runs the binary with HTTPS_PROXY and HTTP_PROXY: Rancher over
// TLS through a CONNECT tunnel, ECR through the plain proxy. The names used
// resolve nowhere on this machine, so only the proxy can have carried the calls.
// (A binary, because Go reads the proxy variables once per process.)
func TestBinary_Proxy(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := testbin.Binary(t)
	rs := ranchertest.New(ranchertest.Key{Access: "ak", Secret: apptest.RancherSecret, Project: apptest.Project})
	rSrv := httptest.NewTLSServer(rs)
	t.Cleanup(rSrv.Close)
	w := apptest.NewWorld(t) // for its ECR stand-in
	ecrSrv := httptest.NewServer(w.ECR)
	t.Cleanup(ecrSrv.Close)
	proxy := &forwardProxy{}
	pSrv := httptest.NewServer(proxy)
	t.Cleanup(pSrv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rSrv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	_, rPort, _ := net.SplitHostPort(rSrv.Listener.Addr().String())
	_, ePort, _ := net.SplitHostPort(ecrSrv.Listener.Addr().String())
	reg := rs.AddRegistry(apptest.Project, w.ECR.Host(apptest.Account), "")

	dir := t.TempDir()
	cmd := exec.CommandContext(t.Context(), bin, "--once")
	cmd.Env = []string{
		"HOME=" + dir, "HTTPS_PROXY=" + pSrv.URL, "HTTP_PROXY=" + pSrv.URL,
		"CATTLE_URL=https://example.com:" + rPort + "/v2-beta/projects/" + apptest.Project, "RANCHER_CA_FILE=" + ca,
		"CATTLE_ACCESS_KEY=ak", "CATTLE_SECRET_KEY=" + apptest.RancherSecret,
		"AWS_REGION=us-east-1", "AWS_ENDPOINT_URL_ECR=http://ecr.example.com:" + ePort,
		"AWS_ACCESS_KEY_ID=AKIDPROXY", "AWS_SECRET_ACCESS_KEY=" + apptest.AWSSecret, "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "none"),
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("run through the proxy: %v\n%s", err, out)
	}
	creds := rs.Credentials(apptest.Project)
	if len(creds) != 1 || creds[0].RegistryID != reg || creds[0].SecretValue != w.ECR.Password(apptest.Account) {
		t.Errorf("credentials = %+v", creds)
	}
	seen := proxy.seen()
	for _, want := range []string{"CONNECT example.com:" + rPort, "POST ecr.example.com:" + ePort} {
		if !strings.Contains(seen, want) {
			t.Errorf("the proxy did not carry %q (it saw %s)", want, seen)
		}
	}
	apptest.NoSecrets(t, string(out), w.ECR.Password(apptest.Account))
}
