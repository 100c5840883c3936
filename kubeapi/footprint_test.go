package kubeapi_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkFootprint builds, stripped and static as the image is built,
// what the daemon links for Kubernetes — testdata/footprint/kubeapi (this
// package, leader, tools/cache, clientcmd) and testdata/footprint/clientgo
// (client-go's typed clients and tools/leaderelection instead) — and reports
// each binary's size and its resident memory once every client is built:
//
//	go test -run '^$' -bench Footprint -benchtime 1x ./kubeapi
func BenchmarkFootprint(b *testing.B) {
	for _, name := range []string{"kubeapi", "clientgo"} {
		b.Run(name, func(b *testing.B) {
			bin := filepath.Join(b.TempDir(), name)
			build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./testdata/footprint/"+name)
			build.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := build.CombinedOutput(); err != nil {
				b.Fatalf("build %s: %v\n%s", name, err, out)
			}
			st, err := os.Stat(bin)
			if err != nil {
				b.Fatal(err)
			}
			var rssKB float64
			for b.Loop() {
				out, err := exec.Command(bin, "rss").Output()
				if err != nil {
					b.Fatalf("%s rss: %v", name, err)
				}
				fields := strings.Fields(string(out)) // VmRSS: <n> kB
				if len(fields) != 3 {
					b.Fatalf("%s rss printed %q", name, out)
				}
				if rssKB, err = strconv.ParseFloat(fields[1], 64); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(st.Size())/(1<<20), "MiB")
			b.ReportMetric(rssKB/1000, "MB-RSS")
		})
	}
}
