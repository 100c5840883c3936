// Package consumertest is what the consumer targets' tests share beyond
// targettest's environment: the registries their source hands out tokens
// for, the check that a Secret changed only in the fields a consumer reads,
// and Rancher's ClusterRepo.
package consumertest

import (
	"maps"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/consumer"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/targettest"
)

// Hosts are the registries the source hands out tokens for: two private ECR
// registries and ECR Public.
var Hosts = []string{"111122223333.dkr.ecr.us-east-1.amazonaws.com", "444455556666.dkr.ecr.eu-west-1.amazonaws.com", "public.ecr.aws"}

// Unmanaged is an ECR registry host the source never hands out.
const Unmanaged = "999999999999.dkr.ecr.us-east-1.amazonaws.com"

// New returns a targettest.Env on the shared server whose source hands out
// tokens for Hosts, with namespaces created.
func New(t *testing.T, shared *kubetest.Shared, namespaces ...string) *targettest.Env {
	t.Helper()
	e := targettest.New(t, shared, Hosts...)
	for _, ns := range namespaces {
		e.Namespace(ns)
	}
	return e
}

// Namespaces is KUBE_CONSUMER_NAMESPACES set to globs.
func Namespaces(t testing.TB, globs ...string) consumer.Namespaces {
	t.Helper()
	sel, err := consumer.ParseNamespaces(globs)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

// SameButFields fails the test unless after is before with only the data
// keys fields changed: same uid and type, labels, annotations and every other
// key byte for byte.
func SameButFields(t testing.TB, before, after *corev1.Secret, fields ...string) {
	t.Helper()
	if after.UID != before.UID || after.Type != before.Type {
		t.Errorf("secret %s/%s: uid %s type %s, want %s %s: not updated in place", after.Namespace, after.Name, after.UID, after.Type, before.UID, before.Type)
	}
	if !maps.Equal(before.Labels, after.Labels) || !maps.Equal(before.Annotations, after.Annotations) {
		t.Errorf("secret %s/%s: labels or annotations changed: %v %v → %v %v", after.Namespace, after.Name, before.Labels, before.Annotations, after.Labels, after.Annotations)
	}
	for k, v := range before.Data {
		if !slices.Contains(fields, k) && string(after.Data[k]) != string(v) {
			t.Errorf("secret %s/%s: key %s changed", after.Namespace, after.Name, k)
		}
	}
	for k := range after.Data {
		if _, had := before.Data[k]; !had && !slices.Contains(fields, k) {
			t.Errorf("secret %s/%s: key %s added", after.Namespace, after.Name, k)
		}
	}
}

// ClusterRepo creates Rancher's ClusterRepo name (its CRD installed) as Rancher's UI does for an OCI
// repository: spec.url, and spec.clientSecret {name, namespace} unless secretName is "".
func ClusterRepo(t testing.TB, cfg *rest.Config, name, url, secretNS, secretName string) *unstructured.Unstructured {
	t.Helper()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	spec := map[string]any{"url": url}
	if secretName != "" {
		spec["clientSecret"] = map[string]any{"name": secretName, "namespace": secretNS}
	}
	out, err := dyn.Resource(schema.GroupVersionResource{Group: "catalog.cattle.io", Version: "v1", Resource: "clusterrepos"}).Create(t.Context(),
		&unstructured.Unstructured{Object: map[string]any{"apiVersion": "catalog.cattle.io/v1", "kind": "ClusterRepo", "metadata": map[string]any{"name": name}, "spec": spec}},
		metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create ClusterRepo %s: %v", name, err)
	}
	return out
}
