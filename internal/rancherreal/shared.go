package rancherreal

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testskip"
)

// Shared is one Rancher server for all the tests of a test binary, started by the first test that
// asks for it and stopped by TestMain:
//
//	var rancher rancherreal.Shared
//
//	func TestMain(m *testing.M) { os.Exit(rancher.Run(m)) }
//
//	func TestSomething(t *testing.T) {
//		srv := rancher.Start(t) // skips (or fails under REQUIRE_RANCHER=1) when the binary is missing
//		p := srv.NewProject(t, "something") // tests isolate themselves by project and user
//	}
type Shared struct {
	mu  sync.Mutex
	srv *Server
	dir string
	err error
}

// Start returns the shared server, starting it on the first call. A start that failed fails every
// test that asks. When the test fails, the tail of Rancher's log is logged.
func (sh *Shared) Start(t testing.TB) *Server {
	t.Helper()
	SkipIfMissing(t)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.srv == nil && sh.err == nil {
		sh.start(t)
	}
	if sh.err != nil {
		t.Fatalf("start the real Rancher server: %v", sh.err)
	}
	srv := sh.srv
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Rancher %s: %s", srv.URL, srv.LogTail(40))
		}
	})
	if err := srv.Alive(); err != nil {
		t.Fatal(err)
	}
	return srv
}

func (sh *Shared) start(t testing.TB) {
	sh.dir, sh.err = os.MkdirTemp("", "rancherreal-")
	if sh.err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	began := time.Now()
	sh.srv, sh.err = New(ctx, sh.dir)
	if sh.err == nil {
		t.Logf("real Rancher %s (%s) ready at %s in %s", sh.srv.Version, sh.srv.Dir, sh.srv.URL, time.Since(began).Round(time.Millisecond))
	}
}

// Stop stops the server if it was started and removes its files.
func (sh *Shared) Stop() error {
	sh.mu.Lock()
	defer sh.mu.Unlock()
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

// Run runs the package's tests and stops the shared server after them; a failed stop fails the run.
func (sh *Shared) Run(m *testing.M) int {
	code := testskip.Main(m) // skips for want of a server are told to the terminal
	if err := sh.Stop(); err != nil {
		code = 1
	}
	return code
}
