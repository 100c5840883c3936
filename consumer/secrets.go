package consumer

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubewatch"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// SecretVerbs are what a target that watches and writes consumer Secrets
// needs on them, for RBAC hints.
var SecretVerbs = []string{"get", "list", "watch", "update"}

// SecretWatch is a label-selected watch of the consumer Secrets of a target,
// the FieldWriter that writes them, and the target's Scopes.
type SecretWatch struct {
	// Namespaces are those whose Secrets are considered.
	Namespaces Namespaces
	// Writer writes the Secrets' fields.
	Writer *kubesecret.FieldWriter
	// Scopes are the target's scopes (set by Start).
	Scopes *Scopes

	infs    map[string]cache.SharedIndexInformer // by namespace, "" for all
	started atomic.Bool
}

// NewSecretWatch watches the Secrets selector matches in the namespaces ns
// selects, keeping of each what keep says. Nothing touches the network
// before Start.
func NewSecretWatch(c *kubeapi.Client, ns Namespaces, selector string, keep Keep) *SecretWatch {
	secrets := func(ns string) kubeapi.Typed[*corev1.Secret, *corev1.SecretList] {
		return c.Secrets(ns).Needs(SecretVerbs...)
	}
	w := &SecretWatch{Namespaces: ns, infs: map[string]cache.SharedIndexInformer{},
		Writer: kubesecret.NewFieldWriter(func(ns string) kubesecret.SecretsAPI { return secrets(ns) })}
	names := ns.Names()
	for i, inf := range SecretInformers(ns, func(ns string) cache.ListerWatcher {
		return secrets(ns).ListWatch(func(lo *metav1.ListOptions) { lo.LabelSelector = selector })
	}, keep) {
		key := ""
		if names != nil {
			key = names[i]
		}
		w.infs[key] = inf
	}
	return w
}

// Start runs the watch until ctx is done, once, the target's scopes going
// into r: changed gets each Secret added or updated (old is nil for a new
// one), deleted each one deleted. It returns as kubewatch.Run does.
func (w *SecretWatch) Start(ctx context.Context, r *refresher.Refresher, log logrus.FieldLogger, timeout time.Duration,
	changed func(old, s *corev1.Secret), deleted func(s *corev1.Secret)) error {
	if r == nil || !w.started.CompareAndSwap(false, true) {
		return errors.New("start needs a refresher and runs once")
	}
	w.Scopes = NewScopes(r, log)
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if s := AsSecret(obj); s != nil {
				changed(nil, s)
			}
		},
		UpdateFunc: func(old, obj any) {
			if s := AsSecret(obj); s != nil {
				changed(AsSecret(old), s)
			}
		},
		DeleteFunc: func(obj any) {
			if s := AsSecret(obj); s != nil {
				deleted(s)
			}
		},
	}
	infs := make([]*kubewatch.Informer, 0, len(w.infs))
	for _, inf := range w.infs {
		infs = append(infs, &kubewatch.Informer{SharedIndexInformer: inf, Handler: handler, Resource: "secrets"})
	}
	return kubewatch.Run(ctx, log, timeout, infs...)
}

// Get returns the Secret namespace/name as the watch holds it.
func (w *SecretWatch) Get(namespace, name string) (*corev1.Secret, bool) {
	inf := w.infs[""]
	if inf == nil {
		inf = w.infs[namespace]
	}
	if inf == nil {
		return nil, false
	}
	obj, ok, _ := inf.GetStore().GetByKey(namespace + "/" + name)
	s, isSecret := obj.(*corev1.Secret)
	return s, ok && isSecret
}

// Changed reports whether an event of s (old: its state before, nil for a
// new one) is a change to plan again for: new, or changed by someone other
// than the Writer. A resync, or the echo of the Writer's own update, is not.
func (w *SecretWatch) Changed(old, s *corev1.Secret) bool {
	return old == nil || (old.ResourceVersion != s.ResourceVersion && !w.Writer.Current(s.Namespace, s.Name, s.ResourceVersion))
}

// Len is how many of the target's Secrets are scopes.
func (w *SecretWatch) Len() int {
	if w.Scopes == nil {
		return 0
	}
	return w.Scopes.Len()
}
