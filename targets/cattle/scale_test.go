package cattle_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/ecrsource"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/ecrsource/ecrtest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi/ranchertest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/cattle"
)

// passwordSize is what an ECR password measures: 2,300–2,700 characters
// reported (docs/rancher-api.md, secretValue); a stand-in's 30 would hide
// what tokens cost in bytes per write.
const passwordSize = 2400

// t0 is where the scale tests' clock starts.
var t0 = time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)

// scale is an installation: scopes (environments) × registries each, of
// which matching are ECR hosts with one credential each.
type scale struct{ scopes, registries, matching int }

// scaleClock is a clock the test moves by hand, shared by the ECR stand-in,
// the source and the refresher.
type scaleClock struct{ minutes atomic.Int64 }

func (c *scaleClock) Now() time.Time {
	return t0.Add(time.Duration(c.minutes.Load()) * time.Minute)
}

func quiet() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// freshECR is the ECR source of n registries, decoded by the real ecrsource,
// whose stand-in hands out a new real-size password per registry on every
// call, as real ECR does, so every run really writes. It returns the hosts.
func freshECR(n int, clock *scaleClock) (refresher.Source, []string) {
	ids := make([]string, n)
	hosts := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("1000000000%02d", i)
		hosts[i] = ids[i] + ".dkr.ecr.us-east-1.amazonaws.com"
	}
	var calls atomic.Int64
	api := &ecrtest.Fake{GetAuthorizationTokenFunc: func(context.Context, *ecr.GetAuthorizationTokenInput) (*ecr.GetAuthorizationTokenOutput, error) {
		k := calls.Add(1)
		logins := make([]ecrtest.Login, n)
		for i, h := range hosts {
			pw := fmt.Sprintf("pw-%s-%d-", ids[i], k)
			logins[i] = ecrtest.Login{Host: h, Password: pw + strings.Repeat("x", passwordSize-len(pw))}
		}
		return ecrtest.Output(clock.Now().Add(refresher.TokenLifetime), logins...), nil
	}}
	return &ecrsource.Source{Client: api, AWSRegion: "us-east-1", RegistryIDs: ids, Logger: quiet(), Now: clock.Now}, hosts
}

// newRefresher writes tokens of src into scopes, on clock, logging nowhere.
func newRefresher(src refresher.Source, clock *scaleClock, scopes []refresher.Scope) *refresher.Refresher {
	r := refresher.New([]refresher.Source{src}, scopes)
	r.Logger, r.Now = quiet(), clock.Now
	return r
}

// scaleEnv is a refresher writing into every environment of the Rancher
// stand-in, served over loopback HTTP with keep-alive and read by the real
// client, as the daemon does with RANCHER_PROJECTS=all.
type scaleEnv struct {
	r       *refresher.Refresher
	rancher *ranchertest.Server
	clock   *scaleClock
	conns   atomic.Int64 // TCP connections the server accepted
}

func newScaleEnv(tb testing.TB, sc scale) *scaleEnv {
	tb.Helper()
	e := &scaleEnv{rancher: ranchertest.New(ranchertest.Key{Access: "ak", Secret: rancherKey, Projects: []string{"*"}}), clock: &scaleClock{}}
	src, hosts := freshECR(sc.matching, e.clock)
	srv := httptest.NewUnstartedServer(e.rancher)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			e.conns.Add(1)
		}
	}
	srv.Start()
	tb.Cleanup(srv.Close)
	root, err := rancherapi.NewCattle(srv.URL+"/v2-beta", "ak", rancherKey, nil)
	if err != nil {
		tb.Fatal(err)
	}
	var scopes []refresher.Scope
	for s := range sc.scopes {
		env := fmt.Sprintf("1a%d", 100+s)
		e.rancher.AddProject(env)
		for i := range sc.registries - sc.matching {
			e.rancher.AddRegistry(env, fmt.Sprintf("registry-%d.example.com:5000", i), "")
		}
		for _, h := range hosts {
			reg := e.rancher.AddRegistry(env, h, "")
			e.rancher.AddCredential(env, reg, "AWS", "old", "")
		}
		scopes = append(scopes, refresher.Scope{Name: env, Target: &cattle.Target{Store: root.WithProject(env)}})
	}
	e.r = newRefresher(src, e.clock, scopes)
	return e
}

// benchmarkRunOnce measures whole runs and reports Rancher requests and new
// TCP connections per run, and requests per scope; the budget per scope is
// its pages of registries plus, per matching registry, one credential
// listing and one write. It fails when a scope goes over.
func benchmarkRunOnce(b *testing.B, sc scale) {
	e := newScaleEnv(b, sc)
	if err := e.r.RunOnce(b.Context()); err != nil { // warm connections
		b.Fatal(err)
	}
	requests, conns := e.rancher.Requests(), e.conns.Load()
	b.ReportAllocs()
	for b.Loop() {
		if err := e.r.RunOnce(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
	perRun := float64(e.rancher.Requests()-requests) / float64(b.N)
	b.ReportMetric(perRun, "requests/run")
	b.ReportMetric(perRun/float64(sc.scopes), "requests/scope")
	b.ReportMetric(float64(e.conns.Load()-conns)/float64(b.N), "dials/run")
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

// listStore is an in-memory cattle.Store, so what is counted is the
// refresher's and the target's own, without HTTP or JSON.
type listStore struct {
	regs  []rancherapi.Registry
	creds map[string][]rancherapi.RegistryCredential
}

var _ cattle.Store = (*listStore)(nil)

func (s *listStore) ListRegistries(context.Context) ([]rancherapi.Registry, error) {
	return s.regs, nil
}

func (s *listStore) CreateRegistry(context.Context, string, string) (rancherapi.Registry, error) {
	return rancherapi.Registry{}, fmt.Errorf("not here")
}

// ListRegistryCredentials returns a copy, as a client decodes a new list
// every time (Plan filters it in place).
func (s *listStore) ListRegistryCredentials(_ context.Context, id string) ([]rancherapi.RegistryCredential, error) {
	return append([]rancherapi.RegistryCredential(nil), s.creds[id]...), nil
}

func (s *listStore) CreateRegistryCredential(context.Context, rancherapi.CredentialInput) (rancherapi.RegistryCredential, error) {
	return rancherapi.RegistryCredential{}, fmt.Errorf("not here")
}

func (s *listStore) UpdateRegistryCredential(_ context.Context, id string, _ rancherapi.CredentialInput) (rancherapi.RegistryCredential, error) {
	return rancherapi.RegistryCredential{ID: id}, nil
}

// newListStore is an environment of nonMatching other registries and one
// registry with one credential per host.
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

// newListEnv is a refresher writing 10 registries' tokens into scopes
// in-memory environments of nonMatching other registries each.
func newListEnv(scopes, nonMatching int) *refresher.Refresher {
	clock := &scaleClock{}
	src, hosts := freshECR(10, clock)
	var sc []refresher.Scope
	for s := range scopes {
		sc = append(sc, refresher.Scope{Name: fmt.Sprintf("1a%d", 100+s), Target: &cattle.Target{Store: newListStore(nonMatching, hosts)}})
	}
	return newRefresher(src, clock, sc)
}

// BenchmarkRunOnce_50x1000_NoHTTP is the large case with in-memory stores:
// the refresher's and the target's own cost, ECR decoding included, without
// Rancher's HTTP or JSON.
func BenchmarkRunOnce_50x1000_NoHTTP(b *testing.B) {
	r := newListEnv(50, 990)
	b.ReportAllocs()
	for b.Loop() {
		if err := r.RunOnce(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}
