package ecrsource_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/ecrsource"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/ecrsource/ecrtest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/logbuf"
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

// explainedClient is an ECR client with the default chain's credentials,
// explained, aimed at the ECR stand-in (which must never be called).
func explainedClient(t *testing.T, fake *ecrtest.Server) *ecr.Client {
	t.Helper()
	cfg, err := awsconfig.LoadDefaultConfig(t.Context(), awsconfig.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Credentials = ecrsource.ExplainCredentials(cfg.Credentials, os.Getenv)
	return ecr.NewFromConfig(cfg, func(o *ecr.Options) {
		o.BaseEndpoint = aws.String(serve(t, fake))
		o.RetryMaxAttempts = 1
	})
}

// With no credentials anywhere, through the real SDK's default chain: the
// first failure says what was tried and what to set, the next ones say so in
// a line; it is no blip (not temporary), ECR is never called, and the
// refresher logs the explanation once and waits RETRY_MAX_INTERVAL.
func TestSource_MissingCredentials(t *testing.T) {
	emptyAWSEnvironment(t)
	fake := ecrtest.New(idA, "us-east-1")
	src, _ := newSource(explainedClient(t, fake), idA)

	first := src.Fetch(t.Context()).Err
	var mc *ecrsource.MissingCredentialsError
	if !errors.As(first, &mc) {
		t.Fatalf("err = %v, want a MissingCredentialsError", first)
	}
	for _, want := range []string{"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set", "AWS_SHARED_CREDENTIALS_FILE", "AWS_PROFILE",
		"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "Pod Identity", "instance role", "IMDS disabled by AWS_EC2_METADATA_DISABLED",
		os.Getenv("AWS_SHARED_CREDENTIALS_FILE"), "registries 111122223333 in us-east-1"} {
		if !strings.Contains(first.Error(), want) {
			t.Errorf("error does not name %q: %v", want, first)
		}
	}
	var te interface{ Temporary() bool }
	var c interface{ ErrorCode() string }
	if !errors.As(first, &te) || te.Temporary() || !errors.As(first, &c) || c.ErrorCode() != "NoCredentials" {
		t.Errorf("missing credentials: temporary or not coded NoCredentials: %v", first)
	}
	second := src.Fetch(t.Context()).Err
	if !errors.As(second, &mc) || !strings.Contains(second.Error(), "no AWS credentials found (what to set was logged at the first failure)") ||
		strings.Contains(second.Error(), "(tried") {
		t.Errorf("second failure = %v, want the short line", second)
	}
	if fake.Calls() != 0 {
		t.Errorf("ECR was called %d times without credentials", fake.Calls())
	}

	// Through the refresher: logged once in full, then in a line, and retried
	// after RETRY_MAX_INTERVAL.
	src, _ = newSource(explainedClient(t, fake), idA)
	r := refresher.New([]refresher.Source{src}, []refresher.Scope{{Name: "a", Target: nopTarget{}}})
	log := &logbuf.Buffer{}
	r.Logger = logger(log)
	now := t0
	r.Now = func() time.Time { return now }
	_ = r.RunOnce(t.Context())
	if next, want := r.NextDue(), now.Add(r.RetryMaxInterval); !next.Equal(want) {
		t.Errorf("retry at +%s, want +%s (RETRY_MAX_INTERVAL: a configuration problem)", next.Sub(now), want.Sub(now))
	}
	now = r.NextDue()
	_ = r.RunDue(t.Context())
	if got := strings.Count(log.String(), "no AWS credentials found (tried"); got != 1 {
		t.Errorf("the explanation is logged %d times in two runs, want once:\n%s", got, log)
	}
	if !strings.Contains(log.String(), "what to set was logged at the first failure") {
		t.Errorf("the second failure is not logged:\n%s", log)
	}
}

// Only one of the key pair set: the explanation says so.
func TestSource_MissingCredentials_HalfAKeyPair(t *testing.T) {
	emptyAWSEnvironment(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDONLY")
	src, _ := newSource(explainedClient(t, ecrtest.New(idA, "us-east-1")), idA)
	err := src.Fetch(t.Context()).Err
	for _, want := range []string{"only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set", "profile default"} {
		if !strings.Contains(fmt.Sprint(err), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
}

// Credentials configured some other way are not second-guessed: their own
// failures are their own.
func TestExplainCredentials_OtherProviders(t *testing.T) {
	t.Parallel()
	static := credentials.NewStaticCredentialsProvider("AKIDTEST", awsSecret, "")
	if got, ok := ecrsource.ExplainCredentials(static, os.Getenv).(credentials.StaticCredentialsProvider); !ok || got.Value != static.Value {
		t.Errorf("a static provider was wrapped: %T", got)
	}
}
