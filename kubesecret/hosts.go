package kubesecret

import (
	"encoding/json"
	"errors"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/registryhost"
)

// RancherCopyAnnotation = "true" marks a Secret that Rancher 2.12+ copied
// from a project's backing namespace into a namespace of the project. The
// copy carries every label and annotation of its source (this daemon's
// ownership label included) and Rancher rewrites it from the source, so it is
// Rancher's: no target writes it (docs/rancher-2.12.md).
const RancherCopyAnnotation = "management.cattle.io/project-scoped-secret-copy"

// RancherCopy reports whether s is a copy Rancher made of a project Secret.
func RancherCopy(s *corev1.Secret) bool { return s.Annotations[RancherCopyAnnotation] == "true" }

// Hosts returns the registry hosts a dockerconfigjson Secret holds, sorted,
// each once, as registryhost.NormalizeHost gives them (a key that is no host
// stays as it is, and so is never a managed host). Nothing else of the
// content is kept. It fails when .dockerconfigjson is missing or is not a
// Docker config: what such a Secret holds is unknown.
func Hosts(s *corev1.Secret) ([]string, error) {
	raw, ok := s.Data[corev1.DockerConfigJsonKey]
	if !ok {
		return nil, errors.New("no " + corev1.DockerConfigJsonKey + " key")
	}
	var cfg struct {
		Auths map[string]json.RawMessage `json:"auths"`
	}
	if json.Unmarshal(raw, &cfg) != nil { // the error could quote the content
		return nil, errors.New(corev1.DockerConfigJsonKey + " is not a Docker config (JSON with auths)")
	}
	out := make([]string, 0, len(cfg.Auths))
	for key := range cfg.Auths {
		h, err := registryhost.NormalizeHost(key)
		if err != nil {
			h = key
		}
		out = append(out, h)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
