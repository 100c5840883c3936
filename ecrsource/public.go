package ecrsource

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecrpublic"
	"github.com/aws/smithy-go"
	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// ECR Public is a service of its own, with its own GetAuthorizationToken
// (docs/ecr.md#ecr-public).
const (
	// PublicHost is ECR Public's registry host, the one its token is for.
	PublicHost = "public.ecr.aws"
	// PublicRegion is where ECR Public's API is asked: the credential helper
	// pins it there, saying the API is available only in us-east-1
	// (https://github.com/awslabs/amazon-ecr-credential-helper,
	// ecr-login/api/client.go).
	PublicRegion = "us-east-1"
)

// PublicAPI is the one ECR Public call a PublicSource makes;
// *ecrpublic.Client implements it.
type PublicAPI interface {
	GetAuthorizationToken(ctx context.Context, in *ecrpublic.GetAuthorizationTokenInput, optFns ...func(*ecrpublic.Options)) (*ecrpublic.GetAuthorizationTokenOutput, error)
}

var _ PublicAPI = (*ecrpublic.Client)(nil)

// PublicSource is one ECR Public GetAuthorizationToken call, as one AWS
// identity: one token for PublicHost. Its answers are decoded, clamped and
// its errors classified as Source's are.
type PublicSource struct {
	notes

	// Client makes the call, with the identity's credentials, in PublicRegion.
	Client PublicAPI
	// Identity is the role whose token it is ("" for the daemon's own), set
	// on the Token.
	Identity string
	// Logger receives the warning about an implausible expiry.
	Logger logrus.FieldLogger
	// Now is the clock; tests replace it.
	Now func() time.Time
}

var _ refresher.Source = (*PublicSource)(nil)

// Region is PublicRegion.
func (s *PublicSource) Region() string { return PublicRegion }

// Label names the source in logs and errors.
func (s *PublicSource) Label() string {
	l := "ECR Public " + PublicHost + " in " + PublicRegion
	if s.Identity != "" {
		l += " as " + s.Identity
	}
	return l
}

func (s *PublicSource) log() logrus.FieldLogger {
	if s.Logger == nil {
		return logrus.StandardLogger()
	}
	return s.Logger.WithField("region", PublicRegion)
}

// Fetch makes one ECR Public GetAuthorizationToken call: its answer is a
// single authorizationData object, with no proxyEndpoint, for PublicHost.
func (s *PublicSource) Fetch(ctx context.Context) refresher.Fetched {
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	out, err := s.Client.GetAuthorizationToken(ctx, &ecrpublic.GetAuthorizationTokenInput{})
	if err != nil {
		return refresher.Fetched{Err: withPublicHint(s.callError("ecr public", s.Label(), err))}
	}
	d := out.AuthorizationData
	if d == nil {
		return refresher.Fetched{Err: fmt.Errorf("ecr public answer for %s: %w: no authorizationData (%s)", PublicHost, errMalformed, s.Label())}
	}
	t := refresher.Token{Host: PublicHost, ECRHost: PublicHost, Region: PublicRegion, FetchedAt: now, Identity: s.Identity}
	t, err = s.token(s.log(), t, deref(d.AuthorizationToken), d.ExpiresAt)
	if err != nil {
		return refresher.Fetched{Err: fmt.Errorf("ecr public answer for %s: %w (%s)", PublicHost, err, s.Label())}
	}
	return refresher.Fetched{Tokens: []refresher.Token{t}}
}

// withPublicHint adds to a refusal what ECR Public needs besides what ECR
// does: sts:GetServiceBearerToken
// (https://docs.aws.amazon.com/AmazonECRPublic/latest/APIReference/API_GetAuthorizationToken.html).
func withPublicHint(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "AccessDeniedException" {
		return fmt.Errorf("%w (ECR Public needs ecr-public:GetAuthorizationToken and sts:GetServiceBearerToken)", err)
	}
	return err
}
