package kubetest

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"
)

// Shared is one server for all the tests of a test binary, started by the first test that asks for it
// and stopped by TestMain:
//
//	var kube kubetest.Shared
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		kube.Stop()
//		os.Exit(code)
//	}
//
//	func TestSomething(t *testing.T) {
//		srv := kube.Start(t) // skips (or fails under REQUIRE_KUBE=1) when the binaries are missing
//		...
//	}
//
// Tests sharing a server isolate themselves with their own namespaces and user names.
type Shared struct {
	once sync.Once
	srv  *Server
	dir  string
	err  error
}

// Start returns the shared server, starting it on the first call. A start that failed fails every
// test that asks for the server.
func (sh *Shared) Start(t testing.TB) *Server {
	t.Helper()
	SkipIfMissing(t)
	sh.once.Do(func() {
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
	})
	if sh.err != nil {
		t.Fatalf("start shared kube-apiserver: %v", sh.err)
	}
	return sh.srv
}

// Stop stops the server if it was started and removes its files.
func (sh *Shared) Stop() error {
	var err error
	if sh.srv != nil {
		err = sh.srv.Stop()
	}
	if sh.dir != "" {
		_ = os.RemoveAll(sh.dir)
	}
	return err
}

// Run runs the package's tests (TestMain: os.Exit(server.Run(m))) and stops
// the shared server after them; a failed stop fails the run.
func (s *Shared) Run(m *testing.M) int {
	code := m.Run()
	if err := s.Stop(); err != nil {
		code = 1
	}
	return code
}
