package refresher_test

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi/ranchertest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher/ecrtest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/cattle"
)

// clock is a fake clock shared by the refresher and the ECR stand-in.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// stand is a Rancher stand-in with an ECR registry (credential "old") and an
// unrelated Docker Hub one, the ECR stand-in reached through the real SDK, and a
// refresher on a fake clock with its metrics.
type stand struct {
	clock   *clock
	ecr     *ecrtest.Server
	rancher *ranchertest.Server
	r       *refresher.Refresher
	m       *refresher.Metrics
	log     *syncBuffer
	cred    string // the ECR registry's credential
	hubCred string
	hc      *http.Client // the Rancher client's
}

func newStand(t *testing.T) *stand { return newStandTimeout(t, 10*time.Second) }

// newStandTimeout is newStand with the Rancher client's per-request timeout.
func newStandTimeout(t *testing.T, timeout time.Duration) *stand {
	t.Helper()
	s := &stand{clock: &clock{now: t0}, log: &syncBuffer{}}
	s.ecr = ecrtest.New("111122223333", "us-east-1")
	s.ecr.Now = s.clock.Now
	ecrSrv := httptest.NewServer(s.ecr)
	t.Cleanup(ecrSrv.Close)
	s.rancher = ranchertest.New(ranchertest.Key{Access: "ak", Secret: rancherKey, Project: project})
	rSrv := httptest.NewServer(s.rancher)
	t.Cleanup(rSrv.Close)

	hub := s.rancher.AddRegistry(project, "index.docker.io", "")
	s.hubCred = s.rancher.AddCredential(project, hub, "someone", "hub-password", "")
	reg := s.rancher.AddRegistry(project, hostA, "")
	s.cred = s.rancher.AddCredential(project, reg, "AWS", "old", "")

	l := logrus.New()
	l.SetOutput(s.log)
	l.SetLevel(logrus.DebugLevel)
	s.hc = &http.Client{Timeout: timeout}
	c, err := rancherapi.NewCattle(rSrv.URL+"/v2-beta/projects/"+project, "ak", rancherKey, s.hc)
	if err != nil {
		t.Fatal(err)
	}
	c.Debugf = l.Debugf
	ecrClient := ecr.New(ecr.Options{Region: "us-east-1", BaseEndpoint: aws.String(ecrSrv.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "aws-secret-DO-NOT-LEAK", "")})
	s.r = refresher.New([]refresher.Source{{Region: "us-east-1", RegistryIDs: []string{"111122223333"}, Client: ecrClient}}, []refresher.Scope{{Name: project, Target: &cattle.Target{Store: c}}})
	s.r.Logger, s.r.Now = l, s.clock.Now
	s.r.Jitter = func(d time.Duration) time.Duration { return d / 2 }
	s.m = refresher.NewMetrics(prometheus.NewRegistry())
	s.r.Metrics = s.m
	return s
}

func (s *stand) secret(t *testing.T, id string) string {
	t.Helper()
	c, ok := s.rancher.Credential(id)
	if !ok {
		t.Fatalf("credential %s gone", id)
	}
	return c.SecretValue
}

// untouched checks that nothing but the ECR credential was ever changed.
func (s *stand) untouched(t *testing.T) {
	t.Helper()
	if c, _ := s.rancher.Credential(s.hubCred); c.SecretValue != "hub-password" || c.Writes != 0 {
		t.Errorf("unrelated credential changed: %+v", c)
	}
	if n := len(s.rancher.Registries(project)); n != 2 {
		t.Errorf("registries = %d, want the 2 it started with", n)
	}
	if n := len(s.rancher.Credentials(project)); n != 2 {
		t.Errorf("credentials = %d, want the 2 it started with", n)
	}
	out := s.log.String()
	for _, sec := range []string{rancherKey, "aws-secret-DO-NOT-LEAK", "hub-password", s.ecr.Password("111122223333")} {
		if sec != "" && strings.Contains(out, sec) {
			t.Errorf("log holds a secret %q", sec)
		}
	}
}

// failN makes the first n matching requests fail through f, then lets them pass.
func failN(n int, match func(*http.Request) bool, f func(http.ResponseWriter, *http.Request)) func(http.ResponseWriter, *http.Request) bool {
	var mu sync.Mutex
	return func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		fail := n > 0 && match(r)
		if fail {
			n--
		}
		mu.Unlock()
		if fail {
			f(w, r)
		}
		return fail
	}
}

func cattleError(status int, code string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"type":"error","status":%d,"code":%q,"message":%q}`, status, code, code)
	}
}

func isPut(r *http.Request) bool { return r.Method == http.MethodPut }
func isList(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/registries")
}
func anyReq(*http.Request) bool { return true }

// TestRefresher_Faults injects one fault at a time: the first run fails and
// keeps the old credential, /readyz says why and /metrics counts it; the retry
// comes after the backoff (soon for transient faults, at RETRY_MAX_INTERVAL for
// ones retrying will not fix) and, the fault gone, writes.
func TestRefresher_Faults(t *testing.T) {
	t.Parallel()
	const minI, maxI = 30 * time.Second, 15 * time.Minute
	tests := []struct {
		name      string
		rancher   func(http.ResponseWriter, *http.Request) bool
		ecr       func(http.ResponseWriter, *http.Request) bool
		wantErr   string
		permanent bool
		timeout   time.Duration
	}{
		{name: "Rancher500", rancher: failN(1, anyReq, cattleError(500, "Internal Server Error")), wantErr: "500 Internal Server Error"},
		{name: "Rancher502HTML", rancher: failN(1, isList, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(502)
			_, _ = w.Write([]byte("<html>Bad Gateway</html>"))
		}), wantErr: "502 Bad Gateway"},
		{name: "ConnectionReset", rancher: failN(1, isList, func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		}), wantErr: "EOF"},
		{name: "SlowPastTimeout", rancher: failN(1, isPut, func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body) // so the server notices when the client hangs up
			<-r.Context().Done()               // answers only when the client gives up
		}), wantErr: "Client.Timeout exceeded", timeout: 100 * time.Millisecond},
		{name: "Unauthorized", rancher: failN(1, anyReq, cattleError(401, "Unauthorized")), wantErr: "401 Unauthorized", permanent: true},
		{name: "ConflictDuringTransition", rancher: failN(1, isPut, cattleError(409, "Conflict")), wantErr: "409 Conflict"},
		{name: "Unprocessable", rancher: failN(1, isPut, cattleError(422, "MaxLengthExceeded")), wantErr: "422 MaxLengthExceeded", permanent: true},
		{name: "GarbageJSON", rancher: failN(1, isList, func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`{"type":"collection","data":[{"id":"1sp`))
		}), wantErr: "not Rancher API JSON", permanent: true},
		{name: "OversizedBody", rancher: failN(1, isList, func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`{"type":"collection","data":["`))
			_, _ = w.Write([]byte(strings.Repeat("x", 65<<20)))
		}), wantErr: "one entry larger than 1 MiB", permanent: true},
		{name: "ECRThrottling", ecr: failN(1, anyReq, func(w http.ResponseWriter, r *http.Request) {
			ecrtest.WriteError(w, 400, "ThrottlingException", "Rate exceeded")
		}), wantErr: "ThrottlingException"},
		{name: "ECRServerError", ecr: failN(1, anyReq, func(w http.ResponseWriter, r *http.Request) {
			ecrtest.WriteError(w, 500, "ServerException", "internal")
		}), wantErr: "ServerException"},
		{name: "ECRAccessDenied", ecr: failN(1, anyReq, func(w http.ResponseWriter, r *http.Request) {
			ecrtest.WriteError(w, 400, "AccessDeniedException", "User: arn:aws:iam::111122223333:user/x is not authorized to perform: ecr:GetAuthorizationToken")
		}), wantErr: "AccessDeniedException", permanent: true},
		{name: "ECRMalformedToken", ecr: failN(1, anyReq, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			fmt.Fprintf(w, `{"authorizationData":[{"authorizationToken":%q,"expiresAt":%d,"proxyEndpoint":"https://%s"}]}`,
				base64.StdEncoding.EncodeToString([]byte("AWSnocolon")), t0.Add(12*time.Hour).Unix(), hostA)
		}), wantErr: "no user:password separator", permanent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStandTimeout(t, cmp.Or(tt.timeout, 10*time.Second))
			s.rancher.SetIntercept(tt.rancher)
			s.ecr.SetIntercept(tt.ecr)

			err := s.r.RunOnce(t.Context())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("first run: %v, want %q", err, tt.wantErr)
			}
			if got := s.secret(t, s.cred); got != "old" {
				t.Errorf("a failed run changed the credential to %q", got)
			}
			rd := s.r.Readiness(s.clock.Now())
			if rd.Ready || !strings.Contains(fmt.Sprint(rd), tt.wantErr) {
				t.Errorf("readiness = %+v, want not ready, saying %q", rd, tt.wantErr)
			}
			if got := s.m.Runs("failure"); got != 1 {
				t.Errorf("runs_total{failure} = %v, want 1", got)
			}

			s.hc.Timeout = 10 * time.Second // a loaded machine must not fail the retry too
			// The retry is scheduled by the backoff, not the next cron tick.
			next := s.r.NextDue()
			wantMin, wantMax := t0.Add(minI), t0.Add(minI)
			if tt.permanent {
				wantMin, wantMax = t0.Add(maxI), t0.Add(maxI)
			}
			if next.Before(wantMin) || next.After(wantMax) {
				t.Errorf("retry at +%s, want +%s..+%s", next.Sub(t0), wantMin.Sub(t0), wantMax.Sub(t0))
			}
			s.clock.Set(next)
			if err := s.r.RunDue(t.Context()); err != nil {
				t.Fatalf("retry after the fault: %v", err)
			}
			if got, want := s.secret(t, s.cred), s.ecr.Password("111122223333"); got != want {
				t.Errorf("after the retry the credential is %q, want the fresh token", got)
			}
			rd = s.r.Readiness(s.clock.Now())
			if !rd.Ready || rd.Pairs[0].LastError != "" {
				t.Errorf("readiness after recovery = %+v, want ready", rd)
			}
			if got := s.m.Runs("success"); got != 1 {
				t.Errorf("runs_total{success} = %v, want 1", got)
			}
			if got := s.m.Expiry(hostA, project); got != float64(next.Add(12*time.Hour).Unix()) {
				t.Errorf("token_expiry = %v, want %v", got, next.Add(12*time.Hour).Unix())
			}
			s.untouched(t)
		})
	}
}

// A retry touches only what failed: a pair that is fresh is not written again.
func TestRefresher_RunDue_OnlyWhatFailed(t *testing.T) {
	t.Parallel()
	s := newStand(t)
	regB := s.rancher.AddRegistry(project, hostB, "")
	credB := s.rancher.AddCredential(project, regB, "AWS", "old-B", "")
	s.r.Sources[0].RegistryIDs = []string{"111122223333", "444455556666"}
	s.rancher.SetIntercept(failN(1, func(r *http.Request) bool { return isPut(r) && strings.HasSuffix(r.URL.Path, "/"+credB) },
		cattleError(500, "Internal Server Error")))
	if err := s.r.RunOnce(t.Context()); err == nil {
		t.Fatal("want a failure of B")
	}
	writesA := func() int { c, _ := s.rancher.Credential(s.cred); return c.Writes }
	if writesA() != 1 {
		t.Fatalf("A not written in the first run")
	}
	s.clock.Set(s.r.NextDue())
	if err := s.r.RunDue(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := writesA(); got != 1 {
		t.Errorf("the retry wrote A again (writes %d); only B had failed", got)
	}
	if got := s.secret(t, credB); got != s.ecr.Password("444455556666") {
		t.Errorf("B after the retry = %q", got)
	}
}

// moto answers expiresAt 2015-01-01: the token is taken to live 12h, so the next
// refresh is at half of that, not at once in a tight loop.
func TestRefresher_ExpiresAtInThePast_NoTightLoop(t *testing.T) {
	t.Parallel()
	s := newStand(t)
	s.ecr.Lifetime = -(t0.Sub(time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)) + 12*time.Hour)
	if err := s.r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	rd := s.r.Readiness(t0)
	if !rd.Ready || !rd.Pairs[0].ExpiresAt.Equal(t0.Add(12*time.Hour)) {
		t.Errorf("readiness = %+v, want ready with a 12h token", rd)
	}
	// Half of 12h, less jitter (a tenth of that, halved by the test's Jitter).
	if got, want := s.r.NextDue(), t0.Add(6*time.Hour-18*time.Minute); !got.Equal(want) {
		t.Errorf("next refresh at +%s, want +%s", got.Sub(t0), want.Sub(t0))
	}
}

// The freshness guard: a token with little life left is refreshed at half of
// it, even though the cron spec would wait 6h.
func TestRefresher_FreshnessGuard(t *testing.T) {
	t.Parallel()
	s := newStand(t)
	s.ecr.Lifetime = 2 * time.Hour
	if err := s.r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := s.r.NextDue(); got.After(t0.Add(time.Hour)) || got.Before(t0.Add(50*time.Minute)) {
		t.Errorf("next refresh at +%s, want just under +1h", got.Sub(t0))
	}
	// Never sooner than RETRY_MIN_INTERVAL, however short the token.
	s.ecr.Lifetime = 10 * time.Second
	s.clock.Set(s.r.NextDue())
	if err := s.r.RunDue(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := s.r.NextDue().Sub(s.clock.Now()); got != s.r.RetryMinInterval {
		t.Errorf("next refresh in %s, want RETRY_MIN_INTERVAL %s", got, s.r.RetryMinInterval)
	}
}
