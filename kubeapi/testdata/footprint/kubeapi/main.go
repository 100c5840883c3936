// Command kubeapi is what the daemon links for Kubernetes with this
// repository's kubeapi and leader packages: config loading, the typed calls,
// an informer and leader election. Run with "rss", it builds them all and
// prints its resident memory; BenchmarkFootprint compares it with clientgo.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/leader"
)

func main() {
	if _, _, err := kubeapi.Config(kubeapi.Options{}); err != nil && len(os.Args) > 2 {
		fmt.Println(err)
	}
	c, err := kubeapi.New(kubeapi.Prepare(&rest.Config{Host: "https://127.0.0.1:1"}, kubeapi.Options{UserAgent: "footprint"}))
	if err != nil {
		panic(err)
	}
	inf := cache.NewSharedIndexInformer(c.Namespaces().ListWatch(nil), &corev1.Namespace{}, 0, cache.Indexers{})
	el := leader.New(c, "default", "footprint", leader.DefaultTimes)
	if len(os.Args) > 2 { // never: keeps the calls linked
		ctx := context.Background()
		go inf.RunWithContext(ctx)
		_ = el.Run(ctx, func(context.Context) {})
		_, _ = c.Secrets("x").Get(ctx, "y", metav1.GetOptions{})
	}
	if len(os.Args) > 1 && os.Args[1] == "rss" {
		runtime.GC()
		status, _ := os.ReadFile("/proc/self/status")
		for line := range strings.Lines(string(status)) {
			if strings.HasPrefix(line, "VmRSS:") {
				fmt.Print(line)
			}
		}
	}
}
