package registryhost_test

import (
	"strings"
	"testing"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/registryhost"
)

// FuzzNormalizeHost: no panic; what it returns is lowercase host characters
// and a fixed point, and the name of a credential for it is a DNS-1123 label
// of at most 63 characters. The seed corpus is under testdata/fuzz.
func FuzzNormalizeHost(f *testing.F) {
	for _, s := range []string{"https://111122223333.dkr.ecr.us-east-1.amazonaws.com/", "Host:5000/path", "[::1]:5000",
		"x..", "::0", "-", "_", "[", "host.:05000", "http://[fe80::1%25eth0]:5000", "a_b.c-d:65535"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		h, err := registryhost.NormalizeHost(addr)
		if err != nil {
			return
		}
		if h == "" || strings.Trim(h, "abcdefghijklmnopqrstuvwxyz0123456789.-_:[]") != "" {
			t.Fatalf("NormalizeHost(%q) = %q", addr, h)
		}
		if again, err := registryhost.NormalizeHost(h); err != nil || again != h {
			t.Fatalf("NormalizeHost(%q) = %q, but NormalizeHost(%q) = %q, %v", addr, h, h, again, err)
		}
		if n := registryhost.CredentialName(h); len(n) > 63 || !dns1123Label.MatchString(n) {
			t.Fatalf("CredentialName(%q) = %q: not a DNS-1123 label of at most 63 characters", h, n)
		}
	})
}
