// Package skipper is a package whose tests skip for want of servers, for
// TestMain_TellsTheTerminal: run with `go test` as a person would.
package skipper

import (
	"os"
	"testing"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testskip"
)

func TestMain(m *testing.M) { os.Exit(testskip.Main(m)) }

func TestRuns(t *testing.T) {}

func TestNeedsKubeA(t *testing.T) { testskip.Skip(t, testskip.Kube, "no binaries here") }

func TestNeedsKubeB(t *testing.T) {
	t.Parallel()
	testskip.Skip(t, testskip.Kube, "no binaries here")
}

func TestNeedsMoto(t *testing.T) { testskip.Skip(t, testskip.Moto, "no moto_server here") }
