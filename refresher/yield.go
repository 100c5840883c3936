package refresher

import (
	"context"
	"sync"
	"time"
)

// maxYield bounds how long a run's worker holds back for express writes at
// a time, so a stream of new namespaces slows a refresh and never stops it.
const maxYield = time.Second

// yielder lets a run's workers hold back while express writes are in flight:
// at the API server every request in flight shares its time, so a new
// namespace's write beside Workers bulk writes would take Workers times as
// long as alone (issue 22, item 5: new namespace → Secret under 50 ms
// during a 10,000-namespace refresh).
type yielder struct {
	mu   sync.Mutex
	n    int           // express writes in flight
	idle chan struct{} // closed while n == 0
}

func newYielder() *yielder {
	idle := make(chan struct{})
	close(idle)
	return &yielder{idle: idle}
}

// enter marks an express write in flight; leave, its end.
func (y *yielder) enter() {
	y.mu.Lock()
	defer y.mu.Unlock()
	if y.n == 0 {
		y.idle = make(chan struct{})
	}
	y.n++
}

func (y *yielder) leave() {
	y.mu.Lock()
	defer y.mu.Unlock()
	if y.n--; y.n == 0 {
		close(y.idle)
	}
}

// wait returns once no express write is in flight, after maxYield, or when
// ctx is done.
func (y *yielder) wait(ctx context.Context) {
	y.mu.Lock()
	idle := y.idle
	y.mu.Unlock()
	select {
	case <-idle:
		return
	default:
	}
	t := time.NewTimer(maxYield)
	defer t.Stop()
	select {
	case <-idle:
	case <-t.C:
	case <-ctx.Done():
	}
}
