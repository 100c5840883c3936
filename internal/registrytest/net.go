package registrytest

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Net is a set of registries, one per host, and the way clients reach them:
// a CONNECT proxy on 127.0.0.1 that sends a connection for a registry host
// (any port) to that registry and refuses every other, and the CA their
// certificates are signed by. The real helm binary reaches them through
// HTTPS_PROXY=ProxyURL and --ca-file CAFile; Go clients through Transport.
type Net struct {
	registries map[string]*Registry
	pool       *x509.CertPool

	// ProxyURL is the CONNECT proxy, http://127.0.0.1:<port>.
	ProxyURL string
	// CAFile is the PEM of the CA, for clients that read a file.
	CAFile string
}

// Start runs one registry per host until the test ends.
func Start(t testing.TB, hosts ...string) *Net {
	t.Helper()
	authority, err := newCA()
	if err != nil {
		t.Fatal(err)
	}
	n := &Net{registries: map[string]*Registry{}, pool: x509.NewCertPool(), CAFile: filepath.Join(t.TempDir(), "ca.pem")}
	n.pool.AddCert(authority.cert)
	if err := os.WriteFile(n.CAFile, authority.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	for i, h := range hosts {
		cert, err := authority.issue(h, int64(i+2))
		if err != nil {
			t.Fatal(err)
		}
		n.registries[h] = start(t, h, cert)
	}
	proxy := httptest.NewServer(http.HandlerFunc(n.connect))
	t.Cleanup(proxy.Close)
	n.ProxyURL = proxy.URL
	return n
}

// Registry returns the registry standing for host (nil if none).
func (n *Net) Registry(host string) *Registry { return n.registries[host] }

// Transport is what a Go client uses: through the proxy, trusting the CA
// only.
func (n *Net) Transport() http.RoundTripper {
	proxy, _ := url.Parse(n.ProxyURL)
	return &http.Transport{
		Proxy:               http.ProxyURL(proxy),
		TLSClientConfig:     &tls.Config{RootCAs: n.pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
		DisableKeepAlives:   true, // nothing lingers past a test
	}
}

// connect tunnels a CONNECT for a registry host to that registry.
func (n *Net) connect(w http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.Host)
	reg := n.registries[host]
	if r.Method != http.MethodConnect || err != nil || reg == nil {
		http.Error(w, "registrytest: no registry for "+r.Host, http.StatusForbidden)
		return
	}
	upstream, err := net.DialTimeout("tcp", reg.Addr, 10*time.Second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		upstream.Close()
		http.Error(w, "no hijacking", http.StatusInternalServerError)
		return
	}
	client, buf, err := hj.Hijack()
	if err != nil {
		upstream.Close()
		return
	}
	_, _ = client.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n"))
	var wg sync.WaitGroup
	wg.Go(func() {
		_, _ = io.Copy(upstream, buf) // what the client sent, buffered or not
		closeWrite(upstream)
	})
	_, _ = io.Copy(client, upstream)
	client.Close()
	wg.Wait()
	upstream.Close()
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}
