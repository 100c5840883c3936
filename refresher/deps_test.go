package refresher_test

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The refresher is the pure scheduler: it imports no AWS package, no
// Kubernetes package and no platform client of this repository
// (docs/architecture.md). Checked on what `go list -deps` resolves.
func TestRefresher_ImportsNoPlatform(t *testing.T) {
	t.Parallel()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.CommandContext(t.Context(), goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	const repo = "github.com/rancher-ecr-credentials/rancher-ecr-credentials/"
	forbidden := []string{"github.com/aws/", "k8s.io/", "sigs.k8s.io/", repo + "rancherapi", repo + "targets",
		repo + "kubeapi", repo + "kubesecret", repo + "leader", repo + "ecrsource", repo + "multihost", repo + "internal/app"}
	pkgs := strings.Fields(string(out))
	if len(pkgs) < 10 {
		t.Fatalf("go list -deps listed %d packages: %q", len(pkgs), out)
	}
	for _, p := range pkgs {
		for _, f := range forbidden {
			if strings.HasPrefix(p, f) {
				t.Errorf("refresher depends on %s", p)
			}
		}
	}
}
