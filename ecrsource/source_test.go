package ecrsource_test

import (
	"context"
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
	"github.com/google/go-cmp/cmp"
	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/ecrsource"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/ecrsource/ecrtest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/logbuf"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

const (
	idA       = "111122223333"
	idB       = "444455556666"
	hostA     = idA + ".dkr.ecr.us-east-1.amazonaws.com"
	hostB     = idB + ".dkr.ecr.us-east-1.amazonaws.com"
	awsSecret = "aws-secret-DO-NOT-LEAK"
)

var t0 = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

// sdkClient is the real ECR client on a local handler, without retries so
// fault tests stay fast.
func sdkClient(t *testing.T, h http.Handler) *ecr.Client {
	t.Helper()
	return ecr.New(ecr.Options{Region: "us-east-1", BaseEndpoint: aws.String(serve(t, h)), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", awsSecret, "")})
}

// serve serves h on loopback until the test ends and returns its URL.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// logger is a debug-level logger writing into buf.
func logger(buf *logbuf.Buffer) *logrus.Logger {
	l := logrus.New()
	l.SetOutput(buf)
	l.SetLevel(logrus.DebugLevel)
	return l
}

// newSource is a source in us-east-1 asking for ids through client, on a
// clock stopped at t0, logging into the returned buffer.
func newSource(client ecrsource.API, ids ...string) (*ecrsource.Source, *logbuf.Buffer) {
	log := &logbuf.Buffer{}
	return &ecrsource.Source{Client: client, AWSRegion: "us-east-1", RegistryIDs: ids, Logger: logger(log),
		Now: func() time.Time { return t0 }}, log
}

// nopTarget plans nothing: for refresher runs that only fetch.
type nopTarget struct{}

func (nopTarget) Plan(context.Context, refresher.Input) (refresher.Plan, error) {
	return refresher.Plan{}, nil
}

// answering is a handler answering every call with logins expiring at exp.
func answering(exp time.Time, logins ...ecrtest.Login) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { ecrtest.WriteAnswer(w, exp, logins...) }
}

// raw is a handler answering every call with body, as ECR's JSON.
func raw(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = w.Write([]byte(body))
	}
}

// The real SDK against the ECR stand-in: one token per id asked for, decoded,
// with ECR's expiry; with no id, the caller's own registry.
func TestSource_Fetch(t *testing.T) {
	t.Parallel()
	fake := ecrtest.New("999988887777", "us-east-1")
	fake.Now = func() time.Time { return t0 }
	src, log := newSource(sdkClient(t, fake), idA, idB)
	src.Identity = "arn:aws:iam::111122223333:role/team-a"
	f := src.Fetch(t.Context())
	if f.Err != nil || len(f.Problems) > 0 {
		t.Fatalf("Fetch: %v %v", f.Err, f.Problems)
	}
	want := []refresher.Token{
		{Host: hostA, ECRHost: hostA, RegistryID: idA, Region: "us-east-1", Username: "AWS", Password: fake.Password(idA),
			FetchedAt: t0, ExpiresAt: t0.Add(12 * time.Hour), Identity: src.Identity},
		{Host: hostB, ECRHost: hostB, RegistryID: idB, Region: "us-east-1", Username: "AWS", Password: fake.Password(idB),
			FetchedAt: t0, ExpiresAt: t0.Add(12 * time.Hour), Identity: src.Identity},
	}
	if d := cmp.Diff(want, f.Tokens); d != "" {
		t.Errorf("tokens (-want +got):\n%s", d)
	}
	if log.String() != "" {
		t.Errorf("a clean answer logged:\n%s", log)
	}
	if got, want := src.Label(), "registries 111122223333,444455556666 in us-east-1 as "+src.Identity; got != want {
		t.Errorf("Label() = %q, want %q", got, want)
	}

	src, _ = newSource(sdkClient(t, fake)) // no ids: the caller's own registry
	f = src.Fetch(t.Context())
	if f.Err != nil || len(f.Tokens) != 1 || f.Tokens[0].RegistryID != "999988887777" {
		t.Errorf("default registry: %+v, %v, %v", f.Tokens, f.Problems, f.Err)
	}
	if got := src.Label(); got != "default registry in us-east-1" {
		t.Errorf("Label() = %q", got)
	}
}

// The spec's exact answer body: ECR's exponent-form expiresAt is taken as is.
func TestSource_Fetch_Fixture(t *testing.T) {
	t.Parallel()
	body, err := os.ReadFile("testdata/get-authorization-token-ok.json")
	if err != nil {
		t.Fatal(err)
	}
	src, log := newSource(sdkClient(t, raw(string(body))), idA, idB)
	src.Now = func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
	f := src.Fetch(t.Context())
	if f.Err != nil || len(f.Problems) > 0 || len(f.Tokens) != 2 {
		t.Fatalf("Fetch: %+v", f)
	}
	if got := f.Tokens[1]; got.Password != "FAKE-ECR-PASSWORD-444455556666-v1" || got.Host != hostB {
		t.Errorf("token = %v", got)
	}
	if want := time.Date(2026, 1, 1, 12, 0, 0, 557e6, time.UTC); !f.Tokens[0].ExpiresAt.Equal(want) {
		t.Errorf("expiresAt = %v, want %v from the fixture", f.Tokens[0].ExpiresAt, want)
	}
	if log.String() != "" {
		t.Errorf("a plausible expiry was warned about:\n%s", log)
	}
}

// An expiresAt in the past (moto's 2015-01-01), now, missing, or more than 12h
// ahead is taken as 12h from the fetch, with one warning per host however
// often it comes back.
func TestSource_Fetch_ClampsExpiry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    time.Time
		warns   int
	}{
		{"Plausible", answering(t0.Add(11*time.Hour), ecrtest.Login{Host: hostA, Password: "pw-A"}), t0.Add(11 * time.Hour), 0},
		{"Short", answering(t0.Add(time.Minute), ecrtest.Login{Host: hostA, Password: "pw-A"}), t0.Add(time.Minute), 0},
		{"Moto", answering(time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC), ecrtest.Login{Host: hostA, Password: "pw-A"}), t0.Add(12 * time.Hour), 1},
		{"Now", answering(t0, ecrtest.Login{Host: hostA, Password: "pw-A"}), t0.Add(12 * time.Hour), 1},
		{"FarFuture", answering(t0.Add(48*time.Hour), ecrtest.Login{Host: hostA, Password: "pw-A"}), t0.Add(12 * time.Hour), 1},
		{"Missing", raw(`{"authorizationData":[{"authorizationToken":"QVdTOnB3LUE=","proxyEndpoint":"https://` + hostA + `"}]}`), t0.Add(12 * time.Hour), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src, log := newSource(sdkClient(t, tt.handler), idA)
			for range 3 {
				f := src.Fetch(t.Context())
				if f.Err != nil || len(f.Tokens) != 1 || !f.Tokens[0].ExpiresAt.Equal(tt.want) {
					t.Fatalf("Fetch = %+v, want one token expiring at %v", f, tt.want)
				}
			}
			if got := strings.Count(log.String(), "assuming a 12h token"); got != tt.warns {
				t.Errorf("%d warnings in three fetches, want %d:\n%s", got, tt.warns, log)
			}
		})
	}
}

// Only the registries asked for are returned: a foreign or look-alike
// proxyEndpoint never, 1,000 entries not asked for give nothing, one host
// repeated 1,000 times gives one token. One bounded line says what was skipped.
func TestSource_Fetch_OnlyWhatWasAskedFor(t *testing.T) {
	t.Parallel()
	many := func(n int, host func(i int) string) []ecrtest.Login {
		var es []ecrtest.Login
		for i := range n {
			es = append(es, ecrtest.Login{Host: host(i), Password: fmt.Sprintf("pw-%d", i)})
		}
		return es
	}
	accounts := many(1000, func(i int) string { return fmt.Sprintf("%012d.dkr.ecr.us-east-1.amazonaws.com", 500000000000+i) })
	tests := []struct {
		name    string
		ids     []string // none: the caller's own registry
		entries []ecrtest.Login
		skipped string // in the one warning line
	}{
		{"ForeignEndpoint", []string{idA}, []ecrtest.Login{{Host: "index.docker.io", Password: "pw-hub"}, {Host: hostA, Password: "pw-A"}},
			"1 entries not asked for (e.g. index.docker.io)"},
		{"LookAlikes", []string{idA}, []ecrtest.Login{{Host: hostA + ".evil.example.com", Password: "pw-evil"},
			{Host: idA + ".dkr.ecr.eu-west-1.amazonaws.com", Password: "pw-eu"}, {Host: "bad host", Password: "pw-bad"},
			{Host: hostA, Password: "pw-A"}}, "3 entries not asked for"},
		{"ThousandAccounts", []string{idA}, append([]ecrtest.Login{{Host: hostA, Password: "pw-A"}}, accounts...), "1000 entries not asked for"},
		{"ThousandAccountsDefaultRegistry", nil, append([]ecrtest.Login{{Host: hostA, Password: "pw-A"}}, accounts...), "1000 entries not asked for"},
		{"SameHostThousandTimes", []string{idA}, append([]ecrtest.Login{{Host: hostA, Password: "pw-A"}}, many(999, func(int) string { return hostA })...),
			"999 repeated hosts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src, log := newSource(sdkClient(t, answering(t0.Add(12*time.Hour), tt.entries...)), tt.ids...)
			f := src.Fetch(t.Context())
			if f.Err != nil || len(f.Problems) > 0 {
				t.Fatalf("Fetch: %v %v", f.Err, f.Problems)
			}
			if len(f.Tokens) != 1 || f.Tokens[0].Host != hostA || f.Tokens[0].Password != "pw-A" {
				t.Errorf("tokens = %v, want only %s's first entry", f.Tokens, hostA)
			}
			out := log.String()
			if got := strings.Count(out, "ecr answered entries that were not asked for"); got != 1 {
				t.Errorf("%d warnings about skipped entries, want 1:\n%s", got, out)
			}
			if !strings.Contains(out, tt.skipped) {
				t.Errorf("the warning does not say %q:\n%s", tt.skipped, out)
			}
			if len(out) > 2<<10 {
				t.Errorf("the warning is %d bytes: skipped entries are not summarised", len(out))
			}
			if strings.Contains(out, "pw-") {
				t.Errorf("the warning holds a password:\n%s", out)
			}
		})
	}
}

// An id asked for with no entry, or an answer with none at all, is a problem
// of the fetch; what did come back is still used.
func TestSource_Fetch_Missing(t *testing.T) {
	t.Parallel()
	src, _ := newSource(ecrtest.Static(t0.Add(12*time.Hour), ecrtest.Login{Host: hostA, Password: "pw-A"}), idA, idB)
	f := src.Fetch(t.Context())
	if f.Err != nil || len(f.Tokens) != 1 || len(f.Problems) != 1 || !strings.Contains(f.Problems[0].Error(), "ecr returned no token for registry 444455556666 in us-east-1") {
		t.Errorf("Fetch = %+v", f)
	}
	for name, body := range map[string]string{"Null": `{"authorizationData":null}`, "Empty": `{}`, "NoBody": ``} {
		src, _ := newSource(sdkClient(t, raw(body)))
		f := src.Fetch(t.Context())
		if f.Err != nil || len(f.Tokens) != 0 || len(f.Problems) != 1 || !strings.Contains(f.Problems[0].Error(), "ecr returned no token (default registry in us-east-1)") {
			t.Errorf("%s: Fetch = %+v", name, f)
		}
	}
}

// A token that does not decode fails its host alone, saying why and quoting
// nothing of it; the other host's token is used. Tokens the size of session
// credentials' (2,400-3,500 characters, colons included) come through whole.
func TestSource_Fetch_Tokens(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("eyJwYXlsb2FkIjoi:", 220)[:3500]
	bad := "QVdTbm9jb2xvblNFQ1JFVElTSA==" // base64 of "AWSnocolonSECRETISH"
	body := fmt.Sprintf(`{"authorizationData":[{"authorizationToken":%q,"expiresAt":%d,"proxyEndpoint":"https://%s"},`+
		`{"authorizationToken":%q,"expiresAt":%d,"proxyEndpoint":"https://%s"}]}`,
		bad, t0.Add(12*time.Hour).Unix(), hostA, b64("AWS:"+long), t0.Add(12*time.Hour).Unix(), hostB)
	src, _ := newSource(sdkClient(t, raw(body)), idA, idB)
	f := src.Fetch(t.Context())
	if f.Err != nil || len(f.Tokens) != 1 || f.Tokens[0].Host != hostB || f.Tokens[0].Password != long {
		t.Fatalf("Fetch = %v %v, want %s's long token whole", f.Tokens, f.Err, hostB)
	}
	if len(f.Problems) != 1 || !strings.Contains(f.Problems[0].Error(), hostA) || !strings.Contains(f.Problems[0].Error(), "no user:password separator") {
		t.Fatalf("problems = %v, want %s's token named as malformed", f.Problems, hostA)
	}
	if p := f.Problems[0].Error(); strings.Contains(p, "SECRETISH") || strings.Contains(p, bad) {
		t.Errorf("the problem quotes the token: %s", p)
	}
	var te interface{ Temporary() bool }
	if !asTemporary(f.Problems[0], &te) || te.Temporary() {
		t.Errorf("a malformed answer is temporary: asking again soon will not fix it")
	}
}

// ECR_PROXY_HOST: tokens are written under the proxy host; ECRHost keeps
// what ECR named.
func TestSource_Fetch_ProxyHost(t *testing.T) {
	t.Parallel()
	src, _ := newSource(ecrtest.Static(t0.Add(12*time.Hour), ecrtest.Login{Host: hostA, Password: "pw-A"}), idA)
	src.ProxyHost = "ecr-proxy.example.com:5000"
	f := src.Fetch(t.Context())
	if f.Err != nil || len(f.Tokens) != 1 || f.Tokens[0].Host != src.ProxyHost || f.Tokens[0].ECRHost != hostA {
		t.Errorf("Fetch = %+v", f)
	}
}
