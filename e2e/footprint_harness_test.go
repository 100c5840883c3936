package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/ecrsource/ecrtest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/apptest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/targettest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testbin"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testproc"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
)

// What the scale benchmarks share (issue 22): the daemon's binary run against
// a real kube-apiserver, ECR served by the stand-in with real-size
// passwords, a watch on the Secrets it writes, and readings of the process.

// benchUser is the client-certificate user the daemon runs as, so the
// server's audit log counts its requests apart.
const benchUser = "rancher-ecr-credentials"

// footprintBinary is the binary to measure: FOOTPRINT_BINARY when set (a
// binary built elsewhere: the Dockerfile's static build, another revision),
// the Dockerfile's own build command under TEST_CROSS_COMPILE=1, else the
// test build (dynamically linked where cgo is on: a little more RSS).
func footprintBinary(b testing.TB) string {
	b.Helper()
	if p := os.Getenv("FOOTPRINT_BINARY"); p != "" {
		return p
	}
	if os.Getenv("TEST_CROSS_COMPILE") == "1" {
		return testbin.Dockerfile(b, runtime.GOOS, runtime.GOARCH)
	}
	return testbin.Binary(b)
}

// realPassword is the n-th password: targettest.PasswordSize characters of
// base64, as real ECR passwords measure (docs/ecr.md; the stand-in's own 30
// would hide what tokens cost). Unlike targettest.NewPassword's it is
// numbered: its first 15 characters, BENCH and n, say which ECR answer it
// was (issuedExpiry reads them).
func realPassword(n int64) string {
	head := fmt.Sprintf("BENCH%010d", n)
	return head + strings.Repeat("eyJwYXlsb2FkIjoi", targettest.PasswordSize/16)[:targettest.PasswordSize-len(head)]
}

// startECR serves GetAuthorizationToken with a new real-size password at
// every call, expiring after life(call) (1 for the first call).
func startECR(b testing.TB, life func(call int64) time.Duration) (url string, calls *atomic.Int64) {
	b.Helper()
	s := ecrtest.New(apptest.Account, "us-east-1")
	calls = &atomic.Int64{}
	s.SetIntercept(func(w http.ResponseWriter, _ *http.Request) bool {
		n := calls.Add(1)
		ecrtest.WriteAnswer(w, time.Now().Add(life(n)), ecrtest.Login{Host: s.Host(apptest.Account), Password: realPassword(n)})
		return true
	})
	srv := httptest.NewServer(s)
	b.Cleanup(srv.Close)
	return srv.URL, calls
}

func twelveHours(int64) time.Duration { return 12 * time.Hour }

// createNamespaces creates prefix-00000… (n of them), 32 at a time.
func createNamespaces(b testing.TB, admin kubernetes.Interface, prefix string, n int) {
	b.Helper()
	parallel(b, n, 32, func(i int) error {
		_, err := admin.CoreV1().Namespaces().Create(context.Background(),
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%05d", prefix, i)}}, metav1.CreateOptions{})
		return err
	})
}

// parallel runs f(0…n-1), workers at a time, and fails b on the first error.
func parallel(b testing.TB, n, workers int, f func(i int) error) {
	b.Helper()
	var next atomic.Int64
	var first atomic.Pointer[error]
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n && first.Load() == nil; i = int(next.Add(1) - 1) {
				if err := f(i); err != nil {
					first.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	wg.Wait()
	if p := first.Load(); p != nil {
		b.Fatal(*p)
	}
}

// daemon is the binary running.
type daemon struct {
	cmd     *exec.Cmd
	port    string
	logPath string
	started time.Time
	exited  chan struct{} // closed once waitErr is set
	waitErr error
}

// startDaemon runs bin as benchUser on srv with ECR at ecrURL, JSON logs, and
// extra settings (NAME=value) on top.
func startDaemon(b testing.TB, bin string, srv *kubetest.Server, ecrURL string, extra ...string) *daemon {
	b.Helper()
	dir := b.TempDir()
	return runDaemon(b, bin, append([]string{"HOME=" + dir, "KUBECONFIG=" + kubetest.WriteKubeconfig(b, srv.UserConfig(benchUser, "system:masters"), ""),
		"AWS_REGION=us-east-1", "AWS_ECR_REGISTRY_IDS=" + apptest.Account, "LOG_FORMAT=json",
		"AWS_ENDPOINT_URL_ECR=" + ecrURL, "AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=y", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "none")}, extra...))
}

// runDaemon runs bin with env and a free LISTEN_PORT, its output in a log
// file, until the benchmark ends.
func runDaemon(b testing.TB, bin string, env []string) *daemon {
	b.Helper()
	d := &daemon{port: testbin.FreePort(b), logPath: filepath.Join(b.TempDir(), "daemon.log"), exited: make(chan struct{})}
	logFile, err := os.Create(d.logPath)
	if err != nil {
		b.Fatal(err)
	}
	defer logFile.Close()
	d.cmd = exec.Command(bin)
	d.cmd.Env = append(env, "LISTEN_PORT="+d.port)
	d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
	d.started = time.Now()
	if err := d.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() { d.waitErr = d.cmd.Wait(); close(d.exited) }()
	b.Cleanup(func() {
		_ = d.cmd.Process.Kill() // an error when it has exited already
		<-d.exited
	})
	return d
}

// tail is the end of the daemon's log.
func (d *daemon) tail() string {
	out, _ := os.ReadFile(d.logPath)
	return testproc.LastLines(string(out), 30)
}

// lines returns the daemon's JSON log lines whose msg holds msg.
func (d *daemon) lines(msg string) []map[string]any {
	f, err := os.Open(d.logPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if !bytes.Contains(sc.Bytes(), []byte(msg)) {
			continue
		}
		var l map[string]any
		if json.Unmarshal(sc.Bytes(), &l) == nil && strings.Contains(fmt.Sprint(l["msg"]), msg) {
			out = append(out, l)
		}
	}
	return out
}

// waitFor polls cond every tick until it holds, failing b after limit or
// when the daemon exits.
func (d *daemon) waitFor(b testing.TB, limit, tick time.Duration, what string, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		select {
		case <-d.exited:
			b.Fatalf("%s: the daemon exited: %v\n%s", what, d.waitErr, d.tail())
		case <-time.After(tick):
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: not within %s\n%s", what, limit, d.tail())
		}
	}
}

// status reads the memory lines of /proc/<pid>/status, in kB.
func (d *daemon) status(b testing.TB) map[string]int64 { return procStatus(b, d.cmd.Process.Pid) }

// cpu is the CPU time the daemon has used (user and system).
func (d *daemon) cpu(b testing.TB) time.Duration {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	// After the command's name in parentheses: state is field 3, utime 14, stime 15.
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

// settleCPU waits until the daemon uses no CPU for quiet (sampled every
// 100 ms) and returns its CPU time then.
func (d *daemon) settleCPU(b testing.TB, quiet time.Duration) time.Duration {
	b.Helper()
	last, since := d.cpu(b), time.Now()
	d.waitFor(b, 5*time.Minute, 100*time.Millisecond, "CPU settling", func() bool {
		if now := d.cpu(b); now != last {
			last, since = now, time.Now()
		}
		return time.Since(since) >= quiet
	})
	return last
}

// settleRSS waits until RSS makes no new high over 10 samples (2 s) in a
// row and returns /proc/<pid>/status then.
func (d *daemon) settleRSS(b testing.TB) map[string]int64 {
	b.Helper()
	high, still := int64(0), 0
	d.waitFor(b, 2*time.Minute, 200*time.Millisecond, "RSS settling", func() bool {
		if kb := d.status(b)["VmRSS"]; kb > high {
			high, still = kb, 0
		} else {
			still++
		}
		return still >= 10
	})
	return d.status(b)
}

// get fetches one of the daemon's endpoints: its status, body size and time.
func (d *daemon) get(b testing.TB, path string) (code, size int, took time.Duration) {
	b.Helper()
	start := time.Now()
	resp, err := http.Get("http://127.0.0.1:" + d.port + path)
	if err != nil {
		return 0, 0, 0
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	return resp.StatusCode, int(n), time.Since(start)
}

// stop sends SIGTERM and wants exit code 0.
func (d *daemon) stop(b testing.TB) {
	b.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		b.Fatal(err)
	}
	select {
	case <-d.exited:
		if d.waitErr != nil {
			b.Errorf("exit after SIGTERM: %v, want 0\n%s", d.waitErr, d.tail())
		}
	case <-time.After(time.Minute):
		b.Fatalf("the daemon did not stop on SIGTERM\n%s", d.tail())
	}
}

// requests counts the requests user made, by verb, from the audit log.
func requests(b testing.TB, srv *kubetest.Server, user string) map[string]int {
	b.Helper()
	evs, err := srv.AuditEvents()
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]int{}
	for _, ev := range evs {
		if ev.User.Username == user {
			out[ev.Verb]++
			out[""]++
		}
	}
	return out
}

// secretWatch follows the Secrets named name that carry the ownership
// label, by their metadata only: when each namespace's appeared, and the
// updates.
type secretWatch struct {
	mu       sync.Mutex
	added    map[string]time.Time
	updates  int
	firstUpd time.Time
	lastUpd  time.Time
	change   chan struct{} // a value after every event
}

func watchSecrets(b testing.TB, srv *kubetest.Server, name string) *secretWatch {
	b.Helper()
	mc, err := metadata.NewForConfig(srv.AdminConfig())
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	w, err := mc.Resource(schema.GroupVersionResource{Version: "v1", Resource: "secrets"}).Namespace("").Watch(ctx, metav1.ListOptions{
		FieldSelector: "metadata.name=" + name, LabelSelector: kubesecret.ManagedByLabel + "=" + kubesecret.ManagedBy})
	if err != nil {
		b.Fatal(err)
	}
	sw := &secretWatch{added: map[string]time.Time{}, change: make(chan struct{}, 1)}
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			m, ok := ev.Object.(*metav1.PartialObjectMetadata)
			if !ok {
				continue
			}
			now := time.Now()
			sw.mu.Lock()
			switch ev.Type {
			case watch.Added:
				sw.added[m.Namespace] = now
			case watch.Modified:
				if sw.updates == 0 {
					sw.firstUpd = now
				}
				sw.updates++
				sw.lastUpd = now
			}
			sw.mu.Unlock()
			select {
			case sw.change <- struct{}{}:
			default:
			}
		}
	}()
	return sw
}

// count returns how many Secrets appeared, and how many updates were seen.
func (sw *secretWatch) count() (added, updates int) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return len(sw.added), sw.updates
}

// addedAt is when namespace's Secret appeared (zero: not yet).
func (sw *secretWatch) addedAt(namespace string) time.Time {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.added[namespace]
}

// first is the earliest appearance.
func (sw *secretWatch) first() time.Time {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	var t time.Time
	for _, at := range sw.added {
		if t.IsZero() || at.Before(t) {
			t = at
		}
	}
	return t
}
