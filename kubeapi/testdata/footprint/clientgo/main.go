// Command clientgo is what the daemon linked for Kubernetes before kubeapi:
// client-go's typed core/v1 and coordination/v1 clients, clientcmd, an
// informer and tools/leaderelection. Run with "rss", it builds them all and
// prints its resident memory.
package main

import (
	"context"
	"fmt"
	"os"
	goruntime "runtime"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

func main() {
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{})
	if _, err := rest.InClusterConfig(); err != nil && len(os.Args) > 2 {
		_, _ = loader.ClientConfig()
	}
	cfg := &rest.Config{Host: "https://127.0.0.1:1", QPS: 200, Burst: 400}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		panic(err)
	}
	core, err := corev1client.NewForConfigAndClient(cfg, hc)
	if err != nil {
		panic(err)
	}
	coord, err := coordinationv1client.NewForConfigAndClient(cfg, hc)
	if err != nil {
		panic(err)
	}
	inf := cache.NewSharedIndexInformer(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return core.Namespaces().List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return core.Namespaces().Watch(ctx, o)
		},
	}, &corev1.Namespace{}, 0, cache.Indexers{})
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{LeaseMeta: metav1.ObjectMeta{Namespace: "default", Name: "footprint"}, Client: coord,
			LockConfig: resourcelock.ResourceLockConfig{Identity: "footprint"}},
		LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
		Callbacks: leaderelection.LeaderCallbacks{OnStartedLeading: func(context.Context) {}, OnStoppedLeading: func() {}},
	})
	if err != nil {
		panic(err)
	}
	if len(os.Args) > 2 { // never: keeps the calls linked
		ctx := context.Background()
		go inf.RunWithContext(ctx)
		le.Run(ctx)
		_, _ = core.Secrets("x").Get(ctx, "y", metav1.GetOptions{})
	}
	if len(os.Args) > 1 && os.Args[1] == "rss" {
		goruntime.GC()
		status, _ := os.ReadFile("/proc/self/status")
		for line := range strings.Lines(string(status)) {
			if strings.HasPrefix(line, "VmRSS:") {
				fmt.Print(line)
			}
		}
	}
}
