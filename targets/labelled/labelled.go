// Package labelled is the consumer target of Secrets labelled
// rancher-ecr-credentials/host=<registry host>: whatever reads them (a
// builder's Docker config, a Helm or Flux basic-auth Secret, Fleet's helm
// Secret) gets the registry's fresh token in the keys its type holds, and
// nothing else in the Secret changes. A label-selected Secret watch pushes one
// scope per such Secret into the refresher as it appears, changes and goes.
// See docs/consumers.md.
package labelled

import (
	"context"
	"fmt"
	"sync"
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
	Group = "labelled"
	// HostLabel names the registry whose credential a Secret holds.
	HostLabel = "rancher-ecr-credentials/host"
	// FormatAnnotation on an Opaque Secret set to FormatDockerConfig makes its
	// key ConfigJSONKey a Docker config (what builders such as Kaniko and
	// BuildKit read as config.json); without it an Opaque Secret gets the
	// keys username and password.
	FormatAnnotation   = "rancher-ecr-credentials/format"
	FormatDockerConfig = "docker-config"
	ConfigJSONKey      = "config.json"
)

// Options are the target's settings.
type Options struct {
	// Namespaces are those whose Secrets are considered (KUBE_CONSUMER_NAMESPACES).
	Namespaces consumer.Namespaces
}

// Target watches the labelled Secrets and serves each as a scope. Build it
// with New, then Start it once.
type Target struct {
	Options
	w      *consumer.SecretWatch
	copies sync.Map // Rancher copies reported, "namespace/name" → true

	// SyncTimeout bounds how long Start waits for the first listing.
	SyncTimeout time.Duration
	// Logger receives what the watch notices (a Rancher copy, list failures).
	Logger logrus.FieldLogger
}

// New returns the target; nothing touches the network before Start.
func New(c *kubeapi.Client, o Options) *Target {
	return &Target{Options: o, SyncTimeout: consumer.DefaultSyncTimeout, Logger: logrus.StandardLogger(),
		w: consumer.NewSecretWatch(c, o.Namespaces, HostLabel, consumer.Keep{Annotations: []string{FormatAnnotation, kubesecret.RancherCopyAnnotation}})}
}

// ScopeName is the scope of the Secret namespace/name.
func ScopeName(namespace, name string) string { return Group + "/" + namespace + "/" + name }

// Start runs the watch until ctx is done, pushing each labelled Secret into r
// as a scope and taking it out when it goes or loses the label. It returns
// once the first listing is done, at once with the refusal when the server
// refuses it, or after SyncTimeout with the last failure.
func (t *Target) Start(ctx context.Context, r *refresher.Refresher) error {
	if err := t.w.Start(ctx, r, t.Logger, t.SyncTimeout, t.changed, t.deleted); err != nil {
		return fmt.Errorf("labelled consumers: %w", err)
	}
	return nil
}

func (t *Target) changed(old, s *corev1.Secret) {
	if !t.w.Namespaces.Selects(s.Namespace) {
		return
	}
	name := ScopeName(s.Namespace, s.Name)
	if s.DeletionTimestamp != nil {
		t.deleted(s)
		return
	}
	if kubesecret.IsRancherCopy(s) {
		t.w.Scopes.Drop(name)
		if _, seen := t.copies.LoadOrStore(s.Namespace+"/"+s.Name, true); !seen {
			t.Logger.WithFields(logrus.Fields{"namespace": s.Namespace, "secret": s.Name}).
				Info("labelled secret left alone: it is a copy Rancher made of a project Secret (" + kubesecret.RancherCopyAnnotation + "); the project Secret it copies is written")
		}
		return
	}
	t.w.Scopes.Put(t.scope(s.Namespace, s.Name), s.Labels[HostLabel], false, t.w.Changed(old, s))
}

func (t *Target) deleted(s *corev1.Secret) {
	t.w.Scopes.Drop(ScopeName(s.Namespace, s.Name))
	t.w.Writer.Forget(s.Namespace, s.Name)
	t.copies.Delete(s.Namespace + "/" + s.Name)
}

// Len is how many labelled Secrets are scopes.
func (t *Target) Len() int { return t.w.Len() }

// Empty says why no labelled Secret is a scope; "" when some is.
func (t *Target) Empty() string {
	if t.Len() > 0 {
		return ""
	}
	return fmt.Sprintf("no Secret labelled %s in namespaces %s: label the Secret a tool reads (kubectl label secret <name> %s=<registry host>)",
		HostLabel, t.Namespaces, HostLabel)
}
