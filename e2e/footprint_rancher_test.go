package e2e

import (
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/ecrsource/ecrtest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/apptest"
)

// BenchmarkFootprint_Rancher1x is the daemon's footprint in Rancher mode
// (issue 22, item 6: idle RSS ≤ 20 MB): the binary (footprintBinary) writing
// 20 registry credentials of one Rancher 1.x environment, ECR answering with
// real-size passwords, the stand-ins in this test process, not in the
// daemon's (the demo holds them in its own, which --demo's footprint counts).
// It reports idle-rss-MB, idle-anon-MB and peak-rss-MB (/proc/<pid>/status
// once RSS makes no new high for 2 s), and readyz-bytes and metrics-bytes.
// scripts/footprint.sh runs it on the Dockerfile's stripped static build and
// holds idle-rss-MB to its budget. One process start is the measurement: run
// it with -benchtime 1x.
//
//	FOOTPRINT_BINARY=/path/to/stripped/binary go test -run '^$' -bench Footprint_Rancher -benchtime 1x ./e2e/
func BenchmarkFootprint_Rancher1x(b *testing.B) {
	const registries = 20
	w := apptest.NewWorld(b)
	var calls atomic.Int64
	w.ECR.SetIntercept(func(rw http.ResponseWriter, _ *http.Request) bool {
		ecrtest.WriteAnswer(rw, time.Now().Add(12*time.Hour), ecrtest.Login{Host: w.ECR.Host(apptest.Account), Password: realPassword(calls.Add(1))})
		return true
	})
	reg := w.Rancher.AddRegistry(apptest.Project, w.ECR.Host(apptest.Account), "")
	w.Rancher.AddCredential(apptest.Project, reg, "AWS", "old", "")
	for i := 1; i < registries; i++ {
		// Other registries of the environment, which the daemon reads and leaves alone.
		w.Rancher.AddRegistry(apptest.Project, fmt.Sprintf("registry%02d.example.com", i), "")
	}
	bin := footprintBinary(b)
	for i := 0; b.Loop(); i++ {
		if i > 0 {
			continue // one process start is the measurement
		}
		d := runDaemon(b, bin, append(os.Environ(), "HOME="+b.TempDir(), "LOG_LEVEL=warn", "AWS_REGION=us-east-1",
			"CATTLE_URL="+w.Env["CATTLE_URL"], "CATTLE_ACCESS_KEY="+w.Env["CATTLE_ACCESS_KEY"], "CATTLE_SECRET_KEY="+w.Env["CATTLE_SECRET_KEY"]))
		d.waitFor(b, time.Minute, 50*time.Millisecond, "ready", func() bool {
			code, _, _ := d.get(b, "/readyz")
			return code == http.StatusOK
		})
		st := d.settleRSS(b)
		b.ReportMetric(float64(st["VmRSS"])/1000, "idle-rss-MB")
		b.ReportMetric(float64(st["RssAnon"])/1000, "idle-anon-MB")
		b.ReportMetric(float64(st["VmHWM"])/1000, "peak-rss-MB")
		b.Logf("Rancher 1.x, %d registries: VmRSS %d kB (RssAnon %d kB, RssFile %d kB), VmHWM %d kB",
			registries, st["VmRSS"], st["RssAnon"], st["RssFile"], st["VmHWM"])
		for _, ep := range []string{"/readyz", "/metrics"} {
			_, size, _ := d.get(b, ep)
			b.ReportMetric(float64(size), ep[1:]+"-bytes")
		}
		d.stop(b)
	}
}
