package e2e

import (
	"bytes"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
)

// The daemon's footprint on a real kube-apiserver with n namespaces
// selected (issue 22, items 2, 3 and 6): the binary (footprintBinary), ECR
// answering with real-size passwords, KUBE_NAMESPACES matching all n. It
// reports, in order of the daemon's life:
//
//   - start-to-first-write-ms: process start to the first Secret (watched);
//   - first-run-s: process start to the n-th Secret; first-run-requests
//     (-writes): what the daemon asked of the API server for it (audit log);
//     first-run-ecr-calls: GetAuthorizationToken calls (one identity, one
//     region: 1 whatever n);
//   - idle-rss-MB, idle-anon-MB, peak-rss-MB: /proc/<pid>/status once RSS
//     makes no new high for 2 s (VmRSS, RssAnon, VmHWM);
//   - readyz-bytes, readyz-ms, metrics-bytes, metrics-ms, metrics-series:
//     one answer of each endpoint (the median time of 5).
//
// One process start is the measurement, so it runs once whatever b.N is:
// run it with -benchtime 1x.
//
//	KUBEBUILDER_ASSETS=$(scripts/kube-testenv.sh | tail -1) go test -run '^$' -bench Footprint_Kube -benchtime 1x ./e2e/
func BenchmarkFootprint_Kube10Namespaces(b *testing.B)    { footprintKube(b, 10) }
func BenchmarkFootprint_Kube1000Namespaces(b *testing.B)  { footprintKube(b, 1000) }
func BenchmarkFootprint_Kube10000Namespaces(b *testing.B) { footprintKube(b, 10000) }

func footprintKube(b *testing.B, n int) {
	srv := kubetest.Start(b)
	bin := footprintBinary(b)
	admin := kubetest.Clientset(b, srv.AdminConfig())
	createNamespaces(b, admin, "fp", n)
	ecrURL, ecrCalls := startECR(b, twelveHours)
	for i := 0; b.Loop(); i++ {
		if i > 0 {
			continue // one process start is the measurement
		}
		sw := watchSecrets(b, srv, secretName)
		d := startDaemon(b, bin, srv, ecrURL, "KUBE_NAMESPACES=fp-*")
		d.waitFor(b, 10*time.Minute, 50*time.Millisecond, "a Secret in every namespace", func() bool {
			added, _ := sw.count()
			return added == n
		})
		var last time.Time
		sw.mu.Lock()
		for _, at := range sw.added {
			if at.After(last) {
				last = at
			}
		}
		sw.mu.Unlock()
		req := requests(b, srv, benchUser)
		b.ReportMetric(float64(sw.first().Sub(d.started).Milliseconds()), "start-to-first-write-ms")
		b.ReportMetric(last.Sub(d.started).Seconds(), "first-run-s")
		b.ReportMetric(float64(req[""]), "first-run-requests")
		b.ReportMetric(float64(req["create"]+req["update"]), "first-run-writes")
		b.ReportMetric(float64(ecrCalls.Load()), "first-run-ecr-calls")
		b.Logf("%d namespaces: requests by verb %v", n, req)

		st := d.settleRSS(b)
		b.ReportMetric(float64(st["VmRSS"])/1000, "idle-rss-MB")
		b.ReportMetric(float64(st["RssAnon"])/1000, "idle-anon-MB")
		b.ReportMetric(float64(st["VmHWM"])/1000, "peak-rss-MB")
		b.Logf("%d namespaces: VmRSS %d kB (RssAnon %d kB, RssFile %d kB), VmHWM %d kB", n, st["VmRSS"], st["RssAnon"], st["RssFile"], st["VmHWM"])

		for _, ep := range []string{"/readyz", "/metrics"} {
			var times []time.Duration
			var size int
			for range 5 {
				code, n, took := d.get(b, ep)
				if code != http.StatusOK {
					b.Fatalf("%s answered %d\n%s", ep, code, d.tail())
				}
				size = n
				times = append(times, took)
			}
			slices.Sort(times)
			b.ReportMetric(float64(size), ep[1:]+"-bytes")
			b.ReportMetric(float64(times[2].Microseconds())/1000, ep[1:]+"-ms")
		}
		b.ReportMetric(float64(metricSeries(b, d)), "metrics-series")
		d.stop(b)
	}
}

// metricSeries counts the series /metrics exports.
func metricSeries(b testing.TB, d *daemon) int {
	b.Helper()
	resp, err := http.Get("http://127.0.0.1:" + d.port + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		b.Fatal(err)
	}
	n := 0
	for line := range bytes.Lines(buf.Bytes()) {
		if len(line) > 1 && line[0] != '#' {
			n++
		}
	}
	return n
}

// secretName is KUBE_SECRET_NAME's default (README.md, "Configuration").
const secretName = "ecr-credentials"
