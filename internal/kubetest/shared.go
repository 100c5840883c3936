package kubetest

import (
	"testing"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testshared"
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
	testshared.Shared[*Server]
}

// kind is how a shared kube-apiserver starts.
var kind = testshared.Kind[*Server]{Name: "shared kube-apiserver", Dir: "kubetest-", Timeout: StartTimeout, New: New,
	Describe: func(s *Server) string { return s.URL }, Renew: true}

// Start returns the shared server, starting it on the first call, and anew when this test already
// had the current one. A start that failed fails every test that asks for the server.
func (sh *Shared) Start(t testing.TB) *Server {
	t.Helper()
	SkipIfMissing(t)
	return sh.Shared.Start(t, kind)
}
