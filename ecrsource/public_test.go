package ecrsource_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecrpublic"
	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/ecrsource"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/ecrsource/ecrtest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/logbuf"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

const pubAWSSecret = "aws-secret-PUBLIC-DO-NOT-LEAK"

var pubT0 = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

// pubServe serves h on loopback until the test ends and returns its URL.
func pubServe(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// pubClient is the real ECR Public client for url, signing in region,
// without retries so fault tests stay fast.
func pubClient(url, region string) *ecrpublic.Client {
	return ecrpublic.New(ecrpublic.Options{Region: region, BaseEndpoint: aws.String(url), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDPUBLIC", pubAWSSecret, "")})
}

// pubSource is a PublicSource through client on a clock stopped at pubT0,
// logging at debug level into the returned buffer.
func pubSource(client ecrsource.PublicAPI) (*ecrsource.PublicSource, *logbuf.Buffer) {
	buf := &logbuf.Buffer{}
	l := logrus.New()
	l.SetOutput(buf)
	l.SetLevel(logrus.DebugLevel)
	return &ecrsource.PublicSource{Client: client, Logger: l, Now: func() time.Time { return pubT0 }}, buf
}

// pubFetch fetches once through the real SDK from a server answering with h.
func pubFetch(t *testing.T, h http.HandlerFunc) (refresher.Fetched, *logbuf.Buffer) {
	t.Helper()
	src, log := pubSource(pubClient(pubServe(t, h), "us-east-1"))
	return src.Fetch(t.Context()), log
}

// The real SDK against the stand-in: one token for public.ecr.aws, user AWS,
// the password the stand-in handed out and its expiresAt to the millisecond;
// every call a new password. Nothing asks ECR for a registry id.
func TestPublicSource_Fetch(t *testing.T) {
	t.Parallel()
	fake := ecrtest.New("111122223333", "eu-west-1")
	fake.Now = func() time.Time { return pubT0 }
	src, log := pubSource(pubClient(pubServe(t, fake), "us-east-1"))
	if got, want := src.Label(), "ECR Public public.ecr.aws in us-east-1"; got != want {
		t.Errorf("Label() = %q, want %q", got, want)
	}
	if got := src.Region(); got != "us-east-1" {
		t.Errorf("Region() = %q, want us-east-1", got)
	}
	var last string
	for i := range 2 {
		f := src.Fetch(t.Context())
		if f.Err != nil || len(f.Problems) > 0 || len(f.Tokens) != 1 {
			t.Fatalf("fetch %d: %+v", i+1, f)
		}
		tok := f.Tokens[0]
		pw := fake.PublicPassword()
		if tok.Host != "public.ecr.aws" || tok.ECRHost != "public.ecr.aws" || tok.Region != "us-east-1" || tok.RegistryID != "" ||
			tok.Username != "AWS" || tok.Password != pw || tok.Identity != "" || !tok.FetchedAt.Equal(pubT0) {
			t.Errorf("fetch %d: token %v (password matches: %v)", i+1, tok, tok.Password == pw)
		}
		if want := fake.ExpiryOf(pw); !tok.ExpiresAt.Equal(want) || want.IsZero() {
			t.Errorf("fetch %d: expires %v, want the stand-in's %v", i+1, tok.ExpiresAt, want)
		}
		if tok.Password == last {
			t.Errorf("fetch %d: the same password again", i+1)
		}
		last = tok.Password
	}
	if fake.PublicCalls() != 2 || fake.Calls() != 2 {
		t.Errorf("%d ECR Public calls of %d, want 2 of 2", fake.PublicCalls(), fake.Calls())
	}
	if strings.Contains(log.String(), "level=warn") {
		t.Errorf("a plausible answer logged a warning:\n%s", log)
	}
	pubNoLeak(t, log.String(), last)

	// As AWS, the stand-in answers ECR Public only when signed for us-east-1:
	// the daemon's pinning of the region is proven against it (internal/app).
	other, _ := pubSource(pubClient(pubServe(t, fake), "eu-west-1"))
	if f := other.Fetch(t.Context()); f.Err == nil || !strings.Contains(f.Err.Error(), "UnsupportedCommandException") {
		t.Errorf("a call signed for eu-west-1: %+v, want UnsupportedCommandException", f)
	}
}

// An expiresAt in the past (emulators) or beyond 12 h is planned as 12 h from
// the fetch, with one warning however often it is seen, as for ECR.
func TestPublicSource_Fetch_ClampsExpiry(t *testing.T) {
	t.Parallel()
	for name, exp := range map[string]time.Time{"Past": time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC), "TooFar": pubT0.Add(48 * time.Hour)} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src, log := pubSource(pubClient(pubServe(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				ecrtest.WritePublicAnswer(w, exp, "PUBLIC-PW")
			})), "us-east-1"))
			for range 3 {
				f := src.Fetch(t.Context())
				if f.Err != nil || len(f.Tokens) != 1 || !f.Tokens[0].ExpiresAt.Equal(pubT0.Add(refresher.TokenLifetime)) {
					t.Fatalf("Fetch = %+v, want one token expiring 12h after the fetch", f)
				}
			}
			if got := strings.Count(log.String(), "assuming a 12h token"); got != 1 || !strings.Contains(log.String(), "registry=public.ecr.aws") {
				t.Errorf("%d clamp warnings, want 1 naming public.ecr.aws:\n%s", got, log)
			}
		})
	}
}

// Answers that cannot be used fail the source, are not retried soon, are
// counted as "unusable", and never quote the token.
func TestPublicSource_Fetch_Unusable(t *testing.T) {
	t.Parallel()
	const secretish = "TOKEN-TEXT-DO-NOT-LEAK"
	tests := map[string]struct{ body, text string }{
		"NoData":      {`{}`, "no authorizationData"},
		"NotBase64":   {`{"authorizationData":{"authorizationToken":"` + secretish + `!","expiresAt":1.7E9}}`, "not base64"},
		"NoSeparator": {`{"authorizationData":{"authorizationToken":"` + pubB64(secretish) + `","expiresAt":1.7E9}}`, "no user:password separator"},
		"NoPassword":  {`{"authorizationData":{"authorizationToken":"` + pubB64("AWS:") + `","expiresAt":1.7E9}}`, "empty password"},
		"List":        {`{"authorizationData":[{"authorizationToken":"` + pubB64("AWS:"+secretish) + `"}]}`, "not ECR's JSON"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f, log := pubFetch(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				_, _ = w.Write([]byte(tt.body))
			})
			if f.Err == nil || len(f.Tokens) > 0 {
				t.Fatalf("Fetch = %+v, want an error", f)
			}
			msg := f.Err.Error()
			if !strings.Contains(msg, tt.text) || !strings.Contains(msg, "public.ecr.aws") {
				t.Errorf("error %q does not say %q naming public.ecr.aws", msg, tt.text)
			}
			if name != "List" && (pubTemporary(f.Err) || pubCode(f.Err) != "unusable") {
				t.Errorf("error %q: temporary %v, code %q; want permanent, unusable", msg, pubTemporary(f.Err), pubCode(f.Err))
			}
			pubNoLeak(t, msg+log.String(), secretish)
		})
	}
}

// ECR Public's failures are classified as ECR's are: what retrying soon can
// fix is temporary, refusals are not; each names the source, and a refusal
// names the two permissions ECR Public takes.
func TestPublicSource_Errors(t *testing.T) {
	t.Parallel()
	tests := append(commonErrors(), []errorCase{
		{"AccessDenied", ecrError(400, "AccessDeniedException", "User: arn:aws:iam::111122223333:user/x is not authorized to perform: ecr-public:GetAuthorizationToken"),
			"is not authorized to perform: ecr-public:GetAuthorizationToken (ECR Public needs ecr-public:GetAuthorizationToken and sts:GetServiceBearerToken)", false, "AccessDeniedException"},
		{"UnsupportedRegion", ecrError(400, "UnsupportedCommandException", "The action isn't supported in this Region."), "UnsupportedCommandException (HTTP 400)", false, "UnsupportedCommandException"},
	}...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, _ := pubFetch(t, tt.handler)
			if f.Err == nil {
				t.Fatalf("Fetch = %+v, want an error", f)
			}
			msg := f.Err.Error()
			if !strings.Contains(msg, tt.text) || !strings.Contains(msg, "ecr public get authorization token (ECR Public public.ecr.aws in us-east-1)") {
				t.Errorf("error %q does not say %q naming the source", msg, tt.text)
			}
			if got := pubTemporary(f.Err); got != tt.temporary {
				t.Errorf("temporary = %v, want %v (%s)", got, tt.temporary, msg)
			}
			if got := pubCode(f.Err); got != tt.code {
				t.Errorf("code = %q, want %q", got, tt.code)
			}
		})
	}
	t.Run("ServerGone", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		src, _ := pubSource(pubClient(srv.URL, "us-east-1"))
		f := src.Fetch(t.Context())
		if f.Err == nil || !pubTemporary(f.Err) || pubCode(f.Err) != "network" || !strings.Contains(f.Err.Error(), src.Label()) {
			t.Errorf("Fetch from a closed server = %v; want a temporary network error naming the source", f.Err)
		}
	})
}

// A server echoing what it was sent (the signed request, a token) reaches no
// error or log line.
func TestPublicSource_Errors_NeverEchoSecrets(t *testing.T) {
	t.Parallel()
	const token = "ECHOED-PUBLIC-PASSWORD"
	var sawAuth string
	f, log := pubFetch(t, func(w http.ResponseWriter, r *http.Request) {
		sawAuth = r.Header.Get("Authorization")
		ecrtest.WriteError(w, 400, "AccessDeniedException", "request "+sawAuth+" secret "+pubAWSSecret+" token "+pubB64("AWS:"+token)+" Bearer "+token)
	})
	if f.Err == nil || sawAuth == "" {
		t.Fatalf("Fetch = %+v, want an error from a signed request", f)
	}
	sig := sawAuth[strings.LastIndex(sawAuth, "Signature=")+len("Signature="):]
	pubNoLeak(t, f.Err.Error()+log.String(), token, pubAWSSecret, sig)
}

// Missing AWS credentials are explained in full at the first failure and in a
// line after, as for ECR: the two sources share how they say it.
func TestPublicSource_MissingCredentials(t *testing.T) {
	t.Parallel()
	missing := &ecrsource.MissingCredentialsError{Tried: []string{"environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set"}}
	src, _ := pubSource(publicFunc(func(context.Context) (*ecrpublic.GetAuthorizationTokenOutput, error) {
		return nil, missing
	}))
	first, second := src.Fetch(t.Context()).Err, src.Fetch(t.Context()).Err
	if first == nil || !strings.Contains(first.Error(), "tried environment: AWS_ACCESS_KEY_ID") || pubTemporary(first) || pubCode(first) != "NoCredentials" {
		t.Errorf("first failure %v: want the full explanation, permanent, NoCredentials", first)
	}
	if second == nil || !strings.Contains(second.Error(), "logged at the first failure") || strings.Contains(second.Error(), "tried ") {
		t.Errorf("second failure %v: want the one-line reminder", second)
	}
}

// publicFunc is a PublicAPI answering through a function.
type publicFunc func(context.Context) (*ecrpublic.GetAuthorizationTokenOutput, error)

func (f publicFunc) GetAuthorizationToken(ctx context.Context, _ *ecrpublic.GetAuthorizationTokenInput, _ ...func(*ecrpublic.Options)) (*ecrpublic.GetAuthorizationTokenOutput, error) {
	return f(ctx)
}

func pubB64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func pubTemporary(err error) bool {
	var te interface{ Temporary() bool }
	return errors.As(err, &te) && te.Temporary()
}

func pubCode(err error) string {
	var c interface{ ErrorCode() string }
	if errors.As(err, &c) {
		return c.ErrorCode()
	}
	return ""
}

func pubNoLeak(t *testing.T, out string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && (strings.Contains(out, s) || strings.Contains(out, pubB64("AWS:"+s))) {
			t.Errorf("output holds a secret %q:\n%s", s, out)
		}
	}
}
