package refresher_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi/ranchertest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/cattle"
)

// scale is an installation: scopes × registries, of which matching per scope
// are ECR hosts with one credential each.
type scale struct{ scopes, registries, matching int }

// freshECR hands out a new password for each of n registries on every call, as
// real ECR does, so every run really writes.
func freshECR(n int) (refresher.ECRAPI, []string) {
	var ids []string
	for i := range n {
		ids = append(ids, fmt.Sprintf("1000000000%02d", i))
	}
	var calls atomic.Int64
	return &fakeECR{GetAuthorizationTokenFunc: func(context.Context, *ecr.GetAuthorizationTokenInput) (*ecr.GetAuthorizationTokenOutput, error) {
		k := calls.Add(1)
		var ls []login
		for _, id := range ids {
			ls = append(ls, login{Host: id + ".dkr.ecr.us-east-1.amazonaws.com", Password: fmt.Sprintf("pw-%s-%d", id, k)})
		}
		return tokens(t0.Add(12*time.Hour), ls...), nil
	}}, ids
}

// newScaleEnv builds the Rancher stand-in for sc, served over loopback HTTP with
// keep-alive, and a refresher writing into every scope. conns counts the TCP
// connections the server accepted.
func newScaleEnv(tb testing.TB, sc scale) (*refresher.Refresher, *ranchertest.Server, *atomic.Int64) {
	tb.Helper()
	rs := ranchertest.New(ranchertest.Key{Access: "ak", Secret: rancherKey, Projects: []string{"*"}})
	e, ids := freshECR(sc.matching)
	srv := httptest.NewUnstartedServer(rs)
	var conns atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	tb.Cleanup(srv.Close)
	l := logrus.New()
	l.SetOutput(io.Discard)
	root, err := rancherapi.NewCattle(srv.URL+"/v2-beta", "ak", rancherKey, nil)
	if err != nil {
		tb.Fatal(err)
	}
	var scopes []refresher.Scope
	for s := range sc.scopes {
		env := fmt.Sprintf("1a%d", 100+s)
		rs.AddProject(env)
		for i := range sc.registries - sc.matching {
			rs.AddRegistry(env, fmt.Sprintf("registry-%d.example.com:5000", i), "")
		}
		for _, id := range ids {
			reg := rs.AddRegistry(env, id+".dkr.ecr.us-east-1.amazonaws.com", "")
			rs.AddCredential(env, reg, "AWS", "old", "")
		}
		scopes = append(scopes, refresher.Scope{Name: env, Target: &cattle.Target{Store: root.WithProject(env)}})
	}
	r := refresher.New([]refresher.Source{{Region: "us-east-1", RegistryIDs: ids, Client: e}}, scopes)
	r.Logger, r.Now = l, func() time.Time { return t0 }
	return r, rs, &conns
}

// benchmarkRunOnce measures whole runs and reports Rancher requests per run and
// per scope; the budget per scope is one page of registries plus, per matching
// registry, one credential listing and one write.
func benchmarkRunOnce(b *testing.B, sc scale) {
	r, rs, _ := newScaleEnv(b, sc)
	if err := r.RunOnce(b.Context()); err != nil { // warm connections
		b.Fatal(err)
	}
	before := rs.Requests()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := r.RunOnce(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	perRun := float64(rs.Requests()-before) / float64(b.N)
	b.ReportMetric(perRun, "requests/run")
	b.ReportMetric(perRun/float64(sc.scopes), "requests/scope")
	pages := (sc.registries + rancherapi.DefaultPageSize - 1) / rancherapi.DefaultPageSize
	if budget := float64(pages + 2*sc.matching); perRun/float64(sc.scopes) > budget {
		b.Errorf("%.1f requests per scope, over the budget of %.0f", perRun/float64(sc.scopes), budget)
	}
}

func BenchmarkRunOnce_1x10(b *testing.B) {
	benchmarkRunOnce(b, scale{scopes: 1, registries: 10, matching: 1})
}

func BenchmarkRunOnce_50x1000(b *testing.B) {
	benchmarkRunOnce(b, scale{scopes: 50, registries: 1000, matching: 10})
}

// listStore is an in-memory RegistryStore, so allocations counted are the
// refresher's own.
type listStore struct {
	regs  []rancherapi.Registry
	creds map[string][]rancherapi.RegistryCredential
}

func (s *listStore) ListRegistries(context.Context) ([]rancherapi.Registry, error) {
	return s.regs, nil
}
func (s *listStore) CreateRegistry(context.Context, string, string) (rancherapi.Registry, error) {
	return rancherapi.Registry{}, fmt.Errorf("not here")
}
func (s *listStore) ListRegistryCredentials(_ context.Context, id string) ([]rancherapi.RegistryCredential, error) {
	return append([]rancherapi.RegistryCredential(nil), s.creds[id]...), nil
}
func (s *listStore) CreateRegistryCredential(context.Context, rancherapi.CredentialInput) (rancherapi.RegistryCredential, error) {
	return rancherapi.RegistryCredential{}, fmt.Errorf("not here")
}
func (s *listStore) UpdateRegistryCredential(_ context.Context, id string, _ rancherapi.CredentialInput) (rancherapi.RegistryCredential, error) {
	return rancherapi.RegistryCredential{ID: id}, nil
}

func newListStore(nonMatching int, hosts []string) *listStore {
	s := &listStore{creds: map[string][]rancherapi.RegistryCredential{}}
	for i := range nonMatching {
		s.regs = append(s.regs, rancherapi.Registry{ID: fmt.Sprintf("1sp%d", i), ServerAddress: fmt.Sprintf("registry-%d.example.com:5000", i), State: "active"})
	}
	for i, h := range hosts {
		id := fmt.Sprintf("1sp%d", nonMatching+i)
		s.regs = append(s.regs, rancherapi.Registry{ID: id, ServerAddress: h, State: "active"})
		s.creds[id] = []rancherapi.RegistryCredential{{ID: "1c" + id, RegistryID: id, PublicValue: "AWS", State: "active"}}
	}
	return s
}

// TestRefresher_AllocsFlatInNonMatchingRegistries: a run over 10,000
// non-matching registries allocates no more than one over 100 (decoding them is
// the client's, outside this count).
func TestRefresher_AllocsFlatInNonMatchingRegistries(t *testing.T) {
	e, ids := freshECR(10)
	var hosts []string
	for _, id := range ids {
		hosts = append(hosts, id+".dkr.ecr.us-east-1.amazonaws.com")
	}
	allocs := func(nonMatching int) float64 {
		r := refresher.New([]refresher.Source{{Region: "us-east-1", RegistryIDs: ids, Client: e}}, []refresher.Scope{{Name: "1a5", Target: &cattle.Target{Store: newListStore(nonMatching, hosts)}}})
		l := logrus.New()
		l.SetOutput(io.Discard)
		r.Logger, r.Now = l, func() time.Time { return t0 }
		return testing.AllocsPerRun(20, func() {
			if err := r.RunOnce(t.Context()); err != nil {
				t.Fatal(err)
			}
		})
	}
	small, large := allocs(100), allocs(10000)
	if large > small*1.05+5 {
		t.Errorf("allocations per run: %.0f with 100 other registries, %.0f with 10,000: they grow", small, large)
	}
	t.Logf("allocations per run: %.0f (100 other registries), %.0f (10,000)", small, large)
}

// TestRefresher_NoLeakOver1000Runs: a thousand runs on a fake clock leave no
// goroutines behind and reuse connections instead of opening new ones.
func TestRefresher_NoLeakOver1000Runs(t *testing.T) {
	r, _, conns := newScaleEnv(t, scale{scopes: 3, registries: 20, matching: 2})
	clock := t0
	r.Now = func() time.Time { return clock }
	for range 10 { // warm up: connections open, pools settle
		if err := r.RunOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	goroutines, opened := runtime.NumGoroutine(), conns.Load()
	for i := range 1000 {
		clock = t0.Add(time.Duration(i) * time.Minute)
		if err := r.RunOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	// A leak would add one or more per run; a connection's reader may be
	// between states at the moment of counting, hence the small slack.
	if got := runtime.NumGoroutine(); got > goroutines+3 {
		t.Errorf("goroutines: %d after 10 runs, %d after 1,000 more", goroutines, got)
	}
	// A connection being handed back to the pool as the next request starts
	// may make the client dial once more; a leak dials on every run.
	if got := conns.Load(); got > opened+3 {
		t.Errorf("connections opened: %d in 10 runs, %d after 1,000 more: keep-alive is not reused", opened, got)
	}
	t.Logf("goroutines %d, connections %d, after 1,010 runs", runtime.NumGoroutine(), conns.Load())
}

// BenchmarkRunOnce_50x1000_NoHTTP is the large case with in-memory stores: the
// refresher's own cost, without HTTP or JSON.
func BenchmarkRunOnce_50x1000_NoHTTP(b *testing.B) {
	e, ids := freshECR(10)
	var hosts []string
	for _, id := range ids {
		hosts = append(hosts, id+".dkr.ecr.us-east-1.amazonaws.com")
	}
	var scopes []refresher.Scope
	for s := range 50 {
		scopes = append(scopes, refresher.Scope{Name: fmt.Sprintf("1a%d", s), Target: &cattle.Target{Store: newListStore(990, hosts)}})
	}
	r := refresher.New([]refresher.Source{{Region: "us-east-1", RegistryIDs: ids, Client: e}}, scopes)
	l := logrus.New()
	l.SetOutput(io.Discard)
	r.Logger, r.Now = l, func() time.Time { return t0 }
	b.ReportAllocs()
	for b.Loop() {
		if err := r.RunOnce(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}
