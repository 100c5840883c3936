package kube

import (
	"context"
	"errors"
	"slices"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
)

// saVerbs are what patching a ServiceAccount takes, for RBAC hints (list and
// watch serve the informer).
var saVerbs = []string{"get", "list", "watch", "update"}

// ServiceAccounts are patched from the informer's cache, so a run costs no
// read: each one that lacks the Secret in its imagePullSecrets gets it
// appended by an update carrying the resourceVersion seen (409: read again and
// re-check), every other entry kept. ServiceAccounts created later are queued
// by the informer and patched by RunServiceAccounts, which main runs only
// where writing is allowed (the leader).

// serviceAccountChanged queues a named ServiceAccount that lacks the Secret, in
// a selected namespace.
func (n *Namespaces) serviceAccountChanged(obj any) {
	sa, ok := obj.(*corev1.ServiceAccount)
	if !ok || hasPullSecret(sa, n.SecretName) || !n.namespaceSelected(sa.Namespace) {
		return
	}
	n.queue.Add(sa.Namespace + "/" + sa.Name)
}

func (n *Namespaces) namespaceSelected(name string) bool {
	obj, ok, _ := n.nsInf.GetStore().GetByKey(name)
	ns, isNS := obj.(*corev1.Namespace)
	return ok && isNS && n.Selection.Selects(ns)
}

func hasPullSecret(sa *corev1.ServiceAccount, name string) bool {
	return slices.ContainsFunc(sa.ImagePullSecrets, func(r corev1.LocalObjectReference) bool { return r.Name == name })
}

// RunServiceAccounts patches the ServiceAccounts the informers queue (created
// later, or changed to drop the Secret) until ctx is done; failures are logged
// and retried with backoff. Run it only while this process may write.
func (n *Namespaces) RunServiceAccounts(ctx context.Context) {
	if n.queue == nil {
		return
	}
	stop := context.AfterFunc(ctx, n.queue.ShutDown)
	defer stop()
	for {
		key, quit := n.queue.Get()
		if quit || ctx.Err() != nil {
			return
		}
		ns, name, _ := cache.SplitMetaNamespaceKey(key)
		log := n.Logger.WithFields(logrus.Fields{"namespace": ns, "serviceaccount": name})
		err := n.patchServiceAccount(ctx, ns, name, false, log)
		switch {
		case err == nil:
			n.queue.Forget(key)
		case ctx.Err() != nil:
		default:
			log.WithError(err).Error("serviceaccount not patched; retrying")
			n.queue.AddRateLimited(key)
		}
		n.queue.Done(key)
	}
}

// patchServiceAccounts patches each named ServiceAccount of ns that exists;
// one that does not is patched when it appears.
func (n *Namespaces) patchServiceAccounts(ctx context.Context, ns string, dryRun bool, log logrus.FieldLogger) error {
	var errs []error
	for _, name := range n.ServiceAccounts {
		errs = append(errs, n.patchServiceAccount(ctx, ns, name, dryRun, log.WithField("serviceaccount", name)))
	}
	return errors.Join(errs...)
}

// patchServiceAccount appends the Secret to ns/name's imagePullSecrets once.
func (n *Namespaces) patchServiceAccount(ctx context.Context, ns, name string, dryRun bool, log logrus.FieldLogger) error {
	if !n.namespaceSelected(ns) {
		return nil
	}
	cur := n.cachedServiceAccount(ns, name)
	if cur == nil {
		return nil // not there (yet): the informer queues it when it appears
	}
	if hasPullSecret(cur, n.SecretName) {
		return nil
	}
	if dryRun {
		log.Info("dry run: would add the secret to the serviceaccount's imagePullSecrets")
		return nil
	}
	sas := n.client.CoreV1().ServiceAccounts(ns)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if cur == nil {
			s, err := sas.Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return apiError("get", "serviceaccounts", ns, name, saVerbs, err)
			}
			cur = s
		}
		sa := cur
		cur = nil
		if hasPullSecret(sa, n.SecretName) {
			return nil
		}
		sa.ImagePullSecrets = append(sa.ImagePullSecrets, corev1.LocalObjectReference{Name: n.SecretName})
		_, err := sas.Update(ctx, sa, metav1.UpdateOptions{})
		if err == nil {
			log.Info("secret added to the serviceaccount's imagePullSecrets")
		}
		if err != nil && !apierrors.IsConflict(err) {
			return apiError("update", "serviceaccounts", ns, name, saVerbs, err)
		}
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil // deleted meanwhile
	}
	return err
}

// cachedServiceAccount returns a copy of ns/name from its informer, or nil.
func (n *Namespaces) cachedServiceAccount(ns, name string) *corev1.ServiceAccount {
	i := slices.Index(n.ServiceAccounts, name)
	if i < 0 {
		return nil
	}
	obj, ok, _ := n.saInfs[i].GetStore().GetByKey(ns + "/" + name)
	if sa, isSA := obj.(*corev1.ServiceAccount); ok && isSA {
		return sa.DeepCopy()
	}
	return nil
}
