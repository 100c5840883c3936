package consumer

import (
	"context"
	"errors"
	"slices"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// ErrNoToken is the failure of a consumer whose registry is managed but has
// no token in hand yet (its source failed: the ECR errors say why).
var ErrNoToken = errors.New("no token in hand for it yet (see the ECR errors)")

// Token is the token in want for host, or ErrNoToken.
func Token(want refresher.Input, host string) (refresher.Token, error) {
	i := slices.IndexFunc(want.Tokens, func(tok refresher.Token) bool { return tok.Host == host })
	if i < 0 {
		return refresher.Token{}, ErrNoToken
	}
	return want.Tokens[i], nil
}

// Fail is a plan of no write and one failure, of host.
func Fail(host string, err error) refresher.Plan {
	return refresher.Plan{Failures: []refresher.Failure{{Host: host, Err: err}}}
}

// Write is the one write of a consumer Secret, namespace/name: edit (the
// fields that carry tok) through fw, Check being the server's dry run. The
// target adds what decides its content besides the token (Detail), whether
// it must be read again (Stale) and its log fields.
func Write(fw *kubesecret.FieldWriter, namespace, name string, tok refresher.Token, edit kubesecret.Edit) refresher.Write {
	return refresher.Write{
		What:    "secret",
		Written: "secret written",
		Object:  namespace + "/" + name,
		Tokens:  []refresher.Token{tok},
		Action:  refresher.ResultUpdated,
		Apply: func(ctx context.Context) (refresher.Result, error) {
			return fw.Apply(ctx, namespace, name, edit)
		},
		Check: func(ctx context.Context) (refresher.Result, error) {
			return fw.Check(ctx, namespace, name, edit)
		},
	}
}

// Scope is the scope name (of group) of the watched Secret namespace/name:
// plan gets the watch's copy of it; a Secret gone since plans nothing (its
// Drop follows).
func (w *SecretWatch) Scope(name, group, namespace, secret string, plan func(want refresher.Input, s *corev1.Secret) refresher.Plan) refresher.Scope {
	return refresher.Scope{Name: name, Group: group, Target: &watched{w: w, namespace: namespace, name: secret, plan: plan}}
}

// watched is one watched Secret, as the refresher's Target.
type watched struct {
	w               *SecretWatch
	namespace, name string
	plan            func(want refresher.Input, s *corev1.Secret) refresher.Plan
}

func (p *watched) Plan(_ context.Context, want refresher.Input) (refresher.Plan, error) {
	s, ok := p.w.Get(p.namespace, p.name)
	if !ok {
		return refresher.Plan{}, nil
	}
	return p.plan(want, s), nil
}

// Write is the one write of the watched Secret s (Write over the watch's
// writer), planned again when someone changed s since this process wrote or
// read it; fields are the target's log fields.
func (w *SecretWatch) Write(s *corev1.Secret, tok refresher.Token, edit kubesecret.Edit, detail string, fields logrus.Fields) refresher.Plan {
	wr := Write(w.Writer, s.Namespace, s.Name, tok, edit)
	wr.Detail = detail
	// Changed by someone since this process wrote or read it: what it holds
	// is checked again even if the refresher remembers writing it.
	wr.Stale = !w.Writer.Current(s.Namespace, s.Name, s.ResourceVersion)
	wr.Fields = fields
	return refresher.Plan{Writes: []refresher.Write{wr}}
}
