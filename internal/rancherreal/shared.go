package rancherreal

import (
	"fmt"
	"testing"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testshared"
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
	testshared.Shared[*Server]
}

// kind is how the real Rancher server starts; one server serves every test of the binary.
var kind = testshared.Kind[*Server]{Name: "the real Rancher server", Dir: "rancherreal-", Timeout: StartTimeout, New: New,
	Describe: func(s *Server) string { return fmt.Sprintf("%s (%s) at %s", s.Version, s.Dir, s.URL) }}

// Start returns the shared server, starting it on the first call. A start that failed fails every
// test that asks. When the test fails, the tail of Rancher's log is logged.
func (sh *Shared) Start(t testing.TB) *Server {
	t.Helper()
	SkipIfMissing(t)
	srv := sh.Shared.Start(t, kind)
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
