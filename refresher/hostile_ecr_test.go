package refresher_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher/ecrtest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/cattle"
)

// sdkECR is the real ECR client on a local handler, without retries.
func sdkECR(t *testing.T, region string, h http.Handler) *ecr.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return ecr.New(ecr.Options{Region: region, BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "aws-secret-DO-NOT-LEAK", "")})
}

// A region whose endpoint hangs fails alone, after its call's deadline; the
// other region is written in the same run.
func TestRefresher_StalledRegionDoesNotBlockOthers(t *testing.T) {
	t.Parallel()
	s := newStand(t)
	s.ecr.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		_, _ = io.Copy(io.Discard, r.Body) // so the server notices when the client hangs up
		<-r.Context().Done()               // hangs until the client gives up
		return true
	})
	eu := ecrtest.New("555566667777", "eu-west-1")
	eu.Now = s.clock.Now
	hostC := eu.Host("555566667777")
	credC := s.rancher.AddCredential(project, s.rancher.AddRegistry(project, hostC, ""), "AWS", "old-C", "")
	s.r.Sources[0].Timeout = 300 * time.Millisecond
	s.r.Sources = append(s.r.Sources, refresher.Source{Region: "eu-west-1", RegistryIDs: []string{"555566667777"}, Client: sdkECR(t, "eu-west-1", eu)})
	s.r.ResetSources()

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	start := time.Now()
	err := s.r.RunOnce(ctx)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the run took %s: the stalled region held it up", took)
	}
	if err == nil || !strings.Contains(err.Error(), "111122223333") || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("err = %v, want the stalled region's registry named as timed out", err)
	}
	if got := s.secret(t, credC); got != eu.Password("555566667777") {
		t.Errorf("the healthy region's credential = %q, want its fresh token", got)
	}
	if got := s.secret(t, s.cred); got != "old" {
		t.Errorf("the stalled region's credential changed to %q", got)
	}
}

// stuckTarget blocks in Sync, whatever its context says, until released.
type stuckTarget struct{ entered, release chan struct{} }

func (s stuckTarget) Sync(context.Context, []refresher.Token, []refresher.Token, *refresher.Recorder) error {
	close(s.entered)
	<-s.release
	return nil
}

// /healthz turns unhealthy while the loop is stuck in a run past its bound, and
// healthy again once the run ends.
func TestRefresher_Run_HealthyReportsStuckRun(t *testing.T) {
	t.Parallel()
	s := newStand(t)
	st := stuckTarget{entered: make(chan struct{}), release: make(chan struct{})}
	s.r.Scopes = []refresher.Scope{{Name: project, Target: st}}
	done := make(chan struct{}, 16)
	s.r.OnRunDone = func(error) { done <- struct{}{} }
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = s.r.Run(ctx, "@every 6h") }()
	testwait.Recv(t, st.entered)
	if !s.r.Healthy(s.clock.Now().Add(time.Minute)) {
		t.Error("a run one minute old is reported unhealthy")
	}
	stuck := s.clock.Now().Add(s.r.RunTimeout + s.r.ShutdownTimeout + 2*time.Minute)
	if s.r.Healthy(stuck) {
		t.Errorf("a run stuck for %s is reported healthy", stuck.Sub(t0))
	}
	close(st.release)
	testwait.Recv(t, done)
	if !s.r.Healthy(stuck) {
		t.Error("unhealthy after the stuck run ended")
	}
}

// ECR stops returning a host it returned before (another account behind the
// endpoint): the old pair is retried with backoff, then forgotten, instead of
// staying due in the past with the loop calling ECR over and over.
func TestRefresher_Run_VanishedHostNoBusyLoop(t *testing.T) {
	t.Parallel()
	s := newStand(t)
	const other = "999988887777"
	hostX := other + ".dkr.ecr.us-east-1.amazonaws.com"
	credX := s.rancher.AddCredential(project, s.rancher.AddRegistry(project, hostX, ""), "AWS", "old-X", "")
	var calls atomic.Int64
	s.r.Sources[0].RegistryIDs = nil // the caller's own registry, whichever account that is
	s.r.Sources[0].Client = &fakeECR{GetAuthorizationTokenFunc: func(context.Context, *ecr.GetAuthorizationTokenInput) (*ecr.GetAuthorizationTokenOutput, error) {
		n := calls.Add(1)
		host := hostA
		if s.clock.Now().After(t0.Add(time.Hour)) {
			host = hostX // the account behind the endpoint changed
		}
		return tokens(s.clock.Now().Add(12*time.Hour), login{Host: host, Password: fmt.Sprintf("pw-%d", n)}), nil
	}}
	end := t0.Add(36 * time.Hour)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	runs := 0
	s.r.OnRunDone = func(error) {
		if runs++; runs > 1000 {
			t.Errorf("more than 1,000 runs by +%s: the daemon spins", s.clock.Now().Sub(t0))
			cancel()
		}
	}
	s.r.NewTimer = func(d time.Duration) (<-chan time.Time, func() bool) {
		return s.jump(s.clock.Now().Add(d), end, cancel)
	}
	if err := s.r.Run(ctx, "@every 6h"); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n > 150 {
		t.Errorf("%d ECR calls in 36h: the vanished host is retried too often", n)
	}
	for _, p := range s.r.Status() {
		if p.Host == hostA {
			t.Errorf("the vanished host is still kept 35h later: %+v", p)
		}
	}
	if got := strings.Count(s.log.String(), "it is no longer refreshed"); got != 1 {
		t.Errorf("%d lines say the vanished host is dropped, want 1:\n%s", got, s.log)
	}
	if !strings.HasPrefix(s.secret(t, credX), "pw-") {
		t.Errorf("the new account's credential was not written")
	}
	if rd := s.r.Readiness(s.clock.Now()); !rd.Ready {
		t.Errorf("not ready once the vanished host is forgotten: %s", rd.Reason)
	}
	t.Logf("%d runs, %d ECR calls in 36h", runs, calls.Load())
}

// Only the registries asked for are written: a foreign proxyEndpoint never,
// 1,000 entries not asked for create nothing, and one host repeated 1,000 times
// is written once. What was skipped is reported in one line.
func TestRefresher_OnlyRequestedHostsWritten(t *testing.T) {
	t.Parallel()
	many := func(n int, host func(i int) string) []ecrtest.Login {
		var es []ecrtest.Login
		for i := range n {
			es = append(es, ecrtest.Login{Host: host(i), Password: fmt.Sprintf("pw-%d", i)})
		}
		return es
	}
	tests := []struct {
		name    string
		ids     []string // nil: the caller's own registry
		entries []ecrtest.Login
		skipped string // in the one warning line
	}{
		{name: "ForeignEndpoint", ids: []string{"111122223333"}, entries: []ecrtest.Login{
			{Host: "index.docker.io", Password: "pw-hub"}, {Host: hostA, Password: "pw-A"}}, skipped: "1 entries not asked for (e.g. index.docker.io)"},
		{name: "LookAlike", ids: []string{"111122223333"}, entries: []ecrtest.Login{
			{Host: hostA + ".evil.example.com", Password: "pw-evil"}, {Host: "111122223333.dkr.ecr.eu-west-1.amazonaws.com", Password: "pw-eu"},
			{Host: hostA, Password: "pw-A"}}, skipped: "2 entries not asked for"},
		{name: "ThousandAccounts", ids: []string{"111122223333"}, entries: append([]ecrtest.Login{{Host: hostA, Password: "pw-A"}},
			many(1000, func(i int) string {
				return fmt.Sprintf("%012d.dkr.ecr.us-east-1.amazonaws.com", 500000000000+i)
			})...),
			skipped: "1000 entries not asked for"},
		{name: "ThousandAccountsDefaultRegistry", entries: append([]ecrtest.Login{{Host: hostA, Password: "pw-A"}},
			many(1000, func(i int) string {
				return fmt.Sprintf("%012d.dkr.ecr.us-east-1.amazonaws.com", 500000000000+i)
			})...),
			skipped: "1000 entries not asked for"},
		{name: "SameHostThousandTimes", ids: []string{"111122223333"}, entries: many(1000, func(int) string { return hostA }),
			skipped: "999 repeated hosts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStand(t)
			s.r.Sources[0].RegistryIDs = tt.ids
			s.r.Scopes[0].Target.(*cattle.Target).AutoCreate = true
			s.ecr.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
				ecrtest.WriteAnswer(w, s.clock.Now().Add(12*time.Hour), tt.entries...)
				return true
			})
			puts := 0
			s.rancher.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
				if r.Method != http.MethodGet {
					puts++
				}
				return false
			})
			if err := s.r.RunOnce(t.Context()); err != nil {
				t.Fatal(err)
			}
			want := tt.entries[0].Password
			if tt.name == "ForeignEndpoint" || tt.name == "LookAlike" {
				want = "pw-A"
			}
			if got := s.secret(t, s.cred); got != want {
				t.Errorf("the requested registry's credential = %q, want %q", got, want)
			}
			if puts != 1 {
				t.Errorf("%d writes to Rancher, want 1", puts)
			}
			s.untouched(t) // no registry created, Docker Hub's credential untouched
			out := s.log.String()
			if got := strings.Count(out, "ecr answered entries that were not asked for"); got != 1 {
				t.Errorf("%d warnings about skipped entries, want 1:\n%s", got, out)
			}
			if !strings.Contains(out, tt.skipped) {
				t.Errorf("the warning does not say %q:\n%s", tt.skipped, out)
			}
			if len(out) > 64<<10 {
				t.Errorf("log is %d bytes for one run: skipped entries are not summarised", len(out))
			}
		})
	}
}

// An ECR stand-in that echoes secrets or answers garbage: no token, password
// or signature reaches the error, the log or /readyz, and the text kept is short.
func TestRefresher_AWSErrorsNeverEchoed(t *testing.T) {
	t.Parallel()
	const password = "eyJwYXlsb2FkIjoiU0VDUkVULUVDUi1QQVNTV09SRC1ETy1OT1QtTEVBSyJ9"
	token := base64.StdEncoding.EncodeToString([]byte("AWS:" + password))
	tests := map[string]func(w http.ResponseWriter, r *http.Request){
		"EchoedMessage": func(w http.ResponseWriter, r *http.Request) {
			ecrtest.WriteError(w, 400, "ValidationException", "bad request: "+r.Header.Get("Authorization")+" token "+token+" password "+password)
		},
		"HugeMessage": func(w http.ResponseWriter, r *http.Request) {
			ecrtest.WriteError(w, 400, "ValidationException", strings.Repeat("x ", 450<<10)+token)
		},
		"GarbageWithToken": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			fmt.Fprintf(w, `{"authorizationData":[{"authorizationToken":"%s","expiresAt":"%s","proxyEndpoint":"%s"`, token, token, password)
		},
		"WrongTypes": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			fmt.Fprintf(w, `{"authorizationData":[{"authorizationToken":"%s","expiresAt":"%s %s","proxyEndpoint":{"%s":1}}]}`, token, password, token, password)
		},
		"HTMLWithToken": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(502)
			fmt.Fprintf(w, "<html>%s %s</html>", token, password)
		},
		"EchoedCode": func(w http.ResponseWriter, r *http.Request) {
			ecrtest.WriteError(w, 400, password, "m")
		},
	}
	for name, h := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newStand(t)
			s.ecr.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool { h(w, r); return true })
			err := s.r.RunOnce(t.Context())
			if err == nil {
				t.Fatal("RunOnce succeeded on a hostile answer")
			}
			rd, _ := json.Marshal(s.r.Readiness(s.clock.Now()))
			for what, out := range map[string]string{"error": err.Error(), "log": s.log.String(), "readiness": string(rd)} {
				for _, sec := range []string{password, token, password[:32], "aws-secret-DO-NOT-LEAK"} {
					if strings.Contains(out, sec) {
						t.Errorf("%s holds a secret %q:\n%s", what, sec, bounded(out))
					}
				}
				if strings.Contains(out, "Signature=") {
					t.Errorf("%s holds the request signature:\n%s", what, bounded(out))
				}
			}
			if len(err.Error()) > 400 {
				t.Errorf("error is %d bytes: %s", len(err.Error()), bounded(err.Error()))
			}
			t.Logf("error: %v", err)
		})
	}
}

func bounded(s string) string {
	if len(s) > 2000 {
		return s[:2000] + "…"
	}
	return s
}
