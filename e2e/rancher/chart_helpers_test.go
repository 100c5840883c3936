package rancher

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testbin"
)

// The chart installed with helm into the real Rancher's local cluster (the kube-apiserver Rancher
// runs on), and the daemon run as the chart's Deployment would run it.

var chartPath = filepath.Join("..", "..", "deploy", "chart", "rancher-ecr-credentials")

// helm runs the helm CLI scripts/kube-testenv.sh puts beside kube-apiserver, as the local cluster's
// admin, with a private home; it returns stdout and, on failure, an error holding stderr.
func (e *env) helm(args ...string) (string, error) {
	e.t.Helper()
	assets, err := kubetest.Assets()
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(e.t.Context(), 2*time.Minute)
	defer cancel()
	home := e.t.TempDir()
	kubeconfig := kubetest.WriteKubeconfig(e.t, e.srv.Kube.AdminConfig(), "")
	cmd := exec.CommandContext(ctx, filepath.Join(assets, "helm"), append(args, "--kubeconfig", kubeconfig)...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// installChart runs helm install of the chart as release into namespace release with the --set
// values (the image, text logs at debug level added), and returns helm's output (the NOTES).
func (e *env) installChart(release string, dryRun bool, set ...string) (string, error) {
	e.t.Helper()
	args := []string{"install", release, chartPath, "--namespace", release,
		"--set", "image.repository=registry.example/rancher-ecr-credentials", "--set", "logFormat=text", "--set", "logLevel=debug"}
	if dryRun {
		args = append(args, "--dry-run=server")
	}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	return e.helm(args...)
}

// namespace creates namespace ns in the local cluster (not in any project).
func (e *env) namespace(ns string) {
	e.t.Helper()
	if _, err := e.srv.KubeClient(e.t).CoreV1().Namespaces().Create(e.t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// installed is what a helm install left in the local cluster for its release.
type installed struct {
	deployment *appsv1.Deployment
	sa         *corev1.ServiceAccount
	// grants: "ClusterRole <name>" or "Role <namespace>/<name>" → "verbs resources (groups) [names]" per rule.
	grants map[string][]string
}

// release reads what helm installed for release (objects labelled app.kubernetes.io/instance=release).
func (e *env) release(release string) installed {
	e.t.Helper()
	ctx := e.t.Context()
	kc := e.srv.KubeClient(e.t)
	sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + release}
	var in installed
	deps, err := kc.AppsV1().Deployments(release).List(ctx, sel)
	if err != nil || len(deps.Items) != 1 {
		e.t.Fatalf("the release's Deployment: %v (%d)", err, len(deps.Items))
	}
	in.deployment = &deps.Items[0]
	if in.sa, err = kc.CoreV1().ServiceAccounts(release).Get(ctx, in.deployment.Spec.Template.Spec.ServiceAccountName, metav1.GetOptions{}); err != nil {
		e.t.Fatal(err)
	}
	in.grants = map[string][]string{}
	rules := func(rs []rbacv1.PolicyRule) []string {
		var out []string
		for _, r := range rs {
			s := strings.Join(r.Verbs, ",") + " " + strings.Join(r.Resources, ",") + " (" + strings.Join(r.APIGroups, ",") + ")"
			if len(r.ResourceNames) > 0 {
				s += " [" + strings.Join(r.ResourceNames, ",") + "]"
			}
			out = append(out, s)
		}
		return out
	}
	crs, err := kc.RbacV1().ClusterRoles().List(ctx, sel)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, cr := range crs.Items {
		in.grants["ClusterRole "+cr.Name] = rules(cr.Rules)
	}
	roles, err := kc.RbacV1().Roles("").List(ctx, sel)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, r := range roles.Items {
		in.grants["Role "+r.Namespace+"/"+r.Name] = rules(r.Rules)
	}
	return in
}

// env is the daemon's environment as the Deployment gives it to its container, with each file of a
// mounted Secret or ConfigMap written where the kubelet would put it (under dir instead of /).
func (in installed) env(e *env, dir string) []string {
	e.t.Helper()
	pod := in.deployment.Spec.Template.Spec
	c := pod.Containers[0]
	kc := e.srv.KubeClient(e.t)
	mounts := map[string]string{} // mount path → where its files are here
	for _, m := range c.VolumeMounts {
		for _, v := range pod.Volumes {
			if v.Name != m.Name {
				continue
			}
			var data map[string][]byte
			var items []corev1.KeyToPath
			switch {
			case v.Secret != nil:
				s, err := kc.CoreV1().Secrets(in.deployment.Namespace).Get(e.t.Context(), v.Secret.SecretName, metav1.GetOptions{})
				if err != nil {
					e.t.Fatalf("volume %s: %v", v.Name, err)
				}
				data, items = s.Data, v.Secret.Items
			case v.ConfigMap != nil:
				cm, err := kc.CoreV1().ConfigMaps(in.deployment.Namespace).Get(e.t.Context(), v.ConfigMap.Name, metav1.GetOptions{})
				if err != nil {
					e.t.Fatalf("volume %s: %v", v.Name, err)
				}
				data, items = map[string][]byte{}, v.ConfigMap.Items
				for k, s := range cm.Data {
					data[k] = []byte(s)
				}
			default:
				e.t.Fatalf("volume %s: neither a Secret nor a ConfigMap", v.Name)
			}
			local := filepath.Join(dir, m.Name)
			if err := os.MkdirAll(local, 0o700); err != nil {
				e.t.Fatal(err)
			}
			for _, it := range items {
				if err := os.WriteFile(filepath.Join(local, it.Path), data[it.Key], 0o600); err != nil {
					e.t.Fatal(err)
				}
			}
			mounts[m.MountPath] = local
		}
	}
	var out []string
	for _, ev := range c.Env {
		if ev.ValueFrom != nil {
			e.t.Fatalf("env %s comes from %+v: not expected in this mode", ev.Name, ev.ValueFrom)
		}
		v := ev.Value
		for mp, local := range mounts {
			if rest, ok := strings.CutPrefix(v, mp+"/"); ok {
				v = filepath.Join(local, rest)
			}
		}
		out = append(out, ev.Name+"="+v)
	}
	return out
}

// runChart runs the daemon with --once as the installed chart's container would, with the
// environment extra adds (later entries win): the ECR stand-in's, and the in-cluster identity.
func (e *env) runChart(in installed, extra ...string) string {
	e.t.Helper()
	chart := in.env(e, e.t.TempDir())
	return e.mustRun(append(chart, append(extra, "LISTEN_PORT="+testbin.FreePort(e.t))...)...)
}

// may asks the apiserver whether cfg's user may do verb on resource (group, namespace, name).
func may(t *testing.T, cfg *rest.Config, verb, group, resource, namespace, name string) bool {
	t.Helper()
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.AuthorizationV1().SelfSubjectAccessReviews().Create(t.Context(), &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: verb, Group: group, Resource: resource, Namespace: namespace, Name: name}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r.Status.Allowed
}
