package refresher_test

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testheap"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// ecrPasswordSize is what real ECR passwords measure (~2,400 characters;
// docs/ecr.md); a stand-in's 30 would hide what tokens cost per scope.
const ecrPasswordSize = 2400

// nopWriter plans one object per scope holding every token and writes
// nothing anywhere: the refresher's own cost, no platform's. One value serves
// every scope.
type nopWriter struct{ done chan string }

func (w *nopWriter) Plan(_ context.Context, want refresher.Input) (refresher.Plan, error) {
	return refresher.Plan{Writes: []refresher.Write{{What: "secret", Object: "ecr-credentials", Tokens: want.Tokens,
		Apply: func(context.Context) (refresher.Result, error) {
			if w.done != nil {
				w.done <- ""
			}
			return refresher.ResultUpdated, nil
		}}}}, nil
}

// benchEnv is a refresher with n namespaces written once with real-size
// tokens of two registries, logging nowhere, with its metrics.
func benchEnv(b *testing.B, n int) *env {
	b.Helper()
	src := &fakeSource{region: "us-east-1", hosts: []string{hostA, hostB}, life: 12 * time.Hour, pwLen: ecrPasswordSize}
	shared := &nopWriter{}
	scopes := make([]refresher.Scope, n)
	for i := range scopes {
		scopes[i] = refresher.Scope{Name: fmt.Sprintf("ns-%05d", i), Group: "namespaces", Target: shared}
	}
	e := newEnv(b, []refresher.Source{src}, scopes...)
	l := logrus.New()
	l.SetOutput(io.Discard)
	e.r.Logger = l
	e.r.Metrics = refresher.NewMetrics(prometheus.NewRegistry())
	if err := e.r.RunOnce(b.Context()); err != nil {
		b.Fatal(err)
	}
	return e
}

// A namespace that appears is written at once through the express lane, and
// one that goes is forgotten, beside the running loop: what one namespace
// costs, the same among 1,000 as among 10,000 (issue 22, item 4).
func benchmarkAddRemoveScope(b *testing.B, n int) {
	e := benchEnv(b, n)
	runs, stop := e.start(b)
	defer stop()
	testwait.For(b, testwait.Limit, "Run's first run", func() bool { return runs.Load() == 1 })
	tg := &nopWriter{done: make(chan string, 1)}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		name := fmt.Sprintf("new-%d", i)
		i++
		e.r.AddScope(refresher.Scope{Name: name, Group: "namespaces", Target: tg})
		testwait.Recv(b, tg.done)
		e.r.RemoveScope(name)
	}
}

func BenchmarkAddRemoveScope_1000(b *testing.B)  { benchmarkAddRemoveScope(b, 1000) }
func BenchmarkAddRemoveScope_10000(b *testing.B) { benchmarkAddRemoveScope(b, 10000) }

// The calls alone, without a loop: AddScope and RemoveScope of one of n.
func benchmarkScopeCalls(b *testing.B, n int) {
	e := benchEnv(b, n)
	e.r.Metrics.PerScope = true
	sc := refresher.Scope{Name: "new", Group: "namespaces", Target: &nopWriter{}}
	b.ReportAllocs()
	for b.Loop() {
		e.r.AddScope(sc)
		e.r.RemoveScope(sc.Name)
	}
}

func BenchmarkScopeCalls_1000(b *testing.B)  { benchmarkScopeCalls(b, 1000) }
func BenchmarkScopeCalls_10000(b *testing.B) { benchmarkScopeCalls(b, 10000) }

// The refresher's own state per namespace, with real-size tokens, once every
// namespace was written: bytes of live heap per scope (goal: a few hundred).
func BenchmarkHeapPerScope_10000(b *testing.B) {
	const n = 10000
	var perScope float64
	for b.Loop() {
		before := testheap.Live()
		e := benchEnv(b, n)
		after := testheap.Live()
		runtime.KeepAlive(e)
		perScope = float64(int64(after)-int64(before)) / n
	}
	b.ReportMetric(perScope, "heap-bytes/scope")
}

// A loop turn with nothing due, as a Wake or a retry of another scope causes:
// a pass over the scopes, no allocation per scope.
func benchmarkRunDueIdle(b *testing.B, n int) {
	e := benchEnv(b, n)
	b.ReportAllocs()
	for b.Loop() {
		if err := e.r.RunDue(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRunDueIdle_1000(b *testing.B)  { benchmarkRunDueIdle(b, 1000) }
func BenchmarkRunDueIdle_10000(b *testing.B) { benchmarkRunDueIdle(b, 10000) }

// A /readyz probe at 10,000 namespaces, its answer bounded.
func BenchmarkReadiness_10000(b *testing.B) {
	e := benchEnv(b, 10000)
	b.ReportAllocs()
	for b.Loop() {
		if rd := e.r.Readiness(e.clock.Now()); len(rd.Pairs) > refresher.MaxListedPairs {
			b.Fatal("unbounded")
		}
	}
}
