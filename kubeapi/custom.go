package kubeapi

import (
	"context"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
)

// Custom is a custom resource read as unstructured objects (client-go's
// dynamic client): no Go types, no scheme. It reads only; every failure is
// an *Error.
type Custom struct {
	ri        dynamic.NamespaceableResourceInterface
	gvr       schema.GroupVersionResource
	namespace string
	verbs     []string
}

// Namespace returns the resource in namespace, for a namespaced resource
// ("" or no call: across all namespaces, or a cluster-scoped resource).
func (r Custom) Namespace(namespace string) Custom {
	r.namespace = namespace
	return r
}

// Needs returns the same handle with verbs as what the caller needs on the
// resource, for the RBAC hint of a refusal.
func (r Custom) Needs(verbs ...string) Custom {
	r.verbs = slices.Clone(verbs)
	return r
}

func (r Custom) scoped() dynamic.ResourceInterface {
	if r.namespace == "" {
		return r.ri
	}
	return r.ri.Namespace(r.namespace)
}

func (r Custom) fail(verb, name string, err error) error {
	return callError(verb, r.gvr.Resource, r.gvr.Group, r.namespace, name, r.verbs, err)
}

// Get reads the object name.
func (r Custom) Get(ctx context.Context, name string, opts metav1.GetOptions) (*unstructured.Unstructured, error) {
	obj, err := r.scoped().Get(ctx, name, opts)
	if err != nil {
		return nil, r.fail("get", name, err)
	}
	return obj, nil
}

// List reads the objects opts selects.
func (r Custom) List(ctx context.Context, opts metav1.ListOptions) (*unstructured.UnstructuredList, error) {
	list, err := r.scoped().List(ctx, opts)
	if err != nil {
		return nil, r.fail("list", "", err)
	}
	return list, nil
}

// Watch streams the changes of the objects opts selects.
func (r Custom) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	w, err := r.scoped().Watch(ctx, opts)
	if err != nil {
		return nil, r.fail("watch", "", err)
	}
	return w, nil
}

// ListWatch is List and Watch for a client-go informer, with tweak (when not
// nil) applied to every request's options.
func (r Custom) ListWatch(tweak func(*metav1.ListOptions)) *cache.ListWatch {
	return listWatch(tweak,
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return r.List(ctx, o) },
		r.Watch)
}
