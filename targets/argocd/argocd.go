// Package argocd is the consumer target of Argo CD's repository Secrets: a
// Secret labelled argocd.argoproj.io/secret-type=repository or repo-creds
// whose url names a registry this daemon manages gets username AWS and the
// registry's fresh token as password, the fields Argo CD reads
// (https://github.com/argoproj/argo-cd/blob/master/docs/operator-manual/declarative-setup.md#repositories,
// and #helm for OCI Helm charts: url with or without oci://, enableOCI).
// Everything else in the Secret stays as it is. Repository Secrets of other
// hosts (git servers, other registries) are not consumers. See
// docs/consumers.md.
package argocd

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/consumer"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

const (
	// Group names this target's scopes in metrics and readiness summaries.
	Group = "argocd"
	// TypeLabel is the label Argo CD finds its Secrets by; TypeRepository and
	// TypeRepoCreds are the values whose Secrets hold repository credentials
	// (a repository, or a template for every repository under its url).
	TypeLabel      = "argocd.argoproj.io/secret-type"
	TypeRepository = "repository"
	TypeRepoCreds  = "repo-creds"
	// URLKey is the data key of the repository's url.
	URLKey = "url"
)

// Selector selects Argo CD's repository Secrets, server-side.
var Selector = TypeLabel + " in (" + TypeRepository + "," + TypeRepoCreds + ")"

// Options are the target's settings.
type Options struct {
	// Namespaces are those whose Secrets are considered (KUBE_CONSUMER_NAMESPACES).
	Namespaces consumer.Namespaces
	// ProxyHost is ECR_PROXY_HOST: a repository of that host is a consumer too.
	ProxyHost string
}

// Target watches Argo CD's repository Secrets and serves each whose url names
// a managed registry as a scope. Build it with New, then Start it once.
type Target struct {
	Options
	w *consumer.SecretWatch

	// SyncTimeout bounds how long Start waits for the first listing.
	SyncTimeout time.Duration
	// Logger receives what the watch notices.
	Logger logrus.FieldLogger
}

// New returns the target; nothing touches the network before Start.
func New(c *kubeapi.Client, o Options) *Target {
	return &Target{Options: o, SyncTimeout: consumer.DefaultSyncTimeout, Logger: logrus.StandardLogger(),
		w: consumer.NewSecretWatch(c, o.Namespaces, Selector, consumer.Keep{Data: []string{URLKey}, Annotations: []string{kubesecret.RancherCopyAnnotation}})}
}

// ScopeName is the scope of the Secret namespace/name.
func ScopeName(namespace, name string) string { return Group + "/" + namespace + "/" + name }

// Start runs the watch until ctx is done, pushing each repository Secret of
// a managed registry into r as a scope. It returns once the first listing is
// done, at once with the refusal when the server refuses it, or after
// SyncTimeout with the last failure.
func (t *Target) Start(ctx context.Context, r *refresher.Refresher) error {
	if err := t.w.Start(ctx, r, t.Logger, t.SyncTimeout, t.changed, t.deleted); err != nil {
		return fmt.Errorf("argocd consumers: %w", err)
	}
	return nil
}

// hostOf is the registry a repository Secret names, if it can be one this
// daemon writes for.
func (t *Target) hostOf(s *corev1.Secret) (string, bool) {
	if !slices.Contains([]string{TypeRepository, TypeRepoCreds}, s.Labels[TypeLabel]) {
		return "", false
	}
	host, ok := consumer.HostOf(string(s.Data[URLKey]))
	return host, ok && consumer.ECRLike(host, t.ProxyHost)
}

func (t *Target) changed(old, s *corev1.Secret) {
	if !t.w.Namespaces.Selects(s.Namespace) {
		return
	}
	host, ok := t.hostOf(s)
	if !ok || s.DeletionTimestamp != nil || kubesecret.IsRancherCopy(s) {
		t.w.Scopes.Drop(ScopeName(s.Namespace, s.Name))
		return
	}
	t.w.Scopes.Put(t.scope(s.Namespace, s.Name), host, true, t.w.Changed(old, s))
}

func (t *Target) deleted(s *corev1.Secret) {
	t.w.Scopes.Drop(ScopeName(s.Namespace, s.Name))
	t.w.Writer.Forget(s.Namespace, s.Name)
}

// Len is how many repository Secrets are scopes.
func (t *Target) Len() int { return t.w.Len() }

// Empty says why no repository Secret is a scope; "" when some is.
func (t *Target) Empty() string {
	if t.Len() > 0 {
		return ""
	}
	return fmt.Sprintf("no Argo CD repository Secret (label %s) in namespaces %s has a url of a registry this daemon manages",
		Selector, t.w.Namespaces)
}
