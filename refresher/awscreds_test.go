package refresher_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// emptyAWSEnvironment leaves the real SDK's default chain nothing to find, with
// IMDS disabled so nothing leaves the machine.
func emptyAWSEnvironment(t *testing.T) {
	dir := t.TempDir()
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_ENDPOINT_URL",
		"AWS_ENDPOINT_URL_ECR", "AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT", "AWS_EC2_METADATA_SERVICE_ENDPOINT"} {
		t.Setenv(k, "")
	}
	t.Setenv("HOME", dir)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// With no credentials anywhere the error says what was tried and what to set,
// the full explanation is logged once, and the retry waits RETRY_MAX_INTERVAL:
// a configuration problem, not a blip. Through the real SDK's default chain.
func TestRefresher_MissingAWSCredentials(t *testing.T) {
	emptyAWSEnvironment(t)
	s := newStand(t)
	cfg, err := awsconfig.LoadDefaultConfig(t.Context(), awsconfig.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Credentials = refresher.ExplainCredentials(cfg.Credentials, os.Getenv)
	s.r.Sources[0].Client = ecr.NewFromConfig(cfg, func(o *ecr.Options) { o.BaseEndpoint = aws.String("http://127.0.0.1:9") })

	err = s.r.RunOnce(t.Context())
	var mc *refresher.MissingCredentialsError
	if !errors.As(err, &mc) {
		t.Fatalf("err = %v, want a MissingCredentialsError", err)
	}
	for _, want := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SHARED_CREDENTIALS_FILE", "AWS_PROFILE",
		"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "Pod Identity", "instance role", "IMDS disabled by AWS_EC2_METADATA_DISABLED", os.Getenv("AWS_SHARED_CREDENTIALS_FILE")} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q: %v", want, err)
		}
	}
	if next, want := s.r.NextDue(), t0.Add(s.r.RetryMaxInterval); !next.Equal(want) {
		t.Errorf("retry at +%s, want +%s (RETRY_MAX_INTERVAL: a configuration problem)", next.Sub(t0), want.Sub(t0))
	}
	s.clock.Set(s.r.NextDue())
	if err := s.r.RunDue(t.Context()); !errors.As(err, &mc) {
		t.Fatalf("second run: %v", err)
	}
	out := s.log.String()
	if got := strings.Count(out, "no AWS credentials found (tried"); got != 1 {
		t.Errorf("the explanation is logged %d times in two runs, want once:\n%s", got, out)
	}
	if !strings.Contains(out, "no AWS credentials found (what to set was logged at the first failure)") {
		t.Errorf("the second failure is not logged:\n%s", out)
	}
	if s.ecr.Calls() != 0 {
		t.Errorf("ECR was called without credentials")
	}
}
