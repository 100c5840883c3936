package tenantrole_test

import (
	"os"
	"testing"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testskip"
)

// TestMain tells the terminal how many tests skipped for want of a real
// server, and the command that provides it (README, "Development").
func TestMain(m *testing.M) { os.Exit(testskip.Main(m)) }
