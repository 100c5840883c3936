package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/ecrsource/ecrtest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/apptest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testbin"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
)

// BenchmarkFootprint_Kube1000Namespaces measures the daemon's idle memory
// with 1,000 namespaces watched (issue 12's target: under 40 MB): the real
// binary against a real kube-apiserver, KUBE_NAMESPACES=all, ECR served by
// the ecrtest stand-in. Once /readyz answers 200 and every namespace holds
// its Secret, it waits for RSS to stop rising, then reports VmRSS and VmHWM
// (the peak) from /proc/<pid>/status in MB, and checks SIGTERM ends the
// process with 0.
//
// The measurement is of one process start, so it runs once whatever b.N is:
// run it with -benchtime 1x.
func BenchmarkFootprint_Kube1000Namespaces(b *testing.B) {
	const count = 1000
	srv := kubetest.Start(b)
	bin := testbin.Binary(b)
	cfg := srv.AdminConfig()
	cfg.QPS, cfg.Burst = 500, 1000
	admin, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	for i := range count {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("footprint-%04d", i)}}
		if _, err := admin.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	ecrSrv := httptest.NewServer(ecrtest.New(apptest.Account, "us-east-1"))
	b.Cleanup(ecrSrv.Close)

	var rss, hwm float64
	for i := 0; b.Loop(); i++ {
		if i > 0 {
			continue // one process start is the measurement
		}
		rss, hwm = kubeFootprint(b, bin, srv, admin, ecrSrv.URL, count)
	}
	b.ReportMetric(rss, "idle-rss-MB")
	b.ReportMetric(hwm, "peak-rss-MB")
}

// kubeFootprint runs the daemon over the cluster's namespaces and returns its
// settled VmRSS and its VmHWM, in MB.
func kubeFootprint(b *testing.B, bin string, srv *kubetest.Server, admin kubernetes.Interface, ecrURL string, count int) (rss, hwm float64) {
	b.Helper()
	dir := b.TempDir()
	port := testbin.FreePort(b)
	logFile, err := os.Create(filepath.Join(dir, "daemon.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logFile.Close()
	log := func() string { out, _ := os.ReadFile(logFile.Name()); return lastLines(string(out), 30) }

	cmd := exec.Command(bin)
	cmd.Env = []string{"HOME=" + dir, "KUBECONFIG=" + kubetest.WriteKubeconfig(b, srv.AdminConfig(), ""),
		"KUBE_NAMESPACES=all", "AWS_REGION=us-east-1", "AWS_ECR_REGISTRY_IDS=" + apptest.Account, "LISTEN_PORT=" + port,
		"AWS_ENDPOINT_URL_ECR=" + ecrURL, "AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=y", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "none")}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{}) // closed once waitErr is set
	go func() { waitErr = cmd.Wait(); close(exited) }()
	b.Cleanup(func() {
		_ = cmd.Process.Kill() // an error when it has exited already
		<-exited
	})

	// Ready: /readyz answers 200, and every namespace holds its Secret. (The
	// first is not enough: /readyz judges the credentials recorded so far, so
	// it turns 200 with the first Secrets written, while the run goes on.)
	began := time.Now()
	ctx, cancel := context.WithTimeout(b.Context(), 2*time.Minute)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	wait := func(what string) {
		select {
		case <-ctx.Done():
			b.Fatalf("%s: gave up after %s\n%s", what, time.Since(began).Round(time.Second), log())
		case <-exited:
			b.Fatalf("%s: the daemon exited: %v\n%s", what, waitErr, log())
		case <-tick.C:
		}
	}
	for readyzStatus(ctx, port) != http.StatusOK {
		wait("/readyz 200")
	}
	b.Logf("/readyz 200 after %s", time.Since(began).Round(time.Millisecond))
	tick.Reset(500 * time.Millisecond)
	for n := 0; n != count; n = ownedSecrets(b, admin, "footprint-") {
		wait(fmt.Sprintf("the Secret in all %d namespaces (%d so far)", count, n))
	}
	b.Logf("the Secret in all %d namespaces after %s", count, time.Since(began).Round(time.Millisecond))

	// Settled: no new high in RSS over 10 samples (2 s) in a row.
	tick.Reset(200 * time.Millisecond)
	high, still := int64(0), 0
	for still < 10 {
		wait("RSS settling")
		kb := procStatus(b, cmd.Process.Pid)["VmRSS"]
		if kb > high {
			high, still = kb, 0
		} else {
			still++
		}
	}
	st := procStatus(b, cmd.Process.Pid)
	b.Logf("%d namespaces watched: VmRSS %d kB (RssAnon %d kB, RssFile %d kB), VmHWM %d kB",
		count, st["VmRSS"], st["RssAnon"], st["RssFile"], st["VmHWM"])

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		b.Fatal(err)
	}
	select {
	case <-exited:
		if waitErr != nil {
			b.Errorf("exit after SIGTERM: %v, want 0\n%s", waitErr, log())
		}
	case <-ctx.Done():
		b.Fatalf("the daemon did not stop on SIGTERM\n%s", log())
	}
	return float64(st["VmRSS"]) / 1000, float64(st["VmHWM"]) / 1000
}

// secretName is KUBE_SECRET_NAME's default (README.md, "Configuration").
const secretName = "ecr-credentials"

// ownedSecrets counts the namespaces named prefix… that hold this daemon's Secret.
func ownedSecrets(b *testing.B, admin kubernetes.Interface, prefix string) int {
	b.Helper()
	secrets, err := admin.CoreV1().Secrets("").List(b.Context(), metav1.ListOptions{
		FieldSelector: "metadata.name=" + secretName, LabelSelector: kubesecret.ManagedByLabel + "=" + kubesecret.ManagedBy})
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, s := range secrets.Items {
		if strings.HasPrefix(s.Namespace, prefix) {
			n++
		}
	}
	return n
}

func readyzStatus(ctx context.Context, port string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+port+"/readyz", nil)
	if err != nil {
		return 0
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// procStatus reads the memory lines (VmRSS, VmHWM, RssAnon, RssFile), in kB,
// of /proc/<pid>/status.
func procStatus(b *testing.B, pid int) map[string]int64 {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	kb := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		name, rest, _ := strings.Cut(sc.Text(), ":")
		if f := strings.Fields(rest); len(f) == 2 && f[1] == "kB" {
			kb[name], _ = strconv.ParseInt(f[0], 10, 64)
		}
	}
	if kb["VmRSS"] == 0 || kb["VmHWM"] == 0 {
		b.Fatalf("no VmRSS/VmHWM in /proc/%d/status", pid)
	}
	return kb
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
