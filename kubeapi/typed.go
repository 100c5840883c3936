package kubeapi

import (
	"context"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// Typed is one resource of one namespace (or cluster-scoped) with objects of
// type T and lists of type L. Its methods take and return what client-go's
// typed clients do, so code written for those reads the same; every failure
// is an *Error.
type Typed[T, L runtime.Object] struct {
	c         *Client
	rc        *rest.RESTClient
	resource  string
	group     string
	namespace string
	verbs     []string
	newObj    func() T
	newList   func() L
}

func newTyped[T, L runtime.Object](c *Client, rc *rest.RESTClient, resource, group, namespace string, newObj func() T, newList func() L) Typed[T, L] {
	return Typed[T, L]{c: c, rc: rc, resource: resource, group: group, namespace: namespace, newObj: newObj, newList: newList}
}

// Needs returns the same handle with verbs as what the caller needs on the
// resource: a refusal then asks for all of them at once, rather than one
// grant per failure.
func (t Typed[T, L]) Needs(verbs ...string) Typed[T, L] {
	t.verbs = slices.Clone(verbs)
	return t
}

func (t Typed[T, L]) fail(verb, name string, err error) error {
	return callError(verb, t.resource, t.group, t.namespace, name, t.verbs, err)
}

// request is a call on the resource, in the namespace when there is one.
func (t Typed[T, L]) request(verb string) *rest.Request {
	return t.rc.Verb(verb).NamespaceIfScoped(t.namespace, t.namespace != "").Resource(t.resource)
}

// Get reads the object name.
func (t Typed[T, L]) Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error) {
	obj := t.newObj()
	err := t.request("GET").Name(name).VersionedParams(&opts, t.c.params).Do(ctx).Into(obj)
	if err != nil {
		var zero T
		return zero, t.fail("get", name, err)
	}
	return obj, nil
}

// List reads the objects opts selects (label and field selectors, limit and
// continue for paging).
func (t Typed[T, L]) List(ctx context.Context, opts metav1.ListOptions) (L, error) {
	list := t.newList()
	req := t.request("GET").VersionedParams(&opts, t.c.params)
	if opts.TimeoutSeconds != nil {
		req = req.Timeout(time.Duration(*opts.TimeoutSeconds) * time.Second)
	}
	if err := req.Do(ctx).Into(list); err != nil {
		var zero L
		return zero, t.fail("list", "", err)
	}
	return list, nil
}

// Watch streams the changes of the objects opts selects, from
// opts.ResourceVersion; the server ends it after opts.TimeoutSeconds.
func (t Typed[T, L]) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	req := t.request("GET").VersionedParams(&opts, t.c.params)
	if opts.TimeoutSeconds != nil {
		req = req.Timeout(time.Duration(*opts.TimeoutSeconds) * time.Second)
	}
	w, err := req.Watch(ctx)
	if err != nil {
		return nil, t.fail("watch", "", err)
	}
	return w, nil
}

// Create creates obj and returns it as stored (as it would be, on a dry run).
func (t Typed[T, L]) Create(ctx context.Context, obj T, opts metav1.CreateOptions) (T, error) {
	opts.DryRun = t.c.dryRunOf(opts.DryRun)
	out := t.newObj()
	err := t.request("POST").VersionedParams(&opts, t.c.params).Body(obj).Do(ctx).Into(out)
	if err != nil {
		var zero T
		return zero, t.fail("create", nameOf(obj), err)
	}
	return out, nil
}

// Update replaces obj. The resourceVersion obj carries makes it conditional:
// a change by anyone since is a 409 Conflict, never overwritten.
func (t Typed[T, L]) Update(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error) {
	opts.DryRun = t.c.dryRunOf(opts.DryRun)
	name := nameOf(obj)
	out := t.newObj()
	err := t.request("PUT").Name(name).VersionedParams(&opts, t.c.params).Body(obj).Do(ctx).Into(out)
	if err != nil {
		var zero T
		return zero, t.fail("update", name, err)
	}
	return out, nil
}

// Patch changes the object name with data of type pt (a JSON merge patch,
// a strategic merge patch, a JSON patch, or a server-side apply
// configuration with opts.FieldManager).
func (t Typed[T, L]) Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions) (T, error) {
	opts.DryRun = t.c.dryRunOf(opts.DryRun)
	out := t.newObj()
	err := t.rc.Patch(pt).NamespaceIfScoped(t.namespace, t.namespace != "").Resource(t.resource).Name(name).
		VersionedParams(&opts, t.c.params).Body(data).Do(ctx).Into(out)
	if err != nil {
		var zero T
		return zero, t.fail("patch", name, err)
	}
	return out, nil
}

// ListWatch is List and Watch for a client-go informer (tools/cache), with
// tweak (when not nil) applied to every request's options: a label or field
// selector the server applies, so only what matches is listed, watched and
// cached.
func (t Typed[T, L]) ListWatch(tweak func(*metav1.ListOptions)) *cache.ListWatch {
	return listWatch(tweak,
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return t.List(ctx, o) },
		t.Watch)
}

func listWatch(tweak func(*metav1.ListOptions), list func(context.Context, metav1.ListOptions) (runtime.Object, error), watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error)) *cache.ListWatch {
	if tweak == nil {
		tweak = func(*metav1.ListOptions) {}
	}
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			tweak(&o)
			return list(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			tweak(&o)
			return watchFn(ctx, o)
		},
	}
}

// dryRunOf is the dryRun option of a write: dryRun=All on a DryRun client.
func (c *Client) dryRunOf(asked []string) []string {
	if c.dryRun && !slices.Contains(asked, metav1.DryRunAll) {
		return append(slices.Clone(asked), metav1.DryRunAll)
	}
	return asked
}

func nameOf(obj runtime.Object) string {
	if m, ok := obj.(metav1.Object); ok {
		return m.GetName()
	}
	return ""
}
