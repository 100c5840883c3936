package refresher

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher/ecrtest"
)

const (
	hostA = "111122223333.dkr.ecr.us-east-1.amazonaws.com"
	hostB = "444455556666.dkr.ecr.us-east-1.amazonaws.com"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func TestDecodeToken(t *testing.T) {
	t.Parallel()
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name, in, user, pw, err string
	}{
		{name: "Plain", in: b64("AWS:secret"), user: "AWS", pw: "secret"},
		{name: "ColonInPassword", in: b64("AWS:a:b:c"), user: "AWS", pw: "a:b:c"},
		{name: "Long", in: b64("AWS:" + strings.Repeat("x", 3500)), user: "AWS", pw: strings.Repeat("x", 3500)},
		{name: "NotBase64", in: "!!!notb64", err: "not base64"},
		{name: "NoColon", in: b64("AWSsecret"), err: "no user:password separator"},
		{name: "EmptyUser", in: b64(":secret"), err: "empty user"},
		{name: "EmptyPassword", in: b64("AWS:"), err: "empty password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user, pw, err := decodeToken(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), tt.in) {
					t.Errorf("error prints the token: %v", err)
				}
				return
			}
			if err != nil || user != tt.user || pw != tt.pw {
				t.Errorf("decodeToken = %q, %q, %v", user, pw, err)
			}
		})
	}
}

func TestNormalizeHost(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want, err string }{
		{in: "https://111122223333.dkr.ecr.us-east-1.amazonaws.com", want: hostA},
		{in: "111122223333.dkr.ecr.us-east-1.amazonaws.com", want: hostA},
		{in: "HTTP://111122223333.DKR.ECR.us-east-1.amazonaws.com/", want: hostA},
		{in: "  " + hostA + "/v2/  ", want: hostA},
		{in: hostA + ".", want: hostA},
		{in: "registry.example.com:5000", want: "registry.example.com:5000"},
		{in: "10.0.0.5:5000", want: "10.0.0.5:5000"},
		{in: "my_registry:5000/x", want: "my_registry:5000"},
		{in: "localhost:5000", want: "localhost:5000"},
		{in: "https://[::1]:5000/v2", want: "[::1]:5000"},
		{in: "", err: "no host"},
		{in: "https://", err: "no host"},
		{in: "http://[bad", err: "not a URL"},
		{in: "my_registry:port", err: "invalid port"},
		{in: "host:", err: "invalid port"},
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
		{in: "Host.:05000", want: "host:5000"},
		{in: "[0:0::1]:443", want: "[::1]:443"},
	}
	for _, tt := range tests {
		got, err := NormalizeHost(tt.in)
		if err == nil {
			if again, err := NormalizeHost(got); err != nil || again != got {
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

func TestClampExpiry(t *testing.T) {
	t.Parallel()
	now := t0
	tests := []struct {
		name    string
		exp     *time.Time
		want    time.Time
		clamped bool
	}{
		{"Normal", aws.Time(now.Add(12 * time.Hour)), now.Add(12 * time.Hour), false},
		{"Short", aws.Time(now.Add(time.Hour)), now.Add(time.Hour), false},
		{"Past", aws.Time(time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)), now.Add(TokenLifetime), true},
		{"Now", aws.Time(now), now.Add(TokenLifetime), true},
		{"FarFuture", aws.Time(now.Add(48 * time.Hour)), now.Add(TokenLifetime), true},
		{"Missing", nil, now.Add(TokenLifetime), true},
	}
	for _, tt := range tests {
		got, clamped := clampExpiry(tt.exp, now)
		if !got.Equal(tt.want) || clamped != tt.clamped {
			t.Errorf("%s: clampExpiry = %v, %v, want %v, %v", tt.name, got, clamped, tt.want, tt.clamped)
		}
	}
}

// sdkClient is the real ECR client pointed at a local handler, without retries
// so fault tests stay fast.
func sdkClient(t *testing.T, h http.Handler) *ecr.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return ecr.New(ecr.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(srv.URL),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDTEST", "aws-secret-DO-NOT-LEAK", ""),
		RetryMaxAttempts: 1,
	})
}

// TestSource_Fetch drives the real SDK against the ECR stand-in and the spec's fixtures.
func TestSource_Fetch(t *testing.T) {
	t.Parallel()
	fake := ecrtest.New("999988887777", "us-east-1")
	fake.Now = func() time.Time { return t0 }
	src := Source{Region: "us-east-1", RegistryIDs: []string{"111122223333", "444455556666"}, Client: sdkClient(t, fake)}
	toks, bad, err := fetchOld(src, t.Context(), t0)
	if err != nil || len(bad) > 0 {
		t.Fatalf("fetch: %v %v", err, bad)
	}
	want := []Token{
		{Host: hostA, ECRHost: hostA, RegistryID: "111122223333", Region: "us-east-1", Username: "AWS", Password: fake.Password("111122223333"), FetchedAt: t0, ExpiresAt: t0.Add(12 * time.Hour)},
		{Host: hostB, ECRHost: hostB, RegistryID: "444455556666", Region: "us-east-1", Username: "AWS", Password: fake.Password("444455556666"), FetchedAt: t0, ExpiresAt: t0.Add(12 * time.Hour)},
	}
	if d := cmp.Diff(want, toks, cmp.AllowUnexported(Token{})); d != "" {
		t.Errorf("tokens (-want +got):\n%s", d)
	}

	// No ids: the caller's own registry.
	src.RegistryIDs = nil
	toks, _, err = fetchOld(src, t.Context(), t0)
	if err != nil || len(toks) != 1 || toks[0].RegistryID != "999988887777" {
		t.Errorf("default registry: %+v, %v", toks, err)
	}
}

func TestSource_Fetch_Fixture(t *testing.T) {
	t.Parallel()
	ok, err := os.ReadFile("testdata/get-authorization-token-ok.json")
	if err != nil {
		t.Fatal(err)
	}
	src := Source{Region: "us-east-1", RegistryIDs: []string{"111122223333", "444455556666"}, Client: sdkClient(t,
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			_, _ = w.Write(ok)
		}))}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	toks, bad, err := fetchOld(src, t.Context(), now)
	if err != nil || len(bad) > 0 || len(toks) != 2 {
		t.Fatalf("fetch: %+v %v %v", toks, bad, err)
	}
	if toks[1].Password != "FAKE-ECR-PASSWORD-444455556666-v1" || toks[1].Host != hostB {
		t.Errorf("token = %+v", toks[1])
	}
	if want := time.Date(2026, 1, 1, 12, 0, 0, 557e6, time.UTC); !toks[0].ExpiresAt.Equal(want) || toks[0].Clamped {
		t.Errorf("expiresAt = %v, want %v from the fixture", toks[0].ExpiresAt, want)
	}
}

// TestSource_Fetch_Errors checks what an operator sees for each ECR failure, and
// that no AWS secret is in it.
func TestSource_Fetch_Errors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		code   string
		msg    string
		check  func(error) bool
	}{
		{"Throttling", 400, "ThrottlingException", "Rate exceeded", func(err error) bool {
			var ae smithy.APIError
			return errors.As(err, &ae) && ae.ErrorCode() == "ThrottlingException"
		}},
		{"AccessDenied", 400, "AccessDeniedException", "User: arn:aws:iam::111122223333:user/x is not authorized to perform: ecr:GetAuthorizationToken on resource: *", nil},
		{"InvalidParameter", 400, "InvalidParameterException", fixtureMessage(t, "testdata/get-authorization-token-error.json"), func(err error) bool {
			var ip *types.InvalidParameterException
			return errors.As(err, &ip)
		}},
		{"Server", 500, "ServerException", "boom", func(err error) bool {
			var se *types.ServerException
			return errors.As(err, &se)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := Source{Region: "us-east-1", RegistryIDs: []string{"111122223333"}, Client: sdkClient(t,
				http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ecrtest.WriteError(w, tt.status, tt.code, tt.msg) }))}
			_, _, err := fetchOld(src, t.Context(), t0)
			if err == nil || !strings.Contains(err.Error(), tt.code) || !strings.Contains(err.Error(), "111122223333") {
				t.Fatalf("err = %v, want %s naming the registry", err, tt.code)
			}
			if tt.check != nil && !tt.check(err) {
				t.Errorf("err = %T %v, not the typed error", err, err)
			}
			if strings.Contains(err.Error(), "aws-secret-DO-NOT-LEAK") {
				t.Errorf("error leaks the AWS secret key")
			}
		})
	}
}

func TestSource_Fetch_Garbage(t *testing.T) {
	t.Parallel()
	tests := map[string]http.HandlerFunc{
		"GarbageJSON": func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{"authorizationData":[{`)) },
		"HTMLGateway": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(502)
			_, _ = w.Write([]byte("<html>bad gateway</html>"))
		},
		"ISODate": func(w http.ResponseWriter, r *http.Request) {
			_, _ = fmt.Fprintf(w, `{"authorizationData":[{"authorizationToken":"QVdTOng=","expiresAt":"2026-01-01T00:00:00Z","proxyEndpoint":"https://%s"}]}`, hostA)
		},
	}
	for name, h := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src := Source{Region: "us-east-1", Client: sdkClient(t, h)}
			if toks, _, err := fetchOld(src, t.Context(), t0); err == nil {
				t.Errorf("fetch = %+v, want an error", toks)
			}
		})
	}
}

func TestSource_Fetch_MissingEntry(t *testing.T) {
	t.Parallel()
	src := Source{Region: "us-east-1", RegistryIDs: []string{"111122223333", "444455556666"}, Client: ecrtest.Static(t0.Add(12*time.Hour), ecrtest.Login{Host: hostA, Password: "pw-A"})}
	toks, bad, err := fetchOld(src, t.Context(), t0)
	if err != nil || len(toks) != 1 || len(bad) != 1 || !strings.Contains(bad[0].Error(), "no token for registry 444455556666") {
		t.Errorf("fetch = %+v, %v, %v", toks, bad, err)
	}
}

func TestToken_String(t *testing.T) {
	t.Parallel()
	tok := Token{Host: hostA, Username: "AWS", Password: "pw-secret"}
	s := fmt.Sprintf("%v %+v %#v %s", tok, tok, tok, tok)
	if strings.Contains(s, "pw-secret") {
		t.Errorf("formatted token leaks the password: %s", s)
	}
}

func fixtureMessage(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Message string }
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatal(err)
	}
	return body.Message
}

// TestPermanent: errors retrying soon will not fix wait RETRY_MAX_INTERVAL;
// the rest back off from the short end. ECR errors go through the real SDK.
func TestPermanent(t *testing.T) {
	t.Parallel()
	ecrErr := func(status int, code string) error {
		src := Source{Region: "us-east-1", Client: sdkClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ecrtest.WriteError(w, status, code, "m")
		}))}
		_, _, err := fetchOld(src, t.Context(), t0)
		return err
	}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"ECRThrottling", ecrErr(400, "ThrottlingException"), false},
		{"ECRServer", ecrErr(500, "ServerException"), false},
		{"ECRUnavailable", ecrErr(503, "ServiceUnavailable"), false},
		{"ECRAccessDenied", ecrErr(400, "AccessDeniedException"), true},
		{"ECRInvalidParameter", ecrErr(400, "InvalidParameterException"), true},
		{"ECRUnknownClient", ecrErr(403, "UnrecognizedClientException"), true},
		{"RancherConflict", &rancherapi.Error{StatusCode: 409}, false},
		{"RancherUnauthorized", &rancherapi.Error{StatusCode: 401}, true},
		{"RancherServerGone", &rancherapi.Error{Err: errors.New("connection refused")}, false},
		{"MarkedPermanent", fmt.Errorf("x: %w", Permanent(errors.New("no registry for this host"))), true},
		{"Malformed", fmt.Errorf("%w: no colon", errMalformed), true},
		{"Deadline", context.DeadlineExceeded, false},
	}
	for _, tt := range tests {
		if got := permanent(tt.err); got != tt.want {
			t.Errorf("%s: permanent(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

// fetchOld is fetch's answer as three values.
func fetchOld(s Source, ctx context.Context, now time.Time) ([]Token, []error, error) {
	f := s.fetch(ctx, now)
	return f.toks, f.bad, f.err
}
