// Package consumers is the kind of target that keeps other consumers of ECR
// credentials in a cluster fresh (CONTRACT: "Other consumers of ECR
// credentials in a cluster"), as the daemon's table of kinds registers it:
// KUBE_CONSUMERS turns on any of three targets — targets/labelled (Secrets
// labelled rancher-ecr-credentials/host), targets/argocd (Argo CD repository
// Secrets) and targets/rancherapps (Rancher Apps' OCI ClusterRepos) — and
// KUBE_CONSUMER_NAMESPACES says whose Secrets they consider. See
// docs/consumers.md.
package consumers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/consumer"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/setup"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/argocd"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/labelled"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/rancherapps"
)

// The settings of this kind, and ECR_PROXY_HOST, read for the host a proxied
// consumer names.
const (
	envConsumers  = "KUBE_CONSUMERS"
	envNamespaces = "KUBE_CONSUMER_NAMESPACES"
	envProxyHost  = "ECR_PROXY_HOST"
)

// The consumer kinds KUBE_CONSUMERS names.
const (
	Labelled    = "labelled"
	ArgoCD      = "argocd"
	RancherApps = "rancher-apps"
	All         = "all"
)

// Kinds are the consumer kinds, in the order --help and logs name them.
var Kinds = []string{Labelled, ArgoCD, RancherApps}

// Kind is the consumers kind of target as the daemon's table registers it.
func Kind() setup.Kind {
	return setup.Kind{
		Section: setup.Section{
			Title: "Other consumers of ECR credentials: Secrets that Rancher Apps, Argo CD, Fleet, builders and others read",
			Requires: "on with " + envConsumers + "; reaches the cluster in-cluster (its ServiceAccount) or through KUBECONFIG; " +
				RancherApps + " needs Rancher's ClusterRepo resource (Rancher's local cluster)",
			Settings: []setup.Setting{
				{Env: envConsumers, Usage: "comma list of consumer kinds to keep fresh: labelled, argocd, rancher-apps, or all"},
				{Env: envNamespaces, Default: All, Usage: "names or globs (team-*) of the namespaces whose Secrets are considered, or all"},
			},
			Notes: []string{
				"labelled:     Secrets labelled " + labelled.HostLabel + "=<registry host>; by type: kubernetes.io/dockerconfigjson gets that",
				"              host's entry, kubernetes.io/basic-auth the keys username and password, Opaque the keys username and password,",
				"              or with annotation " + labelled.FormatAnnotation + "=" + labelled.FormatDockerConfig + " a Docker config in key " + labelled.ConfigJSONKey + ".",
				"argocd:       Argo CD Secrets labelled " + argocd.TypeLabel + "=repository or repo-creds whose url names a managed",
				"              registry (oci://, https:// or bare) get username AWS and password <token>.",
				"rancher-apps: every ClusterRepo with spec.url oci://<managed registry>/… has its spec.clientSecret (basic-auth) written.",
				"Only those fields change; other keys, labels, annotations and the type stay as they are.",
			},
		},
		On:    func(v setup.Values) bool { return len(v.List(envConsumers)) > 0 || v.IsSet(envNamespaces) },
		Build: build,
	}
}

// parseKinds reads KUBE_CONSUMERS.
func parseKinds(p *setup.Counted) []string {
	list := p.List(envConsumers)
	if len(list) == 0 {
		p.Problem(envNamespaces, "set, but %s is not: set %s to labelled, argocd, rancher-apps (comma list) or all", envConsumers, envConsumers)
		return nil
	}
	var out []string
	for _, k := range list {
		k = strings.ToLower(k)
		switch {
		case k == All && len(list) > 1:
			p.Problem(envConsumers, "%q must stand alone", k)
		case k == All:
			return slices.Clone(Kinds)
		case !slices.Contains(Kinds, k):
			p.Problem(envConsumers, "%q is not a consumer kind: use labelled, argocd, rancher-apps (comma list) or all", k)
		case !slices.Contains(out, k):
			out = append(out, k)
		}
	}
	return out
}

// parseNamespaces reads KUBE_CONSUMER_NAMESPACES.
func parseNamespaces(p *setup.Counted) consumer.Namespaces {
	list := p.List(envNamespaces)
	ns, err := consumer.ParseNamespaces(list)
	if err != nil {
		p.Problem(envNamespaces, "%v: use namespace names, globs such as team-*, or all", err)
		return consumer.Namespaces{}
	}
	for _, n := range ns.Names() {
		if errs := validation.IsDNS1123Label(n); len(errs) > 0 {
			p.Problem(envNamespaces, "%q is not a namespace name: %s", n, strings.Join(errs, "; "))
		}
	}
	return ns
}

// target is what the part runs of each consumer target.
type target interface {
	Start(ctx context.Context, r *refresher.Refresher) error
	Len() int
	Empty() string
}

func build(v setup.Values, d setup.Deps) (*setup.Part, error) {
	p := &setup.Counted{Values: v}
	kinds := parseKinds(p)
	ns := parseNamespaces(p)
	if p.N > 0 {
		return nil, nil
	}
	if d.Kubernetes == nil {
		return nil, errors.New("consumers: no Kubernetes configuration to build a client from")
	}
	cfg, _, err := d.Kubernetes()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", envConsumers, err)
	}
	c, err := kubeapi.New(cfg)
	if err != nil {
		return nil, err
	}
	proxy := v.Get(envProxyHost)
	var targets []target
	for _, k := range kinds {
		switch k {
		case Labelled:
			t := labelled.New(c, labelled.Options{Namespaces: ns})
			logTo(&t.Logger, d)
			targets = append(targets, t)
		case ArgoCD:
			t := argocd.New(c, argocd.Options{Namespaces: ns, ProxyHost: proxy})
			logTo(&t.Logger, d)
			targets = append(targets, t)
		case RancherApps:
			t := rancherapps.New(c, rancherapps.Options{Namespaces: ns, ProxyHost: proxy})
			logTo(&t.Logger, d)
			targets = append(targets, t)
		}
	}
	return &setup.Part{Start: start(targets), Empty: empty(targets)}, nil
}

// logTo sets a target's logger to the daemon's, when there is one.
func logTo(l *logrus.FieldLogger, d setup.Deps) {
	if d.Log != nil {
		*l = d.Log
	}
}

// start starts every target at once (each waits for its own first listing)
// and joins their failures: one that cannot list does not stop the others.
func start(targets []target) func(ctx context.Context, r *refresher.Refresher) error {
	return func(ctx context.Context, r *refresher.Refresher) error {
		errs := make([]error, len(targets))
		var wg sync.WaitGroup
		for i, t := range targets {
			wg.Go(func() { errs[i] = t.Start(ctx, r) })
		}
		wg.Wait()
		return errors.Join(errs...)
	}
}

// empty says why no consumer is a scope, from each target; "" when some is.
func empty(targets []target) func() string {
	return func() string {
		var why []string
		for _, t := range targets {
			if t.Len() > 0 {
				return ""
			}
			why = append(why, t.Empty())
		}
		return strings.Join(why, "; ")
	}
}
