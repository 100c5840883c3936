package kubeapi_test

import (
	"os/exec"
	"strings"
	"testing"
)

// heavy are the packages kubeapi exists to avoid: the generated clientset and
// typed clients import kubernetes/scheme, which links and registers every
// Kubernetes API group (docs/kubernetes.md); tools/leaderelection imports them.
var heavy = []string{
	"k8s.io/client-go/kubernetes",
	"k8s.io/client-go/kubernetes/scheme",
	"k8s.io/client-go/kubernetes/typed/",
	"k8s.io/client-go/tools/leaderelection",
}

// heavyDeps returns the heavy packages among pkgs' dependencies (tests
// excluded: they may use the clientset to set a cluster up).
func heavyDeps(t *testing.T, pkgs ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list", "-deps"}, pkgs...)...).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list -deps %s: %v\n%s", strings.Join(pkgs, " "), err, stderr)
	}
	var found []string
	for dep := range strings.FieldsSeq(string(out)) {
		for _, h := range heavy {
			if dep == h || (strings.HasSuffix(h, "/") && strings.HasPrefix(dep, h)) || strings.HasPrefix(dep, h+"/") {
				found = append(found, dep)
				break
			}
		}
	}
	return found
}

const module = "github.com/rancher-ecr-credentials/rancher-ecr-credentials/"

// kubeapi and leader never link the generated clients: that is the binary
// size and memory they exist to save.
func TestDependencies_NoGeneratedClients(t *testing.T) {
	t.Parallel()
	if found := heavyDeps(t, module+"kubeapi", module+"leader"); len(found) > 0 {
		t.Errorf("kubeapi or leader depends on %s", strings.Join(found, ", "))
	}
	// The check sees them where they are.
	if found := heavyDeps(t, "k8s.io/client-go/tools/leaderelection"); len(found) < 3 {
		t.Errorf("go list -deps of tools/leaderelection found only %v: the check cannot fail", found)
	}
}
