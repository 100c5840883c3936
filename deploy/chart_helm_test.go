package deploy_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testskip"
)

// The helm CLI and what the chart tests read from its output.

// helmBinary returns the helm CLI scripts/kube-testenv.sh builds (next to kube-apiserver, in
// KUBEBUILDER_ASSETS or the script's cache folder). Missing: skip, or fail under REQUIRE_KUBE=1.
func helmBinary(t *testing.T) string {
	t.Helper()
	var candidates []string
	if dir := os.Getenv(kubetest.EnvAssets); dir != "" {
		candidates = append(candidates, filepath.Join(dir, "helm"))
	}
	cache := os.Getenv("RECC_CACHE_DIR")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache", "rancher-ecr-credentials")
		}
	}
	if cache != "" {
		candidates = append(candidates, filepath.Join(cache, "kube", "bin", "helm"))
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return c
		}
	}
	msg := "helm not found in " + strings.Join(candidates, " or ") + ": run " + kubetest.Script
	testskip.Skip(t, testskip.Kube, msg)
	return ""
}

// helm runs the helm CLI with a private home, so no user configuration or repository is read.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin := helmBinary(t)
	home := t.TempDir()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), &helmError{args: args, err: err, stderr: stderr.String()}
	}
	return stdout.String(), nil
}

type helmError struct {
	args   []string
	err    error
	stderr string
}

func (e *helmError) Error() string {
	return "helm " + strings.Join(e.args, " ") + ": " + e.err.Error() + ": " + e.stderr
}

// renderChart runs helm template with image.repository=testImage and the --set values (which may
// override it), in release release, and returns its output.
func renderChart(t *testing.T, release string, set ...string) (string, error) {
	t.Helper()
	args := []string{"template", release, chartDir, "--namespace", chartNS, "--kube-version", kubeVersion, "--set", "image.repository=" + testImage}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	return helm(t, args...)
}

// rendered is the chart's output decoded: typed objects for the built-in kinds, unstructured for others.
type rendered struct {
	objects []runtime.Object
}

func decodeManifest(t *testing.T, out string) rendered {
	t.Helper()
	var r rendered
	dec := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(out)))
	for {
		doc, err := dec.Read()
		if err != nil {
			break
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			u := &unstructured.Unstructured{}
			if uerr := u.UnmarshalJSON(mustJSON(t, doc)); uerr != nil {
				t.Fatalf("decode rendered object: %v\n%s", err, doc)
			}
			obj = u
		}
		r.objects = append(r.objects, obj)
	}
	return r
}

// only returns the one rendered object of type T.
func only[T runtime.Object](t *testing.T, r rendered) T {
	t.Helper()
	var found []T
	for _, o := range r.objects {
		if v, ok := o.(T); ok {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		var zero T
		t.Fatalf("%d objects of type %T rendered, want 1", len(found), zero)
	}
	return found[0]
}

func (r rendered) kinds() []string {
	var kinds []string
	for _, o := range r.objects {
		kinds = append(kinds, o.GetObjectKind().GroupVersionKind().Kind)
	}
	return kinds
}

func (r rendered) roles() []*rbacv1.Role {
	var roles []*rbacv1.Role
	for _, o := range r.objects {
		if role, ok := o.(*rbacv1.Role); ok {
			roles = append(roles, role)
		}
	}
	return roles
}

// containerEnv returns the container's environment as name → value ("<secret name>/<key>" for a secretKeyRef).
func containerEnv(d *appsv1.Deployment) map[string]string {
	env := map[string]string{}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		default:
			env[e.Name] = e.Value
		}
	}
	return env
}

// knownEnv is every variable the chart may set: the daemon's settings and the AWS SDK's key pair.
func knownEnv(t *testing.T) map[string]bool {
	t.Helper()
	known := map[string]bool{"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true}
	for _, s := range settings() {
		if !s.noEnv {
			known[s.env] = true
		}
	}
	return known
}

func sortedRules(rules []rbacv1.PolicyRule) []string {
	var out []string
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					rule := g + "/" + res + ":" + v
					if len(r.ResourceNames) > 0 {
						rule += "[" + strings.Join(r.ResourceNames, ",") + "]"
					}
					out = append(out, rule)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

func mustJSON(t *testing.T, doc []byte) []byte {
	t.Helper()
	j, err := utilyaml.ToJSON(doc)
	if err != nil {
		t.Fatalf("rendered YAML: %v\n%s", err, doc)
	}
	return j
}

func stripComments(doc []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line...)
			out = append(out, '\n')
		}
	}
	return out
}
