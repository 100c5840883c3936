// Package rancherapps is the consumer target of Rancher Apps' OCI Helm
// repositories: every catalog.cattle.io/v1 ClusterRepo whose spec.url is
// oci://<managed registry>/… has its spec.clientSecret — the
// kubernetes.io/basic-auth Secret Rancher logs in with
// (https://github.com/rancher/rancher/blob/v2.12.3/pkg/apis/catalog.cattle.io/v1/types.go,
// RepoSpec.ClientSecret) — given username AWS and the registry's fresh token.
// ClusterRepos are only read (watched); a ClusterRepo without a clientSecret
// is reported once with the fix and never edited. See docs/consumers.md.
package rancherapps

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/consumer"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubewatch"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// Group names this target's scopes in metrics and readiness summaries.
const Group = "rancher-apps"

// ClusterRepos is Rancher's resource of Helm repositories (cluster-scoped).
var ClusterRepos = schema.GroupVersionResource{Group: "catalog.cattle.io", Version: "v1", Resource: "clusterrepos"}

// Options are the target's settings.
type Options struct {
	// Namespaces are those whose Secrets may be written (KUBE_CONSUMER_NAMESPACES).
	Namespaces consumer.Namespaces
	// ProxyHost is ECR_PROXY_HOST: a repository of that host is a consumer too.
	ProxyHost string
}

// Target watches the ClusterRepos and serves each OCI one of a managed
// registry as a scope. Build it with New, then Start it once.
type Target struct {
	Options
	inf      cache.SharedIndexInformer
	writer   *kubesecret.FieldWriter
	scopes   *consumer.Scopes
	reported sync.Map // ClusterRepo name → the problem reported once
	started  atomic.Bool

	// SyncTimeout bounds how long Start waits for the first listing.
	SyncTimeout time.Duration
	// Logger receives what the watch notices (a ClusterRepo without a clientSecret).
	Logger logrus.FieldLogger
}

// New returns the target; nothing touches the network before Start.
func New(c *kubeapi.Client, o Options) *Target {
	t := &Target{Options: o, SyncTimeout: consumer.DefaultSyncTimeout, Logger: logrus.StandardLogger(),
		writer: kubesecret.NewFieldWriter(func(ns string) kubesecret.SecretsAPI { return c.Secrets(ns).Needs("get", "update") })}
	t.inf = cache.NewSharedIndexInformer(c.Resource(ClusterRepos).Needs("list", "watch").ListWatch(nil), &unstructured.Unstructured{}, consumer.Resync, cache.Indexers{})
	_ = t.inf.SetTransform(slim)
	return t
}

// repo is what this target reads of a ClusterRepo.
type repo struct {
	name, url            string
	secretNS, secretName string
	hasSecret            bool
}

func repoOf(obj any) (repo, bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return repo{}, false
	}
	r := repo{name: u.GetName()}
	r.url, _, _ = unstructured.NestedString(u.Object, "spec", "url")
	cs, has, _ := unstructured.NestedMap(u.Object, "spec", "clientSecret")
	if has && cs != nil {
		r.secretName, _ = cs["name"].(string)
		r.secretNS, _ = cs["namespace"].(string)
		r.hasSecret = r.secretName != ""
	}
	return r, true
}

// slim keeps of a ClusterRepo its name, resourceVersion, spec.url and
// spec.clientSecret; its status (index downloads, conditions) is not kept.
func slim(obj any) (any, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return obj, nil
	}
	out := &unstructured.Unstructured{Object: map[string]any{"apiVersion": u.GetAPIVersion(), "kind": u.GetKind(), "spec": map[string]any{}}}
	out.SetName(u.GetName())
	out.SetResourceVersion(u.GetResourceVersion())
	if url, ok, _ := unstructured.NestedString(u.Object, "spec", "url"); ok {
		_ = unstructured.SetNestedField(out.Object, url, "spec", "url")
	}
	if cs, ok, _ := unstructured.NestedMap(u.Object, "spec", "clientSecret"); ok {
		_ = unstructured.SetNestedMap(out.Object, cs, "spec", "clientSecret")
	}
	return out, nil
}

// ScopeName is the scope of the ClusterRepo name.
func ScopeName(name string) string { return Group + "/" + name }

// ociHost is the registry of an oci:// url that can be one this daemon
// writes for.
func (t *Target) ociHost(url string) (string, bool) {
	if !strings.HasPrefix(strings.ToLower(strings.TrimSpace(url)), "oci://") {
		return "", false
	}
	host, ok := consumer.HostOf(url)
	return host, ok && consumer.ECRLike(host, t.ProxyHost)
}

// Start runs the ClusterRepo watch until ctx is done, pushing each OCI
// ClusterRepo of a managed registry into r as a scope. It returns once the
// first listing is done, at once with the refusal when the server refuses it
// (or has no ClusterRepo resource: Rancher is not installed), or after
// SyncTimeout with the last failure.
func (t *Target) Start(ctx context.Context, r *refresher.Refresher) error {
	if r == nil || !t.started.CompareAndSwap(false, true) {
		return errors.New("rancher-apps: Start needs a refresher and runs once")
	}
	t.scopes = consumer.NewScopes(r, t.Logger)
	err := kubewatch.Run(ctx, t.Logger, t.SyncTimeout, &kubewatch.Informer{SharedIndexInformer: t.inf, Resource: "clusterrepos.catalog.cattle.io",
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { t.changed(nil, obj) },
			UpdateFunc: t.changed,
			DeleteFunc: t.deleted,
		}})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("rancher-apps consumers: this cluster has no ClusterRepo resource (%s), so Rancher is not installed in it: run the daemon against Rancher's local cluster, or leave rancher-apps out of KUBE_CONSUMERS: %w", ClusterRepos.GroupResource(), err)
	}
	if err != nil {
		return fmt.Errorf("rancher-apps consumers: %w", err)
	}
	return nil
}

func (t *Target) changed(old, obj any) {
	rp, ok := repoOf(obj)
	if !ok {
		return
	}
	host, ok := t.ociHost(rp.url)
	if !ok {
		t.scopes.Drop(ScopeName(rp.name))
		t.reported.Delete(rp.name)
		return
	}
	if problem := clientSecretProblem(rp); problem != "" {
		t.scopes.Drop(ScopeName(rp.name))
		if prev, _ := t.reported.Swap(rp.name, problem); prev != problem && !t.scopes.Unmanaged(host) {
			t.Logger.WithFields(logrus.Fields{"clusterrepo": rp.name, "registry": host}).Warn(problem)
		}
		return
	}
	t.reported.Delete(rp.name)
	was, hadOld := repoOf(old)
	changed := old == nil || !hadOld || was.url != rp.url || was.secretNS != rp.secretNS || was.secretName != rp.secretName
	t.scopes.Put(t.scope(rp.name), host, true, changed)
}

// clientSecretProblem says what keeps a ClusterRepo's credential from being
// written, with the fix; "" when nothing does.
func clientSecretProblem(rp repo) string {
	switch {
	case !rp.hasSecret:
		return fmt.Sprintf("ClusterRepo %s has no spec.clientSecret, so Rancher pulls its charts without credentials and this daemon has nothing to refresh: "+
			"create a kubernetes.io/basic-auth Secret (kubectl -n cattle-system create secret generic %s-ecr --type=kubernetes.io/basic-auth --from-literal=username=AWS --from-literal=password=pending) "+
			"and set spec.clientSecret to {name: %s-ecr, namespace: cattle-system}; the ClusterRepo is never edited here", rp.name, rp.name, rp.name)
	case rp.secretNS == "":
		return fmt.Sprintf("ClusterRepo %s: spec.clientSecret.namespace is empty, and Rancher reads the Secret %s in that namespace only: set spec.clientSecret.namespace to the Secret's namespace", rp.name, rp.secretName)
	}
	return ""
}

func (t *Target) deleted(obj any) {
	if rp, ok := repoOf(obj); ok {
		t.scopes.Drop(ScopeName(rp.name))
		t.reported.Delete(rp.name)
	}
}

// get returns the ClusterRepo name as the watch holds it.
func (t *Target) get(name string) (repo, bool) {
	obj, ok, _ := t.inf.GetStore().GetByKey(name)
	if !ok {
		return repo{}, false
	}
	return repoOf(obj)
}

// Len is how many ClusterRepos are scopes.
func (t *Target) Len() int {
	if t.scopes == nil {
		return 0
	}
	return t.scopes.Len()
}

// Empty says why no ClusterRepo is a scope; "" when some is.
func (t *Target) Empty() string {
	if t.Len() > 0 {
		return ""
	}
	return "no ClusterRepo has an oci:// url of a registry this daemon manages and a spec.clientSecret"
}
