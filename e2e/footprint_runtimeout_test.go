package e2e

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/namespaces"
)

// BenchmarkRunTimeout_Kube10000NamespacesLowQPS proves on a real
// kube-apiserver that a run stays inside its timeout whatever the number of
// namespaces (issue 22, item 5): 10,000 namespaces at 100 requests a second
// need 100 s of writes, and each run gets 20 s. The refresher and the
// namespaces target run in process (the run timeout is not a setting),
// over the daemon's own Kubernetes client. It reports:
//
//   - runs and max-run-s: how many runs it took, and the longest (its
//     timeout is 20 s);
//   - all-written-s: start to the 10,000th Secret;
//   - failed-writes: writes logged as failed (a write the deadline cuts is
//     handed to the next run, not failed).
//
// The daemon's default rate would take about 10 s at most: this is the
// scaled-down case of a 5-minute timeout at 20 requests a second. It runs
// once whatever b.N is: -benchtime 1x.
//
//	KUBEBUILDER_ASSETS=$(scripts/kube-testenv.sh | tail -1) go test -run '^$' -bench RunTimeout_Kube -benchtime 1x -timeout 30m ./e2e/
func BenchmarkRunTimeout_Kube10000NamespacesLowQPS(b *testing.B) {
	const (
		n          = 10000
		qps        = 100
		runTimeout = 20 * time.Second
	)
	srv := kubetest.Start(b)
	admin := kubetest.Clientset(b, srv.AdminConfig())
	createNamespaces(b, admin, "rt", n)
	for i := 0; b.Loop(); i++ {
		if i > 0 {
			continue // one start is the measurement
		}
		c, err := kubeapi.New(kubeapi.Prepare(srv.UserConfig(benchUser, "system:masters"), kubeapi.Options{UserAgent: "bench", QPS: qps, Burst: 2 * qps}))
		if err != nil {
			b.Fatal(err)
		}
		sel, err := namespaces.ParseSelection([]string{"rt-*"}, "", nil)
		if err != nil {
			b.Fatal(err)
		}
		log := logrus.New()
		log.SetOutput(io.Discard)
		log.SetLevel(logrus.DebugLevel) // a repeated failure is logged at debug
		runs := &runLines{}
		log.AddHook(runs)
		tg := namespaces.New(namespaces.API(c), namespaces.Options{Selection: sel})
		tg.Logger = log
		r := refresher.New([]refresher.Source{benchSource{}}, nil)
		r.Logger, r.RunTimeout = log, runTimeout
		sw := watchSecrets(b, srv, secretName)
		ctx, cancel := context.WithCancel(b.Context())
		defer cancel() // the loop body runs once (see above)
		start := time.Now()
		if err := tg.Start(ctx, r); err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx, "@every 24h") }()
		// Each watch event signals sw.change; the wait ends at the 10,000th
		// Secret, when the refresher stops, or after 10 minutes.
		limit := time.NewTimer(10 * time.Minute)
		defer limit.Stop()
		for added, _ := sw.count(); added < n; added, _ = sw.count() {
			select {
			case <-sw.change:
			case err := <-done:
				b.Fatalf("the refresher stopped at %d of %d Secrets: %v", added, n, err)
			case <-limit.C:
				b.Fatalf("%d of %d Secrets after 10 minutes", added, n)
			}
		}
		all := time.Since(start)
		cancel()
		if err := testwait.Recv(b, done); err != nil {
			b.Fatal(err)
		}
		durations, failed := runs.get()
		var longest time.Duration
		for _, d := range durations {
			longest = max(longest, d)
		}
		b.ReportMetric(float64(len(durations)), "runs")
		b.ReportMetric(longest.Seconds(), "max-run-s")
		b.ReportMetric(all.Seconds(), "all-written-s")
		b.ReportMetric(float64(failed), "failed-writes")
		b.Logf("run durations: %v", durations)
	}
}

// benchSource hands out a new real-size password at every fetch.
type benchSource struct{}

func (benchSource) Label() string  { return "bench registries in us-east-1" }
func (benchSource) Region() string { return "us-east-1" }

func (benchSource) Fetch(context.Context) refresher.Fetched {
	const host = "111122223333.dkr.ecr.us-east-1.amazonaws.com"
	now := time.Now()
	return refresher.Fetched{Tokens: []refresher.Token{{Host: host, ECRHost: host, RegistryID: "111122223333", Region: "us-east-1",
		Username: "AWS", Password: realPassword(now.UnixNano()), FetchedAt: now, ExpiresAt: now.Add(12 * time.Hour)}}}
}

// runLines collects the runs' durations and counts failed writes, from the
// refresher's log lines.
type runLines struct {
	mu        sync.Mutex
	durations []time.Duration
	failed    int
}

func (h *runLines) Levels() []logrus.Level { return logrus.AllLevels }

func (h *runLines) Fire(e *logrus.Entry) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch e.Message {
	case "run finished", "run finished with failures":
		if d, err := time.ParseDuration(fmt.Sprint(e.Data["duration"])); err == nil {
			h.durations = append(h.durations, d)
		}
	case "credential not written":
		h.failed++
	}
	return nil
}

func (h *runLines) get() ([]time.Duration, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]time.Duration(nil), h.durations...), h.failed
}
