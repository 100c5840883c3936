package ecrsource

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/redact"
)

// MissingCredentialsError is the AWS SDK's default credential chain finding no
// credentials at all: it fell through to the EC2 instance role, and that failed
// too. It names the sources tried and what to set; it is a configuration
// problem, retried only after RETRY_MAX_INTERVAL.
type MissingCredentialsError struct {
	Tried []string // each source of the chain and why it gave nothing
	again bool     // explained in full already: a short line
}

func (e *MissingCredentialsError) Error() string {
	if e.again {
		return "no AWS credentials found (what to set was logged at the first failure)"
	}
	return "no AWS credentials found (tried " + strings.Join(e.Tried, "; ") + "); set AWS_ACCESS_KEY_ID and " +
		"AWS_SECRET_ACCESS_KEY, or AWS_SHARED_CREDENTIALS_FILE and AWS_PROFILE, or AWS_ROLE_ARN and " +
		"AWS_WEB_IDENTITY_TOKEN_FILE (EKS IRSA), or use EKS Pod Identity or an EC2 instance role"
}

// Temporary is false: no retry soon will make credentials appear.
func (e *MissingCredentialsError) Temporary() bool { return false }

// ExplainCredentials wraps the credentials of an aws.Config loaded with
// config.LoadDefaultConfig. When the default chain resolved to the EC2 instance
// role only (nothing else configured) and that fails, the error becomes a
// MissingCredentialsError naming what was tried, judged from getenv. Any other
// provider is returned as it is: its failures are its own.
func ExplainCredentials(p aws.CredentialsProvider, getenv func(string) string) aws.CredentialsProvider {
	ps, ok := p.(interface{ ProviderSources() []aws.CredentialSource })
	if !ok || !slices.Equal(ps.ProviderSources(), []aws.CredentialSource{aws.CredentialSourceIMDS}) {
		return p
	}
	return explained{p: p, getenv: getenv}
}

type explained struct {
	p      aws.CredentialsProvider
	getenv func(string) string
}

func (e explained) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := e.p.Retrieve(ctx)
	if err == nil || ctx.Err() != nil {
		return c, err
	}
	return c, e.missing(err)
}

// ProviderSources keeps the SDK's credential-source reporting intact.
func (e explained) ProviderSources() []aws.CredentialSource {
	return []aws.CredentialSource{aws.CredentialSourceIMDS}
}

func (e explained) missing(cause error) error {
	set := func(k string) bool { return e.getenv(k) != "" }
	var tried []string
	switch {
	case set("AWS_ACCESS_KEY_ID") != set("AWS_SECRET_ACCESS_KEY"):
		tried = append(tried, "environment: only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set")
	default:
		tried = append(tried, "environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set")
	}
	profile := e.getenv("AWS_PROFILE")
	if profile == "" {
		profile = "default"
	}
	files := "the default ~/.aws/credentials and ~/.aws/config"
	if f := e.getenv("AWS_SHARED_CREDENTIALS_FILE"); f != "" {
		files = f
	}
	tried = append(tried, "shared files: no credentials for profile "+redact.Bounded(profile, 64)+" in "+redact.Bounded(files, 256),
		"web identity: AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE not set",
		"container or EKS Pod Identity: AWS_CONTAINER_CREDENTIALS_FULL_URI not set")
	imds := "EC2 instance role: "
	switch {
	case strings.EqualFold(e.getenv("AWS_EC2_METADATA_DISABLED"), "true"):
		imds += "IMDS disabled by AWS_EC2_METADATA_DISABLED"
	default:
		imds += "no role from IMDS (" + redact.Text(rootCause(cause)) + ")"
	}
	tried = append(tried, imds)
	return &MissingCredentialsError{Tried: tried}
}

// rootCause is the innermost error's text: the SDK's outer layers only repeat
// which operation failed.
func rootCause(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}
