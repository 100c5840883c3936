package refresher_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

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

func isWrite(r *http.Request) bool { return r.Method == http.MethodPut || r.Method == http.MethodPost }

// redirectWrites sends every write to another origin.
func redirectWrites(status int, origin string) func(http.ResponseWriter, *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if !isWrite(r) {
			return false
		}
		http.Redirect(w, r, origin+r.URL.RequestURI(), status)
		return true
	}
}

// metricsText is what /metrics shows.
func metricsText(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

// A write redirected to another origin is not sent there, is counted failed,
// and keeps /readyz not ready with a reason that names CATTLE_URL: through
// the refresher and both Rancher targets.
func TestRefresher_RedirectedWriteFails(t *testing.T) {
	t.Parallel()
	for _, status := range []int{302, 307, 308} {
		t.Run(fmt.Sprintf("Cattle%d", status), func(t *testing.T) {
			t.Parallel()
			s := newStand(t)
			evil := newSink(t)
			s.rancher.SetIntercept(redirectWrites(status, evil.url))
			err := s.r.RunOnce(t.Context())
			if err == nil || !strings.Contains(err.Error(), "redirected to "+evil.url) {
				t.Fatalf("RunOnce = %v, want a refused redirect to %s", err, evil.url)
			}
			checkRedirectFailed(t, s.r, s.m, evil, project)
			if got := s.secret(t, s.cred); got != "old" {
				t.Errorf("credential = %q, want the old one", got)
			}
			s.untouched(t)
		})
		t.Run(fmt.Sprintf("Norman%d", status), func(t *testing.T) {
			t.Parallel()
			v := newV3Env(t, twoLogins(), p1)
			m := refresher.NewMetrics(prometheus.NewRegistry())
			v.r.Metrics = m
			evil := newSink(t)
			v.rancher.SetIntercept(redirectWrites(status, evil.url))
			err := v.r.RunOnce(t.Context())
			if err == nil || !strings.Contains(err.Error(), "redirected to "+evil.url) {
				t.Fatalf("RunOnce = %v, want a refused redirect to %s", err, evil.url)
			}
			checkRedirectFailed(t, v.r, m, evil, p1)
			if n := len(v.rancher.DockerCredentials(p1)); n != 0 {
				t.Errorf("%d dockerCredentials created", n)
			}
		})
	}
}

func checkRedirectFailed(t *testing.T, r *refresher.Refresher, m *refresher.Metrics, evil *sink, scope string) {
	t.Helper()
	if got := evil.received(); len(got) != 0 {
		t.Errorf("the other origin received %q", got)
	}
	rd := r.Readiness(t0)
	if rd.Ready || !strings.Contains(fmt.Sprint(rd), "CATTLE_URL") {
		t.Errorf("readiness = %+v, want not ready, naming CATTLE_URL", rd)
	}
	if got := m.Writes(hostA, scope, "failed"); got != 1 {
		t.Errorf("writes_total{failed} = %v, want 1", got)
	}
	for _, res := range []string{"updated", "created"} {
		if got := m.Writes(hostA, scope, res); got > 0 {
			t.Errorf("writes_total{%s} = %v, want none", res, got)
		}
	}
	if got := m.Runs("failure"); got != 1 {
		t.Errorf("runs_total{failure} = %v, want 1", got)
	}
}

// echoWrites answers every write with a 422 whose code, message and fieldName
// echo the request's body and Authorization header, after a 900 KB code.
func echoWrites(w http.ResponseWriter, r *http.Request) bool {
	if !isWrite(r) {
		return false
	}
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnprocessableEntity)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "error", "status": 422,
		"code":      strings.Repeat("X", 900<<10) + string(b),
		"message":   "you sent " + string(b) + " with " + r.Header.Get("Authorization"),
		"fieldName": string(b)})
	return true
}

// noSecret fails when text holds any secret, raw or in the base64 forms ECR
// and Basic auth use.
func noSecret(t *testing.T, what, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		for _, f := range []string{s, base64.StdEncoding.EncodeToString([]byte("AWS:" + s)), base64.StdEncoding.EncodeToString([]byte("ak:" + s))} {
			if strings.Contains(text, f) {
				t.Errorf("%s holds secret %q", what, s)
			}
		}
	}
	for _, line := range strings.Split(text, "\n") {
		if len(line) > 4096 {
			t.Errorf("%s has a %d-byte line: %.200q…", what, len(line), line)
		}
	}
}

// A server that echoes the request into its errors puts no secret into the
// log, /readyz or /metrics, and no line grows past a few KB.
func TestRefresher_EchoingServerLeaksNothing(t *testing.T) {
	t.Parallel()
	t.Run("Cattle", func(t *testing.T) {
		t.Parallel()
		s := newStand(t)
		reg := prometheus.NewRegistry()
		s.r.Metrics = refresher.NewMetrics(reg)
		s.rancher.SetIntercept(echoWrites)
		if err := s.r.RunOnce(t.Context()); err == nil || !strings.Contains(err.Error(), "422") {
			t.Fatalf("RunOnce = %v, want the 422", err)
		}
		rd, _ := json.Marshal(s.r.Readiness(t0))
		secrets := []string{s.ecr.Password("111122223333"), rancherKey, "aws-secret-DO-NOT-LEAK"}
		noSecret(t, "log", s.log.String(), secrets...)
		noSecret(t, "/readyz", string(rd), secrets...)
		noSecret(t, "/metrics", metricsText(t, reg), secrets...)
	})
	t.Run("Norman", func(t *testing.T) {
		t.Parallel()
		v := newV3Env(t, twoLogins(), p1)
		reg := prometheus.NewRegistry()
		v.r.Metrics = refresher.NewMetrics(reg)
		v.rancher.SetIntercept(echoWrites)
		if err := v.r.RunOnce(t.Context()); err == nil || !strings.Contains(err.Error(), "422") {
			t.Fatalf("RunOnce = %v, want the 422", err)
		}
		rd, _ := json.Marshal(v.r.Readiness(t0))
		secrets := []string{"pw-A", "pw-B", rancherKey}
		noSecret(t, "log", v.log.String(), secrets...)
		noSecret(t, "/readyz", string(rd), secrets...)
		noSecret(t, "/metrics", metricsText(t, reg), secrets...)
	})
}

// Thousands of registries with unparsable addresses make one warning line,
// with a count and a few bounded examples.
func TestRefresher_UnparsableAddressesSummarised(t *testing.T) {
	t.Parallel()
	e := newEnv(t, staticECR(login{Host: hostA, Password: "pw-A"}))
	for i := range 2000 {
		e.rancher.AddRegistry(project, fmt.Sprintf("http://[bad-%d-%s", i, strings.Repeat("z", 500)), "")
	}
	reg := e.rancher.AddRegistry(project, hostA, "")
	e.rancher.AddCredential(project, reg, "AWS", "old", "")
	if err := e.r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	out := e.log.String()
	if got := strings.Count(out, "unparsable"); got != 1 || !strings.Contains(out, "count=2000") {
		t.Errorf("%d warnings, want one with count=2000", got)
	}
	if len(out) > 64<<10 {
		t.Errorf("log is %d bytes for one run", len(out))
	}
}

// A dockerCredential listed with registries: null holds nothing known, so it
// is not "wholly ours": even under our own name it is not replaced whole.
func TestRefresher_V3_NullRegistriesNotOurs(t *testing.T) {
	t.Parallel()
	v := newV3Env(t, staticECR(login{Host: hostA, Password: "pw-A"}), p1)
	v.r.Sources[0].RegistryIDs = []string{"111122223333"}
	var writes atomic.Int32
	v.rancher.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case isWrite(r):
			writes.Add(1)
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, `{"id":"p-fghij:ecr-111122223333-us-east-1"}`)
		case strings.HasSuffix(strings.ToLower(r.URL.Path), "/namespaceddockercredentials"):
			_, _ = io.WriteString(w, `{"type":"collection","data":[]}`)
		case strings.HasSuffix(strings.ToLower(r.URL.Path), "/dockercredentials"):
			_, _ = io.WriteString(w, `{"type":"collection","data":[{"id":"p-fghij:ecr-111122223333-us-east-1","name":"ecr-111122223333-us-east-1","registries":null}]}`)
		default:
			return false
		}
		return true
	})
	err := v.r.RunOnce(t.Context())
	if err == nil || !strings.Contains(err.Error(), "registries: null") {
		t.Fatalf("RunOnce = %v, want the credential refused for its null registries", err)
	}
	if n := writes.Load(); n != 0 {
		t.Errorf("%d writes, want none", n)
	}
}
