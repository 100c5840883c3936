// Package tlsroots gives the process CA roots to verify AWS's, Rancher's and
// the Kubernetes API's TLS with when the system has none: the image is FROM
// scratch (no /etc/ssl).
//
// x509roots/fallback, imported for its side effect, would parse its whole
// bundle at start and make crypto/x509 load the system's roots too, whether
// any TLS connection is made or not: 1.2 MB of the idle daemon's RSS
// (BENCHMARKS.md, "Footprint"). Here the bundle is set only where the system
// holds no bundle file, and kept as certificates crypto/x509 parses when a
// verification first needs them. https://pkg.go.dev/golang.org/x/crypto/x509roots/fallback
package tlsroots

import (
	"crypto/x509"
	"encoding/pem"
	"os"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// systemFiles are the CA bundle files crypto/x509 reads on Linux, the first
// found serving (https://go.dev/src/crypto/x509/root_linux.go); SSL_CERT_FILE
// replaces them.
var systemFiles = []string{
	"/etc/ssl/certs/ca-certificates.crt",
	"/etc/pki/tls/certs/ca-bundle.crt",
	"/etc/ssl/ca-bundle.pem",
	"/etc/pki/tls/cacert.pem",
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
	"/etc/ssl/cert.pem",
}

// Install sets the built-in roots as crypto/x509's fallback unless the
// system holds a CA bundle file (which crypto/x509 then loads when a
// connection first needs it). Call it once, before any TLS connection.
func Install() {
	files := systemFiles
	if f := os.Getenv("SSL_CERT_FILE"); f != "" {
		files = []string{f}
	}
	install(files, x509.SetFallbackRoots)
}

func install(files []string, setFallback func(*x509.CertPool)) {
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
			return
		}
	}
	setFallback(BuiltIn())
}

// BuiltIn is the bundle (the NSS trust store) as a pool: each root kept as
// it is, parsed when a verification first needs it, except those with a
// constraint (a distrust-after date), which takes a parsed certificate.
func BuiltIn() *x509.CertPool {
	p := x509.NewCertPool()
	for r := range bundle.Roots() {
		if r.Constraint == nil {
			p.AppendCertsFromPEM(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate}))
			continue
		}
		if cert, err := x509.ParseCertificate(r.Certificate); err == nil { // the bundle's own tests parse every root
			p.AddCertWithConstraint(cert, r.Constraint)
		}
	}
	return p
}
