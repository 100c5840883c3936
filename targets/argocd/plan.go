package argocd

import (
	"fmt"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/consumer"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// detail is what decides the Secret's content besides the token.
const detail = "argocd username/password"

// scope is the scope of one repository Secret.
func (t *Target) scope(namespace, name string) refresher.Scope {
	return t.w.Scope(ScopeName(namespace, name), Group, namespace, name, t.plan)
}

// plan is one write: username AWS and the token of the url's registry as
// password. A registry this daemon does not manage is no consumer of it: the
// scope plans nothing and leaves the refresher (consumer.Scopes).
func (t *Target) plan(want refresher.Input, s *corev1.Secret) refresher.Plan {
	host, ok := t.hostOf(s)
	if !ok || !t.w.Scopes.Managed(want, ScopeName(s.Namespace, s.Name), host) {
		return refresher.Plan{}
	}
	tok, err := consumer.Token(want, host)
	if err != nil {
		return consumer.Fail(host, err)
	}
	edit := kubesecret.BasicAuth(kubesecret.Auth{Username: tok.Username, Password: tok.Password})
	url := string(s.Data[URLKey])
	edit.Check = func(cur *corev1.Secret) error {
		if string(cur.Data[URLKey]) != url || cur.Labels[TypeLabel] != s.Labels[TypeLabel] {
			return fmt.Errorf("secret %s/%s: its url or label %s changed while it was written; it is planned again", s.Namespace, s.Name, TypeLabel)
		}
		return nil
	}
	return t.w.Write(s, tok, edit, detail,
		logrus.Fields{"consumer": Group, "namespace": s.Namespace, "secret": s.Name, "argocd_secret_type": s.Labels[TypeLabel]})
}
