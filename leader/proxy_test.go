package leader_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/logbuf"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/leader"
)

// tcpProxy forwards loopback connections to the API server until cut: then
// it closes every connection, and either refuses new ones (the server is
// gone) or accepts them and never answers (the network drops packets).
type tcpProxy struct {
	ln       net.Listener
	upstream string
	mu       sync.Mutex
	conns    []net.Conn
	cut      bool
	refuse   bool
}

func newProxy(t *testing.T, upstream string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, upstream: upstream}
	t.Cleanup(func() { p.cutOff(true) })
	go p.serve()
	return p
}

func (p *tcpProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut, refuse := p.cut, p.refuse
		if cut && refuse {
			// Accepted just before the listener closed: the server is gone,
			// so this one is dropped too, not held open.
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns = append(p.conns, c)
		p.mu.Unlock()
		if cut {
			continue // held open, never answered
		}
		up, err := net.Dial("tcp", p.upstream)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, up)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); up.Close() }()
		go func() { _, _ = io.Copy(c, up); c.Close() }()
	}
}

// cutOff closes every connection; refuse also stops listening.
func (p *tcpProxy) cutOff(refuse bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut, p.refuse = true, refuse
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	if refuse {
		p.ln.Close()
	}
}

// countRequests counts the requests in flight.
type countRequests struct {
	rt       http.RoundTripper
	inflight *atomic.Int64
}

func (c countRequests) RoundTrip(req *http.Request) (*http.Response, error) {
	c.inflight.Add(1)
	defer c.inflight.Add(-1)
	return c.rt.RoundTrip(req)
}

// A leader whose API server becomes unreachable — gone (connections
// refused) or cut off (no answer at all) — stops writing exactly at the
// renew deadline counted from the start of its last renewal, on its own
// clock (a fake one here, stepped by the test; the Lease and the network
// are real).
func TestElector_ServerUnreachable(t *testing.T) {
	t.Parallel()
	const ns = "leader-unreachable"
	srv := setup(t, ns)
	for _, refuse := range []bool{true, false} {
		name := map[bool]string{true: "Refused", false: "NoAnswer"}[refuse]
		t.Run(name, func(t *testing.T) {
			u, _ := url.Parse(srv.URL)
			proxy := newProxy(t, u.Host)
			cfg := srv.UserConfig("unreachable-"+name, replicaGroup)
			cfg.Host = "https://" + proxy.ln.Addr().String()
			var inflight atomic.Int64
			cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return countRequests{rt, &inflight} })
			fc := clocktesting.NewFakeClock(time.Now())
			el := leader.New(newClient(t, cfg), ns, "unreachable-"+name, times)
			el.Clock = fc
			log := logrus.New()
			logs := &logbuf.Buffer{}
			log.SetOutput(io.MultiWriter(logs, t.Output()))
			log.SetLevel(logrus.DebugLevel)
			el.Logger = log
			leadCtx := make(chan context.Context, 1)
			done := make(chan error, 1)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			go func() {
				done <- el.Run(ctx, func(ctx context.Context) { leadCtx <- ctx; <-ctx.Done() })
			}()
			// settle waits until the elector waits on its clock again after its
			// w-th wait, and returns its count of waits.
			settle := func(w int64) int64 {
				t.Helper()
				testwait.For(t, 30*time.Second, "the elector to wait on its clock", func() bool { return leader.Waits(el) > w })
				return leader.Waits(el)
			}
			var lead context.Context
			w := int64(0)
			for lead == nil { // another subtest's replica may hold the lease: step until it expires
				w = settle(w)
				select {
				case lead = <-leadCtx:
				default:
					fc.Step(times.RetryPeriod)
				}
			}
			fc.Step(times.RetryPeriod) // a renewal through the proxy, started now
			renewed := fc.Now()
			w = settle(w)
			if err := el.LastError(); err != nil {
				t.Fatalf("renewal through the proxy: %v", err)
			}

			proxy.cutOff(refuse)
			stopAt := renewed.Add(times.RenewDeadline)
			for fc.Now().Before(stopAt.Add(-time.Millisecond)) {
				step := min(times.RetryPeriod, stopAt.Add(-time.Millisecond).Sub(fc.Now()))
				fc.Step(step)
				if step == times.RetryPeriod {
					// A retry was due: wait until it failed and the elector
					// waits again, or until its request hangs.
					testwait.For(t, 30*time.Second, "the retry to fail or hang", func() bool {
						return leader.Waits(el) > w || inflight.Load() > 0
					})
					w = leader.Waits(el)
				}
				if lead.Err() != nil {
					t.Fatalf("lead stopped %s after the last renewal, before the renew deadline %s", fc.Now().Sub(renewed), times.RenewDeadline)
				}
			}
			fc.Step(time.Millisecond)
			if err := testwait.Recv(t, done); !errors.Is(err, leader.ErrLeaseLost) {
				t.Fatalf("Run = %v, want ErrLeaseLost", err)
			}
			if lead.Err() == nil {
				t.Fatal("Run returned with lead's context alive")
			}
			want := map[bool]string{true: "connection refused", false: "no answer from the API server by the deadline"}[refuse]
			if el.LastError() == nil || !strings.Contains(logs.String(), want) {
				t.Errorf("LastError = %v; the log does not say %q", el.LastError(), want)
			}
		})
	}
}
