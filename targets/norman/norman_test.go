package norman_test

import (
	"strings"
	"testing"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/norman"
)

// The end-to-end rules of this target (no loss, in place, own credentials
// found again) are tested through the refresher in refresher/dockercred_test.go.

const hostA = "111122223333.dkr.ecr.us-east-1.amazonaws.com"

func TestCredentialName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		tok  refresher.Token
		want string
	}{
		{refresher.Token{Host: hostA, ECRHost: hostA, RegistryID: "111122223333", Region: "us-east-1"}, "ecr-111122223333-us-east-1"},
		{refresher.Token{Host: "ecr-proxy.example.com:5000", ECRHost: hostA, RegistryID: "111122223333", Region: "us-east-1"}, "ecr-ecr-proxy-example-com-5000"},
		{refresher.Token{Host: strings.Repeat("a", 80) + ".example.com", ECRHost: hostA}, "ecr-" + strings.Repeat("a", 59)},
	}
	for _, tt := range tests {
		if got := norman.CredentialName(tt.tok); got != tt.want {
			t.Errorf("norman.CredentialName(%s) = %q, want %q", tt.tok.Host, got, tt.want)
		}
	}
}
