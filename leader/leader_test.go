package leader_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/kube"
)

// switchable cuts a replica off the API server, as a killed or partitioned
// process is: it stops renewing without releasing the lease. It counts the
// writes (non-GET, non-lease requests) the replica makes.
type switchable struct {
	rt     http.RoundTripper
	dead   *atomic.Bool
	writes *atomic.Int64
}

func (s switchable) RoundTrip(req *http.Request) (*http.Response, error) {
	if s.dead.Load() {
		return nil, errors.New("replica killed")
	}
	if req.Method != http.MethodGet && !strings.Contains(req.URL.Path, "/leases") {
		s.writes.Add(1)
	}
	return s.rt.RoundTrip(req)
}

type replica struct {
	name   string
	dead   atomic.Bool
	writes atomic.Int64
	el     *kube.Elector
	done   chan error
	cancel context.CancelFunc
}

// Two daemons, one lease: only the leader writes; the follower reports a
// fresh leader; when the leader is cut off it stops writing and the follower
// takes over within the lease duration.
func TestElector_TakeoverAfterLeaderDies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.namespaces(map[string]map[string]string{"le-a": nil, "le-lease": nil})
	times := kube.LeaseTimes{LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 250 * time.Millisecond}
	sel, _ := kube.ParseSelection([]string{"le-a"}, "", nil)
	start := func(name string) *replica {
		rp := &replica{name: name, done: make(chan error, 1)}
		cfg := kube.Prepare(e.srv.AdminConfig(), "test")
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return switchable{rt, &rp.dead, &rp.writes} })
		c := client(t, cfg)
		n := kube.New(c, sel, kube.DefaultSecretName, nil)
		r := e.refresher(n)
		r.ShutdownTimeout = 0
		rp.el = kube.NewElector(c, "le-lease", name, times)
		rp.el.Logger = e.log.WithField("replica", name)
		ctx, cancel := context.WithCancel(context.Background())
		rp.cancel = cancel
		go func() {
			rp.done <- rp.el.Run(ctx, func(ctx context.Context) { _ = r.Run(ctx, "@every 1s") })
		}()
		t.Cleanup(func() {
			cancel()
			<-rp.done
		})
		return rp
	}
	a := start("replica-a")
	waitFor(t, 10*time.Second, "replica-a to lead", func() bool { role, _, _ := a.el.Role(time.Now()); return role == "leader" })
	b := start("replica-b")
	waitFor(t, 10*time.Second, "replica-b to see a fresh leader", func() bool {
		role, leader, fresh := b.el.Role(time.Now())
		return role == "follower" && leader == "replica-a" && fresh
	})
	waitFor(t, 10*time.Second, "replica-a to write", func() bool { _, ok := e.secret("le-a", kube.DefaultSecretName); return ok })
	s1, _ := e.secret("le-a", kube.DefaultSecretName)
	if b.writes.Load() != 0 {
		t.Fatalf("the follower wrote %d times", b.writes.Load())
	}

	killed := time.Now()
	a.dead.Store(true)
	aWrites := a.writes.Load()
	select {
	case err := <-a.done:
		if !errors.Is(err, kube.ErrLeaseLost) {
			t.Fatalf("the cut-off leader's Run = %v, want ErrLeaseLost", err)
		}
		a.done <- err       // for the cleanup
		a.dead.Store(false) // back on the network: it must still write nothing
	case <-time.After(times.RenewDeadline + 5*time.Second):
		t.Fatal("the cut-off leader did not stop")
	}
	waitFor(t, times.LeaseDuration+3*time.Second, "replica-b to lead", func() bool { role, _, _ := b.el.Role(time.Now()); return role == "leader" })
	took := time.Since(killed)
	t.Logf("takeover after %s (lease duration %s)", took.Round(time.Millisecond), times.LeaseDuration)
	if took > times.LeaseDuration+times.RetryPeriod+time.Second {
		t.Errorf("takeover took %s, more than the lease duration %s", took, times.LeaseDuration)
	}
	waitFor(t, 10*time.Second, "replica-b to write", func() bool {
		s, ok := e.secret("le-a", kube.DefaultSecretName)
		return ok && s.ResourceVersion != s1.ResourceVersion
	})
	if a.writes.Load() != aWrites {
		t.Error("the old leader wrote after it was cut off")
	}
	s2, _ := e.secret("le-a", kube.DefaultSecretName)
	if s2.UID != s1.UID {
		t.Error("the new leader replaced the secret instead of updating it")
	}
}
