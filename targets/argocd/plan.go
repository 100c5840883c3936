package argocd

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// detail is what decides the Secret's content besides the token.
const detail = "argocd username/password"

// scope is the scope of one repository Secret.
func (t *Target) scope(namespace, name string) refresher.Scope {
	return refresher.Scope{Name: ScopeName(namespace, name), Group: Group, Target: &repository{t: t, namespace: namespace, name: name}}
}

// repository is one repository Secret, as the refresher's Target.
type repository struct {
	t               *Target
	namespace, name string
}

// Plan is one write: username AWS and the token of the url's registry as
// password. A registry this daemon does not manage is no consumer of it: the
// scope plans nothing and leaves the refresher (consumer.Scopes).
func (p *repository) Plan(_ context.Context, want refresher.Input) (refresher.Plan, error) {
	t := p.t
	s, ok := t.w.Get(p.namespace, p.name)
	if !ok {
		return refresher.Plan{}, nil
	}
	host, ok := t.hostOf(s)
	if !ok || !t.w.Scopes.Managed(want, ScopeName(p.namespace, p.name), host) {
		return refresher.Plan{}, nil
	}
	i := slices.IndexFunc(want.Tokens, func(tok refresher.Token) bool { return tok.Host == host })
	if i < 0 {
		return refresher.Plan{Failures: []refresher.Failure{{Host: host, Err: errors.New("no token in hand for it yet (see the ECR errors)")}}}, nil
	}
	tok := want.Tokens[i]
	edit := kubesecret.BasicAuth(kubesecret.Auth{Username: tok.Username, Password: tok.Password})
	url := string(s.Data[URLKey])
	edit.Check = func(cur *corev1.Secret) error {
		if string(cur.Data[URLKey]) != url || cur.Labels[TypeLabel] != s.Labels[TypeLabel] {
			return fmt.Errorf("secret %s/%s: its url or label %s changed while it was written; it is planned again", p.namespace, p.name, TypeLabel)
		}
		return nil
	}
	return refresher.Plan{Writes: []refresher.Write{{
		What:    "secret",
		Written: "secret written",
		Object:  p.namespace + "/" + p.name,
		Tokens:  []refresher.Token{tok},
		Detail:  detail,
		Stale:   !t.w.Writer.Current(p.namespace, p.name, s.ResourceVersion),
		Action:  refresher.ResultUpdated,
		Apply: func(ctx context.Context) (refresher.Result, error) {
			return t.w.Writer.Apply(ctx, p.namespace, p.name, edit)
		},
		Check: func(ctx context.Context) (refresher.Result, error) {
			return t.w.Writer.Check(ctx, p.namespace, p.name, edit)
		},
		Fields: logrus.Fields{"consumer": Group, "namespace": p.namespace, "secret": p.name, "argocd_secret_type": s.Labels[TypeLabel]},
	}}}, nil
}
