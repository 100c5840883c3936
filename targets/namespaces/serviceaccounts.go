package namespaces

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
)

// The named ServiceAccounts get the Secret appended to their imagePullSecrets
// once, every other entry kept: when the Secret is written (in the write's
// Apply, so only while this replica writes), and, while Lead runs, when one
// appears later or loses it. One informer per name, limited to it by a field
// selector, tells which lack it without a request; a patch reads the
// ServiceAccount and updates it carrying its resourceVersion (a concurrent
// change is a 409, read again), which needs the verbs every install grants
// today.

// saVerbs are what patching a ServiceAccount takes, for RBAC hints (list and
// watch serve the informer).
var saVerbs = []string{"get", "list", "watch", "update"}

const (
	// saRetryMin and saRetryMax bound the backoff of a failed patch.
	saRetryMin = 5 * time.Second
	saRetryMax = 5 * time.Minute
	// saAttempts bounds the re-reads after 409 Conflicts in one patch.
	saAttempts = 5
)

type saQueue = workqueue.TypedRateLimitingInterface[string]

func (t *Target) serviceAccountInformer(name string) cache.SharedIndexInformer {
	inf := cache.NewSharedIndexInformer(t.client.ServiceAccounts("").ListWatch(func(o *metav1.ListOptions) {
		o.FieldSelector = "metadata.name=" + name
	}), &corev1.ServiceAccount{}, 0, cache.Indexers{})
	_ = inf.SetTransform(slimServiceAccount)
	return inf
}

// slimServiceAccount keeps what tells whether the Secret is there.
func slimServiceAccount(obj any) (any, error) {
	sa, ok := obj.(*corev1.ServiceAccount)
	if !ok {
		return obj, nil
	}
	return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa.Name, Namespace: sa.Namespace, ResourceVersion: sa.ResourceVersion},
		ImagePullSecrets: sa.ImagePullSecrets}, nil
}

func hasPullSecret(sa *corev1.ServiceAccount, name string) bool {
	return slices.ContainsFunc(sa.ImagePullSecrets, func(r corev1.LocalObjectReference) bool { return r.Name == name })
}

// serviceAccountChanged queues, while Lead runs, a named ServiceAccount that
// lacks the Secret in a selected namespace where the Secret is written.
func (t *Target) serviceAccountChanged(obj any) {
	sa, ok := obj.(*corev1.ServiceAccount)
	if !ok || hasPullSecret(sa, t.SecretName) || !t.selectedNow(sa.Namespace) || !t.writer.Known(sa.Namespace, t.SecretName) {
		return
	}
	if q := t.queue.Load(); q != nil {
		(*q).Add(sa.Namespace + "/" + sa.Name)
	}
}

// Lead patches the ServiceAccounts that lack the Secret where it is written
// (those there now, those that appear later), until ctx is done. A failure is
// logged and retried with backoff. Run it only while this replica writes.
func (t *Target) Lead(ctx context.Context) {
	if len(t.saInfs) == 0 {
		return
	}
	q := workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](saRetryMin, saRetryMax),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "serviceaccounts"})
	t.queue.Store(&q)
	defer t.queue.CompareAndSwap(&q, nil)
	stop := context.AfterFunc(ctx, q.ShutDown)
	defer stop()
	for _, inf := range t.saInfs {
		for _, obj := range inf.GetStore().List() {
			t.serviceAccountChanged(obj)
		}
	}
	for {
		key, quit := q.Get()
		if quit {
			return
		}
		ns, name, _ := cache.SplitMetaNamespaceKey(key)
		switch err := t.patchServiceAccount(ctx, ns, name, t.DryRun); {
		case err == nil:
			q.Forget(key)
		case ctx.Err() != nil:
		default:
			t.Logger.WithError(err).WithFields(logrus.Fields{"namespace": ns, "serviceaccount": name}).Error("serviceaccount not patched; retrying")
			q.AddRateLimited(key)
		}
		q.Done(key)
	}
}

// patchServiceAccounts adds the Secret to each named ServiceAccount of ns that
// lacks it; one that is not there yet is patched when it appears.
func (t *Target) patchServiceAccounts(ctx context.Context, ns string, dry bool) error {
	var errs []error
	for i, name := range t.ServiceAccounts {
		obj, ok, _ := t.saInfs[i].GetStore().GetByKey(ns + "/" + name)
		if sa, isSA := obj.(*corev1.ServiceAccount); ok && isSA && !hasPullSecret(sa, t.SecretName) {
			errs = append(errs, t.patchServiceAccount(ctx, ns, name, dry))
		}
	}
	return errors.Join(errs...)
}

// patchServiceAccount appends the Secret to ns/name's imagePullSecrets once
// (dry: through the server's dry run).
func (t *Target) patchServiceAccount(ctx context.Context, ns, name string, dry bool) error {
	if !t.selectedNow(ns) {
		return nil
	}
	api := t.client.ServiceAccounts(ns)
	log := t.Logger.WithFields(logrus.Fields{"namespace": ns, "serviceaccount": name, "secret": t.SecretName})
	opts := metav1.UpdateOptions{}
	if dry {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	for range saAttempts {
		sa, err := api.Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return nil // deleted meanwhile
		case err != nil:
			return saError("get", ns, name, err)
		case hasPullSecret(sa, t.SecretName):
			return nil
		}
		sa.ImagePullSecrets = append(sa.ImagePullSecrets, corev1.LocalObjectReference{Name: t.SecretName})
		_, err = api.Update(ctx, sa, opts)
		switch {
		case apierrors.IsConflict(err):
			continue // changed since read: read again
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			return saError("update", ns, name, err)
		case dry:
			log.Info("dry run: would add the secret to the serviceaccount's imagePullSecrets")
		default:
			log.Info("secret added to the serviceaccount's imagePullSecrets")
		}
		return nil
	}
	return saError("update", ns, name, fmt.Errorf("changed by someone else on each of %d attempts", saAttempts))
}

func saError(verb, ns, name string, err error) error {
	var e *kubeapi.Error
	if errors.As(err, &e) {
		return err
	}
	return &kubeapi.Error{Verb: verb, Resource: "serviceaccounts", Namespace: ns, Name: name, Verbs: saVerbs, Err: err}
}
