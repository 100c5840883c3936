// Package registrytest runs real OCI registries for tests: the CNCF
// distribution registry (github.com/distribution/distribution/v3, the code of
// the registry:2 image) in process, one per registry host, each on 127.0.0.1
// with TLS and htpasswd basic auth. Clients reach them under the hosts they
// stand for (public.ecr.aws, <account>.dkr.ecr.<region>.amazonaws.com)
// through a CONNECT proxy, so a credential written under a real ECR host is
// used exactly as a consumer uses it: looked up by that host, sent to it.
//
// How the registry's auth follows ECR: ECR hands out a new password at every
// GetAuthorizationToken and invalidates none; each lives 12 hours. A test
// cannot wait 12 hours, so a registry here accepts, for user AWS, only the
// password it was last told with Accept: the test calls Accept with the ECR
// stand-in's current password after each refresh, and an earlier password
// is then refused exactly as an expired ECR token is (401). Accept rewrites
// the registry's htpasswd file; distribution re-reads the file whenever its
// modification time changes (registry/auth/htpasswd/access.go), so the next
// request already sees it.
package registrytest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"maps"
	"math/big"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd" // the htpasswd access controller
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory" // the in-memory storage driver
	"golang.org/x/crypto/bcrypt"
)

// Pusher is the user a test pushes content as; its password is the
// registry's own, never an ECR token.
const Pusher = "pusher"

// Registry is one distribution registry standing for Host.
type Registry struct {
	mu       sync.Mutex
	users    map[string][]byte // user → bcrypt hash, as written to htpasswd
	modified time.Time         // the htpasswd file's last modification time set
	htpasswd string
	pusherPW string

	// Host is the registry host it stands for.
	Host string
	// Addr is where it listens: 127.0.0.1:<port>, TLS with a certificate
	// for Host signed by the Net's CA.
	Addr string
}

// Accept makes password the only one the registry accepts for user: what
// was accepted for user before is refused from the next request on.
func (r *Registry) Accept(user, password string) error {
	// The lowest cost bcrypt allows: the registry checks every request.
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return fmt.Errorf("htpasswd entry for %s: %w", user, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.users[user] = hash
	var b strings.Builder
	for _, u := range slices.Sorted(maps.Keys(r.users)) {
		fmt.Fprintf(&b, "%s:%s\n", u, r.users[u])
	}
	tmp := r.htpasswd + ".new"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	// A strictly later modification time, whatever the file system's
	// timestamp granularity: distribution reloads when it changes.
	r.modified = maxTime(time.Now(), r.modified.Add(time.Second))
	if err := os.Chtimes(tmp, r.modified, r.modified); err != nil {
		return err
	}
	return os.Rename(tmp, r.htpasswd) // never a half-written file for a request to read
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// start runs a registry for host on 127.0.0.1 until the test ends.
func start(t testing.TB, host string, cert tls.Certificate) *Registry {
	t.Helper()
	dir := t.TempDir()
	r := &Registry{users: map[string][]byte{}, htpasswd: filepath.Join(dir, "htpasswd"), Host: host}
	pw := make([]byte, 16)
	_, _ = rand.Read(pw)
	r.pusherPW = hex.EncodeToString(pw)
	if err := r.Accept(Pusher, r.pusherPW); err != nil {
		t.Fatal(err)
	}
	cfg := &configuration.Configuration{
		Storage: configuration.Storage{
			"inmemory": configuration.Parameters{},
			// No upload purger goroutine outliving the test.
			"maintenance": configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}},
		},
		Auth: configuration.Auth{"htpasswd": configuration.Parameters{"realm": host, "path": r.htpasswd}},
	}
	cfg.HTTP.Secret = r.pusherPW // signs upload state; else a warning per registry
	app := handlers.NewApp(context.Background(), cfg)
	srv := httptest.NewUnstartedServer(app)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	r.Addr = srv.Listener.Addr().String()
	return r
}

// ca is a test certificate authority: the registries' certificates are
// signed by it, clients trust it.
type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA() (*ca, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "registrytest CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &ca{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// issue returns a serving certificate for host (and 127.0.0.1).
func (c *ca) issue(host string, serial int64) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{host}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
