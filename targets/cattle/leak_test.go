package cattle_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testheap"
)

// A run over 10,000 non-matching registries allocates no more than one over
// 100: only the hosts being written are indexed (decoding the others is the
// client's, outside this count). Not parallel: it reads the process's
// allocation counters.
func TestRefresher_AllocsFlatInNonMatchingRegistries(t *testing.T) {
	allocs := func(nonMatching int) float64 {
		r := newListEnv(1, nonMatching)
		return testing.AllocsPerRun(20, func() {
			if err := r.RunOnce(t.Context()); err != nil {
				t.Fatal(err)
			}
		})
	}
	small, large := allocs(100), allocs(10000)
	if large > small*1.05+5 {
		t.Errorf("allocations per run: %.0f with 100 other registries, %.0f with 10,000: they grow", small, large)
	}
	t.Logf("allocations per run: %.0f (100 other registries), %.0f (10,000)", small, large)
}

// A thousand runs over HTTP, a minute apart on the refresher's clock (so
// 16 hours: more than a token's life), leave no goroutine, no live heap and
// no TCP connection behind: connections are reused, not dialled anew. Not
// parallel: it counts the process's goroutines and heap.
func TestRefresher_NoLeakOver1000Runs(t *testing.T) {
	e := newScaleEnv(t, scale{scopes: 3, registries: 20, matching: 2})
	for range 10 { // warm up: connections open, pools settle
		if err := e.r.RunOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	goroutines, heap, dialled := runtime.NumGoroutine(), testheap.Live(), e.conns.Load()
	for range 1000 {
		e.clock.minutes.Add(1)
		if err := e.r.RunOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	// A leak dials on every run (1,056 connections with net/http's default of
	// 2 idle per host); a connection being handed back to the pool as the
	// next request starts may make the client dial once more, and keep both.
	extra := e.conns.Load() - dialled
	if extra > 10 {
		t.Errorf("connections opened: %d in 10 runs, %d after 1,000 more: keep-alive is not reused", dialled, dialled+extra)
	}
	// A leak adds one or more per run; each connection kept holds three (the
	// server's, the client's reader and writer), and one may be between
	// states at the moment of counting.
	if got := runtime.NumGoroutine(); got > goroutines+3+3*int(extra) {
		t.Errorf("goroutines: %d after 10 runs, %d after 1,000 more", goroutines, got)
	}
	// Keeping one password (2,400 bytes) per run would add 2.4 MB; pools and
	// buffers move by some kilobytes.
	grown := int64(testheap.Live()) - int64(heap)
	if grown > 256<<10 {
		t.Errorf("live heap: %d KB after 10 runs, %+d KB after 1,000 more", heap>>10, grown>>10)
	}
	t.Logf("after 10 runs: %d goroutines, %d connections, %d KB live heap; after 1,000 more (%s on the clock): %d, %d, %+d KB",
		goroutines, dialled, heap>>10, time.Duration(e.clock.minutes.Load())*time.Minute, runtime.NumGoroutine(), e.conns.Load(), grown>>10)
}
