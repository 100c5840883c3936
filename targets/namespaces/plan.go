package namespaces

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// ownLabels are the labels the Secret carries.
var ownLabels = map[string]string{kubesecret.ManagedByLabel: kubesecret.ManagedBy}

// detail is what decides the Secret's content besides the tokens.
const detail = kubesecret.ManagedByLabel + "=" + kubesecret.ManagedBy

// Scope is the scope of namespace name, as Start pushes it into the
// refresher; it plans nothing while the namespace is not selected.
func (t *Target) Scope(name string) refresher.Scope {
	return refresher.Scope{Name: t.ScopePrefix + name, Group: Group, Target: &namespace{t: t, name: name}}
}

// namespace is one selected namespace, as the refresher's Target.
type namespace struct {
	t    *Target
	name string
}

// Plan is one write: the Secret holding every token. It reads nothing: the
// writer's record says whether the Secret is known, and the write itself
// meets what the cluster holds (a Secret of someone else's, a Rancher copy)
// in Apply, or in Check through the server's dry run. A namespace that has
// left the selection since its scope was due plans nothing.
func (n *namespace) Plan(_ context.Context, want refresher.Input) (refresher.Plan, error) {
	t := n.t
	if !t.selectedNow(n.name) {
		return refresher.Plan{}, nil
	}
	auths := kubesecret.Auths(want.Tokens)
	own := t.owner(want)
	known := t.writer.Known(n.name, t.SecretName)
	action := refresher.ResultUpdated
	if !known {
		action = refresher.ResultCreated
	}
	return refresher.Plan{Writes: []refresher.Write{{
		What:    "secret",
		Written: "secret written",
		Object:  n.name + "/" + t.SecretName,
		Tokens:  want.Tokens,
		Detail:  detail,
		// Not known: written even if the refresher remembers writing it (the
		// record went with a refusal, a deletion or a deselection).
		Stale:  !known,
		Action: action,
		Apply:  func(ctx context.Context) (refresher.Result, error) { return n.write(ctx, auths, own, false) },
		Check:  func(ctx context.Context) (refresher.Result, error) { return n.write(ctx, auths, own, true) },
		Fields: logrus.Fields{"namespace": n.name, "secret": t.SecretName},
	}}}, nil
}

// write writes (or, dry, checks) the Secret, then adds it to the named
// ServiceAccounts that lack it.
func (n *namespace) write(ctx context.Context, auths map[string]kubesecret.Auth, own func(*corev1.Secret) error, dry bool) (refresher.Result, error) {
	t := n.t
	write := t.writer.Apply
	if dry {
		write = t.writer.Check
	}
	res, err := write(ctx, n.name, t.SecretName, ownLabels, auths, own)
	if errors.Is(err, kubesecret.ErrRancherCopy) {
		err = fmt.Errorf("%w; leave namespace %s out (%s) or set %s to another name", err, n.name, envExclude, envSecretName)
	}
	if err != nil {
		return res, err
	}
	if err := t.patchServiceAccounts(ctx, n.name, dry); err != nil {
		return refresher.ResultFailed, fmt.Errorf("secret %s/%s %s, but: %w", n.name, t.SecretName, res, err)
	}
	return res, nil
}

// owner is the rule for an existing Secret of that name: this daemon's when
// it carries the ownership label; with Adopt, also one without it whose every
// host is managed (a Secret another tool, e.g. nabsul/k8s-ecr-login-renew,
// kept: nothing in it is lost). The writer refuses Rancher's copies before
// asking.
func (t *Target) owner(want refresher.Input) func(*corev1.Secret) error {
	return func(s *corev1.Secret) error {
		err := kubesecret.Owned(s)
		if err == nil {
			return nil
		}
		if !t.Adopt {
			return fmt.Errorf("%w; or, if it holds only this daemon's ECR registries, set %s=true to adopt it", err, envAdopt)
		}
		hosts, herr := kubesecret.Hosts(s)
		if herr != nil {
			return fmt.Errorf("%w; %s does not adopt it: %v", err, envAdopt, herr)
		}
		var foreign []string
		for _, h := range hosts {
			if want.Managed == nil || !want.Managed(h) {
				foreign = append(foreign, h)
			}
		}
		if len(foreign) > 0 {
			return fmt.Errorf("%w; %s does not adopt it: it holds registries this daemon does not manage (%s)", err, envAdopt, strings.Join(foreign, ", "))
		}
		if want.Log != nil {
			want.Log.WithFields(logrus.Fields{"namespace": s.Namespace, "secret": s.Name}).Info("adopting the unlabelled secret: it holds only registries this daemon manages (" + envAdopt + ")")
		}
		return nil
	}
}
