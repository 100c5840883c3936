// Package namespaces is the Kubernetes namespaces target: one
// kubernetes.io/dockerconfigjson Secret, holding every managed registry, in
// each selected namespace, and that Secret in the imagePullSecrets of the
// named ServiceAccounts. A namespace informer pushes one scope per selected
// namespace into the refresher as it comes and goes (O(1) each); the
// refresher plans, applies and books. See docs/kubernetes.md.
package namespaces

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubewatch"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/tenantrole"
)

const (
	// DefaultSecretName is the Secret written into each namespace.
	DefaultSecretName = "ecr-credentials"
	// Group names the namespaces' scopes in metrics and readiness summaries.
	Group = "namespaces"
	// ScopePrefix is put before a namespace's name to make its scope name
	// when another kind of target is on too, so the two never share a name.
	ScopePrefix = "namespace/"
	// AnnotationPrefix is the prefix of the namespace annotations this daemon
	// reads (rancher-ecr-credentials/role-arn); the informer keeps no other.
	AnnotationPrefix = "rancher-ecr-credentials/"
	// DefaultSyncTimeout bounds how long Start waits for the first listing.
	DefaultSyncTimeout = 30 * time.Second
)

// Options are the target's settings.
type Options struct {
	Selection Selection
	// SecretName is the Secret's name in every namespace.
	SecretName string
	// ServiceAccounts are the names of the ServiceAccounts, in each selected
	// namespace, whose imagePullSecrets get the Secret.
	ServiceAccounts []string
	// ScopePrefix is put before each namespace's name to make its scope name
	// (ScopePrefix when another kind is on, else empty).
	ScopePrefix string
	// Adopt takes over an existing Secret of SecretName without the ownership
	// label when every host it holds is one this process manages
	// (KUBE_ADOPT_SECRETS). Without it such a Secret is never changed.
	Adopt bool
	// DryRun is --dry-run: ServiceAccounts are patched through the server's
	// dry run only.
	DryRun bool
}

// Target watches the namespaces and serves each selected one as a scope.
// Build it with New, then Start it once.
type Target struct {
	Options
	client  Client
	writer  *kubesecret.Writer
	nsInf   cache.SharedIndexInformer
	nsWatch *kubewatch.Informer // set by Start
	saInfs  []cache.SharedIndexInformer
	r       *refresher.Refresher
	started atomic.Bool
	// selected counts the selected namespaces (for Empty).
	selected atomic.Int64
	// queue is the ServiceAccounts to patch while Lead runs, else nil.
	queue atomic.Pointer[saQueue]

	// SyncTimeout bounds how long Start waits for the first listing.
	SyncTimeout time.Duration
	// Logger receives namespace events, ServiceAccount patches and list
	// failures.
	Logger logrus.FieldLogger
}

// New returns the target; nothing touches the network before Start.
func New(c Client, o Options) *Target {
	if o.SecretName == "" {
		o.SecretName = DefaultSecretName
	}
	t := &Target{Options: o, client: c, SyncTimeout: DefaultSyncTimeout, Logger: logrus.StandardLogger(),
		writer: kubesecret.NewWriter(c.Secrets)}
	// The selector, when set, is applied by the server: only matching
	// namespaces are listed, watched and cached.
	t.nsInf = cache.NewSharedIndexInformer(c.Namespaces().ListWatch(func(o *metav1.ListOptions) {
		if t.Selection.Selector != nil {
			o.LabelSelector = t.Selection.Selector.String()
		}
	}), &corev1.Namespace{}, 0, cache.Indexers{})
	_ = t.nsInf.SetTransform(t.slimNamespace)
	for _, name := range o.ServiceAccounts {
		t.saInfs = append(t.saInfs, t.serviceAccountInformer(name))
	}
	return t
}

// slimNamespace keeps of a namespace what decisions read: its name, its
// labels (when a selector reads them), this daemon's annotations (each cut
// past the longest role ARN), and whether it is being deleted. A cluster's
// namespaces carry much more (managedFields, kubectl's
// last-applied-configuration) that 10,000 of them would keep resident for
// nothing.
func (t *Target) slimNamespace(obj any) (any, error) {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return obj, nil
	}
	out := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns.Name, ResourceVersion: ns.ResourceVersion, DeletionTimestamp: ns.DeletionTimestamp},
		Status: corev1.NamespaceStatus{Phase: ns.Status.Phase}}
	if t.Selection.Selector != nil {
		out.Labels = ns.Labels
	}
	for k, v := range ns.Annotations {
		if strings.HasPrefix(k, AnnotationPrefix) {
			if out.Annotations == nil {
				out.Annotations = map[string]string{}
			}
			switch {
			case k == tenantrole.Annotation:
				v = tenantrole.Identity(v) // trimmed, then bounded: what is cut is refused all the same
			case len(v) > tenantrole.MaxIdentity+1:
				v = v[:tenantrole.MaxIdentity+1]
			}
			out.Annotations[k] = v
		}
	}
	return out, nil
}

// Start runs the informers until ctx is done, pushing each selected
// namespace into r as a scope (AddScope) and taking it out when it leaves the
// selection (RemoveScope). It returns once the first listing is done (the
// scopes of every namespace then selected are in r), or at once with the
// refusal when the server refuses the listing, or after SyncTimeout with the
// last failure.
func (t *Target) Start(ctx context.Context, r *refresher.Refresher) error {
	if r == nil || !t.started.CompareAndSwap(false, true) {
		return errors.New("namespaces: Start needs a refresher and runs once")
	}
	t.r = r
	t.nsWatch = &kubewatch.Informer{SharedIndexInformer: t.nsInf, Resource: "namespaces", Handler: cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { t.namespaceChanged(nil, obj) },
		UpdateFunc: t.namespaceChanged,
		DeleteFunc: t.namespaceDeleted,
	}}
	infs := []*kubewatch.Informer{t.nsWatch}
	for _, inf := range t.saInfs {
		infs = append(infs, &kubewatch.Informer{SharedIndexInformer: inf, Resource: "serviceaccounts", Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    t.serviceAccountChanged,
			UpdateFunc: func(_, obj any) { t.serviceAccountChanged(obj) },
		}})
	}
	if err := kubewatch.Run(ctx, t.Logger, t.SyncTimeout, infs...); err != nil {
		return fmt.Errorf("kubernetes: %w", err)
	}
	return nil
}

func asNamespace(obj any) *corev1.Namespace {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	ns, _ := obj.(*corev1.Namespace)
	return ns
}

// namespaceChanged adds the namespace's scope when it becomes selected
// (created, labelled) and removes it when it stops being (relabelled,
// terminating).
func (t *Target) namespaceChanged(old, obj any) {
	ns := asNamespace(obj)
	if ns == nil {
		return
	}
	was := false
	if o := asNamespace(old); o != nil {
		was = t.Selection.Selects(o)
	}
	switch is := t.Selection.Selects(ns); {
	case is && !was:
		t.selected.Add(1)
		t.r.AddScope(t.scope(ns.Name, roleOf(ns)))
		t.logEvent(ns.Name, roleOf(ns), "namespace selected")
	case was && !is:
		t.deselect(ns.Name)
	case is && roleOf(ns) != roleOf(asNamespace(old)):
		// Its role annotation was added, changed or removed: the scope is
		// replaced, and written at once with the new identity's tokens (or
		// emptied of this daemon's registries, if that identity is refused).
		t.r.AddScope(t.scope(ns.Name, roleOf(ns)))
		t.logEvent(ns.Name, roleOf(ns), "namespace's "+tenantrole.Annotation+" changed; its secret is rewritten with that identity's tokens")
	}
}

func (t *Target) namespaceDeleted(obj any) {
	if ns := asNamespace(obj); ns != nil && t.Selection.Selects(ns) {
		t.deselect(ns.Name)
	}
}

// deselect takes the namespace out at once: its scope with whatever is
// pending for it (a retry, a due refresh), and the writer's record. What the
// namespace holds is left as it is.
func (t *Target) deselect(name string) {
	t.selected.Add(-1)
	t.r.RemoveScope(t.ScopePrefix + name)
	t.writer.Forget(name, t.SecretName)
	t.logEvent(name, "", "namespace no longer selected; what it holds is left as it is")
}

// logEvent logs a namespace's coming, going or change of identity: at info
// once the first listing is done, at debug for the namespaces that listing
// found.
func (t *Target) logEvent(name, identity, msg string) {
	log := t.Logger.WithField("namespace", name)
	if identity != "" {
		log = log.WithField("identity", identity)
	}
	if t.nsWatch != nil && t.nsWatch.Registration.HasSynced() {
		log.Info(msg)
	} else {
		log.Debug(msg)
	}
}

// selectedNow reports whether the informer's cache has name selected.
func (t *Target) selectedNow(name string) bool {
	obj, ok, _ := t.nsInf.GetStore().GetByKey(name)
	ns, isNS := obj.(*corev1.Namespace)
	return ok && isNS && t.Selection.Selects(ns)
}

// Empty says why no namespace is a scope, naming the settings; "" when some
// is.
func (t *Target) Empty() string {
	if t.selected.Load() > 0 {
		return ""
	}
	return fmt.Sprintf("no namespace matches %s: create or label a namespace to match, or change the setting", t.Selection)
}

// Fields describe the target in the start line.
func (t *Target) Fields() logrus.Fields {
	f := logrus.Fields{"kube_namespaces": "all", "kube_secret_name": t.SecretName}
	if len(t.Selection.Include) > 0 {
		f["kube_namespaces"] = strings.Join(t.Selection.Include, ",")
	}
	if t.Selection.Selector != nil {
		f["kube_namespace_selector"] = t.Selection.Selector.String()
	}
	if len(t.Selection.Exclude) > 0 {
		f["kube_exclude_namespaces"] = strings.Join(t.Selection.Exclude, ",")
	}
	if len(t.ServiceAccounts) > 0 {
		f["kube_service_accounts"] = strings.Join(t.ServiceAccounts, ",")
	}
	if t.Adopt {
		f["kube_adopt_secrets"] = true
	}
	return f
}
