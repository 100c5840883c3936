// Package testwait holds the waits the tests share: each fails the test
// instead of hanging it.
package testwait

import (
	"testing"
	"time"
)

// Limit is how long Recv waits before it fails the test.
const Limit = time.Minute

// Recv returns what ch delivers, failing the test when nothing comes within
// Limit: the code under test hangs.
func Recv[T any](t testing.TB, ch <-chan T) T {
	t.Helper()
	timer := time.NewTimer(Limit)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("nothing came within %s: the code under test hangs", Limit)
		panic("unreachable")
	}
}

// For polls cond every 20 ms until it holds, failing the test when d passes
// first; what names the awaited condition in that failure.
func For(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %s", d, what)
		case <-tick.C:
		}
	}
}
