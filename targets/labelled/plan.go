package labelled

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/consumer"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/registryhost"
)

// scope is the scope of one labelled Secret.
func (t *Target) scope(namespace, name string) refresher.Scope {
	return t.w.Scope(ScopeName(namespace, name), Group, namespace, name, t.plan)
}

// plan is one write: the token of the labelled host, in the keys the
// Secret's type holds. It reads the watch's copy (labels, type, format
// annotation); the write reads the Secret itself. A host this daemon does not
// manage is refused, naming the label and what it manages.
func (t *Target) plan(want refresher.Input, s *corev1.Secret) refresher.Plan {
	if kubesecret.IsRancherCopy(s) {
		return refresher.Plan{} // a copy since: its Drop follows
	}
	label := s.Labels[HostLabel]
	host, err := registryhost.NormalizeHost(label)
	if err != nil {
		return consumer.Fail(label, refresher.Permanent(fmt.Errorf(
			"secret %s/%s: label %s=%q is not a registry host (%v): set it to the host of a registry this daemon manages", s.Namespace, s.Name, HostLabel, label, err)))
	}
	if want.Managed == nil || !want.Managed(host) {
		managed := managedHosts(want.Tokens)
		return consumer.Fail(host, refresher.Permanent(fmt.Errorf(
			"secret %s/%s: label %s=%s names a registry this daemon does not manage (it manages %s): set the label to one of those, or add the registry (AWS_ECR_REGISTRY_IDS, ECR_PROXY_HOST, AWS_ECR_PUBLIC)",
			s.Namespace, s.Name, HostLabel, label, managed)))
	}
	f, err := formatOf(s)
	if err != nil {
		return consumer.Fail(host, refresher.Permanent(err))
	}
	tok, err := consumer.Token(want, host)
	if err != nil {
		return consumer.Fail(host, err)
	}
	a := kubesecret.Auth{Username: tok.Username, Password: tok.Password}
	edit := kubesecret.BasicAuth(a)
	if f.configKey != "" {
		edit = kubesecret.DockerConfig(f.configKey, host, a)
	}
	shape := shapeOf(s)
	edit.Check = func(cur *corev1.Secret) error {
		if shapeOf(cur) != shape {
			return fmt.Errorf("secret %s/%s: its type, label %s or annotation %s changed while it was written; it is planned again", s.Namespace, s.Name, HostLabel, FormatAnnotation)
		}
		return nil
	}
	return t.w.Write(s, tok, edit, f.name, logrus.Fields{"consumer": Group, "namespace": s.Namespace, "secret": s.Name, "format": f.name})
}

// format is what a Secret of some type holds (CONTRACT: by its type).
type format struct {
	name string // for logs: dockerconfigjson, basic-auth, docker-config, username-password
	// configKey is the key that holds a Docker config; "" for the keys
	// username and password.
	configKey string
}

// formatOf is the format of s, by its type and format annotation.
func formatOf(s *corev1.Secret) (format, error) {
	f := s.Annotations[FormatAnnotation]
	if f != "" && f != FormatDockerConfig {
		return format{}, fmt.Errorf("secret %s/%s: annotation %s=%q is not a format: the one format is %s (a Docker config in key %s of an Opaque Secret); remove the annotation for the keys username and password",
			s.Namespace, s.Name, FormatAnnotation, f, FormatDockerConfig, ConfigJSONKey)
	}
	switch s.Type {
	case corev1.SecretTypeDockerConfigJson:
		return format{name: "dockerconfigjson", configKey: corev1.DockerConfigJsonKey}, nil
	case corev1.SecretTypeBasicAuth:
		return format{name: "basic-auth"}, nil
	case corev1.SecretTypeOpaque, "":
		if f == FormatDockerConfig {
			return format{name: "docker-config", configKey: ConfigJSONKey}, nil
		}
		return format{name: "username-password"}, nil
	}
	return format{}, fmt.Errorf("secret %s/%s has type %s, which holds no registry credential: label a Secret of type %s, %s or %s instead",
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
