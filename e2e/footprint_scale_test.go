package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
)

// floorWorkers is the concurrency of the apiserver's floor: the same writes
// with an unthrottled client, as many at once as help (past about 16 the
// two cores are the limit).
const floorWorkers = 64

// BenchmarkScale_Kube10000Namespaces measures runs at 10,000 namespaces on a
// real kube-apiserver (issue 22, items 4 and 5), the daemon's binary against
// the API server's own floor in the same run:
//
//   - floor-create-s, floor-update-s: 10,000 Secrets of the daemon's size
//     (a 2,400-character password) created, then updated with the
//     resourceVersion each create returned, by a client with no rate limit,
//     floorWorkers at a time: what the API server can do;
//   - first-run-s (its x-floor): the daemon's first run, 10,000 creates,
//     from its log's run duration; refresh-s (x-floor): its refresh with new
//     tokens, 10,000 updates, nothing else going on; first-run-cpu-s (from
//     start) and refresh-cpu-s: the daemon's CPU time for them;
//   - new-ns-median-ms, new-ns-max-ms, new-ns-count: namespaces created one
//     after another DURING the next refresh, each to its Secret (watched);
//     new-ns-idle-median-ms, new-ns-idle-max-ms: 50 more, once it is idle;
//   - ecr-calls-per-run: GetAuthorizationToken calls over those three runs
//     (one identity, one region; the new namespaces cost none), per run;
//   - remove-5000-cpu-s: the daemon's CPU time while 5,000 of the
//     namespaces are deleted (the informer's events, RemoveScope, metrics),
//     until it is idle again.
//
// The first two ECR answers live 120 s, so the freshness guard refreshes
// every namespace about a minute after start, then a minute later; later
// answers live 12 h. Extra settings
// for the daemon come from SCALE_DAEMON_ENV (e.g. "KUBE_API_QPS=50"), to
// compare. It runs once whatever b.N is: -benchtime 1x.
//
//	KUBEBUILDER_ASSETS=$(scripts/kube-testenv.sh | tail -1) go test -run '^$' -bench Scale_Kube -benchtime 1x -timeout 30m ./e2e/
func BenchmarkScale_Kube10000Namespaces(b *testing.B) {
	const n = 10000
	srv := kubetest.Start(b)
	bin := footprintBinary(b)
	admin := kubetest.Clientset(b, srv.AdminConfig())
	createNamespaces(b, admin, "sc", n)
	ecrURL, ecrCalls := startECR(b, func(call int64) time.Duration {
		if call <= 2 {
			return 120 * time.Second
		}
		return 12 * time.Hour
	})
	for i := 0; b.Loop(); i++ {
		if i > 0 {
			continue // one process start is the measurement
		}
		floorCreate, floorUpdate := floor(b, srv, "sc", n)
		b.ReportMetric(floorCreate.Seconds(), "floor-create-s")
		b.ReportMetric(floorUpdate.Seconds(), "floor-update-s")

		sw := watchSecrets(b, srv, secretName)
		d := startDaemon(b, bin, srv, ecrURL, append([]string{"KUBE_NAMESPACES=sc-*,late-*"}, strings.Fields(os.Getenv("SCALE_DAEMON_ENV"))...)...)
		d.waitFor(b, 15*time.Minute, 100*time.Millisecond, "the first run", func() bool { return len(d.lines("run finished")) >= 1 })
		first := runDuration(b, d.lines("run finished")[0])
		cpuFirst := d.cpu(b)
		b.ReportMetric(first.Seconds(), "first-run-s")
		b.ReportMetric(cpuFirst.Seconds(), "first-run-cpu-s")
		b.ReportMetric(first.Seconds()/floorCreate.Seconds(), "first-run-x-floor")

		d.waitFor(b, 5*time.Minute, 100*time.Millisecond, "the refresh", func() bool { return len(d.lines("run finished")) >= 2 })
		refresh := runDuration(b, d.lines("run finished")[1])
		b.ReportMetric(refresh.Seconds(), "refresh-s")
		b.ReportMetric((d.cpu(b) - cpuFirst).Seconds(), "refresh-cpu-s")
		b.ReportMetric(refresh.Seconds()/floorUpdate.Seconds(), "refresh-x-floor")

		// The next refresh: namespaces created one after another while it writes.
		d.waitFor(b, 5*time.Minute, 20*time.Millisecond, "the second refresh", func() bool { _, upd := sw.count(); return upd > n })
		var lat []time.Duration
		for k := 0; ; k++ {
			if _, upd := sw.count(); upd >= 2*n {
				break
			}
			lat = append(lat, lateNamespace(b, d, admin, sw, fmt.Sprintf("late-%05d", k)))
		}
		d.waitFor(b, time.Minute, 100*time.Millisecond, "the second refresh's end", func() bool { return len(d.lines("run finished")) >= 3 })
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "new-ns-median-ms")
		b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "new-ns-max-ms")
		b.ReportMetric(float64(len(lat)), "new-ns-count")
		b.ReportMetric(float64(ecrCalls.Load())/3, "ecr-calls-per-run")

		// Then with nothing else going on: 50 namespaces one after another.
		idle := make([]time.Duration, 0, 50)
		for k := range cap(idle) {
			idle = append(idle, lateNamespace(b, d, admin, sw, fmt.Sprintf("late-idle-%05d", k)))
		}
		slices.Sort(idle)
		b.ReportMetric(float64(idle[len(idle)/2].Microseconds())/1000, "new-ns-idle-median-ms")
		b.ReportMetric(float64(idle[len(idle)-1].Microseconds())/1000, "new-ns-idle-max-ms")

		// 5,000 namespaces go: what the daemon spends on them.
		before := d.settleCPU(b, 2*time.Second)
		parallel(b, n/2, 32, func(i int) error {
			return admin.CoreV1().Namespaces().Delete(context.Background(), fmt.Sprintf("sc-%05d", 2*i), metav1.DeleteOptions{})
		})
		after := d.settleCPU(b, 3*time.Second)
		b.ReportMetric((after - before).Seconds(), "remove-5000-cpu-s")
		if _, upd := sw.count(); upd > 2*n {
			b.Logf("%d updates seen: a refresh overlapped the measurements", upd)
		}
		d.stop(b)
	}
}

// lateNamespace creates namespace name and returns how long its Secret took
// to appear (watched).
func lateNamespace(b *testing.B, d *daemon, admin kubernetes.Interface, sw *secretWatch, name string) time.Duration {
	b.Helper()
	t0 := time.Now()
	if _, err := admin.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	d.waitFor(b, time.Minute, time.Millisecond, "the late namespace's Secret", func() bool { return !sw.addedAt(name).IsZero() })
	return sw.addedAt(name).Sub(t0)
}

// runDuration is a "run finished" line's duration.
func runDuration(b *testing.B, line map[string]any) time.Duration {
	b.Helper()
	d, err := time.ParseDuration(fmt.Sprint(line["duration"]))
	if err != nil {
		b.Fatalf("run line %v: %v", line, err)
	}
	return d
}

// floor creates, then updates, a Secret of the daemon's shape and size in
// each of the n namespaces prefix-…, with an unthrottled client,
// floorWorkers at a time, and returns how long each pass took.
func floor(b *testing.B, srv *kubetest.Server, prefix string, n int) (create, update time.Duration) {
	b.Helper()
	cfg := srv.UserConfig("floor", "system:masters")
	cfg.QPS = -1 // no client-side rate limit
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	secret := func(ns string, pw int64) *corev1.Secret {
		host := "111122223333.dkr.ecr.us-east-1.amazonaws.com"
		p := realPassword(pw)
		auth := base64.StdEncoding.EncodeToString([]byte("AWS:" + p))
		return &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "floor", Namespace: ns, Labels: map[string]string{kubesecret.ManagedByLabel: "floor"}},
			Type:       corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{corev1.DockerConfigJsonKey: fmt.Appendf(nil, `{"auths":{%q:{"username":"AWS","password":%q,"auth":%q}}}`,
				host, p, auth)},
		}
	}
	rv := make([]string, n)
	var writes atomic.Int64
	start := time.Now()
	parallel(b, n, floorWorkers, func(i int) error {
		s, err := c.CoreV1().Secrets(fmt.Sprintf("%s-%05d", prefix, i)).Create(context.Background(), secret(fmt.Sprintf("%s-%05d", prefix, i), 1), metav1.CreateOptions{})
		if err == nil {
			rv[i] = s.ResourceVersion
			writes.Add(1)
		}
		return err
	})
	create = time.Since(start)
	start = time.Now()
	parallel(b, n, floorWorkers, func(i int) error {
		s := secret(fmt.Sprintf("%s-%05d", prefix, i), 2)
		s.ResourceVersion = rv[i]
		_, err := c.CoreV1().Secrets(s.Namespace).Update(context.Background(), s, metav1.UpdateOptions{})
		return err
	})
	update = time.Since(start)
	b.Logf("floor: %d creates in %s, %d updates in %s (%d at once, no rate limit)", writes.Load(), create.Round(time.Millisecond),
		n, update.Round(time.Millisecond), floorWorkers)
	return create, update
}
