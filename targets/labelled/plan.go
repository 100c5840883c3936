package labelled

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/registryhost"
)

// scope is the scope of one labelled Secret.
func (t *Target) scope(namespace, name string) refresher.Scope {
	return refresher.Scope{Name: ScopeName(namespace, name), Group: Group, Target: &labelledSecret{t: t, namespace: namespace, name: name}}
}

// labelledSecret is one labelled Secret, as the refresher's Target.
type labelledSecret struct {
	t               *Target
	namespace, name string
}

// Plan is one write: the token of the labelled host, in the keys the
// Secret's type holds. It reads the watch's copy (labels, type, format
// annotation); the write reads the Secret itself. A host this daemon does not
// manage is refused, naming the label and what it manages.
func (l *labelledSecret) Plan(_ context.Context, want refresher.Input) (refresher.Plan, error) {
	t := l.t
	s, ok := t.w.Get(l.namespace, l.name)
	if !ok || kubesecret.IsRancherCopy(s) {
		return refresher.Plan{}, nil // gone or a copy since: its Drop follows
	}
	label := s.Labels[HostLabel]
	host, err := registryhost.NormalizeHost(label)
	if err != nil {
		return refresher.Plan{Failures: []refresher.Failure{{Host: label, Err: refresher.Permanent(fmt.Errorf(
			"secret %s/%s: label %s=%q is not a registry host (%v): set it to the host of a registry this daemon manages", l.namespace, l.name, HostLabel, label, err))}}}, nil
	}
	if want.Managed == nil || !want.Managed(host) {
		return refresher.Plan{Failures: []refresher.Failure{{Host: host, Err: refresher.Permanent(fmt.Errorf(
			"secret %s/%s: label %s=%s names a registry this daemon does not manage (it manages %s): set the label to one of those, or add the registry (AWS_ECR_REGISTRY_IDS, ECR_PROXY_HOST, AWS_ECR_PUBLIC)",
			l.namespace, l.name, HostLabel, label, managedHosts(want.Tokens)))}}}, nil
	}
	i := slices.IndexFunc(want.Tokens, func(tok refresher.Token) bool { return tok.Host == host })
	if i < 0 {
		return refresher.Plan{Failures: []refresher.Failure{{Host: host, Err: errors.New("no token in hand for it yet (see the ECR errors)")}}}, nil
	}
	tok := want.Tokens[i]
	edit, format, err := formatOf(s, host, kubesecret.Auth{Username: tok.Username, Password: tok.Password})
	if err != nil {
		return refresher.Plan{Failures: []refresher.Failure{{Host: host, Err: refresher.Permanent(err)}}}, nil
	}
	shape := shapeOf(s)
	edit.Check = func(cur *corev1.Secret) error {
		if shapeOf(cur) != shape {
			return fmt.Errorf("secret %s/%s: its type, label %s or annotation %s changed while it was written; it is planned again", l.namespace, l.name, HostLabel, FormatAnnotation)
		}
		return nil
	}
	return refresher.Plan{Writes: []refresher.Write{{
		What:    "secret",
		Written: "secret written",
		Object:  l.namespace + "/" + l.name,
		Tokens:  []refresher.Token{tok},
		Detail:  format,
		// Changed by someone since this process wrote or read it: what it
		// holds is checked again even if the refresher remembers writing it.
		Stale:  !t.w.Writer.Current(l.namespace, l.name, s.ResourceVersion),
		Action: refresher.ResultUpdated,
		Apply: func(ctx context.Context) (refresher.Result, error) {
			return t.w.Writer.Apply(ctx, l.namespace, l.name, edit)
		},
		Check: func(ctx context.Context) (refresher.Result, error) {
			return t.w.Writer.Check(ctx, l.namespace, l.name, edit)
		},
		Fields: logrus.Fields{"consumer": Group, "namespace": l.namespace, "secret": l.name, "format": format},
	}}}, nil
}

// formatOf is what a Secret of s's type holds for host (CONTRACT: by its
// type), and the format's name for logs.
func formatOf(s *corev1.Secret, host string, a kubesecret.Auth) (kubesecret.Edit, string, error) {
	f := s.Annotations[FormatAnnotation]
	if f != "" && f != FormatDockerConfig {
		return kubesecret.Edit{}, "", fmt.Errorf("secret %s/%s: annotation %s=%q is not a format: the one format is %s (a Docker config in key %s of an Opaque Secret); remove the annotation for the keys username and password",
			s.Namespace, s.Name, FormatAnnotation, f, FormatDockerConfig, ConfigJSONKey)
	}
	switch s.Type {
	case corev1.SecretTypeDockerConfigJson:
		return kubesecret.DockerConfig(corev1.DockerConfigJsonKey, host, a), "dockerconfigjson", nil
	case corev1.SecretTypeBasicAuth:
		return kubesecret.BasicAuth(a), "basic-auth", nil
	case corev1.SecretTypeOpaque, "":
		if f == FormatDockerConfig {
			return kubesecret.DockerConfig(ConfigJSONKey, host, a), "docker-config", nil
		}
		return kubesecret.BasicAuth(a), "username-password", nil
	}
	return kubesecret.Edit{}, "", fmt.Errorf("secret %s/%s has type %s, which holds no registry credential: label a Secret of type %s, %s or %s instead",
		s.Namespace, s.Name, s.Type, corev1.SecretTypeDockerConfigJson, corev1.SecretTypeBasicAuth, corev1.SecretTypeOpaque)
}

// shapeOf is what decides what a Secret gets: its type, label and format.
func shapeOf(s *corev1.Secret) string {
	return string(s.Type) + "\x00" + s.Labels[HostLabel] + "\x00" + s.Annotations[FormatAnnotation]
}

// managedHosts names the hosts of tokens, for a refusal.
func managedHosts(toks []refresher.Token) string {
	var hs []string
	for _, t := range toks {
		hs = append(hs, t.Host)
	}
	slices.Sort(hs)
	if len(hs) == 0 {
		return "none yet"
	}
	return strings.Join(slices.Compact(hs), ", ")
}
