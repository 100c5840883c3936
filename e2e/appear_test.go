package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/apptest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testbin"
)

// Issue 22 on a real kube-apiserver, with the daemon's binary: namespaces
// appear one every 4 seconds over 48 seconds of 16-second tokens (real-size
// passwords).
//
//   - Each new namespace holds its Secret, written with the token in hand,
//     before that token expires (8 to 16 s after the namespace appears, as
//     the token was refreshed at half its life; the time each took is
//     logged, speed is for the benchmarks), and the token it holds had not
//     expired when it was written.
//   - Refreshes come together: about one GetAuthorizationToken per half token
//     life whatever the number of namespaces (the old per-namespace schedule
//     made 67 calls in 60 s for 10 namespaces).
//   - At the end every namespace holds a token that has not expired, and
//     /readyz says ready.
//   - The metric series are the same at 12 namespaces and at 50.
//
// The token life (16 s, refreshed at half of it) and the spacing stay above
// the daemon's floor of 5 s between retries; RETRY_MIN_INTERVAL=5s lets the
// freshness guard refresh that often (its 30 s default is also the shortest
// time between two refreshes of a registry: README.md, "Credentials that
// never lapse").
func TestBinary_NamespacesAppearOverAMinute(t *testing.T) {
	t.Parallel()
	const (
		life    = 16 * time.Second
		every   = 4 * time.Second
		appear  = 12
		later   = 50
		prefix  = "appear"
		written = "the Secret of namespace %s"
	)
	srv := kubetest.Start(t)
	admin := kubetest.Clientset(t, srv.AdminConfig())
	var expiries sync.Map // call number → the expiry it answered
	ecrURL, calls := startECR(t, func(n int64) time.Duration { expiries.Store(n, time.Now().Add(life)); return life })
	sw := watchSecrets(t, srv, secretName)
	d := startDaemon(t, testbin.Binary(t), srv, ecrURL, "KUBE_NAMESPACES="+prefix+"-*", "LOG_LEVEL=info", "RETRY_MIN_INTERVAL=5s")

	create := func(i int) string {
		name := fmt.Sprintf("%s-%02d", prefix, i)
		if _, err := admin.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		return name
	}
	// inHand is when the newest token ECR handed out expires: the one the
	// daemon holds (or is about to, the answer on its way).
	inHand := func() time.Time {
		for n := calls.Load(); n > 0; n-- {
			if exp, ok := expiries.Load(n); ok {
				return exp.(time.Time)
			}
		}
		t.Fatal("no token handed out yet")
		return time.Time{}
	}
	d.waitFor(t, time.Minute, 50*time.Millisecond, "the daemon's first run", func() bool { return len(d.lines("run finished")) >= 1 })
	start := time.Now()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := range appear {
		name := create(i)
		t0, exp := time.Now(), inHand()
		d.waitFor(t, time.Until(exp), 10*time.Millisecond, fmt.Sprintf(written+" before the token in hand expired (%s)", name, exp.Format(time.TimeOnly)),
			func() bool { return !sw.addedAt(name).IsZero() })
		added := sw.addedAt(name)
		s, err := admin.CoreV1().Secrets(name).Get(t.Context(), secretName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if carried := issuedExpiry(t, s, &expiries); !carried.After(added) {
			t.Errorf("namespace %s was given a token that had expired at %s, at %s", name, carried.Format(time.TimeOnly), added.Format(time.TimeOnly))
		}
		t.Logf("+%4.1fs %s written in %s, %s before the token in hand expired (%d ECR calls so far)", time.Since(start).Seconds(), name,
			added.Sub(t0).Round(time.Millisecond), exp.Sub(added).Round(time.Millisecond), calls.Load())
		select {
		case <-tick.C:
		case <-t.Context().Done():
			t.Fatal("cancelled")
		}
	}
	elapsed := time.Since(start)
	// One call at start, then one per half token life.
	want := 1 + int64(elapsed/(life/2))
	if got := calls.Load(); got > want+2 {
		t.Errorf("%d GetAuthorizationToken calls in %s of %s tokens for %d namespaces, want about %d", got, elapsed.Round(time.Second), life, appear, want)
	} else {
		t.Logf("%d GetAuthorizationToken calls in %s (about %d expected)", got, elapsed.Round(time.Second), want)
	}

	now := time.Now()
	list, err := admin.CoreV1().Secrets("").List(context.Background(), metav1.ListOptions{FieldSelector: "metadata.name=" + secretName})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != appear {
		t.Errorf("%d Secrets, want %d", len(list.Items), appear)
	}
	for _, s := range list.Items {
		if exp := issuedExpiry(t, &s, &expiries); !exp.After(now) {
			t.Errorf("namespace %s holds a token that expired at %s", s.Namespace, exp.Format(time.TimeOnly))
		}
	}
	if code, _, _ := d.get(t, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz answered %d with every namespace written", code)
	}

	before := metricSeries(t, d)
	for i := appear; i < later; i++ {
		create(i)
	}
	d.waitFor(t, time.Minute, 20*time.Millisecond, fmt.Sprintf("%d Secrets", later), func() bool { added, _ := sw.count(); return added == later })
	if after := metricSeries(t, d); after != before {
		t.Errorf("%d metric series at %d namespaces, %d at %d: the series grow with the cluster", before, appear, after, later)
	}
	// No password in /readyz, /metrics or the log (the part every answer shares).
	var out []byte
	for _, path := range []string{"/readyz", "/metrics"} {
		out = append(out, endpointBody(t, d, path)...)
	}
	d.stop(t)
	log, err := os.ReadFile(d.logPath)
	if err != nil {
		t.Fatal(err)
	}
	apptest.NoSecrets(t, string(append(out, log...)), realPassword(1)[15:79])
}

// endpointBody is the body the daemon answers at path.
func endpointBody(t *testing.T, d *daemon, path string) []byte {
	t.Helper()
	resp, err := http.Get("http://127.0.0.1:" + d.port + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// issuedExpiry is when the token s holds expires: its password is
// realPassword(n) of the n-th ECR answer, whose expiry is in expiries.
func issuedExpiry(t *testing.T, s *corev1.Secret, expiries *sync.Map) time.Time {
	t.Helper()
	var cfg struct {
		Auths map[string]struct{ Password string } `json:"auths"`
	}
	if err := json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg); err != nil || len(cfg.Auths) != 1 {
		t.Fatalf("secret %s/%s: %d entries, %v", s.Namespace, s.Name, len(cfg.Auths), err)
	}
	for _, a := range cfg.Auths {
		n, err := strconv.ParseInt(strings.TrimPrefix(a.Password[:min(15, len(a.Password))], "BENCH"), 10, 64)
		exp, ok := expiries.Load(n)
		if err != nil || !ok {
			t.Fatalf("secret %s/%s: a password this test did not hand out", s.Namespace, s.Name)
		}
		return exp.(time.Time)
	}
	return time.Time{}
}
