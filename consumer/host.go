package consumer

import (
	"strings"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/registryhost"
)

// PublicHost is Amazon ECR Public's registry host.
const PublicHost = "public.ecr.aws"

// HostOf returns the registry host of a repository URL as Argo CD and
// Rancher spell them: oci://host/path, https://host/path, or host/path bare;
// ok is false when it names no host.
func HostOf(url string) (string, bool) {
	u := strings.TrimSpace(url)
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
	}
	if i := strings.IndexAny(u, "/?#"); i >= 0 {
		u = u[:i]
	}
	if i := strings.LastIndex(u, "@"); i >= 0 { // user@host
		u = u[i+1:]
	}
	h, err := registryhost.NormalizeHost(u)
	return h, err == nil
}

// ECRLike reports whether host can be a registry this daemon writes for: an
// Amazon ECR registry host, ECR Public, or the proxy host (ECR_PROXY_HOST).
// Repositories of any other host (git servers, other registries) are never
// consumers, and are not even looked at again.
func ECRLike(host, proxy string) bool {
	if _, _, ok := registryhost.ParseECR(host); ok {
		return true
	}
	return host == PublicHost || (proxy != "" && host == proxy)
}
