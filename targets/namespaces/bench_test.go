package namespaces_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/targettest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testheap"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/namespaces"
)

// counting counts the requests a client makes, writes apart.
type counting struct {
	rt          http.RoundTripper
	all, writes *atomic.Int64
}

func (c counting) RoundTrip(req *http.Request) (*http.Response, error) {
	c.all.Add(1)
	if req.Method != http.MethodGet {
		c.writes.Add(1)
	}
	return c.rt.RoundTrip(req)
}

// BenchmarkNamespaces_1000 measures, on the real apiserver, with real-size
// ECR passwords (2,400 characters), the target driven by a real refresher
// over 1,000 selected namespaces:
//
//   - start-s: Start until the first listing is pushed (1,000 scopes);
//
//   - first-run-s / -requests / -writes: the first run (informer list and
//     watch included);
//
//   - heap-listed-B/ns: the live heap per namespace once listed (informer
//     cache, scopes pushed);
//
//   - heap-B/ns: the same after the first run (what the refresher books per
//     scope, the writer's records);
//
//   - refresh-s / -requests: a run with new tokens (one update per namespace);
//
//   - new-ns-median-s / -max-s: a namespace's creation to its Secret, over 20.
//
//     KUBEBUILDER_ASSETS=$(scripts/kube-testenv.sh | tail -1) go test -run '^$' -bench Namespaces_1000 -benchtime 1x ./targets/namespaces
func BenchmarkNamespaces_1000(b *testing.B) {
	srv := server.Start(b)
	admin := kubetest.Clientset(b, srv.AdminConfig())
	ctx := context.Background()
	const count = 1000
	for i := range count {
		if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%04d", i)}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	for n := 0; b.Loop(); n++ {
		var all, writes atomic.Int64
		cfg := kubeapi.Prepare(srv.AdminConfig(), kubeapi.Options{UserAgent: "bench"})
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return counting{rt, &all, &writes} })
		c, err := kubeapi.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		before := testheap.Live()
		tg := namespaces.New(namespaces.API(c), namespaces.Options{
			Selection: mustSelection(b, []string{"bench-*"}, "", nil), SecretName: fmt.Sprintf("ecr-%d", n)})
		r := refresher.New([]refresher.Source{&targettest.Source{Hosts: []string{host}}}, nil)
		r.Logger, tg.Logger = log, log
		runCtx, cancel := context.WithCancel(ctx)
		start := time.Now()
		if err := tg.Start(runCtx, r); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "start-s")
		b.ReportMetric(float64(int64(testheap.Live())-int64(before))/count, "heap-listed-B/ns")
		start = time.Now()
		if err := r.RunOnce(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "first-run-s")
		b.ReportMetric(float64(all.Load()), "first-run-requests")
		b.ReportMetric(float64(writes.Load()), "first-run-writes")
		b.ReportMetric(float64(int64(testheap.Live())-int64(before))/count, "heap-B/ns")

		all.Store(0)
		writes.Store(0)
		start = time.Now()
		if err := r.RunOnce(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "refresh-s")
		b.ReportMetric(float64(all.Load()), "refresh-requests")

		// Run starts with a full run; new namespaces are measured once it is done.
		ran := make(chan error, 1)
		r.OnRunDone = func(err error) {
			select {
			case ran <- err:
			default:
			}
		}
		done := make(chan error, 1)
		go func() { done <- r.Run(runCtx, "@every 24h") }()
		if err := testwait.Recv(b, ran); err != nil {
			b.Fatal(err)
		}
		var lat []time.Duration
		for i := range 20 {
			name := fmt.Sprintf("bench-late-%d-%d", n, i)
			t0 := time.Now()
			if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
			waitFor(b, 30*time.Second, "the late namespace's secret", func() bool {
				_, err := admin.CoreV1().Secrets(name).Get(ctx, tg.SecretName, metav1.GetOptions{})
				return err == nil
			})
			lat = append(lat, time.Since(t0))
		}
		cancel()
		<-done
		slices.Sort(lat)
		b.ReportMetric(lat[len(lat)/2].Seconds(), "new-ns-median-s")
		b.ReportMetric(lat[len(lat)-1].Seconds(), "new-ns-max-s")
	}
}
