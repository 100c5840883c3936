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
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/tenantrole"
)

// ownLabels are the labels the Secret carries.
var ownLabels = map[string]string{kubesecret.ManagedByLabel: kubesecret.ManagedBy}

// detail is what decides the Secret's content besides the tokens.
const detail = kubesecret.ManagedByLabel + "=" + kubesecret.ManagedBy

// Scope is the scope of namespace name as the informer has it now, the one
// Start pushes at the namespace's last event: its annotation
// rancher-ecr-credentials/role-arn is the scope's Identity (none: the
// daemon's own). It plans nothing while the namespace is not selected.
func (t *Target) Scope(name string) refresher.Scope {
	identity := ""
	if obj, ok, _ := t.nsInf.GetStore().GetByKey(name); ok {
		if ns, isNS := obj.(*corev1.Namespace); isNS {
			identity = roleOf(ns)
		}
	}
	return t.scope(name, identity)
}

func (t *Target) scope(name, identity string) refresher.Scope {
	n := &namespace{t: t, name: name}
	return refresher.Scope{Name: t.ScopePrefix + name, Group: Group, Identity: identity, Target: n}
}

// roleOf is the identity a namespace names: its role annotation, trimmed
// and bounded ("" for the daemon's own).
func roleOf(ns *corev1.Namespace) string {
	if ns == nil {
		return ""
	}
	return tenantrole.IdentityOf(ns.Annotations)
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
//
// With want.TakeBack (a new scope, one whose identity changed, one refused)
// the write also takes out of the Secret every entry of a host this daemon
// manages that the tokens lack. Planned with no token at all (its identity
// refused: it gets no credential at all, never the daemon's own), that is all
// it does, and it creates nothing.
func (n *namespace) Plan(_ context.Context, want refresher.Input) (refresher.Plan, error) {
	t := n.t
	if !t.selectedNow(n.name) {
		return refresher.Plan{}, nil
	}
	own := t.owner(want)
	known := t.writer.Known(n.name, t.SecretName)
	action := refresher.ResultUpdated
	if !known {
		action = refresher.ResultCreated
	}
	w := refresher.Write{
		What:    "secret",
		Written: "secret written",
		Object:  n.name + "/" + t.SecretName,
		Tokens:  want.Tokens,
		Detail:  detail,
		// Not known: written even if the refresher remembers writing it (the
		// record went with a refusal, a deletion or a deselection).
		Stale:  !known,
		Action: action,
		Fields: logrus.Fields{"namespace": n.name, "secret": t.SecretName},
	}
	var drop func(string) bool
	if want.TakeBack {
		drop = func(h string) bool { return want.Managed != nil && want.Managed(h) }
	}
	if len(want.Tokens) == 0 {
		w.Written, w.Detail, w.Action = "secret emptied of this daemon's registries: the namespace gets no credential", detail+";none", refresher.ResultUpdated
	}
	w.Apply, w.Check = n.write(want.Tokens, own, drop)
	return refresher.Plan{Writes: []refresher.Write{w}}, nil
}

// write is the write of the Secret holding toks, and its dry run: the Secret,
// then the named ServiceAccounts that lack it. With drop, the entries of the
// hosts it reports that toks lack are taken out.
func (n *namespace) write(toks []refresher.Token, own func(*corev1.Secret) error, drop func(string) bool) (apply, check func(context.Context) (refresher.Result, error)) {
	t := n.t
	auths := kubesecret.Auths(toks)
	write := func(ctx context.Context, dry bool) (res refresher.Result, err error) {
		switch {
		case drop != nil && dry:
			res, err = t.writer.CheckReplace(ctx, n.name, t.SecretName, ownLabels, auths, drop, own)
		case drop != nil:
			res, err = t.writer.Replace(ctx, n.name, t.SecretName, ownLabels, auths, drop, own)
		case dry:
			res, err = t.writer.Check(ctx, n.name, t.SecretName, ownLabels, auths, own)
		default:
			res, err = t.writer.Apply(ctx, n.name, t.SecretName, ownLabels, auths, own)
		}
		if errors.Is(err, kubesecret.ErrRancherCopy) {
			err = fmt.Errorf("%w; leave namespace %s out (%s) or set %s to another name", err, n.name, envExclude, envSecretName)
		}
		if err != nil || len(auths) == 0 {
			return res, err
		}
		if err := t.patchServiceAccounts(ctx, n.name, dry); err != nil {
			return refresher.ResultFailed, fmt.Errorf("secret %s/%s %s, but: %w", n.name, t.SecretName, res, err)
		}
		return res, nil
	}
	apply = func(ctx context.Context) (refresher.Result, error) { return write(ctx, false) }
	check = func(ctx context.Context) (refresher.Result, error) { return write(ctx, true) }
	return apply, check
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
