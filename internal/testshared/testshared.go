// Package testshared shares one slow real server (a kube-apiserver with etcd,
// the real Rancher server) among all the tests of a test binary: the first
// test that asks starts it, TestMain stops it. kubetest.Shared and
// rancherreal.Shared are this with their own server.
package testshared

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testskip"
)

// Server is what is shared: a started server (a pointer) that Stop stops.
type Server interface {
	comparable
	Stop() error
}

// Kind says how to start a server of kind S and what to call it.
type Kind[S Server] struct {
	// Name names the server in the log line of its start and in the error of a failed one.
	Name string
	// Dir is the prefix of the temporary folder each server gets (removed by Stop).
	Dir string
	// Timeout bounds a start.
	Timeout time.Duration
	// New starts a server with its files in dir.
	New func(ctx context.Context, dir string) (S, error)
	// Describe says where a started server is, for the log line of its start.
	Describe func(S) string
	// Renew gives a test that asks again (go test -count=N runs every test N times) a fresh server,
	// so that fixed names never meet what an earlier run of the same test left behind.
	Renew bool
}

// Shared is one server of kind S for the tests of a test binary. The zero value is ready.
type Shared[S Server] struct {
	mu   sync.Mutex
	srv  S
	up   bool
	dir  string
	err  error
	done map[string]bool // tests the current server was handed to that have finished (with Renew)
}

// Start returns the shared server, starting it on the first call (and, with k.Renew, anew when
// this test already had the current one). A start that failed fails every test that asks.
func (sh *Shared[S]) Start(t testing.TB, k Kind[S]) S {
	t.Helper()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if k.Renew && sh.done[t.Name()] {
		// A repeated run of a finished test: every test of the previous run has finished
		// too (go test runs the whole list once per count), so nothing uses the old server.
		if err := sh.stop(); err != nil {
			t.Fatalf("stop the previous %s: %v", k.Name, err)
		}
		sh.err = nil
	}
	if !sh.up && sh.err == nil {
		sh.start(t, k)
	}
	if sh.err != nil {
		t.Fatalf("start %s: %v", k.Name, sh.err)
	}
	srv := sh.srv
	if k.Renew {
		t.Cleanup(func() {
			sh.mu.Lock()
			defer sh.mu.Unlock()
			if sh.up && sh.srv == srv {
				sh.done[t.Name()] = true
			}
		})
	}
	return srv
}

func (sh *Shared[S]) start(t testing.TB, k Kind[S]) {
	sh.done = map[string]bool{}
	sh.dir, sh.err = os.MkdirTemp("", k.Dir)
	if sh.err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), k.Timeout)
	defer cancel()
	began := time.Now()
	sh.srv, sh.err = k.New(ctx, sh.dir)
	if sh.err == nil {
		sh.up = true
		t.Logf("%s %s ready in %s", k.Name, k.Describe(sh.srv), time.Since(began).Round(time.Millisecond))
	}
}

// Stop stops the server if it was started and removes its files.
func (sh *Shared[S]) Stop() error {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.stop()
}

func (sh *Shared[S]) stop() error {
	var err error
	if sh.up {
		err = sh.srv.Stop()
	}
	if sh.dir != "" {
		_ = os.RemoveAll(sh.dir)
	}
	var none S
	sh.srv, sh.up, sh.dir = none, false, ""
	return err
}

// Run runs the package's tests (TestMain: os.Exit(server.Run(m))) and stops the shared server
// after them; a failed stop fails the run. Skips for want of a server are told to the terminal
// (testskip.Main).
func (sh *Shared[S]) Run(m *testing.M) int {
	code := testskip.Main(m)
	if err := sh.Stop(); err != nil {
		code = 1
	}
	return code
}
