package registryhost_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/registryhost"
)

const hostA = "111122223333.dkr.ecr.us-east-1.amazonaws.com"

func TestNormalizeHost(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want, err string }{
		{in: "https://111122223333.dkr.ecr.us-east-1.amazonaws.com", want: hostA},
		{in: "111122223333.dkr.ecr.us-east-1.amazonaws.com", want: hostA},
		{in: "HTTP://111122223333.DKR.ECR.us-east-1.amazonaws.com/", want: hostA},
		{in: "  " + hostA + "/v2/  ", want: hostA},
		{in: hostA + ".", want: hostA},
		{in: hostA + "?x=1", want: hostA},
		{in: hostA + "#frag", want: hostA},
		{in: "registry.example.com:5000", want: "registry.example.com:5000"},
		{in: "10.0.0.5:5000", want: "10.0.0.5:5000"},
		{in: "my_registry:5000/x", want: "my_registry:5000"},
		{in: "localhost:5000", want: "localhost:5000"},
		{in: "https://[::1]:5000/v2", want: "[::1]:5000"},
		{in: "Host.:05000", want: "host:5000"},
		{in: "[0:0::1]:443", want: "[::1]:443"},
		{in: "[::1]", want: "[::1]"},
		{in: "", err: "no host"},
		{in: "https://", err: "no host"},
		{in: "/just/a/path", err: "no host"},
		{in: "http://[bad", err: "not a URL"},
		{in: "my_registry:port", err: "invalid port"},
		{in: "host:", err: "invalid port"},
		{in: "host:+80", err: "invalid port"},
		{in: "bad host.example.com", err: "invalid character"},
		{in: "x..", err: "empty label"},
		{in: "a..b", err: "empty label"},
		{in: "::0", err: "must be in brackets"},
		{in: "-", err: "invalid label"},
		{in: "_", err: "invalid label"},
		{in: "[", err: "unclosed ["},
		{in: "[::1]x", err: "invalid character after ]"},
		{in: "[fe80::1%eth0]", err: "invalid IPv6"},
		{in: "[1.2.3.4]", err: "invalid IPv6"},
		{in: "host:0", err: "invalid port"},
		{in: "host:65536", err: "invalid port"},
		{in: "-host.example.com", err: "invalid label"},
		{in: "host-.example.com", err: "invalid label"},
		{in: strings.Repeat("a", 64) + ".example.com", err: "invalid label"},
		{in: strings.Repeat("a.", 127) + "aa", err: "longer than 253"},
	}
	for _, tt := range tests {
		got, err := registryhost.NormalizeHost(tt.in)
		if err == nil {
			if again, err := registryhost.NormalizeHost(got); err != nil || again != got {
				t.Errorf("NormalizeHost(%q) = %q, but NormalizeHost(%q) = %q, %v: not idempotent", tt.in, got, got, again, err)
			}
		}
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("NormalizeHost(%q) = %q, %v, want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeHost(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestParseECR(t *testing.T) {
	t.Parallel()
	tests := []struct {
		host, account, region string
		ok                    bool
	}{
		{hostA, "111122223333", "us-east-1", true},
		{"111122223333.dkr.ecr.cn-north-1.amazonaws.com.cn", "111122223333", "cn-north-1", true},
		{"111122223333.dkr.ecr.us-gov-west-1.amazonaws.com", "111122223333", "us-gov-west-1", true},
		{"111122223333.dkr.ecr-fips.us-east-1.amazonaws.com", "111122223333", "us-east-1", true},
		{"111122223333.dkr-ecr.eu-west-1.on.aws", "111122223333", "eu-west-1", true},
		{"111122223333.dkr-ecr-fips.us-east-1.on.aws", "111122223333", "us-east-1", true},
		{"111122223333.dkr.ecr.us-iso-east-1.c2s.ic.gov", "111122223333", "us-iso-east-1", true},
		{"111122223333.dkr.ecr.us-isob-east-1.sc2s.sgov.gov", "111122223333", "us-isob-east-1", true},
		{"111122223333.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk", "111122223333", "eu-isoe-west-1", true},
		{"111122223333.dkr.ecr.us-isof-south-1.csp.hci.ic.gov", "111122223333", "us-isof-south-1", true},
		{"111122223333.dkr.ecr.eusc-de-east-1.amazonaws.eu", "111122223333", "eusc-de-east-1", true},
		// Look-alikes and other registries.
		{hostA + ".fake.example.com", "", "", false},
		{"evil.example.com/" + hostA, "", "", false},
		{"11112222333.dkr.ecr.us-east-1.amazonaws.com", "", "", false},
		{"1111222233334.dkr.ecr.us-east-1.amazonaws.com", "", "", false},
		{"111122223333.dkr.ecr.us-east-1.amazonaws.com:443", "", "", false},
		{"public.ecr.aws", "", "", false},
		{"index.docker.io", "", "", false},
		{"api.ecr.us-east-1.amazonaws.com", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		account, region, ok := registryhost.ParseECR(tt.host)
		if account != tt.account || region != tt.region || ok != tt.ok {
			t.Errorf("ParseECR(%q) = %q, %q, %v, want %q, %q, %v", tt.host, account, region, ok, tt.account, tt.region, tt.ok)
		}
	}
}

// dns1123Label is what Kubernetes accepts as a Secret name (and Rancher as a
// dockerCredential name): https://kubernetes.io/docs/concepts/overview/working-with-objects/names/
var dns1123Label = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func TestCredentialName(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 60) + ".example.com:5000"
	tests := []struct{ host, want string }{
		{hostA, "ecr-111122223333-us-east-1"},
		{"111122223333.dkr.ecr.cn-north-1.amazonaws.com.cn", "ecr-111122223333-cn-north-1"},
		{"111122223333.dkr-ecr-fips.us-east-1.on.aws", "ecr-111122223333-us-east-1"},
		{"ecr-proxy.example.com:5000", "ecr-ecr-proxy-example-com-5000"},
		{"public.ecr.aws", "ecr-public-ecr-aws"},
		{"my_registry:5000", "ecr-my-registry-5000"},
		{"[::1]:5000", "ecr----1--5000"},
		{long, "ecr-" + strings.Repeat("a", 59)},
		{strings.Repeat("a", 58) + "-.example.com", "ecr-" + strings.Repeat("a", 58)},
	}
	for _, tt := range tests {
		got := registryhost.CredentialName(tt.host)
		if got != tt.want {
			t.Errorf("CredentialName(%q) = %q, want %q", tt.host, got, tt.want)
		}
		if len(got) > 63 || !dns1123Label.MatchString(got) {
			t.Errorf("CredentialName(%q) = %q: not a DNS-1123 label of at most 63 characters", tt.host, got)
		}
	}
}

func ExampleCredentialName() {
	fmt.Println(registryhost.CredentialName("111122223333.dkr.ecr.eu-west-1.amazonaws.com"))
	// Output: ecr-111122223333-eu-west-1
}
