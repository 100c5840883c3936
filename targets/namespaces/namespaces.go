package kube

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// DefaultSecretName is the Secret written into each namespace.
const DefaultSecretName = "ecr-credentials"

// Namespaces is the Kubernetes target: one dockerconfigjson Secret, holding
// every managed registry, in each selected namespace, and that Secret in the
// imagePullSecrets of the named ServiceAccounts. It watches namespaces (and
// the named ServiceAccounts) through informers, so a namespace or
// ServiceAccount created later is served within seconds. It caches no Secret:
// the Writer remembers what it wrote.
type Namespaces struct {
	client  Client
	writer  *Writer
	nsInf   cache.SharedIndexInformer
	saInfs  []cache.SharedIndexInformer
	queue   workqueue.TypedRateLimitingInterface[string] // ServiceAccounts to patch, "namespace/name"
	started atomic.Bool
	synced  atomic.Bool
	lastErr atomic.Pointer[error] // the informers' last list/watch failure

	// Selection is which namespaces get the Secret.
	Selection Selection
	// SecretName is the Secret's name in every namespace.
	SecretName string
	// ServiceAccounts are the names of the ServiceAccounts, in each selected
	// namespace, whose imagePullSecrets get the Secret.
	ServiceAccounts []string
	// ScopePrefix is put before each namespace's name to make its scope name
	// (empty when Kubernetes is the only target).
	ScopePrefix string
	// SyncTimeout bounds how long Discover waits for the first listing.
	SyncTimeout time.Duration
	// OnChange is called when a namespace becomes selected (created, labelled),
	// once the first listing is done: the refresher's Wake.
	OnChange func()
	// Logger receives namespace events and ServiceAccount patches.
	Logger logrus.FieldLogger
}

// New returns the target; Start must run before Discover answers.
func New(client Client, sel Selection, secretName string, serviceAccounts []string) *Namespaces {
	n := &Namespaces{client: client, writer: NewWriter(client.CoreV1()), Selection: sel,
		SecretName: secretName, ServiceAccounts: serviceAccounts, SyncTimeout: 30 * time.Second, Logger: logrus.StandardLogger()}
	// The selector, when set, is applied by the server: only matching
	// namespaces are listed, watched and cached.
	n.nsInf = cache.NewSharedIndexInformer(listWatch(func(o *metav1.ListOptions) {
		if sel.Selector != nil {
			o.LabelSelector = sel.Selector.String()
		}
	}, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
		return client.CoreV1().Namespaces().List(ctx, o)
	}, func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
		return client.CoreV1().Namespaces().Watch(ctx, o)
	}), &corev1.Namespace{}, 0, cache.Indexers{})
	_ = n.nsInf.SetTransform(stripManagedFields)
	_, _ = n.nsInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { n.namespaceChanged(nil, obj) },
		UpdateFunc: func(old, obj any) {
			n.namespaceChanged(old, obj)
		},
	})
	if len(serviceAccounts) > 0 {
		n.queue = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "serviceaccounts"})
	}
	for _, sa := range serviceAccounts {
		// One informer per name, limited to it by a field selector: the
		// cluster's other ServiceAccounts are neither listed nor cached.
		inf := cache.NewSharedIndexInformer(listWatch(func(o *metav1.ListOptions) {
			o.FieldSelector = "metadata.name=" + sa
		}, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return client.CoreV1().ServiceAccounts("").List(ctx, o)
		}, func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return client.CoreV1().ServiceAccounts("").Watch(ctx, o)
		}), &corev1.ServiceAccount{}, 0, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
		_ = inf.SetTransform(stripManagedFields)
		_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { n.serviceAccountChanged(obj) },
			UpdateFunc: func(_, obj any) { n.serviceAccountChanged(obj) },
		})
		n.saInfs = append(n.saInfs, inf)
	}
	return n
}

func listWatch(mod func(*metav1.ListOptions), list func(context.Context, metav1.ListOptions) (runtime.Object, error), watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error)) *cache.ListWatch {
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			mod(&o)
			return list(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			mod(&o)
			return watchFn(ctx, o)
		},
	}
}

func stripManagedFields(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

// Start runs the informers until ctx is done; it returns at once. Discover
// waits for their first listing.
func (n *Namespaces) Start(ctx context.Context) {
	if !n.started.CompareAndSwap(false, true) {
		return
	}
	infs := append([]cache.SharedIndexInformer{n.nsInf}, n.saInfs...)
	for i, inf := range infs {
		resource := "namespaces"
		if i > 0 {
			resource = "serviceaccounts"
		}
		_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
			err = apiError("list", resource, "", "", []string{"list", "watch"}, err)
			n.lastErr.Store(&err)
			n.Logger.WithError(err).Warn("kubernetes list/watch failed; retrying")
		})
		go inf.RunWithContext(ctx)
	}
	if n.queue != nil {
		context.AfterFunc(ctx, n.queue.ShutDown)
	}
}

// WaitSynced waits until the informers have listed once, or SyncTimeout or
// ctx ends; the error then says why (the last list failure: a refusal names
// the grant).
func (n *Namespaces) WaitSynced(ctx context.Context) error {
	if !n.started.Load() {
		return errors.New("kube: the target was not started")
	}
	if n.synced.Load() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, n.SyncTimeout)
	defer cancel()
	synced := []cache.InformerSynced{n.nsInf.HasSynced}
	for _, inf := range n.saInfs {
		synced = append(synced, inf.HasSynced)
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		if p := n.lastErr.Load(); p != nil {
			return fmt.Errorf("kubernetes: first listing not done: %w", *p)
		}
		return fmt.Errorf("kubernetes: first listing not done: %w", ctx.Err())
	}
	n.synced.Store(true)
	return nil
}

// namespaceChanged wakes the refresher when a namespace becomes selected.
func (n *Namespaces) namespaceChanged(old, obj any) {
	ns, ok := obj.(*corev1.Namespace)
	if !ok || !n.synced.Load() || !n.Selection.Selects(ns) {
		return
	}
	if o, ok := old.(*corev1.Namespace); ok && n.Selection.Selects(o) {
		return // was selected already
	}
	n.Logger.WithField("namespace", ns.Name).Info("namespace selected")
	if n.OnChange != nil {
		n.OnChange()
	}
}

// Discover returns one scope per selected namespace, sorted by name, from the
// informer's cache (no request).
func (n *Namespaces) Discover(ctx context.Context) ([]refresher.Scope, error) {
	if err := n.WaitSynced(ctx); err != nil {
		return nil, err
	}
	var names []string
	for _, obj := range n.nsInf.GetStore().List() {
		if ns, ok := obj.(*corev1.Namespace); ok && n.Selection.Selects(ns) {
			names = append(names, ns.Name)
		}
	}
	slices.Sort(names)
	scopes := make([]refresher.Scope, len(names))
	for i, name := range names {
		scopes[i] = refresher.Scope{Name: n.ScopePrefix + name, Target: &namespaceTarget{n: n, ns: name}}
	}
	return scopes, nil
}

// namespaceTarget is one namespace.
type namespaceTarget struct {
	n  *Namespaces
	ns string
}

// Sync writes the Secret with every token (a due one makes the whole Secret
// be rewritten, as each write replaces its content) and patches the named
// ServiceAccounts.
func (t *namespaceTarget) Sync(ctx context.Context, due, all []refresher.Token, rec *refresher.Recorder) error {
	n := t.n
	log := rec.Log().WithFields(logrus.Fields{"namespace": t.ns, "secret": n.SecretName})
	auths := Auths(all)
	c := HashAuths(auths)
	id := t.ns + "/" + n.SecretName
	err := func() error {
		if rec.Unchanged(id, c, due[0]) {
			for _, tok := range due[1:] {
				rec.Unchanged(id, c, tok)
			}
			log.Debug("secret unchanged")
			return nil
		}
		if rec.DryRun() {
			log.Info("dry run: would write secret")
			return nil
		}
		res, err := n.writer.Apply(ctx, t.ns, n.SecretName, map[string]string{ManagedByLabel: ManagedBy}, auths, nil)
		if err != nil {
			return err
		}
		var others []refresher.Token
		for _, tok := range all {
			if tok.Host != due[0].Host {
				others = append(others, tok)
			}
		}
		rec.Written(id, c, res, due[0], others...)
		log.WithFields(logrus.Fields{"result": res, "registries": len(all)}).Info("secret written")
		return nil
	}()
	if err == nil {
		err = n.patchServiceAccounts(ctx, t.ns, rec.DryRun(), log)
	}
	for _, tok := range due {
		rec.Done(tok, err)
	}
	return nil
}
