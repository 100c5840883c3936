package kubetest

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testskip"
)

// Shared is one server for all the tests of a test binary, started by the first test that asks for it
// and stopped by TestMain:
//
//	var kube kubetest.Shared
//
//	func TestMain(m *testing.M) { os.Exit(kube.Run(m)) }
//
//	func TestSomething(t *testing.T) {
//		srv := kube.Start(t) // skips (or fails under REQUIRE_KUBE=1) when the binaries are missing
//		...
//	}
//
// Tests sharing a server isolate themselves with their own namespaces and user names. A test that
// asks again (go test -count=N runs every test N times) gets a fresh server, so fixed namespace
// names never meet what an earlier run of the same test left behind.
type Shared struct {
	mu   sync.Mutex
	srv  *Server
	dir  string
	err  error
	done map[string]bool // tests the current server was handed to that have finished
}

// Start returns the shared server, starting it on the first call, and anew when this test already
// had the current one. A start that failed fails every test that asks for the server.
func (sh *Shared) Start(t testing.TB) *Server {
	t.Helper()
	SkipIfMissing(t)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.done[t.Name()] {
		// A repeated run of a finished test: every test of the previous run has finished
		// too (go test runs the whole list once per count), so nothing uses the old server.
		if err := sh.stop(); err != nil {
			t.Fatalf("stop the previous shared kube-apiserver: %v", err)
		}
		sh.srv, sh.err = nil, nil
	}
	if sh.srv == nil && sh.err == nil {
		sh.start(t)
	}
	if sh.err != nil {
		t.Fatalf("start shared kube-apiserver: %v", sh.err)
	}
	srv := sh.srv
	t.Cleanup(func() {
		sh.mu.Lock()
		defer sh.mu.Unlock()
		if sh.srv == srv {
			sh.done[t.Name()] = true
		}
	})
	return srv
}

func (sh *Shared) start(t testing.TB) {
	sh.done = map[string]bool{}
	sh.dir, sh.err = os.MkdirTemp("", "kubetest-")
	if sh.err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	began := time.Now()
	sh.srv, sh.err = New(ctx, sh.dir)
	if sh.err == nil {
		t.Logf("shared kube-apiserver %s ready in %s", sh.srv.URL, time.Since(began).Round(time.Millisecond))
	}
}

// Stop stops the server if it was started and removes its files.
func (sh *Shared) Stop() error {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.stop()
}

func (sh *Shared) stop() error {
	var err error
	if sh.srv != nil {
		err = sh.srv.Stop()
	}
	if sh.dir != "" {
		_ = os.RemoveAll(sh.dir)
	}
	sh.srv, sh.dir = nil, ""
	return err
}

// Run runs the package's tests (TestMain: os.Exit(server.Run(m))) and stops
// the shared server after them; a failed stop fails the run. Skips for want
// of a server are told to the terminal (testskip.Main).
func (sh *Shared) Run(m *testing.M) int {
	code := testskip.Main(m)
	if err := sh.Stop(); err != nil {
		code = 1
	}
	return code
}
