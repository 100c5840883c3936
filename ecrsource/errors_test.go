package ecrsource_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/ecrsource/ecrtest"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func asTemporary(err error, te *interface{ Temporary() bool }) bool { return errors.As(err, te) }

// fetchErr is the error of one fetch through the real SDK from a server
// answering with h.
func fetchErr(t *testing.T, h http.HandlerFunc) error {
	t.Helper()
	src, _ := newSource(sdkClient(t, h), idA)
	f := src.Fetch(t.Context())
	if f.Err == nil {
		t.Fatalf("Fetch = %+v, want an error", f)
	}
	return f.Err
}

func ecrError(status int, code, msg string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { ecrtest.WriteError(w, status, code, msg) }
}

// errorCase is an answer of ECR's or ECR Public's API and what the error
// says of it: text in the error, whether retrying soon can help, the code the
// ecr_errors_total metric counts.
type errorCase struct {
	name      string
	handler   http.HandlerFunc
	text      string
	temporary bool
	code      string
}

// commonErrors are the answers ECR and ECR Public give alike.
func commonErrors() []errorCase {
	return []errorCase{
		{"Throttling", ecrError(400, "ThrottlingException", "Rate exceeded"), "ThrottlingException (HTTP 400): Rate exceeded", true, "ThrottlingException"},
		{"Server", ecrError(500, "ServerException", "boom"), "ServerException (HTTP 500): boom", true, "ServerException"},
		{"Unavailable", ecrError(503, "ServiceUnavailable", ""), "ServiceUnavailable (HTTP 503)", true, "ServiceUnavailable"},
		{"InvalidParameter", ecrError(400, "InvalidParameterException", "bad"), "InvalidParameterException (HTTP 400)", false, "InvalidParameterException"},
		{"HTMLGateway", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(502)
			_, _ = w.Write([]byte("<html>Bad Gateway</html>"))
		}, "the answer is not ECR's JSON (HTTP 502)", true, "other"},
	}
}

// Each ECR failure, through the real SDK: what an operator reads (the code,
// the status, the registries asked for), whether retrying soon can help
// (what the SDK itself retries, 5xx, 429 and network trouble can; other 4xx
// cannot), and the code the ecr_errors_total metric counts.
func TestSource_Errors(t *testing.T) {
	t.Parallel()
	tests := append(commonErrors(), []errorCase{
		{"TooManyRequests", ecrError(429, "TooManyRequestsException", "slow down"), "TooManyRequestsException (HTTP 429)", true, "TooManyRequestsException"},
		{"Unknown429", ecrError(429, "SlowDownPlease", "slow down"), "SlowDownPlease (HTTP 429)", true, "SlowDownPlease"},
		{"Namespaced", ecrError(400, "com.amazonaws.ecr#ThrottlingException", "Rate exceeded"), "ThrottlingException (HTTP 400)", true, "ThrottlingException"},
		{"AccessDenied", ecrError(400, "AccessDeniedException", "User: arn:aws:iam::111122223333:user/x is not authorized to perform: ecr:GetAuthorizationToken on resource: *"),
			"AccessDeniedException (HTTP 400): User: arn:aws:iam::111122223333:user/x is not authorized", false, "AccessDeniedException"},
		{"UnrecognizedClient", ecrError(403, "UnrecognizedClientException", "The security token included in the request is invalid."), "UnrecognizedClientException (HTTP 403)", false, "UnrecognizedClientException"},
		{"GarbageJSON", raw(`{"authorizationData":[{`), "not ECR's JSON", true, "other"},
		{"ISODate", raw(`{"authorizationData":[{"authorizationToken":"QVdTOng=","expiresAt":"2026-01-01T00:00:00Z","proxyEndpoint":"https://` + hostA + `"}]}`),
			"not ECR's JSON", true, "other"},
		{"WeirdCode", ecrError(400, "Bad Code <script>", "m"), "(HTTP 400)", false, "other"},
	}...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := fetchErr(t, tt.handler)
			if !strings.Contains(err.Error(), tt.text) || !strings.Contains(err.Error(), "registries 111122223333 in us-east-1") {
				t.Errorf("error %q does not say %q naming the registries", err, tt.text)
			}
			var te interface{ Temporary() bool }
			if !errors.As(err, &te) || te.Temporary() != tt.temporary {
				t.Errorf("Temporary() = %v, want %v (%v)", te != nil && te.Temporary(), tt.temporary, err)
			}
			var c interface{ ErrorCode() string }
			if !errors.As(err, &c) {
				t.Fatalf("no ErrorCode in %v", err)
			}
			if tt.code != "" && c.ErrorCode() != tt.code {
				t.Errorf("ErrorCode() = %q, want %q", c.ErrorCode(), tt.code)
			}
			if strings.Contains(err.Error(), awsSecret) || strings.Contains(err.Error(), "Signature=") {
				t.Errorf("the error leaks the AWS secret or the signature: %v", err)
			}
		})
	}
}

// The SDK's typed errors stay reachable through the source's error.
func TestSource_Errors_Typed(t *testing.T) {
	t.Parallel()
	var ip *types.InvalidParameterException
	if err := fetchErr(t, ecrError(400, "InvalidParameterException", "bad id")); !errors.As(err, &ip) {
		t.Errorf("%T %v is not an InvalidParameterException", err, err)
	}
	var se *types.ServerException
	if err := fetchErr(t, ecrError(500, "ServerException", "boom")); !errors.As(err, &se) {
		t.Errorf("%T %v is not a ServerException", err, err)
	}
}

// A server that is gone, and one that does not answer in time: temporary,
// counted as network and timeout.
func TestSource_Errors_Network(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	client := ecr.New(ecr.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", awsSecret, "")})
	src, _ := newSource(client, idA)
	check := func(name string, err error, code string) {
		t.Helper()
		var te interface{ Temporary() bool }
		var c interface{ ErrorCode() string }
		if err == nil || !errors.As(err, &te) || !te.Temporary() || !errors.As(err, &c) || c.ErrorCode() != code {
			t.Errorf("%s: err = %v, want a temporary %s failure", name, err, code)
		}
	}
	check("Gone", src.Fetch(t.Context()).Err, "network")

	src, _ = newSource(sdkClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // so the server notices when the client hangs up
		<-r.Context().Done()               // answers only when the client gives up
	})), idA)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	err := src.Fetch(ctx).Err
	check("Timeout", err, "timeout")
	if !strings.Contains(fmt.Sprint(err), "timed out") {
		t.Errorf("a timeout reads %q", err)
	}
}

// A server that echoes what it was sent, or answers garbage holding a token:
// no password, token, secret key or signature reaches the error or the log,
// and the error stays short.
func TestSource_Errors_NeverEchoSecrets(t *testing.T) {
	t.Parallel()
	const password = "eyJwYXlsb2FkIjoiU0VDUkVULUVDUi1QQVNTV09SRC1ETy1OT1QtTEVBSyJ9"
	token := b64("AWS:" + password)
	tests := map[string]http.HandlerFunc{
		"EchoedMessage": func(w http.ResponseWriter, r *http.Request) {
			ecrtest.WriteError(w, 400, "ValidationException", "bad request: "+r.Header.Get("Authorization")+" token "+token+" password "+password)
		},
		"HugeMessage": func(w http.ResponseWriter, r *http.Request) {
			ecrtest.WriteError(w, 400, "ValidationException", strings.Repeat("x ", 450<<10)+token)
		},
		"GarbageWithToken": raw(fmt.Sprintf(`{"authorizationData":[{"authorizationToken":"%s","expiresAt":"%s","proxyEndpoint":"%s"`, token, token, password)),
		"WrongTypes": raw(fmt.Sprintf(`{"authorizationData":[{"authorizationToken":"%s","expiresAt":"%s %s","proxyEndpoint":{"%s":1}}]}`,
			token, password, token, password)),
		"HTMLWithToken": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(502)
			fmt.Fprintf(w, "<html>%s %s</html>", token, password)
		},
		"EchoedCode":          ecrError(400, password, "m"),
		"ProxyEndpointSecret": answering(t0.Add(12*time.Hour), ecrtest.Login{Host: password + ".example.com", Password: "pw"}),
	}
	for name, h := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src, log := newSource(sdkClient(t, h), idA)
			f := src.Fetch(t.Context())
			err := errors.Join(append(f.Problems, f.Err)...)
			if err == nil {
				t.Fatal("a hostile answer was accepted")
			}
			for what, out := range map[string]string{"error": err.Error(), "log": log.String()} {
				for _, sec := range []string{password, token, password[:32], awsSecret} {
					if strings.Contains(out, sec) {
						t.Errorf("%s holds a secret %q:\n%.2000s", what, sec, out)
					}
				}
				if strings.Contains(out, "Signature=") {
					t.Errorf("%s holds the request signature:\n%.2000s", what, out)
				}
			}
			if len(err.Error()) > 400 {
				t.Errorf("error is %d bytes: %.400s", len(err.Error()), err)
			}
		})
	}
}

// A huge answer (an 8 MB proxyEndpoint, an 8 MB token) is refused in a few
// bounded words: nothing of it is quoted at length.
func TestSource_HugeAnswer(t *testing.T) {
	t.Parallel()
	huge := strings.Repeat("a", 8<<20)
	src, log := newSource(sdkClient(t, raw(fmt.Sprintf(`{"authorizationData":[{"authorizationToken":%q,"expiresAt":%d,"proxyEndpoint":"https://%s"},`+
		`{"authorizationToken":%q,"expiresAt":%d,"proxyEndpoint":"https://%s"}]}`,
		b64("AWS:pw"), t0.Add(12*time.Hour).Unix(), huge, huge, t0.Add(12*time.Hour).Unix(), hostA))), idA)
	f := src.Fetch(t.Context())
	if f.Err != nil || len(f.Tokens) != 0 || len(f.Problems) != 1 {
		t.Fatalf("Fetch = %d tokens, %d problems, %v; want the malformed token's problem only", len(f.Tokens), len(f.Problems), f.Err)
	}
	if n := len(f.Problems[0].Error()); n > 400 {
		t.Errorf("the problem is %d bytes", n)
	}
	if n := len(log.String()); n > 2<<10 {
		t.Errorf("the log is %d bytes for one answer", n)
	}
}
