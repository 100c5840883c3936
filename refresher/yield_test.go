package refresher_test

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// events records what the targets did, in order.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	e.log = append(e.log, s)
	e.mu.Unlock()
}

func (e *events) has(s string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, l := range e.log {
		if l == s {
			return true
		}
	}
	return false
}

// gated plans one write whose Apply records its start and waits for its
// gate (nil: no wait).
type gated struct {
	name string
	ev   *events
	gate chan struct{}
}

func (g *gated) Plan(_ context.Context, in refresher.Input) (refresher.Plan, error) {
	return refresher.Plan{Writes: []refresher.Write{{What: "secret", Object: g.name, Tokens: in.Tokens,
		Apply: func(ctx context.Context) (refresher.Result, error) {
			g.ev.add("start " + g.name)
			if g.gate != nil {
				select {
				case <-g.gate:
				case <-ctx.Done():
					return "", ctx.Err()
				}
			}
			g.ev.add("end " + g.name)
			return refresher.ResultUpdated, nil
		}}}}, nil
}

// While a new scope's express write is in flight, a run's workers take up
// no further scope (at the API server it would share the time the new
// namespace's write needs), and after maxYield they go on regardless
// (issue 22, item 5).
func TestRefresher_ExpressWriteGoesFirst(t *testing.T) {
	t.Parallel()
	for _, release := range []bool{true, false} {
		t.Run(fmt.Sprintf("Released%v", release), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				ev := &events{}
				bulkGate, expressGate := make(chan struct{}), make(chan struct{})
				src := sourceA()
				var scopes []refresher.Scope
				for i := range 3 {
					g := &gated{name: fmt.Sprintf("bulk-%d", i), ev: ev}
					if i == 0 {
						g.gate = bulkGate
					}
					scopes = append(scopes, refresher.Scope{Name: g.name, Group: "namespaces", Target: g})
				}
				c := &clock{now: time.Now()}
				src.clock = c
				r := refresher.New([]refresher.Source{src}, scopes)
				r.Workers = 1
				r.Logger = logrus.New()
				r.Logger.(*logrus.Logger).SetOutput(io.Discard)
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan error, 1)
				go func() { done <- r.Run(ctx, "@every 6h") }()
				synctest.Wait() // the run's one worker is in bulk-0's write
				if !ev.has("start bulk-0") {
					t.Fatalf("the run did not start: %v", ev.log)
				}
				r.AddScope(refresher.Scope{Name: "new", Group: "namespaces", Target: &gated{name: "new", ev: ev, gate: expressGate}})
				synctest.Wait()
				if !ev.has("start new") {
					t.Fatalf("the express write did not start beside the run: %v", ev.log)
				}
				close(bulkGate) // bulk-0 ends while the express write is in flight
				synctest.Wait()
				if ev.has("start bulk-1") {
					t.Fatalf("the run took up another scope while the express write was in flight: %v", ev.log)
				}
				if release {
					close(expressGate)
				} else {
					time.Sleep(time.Second + time.Millisecond) // maxYield: the run goes on regardless
				}
				synctest.Wait()
				if !ev.has("start bulk-1") {
					t.Errorf("the run did not go on: %v", ev.log)
				}
				if !release {
					close(expressGate)
				}
				cancel()
				<-done
			})
		})
	}
}
