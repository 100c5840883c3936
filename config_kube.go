package main

import (
	"strings"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/kube"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Kube reports whether the Kubernetes namespaces target is on.
func (c Config) Kube() bool {
	return len(c.KubeSelection.Include) > 0 || c.KubeSelection.Selector != nil || c.KubeAll
}

// parseKube reads the KUBE_* and LEADER_ELECTION_* settings.
func parseKube(c *Config, raw map[string]string, bad func(env, format string, args ...any)) {
	inc := splitList(raw["KUBE_NAMESPACES"])
	sel, err := kube.ParseSelection(inc, raw["KUBE_NAMESPACE_SELECTOR"], splitList(raw["KUBE_EXCLUDE_NAMESPACES"]))
	if err != nil {
		env, msg, _ := strings.Cut(err.Error(), ": ")
		bad(env, "%s", msg)
	}
	c.KubeSelection = sel
	c.KubeAll = len(inc) == 1 && strings.EqualFold(inc[0], "all")
	c.KubeSecretName = strings.TrimSpace(raw["KUBE_SECRET_NAME"])
	if errs := validation.IsDNS1123Subdomain(c.KubeSecretName); len(errs) > 0 {
		bad("KUBE_SECRET_NAME", "%q is not a Secret name: %s", c.KubeSecretName, strings.Join(errs, "; "))
	}
	for _, sa := range splitList(raw["KUBE_SERVICE_ACCOUNTS"]) {
		if errs := validation.IsDNS1123Subdomain(sa); len(errs) > 0 {
			bad("KUBE_SERVICE_ACCOUNTS", "%q is not a ServiceAccount name: %s", sa, strings.Join(errs, "; "))
			continue
		}
		c.KubeServiceAccounts = append(c.KubeServiceAccounts, sa)
	}
	if len(c.KubeServiceAccounts) > 0 && !c.Kube() {
		bad("KUBE_SERVICE_ACCOUNTS", "set, but no namespace is selected: set KUBE_NAMESPACES or KUBE_NAMESPACE_SELECTOR too")
	}
	c.LeaderElectionNamespace = strings.TrimSpace(raw["LEADER_ELECTION_NAMESPACE"])
	if ns := c.LeaderElectionNamespace; ns != "" {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			bad("LEADER_ELECTION_NAMESPACE", "%q is not a namespace name: %s", ns, strings.Join(errs, "; "))
		}
	}
}
