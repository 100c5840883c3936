// Package testwait holds the one wait the tests share: a channel receive that
// fails the test instead of hanging it.
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
