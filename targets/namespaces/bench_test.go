package kube_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/sirupsen/logrus"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/ecrsource/ecrtest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/kube"
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

// BenchmarkNamespaces_1000 measures, on the real apiserver, a first run into
// 1,000 selected namespaces, then a refresh (new tokens), each with its wall
// time and request count (informer list+watch included), then the latency
// from a namespace's creation to its Secret, over 20 namespaces.
func BenchmarkNamespaces_1000(b *testing.B) {
	srv := server.Start(b)
	admin := client(b, srv.AdminConfig())
	ctx := context.Background()
	const count = 1000
	for i := range count {
		if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%04d", i)}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		var all, writes atomic.Int64
		cfg := kube.Prepare(srv.AdminConfig(), "bench")
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return counting{rt, &all, &writes} })
		c, err := kube.NewClient(cfg)
		if err != nil {
			b.Fatal(err)
		}
		sel, _ := kube.ParseSelection([]string{"bench-*"}, "", nil)
		n := kube.New(c, sel, fmt.Sprintf("ecr-%d", time.Now().UnixNano()), nil)
		var pw atomic.Int64
		fake := &ecrtest.Fake{GetAuthorizationTokenFunc: func(context.Context, *ecr.GetAuthorizationTokenInput) (*ecr.GetAuthorizationTokenOutput, error) {
			return ecrtest.Output(time.Now().Add(12*time.Hour), ecrtest.Login{Host: host, Password: fmt.Sprint("pw-", pw.Add(1))}), nil
		}}
		r := refresher.New([]refresher.Source{{Region: "us-east-1", Client: fake}}, nil)
		log := logrus.New()
		log.SetOutput(io.Discard)
		r.Logger, n.Logger = log, log
		r.Discover = n.Discover
		n.OnChange = r.Wake
		runCtx, cancel := context.WithCancel(ctx)
		n.Start(runCtx)

		start := time.Now()
		if err := r.RunOnce(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "first-run-s")
		b.ReportMetric(float64(all.Load()), "first-run-requests")
		b.ReportMetric(float64(writes.Load()), "first-run-writes")
		all.Store(0)
		writes.Store(0)
		start = time.Now()
		if err := r.RunOnce(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "refresh-s")
		b.ReportMetric(float64(all.Load()), "refresh-requests")
		b.ReportMetric(float64(writes.Load()), "refresh-writes")

		done := make(chan error, 1)
		go func() { done <- r.Run(runCtx, "@every 24h") }()
		var lat []time.Duration
		for i := range 20 {
			name := fmt.Sprintf("bench-late-%d-%d", time.Now().UnixNano(), i)
			t0 := time.Now()
			if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				if _, err := admin.CoreV1().Secrets(name).Get(ctx, n.SecretName, metav1.GetOptions{}); err == nil {
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("no secret in %s after 30 s", name)
				}
				time.Sleep(10 * time.Millisecond) // polling the condition in a benchmark, not a test wait
			}
			lat = append(lat, time.Since(t0))
		}
		cancel()
		<-done
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.ReportMetric(lat[len(lat)/2].Seconds(), "new-ns-median-s")
		b.ReportMetric(lat[len(lat)-1].Seconds(), "new-ns-max-s")
	}
}
