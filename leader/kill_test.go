package leader_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/leader"
)

// helperEnv makes the test binary a replica (helperMain) instead of running
// tests: KUBECONFIG names its user, the value "<namespace>/<identity>".
const helperEnv = "LEADER_TEST_REPLICA"

// helperMain is one replica as its own process: it campaigns, writes
// markers while leading, prints "leading" and "following <holder>" lines,
// and on SIGTERM stops and releases the lease.
func helperMain() int {
	ns, id, _ := strings.Cut(os.Getenv(helperEnv), "/")
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		fmt.Println("error", err)
		return 2
	}
	c, err := kubeapi.New(kubeapi.Prepare(cfg, kubeapi.Options{UserAgent: "leader-test"}))
	if err != nil {
		fmt.Println("error", err)
		return 2
	}
	el := leader.New(c, ns, id, times)
	log := logrus.New()
	log.SetOutput(os.Stdout)
	el.Logger = log
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	err = el.Run(ctx, func(ctx context.Context) {
		fmt.Println("leading")
		writeMarkers(ctx, c, ns, id)
	})
	fmt.Println("run returned", err)
	if err != nil {
		return 1
	}
	return 0
}

// process is a replica running as a child process.
type process struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	done  chan error
}

func startProcess(t *testing.T, srv *kubetest.Server, ns, id string) *process {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+ns+"/"+id,
		"KUBECONFIG="+kubetest.WriteKubeconfig(t, srv.UserConfig(id, replicaGroup), ns))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("%s's output:\n%s", id, strings.Join(p.output(), "\n"))
		}
	})
	return p
}

func (p *process) output() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

func (p *process) said(s string) bool {
	for _, l := range p.output() {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// Two replica processes: when the leader's process is SIGKILLed (no release,
// no goodbye), the other takes over once the lease expires, never before;
// the markers show one writer at a time. A SIGTERMed leader releases the
// lease on its way out.
func TestElector_TakeoverAfterSIGKILL(t *testing.T) {
	t.Parallel()
	const ns = "leader-kill"
	srv := setup(t, ns)
	a := startProcess(t, srv, ns, "proc-a")
	testwait.For(t, 20*time.Second, "proc-a to lead", func() bool { return a.said("leading") })
	b := startProcess(t, srv, ns, "proc-b")
	testwait.For(t, 20*time.Second, "proc-b to follow proc-a", func() bool { return b.said("following: another replica writes") })
	testwait.For(t, 10*time.Second, "proc-a to write markers", func() bool { return len(writes(t, srv, ns, "secrets", "marker")) >= 3 })

	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	testwait.Recv(t, a.done)
	testwait.For(t, times.LeaseDuration+10*time.Second, "proc-b to lead", func() bool { return b.said("leading") })
	t.Logf("proc-b leads %s after proc-a was killed (lease duration %s)", time.Since(killed).Round(time.Millisecond), times.LeaseDuration)
	testwait.For(t, 10*time.Second, "proc-b to write markers", func() bool {
		return !firstBy(writes(t, srv, ns, "secrets", "marker"), "proc-b").IsZero()
	})
	leases := writes(t, srv, ns, "leases", leader.DefaultLeaseName)
	if gap := firstBy(leases, "proc-b").Sub(lastBy(leases, "proc-a")); gap < times.LeaseDuration {
		t.Errorf("proc-b took the lease %s after proc-a's last renewal, less than the lease duration %s", gap, times.LeaseDuration)
	}

	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := testwait.Recv(t, b.done); err != nil {
		t.Errorf("proc-b after SIGTERM: %v (want exit 0)", err)
	}
	if !b.said("lease released") {
		t.Error("proc-b did not release the lease on SIGTERM")
	}
	checkTurns(t, writes(t, srv, ns, "secrets", "marker"), "proc-a", "proc-b")
}
