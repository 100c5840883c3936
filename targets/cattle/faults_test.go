package cattle_test

import (
	"cmp"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/plantest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi/ranchertest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// stand is an environment with an ECR registry (credential "old") and an
// unrelated Docker Hub one.
type stand struct {
	*env
	ecrCred, hubCred string
}

func newStand(t *testing.T, timeout time.Duration) *stand {
	t.Helper()
	s := &stand{env: newEnvTimeout(t, timeout)}
	hub := s.rancher.AddRegistry(project, "index.docker.io", "")
	s.hubCred = s.rancher.AddCredential(project, hub, "someone", "hub-password", "")
	reg := s.rancher.AddRegistry(project, hostA, "")
	s.ecrCred = s.rancher.AddCredential(project, reg, "AWS", "old", "")
	return s
}

// untouched checks that nothing but the ECR credential was ever changed and
// no secret reached the log.
func (s *stand) untouched(t *testing.T, secrets ...string) {
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
	noSecrets(t, "log", s.log.String(), append(secrets, "hub-password")...)
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

// TestTarget_Faults injects one Rancher fault at a time: the pass fails
// (at planning, or the write), keeps the old credential, names the fault, and
// is permanent only for faults retrying soon will not fix; the next pass,
// the fault gone, writes. ECR's faults are the ECR source's.
func TestTarget_Faults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		rancher   func(http.ResponseWriter, *http.Request) bool
		wantErr   string
		permanent bool
		timeout   time.Duration
	}{
		{name: "Rancher500", rancher: failN(1, anyReq, cattleError(500, "Internal Server Error")), wantErr: "500 Internal Server Error"},
		{name: "Rancher500OnWrite", rancher: failN(1, isPut, cattleError(500, "Internal Server Error")), wantErr: "500 Internal Server Error"},
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStand(t, cmp.Or(tt.timeout, 10*time.Second))
			s.rancher.SetIntercept(tt.rancher)
			o, err := s.run(t, plantest.Token(hostA, "pw-1"))
			if err == nil {
				err = o.Err()
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("first pass: %v, want %q", err, tt.wantErr)
			}
			if got := plantest.Permanent(err); got != tt.permanent {
				t.Errorf("permanent = %v, want %v: %v", got, tt.permanent, err)
			}
			if c := s.cred(t, s.ecrCred); c.SecretValue != "old" {
				t.Errorf("a failed pass changed the credential to %q", c.SecretValue)
			}
			s.hc.Timeout = 10 * time.Second // a loaded machine must not fail the retry too
			o = s.ok(t, plantest.Token(hostA, "pw-2"))
			if c := s.cred(t, s.ecrCred); c.SecretValue != "pw-2" || o.Count(refresher.ResultUpdated) != 1 {
				t.Errorf("after the fault the credential is %q (results %v), want the fresh token", c.SecretValue, o.Results)
			}
			s.untouched(t, "pw-1", "pw-2")
		})
	}
}

// A second pass with the same tokens rewrites only what failed: a credential
// written with that token already is skipped.
func TestTarget_SecondPassOnlyWhatFailed(t *testing.T) {
	t.Parallel()
	s := newStand(t, 10*time.Second)
	regB := s.rancher.AddRegistry(project, hostB, "")
	credB := s.rancher.AddCredential(project, regB, "AWS", "old-B", "")
	s.rancher.SetIntercept(failN(1, func(r *http.Request) bool { return isPut(r) && strings.HasSuffix(r.URL.Path, "/"+credB) },
		cattleError(500, "Internal Server Error")))
	toks := []refresher.Token{tokA, plantest.Token(hostB, "pw-B")}
	if o, err := s.run(t, toks...); err != nil || o.Err() == nil {
		t.Fatalf("want a failure of B: %v, %v", err, o.Err())
	}
	writesA := func() int { c, _ := s.rancher.Credential(s.ecrCred); return c.Writes }
	if writesA() != 1 {
		t.Fatalf("A not written in the first pass")
	}
	s.ok(t, toks...)
	if got := writesA(); got != 1 {
		t.Errorf("the second pass wrote A again (writes %d); only B had failed", got)
	}
	if c := s.cred(t, credB); c.SecretValue != "pw-B" {
		t.Errorf("B after the second pass = %q", c.SecretValue)
	}
}

// sink is a server that must receive nothing; it records what reaches it.
type sink struct {
	url  string
	mu   sync.Mutex
	seen []string
}

func newSink(t *testing.T) *sink {
	t.Helper()
	s := &sink{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.seen = append(s.seen, fmt.Sprintf("%s %s auth=%q body=%q", r.Method, r.URL, r.Header.Get("Authorization"), b))
		s.mu.Unlock()
		_, _ = io.WriteString(w, `{"id":"1c1","type":"registryCredential"}`)
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func (s *sink) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

// A write redirected to another origin is not sent there and fails, naming
// CATTLE_URL; the credential keeps what it had.
func TestTarget_RedirectedWriteFails(t *testing.T) {
	t.Parallel()
	for _, status := range []int{302, 307, 308} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			t.Parallel()
			s := newStand(t, 10*time.Second)
			evil := newSink(t)
			s.rancher.SetIntercept(ranchertest.RedirectWrites(evil.url, status))
			o, err := s.run(t, tokA)
			if err != nil {
				t.Fatal(err)
			}
			err = o.Err()
			if err == nil || !strings.Contains(err.Error(), "redirected to "+evil.url) || !strings.Contains(err.Error(), "CATTLE_URL") {
				t.Fatalf("pass = %v, want a refused redirect to %s naming CATTLE_URL", err, evil.url)
			}
			if o.Count(refresher.ResultFailed) != 1 || o.Count(refresher.ResultUpdated) != 0 {
				t.Errorf("results = %v, want one failed write", o.Results)
			}
			if got := evil.received(); len(got) != 0 {
				t.Errorf("the other origin received %q", got)
			}
			if c := s.cred(t, s.ecrCred); c.SecretValue != "old" {
				t.Errorf("credential = %q, want the old one", c.SecretValue)
			}
			s.untouched(t, "pw-A")
		})
	}
}

// A server that echoes the request into its errors puts no secret into the
// log or the error (what /readyz shows), and no line grows past a few KB.
func TestTarget_EchoingServerLeaksNothing(t *testing.T) {
	t.Parallel()
	s := newStand(t, 10*time.Second)
	s.rancher.SetIntercept(ranchertest.EchoWrites)
	o, err := s.run(t, tokA)
	if err == nil {
		err = o.Err()
	}
	if err == nil || !strings.Contains(err.Error(), "422") {
		t.Fatalf("pass = %v, want the 422", err)
	}
	noSecrets(t, "log", s.log.String(), "pw-A")
	noSecrets(t, "error", err.Error(), "pw-A")
}

// Thousands of registries with unparsable addresses make one warning line,
// with a count and a few bounded examples.
func TestTarget_UnparsableAddressesSummarised(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for i := range 2000 {
		e.rancher.AddRegistry(project, fmt.Sprintf("http://[bad-%d-%s", i, strings.Repeat("z", 500)), "")
	}
	reg := e.rancher.AddRegistry(project, hostA, "")
	e.rancher.AddCredential(project, reg, "AWS", "old", "")
	e.ok(t, tokA)
	out := e.log.String()
	if got := strings.Count(out, "unparsable"); got != 1 || !strings.Contains(out, "count=2000") {
		t.Errorf("%d warnings, want one with count=2000", got)
	}
	if len(out) > 64<<10 {
		t.Errorf("log is %d bytes for one pass", len(out))
	}
}
