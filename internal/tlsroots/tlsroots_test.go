package tlsroots

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// The built-in roots are set only when no system bundle file is there.
func TestInstall(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	full, empty := filepath.Join(dir, "ca-certificates.crt"), filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(full, []byte("-----BEGIN CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		files []string
		want  bool
	}{
		{"SystemBundle", []string{filepath.Join(dir, "missing"), full}, false},
		{"NoSystemBundle", []string{filepath.Join(dir, "missing")}, true},
		{"EmptyFile", []string{empty}, true},
		{"Directory", []string{dir}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var set *x509.CertPool
			install(tc.files, func(p *x509.CertPool) { set = p })
			if got := set != nil; got != tc.want {
				t.Fatalf("fallback set = %v, want %v", got, tc.want)
			}
		})
	}
}

// BuiltIn holds every root of the bundle, constraints included, as
// x509roots/fallback's pool does.
func TestBuiltIn(t *testing.T) {
	t.Parallel()
	want := x509.NewCertPool()
	constrained := 0
	for r := range bundle.Roots() {
		c, err := x509.ParseCertificate(r.Certificate)
		if err != nil {
			t.Fatal(err)
		}
		if r.Constraint != nil {
			constrained++
			want.AddCertWithConstraint(c, r.Constraint)
		} else {
			want.AddCert(c)
		}
	}
	if got := BuiltIn(); !got.Equal(want) {
		t.Error("BuiltIn differs from the bundle")
	}
	t.Logf("%d roots with a constraint", constrained)
}
