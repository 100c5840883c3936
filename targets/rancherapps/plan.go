package rancherapps

import (
	"context"
	"errors"
	"fmt"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/consumer"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// detail is what decides the Secret's content besides the token.
const detail = "rancher-apps basic-auth"

// scope is the scope of one ClusterRepo.
func (t *Target) scope(name string) refresher.Scope {
	return refresher.Scope{Name: ScopeName(name), Group: Group, Target: &clusterRepo{t: t, name: name}}
}

// clusterRepo is one ClusterRepo, as the refresher's Target.
type clusterRepo struct {
	t    *Target
	name string
}

// Plan is one write: username AWS and the token of the url's registry as
// password, in the ClusterRepo's clientSecret. A registry this daemon does
// not manage is no consumer of it: the scope plans nothing and leaves the
// refresher. A clientSecret outside KUBE_CONSUMER_NAMESPACES, or one that
// another ClusterRepo of another registry shares, is refused.
func (c *clusterRepo) Plan(_ context.Context, want refresher.Input) (refresher.Plan, error) {
	t := c.t
	rp, ok := t.get(c.name)
	if !ok {
		return refresher.Plan{}, nil
	}
	host, ok := t.ociHost(rp.url)
	if !ok || clientSecretProblem(rp) != "" || !t.scopes.Managed(want, ScopeName(c.name), host) {
		return refresher.Plan{}, nil
	}
	fail := func(err error) (refresher.Plan, error) { return consumer.Fail(host, err), nil }
	ns, name := rp.secretNS, rp.secretName
	if !t.Namespaces.Selects(ns) {
		return fail(refresher.Permanent(fmt.Errorf("ClusterRepo %s: its clientSecret %s/%s is in a namespace KUBE_CONSUMER_NAMESPACES (%s) leaves out: add %s to it, or move the Secret",
			c.name, ns, name, t.Namespaces, ns)))
	}
	if other := t.sharing(rp, host); other != "" {
		return fail(refresher.Permanent(fmt.Errorf("ClusterRepo %s: its clientSecret %s/%s is also the clientSecret of ClusterRepo %s, of another registry; one Secret holds one registry's password: give each ClusterRepo its own Secret",
			c.name, ns, name, other)))
	}
	tok, err := consumer.Token(want, host)
	if err != nil {
		return fail(err)
	}
	edit := kubesecret.BasicAuth(kubesecret.Auth{Username: tok.Username, Password: tok.Password})
	edit.Check = func(s *corev1.Secret) error {
		if s.Type != corev1.SecretTypeBasicAuth && s.Type != corev1.SecretTypeOpaque {
			return refresher.Permanent(fmt.Errorf("ClusterRepo %s: its clientSecret %s/%s has type %s; Rancher logs in to an OCI repository with a %s Secret: create one and point spec.clientSecret at it",
				c.name, ns, name, s.Type, corev1.SecretTypeBasicAuth))
		}
		return nil
	}
	// A clientSecret that is not there is named with the command that creates it.
	explain := func(res refresher.Result, err error) (refresher.Result, error) {
		if errors.Is(err, kubesecret.ErrNoSecret) {
			err = fmt.Errorf("ClusterRepo %s: %w; create it: kubectl -n %s create secret generic %s --type=%s --from-literal=username=AWS --from-literal=password=pending",
				c.name, err, ns, name, corev1.SecretTypeBasicAuth)
		}
		return res, err
	}
	w := consumer.Write(t.writer, ns, name, tok, edit)
	apply, check := w.Apply, w.Check
	w.Apply = func(ctx context.Context) (refresher.Result, error) { return explain(apply(ctx)) }
	w.Check = func(ctx context.Context) (refresher.Result, error) { return explain(check(ctx)) }
	w.Detail = detail
	// The Secret is not watched: one never written or read is checked.
	w.Stale = !t.writer.Known(ns, name)
	w.Fields = logrus.Fields{"consumer": Group, "clusterrepo": c.name, "namespace": ns, "secret": name}
	return refresher.Plan{Writes: []refresher.Write{w}}, nil
}

// sharing names another ClusterRepo, of another registry, whose clientSecret
// is rp's; "" when none is.
func (t *Target) sharing(rp repo, host string) string {
	for _, obj := range t.inf.GetStore().List() {
		o, ok := repoOf(obj)
		if !ok || o.name == rp.name || o.secretNS != rp.secretNS || o.secretName != rp.secretName {
			continue
		}
		if h, ok := t.ociHost(o.url); ok && h != host {
			return o.name
		}
	}
	return ""
}
